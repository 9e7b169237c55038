// The `team` provider, linked directly: Repos of one team's devices over the memory network.
// Members sync documents through the handshake and the AEAD channel; strangers, other teams and
// removed devices are refused; a removal ends live sessions everywhere it arrives; graph sync
// brings a peer's missing links; a read-only member's change is refused by every honest peer,
// also when a member who may write relays it; a change waiting for team links it declares is
// released when they arrive and discarded at its deadline.
#include "team_provider.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "../../lib/repo/repo_harness.h"
#include "change_sealer.h"
#include "wire/session_codec.h"
#include "fs_storage.h"
#include "handshake.h"
#include "invitation.h"
#include "join.h"
#include "portcullis/config.h"
#include "portcullis/provider_registry.h"
#include "state_dir.h"
#include "storage_test_support.h"
#include "vector_builder.h"

namespace portcullis::team {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using portcullis::testing::RepoHarness;
using portcullis::testing::TestPeer;
using portcullis::testing::putString;
using portcullis::testing::readString;
using vectors::BuiltVector;
using vectors::buildVector;

json link(const std::string& id, const std::string& by, json act, json prev) {
  return {{"id", id}, {"by", by}, {"act", std::move(act)}, {"prev", std::move(prev)}};
}

// alice (a1) founds acme; bob (b1) and carol (c1) are members, carol may only read; s1 is a
// server. Then, held back for the tests that need them: alice removes bob (rm), and bob invites a
// device (bx) and adds one (bd), links only bob has, concurrent with rm.
json history() {
  return json::array({
      link("r", "alice/a1", {{"type", "root"}, {"team", "acme"}, {"device", "a1"}}, json::array()),
      link("l1", "alice/a1", {{"type", "addMember"}, {"user", "bob"}, {"devices", {"b1"}}},
           {"r"}),
      link("l2", "alice/a1", {{"type", "addMember"}, {"user", "carol"}, {"devices", {"c1"}}},
           {"l1"}),
      link("l3", "alice/a1", {{"type", "addServer"}, {"server", "s1"}}, {"l2"}),
      link("l4", "alice/a1",
           {{"type", "setDocumentAccess"}, {"doc", "*"}, {"principal", {{"member", "carol"}}},
            {"level", "read"}},
           {"l3"}),
      link("rm", "alice/a1", {{"type", "removeMember"}, {"user", "bob"}}, {"l4"}),
      link("bx", "bob/b1", {{"type", "inviteDevice"}, {"key", "i9"}}, {"l4"}),
      link("bd", "bob/b1", {{"type", "addDevice"}, {"user", "bob"}, {"device", "b2"}}, {"bx"}),
  });
}
constexpr std::size_t kBase = 5;  // r .. l4

class TeamProvider : public ::testing::Test {
 protected:
  void SetUp() override {
    built = buildVector({{"name", "provider"}, {"links", history()}, {"expect", json::object()}});
  }

  // The state directory of device `device` holding links [0, count) of the history, plus the
  // ones named in `extra`.
  std::string stateOf(const std::string& device, std::size_t count,
                      const std::vector<std::string>& extra = {}) {
    const std::string path = (dir.path() / device).string();
    const auto pair = vectors::testKeyPair(device);
    auto key = DeviceKey::fromSeed(ByteView(pair.secretKey.data(), 32));
    EXPECT_TRUE(key);
    std::vector<Bytes> links;
    std::uint64_t signedSeq = 0;
    for (std::size_t i = 0; i < built.links.size(); ++i) {
      const auto& l = built.links[i];
      const bool take = i < count || std::find(extra.begin(), extra.end(), l.id) != extra.end();
      if (!take) continue;
      links.push_back(l.message);
      if (l.value && l.value->deviceId == pair.publicKey) signedSeq = l.value->deviceSeq;
    }
    auto state = TeamStateDir::create(path, built.teamId, std::move(*key), signedSeq);
    EXPECT_TRUE(state) << state.error().message();
    EXPECT_TRUE(state->appendLinks(links));
    return path;
  }

  struct Node {
    TestPeer* peer = nullptr;
    std::shared_ptr<AuthProvider> auth;
    std::shared_ptr<std::vector<std::string>> refused =
        std::make_shared<std::vector<std::string>>();
    std::shared_ptr<std::vector<std::string>> gone = std::make_shared<std::vector<std::string>>();
    Repo& repo() { return *peer->repo; }
    PeerId id() const { return *auth->localPeer(); }
  };

  Node node(const std::string& device, std::size_t count, const std::vector<std::string>& extra = {},
            std::chrono::milliseconds changeWait = std::chrono::seconds(10)) {
    Node n;
    auto provider = makeTeamProvider({.state = stateOf(device, count, extra),
                                      .changeWait = changeWait});
    EXPECT_TRUE(provider) << provider.error().message();
    n.auth = *provider;
    return attach(device, std::move(n));
  }

  Node attach(const std::string& name, Node n) {
    auto refused = n.refused;
    auto gone = n.gone;
    n.peer = &h.add(name, [&](RepoOptions& o) {
      o.auth = n.auth;
      o.peerId.reset();
      o.events.peerRefused = [refused](const std::string&, const Error& e) {
        refused->push_back(e.message());
      };
      o.events.peerGone = [gone](const PeerId&, const std::string& reason) {
        gone->push_back(reason);
      };
    });
    return n;
  }

