// Tests of ChangeGraph on its own: hand-built envelopes whose payloads are arbitrary bytes, so
// that the DAG rules (architecture §4) are checked without any change encoding.
#include "portcullis/change_graph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace portcullis {

void PrintTo(Errc code, std::ostream* os) { *os << errcName(code); }
void PrintTo(const ChangeHash& h, std::ostream* os) { *os << h.toHex().substr(0, 16); }

namespace {

ActorId actorOf(std::uint8_t fill) { return ActorId::fromBytes(Bytes(16, fill)).value(); }

const ActorId kA = actorOf(0xaa);
const ActorId kB = actorOf(0xbb);
const ActorId kC = actorOf(0xcc);

// An envelope whose payload names it, so that every distinct envelope has a distinct hash. Deps
// are sorted (the graph requires strictly ascending deps) unless `sortDeps` is false.
ChangeEnvelope envelope(const ActorId& actor, std::uint64_t seq, std::uint64_t startOp,
                        std::uint64_t opCount, std::vector<ChangeHash> deps,
                        std::string tag = {}, bool sortDeps = true) {
  ChangeEnvelope e{.hash = {},
                   .actor = actor,
                   .seq = seq,
                   .startOp = startOp,
                   .opCount = opCount,
                   .deps = std::move(deps),
                   .payload = {}};
  if (sortDeps) std::sort(e.deps.begin(), e.deps.end());
  std::string text = actor.toHex() + "/" + std::to_string(seq) + "/" + std::to_string(startOp) +
                     "/" + std::to_string(opCount) + "/" + tag;
  for (const ChangeHash& d : e.deps) text += "/" + d.toHex();
  e.payload.assign(text.begin(), text.end());
  e.hash = ChangeHash::of(e.payload);
  return e;
}

std::vector<ChangeHash> sorted(std::vector<ChangeHash> hashes) {
  std::sort(hashes.begin(), hashes.end());
  return hashes;
}

std::vector<ChangeHash> hashesOf(const std::vector<const ChangeEnvelope*>& changes) {
  std::vector<ChangeHash> out;
  for (const ChangeEnvelope* c : changes) out.push_back(c->hash);
  return out;
}

AddOutcome addOk(ChangeGraph& graph, const ChangeEnvelope& e) {
  Result<AddOutcome> r = graph.add(e);
  if (!r) {
    ADD_FAILURE() << "add refused: " << r.error().message();
    return AddOutcome::Duplicate;
  }
  return *r;
}

// A snapshot of what an invalid add must leave unchanged.
struct GraphState {
  std::size_t size;
  std::vector<ChangeHash> heads;
  std::size_t pending;
  std::vector<ChangeHash> missing;
  std::uint64_t maxOp;
  friend bool operator==(const GraphState&, const GraphState&) = default;
};

GraphState stateOf(const ChangeGraph& g) {
  return {g.size(), g.heads(), g.pendingCount(), g.missingDeps(), g.maxOp()};
}

void expectRejected(ChangeGraph& graph, const ChangeEnvelope& e, Errc code) {
  GraphState before = stateOf(graph);
  std::vector<const ChangeEnvelope*> applied;
  std::vector<Error> rejected;
  Result<AddOutcome> r = graph.add(e, &applied, &rejected);
  ASSERT_FALSE(r.has_value()) << "accepted an invalid envelope";
  EXPECT_EQ(r.error().code(), code) << errcName(r.error().code()) << ": " << r.error().message();
  EXPECT_TRUE(applied.empty());
  EXPECT_TRUE(before == stateOf(graph)) << "a rejected envelope changed the graph";
  EXPECT_FALSE(graph.contains(e.hash));
  EXPECT_EQ(graph.find(e.hash), nullptr);
}

// Checks that `order` lists every change of `graph` once, each after all its deps.
void expectTopological(const ChangeGraph& graph, const std::vector<const ChangeEnvelope*>& order) {
  ASSERT_EQ(order.size(), graph.size());
  std::set<ChangeHash> seen;
  for (const ChangeEnvelope* c : order) {
    for (const ChangeHash& d : c->deps) {
      EXPECT_TRUE(seen.count(d)) << c->hash.toHex() << " comes before its dep " << d.toHex();
    }
    EXPECT_TRUE(seen.insert(c->hash).second) << "listed twice: " << c->hash.toHex();
  }
}

TEST(ChangeGraph, AcceptsAValidChain) {
  ChangeGraph graph;
  EXPECT_EQ(graph.size(), 0u);
  EXPECT_TRUE(graph.heads().empty());
  EXPECT_EQ(graph.maxOp(), 0u);
  EXPECT_EQ(graph.lastSeq(kA), 0u);

  ChangeEnvelope a1 = envelope(kA, 1, 1, 2, {});
  ChangeEnvelope a2 = envelope(kA, 2, 3, 1, {a1.hash});
  ChangeEnvelope a3 = envelope(kA, 3, 4, 5, {a2.hash});
  for (const ChangeEnvelope* e : {&a1, &a2, &a3}) {
    std::vector<const ChangeEnvelope*> applied;
    std::vector<Error> rejected;
    Result<AddOutcome> r = graph.add(*e, &applied, &rejected);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(*r, AddOutcome::Applied);
    ASSERT_EQ(applied.size(), 1u);
    EXPECT_EQ(applied[0]->hash, e->hash);
    EXPECT_TRUE(rejected.empty());
    EXPECT_EQ(graph.heads(), std::vector<ChangeHash>{e->hash});
  }
  EXPECT_EQ(graph.size(), 3u);
  EXPECT_EQ(graph.maxOp(), 8u);
  EXPECT_EQ(graph.lastSeq(kA), 3u);
  EXPECT_EQ(graph.lastSeq(kB), 0u);
  EXPECT_EQ(graph.pendingCount(), 0u);
  EXPECT_TRUE(graph.missingDeps().empty());
  ASSERT_TRUE(graph.contains(a2.hash));
  ASSERT_NE(graph.find(a2.hash), nullptr);
  EXPECT_EQ(graph.find(a2.hash)->payload, a2.payload);
  EXPECT_EQ(graph.find(a2.hash)->deps, a2.deps);
  EXPECT_EQ(hashesOf(graph.changes()), (std::vector<ChangeHash>{a1.hash, a2.hash, a3.hash}));
}

TEST(ChangeGraph, AcceptsAnEmptyChangeWhoseStartOpFollowsItsDeps) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 3, {});
  ChangeEnvelope a2 = envelope(kA, 2, 4, 0, {a1.hash});  // no ops: maxOp is startOp - 1
  ChangeEnvelope a3 = envelope(kA, 3, 4, 1, {a2.hash});  // so the next starts at 4 again
  EXPECT_EQ(addOk(graph, a1), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, a2), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, a3), AddOutcome::Applied);
  EXPECT_EQ(graph.maxOp(), 4u);
}

