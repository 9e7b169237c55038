// The `online` provider, linked directly (providers/online): peers with certificates over real
// Repos on the memory network, with no identity service running (certificates are signed by a
// service key the test holds), and logins at an identity service node. Every accept has its
// rejects: forged, unknown signer, replayed under another key, another app, expired, revoked,
// read-only writes, no read.
#include "online_provider.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>

#include "../../lib/repo/repo_harness.h"
#include "online.h"
#include "portcullis/config.h"
#include "portcullis/provider_registry.h"
#include "storage_test_support.h"
#include "time_scale.h"

namespace portcullis::testing {
namespace {

using online::Certificate;
using online::Ed25519Key;
using online::Permissions;

constexpr std::string_view kApp = "com.example.notes";

struct Node {
  TestPeer* peer = nullptr;
  std::shared_ptr<AuthProvider> auth;
  std::shared_ptr<const DeviceKey> key;
  Repo& repo() { return *peer->repo; }
  PeerId id() const { return *PeerId::parse(key->publicKeyHex()); }
};

class OnlineProvider : public ::testing::Test {
 protected:
  // A certificate for `key` signed by `signer` (the test's service key unless another is given).
  Bytes certificate(const DeviceKey& key, Permissions permissions, std::int64_t lifetime = 3600,
                    const DeviceKey* signer = nullptr, std::string app = std::string(kApp)) {
    Certificate c{.appId = std::move(app),
                  .peerKey = key.publicKey().bytes(),
                  .userId = "user-" + key.publicKeyHex().substr(0, 8),
                  .roles = {"member"},
                  .permissions = std::move(permissions),
                  .issuedAt = online::unixNow() - 10,
                  .expiresAt = online::unixNow() + lifetime,
                  .serial = nextSerial++};
    return online::signCertificate(c, signer ? *signer : service);
  }

  online::OnlineOptions options(std::shared_ptr<const DeviceKey> key, Bytes cert) {
    online::OnlineOptions o;
    o.appId = std::string(kApp);
    o.identity = std::move(key);
    o.serviceKeys = {service.publicKey().bytes()};
    o.certificate = std::move(cert);
    o.clockSkew = 0;
    return o;
  }

  // A Repo named `name` holding `cert` (made for its key when empty, with `permissions`).
  Node node(const std::string& name, Permissions permissions,
            std::function<void(online::OnlineOptions&)> tweak = {}) {
    Node n;
    n.key = std::make_shared<const DeviceKey>(DeviceKey::generate());
    auto o = options(n.key, certificate(*n.key, std::move(permissions)));
    if (tweak) tweak(o);
    n.key = o.identity;
    auto provider = online::makeOnlineProvider(std::move(o));
    EXPECT_TRUE(provider) << provider.error().message();
    n.auth = std::move(*provider);
    n.peer = &h.add(name, [&](RepoOptions& r) {
      r.auth = n.auth;
      r.peerId.reset();
      r.findTimeout = 1s;
    });
    return n;
  }

  static std::string addressOf(const Node& to) {
    return "net:" + to.peer->name + ":1~shs:" + to.key->publicKeyHex();
  }
  std::shared_ptr<MemoryLink> dial(Node& from, Node& to) {
    return connect(*from.peer->net, *to.peer->net, {.dialedAddress = addressOf(to)});
  }
  static bool has(Repo& r, const PeerId& p) {
    auto peers = r.peers();
    return std::find(peers.begin(), peers.end(), p) != peers.end();
  }
  bool connected(Node& a, Node& b) { return has(a.repo(), b.id()) && has(b.repo(), a.id()); }

  DocHandle created(Node& n, const std::string& value) {
    DocHandle doc = n.repo().create();
    EXPECT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", value); }));
    return doc;
  }

  static Permissions all() { return {.read = {"*"}, .write = {"*"}}; }
  static Permissions readOnly() { return {.read = {"*"}, .write = {}}; }

