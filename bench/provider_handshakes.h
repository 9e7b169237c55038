// bench/provider_handshakes.h — handshakes/s of two AuthProviders called directly, over fresh
// memory links on one io_context: how the provider benchmarks compare a provider's handshake
// with shared-key's in the same run. Its parts serve other exchanges over such links too (the
// online provider's logins): the links, the loop that runs one exchange to its end, and a
// provider made from a config text.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "memory_network.h"
#include "portcullis/auth_provider.h"
#include "portcullis/config.h"
#include "portcullis/provider_registry.h"
#include "portcullis/secret_handshake.h"
#include "shared_key.h"

namespace portcullis::bench {

struct ProviderPair {
  std::shared_ptr<AuthProvider> dialer;
  std::shared_ptr<AuthProvider> acceptor;
  std::string dialedAddress;  // where the acceptor's key must be pinned: "net:hs-a:1~shs:KEY"
};

// The address a pair's dialer uses for an acceptor of key `acceptor` (the memory network ignores
// everything but the key).
inline std::string pinnedAddress(const DeviceKey& acceptor) {
  return "net:hs-a:1~shs:" + acceptor.publicKeyHex();
}

inline asio::awaitable<void> authenticateInto(std::shared_ptr<AuthProvider> p,
                                              std::unique_ptr<Stream> stream, Side side,
                                              std::optional<Result<Session>>& out) {
  out.emplace(co_await p->authenticate(std::move(stream), side));
}

// The two ends of fresh memory links between two adapters on one io_context. Not movable: the
// adapters' sinks point into it.
class MemoryLinks final {
 public:
  explicit MemoryLinks(asio::io_context& ctx)
      : dialer_(ctx.get_executor(), "hs-d"), acceptor_(ctx.get_executor(), "hs-a") {
    dialer_.start([this](std::unique_ptr<Stream> s, Side) { dialerEnd_ = std::move(s); });
    acceptor_.start([this](std::unique_ptr<Stream> s, Side) { acceptorEnd_ = std::move(s); });
  }
  MemoryLinks(const MemoryLinks&) = delete;
  MemoryLinks& operator=(const MemoryLinks&) = delete;

  struct Ends {
    std::unique_ptr<Stream> dialer;
    std::unique_ptr<Stream> acceptor;
  };
  // A new link, not recorded; the dialer's end reports `dialedAddress`.
  Ends open(const std::string& dialedAddress) {
    connect(dialer_, acceptor_,
            {.maxBufferedBytes = 1u << 20, .record = false, .dialedAddress = dialedAddress});
    return {std::move(dialerEnd_), std::move(acceptorEnd_)};
  }

 private:
  MemoryNetworkAdapter dialer_, acceptor_;
  std::unique_ptr<Stream> dialerEnd_, acceptorEnd_;
};

// Runs `ctx` a handler at a time until `done()`; a poll that ran out of work stops the context,
// so a stopped one is restarted.
inline void runUntil(asio::io_context& ctx, const std::function<bool()>& done) {
  while (!done()) {
    if (ctx.stopped()) ctx.restart();
    ctx.run_one();
  }
}

// Lets what the last exchange left behind (the sessions' readers ending) run for 2 ms.
inline void settle(asio::io_context& ctx) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
  while (std::chrono::steady_clock::now() < end) {
    ctx.run_one_for(std::chrono::milliseconds(1));
    if (ctx.stopped()) ctx.restart();
  }
}

// `count` sequential handshakes over fresh memory links; seconds. `fail` must not return.
inline double runHandshakes(asio::io_context& ctx, const ProviderPair& pair, std::size_t count,
                            const std::function<void(const std::string&)>& fail) {
  MemoryLinks links(ctx);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    MemoryLinks::Ends ends = links.open(pair.dialedAddress);
    std::optional<Result<Session>> d, a;
    asio::co_spawn(ctx, authenticateInto(pair.dialer, std::move(ends.dialer), Side::Dialer, d),
                   asio::detached);
    asio::co_spawn(ctx,
                   authenticateInto(pair.acceptor, std::move(ends.acceptor), Side::Acceptor, a),
                   asio::detached);
    runUntil(ctx, [&] { return d && a; });
    if (!*d) fail("dialer: " + d->error().message());
    if (!*a) fail("acceptor: " + a->error().message());
    (*d)->channel->close();
    (*a)->channel->close();
    d.reset();
    a.reset();
    ctx.poll();  // the sessions' readers end
    if (ctx.stopped()) ctx.restart();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  settle(ctx);
  return s;
}

// The provider that `config` (a whole config file, parsed as if it were DIR/TAG.toml, so that its
// relative paths are in `dir`) names, made as a deployment makes it, from a registry that `add`
// fills.
inline std::shared_ptr<AuthProvider> providerFromConfig(
    const std::filesystem::path& dir, const std::string& tag, const std::string& config,
    const std::function<Result<void>(ProviderRegistry&)>& add,
    const std::function<void(const std::string&)>& fail) {
  ProviderRegistry registry;
  if (auto ok = add(registry); !ok) fail("register: " + ok.error().message());
  auto root = parseConfig(config, dir / (tag + ".toml"));
  if (!root) fail(root.error().message());
  auto made = registry.createFromConfig(*root, {});
  if (!made) fail(tag + " provider: " + made.error().message());
  return std::shared_ptr<AuthProvider>(std::move(*made));
}

// A shared-key provider with `key` as its identity (saved in `dir` as TAG.key) and the network
// key `networkKeyHex`, made from a config as a deployment makes it.
inline std::shared_ptr<AuthProvider> sharedKeyProvider(
    const std::filesystem::path& dir, const std::string& tag, const DeviceKey& key,
    const std::string& networkKeyHex, const std::function<void(const std::string&)>& fail) {
  const auto keyFile = dir / (tag + ".key");
  if (auto ok = key.save(keyFile.string()); !ok) fail(ok.error().message());
  const std::string text = "[auth]\nprovider = \"shared-key\"\n[auth.shared-key]\nnetwork-key = \"" +
                           networkKeyHex + "\"\nidentity = \"" + keyFile.string() + "\"\n";
  return providerFromConfig(dir, tag, text, sharedkey::registerProvider, fail);
}

}  // namespace portcullis::bench
