// The `shared-key` provider, linked directly (providers/shared_key): Repos that sync through its
// handshake and box-stream over the memory network and TCP, every refusal (network key, server
// key, deny-list on both sides), hostile handshake bytes, the deny-list reload, and the config
// errors, each naming file, line and key.
#include "shared_key.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "../../lib/repo/repo_harness.h"
#include "portcullis/config.h"
#include "portcullis/provider_registry.h"
#include "portcullis/secret_handshake.h"
#include "storage_test_support.h"
#include "tcp_network.h"

namespace portcullis::testing {
namespace {

const std::string kNetworkKey(64, 'a');  // 32 bytes of 0xaa, as hex
const std::string kOtherNetworkKey(64, 'b');
const std::string kMarker = "plaintext-marker-7f3a9c";

Bytes seedOf(int n) { return Bytes(DeviceKey::kSeedSize, static_cast<std::uint8_t>(n)); }
std::string hexOf(int seed) { return DeviceKey::fromSeed(seedOf(seed))->publicKeyHex(); }

void writeFile(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::trunc);
  out << text;
}

std::string quoted(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "\"" : ", \"") + item + "\"";
  return out;
}

// Line 1 [auth], 2 provider, 3 [auth.shared-key], 4 network-key, 5 identity, 6 deny.
std::string configText(const std::string& networkKey, const std::string& identity,
                       const std::vector<std::string>& deny) {
  return "[auth]\nprovider = \"shared-key\"\n[auth.shared-key]\nnetwork-key = \"" + networkKey +
         "\"\nidentity = \"" + identity + "\"\ndeny = [" + quoted(deny) + "]\n";
}

struct Node {
  TestPeer* peer = nullptr;
  std::shared_ptr<AuthProvider> auth;
  std::string hex;
  std::filesystem::path config;
  std::shared_ptr<std::vector<Error>> refused = std::make_shared<std::vector<Error>>();
  std::vector<PeerId>& authenticated() { return peer->log->authenticated; }
  Repo& repo() { return *peer->repo; }
};

class SharedKeyProvider : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(sharedkey::registerProvider(registry)); }

  // The key file of device `seed` (saved once, mode 0600), relative to the config folder.
  std::string keyFile(int seed) {
    const std::string name = "device-" + std::to_string(seed) + ".key";
    if (!std::filesystem::exists(dir.path() / name)) {
      auto key = DeviceKey::fromSeed(seedOf(seed));
      EXPECT_TRUE(key->save((dir.path() / name).string()));
    }
    return name;
  }

  Result<std::unique_ptr<AuthProvider>> providerFrom(const std::filesystem::path& file) {
    auto root = loadConfigFile(file);
    if (!root) return std::move(root).error();
    return registry.createFromConfig(*root, {});
  }

  // A Repo named `name` (its memory adapter's name) on device `seed`; on `network` instead of
  // the memory network if given.
  Node node(const std::string& name, int seed, const std::vector<std::string>& deny = {},
            const std::string& networkKey = kNetworkKey,
            std::chrono::milliseconds handshakeTimeout = 10s,
            std::shared_ptr<NetworkAdapter> network = nullptr) {
    Node n;
    n.hex = hexOf(seed);
    n.config = dir.path() / (name + ".toml");
    writeFile(n.config, configText(networkKey, keyFile(seed), deny));
    auto provider = providerFrom(n.config);
    EXPECT_TRUE(provider) << provider.error().message();
    n.auth = std::shared_ptr<AuthProvider>(std::move(*provider));
    auto refused = n.refused;
    n.peer = &h.add(name, [&](RepoOptions& o) {
      o.auth = n.auth;
      if (network) o.network = {network};
      o.peerId.reset();  // from the provider: the device key
      o.handshakeTimeout = handshakeTimeout;
      o.events.peerRefused = [refused](const std::string&, const Error& e) {
        refused->push_back(e);
      };
    });
    return n;
  }

  // `from` dials `to` over a recorded memory link whose address carries `serverHex`.
  std::shared_ptr<MemoryLink> dial(Node& from, Node& to, const std::string& serverHex) {
    return connect(*from.peer->net, *to.peer->net,
                   {.dialedAddress = "net:" + to.peer->name + ":1~shs:" + serverHex});
  }
  std::shared_ptr<MemoryLink> dial(Node& from, Node& to) { return dial(from, to, to.hex); }

  bool connected(Node& a, Node& b) {
    auto has = [](Repo& r, const std::string& hex) {
      auto peers = r.peers();
      return std::find(peers.begin(), peers.end(), *PeerId::parse(hex)) != peers.end();
    };
    return has(a.repo(), b.hex) && has(b.repo(), a.hex);
  }

  // Whether a document written on `from` arrives on `to` within the limit.
  bool syncs(Node& from, Node& to, const std::string& value) {
    DocHandle doc = from.repo().create();
    EXPECT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "v", value); }));
    return h.runUntil([&] {
      auto there = to.repo().findLocal(doc.id());
      return there && readString(*there, "v") == value;
    }, 3s);
  }

  test::TempDir dir;
  RepoHarness h;
  ProviderRegistry registry;
};

