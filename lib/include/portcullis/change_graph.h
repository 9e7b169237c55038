// portcullis/change_graph.h — the history of one document as a hash-linked DAG of change
// envelopes, usable without decoding (or being able to decode) any change's ops.
//
// This is the seam for sealed changes (architecture §4): the store and the sync layer deal only in
// `ChangeEnvelope`s, whose payload is opaque bytes. A plain change's payload is its canonical
// encoding; a sealing provider's payload is whatever it signs and encrypts. A relay that cannot
// open payloads still keeps, validates and serves the graph by hash and deps.
//
// Not thread-safe: one owner, one executor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "portcullis/export.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis {

// Op counters and sequence numbers stay below this bound so that `startOp + opCount` and
// `seq + 1` can never overflow.
inline constexpr std::uint64_t kMaxCounter = (std::uint64_t{1} << 53) - 1;

// What the DAG needs to know of one change. `payload` is what travels and is stored.
struct ChangeEnvelope {
  ChangeHash hash;
  ActorId actor;
  std::uint64_t seq = 0;      // 1 for an actor's first change
  std::uint64_t startOp = 0;  // counter of the first op
  std::uint64_t opCount = 0;  // counters [startOp, startOp + opCount) belong to this change
  std::vector<ChangeHash> deps;  // strictly ascending
  Bytes payload;

  // The largest op counter this change uses (startOp - 1 for an empty change).
  std::uint64_t maxOp() const noexcept { return startOp + opCount - 1; }
};

struct ChangeGraphOptions {
  // Changes waiting for missing deps; past either bound a new waiting change is refused with
  // Errc::Overloaded.
  std::size_t maxPendingChanges = 10'000;
  std::size_t maxPendingBytes = 64u << 20;
};

// The outcome of offering one envelope to the graph.
enum class AddOutcome : std::uint8_t {
  Applied,    // valid; it (and possibly queued changes it unblocked) are now in the graph
  Duplicate,  // already in the graph or already waiting
  Queued,     // some deps are missing; it waits for them
};

class PORTCULLIS_EXPORT ChangeGraph {
 public:
  explicit ChangeGraph(ChangeGraphOptions options = {});
  ~ChangeGraph();
  ChangeGraph(ChangeGraph&&) noexcept;
  ChangeGraph& operator=(ChangeGraph&&) noexcept;

  // Offers an envelope. Checks, against its deps (architecture §4): deps strictly ascending; the
  // actor's previous change is in its causal past; seq is that change's seq + 1 (1 if none);
  // startOp is exactly max(maxOp of deps) + 1 (1 if no deps); counters stay below kMaxCounter.
  // A different change with an (actor, seq) already in the graph is rejected with
  // Errc::Conflict (equivocation). An invalid envelope leaves the graph unchanged.
  //
  // Every envelope that became part of the graph by this call, in causal order (the offered one
  // and any queued ones it unblocked), is appended to `applied`, if given. A queued envelope that
  // turns out invalid once its deps arrive is dropped and reported in `rejected`, if given.
  Result<AddOutcome> add(ChangeEnvelope envelope,
                         std::vector<const ChangeEnvelope*>* applied = nullptr,
                         std::vector<Error>* rejected = nullptr);

  // Appends an envelope the caller built itself on top of the current heads (a local commit).
  // Preconditions (bugs if violated): deps == heads(), valid seq and startOp.
  const ChangeEnvelope& addLocal(ChangeEnvelope envelope);

  // A hint that about `changes` more changes will be added (a load): their storage is
  // allocated once instead of grown step by step.
  void reserve(std::size_t changes);

  bool contains(const ChangeHash& hash) const;
  const ChangeEnvelope* find(const ChangeHash& hash) const;
  // Number of changes in the graph (not counting queued ones).
  std::size_t size() const;
  // Changes that nothing in the graph depends on, ascending.
  std::vector<ChangeHash> heads() const;
  // Hashes that queued changes need and that are neither in the graph nor queued, ascending.
  std::vector<ChangeHash> missingDeps() const;
  std::size_t pendingCount() const;
  // The largest op counter in the graph (0 if empty).
  std::uint64_t maxOp() const;
  // The last seq of `actor` in the graph (0 if none).
  std::uint64_t lastSeq(const ActorId& actor) const;

  // Every change not in the causal past of `heads` (hashes the graph does not know are
  // ignored), in the order they were added (a topological order).
  std::vector<const ChangeEnvelope*> changesSince(std::span<const ChangeHash> heads) const;
  // Every change in the order they were added.
  std::vector<const ChangeEnvelope*> changes() const;
  // The changes added after the first `count`, in the order they were added.
  std::vector<const ChangeEnvelope*> changesAfter(std::size_t count) const;
  // Where `hash` stands in the order changes were added, if it is in the graph.
  std::optional<std::size_t> positionOf(const ChangeHash& hash) const;
  // The change at `position` in the order changes were added; position < size().
  const ChangeEnvelope& changeAt(std::size_t position) const;
  // Every change in the canonical order: by generation (1 for a change without deps, else 1 +
  // the largest generation among its deps), then by ascending hash. That is a topological order
  // with hash tie-break, and the same set of changes gives the same order on every replica.
  std::vector<const ChangeEnvelope*> canonicalOrder() const;
  // Calls `f` with the payload of each change of canonicalOrder(), in that order, without
  // building the order first (a save reads every payload once and nothing else).
  void forEachCanonicalPayload(const std::function<void(ByteView)>& f) const;
  // The size of every payload in the graph, added up.
  std::size_t payloadBytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portcullis