TEST(ChangeGraph, ReportsADuplicateOfAnAppliedOrQueuedChange) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope a2 = envelope(kA, 2, 2, 1, {a1.hash});
  ChangeEnvelope b1 = envelope(kB, 1, 1, 1, {});
  ChangeEnvelope b2 = envelope(kB, 2, 2, 1, {b1.hash});

  EXPECT_EQ(addOk(graph, a1), AddOutcome::Applied);
  std::vector<const ChangeEnvelope*> applied;
  Result<AddOutcome> again = graph.add(a1, &applied);
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_EQ(*again, AddOutcome::Duplicate);
  EXPECT_TRUE(applied.empty());
  EXPECT_EQ(graph.size(), 1u);

  EXPECT_EQ(addOk(graph, b2), AddOutcome::Queued);
  EXPECT_EQ(addOk(graph, b2), AddOutcome::Duplicate);
  EXPECT_EQ(graph.pendingCount(), 1u);

  EXPECT_EQ(addOk(graph, a2), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, a2), AddOutcome::Duplicate);
  EXPECT_EQ(graph.size(), 2u);
}

TEST(ChangeGraph, QueuesAChangeUntilItsDepArrives) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 2, {});
  ChangeEnvelope a2 = envelope(kA, 2, 3, 2, {a1.hash});

  std::vector<const ChangeEnvelope*> applied;
  Result<AddOutcome> r = graph.add(a2, &applied);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, AddOutcome::Queued);
  EXPECT_TRUE(applied.empty());
  EXPECT_EQ(graph.size(), 0u);
  EXPECT_EQ(graph.pendingCount(), 1u);
  EXPECT_EQ(graph.missingDeps(), std::vector<ChangeHash>{a1.hash});
  EXPECT_TRUE(graph.heads().empty());
  EXPECT_FALSE(graph.contains(a2.hash));
  EXPECT_EQ(graph.payloadBytes(), 0u);  // a queued change is not in the graph yet

  std::vector<Error> rejected;
  r = graph.add(a1, &applied, &rejected);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, AddOutcome::Applied);
  EXPECT_EQ(hashesOf(applied), (std::vector<ChangeHash>{a1.hash, a2.hash}));
  EXPECT_TRUE(rejected.empty());
  EXPECT_EQ(graph.size(), 2u);
  EXPECT_EQ(graph.pendingCount(), 0u);
  EXPECT_TRUE(graph.missingDeps().empty());
  EXPECT_EQ(graph.heads(), std::vector<ChangeHash>{a2.hash});
  EXPECT_EQ(graph.maxOp(), 4u);
  EXPECT_EQ(graph.payloadBytes(), a1.payload.size() + a2.payload.size());
}

