// online_webhook_bench — the online provider's webhook client (providers/online/webhook.h) against
// the cheapest POST that does the same over the wire, both to one loopback HTTP server (its own
// thread, as another process would be) that answers at once. Prints one JSON line per figure
// (bench/README.md, "online_webhook_bench"):
//   online.webhook_verify         WebhookClient::verify() with the cache off: a new connection
//                                 per call, the login written as JSON, the answer read, parsed
//                                 and checked (calls/s)
//   online.webhook_raw_post       a login's request body (the first call's, every time) with a
//                                 minimal Beast client (bench/http_loopback.h): connect, write,
//                                 read the response, close; nothing built or parsed beyond HTTP
//                                 (calls/s)
//   online.webhook_verify, impl "ratio verify/raw"   verify's rate over raw's (x; 1 is the floor)
//   online.webhook_verify_cached  verify() answered from the cache (calls/s)
// Each rate is the median of --reps interleaved runs of --n calls (defaults 2000 and 3).
//
// Usage: online_webhook_bench [--n N] [--reps R]
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http_loopback.h"
#include "json_line.h"
#include "portcullis/asio.h"
#include "webhook.h"

namespace {

using namespace portcullis;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr const char* kAnswer =
    R"({"authenticate":true,"userId":"alice","expirationSeconds":3600,"roles":["reader"],)"
    R"("permissions":{"read":["*"],"write":[]},"clientInfo":{"plan":"pro"}})";

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "online_webhook_bench: %s\n", message.c_str());
  std::exit(1);
}

online::LoginRequest login(std::size_t i) {
  return online::LoginRequest{.appId = "bench-app",
                              .provider = "bench-sso",
                              .token = "eyJhbGciOiJFUzI1NiJ9.bench-token-" + std::to_string(i),
                              .peerKey = std::string(64, 'a')};
}

// n calls of verify(); fails the run on any answer but an allowing one.
asio::awaitable<void> verifyLoop(online::WebhookClient& client, std::size_t n, bool sameLogin) {
  for (std::size_t i = 0; i < n; ++i) {
    auto call = client.verify(login(sameLogin ? 0 : i));
    auto answer = co_await std::move(call);
    if (!answer) die("verify: " + answer.error().message());
    if (!answer->authenticate) die("verify: denied");
  }
}

// n raw POSTs of the body verify sends for login(0), each on a new connection.
asio::awaitable<void> rawLoop(tcp::endpoint endpoint, std::size_t n) {
  const online::LoginRequest l = login(0);
  const std::size_t notOk = co_await bench::postRounds(
      endpoint, "/hook", bench::webhookLoginBody(l.appId, l.provider, l.token, l.peerKey), n);
  if (notOk != 0) die("raw: not 200");
}

// Calls per second of `loop` run to its end on `ctx`.
double rate(asio::io_context& ctx, asio::awaitable<void> loop, std::size_t n) {
  ctx.restart();
  const auto start = Clock::now();
  asio::co_spawn(ctx, std::move(loop), bench::exitOnException);
  ctx.run();
  return static_cast<double>(n) / std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void print(const char* bench, const char* impl, std::size_t n, double value, const char* unit,
           int decimals = 1) {
  bench::JsonLine(bench)
      .str("provider", "online")
      .str("impl", impl)
      .integer("n", static_cast<long long>(n))
      .num("value", value, decimals)
      .str("unit", unit)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) die("sodium_init failed");
  std::size_t n = 2000;
  std::size_t reps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--n" && i + 1 < argc) {
      n = std::max<std::size_t>(1, std::strtoul(argv[++i], nullptr, 10));
    } else if (arg == "--reps" && i + 1 < argc) {
      reps = std::max<std::size_t>(1, std::strtoul(argv[++i], nullptr, 10));
    } else {
      die("usage: online_webhook_bench [--n N] [--reps R]");
    }
  }

  auto server = std::make_optional<bench::HttpLoopbackServer>(kAnswer);
  const tcp::endpoint endpoint = server->endpoint();

  asio::io_context ctx;
  const std::string url = server->url("/hook");
  auto uncached = online::WebhookClient::create(ctx.get_executor(), {.url = url});
  auto cached = online::WebhookClient::create(
      ctx.get_executor(), {.url = url, .cacheTime = std::chrono::seconds(3600)});
  if (!uncached || !cached) die("cannot make the clients");

  // Warm-up: connections, the resolver thread, allocations.
  (void)rate(ctx, verifyLoop(**uncached, 100, false), 100);
  (void)rate(ctx, rawLoop(endpoint, 100), 100);

  std::vector<double> verifyRates, rawRates, cachedRates;
  for (std::size_t r = 0; r < reps; ++r) {
    verifyRates.push_back(rate(ctx, verifyLoop(**uncached, n, false), n));
    rawRates.push_back(rate(ctx, rawLoop(endpoint, n), n));
  }
  (void)rate(ctx, verifyLoop(**cached, 1, true), 1);  // the one request it sends
  for (std::size_t r = 0; r < reps; ++r) {
    cachedRates.push_back(rate(ctx, verifyLoop(**cached, n * 10, true), n * 10));
  }
  const std::uint64_t sent = (*cached)->requestsSent();

  server.reset();
  if (sent != 1) die("the cached client sent " + std::to_string(sent) + " requests, not 1");

  const double verify = median(verifyRates);
  const double raw = median(rawRates);
  print("online.webhook_verify", "portcullis", n, verify, "calls/s");
  print("online.webhook_raw_post", "beast", n, raw, "calls/s");
  print("online.webhook_verify", "ratio verify/raw", n, verify / raw, "x", 3);
  print("online.webhook_verify_cached", "portcullis", n * 10, median(cachedRates), "calls/s");
  return 0;
}
