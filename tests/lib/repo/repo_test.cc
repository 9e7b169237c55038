// The Repo's acceptance scenarios (issue "Core 2"), each over the memory network.
#include "portcullis/repo.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "repo_harness.h"
#include "time_scale.h"
#include "wire/sync_codec.h"

namespace portcullis::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A long random string: if any part of a document's content leaks, this does.
std::string uniqueText() {
  std::string out;
  for (int i = 0; i < 4; ++i) out += toHex(DocumentId::random().bytes());
  return out;
}

// A find running in the background, and when it finished.
struct BackgroundFind {
  std::optional<Result<DocHandle>> result;
  Clock::time_point started = Clock::now();
  Clock::time_point finished;
};

std::shared_ptr<BackgroundFind> startFind(RepoHarness& h, Repo& repo, const DocumentId& id) {
  auto out = std::make_shared<BackgroundFind>();
  asio::co_spawn(
      h.ctx,
      [](Repo& r, DocumentId id, std::shared_ptr<BackgroundFind> out) -> asio::awaitable<void> {
        Result<DocHandle> got = co_await r.find(id);
        out->finished = Clock::now();
        out->result.emplace(std::move(got));
      }(repo, id, out),
      asio::detached);
  return out;
}

TEST(Repo, OpenProviderSharesANewDocumentWithoutBeingAsked) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change([](Transaction& tx) { return putString(tx, "foo", "bar"); }));
  ASSERT_TRUE(h.runUntil([&] {
    auto there = b.repo->findLocal(doc.id());
    return there && readString(*there, "foo") == "bar";
  }));
  EXPECT_EQ(b.repo->findLocal(doc.id())->heads(), doc.heads());
}

TEST(Repo, AFindForADocumentAPeerHasAnnouncedWaitsForItsChangesToArrive) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto link = h.link(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1) && connected(b, 1); }, 2s));
  link->setDelay(50ms);  // the changes follow the announcement one round trip later
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change([](Transaction& tx) { return putString(tx, "foo", "bar"); }));
  // b holds the announced document before it holds any of its changes ...
  ASSERT_TRUE(h.runUntil([&] { return b.repo->findLocal(doc.id()).has_value(); }, 2s));
  ASSERT_TRUE(b.repo->findLocal(doc.id())->heads().empty());
  // ... and find() waits for them instead of returning it empty.
  auto found = h.await(b.repo->find(doc.id()), 5s);
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(found->heads(), doc.heads());
  EXPECT_EQ(readString(*found, "foo"), "bar");
}

TEST(Repo, AFindForADocumentBeingEditedElsewhereReturnsWithoutWaitingForTheEditsToStop) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b", [](RepoOptions& o) { o.findTimeout = 5000ms; });
  auto link = h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("n", "0")));
  ASSERT_TRUE(h.runUntil([&] { return b.repo->findLocal(doc.id()).has_value(); }, 2s));
  link->setDelay(20ms);
  // a edits every 5 ms for the whole test: b always has announced heads still on their way.
  bool editing = true;
  asio::co_spawn(h.ctx, [&]() -> asio::awaitable<void> {
    asio::steady_timer t(h.ctx);
    for (int i = 1; editing; ++i) {
      (void)doc.change(put("n", std::to_string(i)));
      t.expires_after(5ms);
      co_await t.async_wait(asio::use_awaitable);
    }
  }, asio::detached);
  h.runFor(100ms);
  const auto start = Clock::now();
  auto found = h.await(b.repo->find(doc.id()), 5s);
  const auto took = Clock::now() - start;
  editing = false;
  h.runFor(20ms);
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_LT(took, 1000ms);
  EXPECT_FALSE(readString(*found, "n").empty());
}

TEST(Repo, AFindWaitingForAnnouncedChangesStopsWaitingWhenTheAnnouncerGoes) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b", [](RepoOptions& o) { o.findTimeout = 5000ms; });
  auto link = h.link(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1) && connected(b, 1); }, 2s));
  link->setDelay(200ms);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] { return b.repo->findLocal(doc.id()).has_value(); }, 2s));
  asio::steady_timer cutter(h.ctx, 50ms);  // while b's find waits for a's changes
  cutter.async_wait([&](boost::system::error_code) { link->cut(); });
  const auto start = Clock::now();
  auto found = h.await(b.repo->find(doc.id()), 4s);
  EXPECT_LT(Clock::now() - start, 2000ms);
  ASSERT_TRUE(found) << found.error().message();  // what b has: a's changes never came
  EXPECT_TRUE(found->heads().empty());
}

