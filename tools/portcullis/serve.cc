// serve.cc — `portcullis serve --config FILE`: an always-on peer over TCP with filesystem
// storage and the configured auth provider.
//
// Config (DESIGN §7):
//   [network] listen = "HOST:PORT" (default 127.0.0.1:7420; port 0 picks a free one),
//             connect = ["HOST:PORT", ...] (servers may dial each other; the provider's
//             dialAddresses(), e.g. document-id's upstreams, are dialed too),
//             handshake-timeout-ms = 10000
//   [storage] path = "./data" (required; relative to the config file's folder)
//   [auth]    provider = "..." and its table [auth.<provider>]
// When ready it prints one line on stdout: where it listens and its PeerId (JSON with --json).
// SIGINT and SIGTERM flush storage, say goodbye to peers and exit 0; SIGHUP calls the
// provider's reload().

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>

#include "fs_storage.h"
#include "tcp_network.h"
#include "tool.h"

namespace portcullis::tool {

namespace {

struct ServeConfig {
  std::string listen = "127.0.0.1:7420";
  std::vector<std::string> connect;
  std::chrono::milliseconds handshakeTimeout{10'000};
  std::filesystem::path storage;
};

Result<ServeConfig> parseServeConfig(const ConfigTable& root) {
  ServeConfig out;
  auto network = root.table("network");
  if (!network) return std::move(network).error();
  if (auto ok = network->expectKeys({"listen", "connect", "handshake-timeout-ms"}); !ok) {
    return std::move(ok).error();
  }
  auto listen = network->string("listen");
  if (!listen) return std::move(listen).error();
  if (*listen) out.listen = **listen;
  auto connect = network->strings("connect");
  if (!connect) return std::move(connect).error();
  out.connect = std::move(*connect);
  auto timeout = network->integer("handshake-timeout-ms");
  if (!timeout) return std::move(timeout).error();
  if (*timeout) {
    if (**timeout < 10 || **timeout > 600'000) {
      return network->error("handshake-timeout-ms", "expected 10 to 600000");
    }
    out.handshakeTimeout = std::chrono::milliseconds(**timeout);
  }
  auto storage = root.table("storage");
  if (!storage) return std::move(storage).error();
  if (auto ok = storage->expectKeys({"path"}); !ok) return std::move(ok).error();
  auto path = storage->path("path");
  if (!path) return std::move(path).error();
  if (!*path) return storage->error("path", "missing (required: where documents are stored)");
  out.storage = std::move(**path);
  return out;
}

// Waits for SIGINT/SIGTERM, then shuts the Repo down (flush, goodbye) and stops the loop.
asio::awaitable<void> stopOnSignal(asio::signal_set& signals, Repo& repo, asio::io_context& ctx,
                                   int& exitCode) {
  boost::system::error_code ec;
  int signal = co_await signals.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  spdlog::info("serve: signal {}: flushing storage and closing sessions", signal);
  auto done = co_await repo.shutdown();
  if (!done) {
    printError("shutdown: " + done.error().message());
    exitCode = kExitFailed;
  }
  ctx.stop();
}

asio::awaitable<void> reloadOnHangup(asio::signal_set& hangup, AuthProvider& provider) {
  for (;;) {
    boost::system::error_code ec;
    co_await hangup.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    auto reloaded = provider.reload();
    if (reloaded) {
      spdlog::info("serve: SIGHUP: auth provider '{}' reloaded", provider.name());
    } else {
      spdlog::error("serve: SIGHUP: reload failed, keeping the previous state: {}",
                    reloaded.error().message());
    }
  }
}

}  // namespace

int runServe(const ServeArgs& args) {
  setupLogging(args.logLevel, "info");
  auto config = loadNodeConfig(args.config);
  if (!config) return failWith(kExitUsage, config.error().message());
  auto serveConfig = parseServeConfig(*config);
  if (!serveConfig) return failWith(kExitUsage, serveConfig.error().message());
  auto provider = providerFromConfig(*config);
  if (!provider) return failWith(kExitUsage, provider.error().message());

  // The provider may need servers dialed too (document-id's upstreams).
  for (std::string& address : (*provider)->dialAddresses()) {
    if (std::find(serveConfig->connect.begin(), serveConfig->connect.end(), address) ==
        serveConfig->connect.end()) {
      serveConfig->connect.push_back(std::move(address));
    }
  }
  asio::io_context ctx;
  auto net = TcpNetworkAdapter::create(
      ctx.get_executor(),
      TcpNetworkOptions{.listen = {serveConfig->listen}, .connect = serveConfig->connect});
  if (!net) {
    return failWith(net.error().code() == Errc::Config ? kExitUsage : kExitFailed,
                    net.error().message());
  }
  auto store = FsStorageAdapter::open(serveConfig->storage);
  if (!store) return failWith(kExitFailed, "storage: " + store.error().message());

  RepoOptions options;
  options.network = {*net};
  options.storage = std::shared_ptr<StorageAdapter>(std::move(*store));
  options.auth = *provider;
  options.handshakeTimeout = serveConfig->handshakeTimeout;
  auto repo = std::make_unique<Repo>(ctx.get_executor(), std::move(options));

  std::vector<std::string> listening;
  for (const auto& ep : (*net)->listeningOn()) {
    listening.push_back(ep.address().is_v6() ? "[" + ep.address().to_string() + "]:" +
                                                   std::to_string(ep.port())
                                             : ep.address().to_string() + ":" +
                                                   std::to_string(ep.port()));
  }
  if (args.json) {
    nlohmann::json ready{{"listening", listening}, {"peer", repo->peerId().str()},
                         {"provider", (*provider)->name()}};
    std::printf("%s\n", ready.dump().c_str());
  } else {
    std::printf("portcullis serve: listening on %s as %s (auth: %s)\n", listening.front().c_str(),
                repo->peerId().str().c_str(), std::string((*provider)->name()).c_str());
  }
  std::fflush(stdout);

  int exitCode = kExitOk;
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  asio::signal_set hangup(ctx, SIGHUP);
  asio::co_spawn(ctx, stopOnSignal(signals, *repo, ctx, exitCode), asio::detached);
  asio::co_spawn(ctx, reloadOnHangup(hangup, **provider), asio::detached);
  ctx.run();
  repo.reset();
  return exitCode;
}

}  // namespace portcullis::tool