TEST(ChangeGraph, UnblocksAQueuedChainInCausalOrder) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope a2 = envelope(kA, 2, 2, 1, {a1.hash});
  ChangeEnvelope b1 = envelope(kB, 1, 3, 1, {a2.hash});
  ChangeEnvelope a3 = envelope(kA, 3, 4, 1, {b1.hash});
  ChangeEnvelope c1 = envelope(kC, 1, 2, 1, {a1.hash});
  ChangeEnvelope m = envelope(kB, 2, 5, 1, {a3.hash, c1.hash});

  // Offered newest first: every one waits, and only a1 is missing (the rest are queued).
  for (const ChangeEnvelope* e : {&m, &a3, &c1, &b1, &a2}) {
    EXPECT_EQ(addOk(graph, *e), AddOutcome::Queued);
  }
  EXPECT_EQ(graph.pendingCount(), 5u);
  EXPECT_EQ(graph.missingDeps(), std::vector<ChangeHash>{a1.hash});
  EXPECT_EQ(graph.size(), 0u);

  std::vector<const ChangeEnvelope*> applied;
  std::vector<Error> rejected;
  Result<AddOutcome> r = graph.add(a1, &applied, &rejected);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, AddOutcome::Applied);
  EXPECT_TRUE(rejected.empty());
  ASSERT_EQ(applied.size(), 6u);
  EXPECT_EQ(applied[0]->hash, a1.hash);
  std::set<ChangeHash> seen;
  for (const ChangeEnvelope* c : applied) {
    for (const ChangeHash& d : c->deps) EXPECT_TRUE(seen.count(d)) << "applied before its dep";
    seen.insert(c->hash);
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(graph.size(), 6u);
  EXPECT_EQ(graph.pendingCount(), 0u);
  EXPECT_EQ(graph.heads(), std::vector<ChangeHash>{m.hash});
  expectTopological(graph, graph.changes());
}

TEST(ChangeGraph, MissingDepsListsEveryUnknownDepAscending) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope b1 = envelope(kB, 1, 1, 1, {});
  ChangeEnvelope c1 = envelope(kC, 1, 1, 1, {});
  ChangeEnvelope m = envelope(kC, 2, 2, 1, {a1.hash, b1.hash, c1.hash});
  EXPECT_EQ(addOk(graph, b1), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, m), AddOutcome::Queued);
  EXPECT_EQ(graph.missingDeps(), sorted({a1.hash, c1.hash}));
  EXPECT_EQ(addOk(graph, c1), AddOutcome::Applied);
  EXPECT_EQ(graph.missingDeps(), std::vector<ChangeHash>{a1.hash});
  EXPECT_EQ(graph.pendingCount(), 1u);
  std::vector<const ChangeEnvelope*> applied;
  ASSERT_TRUE(graph.add(a1, &applied).has_value());
  EXPECT_EQ(hashesOf(applied), (std::vector<ChangeHash>{a1.hash, m.hash}));
  EXPECT_EQ(graph.heads(), std::vector<ChangeHash>{m.hash});
}

TEST(ChangeGraph, RejectsDepsThatAreNotStrictlyAscending) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope b1 = envelope(kB, 1, 1, 1, {});
  EXPECT_EQ(addOk(graph, a1), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, b1), AddOutcome::Applied);
  std::vector<ChangeHash> descending = sorted({a1.hash, b1.hash});
  std::reverse(descending.begin(), descending.end());
  expectRejected(graph, envelope(kC, 1, 2, 1, descending, "desc", false), Errc::Malformed);
  expectRejected(graph, envelope(kC, 1, 2, 1, {a1.hash, a1.hash}, "dup", false), Errc::Malformed);
  // The same deps, ascending, are fine.
  EXPECT_EQ(addOk(graph, envelope(kC, 1, 2, 1, descending, "asc")), AddOutcome::Applied);
}

TEST(ChangeGraph, RejectsUnorderedDepsEvenWhenTheyAreMissing) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope b1 = envelope(kB, 1, 1, 1, {});
  std::vector<ChangeHash> descending = sorted({a1.hash, b1.hash});
  std::reverse(descending.begin(), descending.end());
  expectRejected(graph, envelope(kC, 1, 2, 1, descending, "desc", false), Errc::Malformed);
  EXPECT_EQ(graph.pendingCount(), 0u);
}

TEST(ChangeGraph, RejectsASeqGap) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  EXPECT_EQ(addOk(graph, a1), AddOutcome::Applied);
  expectRejected(graph, envelope(kA, 3, 2, 1, {a1.hash}), Errc::Malformed);
  // A repeated seq is a second change with that (actor, seq): equivocation.
  expectRejected(graph, envelope(kA, 1, 2, 1, {a1.hash}), Errc::Conflict);
  EXPECT_EQ(graph.lastSeq(kA), 1u);
  EXPECT_EQ(addOk(graph, envelope(kA, 2, 2, 1, {a1.hash})), AddOutcome::Applied);
}