  static bool knows(Node& a, Node& b) {
    auto peers = a.repo().peers();
    return std::find(peers.begin(), peers.end(), b.id()) != peers.end();
  }
  static bool connected(Node& a, Node& b) { return knows(a, b) && knows(b, a); }
  static bool anyContains(const std::vector<std::string>& list, const std::string& what) {
    return std::any_of(list.begin(), list.end(),
                       [&](const std::string& s) { return s.find(what) != std::string::npos; });
  }

  // A document written on `from`; true when it arrives on `to` within the limit.
  bool syncs(Node& from, Node& to, const std::string& value, DocumentId* id = nullptr) {
    DocHandle doc = from.repo().create();
    EXPECT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", value); }));
    if (id) *id = doc.id();
    return h.runUntil([&] {
      auto there = to.repo().findLocal(doc.id());
      return there && readString(*there, "v") == value;
    }, 3s);
  }

  std::vector<Bytes> messagesUpTo(std::size_t count) const {
    std::vector<Bytes> out;
    for (std::size_t i = 0; i < count; ++i) out.push_back(built.links[i].message);
    return out;
  }

  BuiltVector built;
  test::TempDir dir;
  RepoHarness h;
};

TEST_F(TeamProvider, MembersSyncADocumentBothWaysAsTheirDeviceKeys) {
  Node a = node("a1", kBase);
  Node b = node("b1", kBase);
  EXPECT_EQ(a.id().str(), toHex(ByteView(vectors::testKey("a1"))));
  h.link(*a.peer, *b.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b); }));
  EXPECT_TRUE(syncs(a, b, "from alice"));
  EXPECT_TRUE(syncs(b, a, "from bob"));
  EXPECT_TRUE(teamSyncedWith(*a.auth, b.id()));
}

TEST_F(TeamProvider, ADeviceOutsideTheTeamIsRefusedWhicheverSideDials) {
  Node a = node("a1", kBase);
  Node e = node("e1", kBase);  // holds the team's links, but no link introduces it
  h.link(*e.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return !a.refused->empty() && !e.refused->empty(); }));
  EXPECT_TRUE(anyContains(*a.refused, "unknownDevice")) << a.refused->front();
  EXPECT_FALSE(knows(a, e));
  h.link(*a.peer, *e.peer);
  ASSERT_TRUE(h.runUntil([&] { return a.refused->size() == 2 && e.refused->size() == 2; }));
  EXPECT_FALSE(knows(e, a));
}

TEST_F(TeamProvider, AnotherTeamsDeviceIsClosedWithoutAReply) {
  Node a = node("a1", kBase);
  // bob founds his own team: alice's node knows no team by the tag bob sends.
  BuiltVector other = buildVector(
      {{"name", "other"},
       {"links", json::array({link("r", "bob/b1", {{"type", "root"}, {"team", "bobs"}, {"device", "b1"}},
                                   json::array())})},
       {"expect", json::object()}});
  const std::string path = (dir.path() / "bobs-b1").string();
  auto key = DeviceKey::fromSeed(ByteView(vectors::testKeyPair("b1").secretKey.data(), 32));
  auto state = TeamStateDir::create(path, other.teamId, std::move(*key), 1);
  ASSERT_TRUE(state);
  ASSERT_TRUE(state->appendLinks(other.messages()));
  state = Error(Errc::NotFound, "closed");  // release the directory's lock
  Node b;
  auto provider = makeTeamProvider({.state = path});
  ASSERT_TRUE(provider) << provider.error().message();
  b.auth = *provider;
  b = attach("bobs", std::move(b));
  h.link(*b.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return !a.refused->empty() && !b.refused->empty(); }));
  EXPECT_FALSE(knows(a, b));
}

// §6.2: a device the other side has not heard of proves its admission with the link that added
// it, whichever side dials; the verifier stores that link (and graph sync then brings the rest).
TEST_F(TeamProvider, AnUnknownMemberDeviceThatDialsProvesItsAdmission) {
  Node a = node("a1", 2);  // r, l1: alice has not stored carol's addMember (l2)
  Node c = node("c1", kBase);
  h.link(*c.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, c); }))
      << (a.refused->empty() ? "" : a.refused->front());
  EXPECT_TRUE(a.refused->empty());
  EXPECT_TRUE(syncs(a, c, "carol is in"));  // (carol may only read)
  EXPECT_TRUE(h.runUntil([&] { return teamSyncedWith(*a.auth, c.id()); }));
}

TEST_F(TeamProvider, AnUnknownDeviceDialedProvesItsAdmissionToTheDialer) {
  Node a = node("a1", 2);
  Node c = node("c1", kBase);
  h.link(*a.peer, *c.peer);  // alice dials carol, who is unknown to her
  ASSERT_TRUE(h.runUntil([&] { return connected(a, c); }))
      << (a.refused->empty() ? "" : a.refused->front());
  EXPECT_TRUE(syncs(a, c, "alice reaches carol"));
}

TEST_F(TeamProvider, AProofWhosePrevTheVerifierLacksIsCompletedThroughNeed) {
  Node a = node("a1", 1);  // the root only: carol's addMember names bob's (l1), which alice lacks
  Node c = node("c1", kBase);
  h.link(*c.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, c); }))
      << (a.refused->empty() ? "" : a.refused->front());
  EXPECT_TRUE(syncs(a, c, "through a Need"));
}