TEST_F(SharedKeyProvider, TheLocalPeerIsTheDevicePublicKeyInHex) {
  Node a = node("a", 1);
  EXPECT_EQ(a.auth->name(), "shared-key");
  EXPECT_EQ(a.auth->localPeer(), PeerId::parse(hexOf(1)).value());
  EXPECT_EQ(a.repo().peerId().str(), hexOf(1));
  EXPECT_EQ(hexOf(1).size(), 64u);
}

TEST_F(SharedKeyProvider, TwoReposSyncADocumentBothWaysAndKnowEachOthersDeviceKey) {
  Node a = node("a", 1), b = node("b", 2);
  auto link = dial(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b); }));
  EXPECT_EQ(a.authenticated(), std::vector<PeerId>{*PeerId::parse(b.hex)});
  EXPECT_EQ(b.authenticated(), std::vector<PeerId>{*PeerId::parse(a.hex)});
  EXPECT_TRUE(syncs(a, b, "from a"));
  EXPECT_TRUE(syncs(b, a, "from b"));
}

TEST_F(SharedKeyProvider, FramesOnTheWireAreEncrypted) {
  Node a = node("a", 1), b = node("b", 2);
  auto link = dial(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b); }));
  ASSERT_TRUE(syncs(a, b, kMarker + " a->b"));
  ASSERT_TRUE(syncs(b, a, kMarker + " b->a"));
  const ByteView marker(reinterpret_cast<const std::uint8_t*>(kMarker.data()), kMarker.size());
  ASSERT_GT(link->bytesFromDialer().size(), 1000u);
  ASSERT_GT(link->bytesFromAcceptor().size(), 1000u);
  EXPECT_FALSE(containsBytes(link->bytesFromDialer(), marker));
  EXPECT_FALSE(containsBytes(link->bytesFromAcceptor(), marker));
  // The PeerIds in the hello frames are not in clear either.
  const ByteView aHex(reinterpret_cast<const std::uint8_t*>(a.hex.data()), a.hex.size());
  EXPECT_FALSE(containsBytes(link->bytesFromDialer(), aHex));
}

TEST_F(SharedKeyProvider, TwoReposSyncOverTcpWithAMultiserverAddress) {
  auto server = *TcpNetworkAdapter::create(h.ctx.get_executor(), {.listen = {"127.0.0.1:0"}});
  const std::string ssbId = PublicKey::parse(hexOf(2))->toSsbId();
  const std::string address = "net:127.0.0.1:" +
                              std::to_string(server->listeningOn().at(0).port()) + "~shs:" +
                              ssbId.substr(1, ssbId.size() - 9);  // SSB base64, as written
  auto client = *TcpNetworkAdapter::create(h.ctx.get_executor(), {.connect = {address}});
  Node b = node("b", 2, {}, kNetworkKey, 10s, server);
  Node a = node("a", 1, {}, kNetworkKey, 10s, client);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b); }, 5s));
  EXPECT_TRUE(syncs(a, b, "over tcp"));
  EXPECT_TRUE(syncs(b, a, "and back"));
}