// Scenario 2.
TEST(Repo, APeerNeverToldOfADocumentFindsItByAskingAndThenFollowsItsChanges) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b", [](RepoOptions& o) { o.findTimeout = 3000ms; });
  a.auth->advertise = [](auto&, auto&) { return false; };
  h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1) && connected(b, 1); }, 2s));
  h.runFor(200ms);
  EXPECT_FALSE(b.repo->findLocal(doc.id())) << "a never advertised it";

  auto found = h.await(b.repo->find(doc.id()), 5s);
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(readString(*found, "foo"), "bar");
  EXPECT_EQ(found->heads(), doc.heads());

  ASSERT_TRUE(doc.change(put("foo", "baz")));
  EXPECT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "baz"); }, 2s));
  EXPECT_EQ(b.repo->findLocal(doc.id())->heads(), doc.heads());
}

// Scenario 3.
TEST(Repo, AFindForAForbiddenDocumentFailsUnavailableAndDisclosesNothing) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b", [](RepoOptions& o) { o.findTimeout = 3000ms; });
  auto& c = h.add("c", [](RepoOptions& o) { o.findTimeout = 3000ms; });
  a.auth->send = [](const PeerId& p, auto&) { return p.str() != "b"; };
  auto ab = h.link(a, b);
  auto ac = h.link(a, c);
  DocHandle doc = a.repo->create();
  const std::string secret = uniqueText();
  ASSERT_TRUE(doc.change(put("secret", secret)));
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 2) && connected(b, 1); }, 2s));

  auto refused = h.await(b.repo->find(doc.id()), 5s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::NotFound);
  EXPECT_TRUE(containsBytes(ab->bytesFromAcceptor(), doc.id().bytes()))
      << "b's find never asked a: the rest of this test would prove nothing";
  // A control: c may see it, so the same search finds the content in what a sent c.
  auto allowed = h.await(c.repo->find(doc.id()), 5s);
  ASSERT_TRUE(allowed) << allowed.error().message();
  EXPECT_EQ(readString(*allowed, "secret"), secret);
  h.runFor(150ms);

  EXPECT_TRUE(containsBytes(ac->bytesFromDialer(), asBytes(secret)));
  EXPECT_FALSE(containsBytes(ab->bytesFromDialer(), asBytes(secret)));
  EXPECT_FALSE(containsBytes(ab->bytesFromDialer(), asBytes(secret.substr(0, 16))));
  for (const ChangeEnvelope* e : doc.doc().graph().changes()) {
    EXPECT_TRUE(containsBytes(ac->bytesFromDialer(), e->hash.bytes()));
    EXPECT_FALSE(containsBytes(ab->bytesFromDialer(), e->hash.bytes()));
  }
  EXPECT_FALSE(b.repo->findLocal(doc.id()));
}

// Scenario 4: asks `target` for `doc` as raw peer "r"; returns the reply frame and every byte
// `target` sent.
void askRaw(RepoHarness& h, TestPeer& target, const DocumentId& doc, Bytes* reply,
            std::vector<std::uint8_t>* stream) {
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, target, "r", helloFrame("r")));
  const Bytes request = detail::encodeMessage(detail::SyncMsg{
      .doc = doc, .heads = {}, .need = {}, .have = {}, .changes = {}, .storedHeads = {},
      .requestId = 0x0123456789abcdefull, .hops = 0, .isRequest = true});
  auto sent = h.await(raw.send(request), 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  auto answer = h.await(raw.receive(), 3s);
  ASSERT_TRUE(answer) << answer.error().message();
  auto decoded = detail::decodeMessage(*answer);
  ASSERT_TRUE(decoded);
  auto* u = std::get_if<detail::UnavailableMsg>(&*decoded);
  ASSERT_NE(u, nullptr) << "the reply is not `unavailable`";
  EXPECT_EQ(u->doc, doc);
  EXPECT_EQ(u->requestId, 0x0123456789abcdefull);
  h.runFor(150ms);
  *reply = *answer;
  *stream = raw.link->bytesFromAcceptor();
}

TEST(Repo, UnavailableForAMissingAndForAForbiddenDocumentAreByteIdentical) {
  RepoHarness h;
  auto& lacking = h.add("a");
  auto& forbidding = h.add("a");
  forbidding.auth->send = [](const PeerId& p, auto&) { return p.str() != "r"; };
  DocHandle x = forbidding.repo->create();
  ASSERT_TRUE(x.change(put("secret", uniqueText())));
  h.runFor(20ms);

  Bytes missingReply, forbiddenReply;
  std::vector<std::uint8_t> missingStream, forbiddenStream;
  ASSERT_NO_FATAL_FAILURE(askRaw(h, lacking, x.id(), &missingReply, &missingStream));
  ASSERT_NO_FATAL_FAILURE(askRaw(h, forbidding, x.id(), &forbiddenReply, &forbiddenStream));
  EXPECT_EQ(missingReply, forbiddenReply);
  EXPECT_EQ(missingStream, forbiddenStream);
}