TEST_F(TeamProvider, AServerUnknownToAMemberProvesItsAddServer) {
  Node b = node("b1", 3);  // r, l1, l2: bob has not stored the addServer (l3)
  Node s = node("s1", kBase);
  h.link(*b.peer, *s.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(b, s); }))
      << (b.refused->empty() ? "" : b.refused->front());
  EXPECT_TRUE(syncs(b, s, "to the server"));
}

// Each speculative evaluation copies the graph: at most proofsPerMinute per team, then unknown
// devices are denied without one.
TEST_F(TeamProvider, ProofsBeyondTheQuotaAreDeniedWithoutAnEvaluation) {
  Node a;
  auto alice = makeTeamProvider({.state = stateOf("a1", 2), .proofsPerMinute = 1});
  ASSERT_TRUE(alice);
  a.auth = *alice;
  a = attach("a1", std::move(a));
  Node c = node("c1", kBase);
  h.link(*c.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, c) && teamSyncedWith(*a.auth, c.id()); }));
  Node b2 = node("b2", kBase, {"bx", "bd"});  // bob's new device, which alice has not heard of
  h.link(*b2.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return !a.refused->empty(); }));
  EXPECT_TRUE(anyContains(*a.refused, "unknownDevice")) << a.refused->front();
  EXPECT_FALSE(knows(a, b2));
}

// A member removed concurrently with adding a device: the new device's proof does not make it
// current at the verifier, which denies it `removed` and stores none of the proof.
TEST_F(TeamProvider, ARemovedMembersConcurrentDeviceCannotProveItsWayInAndNothingIsStored) {
  Node a = node("a1", kBase, {"rm"});
  Node b2 = node("b2", kBase, {"bx", "bd"});
  h.link(*b2.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return !a.refused->empty() && !b2.refused->empty(); }));
  EXPECT_TRUE(anyContains(*a.refused, "removed")) << a.refused->front();
  EXPECT_TRUE(anyContains(*b2.refused, "removed")) << b2.refused->front();
  EXPECT_FALSE(knows(a, b2));
  a.peer->repo.reset();
  a.auth.reset();
  Result<TeamStateDir> reopened = Error(Errc::Conflict, "not yet");
  ASSERT_TRUE(h.runUntil([&] {
    if (!reopened) reopened = TeamStateDir::open((dir.path() / "a1").string());
    return reopened.has_value();
  })) << reopened.error().message();
  EXPECT_EQ(reopened->graph().state(built.hashOf.at("bd")), LinkState::Absent);
  EXPECT_EQ(reopened->graph().size(), kBase + 1);
}

TEST_F(TeamProvider, GraphSyncBringsAPeersMissingLinksAndStoresThem) {
  Node a = node("a1", kBase);
  Node b = node("b1", kBase, {"bx"});
  h.link(*a.peer, *b.peer);
  ASSERT_TRUE(h.runUntil([&] { return teamSyncedWith(*a.auth, b.id()) &&
                                      teamSyncedWith(*b.auth, a.id()); }));
  // Durable: a restart of alice's state directory holds bob's link.
  a.peer->repo.reset();
  a.auth.reset();
  Result<TeamStateDir> reopened = Error(Errc::Conflict, "not yet");
  ASSERT_TRUE(h.runUntil([&] {  // the Repo's coroutines end, and the directory's lock with them
    if (!reopened) reopened = TeamStateDir::open((dir.path() / "a1").string());
    return reopened.has_value();
  })) << reopened.error().message();
  EXPECT_EQ(reopened->graph().state(built.hashOf.at("bx")), LinkState::Valid);
}

TEST_F(TeamProvider, ARemovalEndsTheRemovedMembersLiveSessionsAndItsReconnectionIsRefused) {
  Node a = node("a1", kBase);
  Node s = node("s1", kBase);
  Node b = node("b1", kBase);
  h.link(*a.peer, *s.peer);
  h.link(*b.peer, *s.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, s) && connected(b, s); }));
  auto removed = teamAct(*a.auth, RemoveMember{.userId = "bob"});
  ASSERT_TRUE(removed) << removed.error().message();
  // The removal reaches the server, which ends bob's session there.
  ASSERT_TRUE(h.runUntil([&] { return !knows(s, b) && !knows(b, s); }));
  EXPECT_TRUE(anyContains(*s.gone, "removed")) << (s.gone->empty() ? "" : s.gone->back());
  h.link(*b.peer, *s.peer);
  ASSERT_TRUE(h.runUntil([&] { return anyContains(*s.refused, "removed"); }));
  EXPECT_FALSE(knows(s, b));
  // alice and the server still sync.
  EXPECT_TRUE(syncs(a, s, "after"));
}

TEST_F(TeamProvider, ARemovedDevicesLiveSessionEndsAndItIsRefusedWhileTheOthersStay) {
  Node a = node("a1", kBase);
  Node c = node("c1", kBase);
  Node b = node("b1", kBase);
  h.link(*b.peer, *a.peer);
  h.link(*c.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b) && connected(a, c); }));
  auto removed = teamAct(*a.auth, RemoveDevice{.deviceId = vectors::testKey("b1")});
  ASSERT_TRUE(removed) << removed.error().message();
  ASSERT_TRUE(h.runUntil([&] { return !knows(a, b) && !knows(b, a); }));
  EXPECT_TRUE(connected(a, c));
  h.link(*b.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return anyContains(*a.refused, "removed"); }));
  EXPECT_FALSE(knows(a, b));
  EXPECT_TRUE(syncs(a, c, "carol still hears"));
}