TEST_F(SharedKeyProvider, AnotherNetworkKeyIsRefusedWhicheverSideDials) {
  Node a = node("a", 1), b = node("b", 2, {}, kOtherNetworkKey);
  auto there = dial(a, b);
  auto back = dial(b, a);
  ASSERT_TRUE(h.runUntil([&] { return a.refused->size() == 2 && b.refused->size() == 2; }));
  h.runFor(100ms);
  EXPECT_TRUE(a.repo().peers().empty());
  EXPECT_TRUE(b.repo().peers().empty());
  EXPECT_TRUE(a.authenticated().empty());
  EXPECT_TRUE(b.authenticated().empty());
  // An acceptor that hears another network hangs up without a byte.
  EXPECT_TRUE(there->bytesFromAcceptor().empty());
  EXPECT_TRUE(back->bytesFromAcceptor().empty());
}

TEST_F(SharedKeyProvider, ADialerThatExpectsAnotherServerKeyIsRefused) {
  Node a = node("a", 1), b = node("b", 2);
  auto link = dial(a, b, hexOf(3));
  ASSERT_TRUE(h.runUntil([&] { return !a.refused->empty() && !b.refused->empty(); }));
  EXPECT_TRUE(a.repo().peers().empty());
  EXPECT_TRUE(b.repo().peers().empty());
  // The server could not open message 3, so it sent no message 4.
  EXPECT_EQ(link->bytesFromAcceptor().size(), kShsHelloBytes);
}

TEST_F(SharedKeyProvider, ADialAddressWithoutAServerKeyIsRefusedBeforeAnyByte) {
  Node a = node("a", 1), b = node("b", 2);
  auto link = connect(*a.peer->net, *b.peer->net, {.dialedAddress = "b:7420"});
  ASSERT_TRUE(h.runUntil([&] { return !a.refused->empty(); }));
  EXPECT_EQ(a.refused->at(0).code(), Errc::Config);
  EXPECT_NE(a.refused->at(0).message().find("net:HOST:PORT~shs:KEY"), std::string::npos)
      << a.refused->at(0).message();
  EXPECT_TRUE(link->bytesFromDialer().empty());
  EXPECT_TRUE(a.repo().peers().empty());
}

TEST_F(SharedKeyProvider, ADeniedDeviceThatDialsInIsRefused) {
  Node a = node("a", 1), b = node("b", 2, {hexOf(1)});
  auto link = dial(a, b);
  ASSERT_TRUE(h.runUntil([&] { return !a.refused->empty() && !b.refused->empty(); }));
  EXPECT_EQ(b.refused->at(0).code(), Errc::Denied);
  EXPECT_NE(b.refused->at(0).message().find(hexOf(1)), std::string::npos);
  // Refused after proving who it is, before message 4.
  EXPECT_EQ(link->bytesFromAcceptor().size(), kShsHelloBytes);
  EXPECT_TRUE(a.repo().peers().empty());
  EXPECT_TRUE(b.repo().peers().empty());
}

TEST_F(SharedKeyProvider, ADeniedDeviceIsNotDialedAndAnSsbFormDenyEntryCounts) {
  // The deny entry in Scuttlebutt's "@<base64>.ed25519" form.
  Node a = node("a", 1, {PublicKey::parse(hexOf(2))->toSsbId()}), b = node("b", 2);
  auto link = dial(a, b);
  ASSERT_TRUE(h.runUntil([&] { return !a.refused->empty(); }));
  EXPECT_EQ(a.refused->at(0).code(), Errc::Denied);
  EXPECT_TRUE(link->bytesFromDialer().empty());
  h.runFor(50ms);
  EXPECT_TRUE(a.repo().peers().empty());
  EXPECT_TRUE(b.repo().peers().empty());
}