TEST(ChangeGraph, RejectsAFirstChangeWhoseSeqIsNotOne) {
  ChangeGraph graph;
  expectRejected(graph, envelope(kA, 2, 1, 1, {}), Errc::Malformed);
  expectRejected(graph, envelope(kA, 0, 1, 1, {}), Errc::Malformed);
  ChangeEnvelope b1 = envelope(kB, 1, 1, 1, {});
  EXPECT_EQ(addOk(graph, b1), AddOutcome::Applied);
  // An actor's first change on top of someone else's must still be seq 1.
  expectRejected(graph, envelope(kA, 2, 2, 1, {b1.hash}), Errc::Malformed);
  EXPECT_EQ(addOk(graph, envelope(kA, 1, 2, 1, {b1.hash})), AddOutcome::Applied);
}

TEST(ChangeGraph, RejectsAStartOpThatDoesNotFollowItsDeps) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 4, {});  // ops 1..4
  ChangeEnvelope b1 = envelope(kB, 1, 1, 9, {});  // ops 1..9
  EXPECT_EQ(addOk(graph, a1), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, b1), AddOutcome::Applied);
  // No deps: startOp must be 1.
  expectRejected(graph, envelope(kC, 1, 2, 1, {}), Errc::Malformed);
  expectRejected(graph, envelope(kC, 1, 0, 1, {}), Errc::Malformed);
  // One dep: exactly 5.
  expectRejected(graph, envelope(kA, 2, 4, 1, {a1.hash}), Errc::Malformed);
  expectRejected(graph, envelope(kA, 2, 6, 1, {a1.hash}), Errc::Malformed);
  // Two deps: the larger maxOp (9) + 1, not the smaller.
  expectRejected(graph, envelope(kA, 2, 5, 1, {a1.hash, b1.hash}), Errc::Malformed);
  expectRejected(graph, envelope(kA, 2, 11, 1, {a1.hash, b1.hash}), Errc::Malformed);
  EXPECT_EQ(addOk(graph, envelope(kA, 2, 10, 1, {a1.hash, b1.hash})), AddOutcome::Applied);
}

TEST(ChangeGraph, RejectsAChangeWhoseActorsPreviousChangeIsNotInItsPast) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope b1 = envelope(kB, 1, 1, 1, {});
  EXPECT_EQ(addOk(graph, a1), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, b1), AddOutcome::Applied);
  // A's second change builds on B's chain only: A would have two concurrent chains.
  expectRejected(graph, envelope(kA, 2, 2, 1, {b1.hash}), Errc::Malformed);
  // Depending on a change that has a1 in its past is enough.
  ChangeEnvelope b2 = envelope(kB, 2, 2, 1, {a1.hash, b1.hash});
  EXPECT_EQ(addOk(graph, b2), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, envelope(kA, 2, 3, 1, {b2.hash})), AddOutcome::Applied);
}

TEST(ChangeGraph, RejectsASecondChainOfOneActorWhoseSeqWouldFit) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope a2 = envelope(kA, 2, 2, 1, {a1.hash});
  ChangeEnvelope b1 = envelope(kB, 1, 1, 1, {});
  ChangeEnvelope b2 = envelope(kB, 2, 2, 1, {a1.hash, b1.hash});
  for (const ChangeEnvelope* e : {&a1, &a2, &b1, &b2}) {
    EXPECT_EQ(addOk(graph, *e), AddOutcome::Applied);
  }
  // seq 3 follows a2 by number, but a2 is not in its causal past (only a1 is).
  expectRejected(graph, envelope(kA, 3, 3, 1, {b2.hash}), Errc::Malformed);
}

TEST(ChangeGraph, RejectsCountersBeyondTheBound) {
  ChangeGraph graph;
  expectRejected(graph, envelope(kA, 1, 1, kMaxCounter + 5, {}), Errc::Malformed);
  // startOp + opCount would wrap around to a small number.
  expectRejected(graph, envelope(kA, 1, 1, std::numeric_limits<std::uint64_t>::max(), {}),
                 Errc::Malformed);
  ChangeEnvelope a1 = envelope(kA, 1, 1, kMaxCounter - 10, {});
  EXPECT_EQ(addOk(graph, a1), AddOutcome::Applied);
  EXPECT_EQ(graph.maxOp(), kMaxCounter - 10);
  expectRejected(graph, envelope(kA, 2, kMaxCounter - 9, 100, {a1.hash}), Errc::Malformed);
  expectRejected(graph,
                 envelope(kA, 2, kMaxCounter - 9, std::numeric_limits<std::uint64_t>::max() - 5,
                          {a1.hash}),
                 Errc::Malformed);
  EXPECT_EQ(addOk(graph, envelope(kA, 2, kMaxCounter - 9, 2, {a1.hash})), AddOutcome::Applied);
}

TEST(ChangeGraph, RejectsEquivocationAsAConflict) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  EXPECT_EQ(addOk(graph, a1), AddOutcome::Applied);
  // A different first change by the same actor.
  expectRejected(graph, envelope(kA, 1, 1, 1, {}, "other"), Errc::Conflict);

  ChangeEnvelope a2 = envelope(kA, 2, 2, 1, {a1.hash});
  EXPECT_EQ(addOk(graph, a2), AddOutcome::Applied);
  expectRejected(graph, envelope(kA, 2, 2, 1, {a1.hash}, "other"), Errc::Conflict);
  EXPECT_EQ(graph.heads(), std::vector<ChangeHash>{a2.hash});
  EXPECT_EQ(graph.lastSeq(kA), 2u);
}