TEST_F(TeamProvider, TheServerStoresAndRelaysButAReadOnlyMembersChangeIsRefused) {
  Node a = node("a1", kBase);
  Node s = node("s1", kBase);
  Node c = node("c1", kBase);
  h.link(*a.peer, *s.peer);
  h.link(*c.peer, *s.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, s) && connected(c, s); }));
  DocumentId id;
  ASSERT_TRUE(syncs(a, c, "alice writes", &id));  // through the server
  EXPECT_TRUE(s.repo().findLocal(id));
  // carol may read, not write: the server refuses her change.
  auto doc = c.repo().findLocal(id);
  ASSERT_TRUE(doc);
  ASSERT_TRUE(doc->change([&](Transaction& tx) { return putString(tx, "v", "carol writes"); }));
  ASSERT_TRUE(h.runUntil([&] { return s.peer->log->changesRefused > 0; }));
  h.runFor(100ms);
  EXPECT_EQ(readString(*a.repo().findLocal(id), "v"), "alice writes");
}

// A member who may write, but accepts whatever it is sent: an honest peer must still refuse the
// read-only member's change it relays (write rights are the author's).
class LenientRelay final : public AuthProvider {
 public:
  explicit LenientRelay(std::shared_ptr<AuthProvider> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return inner_->name(); }
  std::optional<PeerId> localPeer() const override { return inner_->localPeer(); }
  std::optional<ActorId> localActor() const override { return inner_->localActor(); }
  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> s, Side side) override {
    auto handshake = inner_->authenticate(std::move(s), side);
    co_return co_await std::move(handshake);
  }
  asio::awaitable<bool> okToAdvertise(const PeerIdentity&, const DocumentId&) override {
    co_return true;
  }
  asio::awaitable<bool> okToSend(const PeerIdentity&, const DocumentId&) override {
    co_return true;
  }
  asio::awaitable<bool> okToReceive(const PeerIdentity&, const DocumentId&,
                                    const ChangeBatch&) override {
    co_return true;
  }
  std::shared_ptr<const ChangeSealer> sealerFor(const DocumentId& doc) override {
    return inner_->sealerFor(doc);
  }
  void attach(RepoCallbacks callbacks) override { inner_->attach(std::move(callbacks)); }

 private:
  std::shared_ptr<AuthProvider> inner_;
};

// bob's own provider, but his changes declare the team heads the test chooses (a device can
// declare any heads it has: §8 rules 3 and 4 are what bound it).
class ChosenHeads final : public AuthProvider {
 public:
  ChosenHeads(std::shared_ptr<AuthProvider> inner, std::shared_ptr<const DeviceKey> key,
              std::shared_ptr<std::vector<Hash>> heads)
      : inner_(std::move(inner)), key_(std::move(key)), heads_(std::move(heads)) {}
  std::string_view name() const override { return inner_->name(); }
  std::optional<PeerId> localPeer() const override { return inner_->localPeer(); }
  std::optional<ActorId> localActor() const override { return inner_->localActor(); }
  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> s, Side side) override {
    auto handshake = inner_->authenticate(std::move(s), side);
    co_return co_await std::move(handshake);
  }
  asio::awaitable<bool> okToAdvertise(const PeerIdentity& p, const DocumentId& d) override {
    co_return co_await inner_->okToAdvertise(p, d);
  }
  asio::awaitable<bool> okToSend(const PeerIdentity& p, const DocumentId& d) override {
    co_return co_await inner_->okToSend(p, d);
  }
  asio::awaitable<bool> okToReceive(const PeerIdentity& p, const DocumentId& d,
                                    const ChangeBatch& c) override {
    co_return co_await inner_->okToReceive(p, d, c);
  }
  std::shared_ptr<const ChangeSealer> sealerFor(const DocumentId& doc) override {
    auto heads = heads_;
    return std::make_shared<TeamChangeSealer>(doc.bytes(), key_, [heads] { return *heads; },
                                              kMaxChangeBytes);
  }
  void attach(RepoCallbacks callbacks) override { inner_->attach(std::move(callbacks)); }

 private:
  std::shared_ptr<AuthProvider> inner_;
  std::shared_ptr<const DeviceKey> key_;
  std::shared_ptr<std::vector<Hash>> heads_;
};

// bob's node, whose changes declare `heads`.
class TeamProviderChosenHeads : public TeamProvider {
 protected:
  Node bobDeclaring(std::shared_ptr<std::vector<Hash>> heads) {
    auto key = DeviceKey::fromSeed(ByteView(vectors::testKeyPair("b1").secretKey.data(), 32));
    auto inner = makeTeamProvider({.state = stateOf("b1", kBase)});
    EXPECT_TRUE(key && inner);
    Node b;
    b.auth = std::make_shared<ChosenHeads>(
        *inner, std::make_shared<const DeviceKey>(std::move(*key)), std::move(heads));
    return attach("b1", std::move(b));
  }
};

