// The Repo's per-peer quotas and its handling of a connection cut mid-frame (architecture §5): a
// raw peer on the memory network breaks a rule, and only its session closes.
#include <gtest/gtest.h>

#include <algorithm>

#include "portcullis/repo.h"
#include "repo_harness.h"
#include "wire/sync_codec.h"

namespace portcullis::testing {
namespace {

ByteView asBytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// A document made outside any Repo, as a peer would bring it: one change setting "k" to `value`.
struct ForeignDoc {
  DocumentId id = DocumentId::random();
  std::string value;
  Bytes frame;  // a `sync` carrying the change
};

ForeignDoc foreignDoc(const std::string& value) {
  ForeignDoc out;
  out.value = value;
  Document doc;
  Transaction tx = doc.transaction();
  EXPECT_TRUE(tx.put(ObjId::root(), "k", ScalarValue(value)));
  const std::optional<ChangeHash> hash = tx.commit();
  EXPECT_TRUE(hash);
  detail::SyncMsg sync;
  sync.doc = out.id;
  sync.heads = {*hash};
  sync.changes = {*doc.getChange(*hash)};
  out.frame = detail::encodeMessage(sync);
  return out;
}

std::string uniqueText() { return toHex(DocumentId::random().bytes()) + toHex(DocumentId::random().bytes()); }

// Dials `target` as raw peer "r" and waits until `target` lists it.
void openRaw(RepoHarness& h, RawPeer& raw, TestPeer& target, MemoryLinkOptions link = {}) {
  ASSERT_NO_FATAL_FAILURE(testing::openRaw(h, raw, target, "r", helloFrame("r"), true, link));
  ASSERT_TRUE(h.runUntil([&] { return lists(target, "r"); }, 2s));
}

// Sends each frame in turn; stops at the first failure (the Repo may close the stream).
asio::awaitable<Result<void>> sendEach(RawPeer& raw, std::vector<Bytes> frames) {
  for (Bytes& f : frames) {
    auto sent = co_await raw.send(std::move(f));
    if (!sent) co_return sent;
  }
  co_return Result<void>();
}

TEST(RepoQuota, APeerThatBringsMoreNewDocumentsThanItsQuotaIsDisconnectedAndTheExcessIsNotKept) {
  constexpr std::size_t kQuota = 5;
  RepoHarness h;
  auto storage = std::make_shared<MemoryStorageAdapter>();
  auto& a = h.add("a", [&](RepoOptions& o) {
    o.quotas.documentsCreated = kQuota;
    o.storage = storage;
    o.saveDelay = 10ms;
  });
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, a));

  std::vector<ForeignDoc> docs;
  for (std::size_t i = 0; i < kQuota + 3; ++i) docs.push_back(foreignDoc(uniqueText()));

  // Within the quota: kept, and the session lives on.
  std::vector<Bytes> first;
  for (std::size_t i = 0; i < kQuota; ++i) first.push_back(docs[i].frame);
  auto sent = h.await(sendEach(raw, first), 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  ASSERT_TRUE(h.runUntil([&] {
    return std::all_of(docs.begin(), docs.begin() + kQuota,
                       [&](const ForeignDoc& d) { return holds(a, d.id, "k", d.value); });
  }, 2s)) << "documents within the quota are accepted";
  h.runFor(50ms);
  EXPECT_TRUE(lists(a, "r"));

  // Over it.
  std::vector<Bytes> rest;
  for (std::size_t i = kQuota; i < docs.size(); ++i) rest.push_back(docs[i].frame);
  (void)h.await(sendEach(raw, rest), 2s);  // may fail once a closes the stream
  EXPECT_TRUE(h.runUntil([&] { return !raw.link->isOpen() && !lists(a, "r"); }, 2s));
  EXPECT_EQ(a.log->gone, std::vector<PeerId>{pid("r")});

  auto flushed = h.await(a.repo->flush(), 2s);
  ASSERT_TRUE(flushed) << flushed.error().message();
  for (std::size_t i = kQuota; i < docs.size(); ++i) {
    SCOPED_TRACE("excess document " + std::to_string(i));
    EXPECT_FALSE(a.repo->findLocal(docs[i].id));
    const auto held = a.repo->documents();
    EXPECT_EQ(std::count(held.begin(), held.end(), docs[i].id), 0);
    for (const auto& [key, data] : storage->chunks()) {
      EXPECT_FALSE(containsBytes(data, asBytes(docs[i].value))) << "its content was stored";
      for (const std::string& part : key) {
        EXPECT_EQ(part.find(docs[i].id.toString().substr(11)), std::string::npos);
        EXPECT_EQ(part.find(toHex(docs[i].id.bytes())), std::string::npos);
      }
    }
  }
  EXPECT_EQ(a.repo->documents().size(), kQuota);
}

TEST(RepoQuota, APeerOverItsByteQuotaIsDisconnected) {
  RepoHarness h;
  auto& a = h.add("a", [](RepoOptions& o) { o.quotas.bytesPerSecond = 64u << 10; });
  auto& b = h.add("b");
  h.link(a, b);
  ASSERT_TRUE(h.runUntil([&] { return lists(a, "b"); }, 2s));
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, a));
  // Provider messages: opaque to the Repo, so only their size matters.
  const Bytes frame = detail::encodeMessage(detail::ProviderMsg{.data = Bytes(16u << 10, 0x5a)});

  auto sent = h.await(sendEach(raw, {frame, frame}), 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  h.runFor(100ms);
  EXPECT_TRUE(lists(a, "r")) << "32 KiB is under the quota";

  (void)h.await(sendEach(raw, std::vector<Bytes>(8, frame)), 2s);
  EXPECT_TRUE(h.runUntil([&] { return !raw.link->isOpen() && !lists(a, "r"); }, 2s));
  EXPECT_EQ(a.log->gone, std::vector<PeerId>{pid("r")});
  EXPECT_TRUE(lists(a, "b")) << "only the flooding peer is dropped";
}