TEST(ChangeGraph, HeadsFollowBranchingAndMerging) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope a2 = envelope(kA, 2, 2, 1, {a1.hash});
  ChangeEnvelope b1 = envelope(kB, 1, 2, 3, {a1.hash});
  ChangeEnvelope c1 = envelope(kC, 1, 2, 1, {a1.hash});
  EXPECT_EQ(addOk(graph, a1), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, a2), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, b1), AddOutcome::Applied);
  EXPECT_EQ(graph.heads(), sorted({a2.hash, b1.hash}));
  EXPECT_EQ(addOk(graph, c1), AddOutcome::Applied);
  EXPECT_EQ(graph.heads(), sorted({a2.hash, b1.hash, c1.hash}));

  ChangeEnvelope m1 = envelope(kA, 3, 5, 1, {a2.hash, b1.hash});
  EXPECT_EQ(addOk(graph, m1), AddOutcome::Applied);
  EXPECT_EQ(graph.heads(), sorted({m1.hash, c1.hash}));
  ChangeEnvelope m2 = envelope(kC, 2, 6, 1, {c1.hash, m1.hash});
  EXPECT_EQ(addOk(graph, m2), AddOutcome::Applied);
  EXPECT_EQ(graph.heads(), std::vector<ChangeHash>{m2.hash});
  EXPECT_EQ(graph.maxOp(), 6u);
}

TEST(ChangeGraph, AddLocalAppendsOnTopOfTheHeads) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 2, {});
  ChangeEnvelope b1 = envelope(kB, 1, 1, 1, {});
  EXPECT_EQ(addOk(graph, a1), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, b1), AddOutcome::Applied);
  const ChangeEnvelope& local = graph.addLocal(envelope(kA, 2, 3, 1, graph.heads()));
  EXPECT_EQ(local.seq, 2u);
  EXPECT_EQ(graph.heads(), std::vector<ChangeHash>{local.hash});
  EXPECT_EQ(graph.size(), 3u);
  EXPECT_EQ(graph.lastSeq(kA), 2u);
}

TEST(ChangeGraph, ChangesSinceListsWhatIsNotInThePastOfTheHeads) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope a2 = envelope(kA, 2, 2, 1, {a1.hash});
  ChangeEnvelope b1 = envelope(kB, 1, 2, 1, {a1.hash});
  ChangeEnvelope a3 = envelope(kA, 3, 3, 1, {a2.hash, b1.hash});
  for (const ChangeEnvelope* e : {&a1, &a2, &b1, &a3}) {
    EXPECT_EQ(addOk(graph, *e), AddOutcome::Applied);
  }
  using H = std::vector<ChangeHash>;
  const ChangeHash unknown = ChangeHash::of(Bytes{1, 2, 3});

  EXPECT_EQ(hashesOf(graph.changesSince({})), (H{a1.hash, a2.hash, b1.hash, a3.hash}));
  EXPECT_EQ(hashesOf(graph.changesSince(H{a1.hash})), (H{a2.hash, b1.hash, a3.hash}));
  EXPECT_EQ(hashesOf(graph.changesSince(H{a2.hash})), (H{b1.hash, a3.hash}));
  EXPECT_EQ(hashesOf(graph.changesSince(H{b1.hash})), (H{a2.hash, a3.hash}));
  EXPECT_EQ(hashesOf(graph.changesSince(sorted({a2.hash, b1.hash}))), (H{a3.hash}));
  EXPECT_TRUE(graph.changesSince(H{a3.hash}).empty());
  // Hashes the graph does not know are ignored.
  EXPECT_EQ(hashesOf(graph.changesSince(H{unknown})), (H{a1.hash, a2.hash, b1.hash, a3.hash}));
  EXPECT_EQ(hashesOf(graph.changesSince(sorted({unknown, a2.hash}))), (H{b1.hash, a3.hash}));
  EXPECT_TRUE(graph.changesSince(sorted({unknown, a3.hash})).empty());
}

