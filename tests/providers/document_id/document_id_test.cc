// The `document-id` provider, linked directly (providers/document_id): the Rumpelstiltskin rule
// over real Repos on the memory network. Documents go to the upstreams they were created with or
// found from, to anyone else only once asked for by ID; requests name documents only to
// upstreams; servers pin keys and frames are encrypted; config errors name file, line and key.
#include "document_id.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <fstream>
#include <set>

#include "../../lib/repo/repo_harness.h"
#include "portcullis/config.h"
#include "portcullis/logging.h"
#include "portcullis/provider_registry.h"
#include "portcullis/secret_handshake.h"
#include "storage_test_support.h"

namespace portcullis::testing {
namespace {

// The provider under test, with a record of every document a peer named to it: the hooks
// okToSend and okToReceive are asked whenever a peer's message names a document. (The wire is
// encrypted, so the recorded link bytes cannot show which IDs crossed it.)
class Spy final : public AuthProvider {
 public:
  explicit Spy(std::unique_ptr<AuthProvider> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return inner_->name(); }
  std::optional<PeerId> localPeer() const override { return inner_->localPeer(); }
  std::vector<std::string> dialAddresses() const override { return inner_->dialAddresses(); }
  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> s, Side side) override {
    return inner_->authenticate(std::move(s), side);
  }
  asio::awaitable<bool> okToAdvertise(const PeerIdentity& p, const DocumentId& d) override {
    return inner_->okToAdvertise(p, d);
  }
  asio::awaitable<bool> okToSend(const PeerIdentity& p, const DocumentId& d) override {
    heard.insert(d);
    return inner_->okToSend(p, d);
  }
  asio::awaitable<bool> okToRequest(const PeerIdentity& p, const DocumentId& d) override {
    return inner_->okToRequest(p, d);
  }
  asio::awaitable<bool> okToReceive(const PeerIdentity& p, const DocumentId& d,
                                    const ChangeBatch& b) override {
    heard.insert(d);
    return inner_->okToReceive(p, d, b);
  }
  void documentCreated(const DocumentId& d) override { inner_->documentCreated(d); }
  void attach(RepoCallbacks callbacks) override { inner_->attach(std::move(callbacks)); }

  std::set<DocumentId> heard;

 private:
  std::unique_ptr<AuthProvider> inner_;
};

struct Node {
  TestPeer* peer = nullptr;
  std::shared_ptr<Spy> auth;
  std::string hex;  // the device key: its PeerId
  Repo& repo() { return *peer->repo; }
  PeerId id() const { return *PeerId::parse(hex); }
  bool heard(const DocumentId& doc) const { return auth->heard.contains(doc); }
};

class DocumentIdProvider : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(documentid::registerProvider(registry)); }

  Result<std::unique_ptr<AuthProvider>> providerFrom(const std::string& table) {
    const std::filesystem::path file = dir.path() / "node.toml";
    std::ofstream(file, std::ios::trunc) << "[auth]\nprovider = \"document-id\"\n"
                                            "[auth.document-id]\n" << table;
    auto root = loadConfigFile(file);
    if (!root) return std::move(root).error();
    return registry.createFromConfig(*root, {});
  }

  // A Repo named `name` with its own key file (made by the provider on first use), treating
  // the servers in `upstream` as its upstreams.
  Node node(const std::string& name, const std::vector<std::string>& upstream = {}) {
    std::string list;
    for (const auto& u : upstream) list += (list.empty() ? "\"" : ", \"") + u + "\"";
    auto provider = providerFrom("identity = \"" + name + ".key\"\nupstream = [" + list + "]\n");
    EXPECT_TRUE(provider) << provider.error().message();
    Node n;
    n.auth = std::make_shared<Spy>(std::move(*provider));
    n.hex = n.auth->localPeer()->str();
    n.peer = &h.add(name, [&](RepoOptions& o) {
      o.auth = n.auth;
      o.peerId.reset();
      o.findTimeout = 2s;
    });
    return n;
  }

  // The address `to` is dialed at: its key pinned.
  static std::string addressOf(const Node& to) { return "net:" + to.peer->name + ":1~shs:" + to.hex; }

  // `from` dials `to` over a recorded link (so `to` is one of `from`'s upstreams).
  std::shared_ptr<MemoryLink> dial(Node& from, Node& to) {
    return connect(*from.peer->net, *to.peer->net, {.dialedAddress = addressOf(to)});
  }

  bool connected(Node& a, Node& b) {
    auto has = [](Repo& r, const PeerId& p) {
      auto peers = r.peers();
      return std::find(peers.begin(), peers.end(), p) != peers.end();
    };
    return has(a.repo(), b.id()) && has(b.repo(), a.id());
  }

  DocHandle created(Node& n, const std::string& value) {
    DocHandle doc = n.repo().create();
    EXPECT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", value); }));
    return doc;
  }

  test::TempDir dir;
  RepoHarness h;
  ProviderRegistry registry;
};