TEST_F(SharedKeyProvider, AReloadThatDeniesADeviceEndsItsLiveSessionAtOnce) {
  Node a = node("a", 1), b = node("b", 2), c = node("c", 3);
  auto ab = dial(a, b);
  auto cb = dial(c, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b) && connected(c, b); }));
  writeFile(b.config, configText(kNetworkKey, keyFile(2), {hexOf(1)}));
  auto reloaded = b.auth->reload();
  ASSERT_TRUE(reloaded) << reloaded.error().message();
  // At once: before the event loop runs again.
  EXPECT_EQ(b.repo().peers(), std::vector<PeerId>{*PeerId::parse(c.hex)});
  ASSERT_TRUE(h.runUntil([&] { return a.repo().peers().empty(); }));
  EXPECT_TRUE(connected(c, b));
  EXPECT_TRUE(syncs(c, b, "c is still welcome"));
  // And it cannot come back.
  auto again = dial(a, b);
  ASSERT_TRUE(h.runUntil([&] { return !b.refused->empty(); }));
  EXPECT_EQ(b.refused->back().code(), Errc::Denied);
  EXPECT_FALSE(connected(a, b));
}

TEST_F(SharedKeyProvider, AReloadEndsASessionWhoseHelloIsStillInFlight) {
  Node a = node("a", 1), b = node("b", 2);
  auto link = dial(a, b);
  // Run until b's handshake is done but before the hellos have crossed: delay the link.
  link->setDelay(200ms);
  ASSERT_TRUE(h.runUntil([&] { return link->bytesFromAcceptor().size() > 64 + 80; }));
  EXPECT_TRUE(b.repo().peers().empty());
  writeFile(b.config, configText(kNetworkKey, keyFile(2), {hexOf(1)}));
  ASSERT_TRUE(b.auth->reload());
  ASSERT_TRUE(h.runUntil([&] { return !b.refused->empty(); }));
  h.runFor(1000ms);  // long past the arrival of a's hello
  EXPECT_TRUE(b.repo().peers().empty());
  EXPECT_TRUE(b.authenticated().empty());
}

TEST_F(SharedKeyProvider, AReloadWithABadEntryOrABadFileKeepsTheOldList) {
  Node a = node("a", 1), b = node("b", 2, {hexOf(3)}), c = node("c", 3);
  auto ab = dial(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b); }));

  writeFile(b.config, configText(kNetworkKey, keyFile(2), {hexOf(1), "not-a-key"}));
  auto bad = b.auth->reload();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::Config);
  EXPECT_EQ(bad.error().message().rfind(b.config.string() + ":6: auth.shared-key.deny: entry 2: ",
                                        0), 0u)
      << bad.error().message();

  writeFile(b.config, "[auth\nprovider = ");
  auto broken = b.auth->reload();
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().message().rfind(b.config.string() + ":", 0), 0u)
      << broken.error().message();

  writeFile(b.config, configText(kNetworkKey, keyFile(2), {hexOf(1)}) + "denny = []\n");
  auto typo = b.auth->reload();
  ASSERT_FALSE(typo);
  EXPECT_EQ(typo.error().message().rfind(b.config.string() + ":7: auth.shared-key.denny: ", 0), 0u)
      << typo.error().message();

  // a, allowed by the old list, lives on and syncs; c, denied by it, is still refused.
  h.runFor(100ms);
  EXPECT_TRUE(connected(a, b));
  EXPECT_TRUE(syncs(a, b, "still here"));
  auto cb = dial(c, b);
  ASSERT_TRUE(h.runUntil([&] { return !b.refused->empty(); }));
  EXPECT_EQ(b.refused->back().code(), Errc::Denied);
  EXPECT_FALSE(connected(c, b));
}

TEST_F(SharedKeyProvider, AReloadThatAllowsADeviceAgainLetsItIn) {
  Node a = node("a", 1), b = node("b", 2, {hexOf(1)});
  auto first = dial(a, b);
  ASSERT_TRUE(h.runUntil([&] { return !b.refused->empty(); }));
  writeFile(b.config, configText(kNetworkKey, keyFile(2), {}));
  ASSERT_TRUE(b.auth->reload());
  auto second = dial(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b); }));
}

// A hand-driven client on a raw memory stream to `target`, for hostile bytes.
struct RawClient {
  RawClient(RepoHarness& h, TestPeer& target, const std::string& name) : raw(h, name) {
    raw.dial(target);
  }
  asio::awaitable<Result<Bytes>> read(std::size_t n) {
    Bytes out(n);
    auto got = co_await readExactly(*raw.stream, out);
    if (!got) co_return got.error();
    co_return out;
  }
  RawPeer raw;
};