TEST(ChangeGraph, ChangesAfterAndPositionOfFollowTheOrderOfArrival) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope b1 = envelope(kB, 1, 2, 1, {a1.hash});
  ChangeEnvelope a2 = envelope(kA, 2, 2, 1, {a1.hash});
  ChangeEnvelope queued = envelope(kA, 3, 3, 1, {a2.hash});
  // a2 arrives after what depends on it: it waits, and enters only after a2.
  for (const ChangeEnvelope* e : {&a1, &b1}) EXPECT_EQ(addOk(graph, *e), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, queued), AddOutcome::Queued);
  EXPECT_EQ(addOk(graph, a2), AddOutcome::Applied);
  using H = std::vector<ChangeHash>;
  EXPECT_EQ(hashesOf(graph.changesAfter(0)), (H{a1.hash, b1.hash, a2.hash, queued.hash}));
  EXPECT_EQ(hashesOf(graph.changesAfter(2)), (H{a2.hash, queued.hash}));
  EXPECT_TRUE(graph.changesAfter(4).empty());
  EXPECT_TRUE(graph.changesAfter(100).empty());
  EXPECT_EQ(graph.positionOf(a1.hash), std::optional<std::size_t>(0));
  EXPECT_EQ(graph.positionOf(a2.hash), std::optional<std::size_t>(2));
  EXPECT_EQ(graph.positionOf(queued.hash), std::optional<std::size_t>(3));
  EXPECT_EQ(graph.positionOf(ChangeHash::of(Bytes{9})), std::nullopt);
}

TEST(ChangeGraph, ChangesSinceExcludesQueuedChanges) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope a2 = envelope(kA, 2, 2, 1, {a1.hash});
  ChangeEnvelope b1 = envelope(kB, 1, 1, 1, {});
  ChangeEnvelope b2 = envelope(kB, 2, 2, 1, {b1.hash});
  EXPECT_EQ(addOk(graph, a1), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, a2), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, b2), AddOutcome::Queued);
  EXPECT_EQ(hashesOf(graph.changesSince({})), (std::vector<ChangeHash>{a1.hash, a2.hash}));
  EXPECT_EQ(hashesOf(graph.changes()), (std::vector<ChangeHash>{a1.hash, a2.hash}));
  EXPECT_EQ(graph.canonicalOrder().size(), 2u);
}

TEST(ChangeGraph, CanonicalOrderBreaksTiesByAscendingHash) {
  ChangeGraph graph;
  ChangeEnvelope root = envelope(kA, 1, 1, 1, {});
  // Five concurrent children of root, added in an order unrelated to their hashes.
  std::vector<ChangeEnvelope> kids;
  for (std::uint8_t i = 0; i < 5; ++i) {
    kids.push_back(envelope(actorOf(static_cast<std::uint8_t>(0x10 + i)), 1, 2, 1, {root.hash}));
  }
  std::vector<ChangeHash> kidHashes;
  for (const ChangeEnvelope& k : kids) kidHashes.push_back(k.hash);
  ChangeEnvelope merge = envelope(kA, 2, 3, 1, sorted(kidHashes));

  EXPECT_EQ(addOk(graph, root), AddOutcome::Applied);
  for (const ChangeEnvelope& k : kids) EXPECT_EQ(addOk(graph, k), AddOutcome::Applied);
  EXPECT_EQ(addOk(graph, merge), AddOutcome::Applied);

  std::vector<ChangeHash> expected{root.hash};
  for (const ChangeHash& h : sorted(kidHashes)) expected.push_back(h);
  expected.push_back(merge.hash);
  ASSERT_NE(sorted(kidHashes), kidHashes) << "test setup: the kids must not be added in order";
  EXPECT_EQ(hashesOf(graph.canonicalOrder()), expected);
}

// A random DAG of several actors, each change valid against its deps.
std::vector<ChangeEnvelope> randomHistory(std::uint32_t seed, int count) {
  std::mt19937 rng(seed);
  std::vector<ActorId> actors{kA, kB, kC, actorOf(0x01)};
  struct Known {
    std::uint64_t maxOp;
    std::set<ChangeHash> past;  // itself included
  };
  std::map<ChangeHash, Known> known;
  std::map<ActorId, std::pair<std::uint64_t, ChangeHash>> lastOf;  // actor -> (seq, hash)
  std::vector<ChangeEnvelope> out;
  while (static_cast<int>(out.size()) < count) {
    const ActorId& actor = actors[rng() % actors.size()];
    std::set<ChangeHash> deps;
    auto last = lastOf.find(actor);
    if (last != lastOf.end()) deps.insert(last->second.second);
    for (const ChangeEnvelope& c : out) {
      if (rng() % 4 == 0) deps.insert(c.hash);
    }
    // Keep only the heads of the chosen set, as a real replica would.
    std::set<ChangeHash> heads = deps;
    for (const ChangeHash& d : deps) {
      for (const ChangeHash& p : known[d].past) {
        if (p != d) heads.erase(p);
      }
    }
    std::uint64_t startOp = 1;
    std::set<ChangeHash> past;
    for (const ChangeHash& d : heads) {
      startOp = std::max(startOp, known[d].maxOp + 1);
      past.insert(known[d].past.begin(), known[d].past.end());
    }
    std::uint64_t seq = last == lastOf.end() ? 1 : last->second.first + 1;
    ChangeEnvelope e = envelope(actor, seq, startOp, 1 + rng() % 3,
                                std::vector<ChangeHash>(heads.begin(), heads.end()));
    past.insert(e.hash);
    known[e.hash] = {e.maxOp(), std::move(past)};
    lastOf[actor] = {seq, e.hash};
    out.push_back(std::move(e));
  }
  return out;
}

