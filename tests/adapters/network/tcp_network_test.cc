// The TCP network adapter over loopback: listening on port 0, dialing, redialing after a drop,
// stopping, and two Repos syncing through it.
#include "tcp_network.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "../../lib/repo/repo_harness.h"
#include "portcullis/secret_handshake.h"

namespace portcullis::testing {
namespace {

struct Collected {
  std::vector<std::unique_ptr<Stream>> dialed;
  std::vector<std::unique_ptr<Stream>> accepted;
  ConnectionSink sink() {
    return [this](std::unique_ptr<Stream> s, Side side) {
      (side == Side::Dialer ? dialed : accepted).push_back(std::move(s));
    };
  }
};

std::string addressOf(const TcpNetworkAdapter& adapter) {
  const auto endpoint = adapter.listeningOn().at(0);
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

TEST(TcpNetwork, ParsesHostAndPortAndRejectsAnythingElse) {
  EXPECT_EQ(*parseHostPort("127.0.0.1:7420"), std::make_pair(std::string("127.0.0.1"),
                                                             std::uint16_t{7420}));
  EXPECT_EQ(*parseHostPort("[::1]:80"), std::make_pair(std::string("::1"), std::uint16_t{80}));
  EXPECT_EQ(parseHostPort("localhost:0")->second, 0);
  for (const char* bad : {"", "7420", "host:", ":80", "host:65536", "host:-1", "host:8x"}) {
    auto parsed = parseHostPort(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().code(), Errc::Config) << bad;
  }
}

// A server key as a multiserver address writes it: SSB's base64, without "@" and ".ed25519".
std::string serverKeyBase64() {
  const Bytes seed(32, 7);
  const std::string id = DeviceKey::fromSeed(seed)->publicKey().toSsbId();
  return id.substr(1, id.size() - 1 - std::string_view(".ed25519").size());
}

TEST(TcpNetwork, DialAddressesAreHostPortOrNetHostPortWithAnShsKey) {
  const std::string b64 = serverKeyBase64();
  const std::string hex = PublicKey::parse(b64)->toHex();
  const auto local = std::make_pair(std::string("127.0.0.1"), std::uint16_t{8008});
  EXPECT_EQ(*parseDialAddress("127.0.0.1:8008"), local);
  EXPECT_EQ(*parseDialAddress("net:127.0.0.1:8008~shs:" + b64), local);
  EXPECT_EQ(*parseDialAddress("net:127.0.0.1:8008~shs:" + hex), local);
  EXPECT_EQ(*parseDialAddress("net:[::1]:80~shs:" + b64),
            std::make_pair(std::string("::1"), std::uint16_t{80}));
  for (const std::string& bad : std::vector<std::string>{
           "net:127.0.0.1:8008", "net:127.0.0.1:8008~shs:", "net:127.0.0.1:8008~shs:xyz",
        "net:127.0.0.1:8008~shs:" + hex.substr(2), "net:127.0.0.1~shs:" + b64,
        "net::8008~shs:" + b64, "net:127.0.0.1:8008~shs:" + b64 + ";net:127.0.0.2:8008~shs:" + b64,
        "ws:127.0.0.1:8008~shs:" + b64, "net:127.0.0.1:8008~noauth"}) {
    auto parsed = parseDialAddress(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().code(), Errc::Config) << bad;
  }
  asio::io_context ctx;
  auto refused = TcpNetworkAdapter::create(ctx.get_executor(),
                                           {.connect = {"net:127.0.0.1:1~shs:nokey"}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::Config);
}

TEST(TcpNetwork, DialedStreamsReportTheAddressAsConfiguredAndAcceptedOnesNone) {
  asio::io_context ctx;
  auto server = *TcpNetworkAdapter::create(ctx.get_executor(), {.listen = {"127.0.0.1:0"}});
  const std::string multiserver = "net:" + addressOf(*server) + "~shs:" + serverKeyBase64();
  auto client = *TcpNetworkAdapter::create(
      ctx.get_executor(), {.connect = {multiserver, addressOf(*server)}});
  Collected got;
  server->start(got.sink());
  client->start(got.sink());
  ASSERT_TRUE(runUntil(ctx, [&] { return got.dialed.size() == 2 && got.accepted.size() == 2; }, 5s));
  std::set<std::string> dialed;
  for (const auto& s : got.dialed) {
    dialed.insert(s->dialedAddress());
    EXPECT_EQ(s->remoteAddress(), addressOf(*server));
  }
  EXPECT_EQ(dialed, (std::set<std::string>{multiserver, addressOf(*server)}));
  for (const auto& s : got.accepted) EXPECT_EQ(s->dialedAddress(), "");
  client->stop();
  server->stop();
}

TEST(TcpNetwork, RefusesAListenAddressThatIsNotAnIpOrIsTaken) {
  asio::io_context ctx;
  auto bad = TcpNetworkAdapter::create(ctx.get_executor(), {.listen = {"not-an-ip:1"}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::Config);
  auto first = TcpNetworkAdapter::create(ctx.get_executor(), {.listen = {"127.0.0.1:0"}});
  ASSERT_TRUE(first) << first.error().message();
  auto taken = TcpNetworkAdapter::create(ctx.get_executor(),
                                         {.listen = {addressOf(**first)}});
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code(), Errc::Io);
}

TEST(TcpNetwork, CarriesBytesBothWaysAndReportsTheCloseOfTheOtherEnd) {
  asio::io_context ctx;
  auto server = *TcpNetworkAdapter::create(ctx.get_executor(), {.listen = {"127.0.0.1:0"}});
  auto client = *TcpNetworkAdapter::create(ctx.get_executor(),
                                           {.connect = {addressOf(*server)}});
  Collected got;
  server->start(got.sink());
  client->start(got.sink());
  ASSERT_TRUE(runUntil(ctx, [&] { return got.dialed.size() == 1 && got.accepted.size() == 1; }, 5s));

  auto exchange = [](Stream& from, Stream& to, Bytes data) -> asio::awaitable<Result<Bytes>> {
    auto sent = co_await from.write(data);
    if (!sent) co_return sent.error();
    Bytes back(data.size());
    auto read = co_await readExactly(to, back);
    if (!read) co_return read.error();
    co_return back;
  };
  std::optional<Result<Bytes>> there, back;
  const Bytes ping{1, 2, 3, 4, 5}, pong(70'000, 7);
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    there = co_await exchange(*got.dialed[0], *got.accepted[0], ping);
    back = co_await exchange(*got.accepted[0], *got.dialed[0], pong);
  }, asio::detached);
  ASSERT_TRUE(runUntil(ctx, [&] { return back.has_value(); }, 5s));
  ASSERT_TRUE(*there);
  EXPECT_EQ(**there, ping);
  ASSERT_TRUE(*back);
  EXPECT_EQ(**back, pong);

  std::optional<Result<std::size_t>> afterClose;
  got.accepted[0]->close();
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    std::uint8_t byte = 0;
    afterClose = co_await got.dialed[0]->readSome(std::span(&byte, 1));
  }, asio::detached);
  ASSERT_TRUE(runUntil(ctx, [&] { return afterClose.has_value(); }, 5s));
  ASSERT_FALSE(*afterClose);
  EXPECT_EQ(afterClose->error().code(), Errc::Disconnected);
  client->stop();
  server->stop();
}

TEST(TcpNetwork, ADialerRedialsAfterItsConnectionDrops) {
  asio::io_context ctx;
  auto server = *TcpNetworkAdapter::create(ctx.get_executor(), {.listen = {"127.0.0.1:0"}});
  auto client = *TcpNetworkAdapter::create(
      ctx.get_executor(), {.connect = {addressOf(*server)}, .minBackoff = 20ms, .maxBackoff = 100ms});
  Collected got;
  server->start(got.sink());
  client->start(got.sink());
  ASSERT_TRUE(runUntil(ctx, [&] { return got.dialed.size() == 1; }, 5s));
  got.dialed[0]->close();
  ASSERT_TRUE(runUntil(ctx, [&] { return got.dialed.size() == 2 && got.accepted.size() == 2; }, 5s));
  client->stop();
  server->stop();
}

TEST(TcpNetwork, StopEndsTheDialingOfAnAddressNobodyListensOn) {
  asio::io_context ctx;
  // Bind a port, then free it: nothing listens there.
  std::string address;
  {
    auto probe = *TcpNetworkAdapter::create(ctx.get_executor(), {.listen = {"127.0.0.1:0"}});
    address = addressOf(*probe);
  }
  auto client = *TcpNetworkAdapter::create(
      ctx.get_executor(), {.connect = {address}, .minBackoff = 10ms, .maxBackoff = 20ms});
  Collected got;
  client->start(got.sink());
  runUntil(ctx, [] { return false; }, 100ms);
  EXPECT_TRUE(got.dialed.empty());
  client->stop();
  // With the dial loop stopped, the context runs out of work.
  ctx.restart();
  ctx.run_for(2s);
  EXPECT_TRUE(ctx.stopped());
}

// A free loopback port: bound, then released, so nothing listens there.
std::string unusedAddress(asio::io_context& ctx) {
  auto probe = *TcpNetworkAdapter::create(ctx.get_executor(), {.listen = {"127.0.0.1:0"}});
  return addressOf(*probe);
}

struct DialEvents {
  std::vector<TcpDialEvent> seen;
  std::function<void(const TcpDialEvent&)> sink() {
    return [this](const TcpDialEvent& e) { seen.push_back(e); };
  }
  std::size_t count(TcpDialEvent::Kind kind) const {
    return std::count_if(seen.begin(), seen.end(),
                         [kind](const TcpDialEvent& e) { return e.kind == kind; });
  }
};

TEST(TcpNetwork, ARefusedDialIsReportedWithTheOsErrorAndWhenItRedials) {
  asio::io_context ctx;
  const std::string address = unusedAddress(ctx);
  DialEvents events;
  auto client = *TcpNetworkAdapter::create(
      ctx.get_executor(), {.connect = {address}, .minBackoff = 10ms, .maxBackoff = 40ms,
                           .onDial = events.sink()});
  Collected got;
  client->start(got.sink());
  ASSERT_TRUE(runUntil(ctx, [&] { return events.seen.size() >= 3; }, 5s));
  for (std::size_t i = 0; i < events.seen.size(); ++i) {
    const TcpDialEvent& e = events.seen[i];
    EXPECT_EQ(e.kind, TcpDialEvent::Kind::Failed);
    EXPECT_EQ(e.address, address);
    EXPECT_EQ(e.code, asio::error::connection_refused);
    EXPECT_EQ(e.error, "cannot connect to " + address + ": Connection refused");
    EXPECT_EQ(e.failures, i + 1);  // in a row
    EXPECT_GE(e.retryIn, 10ms);
    EXPECT_LE(e.retryIn, 60ms);  // the longest backoff and its jitter
  }
  EXPECT_TRUE(got.dialed.empty());
  client->stop();
  const std::size_t atStop = events.seen.size();
  runUntil(ctx, [] { return false; }, 100ms);
  EXPECT_EQ(events.seen.size(), atStop);  // nothing is reported after stop()
}

TEST(TcpNetwork, AHostThatDoesNotResolveIsReportedAsSuch) {
  asio::io_context ctx;
  // A label longer than DNS allows (63 bytes): the resolver refuses it without asking anyone,
  // so the test stays off the network. ".invalid" never resolves anyway (RFC 6761).
  const std::string host = std::string(70, 'x') + ".invalid";
  DialEvents events;
  auto client = *TcpNetworkAdapter::create(
      ctx.get_executor(), {.connect = {host + ":7420"}, .minBackoff = 10ms, .maxBackoff = 20ms,
                           .onDial = events.sink()});
  Collected got;
  client->start(got.sink());
  ASSERT_TRUE(runUntil(ctx, [&] { return !events.seen.empty(); }, 5s));
  const TcpDialEvent& e = events.seen.front();
  EXPECT_EQ(e.kind, TcpDialEvent::Kind::Failed);
  EXPECT_TRUE(e.code);
  EXPECT_EQ(e.error.rfind("cannot resolve " + host + ": ", 0), 0u) << e.error;
  EXPECT_GT(e.error.size(), ("cannot resolve " + host + ": ").size());  // the resolver's words
  client->stop();
}

TEST(TcpNetwork, ADialReportsItsConnectionAndItsCloseThenConnectsAgain) {
  asio::io_context ctx;
  auto server = *TcpNetworkAdapter::create(ctx.get_executor(), {.listen = {"127.0.0.1:0"}});
  DialEvents events;
  auto client = *TcpNetworkAdapter::create(
      ctx.get_executor(), {.connect = {addressOf(*server)}, .minBackoff = 20ms,
                           .maxBackoff = 100ms, .onDial = events.sink()});
  Collected got;
  server->start(got.sink());
  client->start(got.sink());
  ASSERT_TRUE(runUntil(ctx, [&] { return got.dialed.size() == 1; }, 5s));
  ASSERT_EQ(events.seen.size(), 1u);
  EXPECT_EQ(events.seen[0].kind, TcpDialEvent::Kind::Connected);
  EXPECT_EQ(events.seen[0].address, addressOf(*server));
  EXPECT_EQ(events.seen[0].failures, 0u);
  got.dialed[0]->close();
  ASSERT_TRUE(runUntil(ctx, [&] { return got.dialed.size() == 2; }, 5s));
  ASSERT_EQ(events.seen.size(), 3u);
  EXPECT_EQ(events.seen[1].kind, TcpDialEvent::Kind::Closed);
  EXPECT_GE(events.seen[1].retryIn, 20ms);
  EXPECT_EQ(events.seen[2].kind, TcpDialEvent::Kind::Connected);
  client->stop();
  server->stop();
}

TEST(TcpNetwork, AReportMayStopTheAdapterAndNoRedialFollows) {
  asio::io_context ctx;
  const std::string address = unusedAddress(ctx);
  std::shared_ptr<TcpNetworkAdapter> client;
  int reports = 0;
  client = *TcpNetworkAdapter::create(
      ctx.get_executor(), {.connect = {address}, .minBackoff = 10ms, .maxBackoff = 20ms,
                           .onDial = [&](const TcpDialEvent&) {
                             ++reports;
                             client->stop();  // a client that gives up at the first failure
                           }});
  Collected got;
  client->start(got.sink());
  ASSERT_TRUE(runUntil(ctx, [&] { return reports > 0; }, 5s));
  ctx.restart();
  ctx.run_for(2s);
  EXPECT_TRUE(ctx.stopped());  // no dial loop is left
  EXPECT_EQ(reports, 1);
}

TEST(TcpNetwork, ADialThatGetsNoAnswerFailsAtTheConnectTimeout) {
  asio::io_context ctx;
  // A listener that never accepts, with a backlog of 0: once one connection waits in its queue,
  // Linux drops further SYNs, so the next connect gets no answer at all.
  asio::ip::tcp::acceptor full(ctx);
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  full.open(endpoint.protocol());
  full.bind(endpoint);
  full.listen(0);
  const std::string address = "127.0.0.1:" + std::to_string(full.local_endpoint().port());
  // Fillers, connected without waiting (Asio's connect would wait for the dropped one forever).
  std::vector<int> queued;
  for (int i = 0; i < 2; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ASSERT_GE(fd, 0);
    const auto* addr = reinterpret_cast<const sockaddr*>(full.local_endpoint().data());
    (void)::connect(fd, addr, static_cast<socklen_t>(full.local_endpoint().size()));
    queued.push_back(fd);
  }
  struct CloseAll {
    std::vector<int>& fds;
    ~CloseAll() {
      for (int fd : fds) ::close(fd);
    }
  } closeAll{queued};
  DialEvents events;
  auto client = *TcpNetworkAdapter::create(
      ctx.get_executor(), {.connect = {address}, .minBackoff = 10ms, .maxBackoff = 20ms,
                           .connectTimeout = 200ms, .onDial = events.sink()});
  Collected got;
  client->start(got.sink());
  ASSERT_TRUE(runUntil(ctx, [&] { return !events.seen.empty(); }, 5s));
  if (events.seen[0].kind == TcpDialEvent::Kind::Connected) {
    client->stop();
    GTEST_SKIP() << "this kernel answered a SYN to a full accept queue";
  }
  EXPECT_EQ(events.seen[0].kind, TcpDialEvent::Kind::Failed);
  EXPECT_EQ(events.seen[0].code, asio::error::timed_out);
  EXPECT_EQ(events.seen[0].error, "cannot connect to " + address + ": no answer within 200 ms");
  client->stop();
}

TEST(TcpNetwork, AddressErrorsSayWhatAnAddressLooksLike) {
  EXPECT_EQ(parseHostPort("localhost").error().message(),
            "'localhost' is not HOST:PORT (e.g. 127.0.0.1:7420 or [::1]:7420)");
  asio::io_context ctx;
  auto named = TcpNetworkAdapter::create(ctx.get_executor(), {.listen = {"localhost:0"}});
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().message(),
            "'localhost:0' is not an IP address and port (listen on e.g. 127.0.0.1:7420, or "
            "0.0.0.0:7420 for every interface)");
}

TEST(TcpNetwork, TwoReposSyncADocumentOverLoopback) {
  RepoHarness h;
  auto server = *TcpNetworkAdapter::create(h.ctx.get_executor(), {.listen = {"127.0.0.1:0"}});
  auto client = *TcpNetworkAdapter::create(h.ctx.get_executor(),
                                           {.connect = {addressOf(*server)}});
  auto& a = h.add("a", [&](RepoOptions& o) { o.network = {server}; });
  auto& b = h.add("b", [&](RepoOptions& o) { o.network = {client}; });
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change([](Transaction& tx) { return putString(tx, "over", "tcp"); }));
  ASSERT_TRUE(h.runUntil([&] {
    auto there = b.repo->findLocal(doc.id());
    return there && readString(*there, "over") == "tcp";
  }, 5s));
  auto there = *b.repo->findLocal(doc.id());
  ASSERT_TRUE(there.change([](Transaction& tx) { return putString(tx, "back", "too"); }));
  ASSERT_TRUE(h.runUntil([&] { return readString(doc, "back") == "too"; }, 5s));
}

}  // namespace
}  // namespace portcullis::testing
