// quickstart.cc — the program of docs/embedding.md: a server and a client Repo in one process,
// each with filesystem storage, the TCP adapter on 127.0.0.1 and an auth provider chosen by its
// TOML config. The client waits for the network, finds the server's document, subscribes to it
// and sees the server's next change arrive with the paths it touched; the server sees the
// client's answer. Exits 0 when all of that happened, 1 on any error or after 20 seconds.
//
// Usage: quickstart [FOLDER]   (default: a new temporary folder, removed at the end)
#include <portcullis/adapters/fs_storage.h>
#include <portcullis/adapters/tcp_network.h>
#include <portcullis/asio.h>
#include <portcullis/config.h>
#include <portcullis/logging.h>
#include <portcullis/provider_registry.h>
#include <portcullis/providers/shared_key.h>
#include <portcullis/repo.h>
#include <portcullis/secret_handshake.h>
#include <sodium.h>
#include <stdlib.h>  // mkdtemp

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <variant>

namespace {

namespace asio = portcullis::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using portcullis::DocHandle;
using portcullis::Error;
using portcullis::Errc;
using portcullis::ObjId;
using portcullis::Result;

constexpr auto kDeadline = 20s;

// One node: its adapters and its Repo, which must be destroyed first.
struct Node {
  std::shared_ptr<portcullis::TcpNetworkAdapter> tcp;
  std::shared_ptr<portcullis::AuthProvider> auth;
  std::unique_ptr<portcullis::Repo> repo;
};

// Writes `dir`/node.toml naming the provider and its settings, as a deployment would, and a
// device key for it; then builds the node from the file.
Result<Node> makeNode(asio::io_context& ctx, portcullis::ProviderRegistry& registry,
                      const fs::path& dir, const std::string& networkKeyHex,
                      portcullis::TcpNetworkOptions tcpOptions) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error(Errc::Io, dir.string() + ": " + ec.message());
  auto device = portcullis::DeviceKey::generate();
  if (auto saved = device.save((dir / "device.key").string()); !saved) return saved.error();
  std::ofstream(dir / "node.toml") << "[auth]\n"
                                   << "provider = \"shared-key\"\n"
                                   << "[auth.shared-key]\n"
                                   << "network-key = \"" << networkKeyHex << "\"\n"
                                   << "identity = \"device.key\"\n";

  auto config = portcullis::loadConfigFile(dir / "node.toml");
  if (!config) return config.error();
  // A name the registry lacks would be loaded as a plugin from this search path.
  auto auth = registry.createFromConfig(*config, portcullis::defaultPluginSearchPath());
  if (!auth) return auth.error();
  auto storage = portcullis::FsStorageAdapter::open(dir / "data");
  if (!storage) return storage.error();
  auto tcp = portcullis::TcpNetworkAdapter::create(ctx.get_executor(), std::move(tcpOptions));
  if (!tcp) return tcp.error();

  Node node{.tcp = *tcp, .auth = std::move(*auth), .repo = nullptr};
  portcullis::RepoOptions options;
  options.network = {node.tcp};
  options.storage = std::move(*storage);
  options.auth = node.auth;
  node.repo = std::make_unique<portcullis::Repo>(ctx.get_executor(), std::move(options));
  return node;
}

// "items[0]"-like text for a path, to print it.
std::string show(const portcullis::Path& path) {
  std::string out;
  for (const auto& step : path) {
    if (const auto* key = std::get_if<std::string>(&step)) {
      out += (out.empty() ? "" : ".") + *key;
    } else {
      out += "[" + std::to_string(std::get<std::size_t>(step)) + "]";
    }
  }
  return out;
}

// Waits until `signal` is cancelled (by a subscription callback): false at `deadline`.
asio::awaitable<bool> signalled(asio::steady_timer& signal,
                                std::chrono::steady_clock::time_point deadline) {
  signal.expires_at(deadline);
  boost::system::error_code ec;
  co_await signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return ec == asio::error::operation_aborted;
}