TEST(RepoQuota, ACutInTheMiddleOfAFrameClosesOnlyThatSessionAndLeavesTheStoreAlone) {
  RepoHarness h;
  auto storage = std::make_shared<MemoryStorageAdapter>();
  auto& a = h.add("a", [&](RepoOptions& o) {
    o.storage = storage;
    o.saveDelay = 10ms;
  });
  auto& b = h.add("b");
  h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "bar"); }, 2s));
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, a));
  h.runFor(50ms);
  auto flushed = h.await(a.repo->flush(), 2s);
  ASSERT_TRUE(flushed) << flushed.error().message();
  const auto chunksBefore = storage->chunks();
  const auto documentsBefore = a.repo->documents();
  const auto heads = doc.heads();
  const std::string json = doc.toJson();

  // A whole, valid frame bringing a new document, of which only the length and half the body
  // arrive before the cut.
  const ForeignDoc foreign = foreignDoc(uniqueText());
  const auto n = static_cast<std::uint32_t>(foreign.frame.size());
  Bytes partial{static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  partial.insert(partial.end(), foreign.frame.begin(),
                 foreign.frame.begin() + static_cast<std::ptrdiff_t>(n / 2));
  auto written = h.await(raw.writeRaw(partial), 2s);
  ASSERT_TRUE(written) << written.error().message();
  h.runFor(50ms);
  EXPECT_TRUE(lists(a, "r")) << "half a frame is not yet an error";
  raw.link->cut();

  EXPECT_TRUE(h.runUntil([&] { return !lists(a, "r"); }, 2s));
  EXPECT_EQ(a.log->gone, std::vector<PeerId>{pid("r")});
  EXPECT_EQ(a.repo->peers(), std::vector<PeerId>{pid("b")});
  EXPECT_FALSE(a.repo->findLocal(foreign.id));
  EXPECT_EQ(a.repo->documents(), documentsBefore);
  EXPECT_EQ(doc.heads(), heads);
  EXPECT_EQ(doc.toJson(), json);
  flushed = h.await(a.repo->flush(), 2s);
  ASSERT_TRUE(flushed) << flushed.error().message();
  EXPECT_TRUE(storage->chunks() == chunksBefore) << "the store changed";

  // The other session syncs on, both ways.
  ASSERT_TRUE(doc.change(put("foo", "baz")));
  EXPECT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "baz"); }, 2s));
  ASSERT_TRUE(b.repo->findLocal(doc.id())->change(put("fromB", "y")));
  EXPECT_TRUE(h.runUntil([&] { return readString(doc, "fromB") == "y"; }, 2s));
}

TEST(RepoQuota, APeerThatDoesNotReadIsDisconnectedBeforeItsRepliesPileUpWithoutBound) {
  RepoHarness h;
  auto& a = h.add("a", [](RepoOptions& o) {
    o.quotas.framesPerSecond = 100'000;
    o.quotas.sendQueueBytes = 4u << 10;
  });
  auto& b = h.add("b");
  h.link(b, a);
  RawPeer raw(h, "r");
  // A pipe that holds little: once it is full, what a sends waits in a's queue.
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, a, {.maxBufferedBytes = 1024, .record = true}));
  std::vector<Bytes> requests;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    requests.push_back(detail::encodeMessage(detail::SyncMsg{
        .doc = DocumentId::random(), .heads = {}, .need = {}, .have = {}, .changes = {},
        .storedHeads = {}, .requestId = i + 1, .hops = 0, .isRequest = true}));
  }
  (void)h.await(sendEach(raw, requests), 5s);  // may fail once a closes the stream
  EXPECT_TRUE(h.runUntil([&] { return !raw.link->isOpen() && !lists(a, "r"); }, 2s));
  EXPECT_LE(raw.link->bytesFromAcceptor().size(), 8u << 10) << "a stopped at its bound";
  EXPECT_TRUE(lists(a, "b")) << "only the peer that does not read is dropped";
}

}  // namespace
}  // namespace portcullis::testing
