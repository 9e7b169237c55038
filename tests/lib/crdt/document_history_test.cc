// Tests of a Document's history: forkAt (the document as it was at given heads) and
// changesBetween (what leads from one set of heads to another), with their reject paths:
// unknown hashes, and heads that are not ancestors.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "portcullis/document.h"

namespace portcullis {

void PrintTo(Errc code, std::ostream* os) { *os << errcName(code); }

namespace {

ActorId actorOf(std::uint8_t fill) { return ActorId::fromBytes(Bytes(16, fill)).value(); }

Document docFor(std::uint8_t fill) {
  DocumentOptions options;
  options.actor = actorOf(fill);
  return Document(options);
}

ChangeHash set(Document& doc, const std::string& key, std::int64_t value) {
  auto tx = doc.transaction();
  EXPECT_TRUE(tx.put(ObjId::root(), key, ScalarValue(value)));
  auto hash = tx.commit();
  EXPECT_TRUE(hash);
  return *hash;
}

// A history that forks and merges: h1 <- (h2a by a, h2b by b) <- h3 by a.
struct Forked {
  Document a = docFor(1);
  Document b = docFor(2);
  ChangeHash h1, h2a, h2b, h3;
  Forked() {
    h1 = set(a, "n", 1);
    b.merge(a);
    h2a = set(a, "x", 2);
    h2b = set(b, "y", 3);
    a.merge(b);
    h3 = set(a, "n", 4);
  }
};

std::vector<ChangeHash> heads(std::initializer_list<ChangeHash> hs) { return hs; }

TEST(DocumentHistory, ForkAtShowsTheDocumentAsItWasAtThoseHeads) {
  Forked f;
  auto at1 = f.a.forkAt(heads({f.h1}));
  ASSERT_TRUE(at1) << at1.error().message();
  EXPECT_EQ(at1->toJson(), R"({"n":1})");
  EXPECT_EQ(at1->getHeads(), heads({f.h1}));

  auto atA = f.a.forkAt(heads({f.h2a}));
  ASSERT_TRUE(atA);
  EXPECT_EQ(atA->toJson(), R"({"n":1,"x":2})");

  std::vector<ChangeHash> both = heads({f.h2a, f.h2b});
  std::sort(both.begin(), both.end());
  auto merged = f.a.forkAt(both);
  ASSERT_TRUE(merged);
  EXPECT_EQ(merged->toJson(), R"({"n":1,"x":2,"y":3})");
  EXPECT_EQ(merged->getHeads(), both);

  auto now = f.a.forkAt(f.a.getHeads());
  ASSERT_TRUE(now);
  EXPECT_EQ(now->save(), f.a.save());
}

TEST(DocumentHistory, ForkAtNoHeadsIsTheEmptyDocument) {
  Forked f;
  auto empty = f.a.forkAt({});
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->toJson(), "{}");
  EXPECT_TRUE(empty->getHeads().empty());
}

TEST(DocumentHistory, EditingAForkLeavesTheOriginalAlone) {
  Forked f;
  const Bytes before = f.a.save();
  auto old = f.a.forkAt(heads({f.h1}), actorOf(9));
  ASSERT_TRUE(old);
  EXPECT_EQ(old->actor(), actorOf(9));
  set(*old, "n", 100);
  EXPECT_EQ(f.a.save(), before);
  EXPECT_EQ(f.a.get(ObjId::root(), "n"), Value(std::int64_t{4}));
}

TEST(DocumentHistory, ForkAtRefusesAHashNotInTheHistory) {
  Forked f;
  Document other = docFor(7);
  const ChangeHash stranger = set(other, "z", 1);
  auto bad = f.a.forkAt(heads({f.h1, stranger}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::NotFound);
  // b never saw h3.
  auto notYet = f.b.forkAt(heads({f.h3}));
  ASSERT_FALSE(notYet);
  EXPECT_EQ(notYet.error().code(), Errc::NotFound);
}

TEST(DocumentHistory, ChangesBetweenLeadFromOneForkToTheOther) {
  Forked f;
  auto between = f.a.changesBetween(heads({f.h2b}), heads({f.h3}));
  ASSERT_TRUE(between) << between.error().message();
  EXPECT_EQ(between->size(), 2u);  // h2a and h3
  auto from = f.a.forkAt(heads({f.h2b}));
  ASSERT_TRUE(from);
  auto report = from->applyChanges(*between);
  EXPECT_EQ(report.applied, 2u);
  EXPECT_TRUE(report.rejected.empty());
  EXPECT_EQ(from->save(), f.a.save());
}

TEST(DocumentHistory, ChangesBetweenEqualHeadsIsEmptyAndFromNothingIsEverything) {
  Forked f;
  auto none = f.a.changesBetween(heads({f.h3}), heads({f.h3}));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto all = f.a.changesBetween({}, f.a.getHeads());
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 4u);
}

TEST(DocumentHistory, ChangesBetweenRefusesFromHeadsThatAreNotAncestors) {
  Forked f;
  // Siblings: neither is in the other's past.
  auto sideways = f.a.changesBetween(heads({f.h2a}), heads({f.h2b}));
  ASSERT_FALSE(sideways);
  EXPECT_EQ(sideways.error().code(), Errc::Conflict);
  // Backwards.
  auto backwards = f.a.changesBetween(heads({f.h3}), heads({f.h1}));
  ASSERT_FALSE(backwards);
  EXPECT_EQ(backwards.error().code(), Errc::Conflict);
}

TEST(DocumentHistory, ChangesBetweenRefusesUnknownHashesOnEitherSide) {
  Forked f;
  Document other = docFor(7);
  const ChangeHash stranger = set(other, "z", 1);
  auto badFrom = f.a.changesBetween(heads({stranger}), heads({f.h3}));
  ASSERT_FALSE(badFrom);
  EXPECT_EQ(badFrom.error().code(), Errc::NotFound);
  auto badTo = f.a.changesBetween(heads({f.h1}), heads({stranger}));
  ASSERT_FALSE(badTo);
  EXPECT_EQ(badTo.error().code(), Errc::NotFound);
}

TEST(DocumentHistory, AChangeWaitingForItsDepsIsNotPartOfTheHistory) {
  Forked f;
  Document late = docFor(3);
  // Only h3 (whose deps late lacks): it is queued, not applied.
  auto only = f.a.getChange(f.h3);
  ASSERT_TRUE(only);
  auto report = late.applyChanges(std::vector<Bytes>{*only});
  ASSERT_EQ(report.queued, 1u);
  auto fork = late.forkAt(heads({f.h3}));
  ASSERT_FALSE(fork);
  EXPECT_EQ(fork.error().code(), Errc::NotFound);
}

}  // namespace
}  // namespace portcullis
