// online_bench — the `online` provider on the wire (providers/online). Prints one JSON line per
// figure (bench/README.md, "online_bench"):
//   online.handshakes   certificate handshakes/s between two peers (the secret handshake, then
//                       each side's hello with its certificate, checked against the service key
//                       and the revocation list), against shared-key's handshakes/s in the same
//                       run, providers called directly over the memory network, alternating
//                       blocks; and the ratio (goal >= 0.8)
//   online.logins       logins/s at an identity service whose login provider is a webhook that
//                       answers at once (a loopback HTTP server on its own thread): a device's
//                       online::login() over a fresh memory link, the service's authenticate()
//                       validating the token with one POST and signing a certificate; against
//                       raw HTTP round trips/s to the same server (a new connection each, as the
//                       webhook client makes them), alternating blocks; and the ratio (goal >= 0.5);
//                       then the floor, one shared-key handshake plus one raw POST as measured in
//                       this run (a login is both), and the ratio to it
//
// Usage: online_bench
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http_loopback.h"
#include "json_line.h"
#include "online.h"
#include "online_provider.h"
#include "portcullis/logging.h"
#include "provider_handshakes.h"

namespace {

using namespace portcullis;
using bench::JsonLine;
using bench::ProviderPair;

constexpr double kHandshakeRatioTarget = 0.8;
constexpr std::size_t kHandshakeBlock = 100;  // handshakes per timed block, alternating providers
constexpr std::size_t kHandshakeRounds = 5;
constexpr double kLoginRatioTarget = 0.5;
constexpr std::size_t kLoginBlock = 200;  // logins (or raw POSTs) per timed block
constexpr std::size_t kLoginRounds = 5;
constexpr std::string_view kApp = "bench.portcullis.online";
// The webhook's answer to every login: allowed, for an hour.
constexpr std::string_view kWebhookAnswer =
    R"({"authenticate":true,"userId":"bench","expirationSeconds":3600,"roles":["member"],)"
    R"("permissions":{"read":["*"],"write":["*"]}})";
const std::string kNetworkKeyHex(64, 'a');

std::filesystem::path gRunDir;

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "online_bench: FAILED: %s\n", message.c_str());
  if (!gRunDir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(gRunDir, ignored);
  }
  std::exit(EXIT_FAILURE);
}

// An online provider for a fresh device key with a day's certificate for every document.
std::shared_ptr<AuthProvider> onlineProvider(const DeviceKey& service,
                                             std::shared_ptr<const DeviceKey> key) {
  const online::Certificate c{.appId = std::string(kApp),
                              .peerKey = key->publicKey().bytes(),
                              .userId = "bench",
                              .roles = {"member"},
                              .permissions = {.read = {"*"}, .write = {"*"}},
                              .issuedAt = online::unixNow() - 60,
                              .expiresAt = online::unixNow() + 86'400,
                              .serial = randombytes_random()};
  online::OnlineOptions options;
  options.appId = std::string(kApp);
  options.identity = std::move(key);
  options.serviceKeys = {service.publicKey().bytes()};
  options.certificate = online::signCertificate(c, service);
  auto made = online::makeOnlineProvider(std::move(options));
  if (!made) fail("online provider: " + made.error().message());
  return std::shared_ptr<AuthProvider>(std::move(*made));
}

// What alternating timed blocks of two workloads, a and b, add up to.
struct Alternated {
  double aSeconds = 0;
  double bSeconds = 0;
  double minRound = 1e9;  // of a's rate over b's, per round
  double maxRound = 0;
};

// `rounds` rounds of one block of `a`, then one of `b`; each returns the seconds it took for the
// same number of operations.
Alternated alternate(std::size_t rounds, const std::function<double()>& a,
                     const std::function<double()>& b) {
  Alternated out;
  for (std::size_t r = 0; r < rounds; ++r) {
    const double as = a();
    const double bs = b();
    out.aSeconds += as;
    out.bSeconds += bs;
    out.minRound = std::min(out.minRound, bs / as);
    out.maxRound = std::max(out.maxRound, bs / as);
  }
  return out;
}

// One side of a figure's comparison, as its JSON line names it: {"provider": "online"} or
// {"impl": "raw-post"}, and the unit of its rate.
struct Named {
  std::string_view key;
  std::string_view name;
  std::string_view unit;
};

