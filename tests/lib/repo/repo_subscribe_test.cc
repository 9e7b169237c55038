// Tests of what an application waits for and listens to on a Repo: whenPeerReady (a peer, a
// given peer, a deadline, no network, a stopped Repo) and DocHandle::subscribe (local and remote
// changes with their paths, nested maps and lists, unsubscribing, re-entrant callbacks).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "portcullis/repo.h"
#include "repo_harness.h"

namespace portcullis {

void PrintTo(Errc code, std::ostream* os) { *os << errcName(code); }

namespace testing {
namespace {

using Clock = std::chrono::steady_clock;

// A path written as in the tests: keys as strings, indexes as numbers.
Path path(std::initializer_list<PathElement> steps) { return Path(steps); }

// Every change a subscription reported.
struct Reports {
  std::vector<DocumentChange> changes;
  DocHandle::ChangeCallback callback() {
    return [this](const DocumentChange& c) { changes.push_back(c); };
  }
};

// Runs whenPeerReady in the background: its result, once it has one.
std::shared_ptr<std::optional<Result<PeerId>>> waitReady(RepoHarness& h, Repo& repo,
                                                         std::chrono::milliseconds deadline,
                                                         std::optional<PeerId> peer = {}) {
  auto out = std::make_shared<std::optional<Result<PeerId>>>();
  asio::co_spawn(
      h.ctx,
      [](Repo& r, std::chrono::milliseconds d, std::optional<PeerId> p,
         std::shared_ptr<std::optional<Result<PeerId>>> out) -> asio::awaitable<void> {
        auto got = co_await r.whenPeerReady(d, std::move(p));
        out->emplace(std::move(got));
      }(repo, deadline, std::move(peer), out),
      asio::detached);
  return out;
}

// --- whenPeerReady -----------------------------------------------------------------------------

TEST(RepoPeerReady, CompletesWhenAPeerAuthenticates) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto ready = waitReady(h, *a.repo, 5s);
  h.runFor(20ms);
  EXPECT_FALSE(ready->has_value()) << "ready before anyone connected";
  h.link(a, b);
  ASSERT_TRUE(h.runUntil([&] { return ready->has_value(); }));
  ASSERT_TRUE(**ready) << (*ready)->error().message();
  EXPECT_EQ(***ready, pid("b"));
}

TEST(RepoPeerReady, CompletesAtOnceWhenAPeerIsAlreadyThere) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  h.link(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1); }));
  auto ready = h.await(a.repo->whenPeerReady(0ms));
  ASSERT_TRUE(ready) << ready.error().message();
  EXPECT_EQ(*ready, pid("b"));
}

TEST(RepoPeerReady, WaitsForTheNamedPeerAndNotAnother) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto& c = h.add("c");
  auto ready = waitReady(h, *a.repo, 5s, pid("c"));
  h.link(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1); }));
  h.runFor(20ms);
  EXPECT_FALSE(ready->has_value()) << "b is not the peer waited for";
  h.link(a, c);
  ASSERT_TRUE(h.runUntil([&] { return ready->has_value(); }));
  ASSERT_TRUE(**ready) << (*ready)->error().message();
  EXPECT_EQ(***ready, pid("c"));
}

TEST(RepoPeerReady, FailsAtTheDeadlineWhenNoPeerComes) {
  RepoHarness h;
  auto& a = h.add("a");
  const auto start = Clock::now();
  auto ready = h.await(a.repo->whenPeerReady(50ms), 2s);
  const auto took = Clock::now() - start;
  ASSERT_FALSE(ready);
  EXPECT_EQ(ready.error().code(), Errc::Disconnected);
  EXPECT_NE(ready.error().message().find("timed out"), std::string::npos)
      << ready.error().message();
  EXPECT_GE(took, 50ms);
  EXPECT_LT(took, 1s);
}

TEST(RepoPeerReady, AnswersTimedOutWhenTheOnlyPeerIsRefused) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  a.auth->refuse.insert("b");
  auto ready = waitReady(h, *a.repo, 200ms);
  h.link(b, a);
  ASSERT_TRUE(h.runUntil([&] { return ready->has_value(); }, 2s));
  EXPECT_EQ(a.log->refused.size(), 1u);
  ASSERT_FALSE(**ready);
  EXPECT_EQ((*ready)->error().code(), Errc::Disconnected);
  EXPECT_NE((*ready)->error().message().find("timed out"), std::string::npos);
}