TEST_F(DocumentIdProvider, ADocumentGoesToTheServerItWasCreatedWithAndToOthersOnlyWhenAsked) {
  Node server = node("server"), alice = node("alice"), bob = node("bob");
  dial(alice, server);
  dial(bob, server);
  ASSERT_TRUE(h.runUntil([&] { return connected(alice, server) && connected(bob, server); }));
  DocHandle doc = created(alice, "shopping");
  // Pushed to alice's server, which stores it...
  ASSERT_TRUE(h.runUntil([&] {
    auto there = server.repo().findLocal(doc.id());
    return there && readString(*there, "v") == "shopping";
  }));
  // ... and tells no one else of it: bob holds nothing and heard no ID.
  h.runFor(200ms);
  EXPECT_FALSE(bob.repo().findLocal(doc.id()));
  EXPECT_FALSE(bob.heard(doc.id()));
  // Bob, told the ID out of band, asks and gets it, then follows its changes.
  auto found = h.await(bob.repo().find(doc.id()), 5s);
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(readString(*found, "v"), "shopping");
  ASSERT_TRUE(doc.change([](Transaction& tx) { return putString(tx, "v", "milk"); }));
  ASSERT_TRUE(h.runUntil([&] { return readString(*bob.repo().findLocal(doc.id()), "v") == "milk"; }));
  // And bob's edits reach alice through the server.
  ASSERT_TRUE(found->change([](Transaction& tx) { return putString(tx, "w", "eggs"); }));
  ASSERT_TRUE(h.runUntil([&] { return readString(doc, "w") == "eggs"; }));
}

TEST_F(DocumentIdProvider, AnUnknownDocumentIsUnavailable) {
  Node server = node("server"), alice = node("alice");
  dial(alice, server);
  ASSERT_TRUE(h.runUntil([&] { return connected(alice, server); }));
  auto missing = h.await(alice.repo().find(DocumentId::random()), 5s);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
}

TEST_F(DocumentIdProvider, ADocumentNeverCrossesToAServerItWasNotCreatedWithOrFoundFrom) {
  // s1 dials s2: s2 is s1's upstream. alice's document, pushed to s1, is not s1's to offer s2.
  Node s1 = node("s1"), s2 = node("s2"), alice = node("alice");
  dial(alice, s1);
  dial(s1, s2);
  ASSERT_TRUE(h.runUntil([&] { return connected(alice, s1) && connected(s1, s2); }));
  DocHandle doc = created(alice, "private");
  ASSERT_TRUE(h.runUntil([&] { return s1.repo().findLocal(doc.id()).has_value(); }));
  h.runFor(300ms);
  EXPECT_FALSE(s2.repo().findLocal(doc.id()));
  EXPECT_FALSE(s2.heard(doc.id()));
}

TEST_F(DocumentIdProvider, AServerFindsAtItsUpstreamAndKeepsThatUpstreamInSync) {
  // s2 dials s1 (s1 is s2's upstream). bob asks s2 for alice's document, which is on s1.
  Node s1 = node("s1"), s2 = node("s2"), alice = node("alice"), bob = node("bob"),
       carol = node("carol");
  dial(alice, s1);
  dial(s2, s1);
  dial(bob, s2);
  dial(carol, s2);
  ASSERT_TRUE(h.runUntil([&] {
    return connected(alice, s1) && connected(s2, s1) && connected(bob, s2) && connected(carol, s2);
  }));
  DocHandle doc = created(alice, "shared");
  ASSERT_TRUE(h.runUntil([&] { return s1.repo().findLocal(doc.id()).has_value(); }));
  auto found = h.await(bob.repo().find(doc.id()), 5s);
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(readString(*found, "v"), "shared");
  // Found from s1: bob's edit travels back up through s2 to s1 and alice.
  ASSERT_TRUE(found->change([](Transaction& tx) { return putString(tx, "v", "edited by bob"); }));
  ASSERT_TRUE(h.runUntil([&] { return readString(doc, "v") == "edited by bob"; }));
  // s2 asked only its upstream: carol, another client of s2, never heard the ID.
  EXPECT_TRUE(s1.heard(doc.id()));
  EXPECT_FALSE(carol.heard(doc.id()));
}

