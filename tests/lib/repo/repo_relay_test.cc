// What the Repo sends back and what it relays (architecture §5): changes a peer has just sent are
// never sent back to that same peer, whether they came as edits, as a found document or spread
// over many frames, while they are still relayed to every other peer and every replica
// converges. The changes are counted in the bytes each side of a memory link sent.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "portcullis/frame_length.h"
#include "portcullis/repo.h"
#include "repo_harness.h"
#include "wire/sync_codec.h"

namespace portcullis::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Every frame one side of a link sent, decoded: the `open` handshake's claimed ID comes first
// (one length byte, then the ID), then frames, each a u32 big-endian length and its bytes. A
// frame not yet whole at the end is left out.
std::vector<detail::SyncMessage> framesSent(const std::vector<std::uint8_t>& bytes) {
  std::vector<detail::SyncMessage> out;
  if (bytes.empty()) return out;
  std::size_t at = 1 + std::size_t{bytes[0]};
  while (at + kFrameLengthBytes <= bytes.size()) {
    const std::size_t length =
        decodeFrameLength(std::span<const std::uint8_t, kFrameLengthBytes>(bytes.data() + at,
                                                                          kFrameLengthBytes));
    at += kFrameLengthBytes;
    if (at + length > bytes.size()) break;
    auto decoded = detail::decodeMessage(ByteView(bytes.data() + at, length));
    EXPECT_TRUE(decoded) << "a frame on the wire does not decode: " << decoded.error().message();
    if (decoded) out.push_back(std::move(*decoded));
    at += length;
  }
  return out;
}

// The payloads of every change of `doc` (as `holder` has them).
std::set<Bytes> payloadsOf(const DocHandle& holder) {
  std::set<Bytes> out;
  for (const ChangeEnvelope* e : holder.doc().graph().changes()) out.insert(e->payload);
  return out;
}

// How many changes among those in `payloads` one side of a link sent, counting repeats.
std::size_t changesSent(const std::vector<std::uint8_t>& bytes, const std::set<Bytes>& payloads) {
  std::size_t n = 0;
  for (const detail::SyncMessage& m : framesSent(bytes)) {
    if (const auto* sync = std::get_if<detail::SyncMsg>(&m)) {
      n += static_cast<std::size_t>(std::count_if(
          sync->changes.begin(), sync->changes.end(),
          [&](const Bytes& c) { return payloads.contains(c); }));
    }
  }
  return n;
}

// All change payloads one side of a link sent, counting repeats.
std::size_t allChangesSent(const std::vector<std::uint8_t>& bytes) {
  std::size_t n = 0;
  for (const detail::SyncMessage& m : framesSent(bytes)) {
    if (const auto* sync = std::get_if<detail::SyncMsg>(&m)) n += sync->changes.size();
  }
  return n;
}

bool sameHeads(const TestPeer& peer, const DocHandle& doc) {
  auto there = peer.repo->findLocal(doc.id());
  return there && there->heads() == doc.heads();
}

TEST(RepoRelay, ChangesAPeerSentAreNeverSentBackToIt) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto link = h.link(a, b);  // a dials: a's bytes are the dialer's
  DocHandle doc = a.repo->create();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(doc.change(put("k" + std::to_string(i), std::to_string(round))));
    }
    ASSERT_TRUE(h.runUntil([&] { return sameHeads(b, doc); }, 2s)) << "round " << round;
  }
  h.runFor(100ms);  // anything b would send back has been sent by now
  const std::set<Bytes> fromA = payloadsOf(doc);
  ASSERT_EQ(fromA.size(), 12u);
  EXPECT_EQ(changesSent(link->bytesFromDialer(), fromA), 12u)
      << "a control: a sent each of its changes exactly once";
  EXPECT_EQ(allChangesSent(link->bytesFromAcceptor()), 0u)
      << "b, which made no change, sent changes to a";

  // And the other way: b's change reaches a once and is not sent back to b.
  DocHandle there = *b.repo->findLocal(doc.id());
  auto hash = there.change(put("fromB", "y"));
  ASSERT_TRUE(hash && *hash);
  const std::set<Bytes> fromB{*there.doc().getChange(**hash)};
  ASSERT_TRUE(h.runUntil([&] { return readString(doc, "fromB") == "y"; }, 2s));
  h.runFor(100ms);
  EXPECT_EQ(changesSent(link->bytesFromAcceptor(), fromB), 1u);
  EXPECT_EQ(changesSent(link->bytesFromDialer(), fromB), 0u);
  EXPECT_EQ(changesSent(link->bytesFromAcceptor(), fromA), 0u);
  EXPECT_EQ(doc.toJson(), there.toJson());
}

