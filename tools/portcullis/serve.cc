// serve.cc — `portcullis serve --config FILE`: an always-on peer over TCP with filesystem
// storage and the configured auth provider.
//
// Config (architecture §8):
//   [network] listen = "IP:PORT" (default 127.0.0.1:7420; port 0 picks a free one),
//             connect = ["HOST:PORT", ...] (servers may dial each other; the provider's
//             dialAddresses(), e.g. document-id's upstreams, are dialed too),
//             handshake-timeout-ms = 10000
//   [storage] path = "./data" (required; relative to the config file's folder)
//   [auth]    provider = "..." (required: a server never runs `open` unless told to) and its
//             table [auth.<provider>]
// Every error in it names the file, the line and the key. When ready it prints one line on
// stdout: where it listens, the address clients dial, its PeerId and provider (JSON with
// --json). Failed dials of `connect` and their redials are logged. SIGINT and SIGTERM flush
// storage, say goodbye to peers and exit 0; SIGHUP calls the provider's reload().

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>

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
  ConfigTable network;       // [network] and [storage], for errors found after parsing
  ConfigTable storageTable;
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
  // The adapter checks these too, but only here can the error name the file, line and key.
  auto hostPort = parseHostPort(out.listen);
  if (!hostPort) return network->error("listen", hostPort.error().message());
  boost::system::error_code ec;
  asio::ip::make_address(hostPort->first, ec);
  if (ec) {
    return network->error("listen", "'" + out.listen + "' is not an IP address and port (listen "
                                    "on e.g. 127.0.0.1:7420, or 0.0.0.0:7420 for every interface)");
  }
  auto connect = network->strings("connect");
  if (!connect) return std::move(connect).error();
  out.connect = std::move(*connect);
  for (std::size_t i = 0; i < out.connect.size(); ++i) {
    if (auto dial = parseDialAddress(out.connect[i]); !dial) {
      return network->error("connect", i, dial.error().message());
    }
  }
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
  out.network = std::move(*network);
  out.storageTable = std::move(*storage);
  // A server authenticates peers only as its config says: no [auth] table is an error here,
  // not the `open` provider a client without a config gets.
  if (!root.contains("auth")) {
    return root.error("auth", "missing: serve needs an explicit auth provider, e.g. [auth] "
                              "provider = \"shared-key\" (also \"document-id\", \"team\", "
                              "a plugin's name, or \"open\" for development without "
                              "authentication)");
  }
  return out;
}

// HOST:PORT of a bound endpoint, with the machine's name for an any-address (0.0.0.0, ::),
// which no client can dial.
std::string dialHostPort(const asio::ip::tcp::endpoint& ep) {
  std::string host = ep.address().to_string();
  if (ep.address().is_unspecified()) {
    boost::system::error_code ec;
    std::string name = asio::ip::host_name(ec);
    if (!ec && !name.empty()) host = std::move(name);
  } else if (ep.address().is_v6()) {
    host = "[" + host + "]";
  }
  return host + ":" + std::to_string(ep.port());
}

// Logs what became of the dials of the `connect` list: failures with the OS's error and when
// the redial is due, connections, and connections that closed. A failure that repeats unchanged
// is logged (at warn) on its 1st, 2nd, 4th, 8th... time and every 64th, and at debug otherwise:
// a peer that stays down would fill the log every 10 s (the longest backoff).
std::function<void(const TcpDialEvent&)> dialLogger() {
  auto lastError = std::make_shared<std::map<std::string, std::string>>();
  return [lastError](const TcpDialEvent& event) {
    const double retry = std::chrono::duration<double>(event.retryIn).count();
    switch (event.kind) {
      case TcpDialEvent::Kind::Failed: {
        std::string& last = (*lastError)[event.address];
        const unsigned n = event.failures;
        const bool news = last != event.error || (n & (n - 1)) == 0 || n % 64 == 0;
        last = event.error;
        spdlog::log(news ? spdlog::level::warn : spdlog::level::debug,
                    "serve: dial {} failed ({} in a row): {}; redialing in {:.1f} s",
                    event.address, n, event.error, retry);
        break;
      }
      case TcpDialEvent::Kind::Connected:
        lastError->erase(event.address);
        spdlog::info("serve: dial {}: connected", event.address);
        break;
      case TcpDialEvent::Kind::Closed:
        spdlog::info("serve: dial {}: connection closed; redialing in {:.1f} s", event.address,
                     retry);
        break;
    }
  };
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

// A server holds a socket per peer and files for its storage, and the soft limit on open files
// is often 1,024: it is raised to the hard limit, the bound the administrator set.
void raiseOpenFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t soft = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    spdlog::warn("serve: cannot raise the open-file limit from {}: {}", soft, std::strerror(errno));
  }
}

}  // namespace

int runServe(const ServeArgs& args) {
  setupLogging(args.logLevel, "info");
  raiseOpenFileLimit();
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
  TcpNetworkOptions netOptions{.listen = {serveConfig->listen}, .connect = serveConfig->connect};
  netOptions.onDial = dialLogger();
  auto net = TcpNetworkAdapter::create(ctx.get_executor(), std::move(netOptions));
  if (!net) {
    // [network] was checked: what is left is the listener (a port in use, an address this
    // machine does not have) or an address the provider asked to dial.
    if (net.error().code() == Errc::Config) {
      return failWith(kExitUsage, config->error("auth", "an address the provider dials: " +
                                                            net.error().message()).message());
    }
    return failWith(kExitFailed,
                    serveConfig->network.error("listen", net.error().message()).message());
  }
  auto store = FsStorageAdapter::open(serveConfig->storage);
  if (!store) {
    return failWith(kExitFailed,
                    serveConfig->storageTable
                        .error("path", serveConfig->storage.string() + ": " +
                                           store.error().message())
                        .message());
  }

  RepoOptions options;
  options.network = {*net};
  options.storage = std::shared_ptr<StorageAdapter>(std::move(*store));
  options.auth = *provider;
  options.handshakeTimeout = serveConfig->handshakeTimeout;
  auto repo = std::make_unique<Repo>(ctx.get_executor(), std::move(options));

  // Where it listens, and the address a client passes to --connect, in the provider's form (with
  // the key to pin, for those whose dialer needs it).
  const std::string providerName((*provider)->name());
  const std::string peer = repo->peerId().str();
  std::vector<std::string> listening;
  std::vector<std::string> dial;
  for (const auto& ep : (*net)->listeningOn()) {
    listening.push_back(ep.address().is_v6() ? "[" + ep.address().to_string() + "]:" +
                                                   std::to_string(ep.port())
                                             : ep.address().to_string() + ":" +
                                                   std::to_string(ep.port()));
    dial.push_back((*provider)->advertisedAddress(dialHostPort(ep)));
  }
  if (args.json) {
    nlohmann::json ready{{"listening", listening}, {"dial", dial}, {"peer", peer},
                         {"provider", providerName}};
    std::printf("%s\n", ready.dump().c_str());
  } else {
    std::printf("portcullis serve: listening on %s as %s (auth: %s); clients dial %s\n",
                listening.front().c_str(), peer.c_str(), providerName.c_str(),
                dial.front().c_str());
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