TEST_F(DocumentIdProvider, AConfiguredUpstreamIsDialedAndGetsNewDocuments) {
  Node server = node("server");
  Node alice = node("alice", {addressOf(server)});
  EXPECT_EQ(alice.auth->dialAddresses(), std::vector<std::string>{addressOf(server)});
  // The server dials alice here (the memory network has no listener to dial), and is still her
  // upstream because the config names its key.
  connect(*server.peer->net, *alice.peer->net, {.dialedAddress = addressOf(alice)});
  ASSERT_TRUE(h.runUntil([&] { return connected(alice, server); }));
  DocHandle doc = created(alice, "to upstream");
  EXPECT_TRUE(h.runUntil([&] { return server.repo().findLocal(doc.id()).has_value(); }));
}

TEST_F(DocumentIdProvider, TheDialerPinsTheServerKeyAndFramesAreEncrypted) {
  Node server = node("server"), alice = node("alice"), mallory = node("mallory");
  // alice dials "server" but the address pins mallory's key: refused.
  connect(*alice.peer->net, *server.peer->net, {.dialedAddress = addressOf(mallory)});
  h.runFor(300ms);
  EXPECT_FALSE(connected(alice, server));
  EXPECT_FALSE(alice.peer->log->refused.empty());
  // The right key: connected, and a marker never crosses in clear.
  auto link = dial(alice, server);
  ASSERT_TRUE(h.runUntil([&] { return connected(alice, server); }));
  const std::string marker = "plaintext-marker-document-id";
  DocHandle doc = created(alice, marker);
  ASSERT_TRUE(h.runUntil([&] { return server.repo().findLocal(doc.id()).has_value(); }));
  h.runFor(100ms);
  ASSERT_GT(link->bytesFromDialer().size(), marker.size());
  EXPECT_FALSE(containsBytes(link->bytesFromDialer(), asBytes(marker)));
  EXPECT_FALSE(containsBytes(link->bytesFromDialer(), doc.id().bytes()));
}

TEST_F(DocumentIdProvider, APeerOfAnotherNetworkKeyIsRefused) {
  Node server = node("server");
  // A shared-key-like peer: the same handshake, another network key.
  auto other = NetworkKey::parse(std::string(64, 'c'));
  DeviceKey key = DeviceKey::generate();
  auto& peer = h.add("other");
  std::unique_ptr<Stream> end;
  peer.net->start([&](std::unique_ptr<Stream> s, Side) { end = std::move(s); });
  connect(*peer.net, *server.peer->net, {.dialedAddress = addressOf(server)});
  ASSERT_TRUE(h.runUntil([&] { return end != nullptr; }));
  const ShsConfig config{.networkKey = *other, .identity = key};
  auto result = h.await(shsClient(*end, config, *PublicKey::parse(server.hex)), 3s);
  EXPECT_FALSE(result);
  EXPECT_TRUE(server.repo().peers().empty());
}

TEST_F(DocumentIdProvider, TheInstallKeyIsMadeOnceWithMode0600AndKept) {
  auto first = providerFrom("identity = \"install.key\"\n");
  ASSERT_TRUE(first) << first.error().message();
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() / "install.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = providerFrom("identity = \"install.key\"\n");
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ((*first)->localPeer(), (*second)->localPeer());
}

TEST_F(DocumentIdProvider, ConfigErrorsNameFileLineAndKey) {
  const std::string file = (dir.path() / "node.toml").string();
  auto unknown = providerFrom("identity = \"k.key\"\nupstreams = []\n");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message(),
            file + ":5: auth.document-id.upstreams: unknown key (expected one of: identity, "
                   "upstream, state)");
  auto bad = providerFrom("identity = \"k.key\"\nupstream = [\"127.0.0.1:7420\"]\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message().rfind(file + ":5: auth.document-id.upstream: entry 1: expected "
                                               "net:HOST:PORT~shs:KEY", 0), 0u)
      << bad.error().message();
  auto none = providerFrom("upstream = []\n");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(), file + ":3: auth.document-id.identity: missing (required)");
  std::filesystem::create_directories(dir.path() / "a-folder.key");
  auto unreadable = providerFrom("identity = \"a-folder.key\"\n");
  ASSERT_FALSE(unreadable);
  EXPECT_EQ(unreadable.error().message().rfind(file + ":4: auth.document-id.identity: ", 0), 0u)
      << unreadable.error().message();
}