TEST_F(TeamProviderChosenHeads, AChangeWhoseDeclaredHeadsGoBackIsRefused) {
  Node a = node("a1", kBase);
  auto heads = std::make_shared<std::vector<Hash>>(std::vector<Hash>{built.hashOf.at("l4")});
  Node b = bobDeclaring(heads);
  h.link(*b.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b); }));
  DocHandle doc = b.repo().create();
  ASSERT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", "at l4"); }));
  ASSERT_TRUE(h.runUntil([&] {
    auto there = a.repo().findLocal(doc.id());
    return there && readString(*there, "v") == "at l4";
  }));
  // The next change declares l2 only: l4, which the previous change declared, is not below it.
  *heads = {built.hashOf.at("l2")};
  ASSERT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", "back at l2"); }));
  ASSERT_TRUE(h.runUntil([&] { return a.peer->log->changesRefused > 0; }));
  EXPECT_EQ(readString(*a.repo().findLocal(doc.id()), "v"), "at l4");
}

// §10: a graph-sync step (here the Want for a head bob's change declares and nobody has) that
// goes unanswered closes the session at the step deadline; the waiting change is discarded.
TEST_F(TeamProviderChosenHeads, AWantNobodyAnswersClosesTheSessionAtTheSyncStepDeadline) {
  Node a;
  auto alice = makeTeamProvider(
      {.state = stateOf("a1", kBase), .changeWait = 5000ms, .syncStep = 200ms});
  ASSERT_TRUE(alice);
  a.auth = *alice;
  a = attach("a1", std::move(a));
  Hash nowhere{};
  nowhere.fill(0x5a);
  auto heads = std::make_shared<std::vector<Hash>>(std::vector<Hash>{nowhere});
  Node b = bobDeclaring(heads);
  h.link(*b.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b); }));
  const auto begin = std::chrono::steady_clock::now();
  DocHandle doc = b.repo().create();
  ASSERT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", "at nowhere"); }));
  ASSERT_TRUE(h.runUntil([&] { return !knows(a, b); }, 3s));
  const auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 2s);  // the step deadline, well before the change's own 5 s
  auto atAlice = a.repo().findLocal(doc.id());
  EXPECT_TRUE(!atAlice || readString(*atAlice, "v").empty());
}

// §10: at most N new declared-heads cuts are evaluated per session per minute; a change beyond
// that waits, and is discarded at its deadline.
TEST_F(TeamProviderChosenHeads, NewDeclaredHeadsCutsBeyondTheQuotaWaitAndAreDiscardedAtTheDeadline) {
  Node a;
  auto alice = makeTeamProvider(
      {.state = stateOf("a1", kBase), .changeWait = 300ms, .cutsPerMinute = 2});
  ASSERT_TRUE(alice);
  a.auth = *alice;
  a = attach("a1", std::move(a));
  auto heads = std::make_shared<std::vector<Hash>>();
  Node b = bobDeclaring(heads);
  h.link(*b.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b); }));
  // Three documents, each written at another cut where bob may write: l4, l3, l2.
  std::vector<DocumentId> docs;
  for (const char* at : {"l4", "l3", "l2"}) {
    *heads = {built.hashOf.at(at)};
    DocHandle doc = b.repo().create();
    docs.push_back(doc.id());
    ASSERT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", at); }));
    h.runFor(20ms);  // one at a time, so the first two are the ones admitted
  }
  ASSERT_TRUE(h.runUntil([&] { return a.peer->log->changesRefused > 0; }, 3s));
  auto applied = [&](const DocumentId& id) {
    auto there = a.repo().findLocal(id);
    return there && !readString(*there, "v").empty();
  };
  EXPECT_TRUE(applied(docs[0]));
  EXPECT_TRUE(applied(docs[1]));
  EXPECT_FALSE(applied(docs[2]));
  // The same cut again is no new cut: a fourth document at l4 is taken at once.
  *heads = {built.hashOf.at("l4")};
  DocHandle again = b.repo().create();
  ASSERT_TRUE(again.change([&](Transaction& tx) { return putString(tx, "v", "l4 again"); }));
  EXPECT_TRUE(h.runUntil([&] { return applied(again.id()); }));
}

// §11's residual risk, as the spec states it: a removed member's change that declares heads from
// before its removal is valid everywhere, once a carrier (here a peer that has not heard of the
// removal) passes it on.
TEST_F(TeamProvider, ARemovedMembersChangeDeclaringHeadsFromBeforeTheRemovalIsValidAsSpecified) {
  Node a = node("a1", kBase, {"rm"});   // alice has removed bob
  Node c = node("c1", kBase);           // carol has not heard of it
  Node b = node("b1", kBase);
  h.link(*b.peer, *c.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(b, c); }));
  // carol may only read (l4), so she relays without writing; bob writes at l4.
  DocHandle doc = b.repo().create();
  ASSERT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", "bob, backdated"); }));
  ASSERT_TRUE(h.runUntil([&] { return c.repo().findLocal(doc.id()).has_value(); }));
  h.link(*c.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] {
    auto there = a.repo().findLocal(doc.id());
    return there && readString(*there, "v") == "bob, backdated";
  }));
  // bob himself is refused by alice.
  h.link(*b.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return anyContains(*a.refused, "removed"); }));
}

TEST_F(TeamProvider, AReadOnlyMembersChangeRelayedByAWriterIsStillRefused) {
  Node a = node("a1", kBase);
  Node c = node("c1", kBase);
  Node b;
  auto inner = makeTeamProvider({.state = stateOf("b1", kBase)});
  ASSERT_TRUE(inner);
  b.auth = std::make_shared<LenientRelay>(*inner);
  b = attach("b1", std::move(b));
  h.link(*c.peer, *b.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(c, b); }));
  DocHandle doc = c.repo().create();
  ASSERT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", "carol writes"); }));
  ASSERT_TRUE(h.runUntil([&] {
    auto there = b.repo().findLocal(doc.id());
    return there && readString(*there, "v") == "carol writes";
  }));
  // bob took it; alice, honest, refuses it from bob.
  h.link(*b.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return a.peer->log->changesRefused > 0; }));
  auto atAlice = a.repo().findLocal(doc.id());
  EXPECT_TRUE(!atAlice || readString(*atAlice, "v").empty());
}