TEST(RepoRelay, AHistoryThatArrivesInManyFramesIsNotSentBack) {
  // Batches of about one change: most frames carry changes that lead to heads the receiver
  // does not have yet.
  RepoHarness h;
  auto smallFrames = [](RepoOptions& o) { o.syncBatchBytes = 64; };
  auto& a = h.add("a", smallFrames);
  auto& b = h.add("b", smallFrames);
  auto link = h.link(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1) && connected(b, 1); }, 2s));
  DocHandle doc = a.repo->create();
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(doc.change(put("k" + std::to_string(i), "x")));
  ASSERT_TRUE(h.runUntil([&] { return sameHeads(b, doc); }, 3s));
  h.runFor(100ms);
  const std::set<Bytes> fromA = payloadsOf(doc);
  ASSERT_EQ(fromA.size(), 30u);
  EXPECT_GE(changesSent(link->bytesFromDialer(), fromA), 30u) << "a control";
  EXPECT_EQ(changesSent(link->bytesFromAcceptor(), fromA), 0u);
}

TEST(RepoRelay, AFoundDocumentIsNotSentBackToThePeerItCameFrom) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b", [](RepoOptions& o) { o.findTimeout = 3000ms; });
  a.auth->advertise = [](auto&, auto&) { return false; };
  auto link = h.link(b, a);  // b dials: b's bytes are the dialer's
  DocHandle doc = a.repo->create();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(doc.change(put("k" + std::to_string(i), "v")));
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1) && connected(b, 1); }, 2s));

  auto found = h.await(b.repo->find(doc.id()), 5s);
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(found->heads(), doc.heads());
  h.runFor(150ms);
  const std::set<Bytes> fromA = payloadsOf(doc);
  EXPECT_EQ(changesSent(link->bytesFromAcceptor(), fromA), 5u) << "a control";
  EXPECT_EQ(changesSent(link->bytesFromDialer(), fromA), 0u);
}

TEST(RepoRelay, ChangesAreStillRelayedToAThirdPeerAndNotSentBackToEither) {
  // a - b - c in a line: a's changes reach c only through b, and c's reach a only through b.
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto& c = h.add("c");
  auto ab = h.link(a, b);
  auto cb = h.link(c, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1) && connected(b, 2) && connected(c, 1); }, 2s));
  DocHandle doc = a.repo->create();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(doc.change(put("a" + std::to_string(i), "x")));
  ASSERT_TRUE(h.runUntil([&] { return sameHeads(c, doc); }, 3s));
  DocHandle atC = *c.repo->findLocal(doc.id());
  auto hash = atC.change(put("fromC", "y"));
  ASSERT_TRUE(hash && *hash);
  const std::set<Bytes> fromC{*atC.doc().getChange(**hash)};
  ASSERT_TRUE(h.runUntil([&] { return readString(doc, "fromC") == "y" && sameHeads(b, doc); }, 3s));
  h.runFor(150ms);

  const std::set<Bytes> fromA = [&] {
    std::set<Bytes> out = payloadsOf(doc);
    out.erase(*fromC.begin());
    return out;
  }();
  ASSERT_EQ(fromA.size(), 6u);
  // Relayed: b sends c every change of a's once, and a c's change once.
  EXPECT_EQ(changesSent(cb->bytesFromAcceptor(), fromA), 6u);
  EXPECT_EQ(changesSent(ab->bytesFromAcceptor(), fromC), 1u);
  // Never back to where they came from.
  EXPECT_EQ(changesSent(ab->bytesFromAcceptor(), fromA), 0u);
  EXPECT_EQ(changesSent(cb->bytesFromDialer(), fromA), 0u);
  EXPECT_EQ(changesSent(cb->bytesFromAcceptor(), fromC), 0u);
  EXPECT_EQ(changesSent(ab->bytesFromDialer(), fromC), 0u);
  EXPECT_EQ(doc.toJson(), atC.toJson());
  EXPECT_EQ(doc.toJson(), b.repo->findLocal(doc.id())->toJson());
}