TEST_F(DocumentIdProvider, WhatBelongsToWhichUpstreamSurvivesARestartOnlyWithAStateFile) {
  const std::string upstream = DeviceKey::generate().publicKeyHex();
  const std::string other = DeviceKey::generate().publicKeyHex();
  const std::string table = "identity = \"k.key\"\nupstream = [\"net:up:1~shs:" + upstream +
                            "\", \"net:other:1~shs:" + other + "\"]\n";
  auto as = [](const std::string& hex) {
    return PeerIdentity{.peer = *PeerId::parse(hex), .user = {}, .roles = {}, .provider = {}};
  };
  const DocumentId made = DocumentId::random(), found = DocumentId::random();
  for (const bool withState : {false, true}) {
    SCOPED_TRACE(withState ? "with a state file" : "without");
    std::filesystem::remove(dir.path() / "belongs");
    const std::string config = table + (withState ? "state = \"belongs\"\n" : "");
    {
      auto before = providerFrom(config);
      ASSERT_TRUE(before) << before.error().message();
      (*before)->documentCreated(made);
      EXPECT_TRUE(h.await((*before)->okToReceive(as(upstream), found, ChangeBatch{})));
      EXPECT_TRUE(h.await((*before)->okToAdvertise(as(other), made)));
      EXPECT_TRUE(h.await((*before)->okToAdvertise(as(upstream), found)));
      EXPECT_FALSE(h.await((*before)->okToAdvertise(as(other), found)));
    }
    auto after = providerFrom(config);
    ASSERT_TRUE(after) << after.error().message();
    EXPECT_EQ(h.await((*after)->okToAdvertise(as(other), made)), withState);
    EXPECT_EQ(h.await((*after)->okToAdvertise(as(upstream), found)), withState);
    EXPECT_FALSE(h.await((*after)->okToAdvertise(as(other), found)));
  }
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() / "belongs").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(DocumentIdProvider, AStateFileThatIsBrokenOrReadableByOthersStopsStartUp) {
  const std::string file = (dir.path() / "node.toml").string();
  const auto state = dir.path() / "belongs";
  const std::string config = "identity = \"k.key\"\nstate = \"belongs\"\n";
  const std::string doc = toHex(DocumentId::random().bytes());
  auto write = [&](const std::string& text, int mode) {
    std::filesystem::remove(state);
    std::ofstream(state) << text;
    ::chmod(state.c_str(), mode);
  };
  // A last line cut short by a crash was never acknowledged: ignored.
  write("created " + doc + "\ncreated 12", 0600);
  EXPECT_TRUE(providerFrom(config));
  write("created " + doc + "\nfound " + doc + " not-a-key\n", 0600);
  auto broken = providerFrom(config);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().message(),
            file + ":5: auth.document-id.state: " + state.string() +
                ":2: expected 'created DOC' or 'found DOC KEY'");
  write("created " + doc + "\n", 0644);
  auto open = providerFrom(config);
  ASSERT_FALSE(open);
  EXPECT_NE(open.error().message().find("readable by group or others"), std::string::npos)
      << open.error().message();
}

TEST_F(DocumentIdProvider, TheNetworkKeyIsTheHashOfItsPublishedName) {
  const std::string name = "portcullis/document-id/v1";
  std::array<std::uint8_t, 32> hash{};
  crypto_hash_sha256(hash.data(), reinterpret_cast<const std::uint8_t*>(name.data()), name.size());
  EXPECT_EQ(toHex(hash), documentid::kNetworkKeyHex);
}

TEST_F(DocumentIdProvider, LogsNameDocumentsOnlyByAShortHash) {
  std::string text;
  LogSink previous = setLogSink([&text](LogLevel, std::string_view line) {
    text.append(line).push_back('\n');
  });
  setLogLevel(LogLevel::Debug);
  DocumentId id = DocumentId::random();
  {
    Node server = node("server"), alice = node("alice"), bob = node("bob");
    dial(alice, server);
    dial(bob, server);
    ASSERT_TRUE(h.runUntil([&] { return connected(alice, server) && connected(bob, server); }));
    DocHandle doc = created(alice, "logged?");
    id = doc.id();
    ASSERT_TRUE(h.runUntil([&] { return server.repo().findLocal(doc.id()).has_value(); }));
    EXPECT_TRUE(h.await(bob.repo().find(doc.id()), 5s));
  }
  setLogSink(std::move(previous));
  setLogLevel(LogLevel::Info);
  // The document was logged (created, found), by its short name only.
  EXPECT_NE(text.find(id.logName() + " created here"), std::string::npos) << text;
  EXPECT_NE(text.find(id.logName() + " found from upstream"), std::string::npos) << text;
  EXPECT_EQ(text.find(id.toString()), std::string::npos) << text;
  EXPECT_EQ(text.find(toHex(id.bytes())), std::string::npos) << text;
}

}  // namespace
}  // namespace portcullis::testing
