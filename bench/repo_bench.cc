// The Repo workload of bench/README.md ("repo_bench"): two repos in one process over the memory
// network. One figure per run, as one JSON line on stdout:
//   --figure find     B finds 1,000 small documents created on A (A never advertises)
//   --figure changes  10,000 single-key commits at A in one synchronous loop, until B sees the last
//   --figure rss      peak RSS of a process that runs both
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "memory_network.h"
#include "portcullis/repo.h"

namespace {

using namespace portcullis;
using Clock = std::chrono::steady_clock;

constexpr int kDocuments = 1'000;
constexpr int kChanges = 10'000;

// Authenticates like `open`; sends anything asked for, advertises nothing.
class NoAdvertiseProvider final : public AuthProvider {
 public:
  explicit NoAdvertiseProvider(PeerId self) : open_(makeOpenProvider(std::move(self))) {}
  std::string_view name() const override { return "no-advertise"; }
  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> s, Side side) override {
    return open_->authenticate(std::move(s), side);
  }
  asio::awaitable<bool> okToSend(const PeerIdentity&, const DocumentId&) override { co_return true; }
  asio::awaitable<bool> okToReceive(const PeerIdentity&, const DocumentId&,
                                    const ChangeBatch&) override {
    co_return true;
  }

 private:
  std::unique_ptr<AuthProvider> open_;
};

struct Pair {
  asio::io_context ctx;
  std::shared_ptr<MemoryNetworkAdapter> netA =
      std::make_shared<MemoryNetworkAdapter>(ctx.get_executor(), "a");
  std::shared_ptr<MemoryNetworkAdapter> netB =
      std::make_shared<MemoryNetworkAdapter>(ctx.get_executor(), "b");
  Repo a{ctx.get_executor(), options(netA, "a")};
  Repo b{ctx.get_executor(), options(netB, "b")};

  Pair() { connect(*netB, *netA, {.maxBufferedBytes = 1u << 20, .record = false}); }

  static RepoOptions options(std::shared_ptr<MemoryNetworkAdapter> net, const char* name) {
    RepoOptions o;
    o.network = {std::move(net)};
    o.peerId = *PeerId::parse(name);
    o.auth = std::make_shared<NoAdvertiseProvider>(*o.peerId);
    return o;
  }

  template <typename Pred>
  void runUntil(Pred done) {
    const auto limit = Clock::now() + std::chrono::minutes(2);
    while (!done()) {
      if (Clock::now() > limit) throw std::runtime_error("the workload did not finish in 2 min");
      ctx.run_one_for(std::chrono::milliseconds(10));
    }
  }
};

std::int64_t readInt(const DocHandle& h, const char* key) {
  auto v = h.doc().get(ObjId::root(), key);
  auto* i = v ? std::get_if<std::int64_t>(&*v) : nullptr;
  return i ? *i : -1;
}

Result<void> putInt(Transaction& tx, const char* key, std::int64_t value) {
  return tx.put(ObjId::root(), key, ScalarValue(value));
}

// Runs repo.find(id) and hands its result to `done` (co_spawn's own handler would need a
// default-constructible result).
asio::awaitable<void> findThen(Repo& repo, DocumentId id,
                               std::function<void(Result<DocHandle>)> done) {
  done(co_await repo.find(id));
}

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// (a) B finds kDocuments documents that only A has, all finds in flight at once.
double findDocuments(Pair& p) {
  p.runUntil([&] { return p.a.peers().size() == 1 && p.b.peers().size() == 1; });
  std::vector<DocumentId> ids;
  for (int i = 0; i < kDocuments; ++i) {
    DocHandle h = p.a.create();
    if (!h.change([i](Transaction& tx) { return putInt(tx, "n", i); })) std::abort();
    ids.push_back(h.id());
  }
  p.runUntil([&] { return true; });
  int found = 0, correct = 0;
  const auto start = Clock::now();
  for (int i = 0; i < kDocuments; ++i) {
    asio::co_spawn(p.ctx,
                   findThen(p.b, ids[static_cast<std::size_t>(i)],
                            [&, i](Result<DocHandle> h) {
                              ++found;
                              if (h && readInt(*h, "n") == i) ++correct;
                            }),
                   asio::detached);
  }
  p.runUntil([&] { return found == kDocuments; });
  const double ms = msSince(start);
  std::fprintf(stderr, "find: %d of %d documents found with the right value\n", correct, kDocuments);
  if (correct != kDocuments) throw std::runtime_error("find: documents missing");
  return ms;
}

// (b) kChanges commits at A in one synchronous loop; B already syncs the document.
double makeChanges(Pair& p) {
  p.runUntil([&] { return p.a.peers().size() == 1 && p.b.peers().size() == 1; });
  DocHandle doc = p.a.create();
  if (!doc.change([](Transaction& tx) { return putInt(tx, "k", -1); })) std::abort();
  std::optional<DocHandle> atB;
  asio::co_spawn(p.ctx, findThen(p.b, doc.id(), [&](Result<DocHandle> h) {
                   if (h) atB = *h;
                 }),
                 asio::detached);
  p.runUntil([&] { return atB.has_value(); });
  const auto start = Clock::now();
  for (int i = 0; i < kChanges; ++i) {
    if (!doc.change([i](Transaction& tx) { return putInt(tx, "k", i); })) std::abort();
  }
  const double loopMs = msSince(start);
  p.runUntil([&] { return readInt(*atB, "k") == kChanges - 1; });
  const double ms = msSince(start);
  std::fprintf(stderr, "changes: B has %zu changes, k = %lld; the commit loop took %.1f ms\n",
               atB->doc().graph().size(), static_cast<long long>(readInt(*atB, "k")), loopMs);
  return ms;
}

void print(const char* bench, int n, double value, const char* unit) {
  if (n > 0) {
    std::printf("{\"bench\":\"%s\",\"impl\":\"portcullis\",\"n\":%d,\"value\":%.3f,\"unit\":\"%s\"}\n",
                bench, n, value, unit);
  } else {
    std::printf("{\"bench\":\"%s\",\"impl\":\"portcullis\",\"value\":%.3f,\"unit\":\"%s\"}\n", bench,
                value, unit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  spdlog::set_level(spdlog::level::err);
  std::string figure;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--figure") == 0 && i + 1 < argc) {
      figure = argv[++i];
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::puts("usage: repo_bench --figure find|changes|rss");
      return 0;
    } else {
      std::fprintf(stderr, "repo_bench: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  try {
    if (figure == "find") {
      Pair p;
      print("repo.find", kDocuments, findDocuments(p), "ms");
    } else if (figure == "changes") {
      Pair p;
      print("repo.changes", kChanges, makeChanges(p), "ms");
    } else if (figure == "rss") {
      {
        Pair p;
        findDocuments(p);
        makeChanges(p);
      }
      rusage usage{};
      getrusage(RUSAGE_SELF, &usage);
      print("repo.peak_rss", 0, static_cast<double>(usage.ru_maxrss) / 1024.0, "MiB");
    } else {
      std::fputs("usage: repo_bench --figure find|changes|rss\n", stderr);
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "repo_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