// Scenario 5.
TEST(Repo, AFindForADocumentNoPeerHasFailsUnavailableWhenThePeerDeclines) {
  RepoHarness h;
  auto& a = h.add("a", [](RepoOptions& o) { o.findTimeout = 3000ms; });
  auto& b = h.add("b");
  auto link = h.link(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1) && connected(b, 1); }, 2s));
  const DocumentId nobodys = DocumentId::random();
  const auto start = Clock::now();
  auto found = h.await(a.repo->find(nobodys), 5s);
  const auto elapsed = Clock::now() - start;
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code(), Errc::NotFound);
  EXPECT_LT(elapsed, scaledBound(1000ms)) << "b declined: no need to wait for the deadline";
  EXPECT_TRUE(containsBytes(link->bytesFromDialer(), nobodys.bytes())) << "b was never asked";
}

TEST(Repo, AFindWithNoPeersAtAllFailsAtOnce) {
  RepoHarness h;
  auto& a = h.add("a", [](RepoOptions& o) { o.findTimeout = 3000ms; });
  const auto start = Clock::now();
  auto found = h.await(a.repo->find(DocumentId::random()), 5s);
  const auto elapsed = Clock::now() - start;
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code(), Errc::NotFound);
  EXPECT_LT(elapsed, scaledBound(200ms));
}

TEST(Repo, AFindWaitsForAPeerStillAuthenticatingAndResolvesFromIt) {
  RepoHarness h;
  auto& a = h.add("a", [](RepoOptions& o) { o.findTimeout = 3000ms; });
  auto& b = h.add("b");
  b.auth->advertise = [](auto&, auto&) { return false; };
  b.auth->handshakeDelay = 300ms;
  DocHandle doc = b.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  h.link(a, b);
  auto bg = startFind(h, *a.repo, doc.id());
  ASSERT_TRUE(h.runUntil([&] { return bg->result.has_value(); }, 5s));
  ASSERT_TRUE(*bg->result) << bg->result->error().message();
  EXPECT_EQ(readString(**bg->result, "foo"), "bar");
  EXPECT_LT(bg->finished - bg->started, 3000ms) << "resolved by b, not at the deadline";
}

// Scenario 6.
TEST(Repo, ChangesFromAPeerWithoutWriteAccessAreNeitherAppliedNorStoredAndItStillReceives) {
  RepoHarness h;
  auto storage = std::make_shared<MemoryStorageAdapter>();
  auto& a = h.add("a", [&](RepoOptions& o) {
    o.storage = storage;
    o.saveDelay = 10ms;
  });
  auto& b = h.add("b");
  a.auth->receive = [](const PeerId& p, auto&) { return p.str() != "b"; };
  h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "bar"); }, 2s));
  const auto headsBefore = doc.heads();
  const std::string jsonBefore = doc.toJson();

  DocHandle there = *b.repo->findLocal(doc.id());
  auto hash = there.change(put("fromB", uniqueText()));
  ASSERT_TRUE(hash && *hash);
  const Bytes payload = *there.doc().getChange(**hash);
  EXPECT_TRUE(h.runUntil([&] { return a.log->changesRefused > 0; }, 2s));
  h.runFor(150ms);
  EXPECT_EQ(doc.heads(), headsBefore);
  EXPECT_EQ(doc.toJson(), jsonBefore);
  EXPECT_EQ(readString(doc, "fromB"), "");

  auto flushed = h.await(a.repo->flush(), 2s);
  ASSERT_TRUE(flushed) << flushed.error().message();
  ASSERT_FALSE(storage->chunks().empty());
  bool ownStored = false;
  for (const auto& [key, data] : storage->chunks()) {
    EXPECT_FALSE(containsBytes(data, payload)) << "b's refused change was stored";
    for (const ChangeEnvelope* e : doc.doc().graph().changes()) {
      ownStored = ownStored || containsBytes(data, e->payload);
    }
  }
  EXPECT_TRUE(ownStored) << "a control: a's own change is found in storage";

  ASSERT_TRUE(doc.change(put("foo", "baz")));
  EXPECT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "baz"); }, 2s));
  h.runFor(100ms);
  EXPECT_EQ(readString(doc, "fromB"), "");
}

// Scenario 7.
TEST(Repo, APeerTheProviderRefusesIsClosedAndGetsNothingButTheHandshake) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  a.auth->refuse = {"b"};
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("secret", uniqueText())));
  auto link = h.link(a, b);
  EXPECT_TRUE(h.runUntil([&] { return !link->isOpen() && a.log->refused.size() == 1; }, 2s));
  h.runFor(150ms);
  EXPECT_TRUE(a.repo->peers().empty());
  EXPECT_TRUE(b.repo->peers().empty());
  EXPECT_TRUE(a.log->authenticated.empty());
  EXPECT_EQ(link->bytesFromDialer(), (std::vector<std::uint8_t>{1, 'a'}));
  EXPECT_FALSE(b.repo->findLocal(doc.id()));
}

