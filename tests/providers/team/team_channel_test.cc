// The team session channel (team_channel.h) over a scripted inner channel: team messages go to
// the provider and Repo frames to the Repo, in order; a frame with an unknown tag ends the
// session as malformed; the reader stops reading ahead once the Repo's queue passes its bound.
#include "team_channel.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "channel_test_support.h"

namespace portcullis::team {
namespace {

using portcullis::testing::start;

// Hands out scripted frames, then waits (never ends) until closed.
class ScriptedInner final : public MessageChannel {
 public:
  ScriptedInner(asio::any_io_executor ex, std::deque<Bytes> frames)
      : frames_(std::move(frames)), idle_(ex) {}
  asio::awaitable<Result<void>> send(ByteView frame) override {
    sent.emplace_back(frame.begin(), frame.end());
    co_return Result<void>();
  }
  asio::awaitable<Result<Bytes>> receive() override {
    ++receives;
    if (!frames_.empty()) {
      Bytes f = std::move(frames_.front());
      frames_.pop_front();
      co_return f;
    }
    idle_.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await idle_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return Error(Errc::Disconnected, "closed");
  }
  void close() override { idle_.cancel(); }

  std::vector<Bytes> sent;
  std::size_t receives = 0;

 private:
  std::deque<Bytes> frames_;
  asio::steady_timer idle_;
};

Bytes frame(std::uint8_t tag, std::size_t size, std::uint8_t fill) {
  Bytes f(size + 1, fill);
  f[0] = tag;
  return f;
}

struct Fixture {
  asio::io_context ctx;
  std::vector<Bytes> teamMessages;
  std::optional<std::string> ended;
  ScriptedInner* inner = nullptr;

  TeamChannelPair open(std::deque<Bytes> frames) {
    auto scripted = std::make_unique<ScriptedInner>(ctx.get_executor(), std::move(frames));
    inner = scripted.get();
    return makeTeamChannel(
        ctx.get_executor(), std::move(scripted),
        TeamChannelHandlers{.onTeamMessage =
                                [this](Bytes m) -> asio::awaitable<void> {
                                  teamMessages.push_back(std::move(m));
                                  co_return;
                                },
                            .onEnd = [this](const std::string& why) { ended = why; }});
  }
  bool runUntil(const std::function<bool()>& done) {
    return portcullis::testing::runUntil(ctx, done, std::chrono::seconds(5));
  }
};

TEST(TeamChannel, TeamMessagesGoToTheProviderAndRepoFramesToTheRepoUntagged) {
  Fixture f;
  auto pair = f.open({frame(kTeamFrameTag, 3, 0xAA), frame(kRepoFrameTag, 2, 0xBB)});
  auto got = start(f.ctx, pair.repo->receive());
  ASSERT_TRUE(f.runUntil([&] { return got->done(); }));
  ASSERT_TRUE(*got->value);
  EXPECT_EQ(**got->value, Bytes(2, 0xBB));
  ASSERT_EQ(f.teamMessages.size(), 1u);
  EXPECT_EQ(f.teamMessages[0], Bytes(3, 0xAA));
  // Sends are tagged the same way.
  ASSERT_TRUE(pair.provider->sendTeam(Bytes{1, 2}));
  const Bytes repoFrame{9};  // outlives the send, which holds a view of it
  auto sent = start(f.ctx, pair.repo->send(repoFrame));
  ASSERT_TRUE(f.runUntil([&] { return sent->done() && f.inner->sent.size() == 2; }));
  EXPECT_EQ(f.inner->sent[0], (Bytes{kTeamFrameTag, 1, 2}));
  EXPECT_EQ(f.inner->sent[1], (Bytes{kRepoFrameTag, 9}));
}

TEST(TeamChannel, AFrameWithAnUnknownTagEndsTheSessionAsMalformed) {
  Fixture f;
  auto pair = f.open({frame(7, 4, 0)});
  auto got = start(f.ctx, pair.repo->receive());
  ASSERT_TRUE(f.runUntil([&] { return got->done(); }));
  ASSERT_FALSE(*got->value);
  EXPECT_EQ(got->value->error().code(), Errc::Malformed);
  ASSERT_TRUE(f.ended);
  EXPECT_TRUE(pair.provider->closed());
  EXPECT_FALSE(pair.provider->sendTeam(Bytes{1}));
}

TEST(TeamChannel, TheReaderStopsReadingAheadOfTheRepoPastItsBound) {
  Fixture f;
  std::deque<Bytes> frames;
  const std::size_t frameBytes = 1u << 20;
  for (int i = 0; i < 12; ++i) frames.push_back(frame(kRepoFrameTag, frameBytes, 0));
  auto pair = f.open(std::move(frames));
  const std::size_t mostAhead = kMaxRepoReadAhead / frameBytes + 1;
  ASSERT_TRUE(f.runUntil([&] { return f.inner->receives >= mostAhead; }));
  portcullis::testing::runUntil(f.ctx, [] { return false; }, std::chrono::milliseconds(50));
  EXPECT_EQ(f.inner->receives, mostAhead);
  // The Repo takes one frame: the reader takes one more.
  auto got = start(f.ctx, pair.repo->receive());
  ASSERT_TRUE(f.runUntil([&] { return got->done() && f.inner->receives == mostAhead + 1; }));
}

}  // namespace
}  // namespace portcullis::team