TEST_F(TeamProvider, AChangeWaitsForTheTeamLinksItDeclaresUntilGraphSyncBringsThem) {
  // bob's change declares bx, which only bob has: alice waits for it and then applies.
  Node a = node("a1", kBase);
  Node b = node("b1", kBase, {"bx"});
  DocHandle doc = b.repo().create();
  ASSERT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", "bob at bx"); }));
  h.link(*b.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] {
    auto there = a.repo().findLocal(doc.id());
    return there && readString(*there, "v") == "bob at bx";
  }));
  EXPECT_EQ(a.peer->log->changesRefused, 0u);
}

TEST_F(TeamProvider, AChangeWhoseDeclaredLinksNeverArriveIsDiscardedAtItsDeadline) {
  // bob's change declares bx. It then reaches alice from bob's storage on a node of bob's whose
  // state directory lacks bx: nobody can send alice the link, and the change is discarded.
  auto store = [&] {
    auto opened = FsStorageAdapter::open(dir.path() / "bob-storage");
    EXPECT_TRUE(opened);
    return std::shared_ptr<StorageAdapter>(std::move(*opened));
  };
  DocumentId id = DocumentId::random();
  {
    Node b;
    auto provider = makeTeamProvider({.state = stateOf("b1", kBase, {"bx"})});
    ASSERT_TRUE(provider);
    b.auth = *provider;
    b.peer = &h.add("bob-then", [&](RepoOptions& o) {
      o.auth = b.auth;
      o.peerId.reset();
      o.storage = store();
    });
    DocHandle doc = b.repo().create();
    id = doc.id();
    ASSERT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", "bob at bx"); }));
    ASSERT_TRUE(h.await(b.repo().flush()));
    b.peer->repo.reset();
  }
  Node a = node("a1", kBase, {}, 300ms);
  Node stale;
  const std::string statePath = (dir.path() / "b1-stale").string();
  {
    auto key = DeviceKey::fromSeed(ByteView(vectors::testKeyPair("b1").secretKey.data(), 32));
    auto state = TeamStateDir::create(statePath, built.teamId, std::move(*key), 0);
    ASSERT_TRUE(state);
    ASSERT_TRUE(state->appendLinks(messagesUpTo(kBase)));
  }
  auto provider = makeTeamProvider({.state = statePath});
  ASSERT_TRUE(provider) << provider.error().message();
  stale.auth = *provider;
  stale.peer = &h.add("bob-now", [&](RepoOptions& o) {
    o.auth = stale.auth;
    o.peerId.reset();
    o.storage = store();
  });
  ASSERT_TRUE(h.await(stale.repo().find(id)));
  h.link(*stale.peer, *a.peer);
  ASSERT_TRUE(h.runUntil([&] { return a.peer->log->changesRefused > 0; }, 3s));
  auto atAlice = a.repo().findLocal(id);
  EXPECT_TRUE(!atAlice || readString(*atAlice, "v").empty());
}

// A device that is not in the team yet, with a stream to `target`'s node.
struct Invitee {
  Invitee(RepoHarness& h, TestPeer& target, const std::string& name) : raw(h, name) {
    raw.dial(target);
    EXPECT_TRUE(h.runUntil([&] { return raw.stream != nullptr; }));
  }
  std::unique_ptr<Stream> stream() { return std::make_unique<portcullis::testing::SharingStream>(raw.stream); }
  portcullis::testing::RawPeer raw;
  DeviceKey device = DeviceKey::generate();
};

// alice invites with a fresh code (its key derived here, as the invitee will).
std::string invite(AuthProvider& alice, const Hash& teamId, std::uint32_t maxUses) {
  InvitationCode code = generateInvitationCode(teamId);
  std::string text(code.text());
  auto parsed = parseInvitationCode(text);
  auto key = deriveInvitationKey(*parsed, teamId);
  EXPECT_TRUE(key);
  auto posted = teamAct(alice, InviteMember{{key->publicKey, maxUses, 0}});
  EXPECT_TRUE(posted) << posted.error().message();
  return text;
}

TEST_F(TeamProvider, AnInviteeJoinsOverTheNetworkAndItsNewDeviceIsAMember) {
  Node a = node("a1", kBase);
  const std::string code = invite(*a.auth, built.teamId, 1);
  Invitee dave(h, *a.peer, "dave");
  auto joined = h.await(joinTeam(dave.stream(), code, dave.device, {.userId = "dave"}), 20s);
  ASSERT_TRUE(joined) << joined.error().message();
  EXPECT_EQ(joined->teamId, built.teamId);
  EXPECT_EQ(joined->userId, "dave");
  EXPECT_EQ(joined->responder, vectors::testKey("a1"));
  TeamGraph graph(built.teamId);
  graph.addBatch(joined->links);
  EXPECT_EQ(graph.memberOfDevice(Key(dave.device.publicKey().bytes())), "dave");
  EXPECT_EQ(graph.size(), kBase + 2);  // the invitation and the admission
  // The invitation was for one use: a second invitee with the same code learns nothing.
  Invitee erin(h, *a.peer, "erin");
  auto again = h.await(joinTeam(erin.stream(), code, erin.device, {.userId = "erin"}), 20s);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::Denied);
  EXPECT_NE(again.error().message().find("does not offer this invitation"), std::string::npos)
      << again.error().message();
}