// A figure's three lines: a's rate, b's rate (n operations each) and a's over b's against
// `target`.
void printAgainst(std::string_view bench, std::size_t n, const Named& a, const Named& b,
                  const Alternated& t, double target) {
  const double aRate = static_cast<double>(n) / t.aSeconds;
  const double bRate = static_cast<double>(n) / t.bSeconds;
  for (const auto& [side, rate] : {std::pair{a, aRate}, std::pair{b, bRate}}) {
    JsonLine(bench)
        .str(side.key, side.name)
        .integer("n", static_cast<long long>(n))
        .num("value", rate, 1)
        .str("unit", side.unit)
        .print();
  }
  const double ratio = aRate / bRate;
  JsonLine(bench)
      .str("impl", "ratio " + std::string(a.name) + "/" + std::string(b.name))
      .num("value", ratio, 2)
      .str("unit", "x")
      .num("min_round", t.minRound, 2)
      .num("max_round", t.maxRound, 2)
      .num("target", target, 1)
      .flag("met", ratio >= target)
      .print();
}

// Returns the seconds of one shared-key handshake, the logins figure's floor.
double figureHandshakes() {
  asio::io_context ctx;
  auto onFail = [](const std::string& m) { fail(m); };
  const DeviceKey service = DeviceKey::generate();
  auto acceptorKey = std::make_shared<const DeviceKey>(DeviceKey::generate());
  const ProviderPair onlinePair{
      onlineProvider(service, std::make_shared<const DeviceKey>(DeviceKey::generate())),
      onlineProvider(service, acceptorKey), bench::pinnedAddress(*acceptorKey)};
  const DeviceKey shsServer = DeviceKey::generate();
  const ProviderPair shsPair{
      bench::sharedKeyProvider(gRunDir, "shs-client", DeviceKey::generate(), kNetworkKeyHex,
                               onFail),
      bench::sharedKeyProvider(gRunDir, "shs-server", shsServer, kNetworkKeyHex, onFail),
      bench::pinnedAddress(shsServer)};
  bench::runHandshakes(ctx, onlinePair, 20, onFail);  // warm-up
  bench::runHandshakes(ctx, shsPair, 20, onFail);
  const Alternated t = alternate(
      kHandshakeRounds,
      [&] { return bench::runHandshakes(ctx, onlinePair, kHandshakeBlock, onFail); },
      [&] { return bench::runHandshakes(ctx, shsPair, kHandshakeBlock, onFail); });
  printAgainst("online.handshakes", kHandshakeBlock * kHandshakeRounds,
               {"provider", "online", "handshakes/s"}, {"provider", "shared-key", "handshakes/s"},
               t, kHandshakeRatioTarget);
  return t.bSeconds / static_cast<double>(kHandshakeBlock * kHandshakeRounds);
}

// An identity service whose one login provider, "hook", is the webhook at `url`, made from a
// config as a deployment makes it; its signing key is `service` and its node key `node`.
std::shared_ptr<AuthProvider> identityService(const DeviceKey& service, const DeviceKey& node,
                                              const std::string& url) {
  if (auto ok = service.save((gRunDir / "service.key").string()); !ok) {
    fail(ok.error().message());
  }
  if (auto ok = node.save((gRunDir / "service-node.key").string()); !ok) {
    fail(ok.error().message());
  }
  const std::string text = "[auth]\nprovider = \"online\"\n"
                           "[auth.online]\napp-id = \"" + std::string(kApp) + "\"\n"
                           "identity = \"service-node.key\"\n"
                           "service-keys = [\"" + service.publicKeyHex() + "\"]\n"
                           "[auth.online.service]\nsigning-key = \"service.key\"\n"
                           "[auth.online.service.login.hook]\ntype = \"webhook\"\n"
                           "url = \"" + url + "\"\ntimeout = 5000\ncache = 0\n";
  return bench::providerFromConfig(gRunDir, "service", text, online::registerProvider,
                                   [](const std::string& m) { fail(m); });
}

// What the logins figure holds fixed: the service, how a device reaches it and whom it trusts.
struct LoginSetup {
  std::shared_ptr<AuthProvider> service;
  std::string dialedAddress;  // pins the service node's key
  std::vector<online::Ed25519Key> serviceKeys;
  std::vector<std::shared_ptr<const DeviceKey>> devices;  // logged in in turn
};

// Device i's login (one of setup.devices in turn) into `out`; `setup` and `out` must outlive it.
asio::awaitable<void> loginInto(const LoginSetup& setup, std::size_t i,
                                std::unique_ptr<Stream> stream,
                                std::optional<Result<online::LoginResult>>& out) {
  out.emplace(co_await online::login(std::move(stream), std::string(kApp),
                                     setup.devices[i % setup.devices.size()], setup.serviceKeys,
                                     "hook", "bench-token-" + std::to_string(i)));
}