  DeviceKey service = DeviceKey::generate();
  std::uint64_t nextSerial = 1000;
  test::TempDir dir;
  RepoHarness h;
};

TEST_F(OnlineProvider, TwoDevicesWithCertificatesSyncWithNoServiceRunning) {
  Node alice = node("alice", all()), bob = node("bob", all());
  dial(alice, bob);
  ASSERT_TRUE(h.runUntil([&] { return connected(alice, bob); }));
  DocHandle doc = created(alice, "from alice");
  auto found = h.await(bob.repo().find(doc.id()), 5s);
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(readString(*found, "v"), "from alice");
  ASSERT_TRUE(found->change([](Transaction& tx) { return putString(tx, "w", "from bob"); }));
  EXPECT_TRUE(h.runUntil([&] { return readString(doc, "w") == "from bob"; }));
  // The session knows who the peer is, from its certificate.
  EXPECT_EQ(alice.peer->log->authenticated.size(), 1u);
}

TEST_F(OnlineProvider, AReadOnlyDevicesChangesAreRefusedByEveryHonestPeer) {
  Node server = node("server", all()), alice = node("alice", all()),
       reader = node("reader", readOnly());
  dial(alice, server);
  dial(reader, server);
  dial(reader, alice);
  ASSERT_TRUE(h.runUntil([&] {
    return connected(alice, server) && connected(reader, server) && connected(reader, alice);
  }));
  DocHandle doc = created(alice, "v1");
  // The reader receives it...
  auto found = h.await(reader.repo().find(doc.id()), 5s);
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(readString(*found, "v"), "v1");
  // ... but its own change goes nowhere: alice and the server both refuse it.
  ASSERT_TRUE(found->change([](Transaction& tx) { return putString(tx, "v", "by reader"); }));
  EXPECT_TRUE(h.runUntil([&] {
    return alice.peer->log->changesRefused > 0 && server.peer->log->changesRefused > 0;
  }));
  h.runFor(200ms);
  EXPECT_EQ(readString(doc, "v"), "v1");
  auto onServer = server.repo().findLocal(doc.id());
  ASSERT_TRUE(onServer);
  EXPECT_EQ(readString(*onServer, "v"), "v1");
}

TEST_F(OnlineProvider, ADeviceWithoutReadIsToldNothingAboutTheDocument) {
  Node alice = node("alice", all());
  const DocHandle doc = created(alice, "secret");
  // Eve may read one other document only.
  Node eve = node("eve", Permissions{.read = {DocumentId::random().toString()}, .write = {}});
  dial(eve, alice);
  ASSERT_TRUE(h.runUntil([&] { return connected(eve, alice); }));
  auto asked = h.await(eve.repo().find(doc.id()), 5s);
  auto missing = h.await(eve.repo().find(DocumentId::random()), 5s);
  ASSERT_FALSE(asked);
  ASSERT_FALSE(missing);
  // The same answer as for a document that does not exist.
  EXPECT_EQ(asked.error().code(), missing.error().code());
  EXPECT_EQ(asked.error().code(), Errc::NotFound);
  h.runFor(100ms);
  EXPECT_FALSE(eve.repo().findLocal(doc.id()));
}

TEST_F(OnlineProvider, PermissionsNamingADocumentGrantThatDocumentOnly) {
  Node alice = node("alice", all());
  const DocHandle listed = created(alice, "listed");
  const DocHandle other = created(alice, "other");
  Node bob = node("bob", Permissions{.read = {}, .write = {listed.id().toString()}});
  dial(bob, alice);
  ASSERT_TRUE(h.runUntil([&] { return connected(bob, alice); }));
  auto found = h.await(bob.repo().find(listed.id()), 5s);
  ASSERT_TRUE(found) << found.error().message();
  ASSERT_TRUE(found->change([](Transaction& tx) { return putString(tx, "v", "bob was here"); }));
  EXPECT_TRUE(h.runUntil([&] { return readString(listed, "v") == "bob was here"; }));
  EXPECT_FALSE(h.await(bob.repo().find(other.id()), 5s));
}

// A hand-made peer: the handshake under the app's network key with `key`, then a hello that
// shows `cert`. Returns the frame `target` answers with, or why there was none.
class RawHello : public OnlineProvider {
 protected:
  Result<Bytes> helloTo(Node& target, const DeviceKey& key, Bytes hello,
                        std::string_view app = kApp) {
    auto& raw = h.add("raw" + std::to_string(++raws));
    std::unique_ptr<Stream> end;
    raw.net->start([&](std::unique_ptr<Stream> s, Side) { end = std::move(s); });
    connect(*raw.net, *target.peer->net, {.dialedAddress = addressOf(target)});
    EXPECT_TRUE(h.runUntil([&] { return end != nullptr; }));
    if (!end) return Error(Errc::Disconnected, "no stream");
    const NetworkKey network = online::networkKeyOf(app);
    const ShsConfig config{.networkKey = network, .identity = key};
    auto shs = h.await(shsClient(*end, config, target.key->publicKey()), 3s);
    if (!shs) return std::move(shs).error();
    auto channel = makeBoxStreamChannel(std::move(end), std::move(*shs));
    auto sent = h.await(channel->send(hello), 3s);
    if (!sent) return std::move(sent).error();
    return h.await(channel->receive(), 3s);
  }
  Result<Bytes> showing(Node& target, const DeviceKey& key, Bytes cert) {
    return helloTo(target, key,
                   online::encodeHello({.body = std::move(cert), .revocations = std::nullopt}));
  }
  // Refused: no answer, a log line, no session.
  void expectRefused(Node& target, Result<Bytes> answer) {
    EXPECT_FALSE(answer);
    EXPECT_FALSE(target.peer->log->refused.empty());
    EXPECT_TRUE(target.repo().peers().empty());
  }
  int raws = 0;
};

TEST_F(RawHello, AGoodCertificateGetsTheNodesOwnCertificateBack) {
  Node alice = node("alice", all());
  DeviceKey key = DeviceKey::generate();
  auto answer = showing(alice, key, certificate(key, all()));
  ASSERT_TRUE(answer) << answer.error().message();
  auto hello = online::decodeHello(*answer);
  ASSERT_TRUE(hello) << hello.error().message();
  const Ed25519Key trusted[] = {service.publicKey().bytes()};
  auto theirs = online::openCertificate(std::get<Bytes>(hello->body), trusted);
  ASSERT_TRUE(theirs) << theirs.error().message();
  EXPECT_EQ(theirs->peerKey, alice.key->publicKey().bytes());
}

TEST_F(RawHello, ACertificateSignedByAnUnknownKeyIsRefused) {
  Node alice = node("alice", all());
  DeviceKey key = DeviceKey::generate(), forger = DeviceKey::generate();
  expectRefused(alice, showing(alice, key, certificate(key, all(), 3600, &forger)));
}

TEST_F(RawHello, AnotherDevicesCertificateUnderADifferentHandshakeKeyIsRefused) {
  Node alice = node("alice", all());
  DeviceKey victim = DeviceKey::generate(), mallory = DeviceKey::generate();
  expectRefused(alice, showing(alice, mallory, certificate(victim, all())));
}

TEST_F(RawHello, ATamperedCertificateIsRefusedWhicheverByteChanged) {
  Node alice = node("alice", all());
  DeviceKey key = DeviceKey::generate();
  const Bytes good = certificate(key, readOnly());
  const Ed25519Key trusted[] = {service.publicKey().bytes()};
  // Every single-bit change fails to open (checked offline for every byte) ...
  for (std::size_t i = 0; i < good.size(); ++i) {
    Bytes bad = good;
    bad[i] ^= 0x01;
    EXPECT_FALSE(online::openCertificate(bad, trusted)) << "byte " << i;
  }
  // ... and one, on the wire, is refused (the write list's place: read-only made writable would
  // be the forger's aim).
  Bytes bad = good;
  bad[bad.size() / 2] ^= 0x01;
  expectRefused(alice, showing(alice, key, bad));
}

TEST_F(RawHello, ACertificateOfAnotherAppIsRefused) {
  Node alice = node("alice", all());
  DeviceKey key = DeviceKey::generate();
  // Under alice's app's network key, with a certificate for another app.
  expectRefused(alice, showing(alice, key, certificate(key, all(), 3600, nullptr, "com.other")));
}

TEST_F(RawHello, APeerOfAnotherAppCannotCompleteTheHandshake) {
  Node alice = node("alice", all());
  DeviceKey key = DeviceKey::generate();
  auto answer = helloTo(alice, key, online::encodeHello({.body = certificate(key, all()),
                                                         .revocations = std::nullopt}),
                        "com.other");
  EXPECT_FALSE(answer);
  EXPECT_TRUE(alice.repo().peers().empty());
}

TEST_F(RawHello, AnExpiredCertificateIsRefused) {
  Node alice = node("alice", all());
  DeviceKey key = DeviceKey::generate();
  expectRefused(alice, showing(alice, key, certificate(key, all(), -1)));
}

TEST_F(RawHello, ATruncatedOrGarbledHelloIsRefused) {
  DeviceKey key = DeviceKey::generate();
  const Bytes hello =
      online::encodeHello({.body = certificate(key, all()), .revocations = std::nullopt});
  for (std::size_t cut : {std::size_t{1}, hello.size() / 2, hello.size() - 8}) {
    Node alice = node("alice" + std::to_string(cut), all());
    expectRefused(alice, helloTo(alice, key, Bytes(hello.begin(), hello.begin() + cut)));
  }
}

TEST_F(RawHello, ALoginToANodeThatIsNoIdentityServiceIsRefused) {
  Node alice = node("alice", all());
  DeviceKey key = DeviceKey::generate();
  auto answer = helloTo(alice, key, online::encodeHello(
                                        {.body = online::Login{.provider = "playground",
                                                               .token = Bytes(20, 'x')},
                                         .revocations = std::nullopt}));
  ASSERT_TRUE(answer) << answer.error().message();
  auto decoded = online::decodeLoginAnswer(*answer);
  ASSERT_TRUE(decoded) << decoded.error().message();
  ASSERT_TRUE(std::holds_alternative<std::string>(decoded->body));
  EXPECT_NE(std::get<std::string>(decoded->body).find("not an identity service"),
            std::string::npos);
  EXPECT_TRUE(alice.repo().peers().empty());
}

TEST_F(OnlineProvider, ALiveSessionEndsWhenThePeersCertificateExpires) {
  Node alice = node("alice", all());
  Node bob = node("bob", all(), [&](online::OnlineOptions& o) {
    o.certificate = certificate(*o.identity, all(), 2);
  });
  dial(bob, alice);
  ASSERT_TRUE(h.runUntil([&] { return connected(alice, bob); }));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(h.runUntil([&] { return !has(alice.repo(), bob.id()); }, 6s));
  // Within a second of the end (the certificate ends 2 s after it was made, a whole second).
  EXPECT_LT(std::chrono::steady_clock::now() - start, scaledBound(3500ms));
  EXPECT_FALSE(alice.peer->log->gone.empty());
}

TEST_F(OnlineProvider, ARevokedDevicesSessionsEndWhenTheListArrives) {
  // The revocation list reaches the server by reload() (after `portcullis online revoke`), goes
  // on to alice, and both end their sessions with the revoked device.
  const std::filesystem::path list = dir.path() / "revocations.bin";
  Node server = node("server", all(), [&](online::OnlineOptions& o) { o.revocationsFile = list; });
  Node alice = node("alice", all());
  std::uint64_t badSerial = 0;
  Node bad = node("bad", all(), [&](online::OnlineOptions& o) {
    badSerial = nextSerial;
    o.certificate = certificate(*o.identity, all());
  });
  dial(alice, server);
  dial(bad, server);
  dial(bad, alice);
  ASSERT_TRUE(h.runUntil([&] {
    return connected(alice, server) && connected(bad, server) && connected(bad, alice);
  }));
  const online::Revocations revocations{.appId = std::string(kApp), .sequence = 1,
                                        .issuedAt = online::unixNow(), .serials = {badSerial}};
  ASSERT_TRUE(online::saveCertificate(list, online::signRevocations(revocations, service)));
  ASSERT_TRUE(server.auth->reload());
  EXPECT_TRUE(h.runUntil([&] {
    return !has(server.repo(), bad.id()) && !has(alice.repo(), bad.id());
  }, 2s));
  EXPECT_TRUE(connected(alice, server));
  // And the revoked device cannot come back.
  dial(bad, alice);
  h.runFor(300ms);
  EXPECT_FALSE(has(alice.repo(), bad.id()));
}

TEST_F(OnlineProvider, ARevocationListNotSignedByTheServiceIsIgnored) {
  Node alice = node("alice", all());
  std::uint64_t bobSerial = 0;
  Node bob = node("bob", all(), [&](online::OnlineOptions& o) {
    bobSerial = nextSerial;
    o.certificate = certificate(*o.identity, all());
  });
  dial(bob, alice);
  ASSERT_TRUE(h.runUntil([&] { return connected(alice, bob); }));
  DeviceKey forger = DeviceKey::generate();
  const online::Revocations forged{.appId = std::string(kApp), .sequence = 9,
                                   .issuedAt = online::unixNow(), .serials = {bobSerial}};
  const Bytes notice = online::encodeNotice({.revocations = online::signRevocations(forged, forger)});
  // The hook takes the identity by reference, as the Repo holds it for the session's life.
  const PeerIdentity fromBob{.peer = bob.id(), .user = {}, .roles = {}, .provider = "online"};
  asio::co_spawn(h.ctx, alice.auth->onProviderMessage(fromBob, notice), asio::detached);
  h.runFor(200ms);
  EXPECT_TRUE(connected(alice, bob));
}

// An identity service node and devices that log in there.
class Login : public OnlineProvider {
 protected:
  void SetUp() override {
    ASSERT_TRUE(service.save((dir.path() / "service.key").string()));
    std::ofstream(dir.path() / "playground.token") << "correct horse battery staple\n";
    // An EdDSA key for JWTs, published as a JWKS file.
    crypto_sign_keypair(jwtPublic.data(), jwtSecret.data());
    std::ofstream(dir.path() / "jwks.json")
        << R"({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":")" << b64(jwtPublic)
        << R"("}]})";
  }

  static std::string b64(ByteView bytes) {
    std::string out(sodium_base64_ENCODED_LEN(bytes.size(),
                                              sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                    '\0');
    sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out.resize(std::strlen(out.c_str()));
    return out;
  }
  static std::string b64(std::string_view text) {
    return b64(ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
  }

  // A JWT signed with the test's EdDSA key.
  std::string jwt(const std::string& payload) {
    const std::string input = b64(std::string_view(R"({"alg":"EdDSA","typ":"JWT","kid":"k1"})")) +
                              "." + b64(std::string_view(payload));
    std::array<std::uint8_t, crypto_sign_BYTES> sig{};
    crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const std::uint8_t*>(input.data()),
                         input.size(), jwtSecret.data());
    return input + "." + b64(sig);
  }

  // The identity service, as a node: its [auth.online] table with a [service] sub-table.
  Node serviceNode() {
    const std::string text = "[auth.online]\napp-id = \"" + std::string(kApp) +
                             "\"\nidentity = \"svc-node.key\"\nservice-keys = [\"" +
                             service.publicKeyHex() +
                             "\"]\n"
                             "[auth.online.service]\nsigning-key = \"service.key\"\n"
                             "lifetime = 600\n"
                             "[auth.online.service.roles.editor]\nwrite = [\"*\"]\n"
                             "[auth.online.service.roles.viewer]\nread = [\"*\"]\n"
                             "[auth.online.service.login.dev]\ntype = \"playground\"\n"
                             "token-file = \"playground.token\"\n"
                             "[auth.online.service.login.corp]\ntype = \"jwt\"\n"
                             "keys = \"jwks.json\"\nissuer = \"https://id.example.com\"\n"
                             "audience = \"notes\"\nroles-claim = \"roles\"\n";
    auto root = parseConfig(text, dir.path() / "service.toml");
    EXPECT_TRUE(root) << root.error().message();
    auto table = root->table("auth");
    auto online = table->table("online");
    ProviderRegistry registry;
    EXPECT_TRUE(online::registerProvider(registry));
    auto provider = (*registry.get("online", {}))->create(*online);
    EXPECT_TRUE(provider) << provider.error().message();
    Node n;
    n.auth = std::move(*provider);
    n.key = std::make_shared<const DeviceKey>(
        *DeviceKey::load((dir.path() / "svc-node.key").string()));
    n.peer = &h.add("service", [&](RepoOptions& r) {
      r.auth = n.auth;
      r.peerId.reset();
      r.findTimeout = 1s;
    });
    return n;
  }

  // A device's login at `svc` over a fresh link.
  Result<online::LoginResult> logIn(Node& svc, std::shared_ptr<const DeviceKey> key,
                                    const std::string& provider, const std::string& token) {
    auto& raw = h.add("device" + std::to_string(++devices));
    std::unique_ptr<Stream> end;
    raw.net->start([&](std::unique_ptr<Stream> s, Side) { end = std::move(s); });
    connect(*raw.net, *svc.peer->net, {.dialedAddress = addressOf(svc)});
    EXPECT_TRUE(h.runUntil([&] { return end != nullptr; }));
    return h.await(online::login(std::move(end), std::string(kApp), std::move(key),
                                 {service.publicKey().bytes()}, provider, token),
                   5s);
  }

  std::array<std::uint8_t, crypto_sign_PUBLICKEYBYTES> jwtPublic{};
  std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> jwtSecret{};
  int devices = 0;
};