TEST(ChangeGraph, CanonicalOrderIsTheSameWhateverTheArrivalOrder) {
  for (std::uint32_t seed = 1; seed <= 5; ++seed) {
    SCOPED_TRACE(seed);
    std::vector<ChangeEnvelope> history = randomHistory(seed, 40);

    ChangeGraph inOrder;
    for (const ChangeEnvelope& e : history) {
      ASSERT_EQ(addOk(inOrder, e), AddOutcome::Applied);
    }
    ChangeGraph shuffled;
    std::vector<ChangeEnvelope> mixed = history;
    std::shuffle(mixed.begin(), mixed.end(), std::mt19937(seed * 7919));
    std::vector<const ChangeEnvelope*> applied;
    std::vector<Error> rejected;
    for (const ChangeEnvelope& e : mixed) {
      Result<AddOutcome> r = shuffled.add(e, &applied, &rejected);
      ASSERT_TRUE(r.has_value()) << r.error().message();
      EXPECT_NE(*r, AddOutcome::Duplicate);
    }
    EXPECT_TRUE(rejected.empty());
    EXPECT_EQ(applied.size(), history.size());
    EXPECT_EQ(shuffled.size(), history.size());
    EXPECT_EQ(shuffled.pendingCount(), 0u);
    EXPECT_EQ(shuffled.heads(), inOrder.heads());

    std::vector<const ChangeEnvelope*> a = inOrder.canonicalOrder();
    std::vector<const ChangeEnvelope*> b = shuffled.canonicalOrder();
    expectTopological(inOrder, a);
    expectTopological(shuffled, b);
    EXPECT_EQ(hashesOf(a), hashesOf(b));
    expectTopological(shuffled, shuffled.changes());
    expectTopological(shuffled, shuffled.changesSince({}));
  }
}

TEST(ChangeGraph, CanonicalOrderIsRightWhenReadBetweenAdditions) {
  // A read leaves the order partly sorted and partly appended (in order or not); every later
  // read must still give the whole canonical order, payloads included.
  for (std::uint32_t seed = 1; seed <= 3; ++seed) {
    SCOPED_TRACE(seed);
    std::vector<ChangeEnvelope> history = randomHistory(seed, 40);
    std::vector<ChangeEnvelope> mixed = history;
    std::shuffle(mixed.begin(), mixed.end(), std::mt19937(seed * 104729));
    for (const std::vector<ChangeEnvelope>* arrival : {&history, &mixed}) {
      ChangeGraph graph;
      for (const ChangeEnvelope& e : *arrival) {
        ASSERT_TRUE(graph.add(e).has_value());
        // The expected order, from generations counted here over the graph's own order.
        std::map<ChangeHash, std::uint64_t> generation;
        std::vector<const ChangeEnvelope*> expected = graph.changes();
        for (const ChangeEnvelope* c : expected) {
          std::uint64_t g = 1;
          for (const ChangeHash& d : c->deps) g = std::max(g, generation.at(d) + 1);
          generation[c->hash] = g;
        }
        std::sort(expected.begin(), expected.end(),
                  [&](const ChangeEnvelope* a, const ChangeEnvelope* b) {
                    return std::pair(generation.at(a->hash), a->hash) <
                           std::pair(generation.at(b->hash), b->hash);
                  });
        ASSERT_EQ(hashesOf(graph.canonicalOrder()), hashesOf(expected));
        std::vector<ByteView> payloads;
        graph.forEachCanonicalPayload([&](ByteView p) { payloads.push_back(p); });
        ASSERT_EQ(payloads.size(), expected.size());
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < expected.size(); ++i) {
          EXPECT_EQ(payloads[i].data(), expected[i]->payload.data());
          bytes += expected[i]->payload.size();
        }
        EXPECT_EQ(graph.payloadBytes(), bytes);
      }
    }
  }
}

TEST(ChangeGraph, RefusesToQueueMoreChangesThanTheBound) {
  ChangeGraph graph(ChangeGraphOptions{.maxPendingChanges = 2, .maxPendingBytes = 1u << 20});
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope a2 = envelope(kA, 2, 2, 1, {a1.hash});
  ChangeEnvelope a3 = envelope(kA, 3, 3, 1, {a2.hash});
  ChangeEnvelope a4 = envelope(kA, 4, 4, 1, {a3.hash});
  EXPECT_EQ(addOk(graph, a2), AddOutcome::Queued);
  EXPECT_EQ(addOk(graph, a3), AddOutcome::Queued);
  expectRejected(graph, a4, Errc::Overloaded);
  EXPECT_EQ(graph.pendingCount(), 2u);

  // Applied changes free the queue.
  std::vector<const ChangeEnvelope*> applied;
  ASSERT_TRUE(graph.add(a1, &applied).has_value());
  EXPECT_EQ(hashesOf(applied), (std::vector<ChangeHash>{a1.hash, a2.hash, a3.hash}));
  EXPECT_EQ(graph.pendingCount(), 0u);
  EXPECT_EQ(addOk(graph, a4), AddOutcome::Applied);

  // An envelope that can be applied at once is never refused for the queue's sake.
  ChangeEnvelope b1 = envelope(kB, 1, 1, 1, {});
  ChangeEnvelope b2 = envelope(kB, 2, 2, 1, {b1.hash});
  ChangeEnvelope b3 = envelope(kB, 3, 3, 1, {b2.hash});
  ChangeEnvelope b4 = envelope(kB, 4, 4, 1, {b3.hash});
  EXPECT_EQ(addOk(graph, b3), AddOutcome::Queued);
  EXPECT_EQ(addOk(graph, b4), AddOutcome::Queued);
  EXPECT_EQ(addOk(graph, b1), AddOutcome::Applied);
  EXPECT_EQ(graph.pendingCount(), 2u);
}