TEST_F(SharedKeyProvider, TruncatedOrBitFlippedHandshakeBytesAreRefusedWithinTheDeadline) {
  const auto seed = static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
  const std::string replay = "seed " + std::to_string(seed) + " (replay: --gtest_random_seed=" +
                             std::to_string(seed) + ")";
  std::printf("%s\n", replay.c_str());
  SCOPED_TRACE(replay);
  std::mt19937 random(seed);
  Node b = node("b", 2, {}, kNetworkKey, 300ms);
  auto network = NetworkKey::parse(kNetworkKey);
  auto aKey = DeviceKey::fromSeed(seedOf(1));
  const PublicKey bKey = *PublicKey::parse(b.hex);

  // Every way to stop short or corrupt the client's messages.
  enum class Cut { Msg1Truncated, Msg1Flipped, Msg3Truncated, Msg3Flipped };
  for (Cut cut : {Cut::Msg1Truncated, Cut::Msg1Flipped, Cut::Msg3Truncated, Cut::Msg3Flipped}) {
    SCOPED_TRACE("case " + std::to_string(static_cast<int>(cut)));
    const std::size_t refusedBefore = b.refused->size();
    RawClient client(h, *b.peer, "raw" + std::to_string(static_cast<int>(cut)));
    ShsClient shs(*network, *aKey, bKey);
    auto msg1 = shs.hello();
    Bytes first(msg1.begin(), msg1.end());
    if (cut == Cut::Msg1Truncated) first.resize(random() % kShsHelloBytes);
    if (cut == Cut::Msg1Flipped) first[random() % first.size()] ^= 1u << (random() % 8);
    if (!first.empty()) {
      ASSERT_TRUE(h.await(client.raw.writeRaw(first)));
    }
    if (cut == Cut::Msg3Truncated || cut == Cut::Msg3Flipped) {
      auto msg2 = h.await(client.read(kShsHelloBytes));
      ASSERT_TRUE(msg2) << msg2.error().message();
      ASSERT_TRUE(shs.verifyServerHello(*msg2));
      auto msg3 = shs.authenticate();
      Bytes third(msg3.begin(), msg3.end());
      if (cut == Cut::Msg3Truncated) third.resize(random() % kShsAuthenticateBytes);
      if (cut == Cut::Msg3Flipped) third[random() % third.size()] ^= 1u << (random() % 8);
      if (!third.empty()) {
        ASSERT_TRUE(h.await(client.raw.writeRaw(third)));
      }
    }
    // Refused: at once for bad bytes, at the 300 ms deadline for missing ones; never a message 4.
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(h.runUntil([&] { return b.refused->size() > refusedBefore; }, 2s));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
    EXPECT_LE(client.raw.link->bytesFromAcceptor().size(), kShsHelloBytes);
    EXPECT_FALSE(h.await(client.read(1)));  // the server hung up
    EXPECT_TRUE(b.repo().peers().empty());
  }
}

TEST_F(SharedKeyProvider, AReplayedClientHandshakeIsRefused) {
  Node a = node("a", 1), b = node("b", 2);
  auto recorded = dial(a, b);
  ASSERT_TRUE(h.runUntil([&] { return connected(a, b); }));
  const Bytes& wire = recorded->bytesFromDialer();
  ASSERT_GE(wire.size(), kShsHelloBytes + kShsAuthenticateBytes);
  const Bytes msg1(wire.begin(), wire.begin() + kShsHelloBytes);
  const Bytes msg3(wire.begin() + kShsHelloBytes,
                   wire.begin() + kShsHelloBytes + kShsAuthenticateBytes);

  const std::size_t refusedBefore = b.refused->size();
  RawClient replay(h, *b.peer, "replay");
  ASSERT_TRUE(h.await(replay.raw.writeRaw(msg1)));
  ASSERT_TRUE(h.await(replay.read(kShsHelloBytes)));  // a fresh server hello
  ASSERT_TRUE(h.await(replay.raw.writeRaw(msg3)));
  ASSERT_TRUE(h.runUntil([&] { return b.refused->size() > refusedBefore; }));
  EXPECT_EQ(b.refused->back().code(), Errc::Denied);
  EXPECT_EQ(replay.raw.link->bytesFromAcceptor().size(), kShsHelloBytes);  // no message 4
  EXPECT_EQ(b.repo().peers(), std::vector<PeerId>{*PeerId::parse(a.hex)});
}