// Scenario 8.
TEST(Repo, WithdrawnAccessStopsSyncingADocumentAndRestoredAccessResumesIt) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  h.link(a, b);
  DocHandle doc = a.repo->create();
  bool allowB = true;
  const DocumentId x = doc.id();
  a.auth->send = [&](const PeerId& p, const DocumentId& d) {
    return p.str() != "b" || d != x || allowB;
  };
  ASSERT_TRUE(doc.change(put("v", "1")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, x, "v", "1"); }, 2s));

  allowB = false;
  a.auth->callbacks.accessChanged(pid("b"));
  h.runFor(50ms);
  ASSERT_TRUE(doc.change(put("v", "2")));
  h.runFor(200ms);
  EXPECT_TRUE(holds(b, x, "v", "1"));
  EXPECT_NE(b.repo->findLocal(x)->heads(), doc.heads());

  allowB = true;
  a.auth->callbacks.accessChanged(pid("b"));
  EXPECT_TRUE(h.runUntil([&] { return holds(b, x, "v", "2"); }, 2s));
  EXPECT_EQ(b.repo->findLocal(x)->heads(), doc.heads());
}

TEST(Repo, AChangeQueuedBeforeAccessIsWithdrawnIsNotSent) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  h.link(a, b);
  DocHandle doc = a.repo->create();
  bool allowB = true;
  a.auth->send = [&](const PeerId& p, auto&) { return p.str() != "b" || allowB; };
  ASSERT_TRUE(doc.change(put("v", "1")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "v", "1"); }, 2s));
  // In one tick: the change is queued for b, then b loses access.
  ASSERT_TRUE(doc.change(put("v", "2")));
  allowB = false;
  a.auth->callbacks.accessChanged(pid("b"));
  h.runFor(200ms);
  EXPECT_TRUE(holds(b, doc.id(), "v", "1"));
}

// Scenario 10.
TEST(Repo, PeersThatEditWhileDisconnectedConvergeAfterReconnecting) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto first = h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("start", "1")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "start", "1"); }, 2s));

  first->cut();
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 0) && connected(b, 0); }, 2s));
  DocHandle there = *b.repo->findLocal(doc.id());
  ASSERT_TRUE(doc.change(put("fromA", "x")));
  ASSERT_TRUE(there.change(put("fromB", "y")));
  h.runFor(50ms);
  EXPECT_NE(doc.heads(), there.heads());

  h.link(b, a);
  EXPECT_TRUE(h.runUntil([&] { return doc.heads() == there.heads(); }, 3s));
  EXPECT_EQ(doc.heads().size(), 2u);
  EXPECT_EQ(readString(doc, "fromB"), "y");
  EXPECT_EQ(readString(there, "fromA"), "x");
  EXPECT_EQ(doc.toJson(), there.toJson());
}

TEST(Repo, AHistorySentInManyFramesWhileThePeerEditsConverges) {
  // Batches of about one change, and a link that holds one frame at a time: A's twenty edits
  // take twenty frames, B's edit and B's answers reach A in the middle of them, so what A knows
  // B has must follow both.
  RepoHarness h;
  auto smallFrames = [](RepoOptions& o) { o.syncBatchBytes = 64; };
  auto& a = h.add("a", smallFrames);
  auto& b = h.add("b", smallFrames);
  connect(*a.net, *b.net, {.maxBufferedBytes = 1, .record = false});
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("start", "1")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "start", "1"); }, 2s));
  h.runFor(50ms);
  DocHandle there = *b.repo->findLocal(doc.id());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(doc.change(put("k" + std::to_string(i), "x")));
  ASSERT_TRUE(there.change(put("fromB", "y")));

  EXPECT_TRUE(h.runUntil([&] { return doc.heads() == there.heads(); }, 3s));
  EXPECT_EQ(doc.doc().graph().size(), there.doc().graph().size());
  EXPECT_EQ(readString(doc, "fromB"), "y");
  EXPECT_EQ(readString(there, "k19"), "x");
  EXPECT_EQ(doc.toJson(), there.toJson());
}