TEST(RepoPeerReady, FailsAtOnceWithoutANetworkAdapter) {
  RepoHarness h;
  auto& a = h.add("a", [](RepoOptions& o) { o.network.clear(); });
  auto ready = h.await(a.repo->whenPeerReady(10s), 1s);
  ASSERT_FALSE(ready);
  EXPECT_EQ(ready.error().code(), Errc::Disconnected);
}

TEST(RepoPeerReady, FailsWhenTheRepoShutsDownWhileWaiting) {
  RepoHarness h;
  auto& a = h.add("a");
  auto ready = waitReady(h, *a.repo, 10s);
  h.runFor(10ms);
  auto down = h.await(a.repo->shutdown(), 2s);
  ASSERT_TRUE(down) << down.error().message();
  ASSERT_TRUE(h.runUntil([&] { return ready->has_value(); }, 1s));
  ASSERT_FALSE(**ready);
  EXPECT_EQ((*ready)->error().code(), Errc::Disconnected);
}

// --- subscribe ---------------------------------------------------------------------------------

TEST(DocHandleSubscribe, ReportsALocalChangeWithItsHeadsAndPaths) {
  RepoHarness h;
  auto& a = h.add("a");
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("title", "one")));
  const auto before = doc.heads();
  Reports seen;
  auto sub = doc.subscribe(seen.callback());
  auto hash = doc.change([](Transaction& tx) -> Result<void> {
    if (auto ok = putString(tx, "title", "two"); !ok) return ok;
    return putString(tx, "author", "ann");
  });
  ASSERT_TRUE(hash && *hash);
  ASSERT_EQ(seen.changes.size(), 1u);
  const DocumentChange& c = seen.changes[0];
  EXPECT_EQ(c.headsBefore, before);
  EXPECT_EQ(c.headsAfter, std::vector<ChangeHash>{**hash});
  EXPECT_EQ(c.paths, (std::vector<Path>{path({"author"}), path({"title"})}));
  EXPECT_FALSE(c.peer.has_value());
}

TEST(DocHandleSubscribe, ReportsNothingForAnEmptyOrFailedChange) {
  RepoHarness h;
  auto& a = h.add("a");
  DocHandle doc = a.repo->create();
  Reports seen;
  auto sub = doc.subscribe(seen.callback());
  ASSERT_TRUE(doc.change([](Transaction&) { return Result<void>(); }));
  auto failed = doc.change([](Transaction& tx) -> Result<void> {
    if (auto ok = putString(tx, "x", "y"); !ok) return ok;
    return Error(Errc::Malformed, "the test gives up");
  });
  ASSERT_FALSE(failed);
  EXPECT_TRUE(seen.changes.empty());
  // The rolled-back edit leaves no path behind for the next change.
  ASSERT_TRUE(doc.change(put("z", "1")));
  ASSERT_EQ(seen.changes.size(), 1u);
  EXPECT_EQ(seen.changes[0].paths, std::vector<Path>{path({"z"})});
}