// Config errors ----------------------------------------------------------------------------------

class SharedKeyConfig : public SharedKeyProvider {
 protected:
  // The error of a provider made from `text`, which must name `file:line: auth.shared-key.key: `.
  void expectError(const std::string& text, int line, const std::string& key,
                   const std::string& detail = "") {
    const auto file = dir.path() / "node.toml";
    writeFile(file, text);
    auto provider = providerFrom(file);
    ASSERT_FALSE(provider) << text;
    EXPECT_EQ(provider.error().code(), Errc::Config);
    const std::string prefix =
        file.string() + ":" + std::to_string(line) + ": auth.shared-key." + key + ": ";
    EXPECT_EQ(provider.error().message().rfind(prefix, 0), 0u) << provider.error().message();
    EXPECT_NE(provider.error().message().find(detail), std::string::npos)
        << provider.error().message();
    // The network key never appears in a message.
    EXPECT_EQ(provider.error().message().find(kNetworkKey.substr(0, 16)), std::string::npos);
  }
};

TEST_F(SharedKeyConfig, AMissingNetworkKeyNamesTheTable) {
  expectError("[auth]\nprovider = \"shared-key\"\n[auth.shared-key]\nidentity = \"" +
                  keyFile(1) + "\"\n",
              3, "network-key", "missing (required)");
}

TEST_F(SharedKeyConfig, ANetworkKeyThatIsNotHexOrBase64IsRefused) {
  expectError(configText(kNetworkKey.substr(2) + "zz", keyFile(1), {}), 4, "network-key",
              "64 hex digits");
  expectError(configText(kNetworkKey.substr(2), keyFile(1), {}), 4, "network-key");
}

TEST_F(SharedKeyConfig, AnUnknownKeyIsRefused) {
  expectError(configText(kNetworkKey, keyFile(1), {}) + "allow = []\n", 7, "allow",
              "unknown key (expected one of: network-key, identity, deny)");
}

TEST_F(SharedKeyConfig, AMissingIdentityKeyOrFileIsRefused) {
  expectError("[auth]\nprovider = \"shared-key\"\n[auth.shared-key]\nnetwork-key = \"" +
                  kNetworkKey + "\"\n",
              3, "identity", "missing (required)");
  expectError(configText(kNetworkKey, "nowhere.key", {}), 5, "identity",
              (dir.path() / "nowhere.key").string());
}

TEST_F(SharedKeyConfig, AnIdentityFileOthersCanReadIsRefused) {
  const std::string name = keyFile(1);
  ASSERT_EQ(::chmod((dir.path() / name).c_str(), 0644), 0);
  expectError(configText(kNetworkKey, name, {}), 5, "identity", name);
}

TEST_F(SharedKeyConfig, ADenyEntryThatIsNotAKeyOrNotAListIsRefused) {
  expectError(configText(kNetworkKey, keyFile(1), {hexOf(2), hexOf(3).substr(1)}), 6, "deny",
              "entry 2: ");
  expectError("[auth]\nprovider = \"shared-key\"\n[auth.shared-key]\nnetwork-key = \"" +
                  kNetworkKey + "\"\nidentity = \"" + keyFile(1) + "\"\ndeny = \"" + hexOf(2) +
                  "\"\n",
              6, "deny", "expected an array of strings");
}

TEST_F(SharedKeyConfig, AProviderMadeWithoutAFileHasNothingToReload) {
  auto root = parseConfig(configText(kNetworkKey, (dir.path() / keyFile(1)).string(), {}), "");
  ASSERT_TRUE(root) << root.error().message();
  auto provider = registry.createFromConfig(*root, {});
  ASSERT_TRUE(provider) << provider.error().message();
  auto reloaded = (*provider)->reload();
  ASSERT_FALSE(reloaded);
  EXPECT_EQ(reloaded.error().code(), Errc::Config);
}

}  // namespace
}  // namespace portcullis::testing