// Scenario 11.
TEST(Repo, EphemeralMessagesReachOnlyPeersThatHaveTheDocumentAndMaySeeIt) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");  // has it, may see it
  auto& c = h.add("c");  // does not have it
  auto& d = h.add("d");  // has it, but loses access
  a.auth->advertise = [](const PeerId& p, auto&) { return p.str() != "c"; };
  bool allowD = true;
  a.auth->send = [&](const PeerId& p, auto&) { return p.str() != "d" || allowD; };
  h.link(a, b);
  h.link(a, c);
  h.link(a, d);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] {
    return connected(a, 3) && holds(b, doc.id(), "foo", "bar") && holds(d, doc.id(), "foo", "bar");
  }, 2s));
  allowD = false;
  a.auth->callbacks.accessChanged(pid("d"));
  h.runFor(50ms);
  ASSERT_FALSE(c.repo->findLocal(doc.id()));

  const Bytes data{1, 2, 3, 4};
  doc.broadcast(data);
  ASSERT_TRUE(h.runUntil([&] { return !b.log->ephemeral.empty(); }, 2s));
  h.runFor(150ms);
  ASSERT_EQ(b.log->ephemeral.size(), 1u);
  EXPECT_EQ(b.log->ephemeral[0].first, pid("a"));
  EXPECT_EQ(b.log->ephemeral[0].second, data);
  EXPECT_TRUE(c.log->ephemeral.empty());
  EXPECT_TRUE(d.log->ephemeral.empty());
}

TEST(Repo, EphemeralMessagesFromAPeerThatMayNotSeeTheDocumentAreIgnored) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto& d = h.add("d");
  bool allowD = true;
  a.auth->send = [&](const PeerId& p, auto&) { return p.str() != "d" || allowD; };
  h.link(a, b);
  h.link(a, d);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] {
    return holds(b, doc.id(), "foo", "bar") && holds(d, doc.id(), "foo", "bar");
  }, 2s));
  allowD = false;
  a.auth->callbacks.accessChanged(pid("d"));
  h.runFor(50ms);

  d.repo->findLocal(doc.id())->broadcast(Bytes{9});
  h.runFor(20ms);
  b.repo->findLocal(doc.id())->broadcast(Bytes{7});
  ASSERT_TRUE(h.runUntil([&] { return !a.log->ephemeral.empty(); }, 2s));
  h.runFor(150ms);
  ASSERT_EQ(a.log->ephemeral.size(), 1u);
  EXPECT_EQ(a.log->ephemeral[0].first, pid("b"));
}

// Scenario 12: a raw peer sends `hostile` after its hello.
void expectAHostileFrameClosesOnlyItsSession(const Bytes& hostile) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "bar"); }, 2s));
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, a, "r", helloFrame("r")));
  ASSERT_TRUE(h.runUntil([&] { return lists(a, "r"); }, 2s));
  const auto heads = doc.heads();
  const std::string json = doc.toJson();

  auto written = h.await(raw.writeRaw(hostile), 2s);
  ASSERT_TRUE(written) << written.error().message();
  EXPECT_TRUE(h.runUntil([&] { return !raw.link->isOpen() && !lists(a, "r"); }, 2s));
  EXPECT_EQ(a.repo->peers(), std::vector<PeerId>{pid("b")});
  EXPECT_EQ(doc.heads(), heads);
  EXPECT_EQ(doc.toJson(), json);

  // The honest peer syncs on, both ways.
  ASSERT_TRUE(doc.change(put("foo", "baz")));
  EXPECT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "baz"); }, 2s));
  ASSERT_TRUE(b.repo->findLocal(doc.id())->change(put("fromB", "y")));
  EXPECT_TRUE(h.runUntil([&] { return readString(doc, "fromB") == "y"; }, 2s));
}

TEST(Repo, AMalformedFrameClosesOnlyThatSessionAndLeavesTheStoreAlone) {
  Bytes garbage{0, 0, 0, 24};
  for (int i = 0; i < 24; ++i) garbage.push_back(static_cast<std::uint8_t>(0xA5 ^ (i * 37)));
  expectAHostileFrameClosesOnlyItsSession(garbage);
}

TEST(Repo, AFrameWithAnOversizedLengthClosesOnlyThatSession) {
  // 16 MiB + 1, and no body: refused on the length alone.
  expectAHostileFrameClosesOnlyItsSession(Bytes{0x01, 0x00, 0x00, 0x01});
}

// Scenario 13.
TEST(Repo, AFindReachesADocumentTwoHopsAwayThroughAPeerThatLacksIt) {
  RepoHarness h;
  auto slow = [](RepoOptions& o) { o.findTimeout = 3000ms; };
  auto& a = h.add("a", slow);
  auto& b = h.add("b", slow);
  auto& c = h.add("c", slow);
  a.auth->advertise = [](auto&, auto&) { return false; };
  h.link(a, b);
  h.link(b, c);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1) && connected(b, 2) && connected(c, 1); }, 2s));
  h.runFor(150ms);
  ASSERT_FALSE(b.repo->findLocal(doc.id()));
  ASSERT_FALSE(c.repo->findLocal(doc.id()));

  const auto start = Clock::now();
  auto found = h.await(c.repo->find(doc.id()), 5s);
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_LT(Clock::now() - start, 3000ms);
  EXPECT_EQ(readString(*found, "foo"), "bar");
  EXPECT_EQ(found->heads(), doc.heads());
}

