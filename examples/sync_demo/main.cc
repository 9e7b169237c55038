// sync_demo — a sync server and two clients in one process, joined by the in-memory network:
// the server admits only the peers on its allow-list and keeps documents in filesystem storage.
//
//   alice creates a shopping list and gives its ID to bob;
//   bob finds it through the server (nothing is advertised to him), and both edit at once;
//   both print the same merged document; mallory, not on the list, is refused;
//   the server restarts from its storage and still has every change.
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include <unistd.h>

#include "fs_storage.h"
#include "memory_network.h"
#include "portcullis/repo.h"

namespace {

using namespace portcullis;
using namespace std::chrono_literals;

// Peers authenticate by the claimed name of the `open` handshake (a real deployment uses a
// provider with keys); only names on the list get a session, and they may read and write all.
// Nothing is advertised: a document reaches a peer that asks for it by ID.
class AllowListProvider final : public AuthProvider {
 public:
  AllowListProvider(PeerId self, std::set<std::string> allowed)
      : open_(makeOpenProvider(std::move(self))), allowed_(std::move(allowed)) {}

  std::string_view name() const override { return "allow-list"; }

  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> stream, Side side) override {
    auto session = co_await open_->authenticate(std::move(stream), side);
    if (session && !allowed_.contains(session->identity.peer.str())) {
      co_return Error(Errc::Denied, session->identity.peer.str() + " is not on the allow-list");
    }
    co_return session;
  }
  asio::awaitable<bool> okToSend(const PeerIdentity&, const DocumentId&) override { co_return true; }
  asio::awaitable<bool> okToReceive(const PeerIdentity&, const DocumentId&,
                                    const ChangeBatch&) override {
    co_return true;
  }

 private:
  std::unique_ptr<AuthProvider> open_;
  std::set<std::string> allowed_;
};

struct Node {
  std::shared_ptr<MemoryNetworkAdapter> net;
  std::unique_ptr<Repo> repo;
};

Node makeNode(asio::io_context& ctx, const std::string& name, std::set<std::string> allowed,
              std::shared_ptr<StorageAdapter> storage = nullptr) {
  Node n;
  n.net = std::make_shared<MemoryNetworkAdapter>(ctx.get_executor(), name);
  RepoOptions options;
  options.network = {n.net};
  options.peerId = *PeerId::parse(name);
  options.auth = std::make_shared<AllowListProvider>(*options.peerId, std::move(allowed));
  options.storage = std::move(storage);
  options.events.peerRefused = [name](const std::string& remote, const Error& e) {
    std::printf("[%s] refused %s: %s\n", name.c_str(), remote.c_str(), e.message().c_str());
  };
  n.repo = std::make_unique<Repo>(ctx.get_executor(), std::move(options));
  return n;
}

// Runs the event loop until `done` (at most 5 s).
bool runUntil(asio::io_context& ctx, const std::function<bool()>& done) {
  const auto end = std::chrono::steady_clock::now() + 5s;
  while (!done() && std::chrono::steady_clock::now() < end) ctx.run_for(1ms);
  return done();
}

template <typename T>
Result<T> await(asio::io_context& ctx, asio::awaitable<Result<T>> aw) {
  std::optional<Result<T>> out;
  asio::co_spawn(ctx, [](asio::awaitable<Result<T>> a, std::optional<Result<T>>& o) -> asio::awaitable<void> {
    o.emplace(co_await std::move(a));
  }(std::move(aw), out), asio::detached);
  if (!runUntil(ctx, [&] { return out.has_value(); })) return Error(Errc::Io, "timed out");
  return std::move(*out);
}

}  // namespace

int main() {
  if (sodium_init() < 0) return 1;
  spdlog::set_level(spdlog::level::err);  // the open handshake warns; this demo knows
  const auto dir = std::filesystem::temp_directory_path() / ("portcullis-demo-" + std::to_string(::getpid()));
  asio::io_context ctx;
  const std::set<std::string> team{"alice", "bob"};

  auto storage = FsStorageAdapter::open(dir);
  if (!storage) {
    std::fprintf(stderr, "storage: %s\n", storage.error().message().c_str());
    return 1;
  }
  std::shared_ptr<StorageAdapter> store = std::move(*storage);
  Node server = makeNode(ctx, "server", team, store);
  Node alice = makeNode(ctx, "alice", {"server"});
  Node bob = makeNode(ctx, "bob", {"server"});
  connect(*alice.net, *server.net);
  connect(*bob.net, *server.net);
  runUntil(ctx, [&] { return server.repo->peers().size() == 2; });

  // alice makes the list; the server learns of it when alice syncs it there.
  DocHandle list = alice.repo->create();
  (void)list.change([](Transaction& tx) -> Result<void> {
    auto items = tx.putObject(ObjId::root(), "items", ObjType::List);
    if (!items) return items.error();
    auto first = tx.insert(*items, 0, std::string("milk"));
    if (!first) return first;
    return tx.put(ObjId::root(), "title", std::string("groceries"));
  });
  std::printf("alice created %s\n", list.id().toString().c_str());

  auto found = await(ctx, bob.repo->find(list.id()));
  if (!found) {
    std::fprintf(stderr, "bob could not find the list: %s\n", found.error().message().c_str());
    return 1;
  }
  DocHandle bobList = *found;
  std::printf("bob found it through the server: %s\n", bobList.toJson().c_str());

  // Concurrent edits: each appends an item and sets the title.
  auto append = [](DocHandle& h, const char* item, const char* title) {
    (void)h.change([&](Transaction& tx) -> Result<void> {
      auto items = h.doc().get(ObjId::root(), "items");
      const ObjId id = std::get<ObjectRef>(*items).id;
      auto added = tx.insert(id, h.doc().length(id), std::string(item));
      if (!added) return added;
      return tx.put(ObjId::root(), "title", std::string(title));
    });
  };
  append(list, "bread", "alice's groceries");
  append(bobList, "eggs", "bob's groceries");
  auto itemCount = [](const DocHandle& h) {
    return h.doc().length(std::get<ObjectRef>(*h.doc().get(ObjId::root(), "items")).id);
  };
  runUntil(ctx, [&] { return list.heads() == bobList.heads() && itemCount(list) == 3; });
  std::printf("alice sees %s\n", list.toJson().c_str());
  std::printf("bob   sees %s\n", bobList.toJson().c_str());

  Node mallory = makeNode(ctx, "mallory", {"server"});
  connect(*mallory.net, *server.net);
  auto stolen = await(ctx, mallory.repo->find(list.id()));
  std::printf("mallory's find: %s\n", stolen ? "found (wrong!)" : stolen.error().message().c_str());

  if (auto flushed = await(ctx, server.repo->shutdown()); !flushed) {
    std::fprintf(stderr, "server flush failed: %s\n", flushed.error().message().c_str());
    return 1;
  }
  server.repo.reset();
  Node restarted = makeNode(ctx, "server", team, store);
  auto reloaded = await(ctx, restarted.repo->find(list.id()));
  std::printf("the restarted server loads %s\n",
              reloaded ? reloaded->toJson().c_str() : reloaded.error().message().c_str());
  std::filesystem::remove_all(dir);
  const bool same = reloaded && reloaded->toJson() == list.toJson() && list.toJson() == bobList.toJson();
  return same && !stolen ? 0 : 1;
}
