// Refused writes (sync.capnp `Refused`): a peer whose changes okToReceive refused is told which
// of them are lost and nothing more; the writer's Repo reports them (changesRefusedByPeer,
// peerRefused) and keeps what a peer can make it remember bounded; a document the writer may not
// see gets no answer at all; and a frame of a kind this version does not know is ignored, as an
// older peer ignores `refused`.
#include <gtest/gtest.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <algorithm>

#include "portcullis/frame_length.h"
#include "portcullis/repo.h"
#include "repo/repo_impl.h"
#include "repo_harness.h"
#include "sync.capnp.h"
#include "wire/sync_codec.h"

namespace portcullis::testing {
namespace {

namespace schema = ::portcullis::schema;

// Every whole frame one side of a link sent, after the `open` handshake's claimed ID (one length
// byte, then the ID): each a u32 big-endian length and its bytes.
std::vector<Bytes> rawFramesSent(const std::vector<std::uint8_t>& bytes) {
  std::vector<Bytes> out;
  if (bytes.empty()) return out;
  std::size_t at = 1 + std::size_t{bytes[0]};
  while (at + kFrameLengthBytes <= bytes.size()) {
    const std::size_t length = decodeFrameLength(
        std::span<const std::uint8_t, kFrameLengthBytes>(bytes.data() + at, kFrameLengthBytes));
    at += kFrameLengthBytes;
    if (at + length > bytes.size()) break;
    out.emplace_back(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                     bytes.begin() + static_cast<std::ptrdiff_t>(at + length));
    at += length;
  }
  return out;
}

// The `refused` frames among them, as bytes and decoded.
std::vector<std::pair<Bytes, detail::RefusedMsg>> refusalsSent(const std::vector<std::uint8_t>& bytes) {
  std::vector<std::pair<Bytes, detail::RefusedMsg>> out;
  for (Bytes& frame : rawFramesSent(bytes)) {
    auto decoded = detail::decodeMessage(frame);
    EXPECT_TRUE(decoded) << decoded.error().message();
    if (!decoded) continue;
    if (auto* r = std::get_if<detail::RefusedMsg>(&*decoded)) out.emplace_back(std::move(frame), *r);
  }
  return out;
}

// What a Repo's changesRefusedByPeer reported.
struct Refusals {
  std::vector<std::tuple<PeerId, DocumentId, std::vector<ChangeHash>>> events;
  std::size_t hashes() const {
    std::size_t n = 0;
    for (const auto& e : events) n += std::get<2>(e).size();
    return n;
  }
};

std::function<void(RepoOptions&)> recording(const std::shared_ptr<Refusals>& into,
                                            std::function<void(RepoOptions&)> more = {}) {
  return [into, more](RepoOptions& o) {
    o.events.changesRefusedByPeer = [into](const PeerId& p, const DocumentId& d,
                                           const std::vector<ChangeHash>& h) {
      into->events.emplace_back(p, d, h);
    };
    if (more) more(o);
  };
}

Bytes frameOf(const detail::SyncMessage& m) { return detail::encodeMessage(m); }

// Dials `target` as raw peer "r" and waits until `target` lists it.
void openRawPeer(RepoHarness& h, RawPeer& raw, TestPeer& target) {
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, target, "r", helloFrame("r")));
  ASSERT_TRUE(h.runUntil([&] { return lists(target, "r"); }, 2s));
}

// Sends each frame in turn; stops at the first failure. (Each awaitable is made first and then
// awaited: no temporary with a destructor inside a co_await expression, for g++ 12.)
asio::awaitable<Result<void>> sendEach(RawPeer& raw, std::vector<Bytes> frames) {
  for (Bytes& f : frames) {
    auto sending = raw.send(std::move(f));
    auto sent = co_await std::move(sending);
    if (!sent) co_return sent;
  }
  co_return Result<void>();
}

