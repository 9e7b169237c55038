// bench/repo_changes.h — the `repo.changes` workload of bench/README.md ("repo_bench"), shared by
// repo_bench (under its open-style provider) and team_provider_bench (the same workload under
// `team` and `open` in one run): two connected Repos on one io_context; A creates {k: -1} and B
// finds it (untimed), then A makes kChanges single-key commits in one synchronous loop, timed
// until B's copy shows k == kChanges - 1.
//
// Header-only; everything runs on the caller's thread, on the io_context both Repos use.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <stdexcept>

#include "portcullis/repo.h"

namespace portcullis::bench {

inline constexpr int kChanges = 10'000;

using Clock = std::chrono::steady_clock;

inline double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Runs `ctx` until `done()`; throws after 2 minutes.
template <typename Pred>
void runUntil(asio::io_context& ctx, Pred done) {
  const auto limit = Clock::now() + std::chrono::minutes(2);
  while (!done()) {
    if (Clock::now() > limit) throw std::runtime_error("the workload did not finish in 2 min");
    ctx.run_one_for(std::chrono::milliseconds(10));
  }
}

inline std::int64_t readInt(const DocHandle& h, const char* key) {
  auto v = h.doc().get(ObjId::root(), key);
  auto* i = v ? std::get_if<std::int64_t>(&*v) : nullptr;
  return i ? *i : -1;
}

inline Result<void> putInt(Transaction& tx, const char* key, std::int64_t value) {
  return tx.put(ObjId::root(), key, ScalarValue(value));
}

// Runs repo.find(id) and hands its result to `done` (co_spawn's own handler would need a
// default-constructible result).
inline asio::awaitable<void> findThen(Repo& repo, DocumentId id,
                                      std::function<void(Result<DocHandle>)> done) {
  done(co_await repo.find(id));
}

// kChanges commits at A in one synchronous loop; B already syncs the document. Returns the ms
// from the start of the loop until B shows the last value (and the loop's own ms in `loopMsOut`
// if given); the cross-check goes to stderr.
// Precondition: A and B are each other's only peer, or will be (the setup waits for it).
inline double makeChanges(asio::io_context& ctx, Repo& a, Repo& b, double* loopMsOut = nullptr) {
  runUntil(ctx, [&] { return a.peers().size() == 1 && b.peers().size() == 1; });
  DocHandle doc = a.create();
  if (!doc.change([](Transaction& tx) { return putInt(tx, "k", -1); })) std::abort();
  std::optional<DocHandle> atB;
  asio::co_spawn(ctx, findThen(b, doc.id(), [&](Result<DocHandle> h) {
                   if (h) atB = *h;
                 }),
                 asio::detached);
  runUntil(ctx, [&] { return atB.has_value(); });
  const auto start = Clock::now();
  for (int i = 0; i < kChanges; ++i) {
    if (!doc.change([i](Transaction& tx) { return putInt(tx, "k", i); })) std::abort();
  }
  const double loopMs = msSince(start);
  runUntil(ctx, [&] { return readInt(*atB, "k") == kChanges - 1; });
  const double ms = msSince(start);
  std::fprintf(stderr, "changes: B has %zu changes, k = %lld; the commit loop took %.1f ms\n",
               atB->doc().graph().size(), static_cast<long long>(readInt(*atB, "k")), loopMs);
  if (loopMsOut) *loopMsOut = loopMs;
  return ms;
}

}  // namespace portcullis::bench
