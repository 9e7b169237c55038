// Tests of the replaceable log sink (portcullis/logging.h): a capturing sink sees the library's
// lines (a refused peer, as the Repo logs it), the level filters them, an empty sink silences
// the library, and the previous sink comes back.
#include "portcullis/logging.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "repo/repo_harness.h"

namespace portcullis::testing {
namespace {

struct Line {
  LogLevel level;
  std::string message;
};

// Installs a capturing sink (or, with `silent`, none) for one test, and restores the previous
// sink and level after it.
class LogCapture {
 public:
  explicit LogCapture(bool silent = false) {
    previous_ = setLogSink(silent ? LogSink() : LogSink([this](LogLevel l, std::string_view m) {
      lines.push_back(Line{l, std::string(m)});
    }));
  }
  ~LogCapture() {
    setLogSink(std::move(previous_));
    setLogLevel(LogLevel::Info);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  bool saw(LogLevel level, const std::string& part) const {
    for (const Line& l : lines) {
      if (l.level == level && l.message.find(part) != std::string::npos) return true;
    }
    return false;
  }

  std::vector<Line> lines;

 private:
  LogSink previous_;
};

// Connects a peer that `a` refuses, and waits until the refusal is reported.
void refuseAPeer(RepoHarness& h) {
  auto& a = h.add("a");
  auto& b = h.add("b");
  a.auth->refuse.insert("b");
  h.link(b, a);
  ASSERT_TRUE(h.runUntil([&] { return !a.log->refused.empty(); }));
}

TEST(Logging, ACapturingSinkSeesTheRepoLogARefusedPeer) {
  LogCapture capture;
  RepoHarness h;
  refuseAPeer(h);
  EXPECT_TRUE(capture.saw(LogLevel::Info, "refused by the test")) << capture.lines.size();
}

TEST(Logging, LinesBelowTheLevelAreDropped) {
  LogCapture capture;
  setLogLevel(LogLevel::Warn);
  RepoHarness h;
  refuseAPeer(h);
  EXPECT_FALSE(capture.saw(LogLevel::Info, "refused by the test"));
  EXPECT_FALSE(logEnabled(LogLevel::Info));
  EXPECT_TRUE(logEnabled(LogLevel::Error));
}

TEST(Logging, AnEmptySinkSilencesTheLibrary) {
  std::vector<Line> outer;
  LogCapture silent(true);
  // Nothing reaches a sink that is not installed; logging with none installed is harmless.
  RepoHarness h;
  refuseAPeer(h);
  log(LogLevel::Error, "nobody hears this");
  const LogSink none = setLogSink([&](LogLevel l, std::string_view m) {
    outer.push_back(Line{l, std::string(m)});
  });
  EXPECT_FALSE(none) << "the silent sink came back as a sink";
  log(LogLevel::Error, "this one is heard");
  ASSERT_EQ(outer.size(), 1u);
  EXPECT_EQ(outer[0].message, "this one is heard");
}

TEST(Logging, SettingASinkReturnsThePreviousOneToRestore) {
  std::vector<std::string> first;
  std::vector<std::string> second;
  LogCapture around;
  const LogSink before =
      setLogSink([&](LogLevel, std::string_view m) { first.emplace_back(m); });
  const LogSink replaced =
      setLogSink([&](LogLevel, std::string_view m) { second.emplace_back(m); });
  log(LogLevel::Warn, "to second");
  setLogSink(replaced);
  log(LogLevel::Warn, "to first");
  EXPECT_EQ(first, std::vector<std::string>{"to first"});
  EXPECT_EQ(second, std::vector<std::string>{"to second"});
  ASSERT_TRUE(before);  // the capture's sink, restored by it afterwards
}

TEST(Logging, OffIsNotALevelToLogAt) {
  LogCapture capture;
  setLogLevel(LogLevel::Debug);
  log(LogLevel::Off, "never");
  EXPECT_TRUE(capture.lines.empty());
  EXPECT_FALSE(logEnabled(LogLevel::Off));
  EXPECT_EQ(logLevelName(LogLevel::Warn), "warn");
}

}  // namespace
}  // namespace portcullis::testing