// `count` changes on top of `base` (payloads applied in order), made outside any Repo.
std::vector<Bytes> changesOnTop(const std::vector<Bytes>& base, int count,
                                std::vector<ChangeHash>* hashes = nullptr) {
  Document d;
  const ApplyReport applied = d.applyChanges(base);
  EXPECT_EQ(applied.applied, base.size());
  std::vector<Bytes> out;
  for (int i = 0; i < count; ++i) {
    Transaction tx = d.transaction();
    EXPECT_TRUE(tx.put(ObjId::root(), "r" + std::to_string(i), ScalarValue(std::int64_t{i})));
    const std::optional<ChangeHash> hash = tx.commit();
    EXPECT_TRUE(hash);
    if (!hash) break;
    out.push_back(*d.getChange(*hash));
    if (hashes) hashes->push_back(*hash);
  }
  return out;
}

TEST(RepoRefusal, AWriterWhoseChangeIsRefusedLearnsWhichChangeAndNothingMore) {
  RepoHarness h;
  auto storage = std::make_shared<MemoryStorageAdapter>();
  auto& a = h.add("a", [&](RepoOptions& o) {
    o.storage = storage;
    o.saveDelay = 10ms;
  });
  auto atB = std::make_shared<Refusals>();
  auto atC = std::make_shared<Refusals>();
  auto& b = h.add("b", recording(atB));  // may read, may not write
  auto& c = h.add("c", recording(atC));  // may read and write: the accept path
  a.auth->receive = [](const PeerId& p, auto&) { return p.str() != "b"; };
  auto ba = h.link(b, a);
  auto ca = h.link(c, a);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "bar") && holds(c, doc.id(), "foo", "bar"); }, 2s));

  DocHandle there = *b.repo->findLocal(doc.id());
  auto refusedHash = there.change(put("fromB", "no"));
  ASSERT_TRUE(refusedHash && *refusedHash);
  ASSERT_TRUE(h.runUntil([&] { return !atB->events.empty(); }, 2s));
  h.runFor(100ms);
  ASSERT_EQ(atB->events.size(), 1u);
  EXPECT_EQ(std::get<0>(atB->events[0]), pid("a"));
  EXPECT_EQ(std::get<1>(atB->events[0]), doc.id());
  EXPECT_EQ(std::get<2>(atB->events[0]), std::vector<ChangeHash>{**refusedHash});
  EXPECT_EQ(b.repo->peerRefused(pid("a"), doc.id()), std::vector<ChangeHash>{**refusedHash});
  EXPECT_TRUE(b.repo->peerRefused(pid("c"), doc.id()).empty()) << "no session with c";

  // On the wire: one refusal, and its bytes are exactly the document, the one hash and the count
  // (no reason, no other document or peer).
  const auto sentToB = refusalsSent(ba->bytesFromAcceptor());
  ASSERT_EQ(sentToB.size(), 1u);
  EXPECT_EQ(sentToB[0].first, frameOf(detail::RefusedMsg{.doc = doc.id(),
                                                         .changes = {**refusedHash},
                                                         .count = 1}));

  // The accept path: c's change is stored, c hears of no refusal, and only c's reaches c.
  auto acceptedHash = c.repo->findLocal(doc.id())->change(put("fromC", "yes"));
  ASSERT_TRUE(acceptedHash && *acceptedHash);
  ASSERT_TRUE(h.runUntil([&] {
    const auto stored = c.repo->peerStoredHeads(pid("a"), doc.id());
    return std::find(stored.begin(), stored.end(), **acceptedHash) != stored.end();
  }, 2s));
  h.runFor(100ms);
  EXPECT_EQ(readString(doc, "fromC"), "yes");
  EXPECT_EQ(readString(doc, "fromB"), "");
  EXPECT_TRUE(atC->events.empty());
  EXPECT_TRUE(c.repo->peerRefused(pid("a"), doc.id()).empty());
  EXPECT_TRUE(refusalsSent(ca->bytesFromAcceptor()).empty());
  EXPECT_EQ(readString(*c.repo->findLocal(doc.id()), "fromB"), "");
  const auto storedForB = b.repo->peerStoredHeads(pid("a"), doc.id());
  EXPECT_EQ(std::find(storedForB.begin(), storedForB.end(), **refusedHash), storedForB.end());
}