TEST(ChangeGraph, RefusesToQueueMoreBytesThanTheBound) {
  ChangeGraph graph(ChangeGraphOptions{.maxPendingChanges = 100, .maxPendingBytes = 1000});
  ChangeEnvelope a1 = envelope(kA, 1, 1, 1, {});
  ChangeEnvelope a2 = envelope(kA, 2, 2, 1, {a1.hash}, std::string(600, 'x'));
  ChangeEnvelope a3 = envelope(kA, 3, 3, 1, {a2.hash}, std::string(600, 'y'));
  ChangeEnvelope b2 = envelope(kB, 2, 2, 1, {ChangeHash::of(Bytes{9})}, std::string(100, 'z'));
  EXPECT_EQ(addOk(graph, a2), AddOutcome::Queued);
  expectRejected(graph, a3, Errc::Overloaded);
  EXPECT_EQ(graph.pendingCount(), 1u);
  // A small one still fits.
  EXPECT_EQ(addOk(graph, b2), AddOutcome::Queued);
  EXPECT_EQ(graph.pendingCount(), 2u);

  std::vector<const ChangeEnvelope*> applied;
  ASSERT_TRUE(graph.add(a1, &applied).has_value());
  EXPECT_EQ(hashesOf(applied), (std::vector<ChangeHash>{a1.hash, a2.hash}));
  EXPECT_EQ(graph.pendingCount(), 1u);
  EXPECT_EQ(addOk(graph, a3), AddOutcome::Applied);
}

TEST(ChangeGraph, DropsAQueuedChangeThatProvesInvalidWhenItsDepsArrive) {
  ChangeGraph graph;
  ChangeEnvelope a1 = envelope(kA, 1, 1, 3, {});
  ChangeEnvelope badStart = envelope(kA, 2, 99, 1, {a1.hash});  // startOp should be 4
  ChangeEnvelope b1 = envelope(kB, 1, 4, 1, {a1.hash});
  ChangeEnvelope good = envelope(kC, 1, 4, 2, {a1.hash});
  EXPECT_EQ(addOk(graph, badStart), AddOutcome::Queued);
  EXPECT_EQ(addOk(graph, good), AddOutcome::Queued);
  EXPECT_EQ(graph.pendingCount(), 2u);

  std::vector<const ChangeEnvelope*> applied;
  std::vector<Error> rejected;
  Result<AddOutcome> r = graph.add(a1, &applied, &rejected);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, AddOutcome::Applied);
  EXPECT_EQ(hashesOf(applied), (std::vector<ChangeHash>{a1.hash, good.hash}));
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].code(), Errc::Malformed) << rejected[0].message();
  EXPECT_FALSE(graph.contains(badStart.hash));
  EXPECT_EQ(graph.pendingCount(), 0u);
  EXPECT_TRUE(graph.missingDeps().empty());
  EXPECT_EQ(graph.size(), 2u);
  EXPECT_EQ(graph.heads(), std::vector<ChangeHash>{good.hash});
  EXPECT_EQ(graph.lastSeq(kA), 1u);
  // The dropped change may be offered again and is judged afresh (and still refused).
  expectRejected(graph, badStart, Errc::Malformed);

  // Equivocation discovered on unblocking: b1's twin waits for c2, and b1 arrives meanwhile.
  ChangeEnvelope c2 = envelope(kC, 2, 6, 1, {good.hash});
  ChangeEnvelope twin = envelope(kB, 1, 7, 1, {c2.hash}, "twin");
  EXPECT_EQ(addOk(graph, twin), AddOutcome::Queued);
  EXPECT_EQ(addOk(graph, b1), AddOutcome::Applied);
  applied.clear();
  rejected.clear();
  r = graph.add(c2, &applied, &rejected);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(hashesOf(applied), std::vector<ChangeHash>{c2.hash});
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].code(), Errc::Conflict) << rejected[0].message();
  EXPECT_FALSE(graph.contains(twin.hash));
  EXPECT_TRUE(graph.contains(b1.hash));
  EXPECT_EQ(graph.pendingCount(), 0u);
}

}  // namespace
}  // namespace portcullis