TEST(Repo, RequestsGoOnlyToPeersOkToRequestAllowsAndNameTheDocumentToNoOneElse) {
  RepoHarness h;
  auto& a = h.add("a", [](RepoOptions& o) { o.findTimeout = 3000ms; });
  auto& b = h.add("b");
  auto& c = h.add("c");
  c.auth->advertise = [](auto&, auto&) { return false; };
  // a may send anything to anyone, but ask only c (and announces nothing).
  a.auth->request = [](const PeerId& p, auto&) { return p.str() == "c"; };
  a.auth->advertise = [](auto&, auto&) { return false; };
  auto ab = h.link(a, b);
  h.link(a, c);
  DocHandle doc = c.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 2); }, 2s));
  h.runFor(100ms);
  ASSERT_FALSE(a.repo->findLocal(doc.id()));

  auto found = h.await(a.repo->find(doc.id()), 5s);
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(readString(*found, "foo"), "bar");
  h.runFor(100ms);
  EXPECT_FALSE(containsBytes(ab->bytesFromDialer(), doc.id().bytes()));

  // With no one it may ask, a find fails at once.
  a.auth->request = [](auto&, auto&) { return false; };
  const auto start = Clock::now();
  auto none = h.await(a.repo->find(DocumentId::random()), 5s);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::NotFound);
  EXPECT_LT(Clock::now() - start, 1000ms);
}

TEST(Repo, CreateTellsTheProviderBeforeTheDocumentIsAnnounced) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  // Each time a is asked whether to offer a document, was it already told of its creation? (It
  // may be asked twice for one document: once by create(), once by a session start still running.)
  std::size_t askedKnown = 0, askedUnknown = 0;
  a.auth->advertise = [&](const PeerId&, const DocumentId& d) {
    const auto& created = a.auth->created;
    ++(std::find(created.begin(), created.end(), d) != created.end() ? askedKnown : askedUnknown);
    return true;
  };
  h.link(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1); }, 2s));
  DocHandle doc = a.repo->create();
  EXPECT_EQ(a.auth->created, std::vector<DocumentId>{doc.id()});
  ASSERT_TRUE(h.runUntil([&] { return b.repo->findLocal(doc.id()).has_value(); }, 2s));
  EXPECT_GE(askedKnown, 1u);
  EXPECT_EQ(askedUnknown, 0u);
  EXPECT_TRUE(b.auth->created.empty());
}

TEST(Repo, AFindNoOneInALineCanAnswerFailsWhenEveryPeerDeclinesBeforeTheDeadline) {
  RepoHarness h;
  auto slow = [](RepoOptions& o) { o.findTimeout = 3000ms; };
  auto& a = h.add("a", slow);
  auto& b = h.add("b", slow);
  auto& c = h.add("c", slow);
  auto ab = h.link(a, b);
  auto bc = h.link(b, c);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, 1) && connected(b, 2) && connected(c, 1); }, 2s));
  const DocumentId nobodys = DocumentId::random();
  const auto start = Clock::now();
  auto found = h.await(c.repo->find(nobodys), 5s);
  const auto elapsed = Clock::now() - start;
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code(), Errc::NotFound);
  EXPECT_LT(elapsed, scaledBound(1000ms))
      << "a and b declined: no need to wait for the deadline";
  EXPECT_TRUE(containsBytes(bc->bytesFromAcceptor(), nobodys.bytes())) << "c never asked b";
  EXPECT_TRUE(containsBytes(ab->bytesFromAcceptor(), nobodys.bytes())) << "b never asked a";
}

// Scenario 14.
TEST(Repo, EndingASessionClosesItAtOnceAndSendsNothingQueuedForIt) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto link = h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("v", "1")));
  ASSERT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "v", "1"); }, 2s));
  h.runFor(50ms);

  // In one tick: a change is queued for b, then the provider ends b's session.
  ASSERT_TRUE(doc.change(put("v", "2")));
  const std::size_t sentBefore = link->bytesFromDialer().size();
  a.auth->callbacks.endSession(pid("b"), "removed from the team");
  EXPECT_FALSE(lists(a, "b")) << "the session must be gone right after endSession";
  h.runFor(200ms);
  EXPECT_EQ(link->bytesFromDialer().size(), sentBefore);
  EXPECT_FALSE(link->isOpen());
  EXPECT_FALSE(lists(a, "b"));
  EXPECT_TRUE(holds(b, doc.id(), "v", "1"));
}