TEST(RepoRefusal, ARefusalNamesOnlyTheChangesTheReceiverLacksAndTheLastOnesOfALongBatch) {
  RepoHarness h;
  auto& a = h.add("a");
  a.auth->receive = [](const PeerId& p, auto&) { return p.str() != "r"; };
  DocHandle doc = a.repo->create();
  auto own = doc.change(put("foo", "bar"));
  ASSERT_TRUE(own && *own);
  const Bytes held = *doc.doc().getChange(**own);
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRawPeer(h, raw, a));

  std::vector<ChangeHash> mine;
  const std::vector<Bytes> two = changesOnTop({held}, 2, &mine);
  std::vector<ChangeHash> many;
  const std::vector<Bytes> longBatch = changesOnTop({held}, 1100, &many);
  auto sync = [&](std::vector<Bytes> changes) {
    return frameOf(detail::SyncMsg{.doc = doc.id(), .heads = {}, .need = {}, .have = {},
                                   .changes = std::move(changes), .storedHeads = {},
                                   .requestId = 0, .hops = 0, .isRequest = false});
  };
  // One change a holds and two it lacks; then only what it holds; then 1100 it lacks.
  auto sent = h.await(sendEach(raw, {sync({held, two[0], two[1]}), sync({held}), sync(longBatch)}), 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  ASSERT_TRUE(h.runUntil([&] { return a.log->changesRefused == 3 + 1 + 1100; }, 3s));
  h.runFor(100ms);
  EXPECT_TRUE(lists(a, "r"));

  const auto refusals = refusalsSent(raw.link->bytesFromAcceptor());
  ASSERT_EQ(refusals.size(), 2u) << "a batch of only what a holds loses nothing: no answer";
  std::sort(mine.begin(), mine.end());
  EXPECT_EQ(refusals[0].second.doc, doc.id());
  EXPECT_EQ(refusals[0].second.changes, mine);
  EXPECT_EQ(refusals[0].second.count, 2u);

  std::vector<ChangeHash> last(many.end() - static_cast<std::ptrdiff_t>(detail::kMaxRefusedHashes),
                               many.end());
  std::sort(last.begin(), last.end());
  EXPECT_EQ(refusals[1].second.changes, last);
  EXPECT_EQ(refusals[1].second.count, 1100u);
  EXPECT_EQ(doc.doc().graph().size(), 1u) << "nothing refused was applied";
}

TEST(RepoRefusal, AWriteToADocumentTheWriterMayNoLongerSeeGetsNoAnswer) {
  // A forbidden document answers as a missing one would: nothing. (Only okToReceive's refusals
  // of a document the peer may see are answered.)
  RepoHarness h;
  auto atB = std::make_shared<Refusals>();
  auto& a = h.add("a");
  auto& b = h.add("b", recording(atB));
  bool allowB = true;
  a.auth->send = [&](const PeerId& p, auto&) { return p.str() != "b" || allowB; };
  a.auth->receive = [](const PeerId& p, auto&) { return p.str() != "b"; };
  auto ba = h.link(b, a);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "bar"); }, 2s));
  allowB = false;
  a.auth->callbacks.accessChanged(pid("b"));
  h.runFor(50ms);

  ASSERT_TRUE(b.repo->findLocal(doc.id())->change(put("fromB", "no")));
  ASSERT_TRUE(h.runUntil([&] { return a.log->changesRefused > 0; }, 2s));
  h.runFor(100ms);
  EXPECT_TRUE(refusalsSent(ba->bytesFromAcceptor()).empty());
  EXPECT_TRUE(atB->events.empty());
  EXPECT_TRUE(b.repo->peerRefused(pid("a"), doc.id()).empty());
}