TEST_F(Login, APlaygroundLoginGivesACertificateThatThenSyncsWithTheService) {
  Node svc = serviceNode();
  auto key = std::make_shared<const DeviceKey>(DeviceKey::generate());
  auto result = logIn(svc, key, "dev", "correct horse battery staple");
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->parsed.peerKey, key->publicKey().bytes());
  EXPECT_EQ(result->parsed.roles, std::vector<std::string>{"playground"});
  EXPECT_EQ(result->parsed.permissions.write, std::vector<std::string>{"*"});
  EXPECT_LE(result->parsed.expiresAt - result->parsed.issuedAt, 600);  // the service's lifetime
  // The login was not a sync session.
  EXPECT_TRUE(svc.repo().peers().empty());
  // With it the device is a peer of the service.
  Node device = node("alice", {}, [&](online::OnlineOptions& o) {
    o.identity = key;
    o.certificate = result->certificate;
  });
  dial(device, svc);
  ASSERT_TRUE(h.runUntil([&] { return connected(device, svc); }));
  DocHandle doc = created(device, "logged in");
  EXPECT_TRUE(h.runUntil([&] { return svc.repo().findLocal(doc.id()).has_value(); }));
}

TEST_F(Login, AWrongPlaygroundTokenOrAnUnknownProviderIsRefused) {
  Node svc = serviceNode();
  auto key = std::make_shared<const DeviceKey>(DeviceKey::generate());
  auto wrong = logIn(svc, key, "dev", "correct horse battery stapler");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Errc::Denied);
  EXPECT_NE(wrong.error().message().find("did not accept"), std::string::npos);
  EXPECT_EQ(wrong.error().message().find("stapler"), std::string::npos);
  auto unknown = logIn(svc, key, "nope", "correct horse battery staple");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("no login provider named 'nope'"), std::string::npos);
}