// One session per PeerId.
TEST(Repo, TwoPeersThatDialEachOtherKeepOneSessionEach) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto byA = h.link(a, b);
  auto byB = h.link(b, a);
  ASSERT_TRUE(h.runUntil([&] {
    return connected(a, 1) && connected(b, 1) && byA->isOpen() != byB->isOpen();
  }, 2s));
  h.runFor(150ms);
  EXPECT_TRUE(byA->isOpen()) << "the connection dialed by the smaller PeerId survives";
  EXPECT_FALSE(byB->isOpen());
  EXPECT_EQ(a.repo->peers(), std::vector<PeerId>{pid("b")});
  EXPECT_EQ(b.repo->peers(), std::vector<PeerId>{pid("a")});

  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("foo", "bar")));
  EXPECT_TRUE(h.runUntil([&] { return holds(b, doc.id(), "foo", "bar"); }, 2s));
  ASSERT_TRUE(b.repo->findLocal(doc.id())->change(put("fromB", "y")));
  EXPECT_TRUE(h.runUntil([&] { return readString(doc, "fromB") == "y"; }, 2s));
}

TEST(Repo, APeerWhoseHelloNamesAnotherPeerThanItAuthenticatedAsIsRefused) {
  RepoHarness h;
  auto& a = h.add("a");
  RawPeer raw(h, "r");
  // a may close before its own hello can be read: not read here.
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, a, "r", helloFrame("x"), /*readHello=*/false));
  EXPECT_TRUE(h.runUntil([&] { return !raw.link->isOpen() && a.log->refused.size() == 1; }, 2s));
  h.runFor(100ms);
  EXPECT_TRUE(a.repo->peers().empty());
  EXPECT_TRUE(a.log->authenticated.empty());
}

asio::awaitable<Result<void>> sendMany(RawPeer& raw, Bytes frame, int count) {
  for (int i = 0; i < count; ++i) {
    auto sent = co_await raw.send(frame);
    if (!sent) co_return sent;
  }
  co_return Result<void>();
}

TEST(Repo, APeerThatFloodsFramesOverItsQuotaIsDisconnected) {
  RepoHarness h;
  auto& a = h.add("a", [](RepoOptions& o) { o.quotas.framesPerSecond = 100; });
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, a, "r", helloFrame("r")));
  ASSERT_TRUE(h.runUntil([&] { return lists(a, "r"); }, 2s));
  const Bytes harmless =
      detail::encodeMessage(detail::UnavailableMsg{.doc = DocumentId::random(), .requestId = 1});

  auto sent = h.await(sendMany(raw, harmless, 50), 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  h.runFor(100ms);
  EXPECT_TRUE(lists(a, "r")) << "under the quota";

  (void)h.await(sendMany(raw, harmless, 300), 2s);  // may fail once a closes the stream
  EXPECT_TRUE(h.runUntil([&] { return !raw.link->isOpen() && !lists(a, "r"); }, 2s));
  EXPECT_EQ(a.log->gone, std::vector<PeerId>{pid("r")});
}

TEST(Repo, APeerThatConnectsAndSaysNothingIsDroppedAtTheHandshakeDeadline) {
  RepoHarness h;
  auto& a = h.add("a", [](RepoOptions& o) { o.handshakeTimeout = 150ms; });
  RawPeer silent(h, "silent");
  silent.dial(a);
  // Honest peers keep being served meanwhile.
  auto& b = h.add("b");
  h.link(b, a);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change([](Transaction& tx) { return putString(tx, "k", "v"); }));
  ASSERT_TRUE(h.runUntil([&] { return b.repo->findLocal(doc.id()).has_value(); }, 1s));
  EXPECT_TRUE(silent.link->isOpen());
  const auto start = std::chrono::steady_clock::now();
  // The stream closes at the deadline; the refusal is reported when the handshake's read fails.
  ASSERT_TRUE(h.runUntil([&] { return !silent.link->isOpen() && !a.log->refused.empty(); }, 2s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(a.log->refused.size(), 1u);
  EXPECT_EQ(a.repo->peers(), std::vector<PeerId>{*PeerId::parse("b")});
}

TEST(Repo, APeerThatAuthenticatesButNeverSaysHelloIsDroppedAtTheHandshakeDeadline) {
  RepoHarness h;
  auto& a = h.add("a", [](RepoOptions& o) { o.handshakeTimeout = 150ms; });
  RawPeer mute(h, "mute");
  mute.dial(a);
  auto claimed = h.await(mute.handshake("mute"));
  ASSERT_TRUE(claimed);
  EXPECT_EQ(*claimed, "a");
  ASSERT_TRUE(h.runUntil([&] { return !mute.link->isOpen() && !a.log->refused.empty(); }, 2s));
  EXPECT_TRUE(a.repo->peers().empty());
  EXPECT_EQ(a.log->refused.size(), 1u);
}

TEST(Repo, AHelloOfAnotherProtocolVersionIsRefused) {
  RepoHarness h;
  auto& a = h.add("a");
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, a, "r", helloFrame("r", detail::kProtocolVersion + 1),
                                  /*readHello=*/false));
  EXPECT_TRUE(h.runUntil([&] { return !raw.link->isOpen() && a.log->refused.size() == 1; }, 2s));
  EXPECT_TRUE(a.repo->peers().empty());
  EXPECT_TRUE(a.log->authenticated.empty());
}