TEST(RepoRefusal, RefusalsAreHeardOnlyForChangesHeldHereOfADocumentSyncedWithThatPeer) {
  RepoHarness h;
  auto atB = std::make_shared<Refusals>();
  auto& b = h.add("b", recording(atB));
  DocHandle synced = b.repo->create();  // offered to r
  auto hash = synced.change(put("k", "v"));
  ASSERT_TRUE(hash && *hash);
  b.auth->advertise = [&](const PeerId&, const DocumentId& d) { return d == synced.id(); };
  DocHandle other = b.repo->create();  // never offered to r
  auto otherHash = other.change(put("k", "w"));
  ASSERT_TRUE(otherHash && *otherHash);
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRawPeer(h, raw, b));
  h.runFor(50ms);

  std::vector<ChangeHash> unknown;
  for (int i = 0; i < 3; ++i) unknown.push_back(ChangeHash::of(Bytes{static_cast<std::uint8_t>(i)}));
  std::sort(unknown.begin(), unknown.end());
  const Bytes notHeld = frameOf(detail::RefusedMsg{.doc = synced.id(), .changes = unknown, .count = 3});
  const Bytes notSynced =
      frameOf(detail::RefusedMsg{.doc = other.id(), .changes = {**otherHash}, .count = 1});
  const Bytes real = frameOf(detail::RefusedMsg{.doc = synced.id(), .changes = {**hash}, .count = 1});

  auto sent = h.await(sendEach(raw, {notHeld, notSynced}), 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  h.runFor(100ms);
  EXPECT_TRUE(atB->events.empty());
  EXPECT_TRUE(b.repo->peerRefused(pid("r"), synced.id()).empty());
  EXPECT_TRUE(b.repo->peerRefused(pid("r"), other.id()).empty());
  EXPECT_TRUE(lists(b, "r")) << "refusals are not malformed";

  // The accept path, then the same refusal 50 times more: reported once.
  std::vector<Bytes> again(51, real);
  sent = h.await(sendEach(raw, again), 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  ASSERT_TRUE(h.runUntil([&] { return !atB->events.empty(); }, 2s));
  h.runFor(100ms);
  ASSERT_EQ(atB->events.size(), 1u);
  EXPECT_EQ(std::get<0>(atB->events[0]), pid("r"));
  EXPECT_EQ(std::get<1>(atB->events[0]), synced.id());
  EXPECT_EQ(std::get<2>(atB->events[0]), std::vector<ChangeHash>{**hash});
  EXPECT_EQ(b.repo->peerRefused(pid("r"), synced.id()), std::vector<ChangeHash>{**hash});
  EXPECT_TRUE(lists(b, "r"));
}

TEST(RepoRefusal, WhatAPeerReportsRefusedIsKeptUpToABound) {
  RepoHarness h;
  auto atB = std::make_shared<Refusals>();
  auto& b = h.add("b", recording(atB));
  DocHandle doc = b.repo->create();
  std::vector<ChangeHash> all;
  for (int i = 0; i < 1100; ++i) {
    auto hash = doc.change(put("k", std::to_string(i)));
    ASSERT_TRUE(hash && *hash);
    all.push_back(**hash);
  }
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRawPeer(h, raw, b));
  h.runFor(50ms);

  std::vector<ChangeHash> first(all.begin(), all.begin() + 1024);
  std::vector<ChangeHash> rest(all.begin() + 1024, all.end());
  std::sort(first.begin(), first.end());
  std::sort(rest.begin(), rest.end());
  auto sent = h.await(
      sendEach(raw, {frameOf(detail::RefusedMsg{.doc = doc.id(), .changes = first, .count = 1024}),
                     frameOf(detail::RefusedMsg{.doc = doc.id(), .changes = rest, .count = 76})}),
      2s);
  ASSERT_TRUE(sent) << sent.error().message();
  ASSERT_TRUE(h.runUntil([&] { return atB->hashes() == 1100; }, 2s));
  const std::vector<ChangeHash> kept = b.repo->peerRefused(pid("r"), doc.id());
  EXPECT_EQ(kept.size(), 1024u);
  EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end()));
  for (const ChangeHash& h2 : rest) {
    EXPECT_TRUE(std::binary_search(kept.begin(), kept.end(), h2)) << "the newest are kept";
  }
}

