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
#include "repo_changes.h"

namespace {

using namespace portcullis;
using bench::Clock;

constexpr int kDocuments = 1'000;
using bench::kChanges;
using bench::findThen;
using bench::msSince;
using bench::putInt;
using bench::readInt;

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
    bench::runUntil(ctx, done);
  }
};

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

// (b) the shared repo.changes workload (repo_changes.h).
double makeChanges(Pair& p) { return bench::makeChanges(p.ctx, p.a, p.b); }

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