TEST(Repo, AFirstFrameThatIsNotAHelloIsRefused) {
  RepoHarness h;
  auto& a = h.add("a");
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, a, "r", detail::encodeMessage(detail::LeaveMsg{}),
                                  /*readHello=*/false));
  EXPECT_TRUE(h.runUntil([&] { return !raw.link->isOpen() && a.log->refused.size() == 1; }, 2s));
  EXPECT_TRUE(a.repo->peers().empty());
  EXPECT_TRUE(a.log->authenticated.empty());
}

TEST(Repo, ProviderMessagesReachTheProviderAtTheOtherEnd) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto& c = h.add("c");
  h.link(a, b);
  h.link(c, b);
  ASSERT_TRUE(h.runUntil([&] { return b.repo->peers().size() == 2; }, 2s));
  a.auth->callbacks.sendProviderMessage(pid("b"), Bytes{1, 2, 3});
  ASSERT_TRUE(h.runUntil([&] { return !b.auth->providerMessages.empty(); }, 2s));
  EXPECT_EQ(b.auth->providerMessages[0].first, pid("a"));
  EXPECT_EQ(b.auth->providerMessages[0].second, (Bytes{1, 2, 3}));
  b.auth->callbacks.broadcastProviderMessage(Bytes{9});
  ASSERT_TRUE(h.runUntil([&] {
    return !a.auth->providerMessages.empty() && !c.auth->providerMessages.empty();
  }, 2s));
  EXPECT_EQ(a.auth->providerMessages[0].second, Bytes{9});
  EXPECT_EQ(c.auth->providerMessages[0].first, pid("b"));
  // To a peer with no session: nothing, and no failure.
  a.auth->callbacks.sendProviderMessage(pid("nobody"), Bytes{4});
  h.runFor(50ms);
  EXPECT_EQ(b.auth->providerMessages.size(), 1u) << "only a's message; a broadcast is not echoed";
  EXPECT_EQ(a.auth->providerMessages.size(), 1u);
}

TEST(Repo, DocumentChangedFiresForLocalEditsAndForChangesFromPeers) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change([](Transaction& tx) { return putString(tx, "k", "v"); }));
  EXPECT_EQ(a.log->changed, std::vector<DocumentId>{doc.id()});
  ASSERT_TRUE(h.runUntil([&] { return !b.log->changed.empty(); }, 2s));
  EXPECT_EQ(b.log->changed.front(), doc.id());
  // An edit that changes nothing is no change.
  ASSERT_TRUE(doc.change([](Transaction&) { return Result<void>(); }));
  EXPECT_EQ(a.log->changed.size(), 1u);
}

TEST(Repo, RemoveForgetsADocumentInMemoryAndInStorage) {
  RepoHarness h;
  auto storage = std::make_shared<MemoryStorageAdapter>();
  auto& a = h.add("a", [&](RepoOptions& o) { o.storage = storage; });
  DocHandle doc = a.repo->create();
  DocHandle other = a.repo->create();
  for (DocHandle* d : {&doc, &other}) {
    ASSERT_TRUE(d->change([](Transaction& tx) { return putString(tx, "k", "v"); }));
  }
  ASSERT_TRUE(h.await(a.repo->flush()));
  auto storedFor = [&](const DocumentId& id) {
    return std::count_if(storage->chunks().begin(), storage->chunks().end(),
                         [&](const auto& kv) { return kv.first.at(0) == toHex(id.bytes()); });
  };
  ASSERT_GT(storedFor(doc.id()), 0);
  auto removed = h.await(a.repo->remove(doc.id()));
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_FALSE(a.repo->findLocal(doc.id()));
  EXPECT_EQ(storedFor(doc.id()), 0);
  EXPECT_GT(storedFor(other.id()), 0) << "only that document is removed";
  auto found = h.await(a.repo->find(doc.id()));
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code(), Errc::NotFound);
}

}  // namespace
}  // namespace portcullis::testing