asio::awaitable<Result<void>> run(portcullis::Repo& server, portcullis::Repo& client) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;

  // The network: the client's dial has reached the server and both sides are authenticated.
  // (Awaitables are built first, then awaited: g++ 12 mishandles temporaries in co_await.)
  auto waiting = client.whenPeerReady(10s, server.peerId());
  auto ready = co_await std::move(waiting);
  if (!ready) co_return ready.error();
  std::printf("client: connected to %s\n", ready->str().c_str());

  // The server creates a document: a list of items.
  DocHandle list = server.create();
  ObjId items = ObjId::root();
  auto made = list.change([&](portcullis::Transaction& tx) -> Result<void> {
    auto created = tx.putObject(ObjId::root(), "items", portcullis::ObjType::List);
    if (!created) return created.error();
    items = *created;
    return tx.insert(items, 0, std::string("milk"));
  });
  if (!made) co_return made.error();

  // The client finds it by ID and subscribes to its changes.
  auto finding = client.find(list.id());
  auto found = co_await std::move(finding);
  if (!found) co_return found.error();
  DocHandle theirs = *found;
  const auto firstHeads = theirs.heads();
  asio::steady_timer arrived(co_await asio::this_coro::executor);
  auto subscription = theirs.subscribe([&](const portcullis::DocumentChange& change) {
    for (const auto& path : change.paths) std::printf("client: changed %s\n", show(path).c_str());
    arrived.cancel();
  });

  // The server changes it again; the client hears of it.
  auto added = list.change([&](portcullis::Transaction& tx) {
    return tx.insert(items, list.doc().length(items), std::string("eggs"));
  });
  if (!added) co_return added.error();
  auto arrival = signalled(arrived, deadline);
  if (!co_await std::move(arrival)) co_return Error(Errc::Disconnected, "no change came");
  std::printf("client: %s\n", theirs.toJson().c_str());

  // The client answers; the server sees it once it has synced.
  auto answered = theirs.change([](portcullis::Transaction& tx) {
    return tx.put(ObjId::root(), "done", true);
  });
  if (!answered) co_return answered.error();
  asio::steady_timer poll(co_await asio::this_coro::executor);
  while (list.heads() != theirs.heads()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      co_return Error(Errc::Disconnected, "the server never saw the client's change");
    }
    poll.expires_after(10ms);
    co_await poll.async_wait(asio::use_awaitable);
  }
  std::printf("server: %s\n", list.toJson().c_str());

  // History: the document as it was when the client found it.
  auto then = list.doc().forkAt(firstHeads);
  if (!then) co_return then.error();
  std::printf("server: at first %s\n", then->toJson().c_str());

  // A clean stop: flush storage, say goodbye, close sessions.
  auto stoppingClient = client.shutdown();
  auto clientDown = co_await std::move(stoppingClient);
  auto stoppingServer = server.shutdown();
  auto serverDown = co_await std::move(stoppingServer);
  if (!clientDown) co_return clientDown;
  co_return serverDown;
}

int fail(const std::string& why) {
  std::fprintf(stderr, "quickstart: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return fail("sodium_init failed");
  // The library logs to stderr by default; here only warnings and errors, with our prefix.
  portcullis::setLogLevel(portcullis::LogLevel::Warn);
  portcullis::setLogSink([](portcullis::LogLevel level, std::string_view message) {
    std::fprintf(stderr, "quickstart [%s] %.*s\n", portcullis::logLevelName(level).data(),
                 static_cast<int>(message.size()), message.data());
  });

  portcullis::ProviderRegistry registry;
  if (auto added = portcullis::registerBuiltinProviders(registry); !added) {
    return fail(added.error().message());
  }
  if (auto added = portcullis::sharedkey::registerProvider(registry); !added) {
    return fail(added.error().message());
  }

  fs::path dir;
  const bool temporary = argc < 2;
  if (temporary) {
    std::string name = (fs::temp_directory_path() / "quickstart.XXXXXX").string();
    if (mkdtemp(name.data()) == nullptr) return fail("cannot make a temporary folder");
    dir = name;
  } else {
    dir = argv[1];
  }

  // The secret that every node of one deployment shares: random here, from a vault in real life.
  std::array<std::uint8_t, 32> networkKey;
  randombytes_buf(networkKey.data(), networkKey.size());
  const std::string networkKeyHex = portcullis::toHex(networkKey);
  sodium_memzero(networkKey.data(), networkKey.size());

  asio::io_context ctx;
  Result<void> outcome = Error(Errc::Disconnected, "did not finish in time");
  {
    auto server =
        makeNode(ctx, registry, dir / "server", networkKeyHex, {.listen = {"127.0.0.1:0"}});
    if (!server) return fail(server.error().message());
    // The address clients dial, in the provider's form (shared-key pins the server's key).
    const std::string hostPort =
        "127.0.0.1:" + std::to_string(server->tcp->listeningOn().front().port());
    const std::string address = server->auth->advertisedAddress(hostPort);
    auto client = makeNode(ctx, registry, dir / "client", networkKeyHex, {.connect = {address}});
    if (!client) return fail(client.error().message());

    asio::co_spawn(ctx, run(*server->repo, *client->repo),
                   [&](std::exception_ptr error, Result<void> result) {
                     outcome = error ? Error(Errc::Disconnected, "the run threw") : result;
                     ctx.stop();
                   });
    ctx.run_for(kDeadline + 5s);  // bounded even if a shutdown hangs
  }
  if (temporary) fs::remove_all(dir);
  if (!outcome) return fail(outcome.error().message());
  std::printf("quickstart: ok\n");
  return 0;
}