TEST(DocHandleSubscribe, NamesPathsThroughNestedMapsAndLists) {
  RepoHarness h;
  auto& a = h.add("a");
  DocHandle doc = a.repo->create();
  ObjId items = ObjId::root();
  ObjId second = ObjId::root();
  ObjId note = ObjId::root();
  ASSERT_TRUE(doc.change([&](Transaction& tx) -> Result<void> {
    auto shop = tx.putObject(ObjId::root(), "shop", ObjType::Map);
    if (!shop) return shop.error();
    auto list = tx.putObject(*shop, "items", ObjType::List);
    if (!list) return list.error();
    items = *list;
    if (auto ok = tx.insert(items, 0, ScalarValue(std::string("milk"))); !ok) return ok;
    auto entry = tx.insertObject(items, 1, ObjType::Map);
    if (!entry) return entry.error();
    second = *entry;
    auto text = tx.putObject(*entry, "note", ObjType::Text);
    if (!text) return text.error();
    note = *text;
    return Result<void>();
  }));
  Reports seen;
  auto sub = doc.subscribe(seen.callback());
  ASSERT_TRUE(doc.change([&](Transaction& tx) -> Result<void> {
    if (auto ok = tx.put(second, "qty", ScalarValue(std::int64_t{2})); !ok) return ok;
    if (auto ok = tx.splice(note, 0, 0, "fresh"); !ok) return ok;
    return tx.insert(items, 0, ScalarValue(std::string("eggs")));
  }));
  ASSERT_EQ(seen.changes.size(), 1u);
  // The map that was element 1 is element 2 after the insert at 0.
  EXPECT_EQ(seen.changes[0].paths,
            (std::vector<Path>{path({"shop", "items", std::size_t{0}}),
                               path({"shop", "items", std::size_t{2}, "note"}),
                               path({"shop", "items", std::size_t{2}, "qty"})}));
  ASSERT_TRUE(doc.change([&](Transaction& tx) { return tx.remove(items, 1); }));
  ASSERT_EQ(seen.changes.size(), 2u);
  EXPECT_EQ(seen.changes[1].paths, std::vector<Path>{path({"shop", "items", std::size_t{1}})});
}

TEST(DocHandleSubscribe, ReportsRemoteChangesWithTheSendingPeer) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("k", "v1")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "k", "v1"); }));
  DocHandle theirs = *b.repo->findLocal(doc.id());
  Reports seen;
  auto sub = theirs.subscribe(seen.callback());
  const auto before = theirs.heads();
  ASSERT_TRUE(doc.change([](Transaction& tx) -> Result<void> {
    auto inner = tx.putObject(ObjId::root(), "meta", ObjType::Map);
    if (!inner) return inner.error();
    return tx.put(*inner, "rev", ScalarValue(std::int64_t{7}));
  }));
  ASSERT_TRUE(h.runUntil([&] { return !seen.changes.empty(); }));
  const DocumentChange& c = seen.changes[0];
  EXPECT_EQ(c.peer, pid("a"));
  EXPECT_EQ(c.headsBefore, before);
  EXPECT_EQ(c.headsAfter, doc.heads());
  EXPECT_EQ(c.paths, (std::vector<Path>{path({"meta"}), path({"meta", "rev"})}));
}

TEST(DocHandleSubscribe, OmitsPathsInsideAnObjectAConcurrentChangeReplaced) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto link = h.link(a, b);
  DocHandle doc = a.repo->create();
  ObjId cfg = ObjId::root();
  ASSERT_TRUE(doc.change([&](Transaction& tx) -> Result<void> {
    auto made = tx.putObject(ObjId::root(), "cfg", ObjType::Map);
    if (!made) return made.error();
    cfg = *made;
    return Result<void>();
  }));
  ASSERT_TRUE(h.runUntil([&] { return b.repo->findLocal(doc.id()).has_value(); }));
  DocHandle theirs = *b.repo->findLocal(doc.id());
  ASSERT_TRUE(h.runUntil([&] { return theirs.heads() == doc.heads(); }));
  // Apart, b deletes cfg while a writes inside it: a delete supersedes the map whatever the
  // actors, and a write into the deleted map cannot bring it back.
  link->cut();
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 0) && connected(b, 0); }));
  ASSERT_TRUE(theirs.change([](Transaction& tx) { return tx.remove(ObjId::root(), "cfg"); }));
  ASSERT_TRUE(doc.change([&](Transaction& tx) { return tx.put(cfg, "x", ScalarValue(true)); }));
  Reports seen;
  auto sub = theirs.subscribe(seen.callback());
  h.link(a, b);
  ASSERT_TRUE(h.runUntil([&] { return !seen.changes.empty(); }));
  EXPECT_TRUE(seen.changes[0].paths.empty());
}

