// two_peers.cc — an application that embeds portcullis.
//
// Two Repos in one process, each with its own filesystem storage, the TCP network adapter on
// 127.0.0.1 and the shared-key auth provider linked in (no plugin is loaded). alice listens on a
// free port and writes a document; bob dials her, finds the document by its URL and reads what
// she wrote. Exits 0 once bob has it, 1 on any error or after 20 seconds.
//
// Build it out of tree against an installed portcullis (examples/README.md says more), with
// pkg-config:
//   pkgs="portcullis-network-tcp portcullis-storage-fs portcullis-shared-key"
//   c++ two_peers.cc -o two_peers $(pkg-config --cflags --libs $pkgs)
// or with CMake and CMakeLists.txt in this folder.
#include <portcullis/adapters/fs_storage.h>
#include <portcullis/adapters/tcp_network.h>
#include <portcullis/asio.h>
#include <portcullis/config.h>
#include <portcullis/provider_registry.h>
#include <portcullis/providers/shared_key.h>
#include <portcullis/repo.h>
#include <portcullis/secret_handshake.h>
#include <sodium.h>
#include <stdlib.h>  // mkdtemp

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace {

namespace asio = portcullis::asio;
namespace fs = std::filesystem;
using portcullis::DocHandle;
using portcullis::Repo;
using portcullis::Result;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kDeadline{20};
const std::string kExpected = R"({"greeting":"hello from alice"})";

struct Node {
  std::string publicKeyHex;  // its device key: the name peers know it by
  std::shared_ptr<portcullis::TcpNetworkAdapter> tcp;
  std::unique_ptr<Repo> repo;
};

// A node whose keys and storage live in `dir`: a new device key, the shared-key provider made
// from a config table (as `portcullis serve` makes it from its file), fs storage and TCP.
Result<Node> makeNode(asio::io_context& ctx, portcullis::ProviderRegistry& registry,
                      const fs::path& dir, const std::string& networkKeyHex,
                      portcullis::TcpNetworkOptions tcpOptions) {
  if (std::error_code ec; !fs::create_directory(dir, ec)) {
    return portcullis::Error(portcullis::Errc::Io, dir.string() + ": " + ec.message());
  }
  const auto device = portcullis::DeviceKey::generate();
  if (auto saved = device.save((dir / "device.key").string()); !saved) return saved.error();
  auto config = portcullis::parseConfig("[auth]\nprovider = \"shared-key\"\n"
                                        "[auth.shared-key]\nnetwork-key = \"" + networkKeyHex +
                                            "\"\nidentity = \"device.key\"\n",
                                        dir / "node.toml");
  if (!config) return config.error();
  auto auth = registry.createFromConfig(*config, {});
  if (!auth) return auth.error();
  auto storage = portcullis::FsStorageAdapter::open(dir / "data");
  if (!storage) return storage.error();
  auto tcp = portcullis::TcpNetworkAdapter::create(ctx.get_executor(), std::move(tcpOptions));
  if (!tcp) return tcp.error();

  portcullis::RepoOptions options;
  options.network = {*tcp};
  options.storage = std::move(*storage);
  options.auth = std::move(*auth);
  return Node{device.publicKeyHex(), *tcp,
              std::make_unique<Repo>(ctx.get_executor(), std::move(options))};
}

// Polls `done` until it holds (true) or `deadline` passes (false).
asio::awaitable<bool> waitUntil(std::function<bool()> done, Clock::time_point deadline) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!done()) {
    if (Clock::now() >= deadline) co_return false;
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return true;
}

// alice writes a document and bob fetches it over TCP: true once bob's copy reads kExpected.
asio::awaitable<bool> syncOneDocument(Repo& alice, Repo& bob) {
  const auto deadline = Clock::now() + kDeadline;
  DocHandle written = alice.create();
  auto changed = written.change([](portcullis::Transaction& tx) {
    return tx.put(portcullis::ObjId::root(), "greeting", std::string("hello from alice"));
  });
  if (!changed) co_return false;
  std::printf("alice wrote %s to %s\n", written.toJson().c_str(), written.id().toString().c_str());

  // find() asks the peers bob has a session with, so wait until alice is one.
  auto connected = waitUntil([&bob] { return !bob.peers().empty(); }, deadline);
  if (!co_await std::move(connected)) co_return false;
  auto finding = bob.find(written.id());
  auto found = co_await std::move(finding);
  if (!found) {
    std::fprintf(stderr, "bob cannot find the document: %s\n", found.error().message().c_str());
    co_return false;
  }
  DocHandle read = *found;
  auto arrived = waitUntil([&read] { return read.toJson() == kExpected; }, deadline);
  const bool ok = co_await std::move(arrived);
  std::printf("bob read %s\n", read.toJson().c_str());

  auto bobLeaves = bob.shutdown();
  (void)co_await std::move(bobLeaves);
  auto aliceLeaves = alice.shutdown();
  (void)co_await std::move(aliceLeaves);
  co_return ok;
}

int fail(const std::string& why) {
  std::fprintf(stderr, "two_peers: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main() {
  if (sodium_init() < 0) return fail("sodium_init failed");
  portcullis::ProviderRegistry registry;
  if (auto added = portcullis::sharedkey::registerProvider(registry); !added) {
    return fail(added.error().message());
  }

  // The secret every node of one deployment shares: random here, from a vault in real life.
  std::array<std::uint8_t, 32> networkKey;
  randombytes_buf(networkKey.data(), networkKey.size());
  const std::string networkKeyHex = portcullis::toHex(networkKey);
  sodium_memzero(networkKey.data(), networkKey.size());

  std::string dirName = (fs::temp_directory_path() / "two_peers.XXXXXX").string();
  if (mkdtemp(dirName.data()) == nullptr) return fail("cannot make a temporary folder");
  const fs::path dir = dirName;

  asio::io_context ctx;
  bool synced = false;
  {
    auto alice = makeNode(ctx, registry, dir / "alice", networkKeyHex, {.listen = {"127.0.0.1:0"}});
    if (!alice) return fail(alice.error().message());
    // Under shared-key, the dialer names the key of the node it dials.
    const std::string aliceAddress =
        "net:127.0.0.1:" + std::to_string(alice->tcp->listeningOn().front().port()) +
        "~shs:" + alice->publicKeyHex;
    auto bob = makeNode(ctx, registry, dir / "bob", networkKeyHex, {.connect = {aliceAddress}});
    if (!bob) return fail(bob.error().message());

    asio::co_spawn(ctx, syncOneDocument(*alice->repo, *bob->repo),
                               [&](std::exception_ptr error, bool ok) {
                                 if (error) std::fprintf(stderr, "two_peers: the sync threw\n");
                                 synced = !error && ok;
                                 ctx.stop();
                               });
    ctx.run_for(kDeadline + std::chrono::seconds(5));  // bounded even if a shutdown hangs
  }
  fs::remove_all(dir);
  if (!synced) return fail("bob did not get alice's document in time");
  std::printf("synced\n");
  return 0;
}
