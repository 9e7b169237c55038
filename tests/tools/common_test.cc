// The tool's shared helpers (tools/portcullis/common.cc): where the tool looks for plugins, how a
// client tells a refused port from a silent server, and what a handshake failure says.
#include <gtest/gtest.h>

#include <algorithm>

#include "../lib/repo/repo_harness.h"
#include "portcullis/provider_registry.h"
#include "tcp_network.h"
#include "tool.h"

namespace portcullis::tool {
namespace {

using namespace std::chrono_literals;
using portcullis::testing::runUntil;
namespace fs = std::filesystem;

std::vector<fs::path> splitColons(std::string_view list) {
  std::vector<fs::path> out;
  while (!list.empty()) {
    const auto colon = list.find(':');
    out.emplace_back(std::string(list.substr(0, colon)));
    list = colon == std::string_view::npos ? std::string_view() : list.substr(colon + 1);
  }
  return out;
}

TEST(ToolPlugins, TheToolOfThisBuildTreeLooksInTheBuildsPluginFolders) {
  const auto folders = ownPluginFolders(fs::path(TOOL_BUILD_DIR) / "portcullis");
  EXPECT_EQ(folders, splitColons(BUILD_PLUGIN_DIRS));
  // Every provider this build makes is in one of them.
  for (const char* name : {"shared-key", "document-id", "team"}) {
    const std::string file = std::string("libportcullis-auth-") + name + ".so";
    EXPECT_TRUE(std::any_of(folders.begin(), folders.end(),
                            [&](const fs::path& dir) { return fs::exists(dir / file); }))
        << file;
  }
}

TEST(ToolPlugins, AToolElsewhereLooksForTheInstalledFolderRelativeToItself) {
  const auto folders = ownPluginFolders("/opt/pc/bin/portcullis");
  ASSERT_EQ(folders.size(), 1u);
  if (std::string_view(INSTALL_BINDIR) == "bin" && fs::path(INSTALL_LIBDIR).is_relative()) {
    EXPECT_EQ(folders[0], fs::path("/opt/pc") / INSTALL_LIBDIR / "portcullis");
  }
  // Installed where it was built for, that is the installed plugin folder itself.
  const fs::path bin = fs::path(INSTALL_PREFIX) / INSTALL_BINDIR;
  EXPECT_EQ(ownPluginFolders(bin / "portcullis"),
            std::vector<fs::path>{installedPluginDir().lexically_normal()});
}

TEST(ToolPlugins, TheSearchPathOfTheRunningProgramEndsWithTheInstalledFolder) {
  const auto path = toolPluginSearchPath();
  ASSERT_FALSE(path.empty());
  EXPECT_EQ(path.back(), installedPluginDir());
}

// A loopback port nothing listens on.
std::string unusedAddress(asio::io_context& ctx) {
  asio::ip::tcp::acceptor probe(ctx, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                                              0));
  return "127.0.0.1:" + std::to_string(probe.local_endpoint().port());
}

struct Dialing {
  asio::io_context ctx;
  std::shared_ptr<TcpNetworkAdapter> net;
  std::vector<std::unique_ptr<Stream>> streams;
  int wakes = 0;

  void start(const ServerDial& dial, const std::string& address) {
    net = *TcpNetworkAdapter::create(
        ctx.get_executor(),
        TcpNetworkOptions{.connect = {address}, .minBackoff = std::chrono::milliseconds(10),
                          .maxBackoff = std::chrono::milliseconds(20),
                          .connectTimeout = std::chrono::milliseconds(2'000),
                          .onDial = dial.reporter([this] { ++wakes; })});
    net->start([this](std::unique_ptr<Stream> s, Side) { streams.push_back(std::move(s)); });
  }
  ~Dialing() {
    if (net) net->stop();
  }
};

TEST(ServerDial, ARefusedPortFailsAtOnceWithTheOsError) {
  Dialing d;
  const std::string address = unusedAddress(d.ctx);
  ServerDial dial(address);
  d.start(dial, address);
  ASSERT_TRUE(runUntil(d.ctx, [&] { return dial.failed(); }, 5s));
  EXPECT_GT(d.wakes, 0);
  EXPECT_FALSE(dial.connected());
  const Error e = dial.error(10);
  EXPECT_EQ(e.code(), Errc::Disconnected);
  EXPECT_EQ(e.message(), "cannot connect to " + address + ": Connection refused");
}

TEST(ServerDial, AServerThatAcceptsButNeverAnswersIsConnectedNotUnreachable) {
  Dialing d;
  asio::ip::tcp::acceptor silent(
      d.ctx, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string address = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  ServerDial dial("net:" + address + "~shs:KEY");
  d.start(dial, address);
  ASSERT_TRUE(runUntil(d.ctx, [&] { return dial.connected(); }, 5s));
  EXPECT_FALSE(dial.failed());
  EXPECT_EQ(dial.error(1.5).message(),
            "connected to net:" + address + "~shs:KEY, but the handshake did not complete within "
            "1.5 s (the server may run another auth provider, or be too busy to answer)");
  // A failed redial after the connection does not turn it into "unreachable".
  silent.close();
  d.streams.clear();  // closes the connection: the adapter redials a closed port
  runUntil(d.ctx, [] { return false; }, 100ms);
  EXPECT_FALSE(dial.failed());
  EXPECT_TRUE(dial.connected());
}

TEST(ServerDial, WithoutAnyReportItIsUnreachableWithinTheTimeout) {
  ServerDial dial("10.0.0.1:7420");
  EXPECT_FALSE(dial.failed());
  EXPECT_FALSE(dial.connected());
  EXPECT_EQ(dial.error(1).message(), "cannot reach 10.0.0.1:7420 (no connection within 1 s)");
}

TEST(HandshakeFailure, AHangUpListsTheLikelyCausesForTheProvider) {
  const Error eof(Errc::Disconnected, "shared-key: tcp: End of file");
  EXPECT_EQ(describeHandshakeFailure("shared-key", eof),
            "handshake failed: shared-key: tcp: End of file (the server closed the connection "
            "without a reason; likely: this config's network-key is not the server's, the key "
            "after ~shs: in the address is not the server's (serve prints the address to "
            "dial), or the server denies this device; the server's log says which)");
  for (const char* provider : {"document-id", "team", "open", "someone-elses"}) {
    const std::string line = describeHandshakeFailure(provider, eof);
    EXPECT_EQ(line.rfind("handshake failed: shared-key: tcp: End of file (the server closed the "
                         "connection without a reason; likely: ", 0), 0u)
        << line;
    EXPECT_TRUE(line.ends_with("; the server's log says which)")) << line;
  }
  EXPECT_NE(describeHandshakeFailure("document-id", eof).find("~shs:"), std::string::npos);
  EXPECT_NE(describeHandshakeFailure("team", eof).find("removed"), std::string::npos);
}

TEST(HandshakeFailure, AFailureThatSaysWhyIsLeftAsItIs) {
  for (const Error& e : {Error(Errc::Denied, "shared-key: server ab12 is not authorized"),
                         Error(Errc::Config, "the dialed address '1:2' carries no server key"),
                         Error(Errc::Malformed, "team: a bad frame")}) {
    EXPECT_EQ(describeHandshakeFailure("shared-key", e), "handshake failed: " + e.message());
  }
}

TEST(SecondsText, WritesATimeoutAsTheOptionTookIt) {
  EXPECT_EQ(secondsText(1), "1 s");
  EXPECT_EQ(secondsText(0.5), "0.5 s");
  EXPECT_EQ(secondsText(10), "10 s");
}

}  // namespace
}  // namespace portcullis::tool