TEST(RepoRelay, PeersThatEditAtTheSameTimeConvergeAndSendNothingBack) {
  // With a delay on the link, each side's changes arrive while it has changes of its own the
  // other lacks: what each knows the other holds must follow both.
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto link = h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("start", "1")));
  ASSERT_TRUE(h.runUntil([&] { return sameHeads(b, doc); }, 2s));
  DocHandle there = *b.repo->findLocal(doc.id());
  link->setDelay(10ms);
  std::set<Bytes> fromA, fromB;
  for (int i = 0; i < 8; ++i) {
    auto ha = doc.change(put("a" + std::to_string(i), "x"));
    auto hb = there.change(put("b" + std::to_string(i), "y"));
    ASSERT_TRUE(ha && *ha && hb && *hb);
    fromA.insert(*doc.doc().getChange(**ha));
    fromB.insert(*there.doc().getChange(**hb));
    h.runFor(7ms);
  }
  ASSERT_TRUE(h.runUntil([&] { return doc.heads() == there.heads(); }, 3s));
  h.runFor(150ms);
  EXPECT_EQ(doc.toJson(), there.toJson());
  EXPECT_EQ(doc.doc().graph().size(), 17u);
  EXPECT_EQ(changesSent(link->bytesFromDialer(), fromA), 8u);
  EXPECT_EQ(changesSent(link->bytesFromAcceptor(), fromB), 8u);
  EXPECT_EQ(changesSent(link->bytesFromAcceptor(), fromA), 0u);
  EXPECT_EQ(changesSent(link->bytesFromDialer(), fromB), 0u);
}

TEST(RepoRelay, ChangesFromTwoPeersMeetAtAThirdAndEveryReplicaConverges) {
  // a and c both write to b at once; b holds changes from one peer the other lacks when the
  // other's arrive, and relays each to the other.
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto& c = h.add("c");
  auto ab = h.link(a, b);
  auto cb = h.link(c, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("start", "1")));
  ASSERT_TRUE(h.runUntil([&] { return sameHeads(c, doc); }, 2s));
  DocHandle atC = *c.repo->findLocal(doc.id());
  ab->setDelay(5ms);
  cb->setDelay(9ms);
  std::set<Bytes> fromA, fromC;
  for (int i = 0; i < 6; ++i) {
    auto ha = doc.change(put("a" + std::to_string(i), "x"));
    auto hc = atC.change(put("c" + std::to_string(i), "z"));
    ASSERT_TRUE(ha && *ha && hc && *hc);
    fromA.insert(*doc.doc().getChange(**ha));
    fromC.insert(*atC.doc().getChange(**hc));
    h.runFor(4ms);
  }
  ASSERT_TRUE(h.runUntil([&] { return doc.heads() == atC.heads() && sameHeads(b, doc); }, 3s));
  h.runFor(150ms);
  EXPECT_EQ(doc.toJson(), atC.toJson());
  EXPECT_EQ(changesSent(cb->bytesFromAcceptor(), fromA), 6u) << "relayed to c";
  EXPECT_EQ(changesSent(ab->bytesFromAcceptor(), fromC), 6u) << "relayed to a";
  EXPECT_EQ(changesSent(ab->bytesFromAcceptor(), fromA), 0u);
  EXPECT_EQ(changesSent(cb->bytesFromAcceptor(), fromC), 0u);
}

}  // namespace
}  // namespace portcullis::testing