TEST_F(TeamProvider, AnInviteeIsRefusedATakenUserIdAndAWrongCodeRevealsNothing) {
  Node a = node("a1", kBase);
  const std::string code = invite(*a.auth, built.teamId, 0);
  Invitee bob(h, *a.peer, "bob2");
  auto taken = h.await(joinTeam(bob.stream(), code, bob.device, {.userId = "bob"}), 20s);
  ASSERT_FALSE(taken);
  EXPECT_NE(taken.error().message().find("userIdTaken"), std::string::npos)
      << taken.error().message();
  // The right prefix with another seed: the derived key is not offered, so no m3 is sent.
  std::string wrong = code;
  wrong.back() = wrong.back() == 'z' ? 'y' : 'z';
  Invitee eve(h, *a.peer, "eve");
  auto guessed = h.await(joinTeam(eve.stream(), wrong, eve.device, {.userId = "eve"}), 20s);
  ASSERT_FALSE(guessed);
  EXPECT_EQ(guessed.error().code(), Errc::Denied);
}

// An invitee that holds the code but proves it over another transcript (a proof replayed from
// another session) is denied badProof, and nothing is admitted.
TEST_F(TeamProvider, AnInviteeWhoseProofIsNotOverThisSessionIsDeniedBadProof) {
  Node a = node("a1", kBase);
  const std::string code = invite(*a.auth, built.teamId, 1);
  auto key = deriveInvitationKey(*parseInvitationCode(code), built.teamId);
  ASSERT_TRUE(key);
  Invitee dave(h, *a.peer, "dave");
  const Key deviceId = dave.device.publicKey().bytes();
  const EncKey encKey = dave.device.publicKey().curve25519();
  InitiatorConfig config;
  config.identity = {deviceId, ClaimKind::Invitee, signerFor(dave.device)};
  config.mode = HandshakeMode::Invitee;
  std::copy_n(code.begin(), kTeamPrefixBytes, config.prefix.begin());
  config.inviteeCheck = [&](const Claim& responder,
                            const Hash& h2) -> asio::awaitable<Result<Claim>> {
    const Offer offer = responder.invitations->front();
    const AdmissionRequest request =
        makeAdmissionRequest(built.teamId, offer.invitation, *key, dave.device, encKey, "dave");
    Hash otherTranscript = h2;
    otherTranscript[0] ^= 1;
    Claim claim;
    claim.invitation = offer.invitation;
    claim.encKey = encKey;
    claim.userId = "dave";
    claim.proof = signInvitationProof(*key, otherTranscript, deviceId, encKey, "dave");
    claim.consent = request.consent;
    claim.inviteSig = request.inviteSig;
    co_return claim;
  };
  auto handshake = runInitiator(dave.stream(), std::move(config));
  auto result = h.await(std::move(handshake));
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->received.kind, Status::Kind::Denied);
  EXPECT_EQ(result->received.reason, Reason::BadProof);
  EXPECT_TRUE(anyContains(*a.refused, "badProof"));
  // The invitation is still unused: a proper join with the same code works.
  Invitee erin(h, *a.peer, "erin");
  auto joined = h.await(joinTeam(erin.stream(), code, erin.device, {.userId = "erin"}), 20s);
  EXPECT_TRUE(joined) << joined.error().message();
}