TEST_F(Login, AJwtLoginCarriesTheSubjectAndTheRolesPermissions) {
  Node svc = serviceNode();
  auto key = std::make_shared<const DeviceKey>(DeviceKey::generate());
  const std::int64_t exp = online::unixNow() + 300;
  auto result = logIn(svc, key, "corp",
                      jwt(R"({"iss":"https://id.example.com","aud":"notes","sub":"alice",)"
                          R"("roles":["viewer"],"exp":)" + std::to_string(exp) + "}"));
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->parsed.userId, "alice");
  EXPECT_EQ(result->parsed.roles, std::vector<std::string>{"viewer"});
  EXPECT_EQ(result->parsed.permissions.read, std::vector<std::string>{"*"});
  EXPECT_TRUE(result->parsed.permissions.write.empty());
  // The certificate ends no later than the token.
  EXPECT_LE(result->parsed.expiresAt, exp);
}

TEST_F(Login, ABadJwtIsRefused) {
  Node svc = serviceNode();
  auto key = std::make_shared<const DeviceKey>(DeviceKey::generate());
  const std::string claims = R"("sub":"alice","exp":)" + std::to_string(online::unixNow() + 300);
  for (const std::string& token : {
           jwt(R"({"iss":"https://evil.example.com","aud":"notes",)" + claims + "}"),
           jwt(R"({"iss":"https://id.example.com","aud":"other",)" + claims + "}"),
           jwt(R"({"iss":"https://id.example.com","aud":"notes","sub":"alice","exp":1})"),
           jwt(R"({"iss":"https://id.example.com","aud":"notes",)" + claims + "}") + "A",
       }) {
    auto result = logIn(svc, key, "corp", token);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code(), Errc::Denied);
  }
}

TEST_F(Login, ACertificateFromALoginIsCheckedByTheDevice) {
  // A device that trusts another service key refuses what this service issues.
  Node svc = serviceNode();
  auto key = std::make_shared<const DeviceKey>(DeviceKey::generate());
  auto& raw = h.add("device");
  std::unique_ptr<Stream> end;
  raw.net->start([&](std::unique_ptr<Stream> s, Side) { end = std::move(s); });
  connect(*raw.net, *svc.peer->net, {.dialedAddress = addressOf(svc)});
  ASSERT_TRUE(h.runUntil([&] { return end != nullptr; }));
  DeviceKey other = DeviceKey::generate();
  auto result = h.await(online::login(std::move(end), std::string(kApp), key,
                                      {other.publicKey().bytes()}, "dev",
                                      "correct horse battery staple"),
                        5s);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Errc::Denied);
}

TEST_F(OnlineProvider, ConfigErrorsNameFileLineAndKey) {
  ProviderRegistry registry;
  ASSERT_TRUE(online::registerProvider(registry));
  auto create = [&](const std::string& body) -> Result<std::unique_ptr<AuthProvider>> {
    auto root = parseConfig("[auth.online]\n" + body, dir.path() / "node.toml");
    if (!root) return std::move(root).error();
    return (*registry.get("online", {}))->create(*root->table("auth")->table("online"));
  };
  const std::string keys = "service-keys = [\"" + service.publicKeyHex() + "\"]\n";
  auto missingApp = create("identity = \"d.key\"\n" + keys);
  ASSERT_FALSE(missingApp);
  EXPECT_NE(missingApp.error().message().find("app-id"), std::string::npos);
  auto noCert = create("app-id = \"a\"\nidentity = \"d.key\"\n" + keys);
  ASSERT_FALSE(noCert);
  EXPECT_NE(noCert.error().message().find("node.toml"), std::string::npos);
  EXPECT_NE(noCert.error().message().find("certificate"), std::string::npos);
  auto badKey = create("app-id = \"a\"\nidentity = \"d.key\"\nservice-keys = [\"zz\"]\n");
  ASSERT_FALSE(badKey);
  EXPECT_NE(badKey.error().message().find("node.toml:4"), std::string::npos)
      << badKey.error().message();
  auto unknown = create("app-id = \"a\"\nidentity = \"d.key\"\n" + keys + "colour = 1\n");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("colour"), std::string::npos);
  // A certificate for another key than this node's: refused with a hint to log in.
  DeviceKey other = DeviceKey::generate();
  ASSERT_TRUE(online::saveCertificate(dir.path() / "other.cert", certificate(other, all())));
  auto foreign = create("app-id = \"" + std::string(kApp) +
                        "\"\nidentity = \"d.key\"\ncertificate = \"other.cert\"\n" + keys);
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().message().find("portcullis login"), std::string::npos);
}

}  // namespace
}  // namespace portcullis::testing