TEST(RepoRefusal, AMalformedRefusalClosesOnlyThatSession) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  h.link(b, a);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "bar"); }, 2s));
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRawPeer(h, raw, a));

  // A refusal that lists a hash its count leaves out (the encoder never writes one).
  capnp::MallocMessageBuilder builder;
  auto refused = builder.initRoot<schema::Envelope>().initRefused();
  refused.setDocId(capnp::Data::Reader(doc.id().bytes().data(), doc.id().bytes().size()));
  const ChangeHash head = doc.heads().front();
  refused.setChanges(capnp::Data::Reader(head.bytes().data(), head.bytes().size()));
  refused.setCount(0);
  const auto words = capnp::messageToFlatArray(builder);
  const Bytes frame(words.asBytes().begin(), words.asBytes().end());
  auto decoded = detail::decodeMessage(frame);
  ASSERT_FALSE(decoded);
  ASSERT_EQ(decoded.error().code(), Errc::Malformed);
  auto sent = h.await(raw.send(frame), 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  EXPECT_TRUE(h.runUntil([&] { return !raw.link->isOpen() && !lists(a, "r"); }, 2s));
  EXPECT_TRUE(lists(a, "b"));
  ASSERT_TRUE(doc.change(put("foo", "baz")));
  EXPECT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "baz"); }, 2s));
}

// The union's discriminant is the first 16 bits of the Envelope's data section, right after
// the root pointer: byte 16 of a single-segment frame (as tests/lib/wire/sync_codec_test.cc).
constexpr std::size_t kDiscriminantOffset = 16;

TEST(RepoRefusal, AFrameOfAKindThisVersionDoesNotKnowIsIgnoredAndTheSessionSyncsOn) {
  RepoHarness h;
  auto& a = h.add("a");
  a.auth->advertise = [](auto&, auto&) { return false; };
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRawPeer(h, raw, a));

  Bytes unknown = frameOf(detail::LeaveMsg{});
  ASSERT_EQ(unknown[kDiscriminantOffset], 6) << "the layout assumed here does not hold";
  unknown[kDiscriminantOffset] = 9;  // a member newer than this version, as `refused` is to an older one
  auto sent = h.await(raw.send(unknown), 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  h.runFor(100ms);
  EXPECT_TRUE(lists(a, "r"));

  // And the session still answers: a request for the document brings its change.
  sent = h.await(raw.send(frameOf(detail::SyncMsg{
                     .doc = doc.id(), .heads = {}, .need = {}, .have = {}, .changes = {},
                     .storedHeads = {}, .requestId = 42, .hops = 0, .isRequest = true})),
                 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  const Bytes payload = *doc.doc().getChange(doc.heads().front());
  ASSERT_TRUE(h.runUntil([&] { return containsBytes(raw.link->bytesFromAcceptor(), payload); }, 2s));
  EXPECT_TRUE(lists(a, "r"));
}

TEST(RecentHashes, KeepsTheNewestUpToItsLimitAndForgetsTheOldestFirst) {
  detail::RecentHashes set(3);
  std::vector<ChangeHash> h;
  for (std::uint8_t i = 0; i < 5; ++i) h.push_back(ChangeHash::of(Bytes{i}));
  EXPECT_TRUE(set.insert(h[0]));
  EXPECT_TRUE(set.insert(h[1]));
  EXPECT_FALSE(set.insert(h[0])) << "held already";
  EXPECT_TRUE(set.insert(h[2]));
  EXPECT_EQ(set.size(), 3u);
  EXPECT_TRUE(set.insert(h[3]));
  EXPECT_EQ(set.size(), 3u);
  EXPECT_FALSE(set.contains(h[0])) << "the oldest goes first";
  EXPECT_TRUE(set.contains(h[1]));
  EXPECT_TRUE(set.contains(h[3]));
  std::vector<ChangeHash> expected{h[1], h[2], h[3]};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(set.sorted(), expected);
  EXPECT_TRUE(set.insert(h[0])) << "forgotten, so new again";
  EXPECT_FALSE(set.contains(h[1]));
}

}  // namespace
}  // namespace portcullis::testing