TEST_F(TeamProvider, RevokedAndExpiredInvitationsAreNotOfferedAndTheInviteeRevealsNothing) {
  Node a = node("a1", kBase);
  // Revoked: invited, then revoked by alice.
  InvitationCode revokedCode = generateInvitationCode(built.teamId);
  const std::string revoked(revokedCode.text());
  auto revokedKey = deriveInvitationKey(*parseInvitationCode(revoked), built.teamId);
  auto invitation = teamAct(*a.auth, InviteMember{{revokedKey->publicKey, 1, 0}});
  ASSERT_TRUE(invitation) << invitation.error().message();
  ASSERT_TRUE(teamAct(*a.auth, RevokeInvitation{.invitation = *invitation}));
  // Expired by alice's clock (the admitting device's).
  InvitationCode expiredCode = generateInvitationCode(built.teamId);
  const std::string expired(expiredCode.text());
  auto expiredKey = deriveInvitationKey(*parseInvitationCode(expired), built.teamId);
  ASSERT_TRUE(teamAct(*a.auth, InviteMember{{expiredKey->publicKey, 1, 1'000}}));
  for (const std::string* code : {&revoked, &expired}) {
    Invitee dave(h, *a.peer, "dave-" + std::to_string(code == &revoked));
    auto joined = h.await(joinTeam(dave.stream(), *code, dave.device, {.userId = "dave"}), 20s);
    ASSERT_FALSE(joined);
    EXPECT_EQ(joined.error().code(), Errc::Denied);
    EXPECT_NE(joined.error().message().find("does not offer this invitation"), std::string::npos)
        << joined.error().message();
  }
}

// A state directory for `device` of `team` at `path`, holding all of `team`'s links.
void writeState(const std::string& path, const BuiltVector& team, const std::string& device) {
  auto key = DeviceKey::fromSeed(ByteView(vectors::testKeyPair(device).secretKey.data(), 32));
  std::uint64_t signedSeq = 0;
  for (const auto& l : team.links) {
    if (l.value && l.value->deviceId == vectors::testKey(device)) signedSeq = l.value->deviceSeq;
  }
  auto state = TeamStateDir::create(path, team.teamId, std::move(*key), signedSeq);
  ASSERT_TRUE(state) << state.error().message();
  ASSERT_TRUE(state->appendLinks(team.messages()));
}

TEST_F(TeamProvider, TwoTeamsOnOneServerAreToldApartAndNeverSeeEachOthersDocuments) {
  // zed founds "zoo" and adds the same server, s1.
  const BuiltVector zoo = buildVector(
      {{"name", "zoo"},
       {"links", json::array({link("r", "zed/z1", {{"type", "root"}, {"team", "zoo"},
                                                   {"device", "z1"}}, json::array()),
                              link("l1", "zed/z1", {{"type", "addServer"}, {"server", "s1"}},
                                   {"r"})})},
       {"expect", json::object()}});
  BuiltVector acme = built;
  acme.links.resize(kBase);
  const auto host = dir.path() / "host";
  std::filesystem::create_directory(host);
  auto hostKey = DeviceKey::fromSeed(ByteView(vectors::testKeyPair("s1").secretKey.data(), 32));
  ASSERT_TRUE(hostKey->save((host / "device.key").string()));
  writeState((host / toHex(ByteView(acme.teamId))).string(), acme, "s1");
  writeState((host / toHex(ByteView(zoo.teamId))).string(), zoo, "s1");
  writeState((dir.path() / "z1").string(), zoo, "z1");

  Node s;
  auto server = makeTeamProvider({.state = host.string()});
  ASSERT_TRUE(server) << server.error().message();
  s.auth = *server;
  s = attach("s1", std::move(s));
  Node a = node("a1", kBase);
  Node z;
  auto zed = makeTeamProvider({.state = (dir.path() / "z1").string()});
  ASSERT_TRUE(zed) << zed.error().message();
  z.auth = *zed;
  z = attach("z1", std::move(z));
  h.link(*a.peer, *s.peer);
  h.link(*z.peer, *s.peer);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, s) && connected(z, s); }));

  // Each team's document reaches the server, and only its own team.
  DocHandle acmeDoc = a.repo().create();
  ASSERT_TRUE(acmeDoc.change([&](Transaction& tx) { return putString(tx, "v", "acme"); }));
  DocHandle zooDoc = z.repo().create();
  ASSERT_TRUE(zooDoc.change([&](Transaction& tx) { return putString(tx, "v", "zoo"); }));
  ASSERT_TRUE(h.runUntil([&] {
    return s.repo().findLocal(acmeDoc.id()).has_value() &&
           s.repo().findLocal(zooDoc.id()).has_value();
  }));
  auto zedAsks = h.await(z.repo().find(acmeDoc.id()));
  EXPECT_FALSE(zedAsks);
  auto aliceAsks = h.await(a.repo().find(zooDoc.id()));
  EXPECT_FALSE(aliceAsks);
  EXPECT_FALSE(z.repo().findLocal(acmeDoc.id()));
  EXPECT_FALSE(a.repo().findLocal(zooDoc.id()));
  // The binding survives a restart of the server: it is on disk.
  EXPECT_TRUE(std::filesystem::exists(host / toHex(ByteView(acme.teamId)) / "documents"));
}

TEST_F(TeamProvider, TheFactoryNamesTheTableAndTheStateDirectory) {
  ProviderRegistry registry;
  ASSERT_TRUE(registerProvider(registry));
  const auto file = dir.path() / "node.toml";
  {
    std::ofstream out(file);
    out << "[auth]\nprovider = \"team\"\n[auth.team]\nstate = \"missing\"\n";
  }
  auto root = loadConfigFile(file);
  ASSERT_TRUE(root);
  auto made = registry.createFromConfig(*root, {});
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message().find("state"), std::string::npos) << made.error().message();
  EXPECT_NE(made.error().message().find(file.string()), std::string::npos)
      << made.error().message();
  {
    std::ofstream out(file, std::ios::trunc);
    out << "[auth]\nprovider = \"team\"\n[auth.team]\nstate = \"a1\"\nchange-wait = 0\n";
  }
  stateOf("a1", kBase);
  root = loadConfigFile(file);
  made = registry.createFromConfig(*root, {});
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message().find("change-wait"), std::string::npos)
      << made.error().message();
  {
    std::ofstream out(file, std::ios::trunc);
    out << "[auth]\nprovider = \"team\"\n[auth.team]\nstate = \"a1\"\nsurprise = 1\n";
  }
  root = loadConfigFile(file);
  made = registry.createFromConfig(*root, {});
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message().find("surprise"), std::string::npos) << made.error().message();
  {
    std::ofstream out(file, std::ios::trunc);
    out << "[auth]\nprovider = \"team\"\n[auth.team]\nstate = \"a1\"\n";
  }
  root = loadConfigFile(file);
  made = registry.createFromConfig(*root, {});
  ASSERT_TRUE(made) << made.error().message();
  EXPECT_EQ((*made)->name(), "team");
}

}  // namespace
}  // namespace portcullis::team