// `count` sequential logins, each over a fresh memory link; seconds. Each must bring back a
// certificate, and the service's authenticate() must end as a served login does.
double runLogins(asio::io_context& ctx, const LoginSetup& setup, std::size_t count) {
  bench::MemoryLinks links(ctx);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    bench::MemoryLinks::Ends ends = links.open(setup.dialedAddress);
    std::optional<Result<online::LoginResult>> device;
    std::optional<Result<Session>> service;
    asio::co_spawn(ctx, loginInto(setup, i, std::move(ends.dialer), device),
                   bench::exitOnException);
    asio::co_spawn(ctx,
                   bench::authenticateInto(setup.service, std::move(ends.acceptor),
                                           Side::Acceptor, service),
                   bench::exitOnException);
    bench::runUntil(ctx, [&] { return device && service; });
    if (!*device) fail("login: " + device->error().message());
    if (*service) fail("the service opened a session for a login");
    if (service->error().message().find("login served") == std::string::npos) {
      fail("service: " + service->error().message());
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bench::settle(ctx);
  return s;
}

// `count` raw POSTs of a login's JSON to `server`, each on a new connection; seconds.
double runRawPosts(asio::io_context& ctx, const bench::HttpLoopbackServer& server,
                   const std::string& body, std::size_t count) {
  std::optional<std::size_t> notOk;
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(ctx, bench::postRounds(server.endpoint(), "/hook", body, count),
                 [&](std::exception_ptr e, std::size_t n) {
                   bench::exitOnException(e);
                   notOk = n;
                 });
  bench::runUntil(ctx, [&] { return notOk.has_value(); });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (*notOk != 0) fail("raw POST: " + std::to_string(*notOk) + " answers were not 200");
  return s;
}

// `shsSeconds`: one shared-key handshake, measured in this run. A login is a secret handshake and
// a webhook call, so it cannot beat one handshake plus one raw POST: that sum is its floor.
void figureLogins(double shsSeconds) {
  const bench::HttpLoopbackServer server{std::string(kWebhookAnswer)};
  asio::io_context ctx;
  const DeviceKey service = DeviceKey::generate();
  const DeviceKey node = DeviceKey::generate();
  LoginSetup setup{.service = identityService(service, node, server.url("/hook")),
                   .dialedAddress = bench::pinnedAddress(node),
                   .serviceKeys = {service.publicKey().bytes()},
                   .devices = {}};
  for (std::size_t i = 0; i < kLoginBlock; ++i) {
    setup.devices.push_back(std::make_shared<const DeviceKey>(DeviceKey::generate()));
  }
  const std::string body = bench::webhookLoginBody(kApp, "hook", "bench-token-0",
                                                   setup.devices[0]->publicKeyHex());
  runLogins(ctx, setup, 20);  // warm-up
  runRawPosts(ctx, server, body, 20);
  const Alternated t =
      alternate(kLoginRounds, [&] { return runLogins(ctx, setup, kLoginBlock); },
                [&] { return runRawPosts(ctx, server, body, kLoginBlock); });
  const std::size_t n = kLoginBlock * kLoginRounds;
  printAgainst("online.logins", n, {"provider", "online", "logins/s"},
               {"impl", "raw-post", "round trips/s"}, t, kLoginRatioTarget);
  const double floorRate = 1.0 / (shsSeconds + t.bSeconds / static_cast<double>(n));
  JsonLine("online.logins")
      .str("impl", "floor: one shared-key handshake + one raw POST")
      .num("value", floorRate, 1)
      .str("unit", "logins/s")
      .print();
  JsonLine("online.logins")
      .str("impl", "ratio online/floor")
      .num("value", (static_cast<double>(n) / t.aSeconds) / floorRate, 2)
      .str("unit", "x")
      .print();
}

}  // namespace

int main() {
  if (sodium_init() < 0) fail("sodium_init");
  std::string tmpl = (std::filesystem::temp_directory_path() / "online-bench-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) fail("mkdtemp: " + std::string(std::strerror(errno)));
  gRunDir = tmpl;
  // The service logs each login at Info; a line on stderr per login is not what is measured.
  setLogLevel(LogLevel::Warn);
  const double shsSeconds = figureHandshakes();
  figureLogins(shsSeconds);
  std::error_code ignored;
  std::filesystem::remove_all(gRunDir, ignored);
  return 0;
}
