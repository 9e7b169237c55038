// The seam for sealed changes (architecture §4): documents whose changes a provider signs and
// encrypts, and a relay that stores and forwards them without the key.
#include <gtest/gtest.h>

#include <algorithm>

#include "repo_harness.h"
#include "test_sealer.h"

namespace portcullis::testing {
namespace {

bool contains(const Bytes& haystack, const std::string& needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

DocumentOptions sealedOptions(std::shared_ptr<const ChangeSealer> sealer) {
  DocumentOptions options;
  options.sealer = std::move(sealer);
  return options;
}

TEST(SealedDocument, CommitsSealedChangesAndLoadsThemBack) {
  auto sealer = std::make_shared<TestSealer>(true);
  Document doc(sealedOptions(sealer));
  auto tx = doc.transaction();
  ASSERT_TRUE(putString(tx, "secret", "plaintext-marker"));
  auto hash = tx.commit();
  ASSERT_TRUE(hash);
  const Bytes saved = doc.save();
  EXPECT_FALSE(contains(saved, "plaintext-marker"));
  auto change = doc.getChange(*hash);
  ASSERT_TRUE(change);
  EXPECT_EQ(ChangeHash::of(*change), *hash);  // the sealer's hash, over the sealed payload

  auto loaded = Document::load(saved, sealedOptions(sealer));
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(loaded->toJson(), doc.toJson());
  EXPECT_EQ(loaded->getHeads(), doc.getHeads());
}

TEST(SealedDocument, RejectsATamperedCiphertextAWrongKeyAndATruncatedPayload) {
  auto sealer = std::make_shared<TestSealer>(true);
  Document doc(sealedOptions(sealer));
  auto tx = doc.transaction();
  ASSERT_TRUE(putString(tx, "k", "v"));
  auto hash = tx.commit();
  const Bytes good = *doc.getChange(*hash);

  // Each byte flip breaks the signature (or the header), so nothing is applied.
  for (std::size_t i = 0; i < good.size(); i += 7) {
    Bytes bad = good;
    bad[i] ^= 0x20;
    Document other(sealedOptions(sealer));
    std::vector<Bytes> batch{bad};
    auto report = other.applyChanges(batch);
    EXPECT_EQ(report.applied, 0u) << "flip at " << i;
    EXPECT_EQ(report.rejected.size(), 1u) << "flip at " << i;
  }
  // Truncated.
  for (std::size_t len : {std::size_t{0}, std::size_t{4}, good.size() / 2, good.size() - 1}) {
    Document other(sealedOptions(sealer));
    std::vector<Bytes> batch{Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len))};
    EXPECT_EQ(other.applyChanges(batch).rejected.size(), 1u) << "length " << len;
  }
  // Signed by another key: refused by the signature check.
  {
    Document other(sealedOptions(std::make_shared<TestSealer>(true, 9)));
    std::vector<Bytes> batch{good};
    auto report = other.applyChanges(batch);
    ASSERT_EQ(report.rejected.size(), 1u);
    EXPECT_EQ(report.rejected[0].code(), Errc::Denied);
  }
}

TEST(SealedDocument, RejectsASealedChangeWhoseHeaderDisagreesWithItsContents) {
  // A sealer that signs a header claiming another seq than the plain change inside.
  class LyingSealer final : public ChangeSealer {
   public:
    Result<ChangeEnvelope> parse(Bytes p) const override { return inner.parse(std::move(p)); }
    bool canOpen() const override { return true; }
    Result<ChangeEnvelope> seal(const ChangeEnvelope& plain) const override {
      ChangeEnvelope lie = plain;
      lie.opCount += 1;
      return inner.seal(lie);
    }
    Result<Bytes> open(const ChangeEnvelope& s) const override { return inner.open(s); }
    TestSealer inner{true};
  };
  Document author(sealedOptions(std::make_shared<TestSealer>(true)));
  auto tx = author.transaction();
  ASSERT_TRUE(putString(tx, "k", "v"));
  auto change = author.getChange(*tx.commit());
  LyingSealer liar;
  auto plainEnvelope = liar.inner.open(*liar.inner.parse(*change));
  ASSERT_TRUE(plainEnvelope);
  // Re-seal the same plain bytes under a header with a different opCount.
  ChangeEnvelope header = *liar.inner.parse(*change);
  header.payload = *plainEnvelope;
  auto lie = liar.seal(header);
  ASSERT_TRUE(lie);
  Document victim(sealedOptions(std::make_shared<TestSealer>(true)));
  std::vector<Bytes> batch{lie->payload};
  auto report = victim.applyChanges(batch);
  ASSERT_EQ(report.rejected.size(), 1u);
  EXPECT_EQ(report.rejected[0].code(), Errc::Malformed);
}

TEST(SealedRelay, TwoMembersSyncThroughARelayThatHoldsNoKey) {
  RepoHarness h;
  auto& a = h.add("a");
  auto relayStore = std::make_shared<MemoryStorageAdapter>();
  auto& relay = h.add("relay", [&](RepoOptions& o) { o.storage = relayStore; });
  auto& b = h.add("b");
  a.auth->sealer = std::make_shared<TestSealer>(true);
  b.auth->sealer = std::make_shared<TestSealer>(true);
  relay.auth->sealer = std::make_shared<TestSealer>(false);
  auto aLink = h.link(a, relay);
  auto bLink = h.link(b, relay);

  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change([](Transaction& tx) { return putString(tx, "secret", "plaintext-marker"); }));
  ASSERT_TRUE(h.runUntil([&] {
    auto there = b.repo->findLocal(doc.id());
    return there && readString(*there, "secret") == "plaintext-marker";
  }));
  auto atRelay = relay.repo->findLocal(doc.id());
  ASSERT_TRUE(atRelay);
  EXPECT_FALSE(atRelay->isOpen());
  EXPECT_EQ(atRelay->heads(), doc.heads());

  // And back: B's edit reaches A through the relay.
  auto atB = *b.repo->findLocal(doc.id());
  ASSERT_TRUE(atB.change([](Transaction& tx) { return putString(tx, "reply", "from-b"); }));
  ASSERT_TRUE(h.runUntil([&] { return readString(doc, "reply") == "from-b"; }));
  EXPECT_EQ(doc.heads(), atB.heads());

  // The relay stored the changes, and no plaintext with them.
  ASSERT_TRUE(h.await(relay.repo->flush()));
  ASSERT_FALSE(relayStore->chunks().empty());
  std::size_t storedBytes = 0;
  for (const auto& [key, data] : relayStore->chunks()) {
    storedBytes += data.size();
    EXPECT_FALSE(contains(data, "plaintext-marker"));
    EXPECT_FALSE(contains(data, "from-b"));
  }
  EXPECT_GT(storedBytes, 2 * sizeof("plaintext-marker"));

  // What travelled to and from the relay never holds the plaintext.
  for (const auto* link : {aLink.get(), bLink.get()}) {
    EXPECT_FALSE(contains(link->bytesFromDialer(), "plaintext-marker"));
    EXPECT_FALSE(contains(link->bytesFromAcceptor(), "plaintext-marker"));
    EXPECT_FALSE(contains(link->bytesFromDialer(), "from-b"));
  }
}

}  // namespace
}  // namespace portcullis::testing