TEST(DocHandleSubscribe, StopsWhenTheSubscriptionIsDestroyedOrReset) {
  RepoHarness h;
  auto& a = h.add("a");
  DocHandle doc = a.repo->create();
  Reports kept;
  Reports dropped;
  Reports reset;
  auto keep = doc.subscribe(kept.callback());
  auto later = doc.subscribe(reset.callback());
  { auto gone = doc.subscribe(dropped.callback()); }
  ASSERT_TRUE(doc.change(put("a", "1")));
  EXPECT_TRUE(later);
  later.reset();
  EXPECT_FALSE(later);
  ASSERT_TRUE(doc.change(put("a", "2")));
  EXPECT_EQ(kept.changes.size(), 2u);
  EXPECT_EQ(reset.changes.size(), 1u);
  EXPECT_TRUE(dropped.changes.empty());
  // Moving a subscription moves the registration, not a copy of it.
  ChangeSubscription moved = std::move(keep);
  ASSERT_TRUE(doc.change(put("a", "3")));
  EXPECT_EQ(kept.changes.size(), 3u);
  moved = ChangeSubscription();
  ASSERT_TRUE(doc.change(put("a", "4")));
  EXPECT_EQ(kept.changes.size(), 3u);
}

TEST(DocHandleSubscribe, ACallbackMayUnsubscribeItselfAndOthersAreStillCalled) {
  RepoHarness h;
  auto& a = h.add("a");
  DocHandle doc = a.repo->create();
  int selfCalls = 0;
  Reports other;
  ChangeSubscription self;
  self = doc.subscribe([&](const DocumentChange&) {
    ++selfCalls;
    self.reset();  // destroys the running callback's registration, not the callback under way
  });
  auto sub = doc.subscribe(other.callback());
  ASSERT_TRUE(doc.change(put("a", "1")));
  ASSERT_TRUE(doc.change(put("a", "2")));
  EXPECT_EQ(selfCalls, 1);
  EXPECT_EQ(other.changes.size(), 2u);
}

TEST(DocHandleSubscribe, AChangeMadeByACallbackIsReportedAfterTheCurrentOneInOrder) {
  RepoHarness h;
  auto& a = h.add("a");
  DocHandle doc = a.repo->create();
  Reports first;
  Reports second;
  auto echo = doc.subscribe([&](const DocumentChange& c) {
    first.changes.push_back(c);
    // Answers each change to "in" once, inside the report.
    if (c.paths == std::vector<Path>{path({"in"})}) {
      ASSERT_TRUE(doc.change(put("out", "seen")));
    }
  });
  auto sub = doc.subscribe(second.callback());
  ASSERT_TRUE(doc.change(put("in", "x")));
  EXPECT_EQ(readString(doc, "out"), "seen");
  for (const Reports* r : {&first, &second}) {
    ASSERT_EQ(r->changes.size(), 2u);
    EXPECT_EQ(r->changes[0].paths, std::vector<Path>{path({"in"})});
    EXPECT_EQ(r->changes[1].paths, std::vector<Path>{path({"out"})});
    EXPECT_EQ(r->changes[1].headsBefore, r->changes[0].headsAfter);
    EXPECT_EQ(r->changes[1].headsAfter, doc.heads());
  }
}

TEST(DocHandleSubscribe, ASubscriptionMadeDuringAReportHearsOnlyLaterChanges) {
  RepoHarness h;
  auto& a = h.add("a");
  DocHandle doc = a.repo->create();
  Reports late;
  ChangeSubscription lateSub;
  auto first = doc.subscribe([&](const DocumentChange&) {
    if (!lateSub) lateSub = doc.subscribe(late.callback());
  });
  ASSERT_TRUE(doc.change(put("a", "1")));
  EXPECT_TRUE(late.changes.empty());
  ASSERT_TRUE(doc.change(put("a", "2")));
  EXPECT_EQ(late.changes.size(), 1u);
}

TEST(DocHandleSubscribe, OutlivingTheRepoIsHarmless) {
  Reports seen;
  ChangeSubscription sub;
  {
    RepoHarness h;
    auto& a = h.add("a");
    DocHandle doc = a.repo->create();
    sub = doc.subscribe(seen.callback());
    ASSERT_TRUE(doc.change(put("a", "1")));
  }
  EXPECT_EQ(seen.changes.size(), 1u);
  sub.reset();
  EXPECT_FALSE(sub);
}

}  // namespace
}  // namespace testing
}  // namespace portcullis
