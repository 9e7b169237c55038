// The secret handshake, box-stream and the device key (portcullis/secret_handshake.h): every value
// of tests/data/shs1-vectors.json (made by the JS reference) as a
// known answer, every way a hostile peer can bend the four messages and the box-stream packets,
// and the channel's frames over the memory network.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "../net/channel_test_support.h"
#include "storage_test_support.h"
#include "memory_network.h"
#include "portcullis/asio.h"
#include "portcullis/secret_handshake.h"

namespace portcullis {
namespace {

using namespace std::chrono_literals;
using namespace portcullis::testing;
using nlohmann::json;

const json& vectors() {
  static const json v = [] {
    std::ifstream in(SHS1_VECTORS_PATH);
    if (!in) throw std::runtime_error("cannot open " SHS1_VECTORS_PATH);
    return json::parse(in);
  }();
  return v;
}

Bytes hex(const std::string& text) {
  Bytes out(text.size() / 2);
  std::size_t n = 0;
  if (sodium_hex2bin(out.data(), out.size(), text.data(), text.size(), nullptr, &n, nullptr) != 0 ||
      n != out.size()) {
    throw std::runtime_error("bad hex in the vectors");
  }
  return out;
}
Bytes hexAt(const json& node, const char* key) { return hex(node.at(key).get<std::string>()); }
Bytes bytesOf(ByteView v) { return Bytes(v.begin(), v.end()); }
template <std::size_t N>
Bytes bytesOf(const SecretKey<N>& k) {
  return Bytes(k.data(), k.data() + N);
}

// The vectors' keys, ready for a handshake.
struct VectorKeys {
  NetworkKey network = *NetworkKey::fromBytes(hexAt(vectors(), "network_key"));
  DeviceKey client = *DeviceKey::fromSeed(hexAt(vectors()["client_longterm"], "seed"));
  DeviceKey server = *DeviceKey::fromSeed(hexAt(vectors()["server_longterm"], "seed"));
  EphemeralKey clientEphemeral() const {
    return *EphemeralKey::fromSecret(hexAt(vectors()["client_ephemeral"], "curve_sk"));
  }
  EphemeralKey serverEphemeral() const {
    return *EphemeralKey::fromSecret(hexAt(vectors()["server_ephemeral"], "curve_sk"));
  }
  ShsClient newClient() const {
    return ShsClient(network, client, server.publicKey(), clientEphemeral());
  }
  ShsServer newServer() const { return ShsServer(network, server, serverEphemeral()); }
};

Bytes sha256(ByteView a, ByteView b = {}) {
  Bytes out(crypto_hash_sha256_BYTES);
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, a.data(), a.size());
  crypto_hash_sha256_update(&st, b.data(), b.size());
  crypto_hash_sha256_final(&st, out.data());
  return out;
}

// Handshakes ----------------------------------------------------------------------------------

TEST(SecretHandshake, LongTermAndEphemeralKeysMatchTheVectors) {
  VectorKeys k;
  EXPECT_EQ(bytesOf(k.client.publicKey().bytes()), hexAt(vectors()["client_longterm"], "pk"));
  EXPECT_EQ(bytesOf(k.client.secretKey()), hexAt(vectors()["client_longterm"], "sk"));
  EXPECT_EQ(bytesOf(k.server.publicKey().bytes()), hexAt(vectors()["server_longterm"], "pk"));
  EXPECT_EQ(bytesOf(k.server.secretKey()), hexAt(vectors()["server_longterm"], "sk"));
  EXPECT_EQ(bytesOf(k.clientEphemeral().publicKey()),
            hexAt(vectors()["client_ephemeral"], "curve_pk"));
  EXPECT_EQ(bytesOf(k.serverEphemeral().publicKey()),
            hexAt(vectors()["server_ephemeral"], "curve_pk"));
  // The reference derives its ephemeral keys from an Ed25519 seed; the Curve25519 halves are what
  // the wire sees.
  for (const char* side : {"client_ephemeral", "server_ephemeral"}) {
    unsigned char pk[32], sk[64], curveSk[32];
    crypto_sign_seed_keypair(pk, sk, hexAt(vectors()[side], "ed25519_seed").data());
    crypto_sign_ed25519_sk_to_curve25519(curveSk, sk);
    EXPECT_EQ(Bytes(curveSk, curveSk + 32), hexAt(vectors()[side], "curve_sk")) << side;
  }
}

// precompute() is optional on both sides: the same messages and sessions either way.
class HandshakeVectors : public ::testing::TestWithParam<bool> {};

TEST_P(HandshakeVectors, BothSidesProduceEveryMessageAndSessionKey) {
  const bool precompute = GetParam();
  VectorKeys k;
  const json& v = vectors();
  ShsClient client = k.newClient();
  ShsServer server = k.newServer();

  const auto msg1 = client.hello();
  EXPECT_EQ(bytesOf(msg1), hexAt(v, "msg1_client_hello"));
  ASSERT_TRUE(server.verifyClientHello(msg1));
  const auto msg2 = server.hello();
  EXPECT_EQ(bytesOf(msg2), hexAt(v, "msg2_server_hello"));
  if (precompute) {
    ASSERT_TRUE(server.precompute());
  }
  ASSERT_TRUE(client.verifyServerHello(msg2));
  const auto msg3 = client.authenticate();
  EXPECT_EQ(bytesOf(msg3), hexAt(v, "msg3_client_auth"));
  if (precompute) client.precompute();
  auto clientKey = server.verifyAuthenticate(msg3);
  ASSERT_TRUE(clientKey) << clientKey.error().message();
  EXPECT_EQ(*clientKey, k.client.publicKey());
  auto accepted = server.accept();
  EXPECT_EQ(bytesOf(accepted.message), hexAt(v, "msg4_server_accept"));
  auto clientSession = client.verifyAccept(accepted.message);
  ASSERT_TRUE(clientSession) << clientSession.error().message();

  const json& c2s = v["client_to_server"];
  const json& s2c = v["server_to_client"];
  EXPECT_EQ(bytesOf(clientSession->encryptKey), hexAt(c2s, "key"));
  EXPECT_EQ(bytesOf(clientSession->encryptNonce), hexAt(c2s, "start_nonce"));
  EXPECT_EQ(bytesOf(clientSession->decryptKey), hexAt(s2c, "key"));
  EXPECT_EQ(bytesOf(clientSession->decryptNonce), hexAt(s2c, "start_nonce"));
  EXPECT_EQ(clientSession->remotePublicKey, k.server.publicKey());
  const ShsSession& serverSession = accepted.session;
  EXPECT_EQ(bytesOf(serverSession.encryptKey), hexAt(s2c, "key"));
  EXPECT_EQ(bytesOf(serverSession.encryptNonce), hexAt(s2c, "start_nonce"));
  EXPECT_EQ(bytesOf(serverSession.decryptKey), hexAt(c2s, "key"));
  EXPECT_EQ(bytesOf(serverSession.decryptNonce), hexAt(c2s, "start_nonce"));
  EXPECT_EQ(serverSession.remotePublicKey, k.client.publicKey());
}

INSTANTIATE_TEST_SUITE_P(SecretHandshake, HandshakeVectors, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "Precomputed" : "Lazily";
                         });

// The intermediate values stay inside the state machines; the messages above prove they were
// derived right, and this checks each of them against the vectors' own inputs with libsodium.
TEST(SecretHandshake, TheIntermediateValuesOfTheVectorsFollowTheSpec) {
  const json& v = vectors();
  const Bytes n = hexAt(v, "network_key");
  const Bytes a = hexAt(v["client_ephemeral"], "curve_sk");
  const Bytes bPk = hexAt(v["server_ephemeral"], "curve_pk");
  const Bytes serverPk = hexAt(v["server_longterm"], "pk");
  const Bytes clientSk = hexAt(v["client_longterm"], "sk");
  Bytes ab(32), aB(32), Ab(32), curve(32), clientCurveSk(32);
  ASSERT_EQ(crypto_scalarmult(ab.data(), a.data(), bPk.data()), 0);
  ASSERT_EQ(crypto_sign_ed25519_pk_to_curve25519(curve.data(), serverPk.data()), 0);
  ASSERT_EQ(crypto_scalarmult(aB.data(), a.data(), curve.data()), 0);
  crypto_sign_ed25519_sk_to_curve25519(clientCurveSk.data(), clientSk.data());
  ASSERT_EQ(crypto_scalarmult(Ab.data(), clientCurveSk.data(), bPk.data()), 0);
  EXPECT_EQ(ab, hexAt(v, "shared_ab"));
  EXPECT_EQ(aB, hexAt(v, "shared_aB"));
  EXPECT_EQ(Ab, hexAt(v, "shared_Ab"));
  EXPECT_EQ(sha256(ab), hexAt(v, "sha256_ab"));

  Bytes nAbAB = n;
  nAbAB.insert(nAbAB.end(), ab.begin(), ab.end());
  nAbAB.insert(nAbAB.end(), aB.begin(), aB.end());
  EXPECT_EQ(sha256(nAbAB), hexAt(v, "msg3_key"));
  EXPECT_EQ(sha256(nAbAB, Ab), hexAt(v, "msg4_key"));
  EXPECT_EQ(sha256(hexAt(v, "msg4_key")), hexAt(v, "session_secret"));

  const std::uint8_t zero[24] = {};
  Bytes plain3(96), sigB(64);
  const Bytes msg3 = hexAt(v, "msg3_client_auth");
  ASSERT_EQ(crypto_secretbox_open_easy(plain3.data(), msg3.data(), msg3.size(), zero,
                                       hexAt(v, "msg3_key").data()),
            0);
  EXPECT_EQ(Bytes(plain3.begin(), plain3.begin() + 64), hexAt(v, "client_signature_A"));
  const Bytes msg4 = hexAt(v, "msg4_server_accept");
  ASSERT_EQ(crypto_secretbox_open_easy(sigB.data(), msg4.data(), msg4.size(), zero,
                                       hexAt(v, "msg4_key").data()),
            0);
  EXPECT_EQ(sigB, hexAt(v, "server_signature_B"));
  const Bytes s = hexAt(v, "session_secret");
  EXPECT_EQ(sha256(s, serverPk), hexAt(v["client_to_server"], "key"));
  EXPECT_EQ(sha256(s, hexAt(v["client_longterm"], "pk")), hexAt(v["server_to_client"], "key"));
}

TEST(SecretHandshake, AServerWithAnotherNetworkKeyRefusesTheClientHello) {
  VectorKeys k;
  NetworkKey other = *NetworkKey::fromBytes(Bytes(32, 0x42));
  ShsClient client = k.newClient();
  ShsServer server(other, k.server);
  auto verified = server.verifyClientHello(client.hello());
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code(), Errc::Denied);

  // And the client refuses the hello of a server on another network.
  ShsServer otherServer(other, k.server);
  ShsClient client2(other, k.client, k.server.publicKey());
  ASSERT_TRUE(otherServer.verifyClientHello(client2.hello()));
  ShsClient client3 = k.newClient();
  auto refused = client3.verifyServerHello(otherServer.hello());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::Denied);
}

TEST(SecretHandshake, AClientThatDialsTheWrongServerKeyIsDenied) {
  VectorKeys k;
  DeviceKey impostor = DeviceKey::generate();
  // The client believes it talks to `impostor`; the server holds k.server.
  ShsClient client(k.network, k.client, impostor.publicKey());
  ShsServer server(k.network, k.server);
  ASSERT_TRUE(server.verifyClientHello(client.hello()));
  ASSERT_TRUE(client.verifyServerHello(server.hello()));
  auto verified = server.verifyAuthenticate(client.authenticate());
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code(), Errc::Denied);

  // A server that holds the key the client dialed but pretends to be another fails message 4.
  ShsClient client2(k.network, k.client, k.server.publicKey());
  ShsServer server2(k.network, k.server);
  ASSERT_TRUE(server2.verifyClientHello(client2.hello()));
  ASSERT_TRUE(client2.verifyServerHello(server2.hello()));
  ASSERT_TRUE(server2.verifyAuthenticate(client2.authenticate()));
  auto accept = server2.accept();
  ShsClient client3(k.network, k.client, impostor.publicKey());
  ShsServer server3(k.network, impostor);
  ASSERT_TRUE(server3.verifyClientHello(client3.hello()));
  ASSERT_TRUE(client3.verifyServerHello(server3.hello()));
  (void)client3.authenticate();
  auto refused = client3.verifyAccept(accept.message);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::Denied);
}

// Every point of small order on Curve25519 (libsodium's list: 0, 1, the two points of order 8,
// and p-1, p, p+1), plus 0 and 1 with the top bit set, which X25519 ignores: the shared secret
// with any of them is all zero.
std::vector<Bytes> lowOrderPoints() {
  return {
      hex("0000000000000000000000000000000000000000000000000000000000000000"),
      hex("0100000000000000000000000000000000000000000000000000000000000000"),
      hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
      hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
      hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
      hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
      hex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
      hex("0000000000000000000000000000000000000000000000000000000000000080"),
      hex("0100000000000000000000000000000000000000000000000000000000000080"),
  };
}

// A hello that carries `point` with a valid tag: only a peer that knows the network key can send
// it, and it must still be refused.
Bytes taggedHello(const NetworkKey& network, const Bytes& point) {
  Bytes msg(64);
  crypto_auth(msg.data(), point.data(), point.size(), network.key().data());
  std::copy(point.begin(), point.end(), msg.begin() + 32);
  return msg;
}

TEST(SecretHandshake, ALowOrderEphemeralKeyIsRefusedOnBothSides) {
  VectorKeys k;
  for (const Bytes& point : lowOrderPoints()) {
    SCOPED_TRACE(toHex(point));
    // The server checks only the tag before it answers; the key agreement after its hello
    // refuses the point, whether precomputed or done when message 3 arrives.
    ShsServer server = k.newServer();
    ASSERT_TRUE(server.verifyClientHello(taggedHello(k.network, point)));
    auto refused = server.precompute();
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code(), Errc::Malformed);
    ShsServer lazy = k.newServer();
    ASSERT_TRUE(lazy.verifyClientHello(taggedHello(k.network, point)));
    auto refusedLazily = lazy.verifyAuthenticate(Bytes(kShsAuthenticateBytes, 0));
    ASSERT_FALSE(refusedLazily);
    EXPECT_EQ(refusedLazily.error().code(), Errc::Malformed);

    ShsClient client = k.newClient();
    auto refusedByClient = client.verifyServerHello(taggedHello(k.network, point));
    ASSERT_FALSE(refusedByClient);
    EXPECT_EQ(refusedByClient.error().code(), Errc::Malformed);
  }
}

TEST(SecretHandshake, TruncatedAndOverlongMessagesAreMalformed) {
  VectorKeys k;
  const Bytes msg1 = hexAt(vectors(), "msg1_client_hello");
  const Bytes msg2 = hexAt(vectors(), "msg2_server_hello");
  const Bytes msg3 = hexAt(vectors(), "msg3_client_auth");
  const Bytes msg4 = hexAt(vectors(), "msg4_server_accept");
  auto expectMalformed = [](const auto& result, std::size_t size) {
    ASSERT_FALSE(result) << size;
    EXPECT_EQ(result.error().code(), Errc::Malformed) << size;
  };
  for (std::size_t size = 0; size <= 113; ++size) {
    if (size != 64) {
      Bytes m1 = msg1, m2 = msg2;
      m1.resize(size);
      m2.resize(size);
      ShsServer server = k.newServer();
      expectMalformed(server.verifyClientHello(m1), size);
      ShsClient client = k.newClient();
      expectMalformed(client.verifyServerHello(m2), size);
    }
    if (size != 112) {
      Bytes m3 = msg3;
      m3.resize(size);
      ShsServer server = k.newServer();
      ASSERT_TRUE(server.verifyClientHello(msg1));
      expectMalformed(server.verifyAuthenticate(m3), size);
    }
    if (size != 80) {
      Bytes m4 = msg4;
      m4.resize(size);
      ShsClient client = k.newClient();
      ASSERT_TRUE(client.verifyServerHello(msg2));
      (void)client.authenticate();
      expectMalformed(client.verifyAccept(m4), size);
    }
  }
}

TEST(SecretHandshake, EverySingleBitFlipInAnyMessageIsRefused) {
  VectorKeys k;
  const Bytes msg1 = hexAt(vectors(), "msg1_client_hello");
  const Bytes msg2 = hexAt(vectors(), "msg2_server_hello");
  const Bytes msg3 = hexAt(vectors(), "msg3_client_auth");
  const Bytes msg4 = hexAt(vectors(), "msg4_server_accept");
  auto flipped = [](Bytes m, std::size_t bit) {
    m[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    return m;
  };
  for (std::size_t bit = 0; bit < msg1.size() * 8; ++bit) {
    ShsServer server = k.newServer();
    EXPECT_FALSE(server.verifyClientHello(flipped(msg1, bit))) << "msg1 bit " << bit;
  }
  for (std::size_t bit = 0; bit < msg2.size() * 8; ++bit) {
    ShsClient client = k.newClient();
    EXPECT_FALSE(client.verifyServerHello(flipped(msg2, bit))) << "msg2 bit " << bit;
  }
  for (std::size_t bit = 0; bit < msg3.size() * 8; ++bit) {
    ShsServer server = k.newServer();
    ASSERT_TRUE(server.verifyClientHello(msg1));
    auto verified = server.verifyAuthenticate(flipped(msg3, bit));
    ASSERT_FALSE(verified) << "msg3 bit " << bit;
    EXPECT_EQ(verified.error().code(), Errc::Denied) << "msg3 bit " << bit;
  }
  for (std::size_t bit = 0; bit < msg4.size() * 8; ++bit) {
    ShsClient client = k.newClient();
    ASSERT_TRUE(client.verifyServerHello(msg2));
    (void)client.authenticate();
    auto verified = client.verifyAccept(flipped(msg4, bit));
    ASSERT_FALSE(verified) << "msg4 bit " << bit;
    EXPECT_EQ(verified.error().code(), Errc::Denied) << "msg4 bit " << bit;
  }
}

TEST(SecretHandshake, AMessage3ReplayedFromAnotherSessionIsDenied) {
  VectorKeys k;
  // Session 1, recorded by an eavesdropper.
  ShsClient client1(k.network, k.client, k.server.publicKey());
  ShsServer server1(k.network, k.server);
  const auto msg1 = client1.hello();
  ASSERT_TRUE(server1.verifyClientHello(msg1));
  ASSERT_TRUE(client1.verifyServerHello(server1.hello()));
  const auto msg3 = client1.authenticate();
  ASSERT_TRUE(server1.verifyAuthenticate(msg3));
  // Session 2: the eavesdropper replays the client's messages to a server with a new ephemeral.
  ShsServer server2(k.network, k.server);
  ASSERT_TRUE(server2.verifyClientHello(msg1));
  (void)server2.hello();
  auto replayed = server2.verifyAuthenticate(msg3);
  ASSERT_FALSE(replayed);
  EXPECT_EQ(replayed.error().code(), Errc::Denied);
}

TEST(SecretHandshake, CallingAStepOutOfOrderIsABug) {
  VectorKeys k;
  ShsClient client = k.newClient();
  EXPECT_THROW((void)client.authenticate(), std::logic_error);
  EXPECT_THROW(client.precompute(), std::logic_error);
  ShsServer server = k.newServer();
  EXPECT_THROW((void)server.hello(), std::logic_error);
  EXPECT_THROW((void)server.precompute(), std::logic_error);
  EXPECT_THROW((void)server.accept(), std::logic_error);
  // A failed step ends the handshake.
  ASSERT_FALSE(server.verifyClientHello(Bytes(64, 0)));
  EXPECT_THROW((void)server.hello(), std::logic_error);
}

// Over streams ----------------------------------------------------------------------------------


TEST(SecretHandshake, ClientAndServerAgreeOverAStreamAndTheServerSeesTheClientKey) {
  VectorKeys k;
  PipePair p;
  std::optional<PublicKey> asked;
  ShsConfig clientConfig{k.network, k.client};
  ShsConfig serverConfig{k.network, k.server};
  auto server = start(p.ctx, shsServer(*p.acceptorEnd, serverConfig, [&](const PublicKey& key) {
    asked = key;
    return true;
  }));
  auto client = start(p.ctx, shsClient(*p.dialerEnd, clientConfig, k.server.publicKey()));
  ASSERT_TRUE(p.runUntil([&] { return server->done() && client->done(); }));
  ASSERT_FALSE(server->error);
  ASSERT_FALSE(client->error);
  ASSERT_TRUE(*server->value) << server->value->error().message();
  ASSERT_TRUE(*client->value) << client->value->error().message();
  EXPECT_EQ(asked, k.client.publicKey());
  const ShsSession& c = **client->value;
  const ShsSession& s = **server->value;
  EXPECT_EQ(bytesOf(c.encryptKey), bytesOf(s.decryptKey));
  EXPECT_EQ(c.encryptNonce, s.decryptNonce);
  EXPECT_EQ(bytesOf(c.decryptKey), bytesOf(s.encryptKey));
  EXPECT_EQ(c.decryptNonce, s.encryptNonce);
  EXPECT_EQ(c.remotePublicKey, k.server.publicKey());
  EXPECT_EQ(s.remotePublicKey, k.client.publicKey());
  EXPECT_EQ(p.link->bytesFromDialer().size(), 64u + 112u);
  EXPECT_EQ(p.link->bytesFromAcceptor().size(), 64u + 80u);
}

TEST(SecretHandshake, AnUnauthorizedClientIsDeniedAndGetsNoMessage4) {
  VectorKeys k;
  PipePair p;
  ShsConfig clientConfig{k.network, k.client};
  ShsConfig serverConfig{k.network, k.server};
  auto server = start(p.ctx, shsServer(*p.acceptorEnd, serverConfig,
                                       [](const PublicKey&) { return false; }));
  auto client = start(p.ctx, shsClient(*p.dialerEnd, clientConfig, k.server.publicKey()));
  ASSERT_TRUE(p.runUntil([&] { return server->done(); }));
  ASSERT_FALSE(server->error);
  ASSERT_FALSE(server->value->has_value());
  EXPECT_EQ(server->value->error().code(), Errc::Denied);
  EXPECT_EQ(p.link->bytesFromAcceptor().size(), 64u) << "the server wrote past message 2";
  // The caller drops the stream on a denial; the client sees the hang-up.
  p.acceptorEnd->close();
  ASSERT_TRUE(p.runUntil([&] { return client->done(); }));
  ASSERT_FALSE(client->error);
  ASSERT_FALSE(client->value->has_value());
  EXPECT_EQ(client->value->error().code(), Errc::Disconnected);
}

TEST(SecretHandshake, AServerThatHearsAnotherNetworkWritesNothing) {
  VectorKeys k;
  PipePair p;
  NetworkKey other = *NetworkKey::fromBytes(Bytes(32, 7));
  ShsConfig clientConfig{other, k.client};
  ShsConfig serverConfig{k.network, k.server};
  auto server = start(p.ctx, shsServer(*p.acceptorEnd, serverConfig,
                                       [](const PublicKey&) { return true; }));
  auto client = start(p.ctx, shsClient(*p.dialerEnd, clientConfig, k.server.publicKey()));
  ASSERT_TRUE(p.runUntil([&] { return server->done(); }));
  ASSERT_FALSE(server->value->has_value());
  EXPECT_EQ(server->value->error().code(), Errc::Denied);
  EXPECT_TRUE(p.link->bytesFromAcceptor().empty());
  p.acceptorEnd->close();
  ASSERT_TRUE(p.runUntil([&] { return client->done(); }));
}

// Box-stream, pure ------------------------------------------------------------------------------

SecretKey<32> keyOf(const Bytes& bytes) {
  SecretKey<32> key;
  std::copy(bytes.begin(), bytes.end(), key.data());
  return key;
}
ShsNonce nonceOf(const Bytes& bytes) {
  ShsNonce nonce{};
  std::copy(bytes.begin(), bytes.end(), nonce.begin());
  return nonce;
}

class BoxStreamVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(BoxStreamVectors, EncodingTheMessagesGivesTheFramesTheGoodbyeAndTheWire) {
  const json& v = vectors()[GetParam()];
  BoxStreamEncoder encoder(keyOf(hexAt(v, "key")), nonceOf(hexAt(v, "start_nonce")));
  Bytes wire;
  std::size_t frame = 0;
  for (const auto& messageHex : v["messages_hex"]) {
    const Bytes message = hex(messageHex.get<std::string>());
    // The reference sender cuts a write into pieces of at most 4096 bytes.
    for (std::size_t offset = 0; offset < message.size(); offset += kBoxStreamMaxBodyBytes) {
      const std::size_t piece = std::min(kBoxStreamMaxBodyBytes, message.size() - offset);
      Bytes out(BoxStreamEncoder::wireSize(piece));
      encoder.encode(ByteView(message).subspan(offset, piece), out);
      ASSERT_LT(frame, v["frames"].size());
      const json& expected = v["frames"][frame++];
      EXPECT_EQ(Bytes(out.begin(), out.begin() + 34), hexAt(expected, "header")) << frame;
      EXPECT_EQ(Bytes(out.begin() + 34, out.end()), hexAt(expected, "body")) << frame;
      EXPECT_EQ(piece, expected["body_len"].get<std::size_t>());
      wire.insert(wire.end(), out.begin(), out.end());
    }
  }
  EXPECT_EQ(frame, v["frames"].size());
  std::array<std::uint8_t, kBoxStreamHeaderBytes> goodbye{};
  encoder.goodbye(goodbye);
  EXPECT_EQ(bytesOf(goodbye), hexAt(v["goodbye"], "header"));
  wire.insert(wire.end(), goodbye.begin(), goodbye.end());
  EXPECT_EQ(wire, hexAt(v, "wire"));
  EXPECT_THROW(encoder.encode(Bytes{1}, wire), std::logic_error);
}

TEST_P(BoxStreamVectors, DecodingTheWireGivesTheMessagesAndTheGoodbye) {
  const json& v = vectors()[GetParam()];
  BoxStreamDecoder decoder(keyOf(hexAt(v, "key")), nonceOf(hexAt(v, "start_nonce")));
  const Bytes wire = hexAt(v, "wire");
  Bytes received;
  std::size_t offset = 0;
  for (;;) {
    ASSERT_LE(offset + kBoxStreamHeaderBytes, wire.size());
    auto length = decoder.decodeHeader(
        std::span<const std::uint8_t, kBoxStreamHeaderBytes>(wire.data() + offset, 34));
    ASSERT_TRUE(length) << length.error().message();
    offset += kBoxStreamHeaderBytes;
    if (!*length) break;
    ASSERT_LE(offset + **length, wire.size());
    Bytes body(**length);
    ASSERT_TRUE(decoder.decodeBody(ByteView(wire).subspan(offset, **length), body));
    received.insert(received.end(), body.begin(), body.end());
    offset += **length;
  }
  EXPECT_EQ(offset, wire.size());
  EXPECT_TRUE(decoder.finished());
  Bytes sent;
  for (const auto& m : v["messages_hex"]) {
    const Bytes message = hex(m.get<std::string>());
    sent.insert(sent.end(), message.begin(), message.end());
  }
  EXPECT_EQ(received, sent);
}

INSTANTIATE_TEST_SUITE_P(SecretHandshake, BoxStreamVectors,
                         ::testing::Values("boxstream_client_to_server",
                                           "boxstream_server_to_client", "boxstream_nonce_carry",
                                           "boxstream_empty_session"));

TEST(BoxStream, TheNonceCounterCarriesAcrossBytes) {
  const json& v = vectors()["boxstream_nonce_carry"];
  // The vector starts at ...00fffffe: frame 1's header nonce is ...01000000.
  EXPECT_EQ(hexAt(v["frames"][1], "header_nonce"), hex("000000000000000000000000000000000000000001000000"));
  // A counter of all 0xff bytes wraps to zero, as the reference's increment-buffer does.
  const Bytes key = hexAt(v, "key");
  BoxStreamEncoder encoder(keyOf(key), nonceOf(Bytes(24, 0xff)));
  Bytes out(BoxStreamEncoder::wireSize(1));
  encoder.encode(Bytes{7}, out);
  std::array<std::uint8_t, 34> goodbye{};
  encoder.goodbye(goodbye);
  Bytes plain(18);
  const ShsNonce one = nonceOf(hex("000000000000000000000000000000000000000000000001"));
  ASSERT_EQ(crypto_secretbox_open_easy(plain.data(), goodbye.data(), 34, one.data(), key.data()),
            0);
  EXPECT_EQ(plain, Bytes(18, 0));
}

TEST(BoxStream, AFlippedBitInAHeaderOrABodyDoesNotOpen) {
  const json& v = vectors()["boxstream_client_to_server"];
  const Bytes wire = hexAt(v, "wire");
  const std::size_t firstPacket = 34 + 5;
  for (std::size_t bit = 0; bit < firstPacket * 8; ++bit) {
    Bytes bent = wire;
    bent[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    BoxStreamDecoder decoder(keyOf(hexAt(v, "key")), nonceOf(hexAt(v, "start_nonce")));
    auto length = decoder.decodeHeader(std::span<const std::uint8_t, 34>(bent.data(), 34));
    if (bit < 34 * 8) {
      // The reference's "invalid header".
      ASSERT_FALSE(length) << "bit " << bit;
      EXPECT_EQ(length.error().code(), Errc::Malformed);
      EXPECT_TRUE(decoder.finished());
      continue;
    }
    ASSERT_TRUE(length && *length && **length == 5u) << "bit " << bit;
    // The reference's "invalid packet".
    Bytes body(5);
    auto opened = decoder.decodeBody(ByteView(bent).subspan(34, 5), body);
    ASSERT_FALSE(opened) << "bit " << bit;
    EXPECT_EQ(opened.error().code(), Errc::Malformed);
  }
}

TEST(BoxStream, AHeaderThatAnnouncesZeroOrMoreThan4096BytesIsMalformed) {
  const Bytes key(32, 9);
  const ShsNonce nonce{};
  for (std::size_t length : {std::size_t{0}, std::size_t{4097}, std::size_t{65535}}) {
    std::uint8_t plain[18] = {static_cast<std::uint8_t>(length >> 8),
                              static_cast<std::uint8_t>(length), 1};
    std::array<std::uint8_t, 34> header{};
    crypto_secretbox_easy(header.data(), plain, sizeof plain, nonce.data(), key.data());
    BoxStreamDecoder decoder(keyOf(key), nonce);
    auto decoded = decoder.decodeHeader(header);
    ASSERT_FALSE(decoded) << length;
    EXPECT_EQ(decoded.error().code(), Errc::Malformed);
  }
}

// Box-stream channel ------------------------------------------------------------------------------

// Two sessions that fit each other, with random keys.
std::pair<ShsSession, ShsSession> sessionPair() {
  const DeviceKey a = DeviceKey::generate();
  const DeviceKey b = DeviceKey::generate();
  Bytes k1(32), k2(32), n1(24), n2(24);
  randombytes_buf(k1.data(), 32);
  randombytes_buf(k2.data(), 32);
  randombytes_buf(n1.data(), 24);
  randombytes_buf(n2.data(), 24);
  return {ShsSession{keyOf(k1), nonceOf(n1), keyOf(k2), nonceOf(n2), b.publicKey()},
          ShsSession{keyOf(k2), nonceOf(n2), keyOf(k1), nonceOf(n1), a.publicKey()}};
}

// The raw packets a peer with `session`'s encrypt side would send for `plain` (already framed).
Bytes packets(BoxStreamEncoder& encoder, const Bytes& plain) {
  Bytes wire;
  for (std::size_t offset = 0; offset < plain.size(); offset += kBoxStreamMaxBodyBytes) {
    const std::size_t piece = std::min(kBoxStreamMaxBodyBytes, plain.size() - offset);
    Bytes out(BoxStreamEncoder::wireSize(piece));
    encoder.encode(ByteView(plain).subspan(offset, piece), out);
    wire.insert(wire.end(), out.begin(), out.end());
  }
  return wire;
}

// The box-stream message that announces a frame of `n` bytes: its u32 big-endian length.
Bytes lengthPacket(BoxStreamEncoder& encoder, std::uint32_t n) {
  return packets(encoder, Bytes{static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                                static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
}

// A frame as the channel sends it: one message when it fits one (and is not 4 bytes), else a
// length message and then its bytes cut into messages.
Bytes framed(BoxStreamEncoder& encoder, const Bytes& payload) {
  if (!payload.empty() && payload.size() != 4 && payload.size() <= kBoxStreamMaxBodyBytes) {
    return packets(encoder, payload);
  }
  Bytes wire = lengthPacket(encoder, static_cast<std::uint32_t>(payload.size()));
  const Bytes rest = packets(encoder, payload);
  wire.insert(wire.end(), rest.begin(), rest.end());
  return wire;
}

Bytes randomBytes(std::mt19937& rng, std::size_t size) {
  Bytes out(size);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

unsigned seed() { return static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed()); }

void roundTrip(const std::vector<Bytes>& frames) {
  PipePair p;
  auto [dialerSession, acceptorSession] = sessionPair();
  auto sender = makeBoxStreamChannel(std::move(p.dialerEnd), std::move(dialerSession));
  auto receiver = makeBoxStreamChannel(std::move(p.acceptorEnd), std::move(acceptorSession));
  expectFramesArrive(p, *sender, *receiver, frames, 20s);
  if (::testing::Test::HasFatalFailure()) return;
  // Nothing is sent in the clear: no 64-byte run of a frame appears on the wire.
  const auto& wire = p.link->bytesFromDialer();
  for (const Bytes& f : frames) {
    if (f.size() < 64) continue;
    EXPECT_EQ(std::search(wire.begin(), wire.end(), f.begin(), f.begin() + 64), wire.end());
  }
}

TEST(BoxStreamChannel, FramesOfEverySizeAroundThePacketLimitArriveWholeAndInOrder) {
  std::mt19937 rng(seed());
  SCOPED_TRACE("seed " + std::to_string(seed()) + " (--gtest_random_seed to repeat)");
  std::vector<Bytes> frames;
  // Around the packet limit, and around the receive buffer's first size and its doubling.
  constexpr std::size_t kChunk = kFrameFirstChunk;
  const std::vector<std::size_t> sizes = {0,      1,          4091,       4092,           4093,
                                          4095,   4096,       4097,       8188,           8189,
                                          kChunk - 1, kChunk, kChunk + 1, 2 * kChunk + 1, 1 << 20,
                                          0,      3};
  for (std::size_t size : sizes) {
    frames.push_back(randomBytes(rng, size));
  }
  roundTrip(frames);
}

TEST(BoxStreamChannel, RandomFrameSizesRoundTrip) {
  std::mt19937 rng(seed());
  SCOPED_TRACE("seed " + std::to_string(seed()) + " (--gtest_random_seed to repeat)");
  std::vector<Bytes> frames;
  for (int i = 0; i < 200; ++i) frames.push_back(randomBytes(rng, rng() % 20000));
  roundTrip(frames);
}

// The plaintext of each box-stream message on the wire after one channel sent `frames`, one by one
// or (`many`) in one sendMany.
std::vector<Bytes> messagesOnTheWire(const std::vector<Bytes>& frames, bool many = false) {
  PipePair p;
  auto [dialerSession, acceptorSession] = sessionPair();
  BoxStreamDecoder decoder(std::move(acceptorSession.decryptKey), acceptorSession.decryptNonce);
  auto sender = makeBoxStreamChannel(std::move(p.dialerEnd), std::move(dialerSession));
  const std::vector<ByteView> views(frames.begin(), frames.end());
  auto sent = many ? await(p, sender->sendMany(views)) : await(p, sendAll(*sender, frames));
  EXPECT_TRUE(sent) << sent.error().message();
  const auto& wire = p.link->bytesFromDialer();
  std::vector<Bytes> messages;
  for (std::size_t offset = 0; offset < wire.size();) {
    auto length = decoder.decodeHeader(std::span<const std::uint8_t, 34>(wire.data() + offset, 34));
    EXPECT_TRUE(length && *length);
    if (!length || !*length) break;
    Bytes body(**length);
    EXPECT_TRUE(decoder.decodeBody(ByteView(wire).subspan(offset + 34, **length), body));
    messages.push_back(std::move(body));
    offset += 34 + **length;
  }
  return messages;
}

TEST(BoxStreamChannel, AFrameThatFitsAMessageIsThatMessage) {
  for (std::size_t size : {std::size_t{1}, std::size_t{3}, std::size_t{5}, std::size_t{4092},
                           std::size_t{4096}}) {
    const Bytes frame(size, 0x5a);
    EXPECT_EQ(messagesOnTheWire({frame}), std::vector<Bytes>{frame}) << size;
  }
}

TEST(BoxStreamChannel, ALargerEmptyOr4ByteFrameIsALengthMessageThenItsBytesCut) {
  const Bytes large(5000, 0x5a);
  EXPECT_EQ(messagesOnTheWire({large}),
            (std::vector<Bytes>{Bytes{0, 0, 0x13, 0x88}, Bytes(4096, 0x5a), Bytes(904, 0x5a)}));
  const Bytes two(8192, 0x11);
  EXPECT_EQ(messagesOnTheWire({two}),
            (std::vector<Bytes>{Bytes{0, 0, 0x20, 0}, Bytes(4096, 0x11), Bytes(4096, 0x11)}));
  EXPECT_EQ(messagesOnTheWire({Bytes{}}), std::vector<Bytes>{(Bytes{0, 0, 0, 0})});
  EXPECT_EQ(messagesOnTheWire({Bytes{9, 8, 7, 6}}),
            (std::vector<Bytes>{Bytes{0, 0, 0, 4}, Bytes{9, 8, 7, 6}}));
}

std::vector<Bytes> framesOfSizes(std::mt19937& rng, std::initializer_list<std::size_t> sizes) {
  std::vector<Bytes> frames;
  for (std::size_t size : sizes) frames.push_back(randomBytes(rng, size));
  return frames;
}

TEST(BoxStreamChannel, SendManyPutsTheMessagesOfOneByOneSendsOnTheWire) {
  std::mt19937 rng(seed());
  SCOPED_TRACE("seed " + std::to_string(seed()) + " (--gtest_random_seed to repeat)");
  // More than one write's worth (16 messages), with every kind of frame at the boundaries.
  const auto frames = framesOfSizes(rng, {0, 4, 5, 4096, 5000, 70000, 3, 4096, 4096, 4096, 4096,
                                          4096, 4096, 4096, 4096, 4096, 4096, 4096, 1, 8192});
  EXPECT_EQ(messagesOnTheWire(frames, true), messagesOnTheWire(frames, false));

  PipePair p;
  auto [dialerSession, acceptorSession] = sessionPair();
  auto sender = makeBoxStreamChannel(std::move(p.dialerEnd), std::move(dialerSession));
  auto receiver = makeBoxStreamChannel(std::move(p.acceptorEnd), std::move(acceptorSession));
  const std::vector<ByteView> views(frames.begin(), frames.end());
  ASSERT_TRUE(await(p, sender->sendMany(views)));
  auto got = await(p, receiveN(*receiver, frames.size()));
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, frames);
}

TEST(BoxStreamChannel, SendManyWithOneFrameOverTheLimitFailsOverloadedAndWritesNothing) {
  PipePair p;
  auto [dialerSession, acceptorSession] = sessionPair();
  auto sender = makeBoxStreamChannel(std::move(p.dialerEnd), std::move(dialerSession), 1024);
  const Bytes small(10, 1), large(1025, 2);
  const std::vector<ByteView> frames{small, large, small};
  auto refused = await(p, sender->sendMany(frames));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), Errc::Overloaded);
  EXPECT_TRUE(p.link->bytesFromDialer().empty());
}

// A channel on the acceptor end, and an encoder that speaks to it as a raw peer.
struct RawPeer {
  RawPeer(std::size_t maxFrameBytes = kDefaultMaxFrameBytes) {
    auto [dialerSession, acceptorSession] = sessionPair();
    encoder.emplace(std::move(dialerSession.encryptKey), dialerSession.encryptNonce);
    channel = makeBoxStreamChannel(std::move(p.acceptorEnd), std::move(acceptorSession),
                                   maxFrameBytes);
  }
  Result<void> write(Bytes bytes) { return await(p, writeBytes(*p.dialerEnd, std::move(bytes))); }
  Bytes goodbye() {
    Bytes out(34);
    encoder->goodbye(std::span<std::uint8_t, 34>(out.data(), 34));
    return out;
  }

  PipePair p;
  std::optional<BoxStreamEncoder> encoder;
  std::unique_ptr<MessageChannel> channel;
};

void expectError(const Result<Bytes>& got, Errc code) {
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), code) << got.error().message();
}

TEST(BoxStreamChannel, AFlippedHeaderOrBodyBitFailsMalformed) {
  for (std::size_t at : {std::size_t{3}, std::size_t{34 + 6}}) {
    RawPeer peer;
    Bytes wire = framed(*peer.encoder, Bytes(10, 1));
    wire[at] ^= 0x10;
    ASSERT_TRUE(peer.write(wire));
    expectError(await(peer.p, peer.channel->receive()), Errc::Malformed);
    // And it stays failed.
    expectError(await(peer.p, peer.channel->receive()), Errc::Malformed);
  }
}

TEST(BoxStreamChannel, TheGoodbyeEndsTheChannelAndAMissingGoodbyeIsAHangUp) {
  {
    RawPeer peer;
    Bytes wire = framed(*peer.encoder, Bytes{1, 2, 3});
    const Bytes bye = peer.goodbye();
    wire.insert(wire.end(), bye.begin(), bye.end());
    ASSERT_TRUE(peer.write(wire));
    auto first = await(peer.p, peer.channel->receive());
    ASSERT_TRUE(first);
    EXPECT_EQ(*first, (Bytes{1, 2, 3}));
    expectError(await(peer.p, peer.channel->receive()), Errc::Disconnected);
  }
  {
    // The reference's "unexpected hangup": the stream ends at a frame boundary without a goodbye.
    RawPeer peer;
    ASSERT_TRUE(peer.write(framed(*peer.encoder, Bytes{4})));
    auto first = await(peer.p, peer.channel->receive());
    ASSERT_TRUE(first);
    auto pending = start(peer.p.ctx, peer.channel->receive());
    peer.p.runUntil([] { return false; }, 20ms);
    ASSERT_FALSE(pending->done());
    peer.p.link->cut();
    ASSERT_TRUE(peer.p.runUntil([&] { return pending->done(); }));
    expectError(*pending->value, Errc::Disconnected);
  }
}

TEST(BoxStreamChannel, AGoodbyeInTheMiddleOfAFrameFailsMalformed) {
  RawPeer peer;
  // A frame of 10000 bytes announced, one packet of it sent, then the goodbye.
  Bytes wire = lengthPacket(*peer.encoder, 10000);
  const Bytes part = packets(*peer.encoder, Bytes(4096, 3));
  wire.insert(wire.end(), part.begin(), part.end());
  const Bytes bye = peer.goodbye();
  wire.insert(wire.end(), bye.begin(), bye.end());
  ASSERT_TRUE(peer.write(wire));
  expectError(await(peer.p, peer.channel->receive()), Errc::Malformed);
}

TEST(BoxStreamChannel, ALengthMessageForAFrameThatFitsOneMessageFailsMalformed) {
  for (std::uint32_t n : {1u, 3u, 5u, 4096u}) {
    RawPeer peer;
    Bytes wire = lengthPacket(*peer.encoder, n);
    const Bytes body = packets(*peer.encoder, Bytes(n, 1));
    wire.insert(wire.end(), body.begin(), body.end());
    ASSERT_TRUE(peer.write(wire));
    expectError(await(peer.p, peer.channel->receive()), Errc::Malformed);
  }
}

TEST(BoxStreamChannel, AMessageThatRunsPastTheAnnouncedFrameFailsMalformed) {
  RawPeer peer;
  // 5000 announced, then 4096 and 1000 bytes: 96 too many, in the second message.
  Bytes wire = lengthPacket(*peer.encoder, 5000);
  for (std::size_t size : {4096u, 1000u}) {
    const Bytes body = packets(*peer.encoder, Bytes(size, 2));
    wire.insert(wire.end(), body.begin(), body.end());
  }
  ASSERT_TRUE(peer.write(wire));
  expectError(await(peer.p, peer.channel->receive()), Errc::Malformed);
}

TEST(BoxStreamChannel, AStreamTruncatedInsideAPacketFailsDisconnected) {
  for (std::size_t keep : {std::size_t{1}, std::size_t{33}, std::size_t{34}, std::size_t{40},
                           std::size_t{34 + 4095}}) {
    RawPeer peer;
    Bytes all = framed(*peer.encoder, Bytes(5000, 8));
    all.resize(keep);
    ASSERT_TRUE(peer.write(all));
    auto pending = start(peer.p.ctx, peer.channel->receive());
    peer.p.runUntil([] { return false; }, 20ms);
    ASSERT_FALSE(pending->done()) << keep;
    peer.p.link->cut();
    ASSERT_TRUE(peer.p.runUntil([&] { return pending->done(); }));
    expectError(*pending->value, Errc::Disconnected);
  }
}

TEST(BoxStreamChannel, AnAnnouncedLengthOverTheLimitFailsOverloadedBeforeAllocating) {
  RawPeer peer(1024);
  // 4 GiB - 1 announced, and no body: the refusal must not wait for it, nor allocate for it.
  ASSERT_TRUE(peer.write(packets(*peer.encoder, Bytes{0xff, 0xff, 0xff, 0xff})));
  gLargestAllocation = 0;
  auto pending = start(peer.p.ctx, peer.channel->receive());
  gTrackAllocations = true;
  const bool finished = peer.p.runUntil([&] { return pending->done(); }, 2s);
  gTrackAllocations = false;
  ASSERT_TRUE(finished) << "receive() waited for a body it should have refused";
  ASSERT_FALSE(pending->error);
  expectError(*pending->value, Errc::Overloaded);
  EXPECT_LT(gLargestAllocation.load(), std::size_t{1} << 20)
      << "something allocated for the announced length";
}

// A peer that announces a large frame and sends little of it holds memory for what it sent: the
// buffer starts at kFrameFirstChunk and doubles as the body's messages arrive.
TEST(BoxStreamChannel, AnAnnouncedFrameHoldsMemoryForTheBytesThatArriveNotForItsLength) {
  RawPeer peer(4u << 20);
  std::mt19937 rng(seed());
  SCOPED_TRACE("seed " + std::to_string(seed()) + " (--gtest_random_seed to repeat)");
  const Bytes body = randomBytes(rng, 2u << 20);
  // 2 MiB announced, then the first message of the body only.
  Bytes wire = lengthPacket(*peer.encoder, static_cast<std::uint32_t>(body.size()));
  const Bytes bodyWire = packets(*peer.encoder, body);
  const std::size_t firstMessage = BoxStreamEncoder::wireSize(kBoxStreamMaxBodyBytes);
  wire.insert(wire.end(), bodyWire.begin(), bodyWire.begin() + static_cast<std::ptrdiff_t>(firstMessage));
  ASSERT_TRUE(peer.write(wire));

  auto pending = startReceiveOfAPartFrame(peer.p, peer.channel->receive());

  ASSERT_TRUE(peer.write(Bytes(bodyWire.begin() + static_cast<std::ptrdiff_t>(firstMessage),
                               bodyWire.end())));
  ASSERT_TRUE(peer.p.runUntil([&] { return pending->done(); }, 5s));
  ASSERT_FALSE(pending->error);
  ASSERT_TRUE(pending->value->has_value()) << pending->value->error().message();
  EXPECT_TRUE(**pending->value == body);
}

TEST(BoxStreamChannel, AFrameAtTheLimitIsAcceptedAndOneByteMoreIsRefused) {
  PipePair p;
  auto [dialerSession, acceptorSession] = sessionPair();
  auto sender = makeBoxStreamChannel(std::move(p.dialerEnd), std::move(dialerSession), 1 << 20);
  auto receiver = makeBoxStreamChannel(std::move(p.acceptorEnd), std::move(acceptorSession), 5000);
  auto sent = await(p, sendAll(*sender, {Bytes(5000, 1), Bytes(5001, 2)}));
  ASSERT_TRUE(sent) << sent.error().message();
  auto first = await(p, receiver->receive());
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(*first, Bytes(5000, 1));
  expectError(await(p, receiver->receive()), Errc::Overloaded);
}

TEST(BoxStreamChannel, SendingAFrameOverTheLimitFailsOverloadedAndWritesNothing) {
  PipePair p;
  auto [dialerSession, acceptorSession] = sessionPair();
  auto sender = makeBoxStreamChannel(std::move(p.dialerEnd), std::move(dialerSession), 1024);
  auto refused = await(p, sender->send(Bytes(1025, 0)));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), Errc::Overloaded);
  EXPECT_TRUE(p.link->bytesFromDialer().empty());
}

TEST(BoxStreamChannel, CloseIsIdempotentWakesAPendingReceiveAndLaterSendsFail) {
  PipePair p;
  auto [dialerSession, acceptorSession] = sessionPair();
  auto sender = makeBoxStreamChannel(std::move(p.dialerEnd), std::move(dialerSession));
  auto receiver = makeBoxStreamChannel(std::move(p.acceptorEnd), std::move(acceptorSession));
  auto pending = start(p.ctx, receiver->receive());
  p.runUntil([] { return false; }, 20ms);
  ASSERT_FALSE(pending->done());
  receiver->close();
  receiver->close();
  ASSERT_TRUE(p.runUntil([&] { return pending->done(); }));
  expectError(*pending->value, Errc::Disconnected);
  sender->close();
  auto sent = await(p, sender->send(Bytes{1}));
  ASSERT_FALSE(sent.has_value());
  EXPECT_EQ(sent.error().code(), Errc::Disconnected);
  EXPECT_TRUE(p.link->bytesFromDialer().empty()) << "close() wrote something";
}

TEST(BoxStreamChannel, AHandshakeThenFramesBothWaysOverOneStream) {
  VectorKeys k;
  PipePair p;
  ShsConfig clientConfig{k.network, k.client};
  ShsConfig serverConfig{k.network, k.server};
  auto server = start(p.ctx, shsServer(*p.acceptorEnd, serverConfig,
                                       [](const PublicKey&) { return true; }));
  auto client = start(p.ctx, shsClient(*p.dialerEnd, clientConfig, k.server.publicKey()));
  ASSERT_TRUE(p.runUntil([&] { return server->done() && client->done(); }));
  ASSERT_TRUE(*server->value && *client->value);
  auto dialer = makeBoxStreamChannel(std::move(p.dialerEnd), std::move(**client->value));
  auto acceptor = makeBoxStreamChannel(std::move(p.acceptorEnd), std::move(**server->value));
  ASSERT_TRUE(await(p, dialer->send(Bytes{1, 2})));
  ASSERT_TRUE(await(p, acceptor->send(Bytes{3})));
  auto atAcceptor = await(p, acceptor->receive());
  auto atDialer = await(p, dialer->receive());
  ASSERT_TRUE(atAcceptor && atDialer);
  EXPECT_EQ(*atAcceptor, (Bytes{1, 2}));
  EXPECT_EQ(*atDialer, (Bytes{3}));
}

// Keys ------------------------------------------------------------------------------------------

TEST(PublicKey, ParsesHexAndEveryScuttlebuttForm) {
  const DeviceKey key = DeviceKey::generate();
  const std::string id = key.publicKey().toSsbId();
  ASSERT_TRUE(id.starts_with("@") && id.ends_with(".ed25519"));
  const std::string base64 = id.substr(1, id.size() - 1 - 8);
  for (const std::string& text : {key.publicKeyHex(), id, base64, base64 + ".ed25519",
                                  "@" + base64}) {
    auto parsed = PublicKey::parse(text);
    ASSERT_TRUE(parsed) << text << ": " << parsed.error().message();
    EXPECT_EQ(*parsed, key.publicKey()) << text;
  }
}

TEST(PublicKey, RefusesBadTextAndPointsOfSmallOrder) {
  for (std::string text : {std::string(), std::string(63, 'a'), std::string(65, 'a'),
                           std::string(64, 'g'), std::string("@abc.ed25519"),
                           std::string(44, '=')}) {
    auto parsed = PublicKey::parse(text);
    ASSERT_FALSE(parsed) << text;
    EXPECT_EQ(parsed.error().code(), Errc::Malformed);
  }
  // The Ed25519 identity and a point of order 8.
  for (const char* text : {"0100000000000000000000000000000000000000000000000000000000000000",
                           "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"}) {
    auto parsed = PublicKey::parse(text);
    ASSERT_FALSE(parsed) << text;
    EXPECT_EQ(parsed.error().code(), Errc::Malformed);
  }
}

TEST(NetworkKey, ParsesTheScuttlebuttMainNetKeyAsHexAndAsBase64) {
  auto fromHex =
      NetworkKey::parse("d4a1cb88a66f02f8db635ce26441cc5dac1b08420ceaac230839b755845a9ffb");
  auto fromBase64 = NetworkKey::parse("1KHLiKZvAvjbY1ziZEHMXawbCEIM6qwjCDm3VYRan/s=");
  ASSERT_TRUE(fromHex && fromBase64);
  EXPECT_EQ(bytesOf(fromHex->key()), bytesOf(fromBase64->key()));
  EXPECT_EQ(bytesOf(fromHex->key()), hexAt(vectors(), "network_key"));
  for (const char* bad : {"", "d4a1", "1KHLiKZvAvjbY1ziZEHMXawbCEIM6qwjCDm3VYRan/s",
                          "1KHLiKZvAvjbY1ziZEHMXawbCEIM6qwjCDm3VYRan/t="}) {
    auto parsed = NetworkKey::parse(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().code(), Errc::Malformed);
  }
}


void writeFile(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

TEST(DeviceKey, SavesWithMode0600AndLoadsTheSameKey) {
  test::TempDir dir;
  const DeviceKey key = DeviceKey::generate();
  const std::string path = (dir.path() / "secret").string();
  ASSERT_TRUE(key.save(path));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = DeviceKey::load(path);
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(loaded->publicKey(), key.publicKey());
  EXPECT_EQ(bytesOf(loaded->secretKey()), bytesOf(key.secretKey()));
  // The file is Scuttlebutt's format.
  std::ifstream in(path);
  const json saved = json::parse(in);
  EXPECT_EQ(saved["curve"], "ed25519");
  EXPECT_EQ(saved["id"], key.publicKey().toSsbId());
  EXPECT_EQ(saved["public"], key.publicKey().toSsbId().substr(1));
}

TEST(DeviceKey, RefusesToOverwriteAFile) {
  test::TempDir dir;
  const std::string path = (dir.path() / "secret").string();
  ASSERT_TRUE(DeviceKey::generate().save(path));
  const DeviceKey other = DeviceKey::generate();
  auto saved = other.save(path);
  ASSERT_FALSE(saved);
  EXPECT_EQ(saved.error().code(), Errc::Io);
  EXPECT_NE(saved.error().message().find(path), std::string::npos);
  EXPECT_NE(DeviceKey::load(path)->publicKey(), other.publicKey());
}

TEST(DeviceKey, LoadsAnSsbKeysFileWithItsCommentLines) {
  test::TempDir dir;
  const DeviceKey key = *DeviceKey::fromSeed(hexAt(vectors()["client_longterm"], "seed"));
  const std::string pub = key.publicKey().toSsbId().substr(1);
  Bytes sk = bytesOf(key.secretKey());
  std::string skB64(sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(skB64.data(), skB64.size(), sk.data(), 64, sodium_base64_VARIANT_ORIGINAL);
  skB64.resize(skB64.size() - 1);
  const std::string text = "# this is your SECRET name.\n# never show it to anyone.\n\n{\n"
                           "  \"curve\": \"ed25519\",\n  \"public\": \"" + pub + "\",\n"
                           "  \"private\": \"" + skB64 + ".ed25519\",\n"
                           "  \"id\": \"@" + pub + "\"\n}\n\n# WARNING! never show this to anyone\n";
  writeFile((dir.path() / "secret").string(), text, 0600);
  auto loaded = DeviceKey::load((dir.path() / "secret").string());
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(loaded->publicKey(), key.publicKey());
}

TEST(DeviceKey, RefusesAFileOthersCanReadAndBrokenFiles) {
  test::TempDir dir;
  const std::string path = (dir.path() / "secret").string();
  ASSERT_TRUE(DeviceKey::generate().save(path));
  ::chmod(path.c_str(), 0644);
  auto loaded = DeviceKey::load(path);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code(), Errc::Config);
  EXPECT_NE(loaded.error().message().find(path), std::string::npos);

  auto missing = DeviceKey::load((dir.path() / "nothing").string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::Io);
  EXPECT_NE(missing.error().message().find((dir.path() / "nothing").string()),
            std::string::npos);

  const DeviceKey a = DeviceKey::generate();
  const DeviceKey b = DeviceKey::generate();
  Bytes sk = bytesOf(b.secretKey());
  std::string skB64(sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(skB64.data(), skB64.size(), sk.data(), 64, sodium_base64_VARIANT_ORIGINAL);
  skB64.resize(skB64.size() - 1);
  const std::string aPub = a.publicKey().toSsbId().substr(1);
  const std::vector<std::string> broken = {
      "not json",
      "[]",
      "{\"curve\":\"ed25519\"}",
      "{\"curve\":\"curve25519\",\"public\":\"" + aPub + "\",\"private\":\"" + skB64 + ".ed25519\"}",
      // Halves of two different keys.
      "{\"curve\":\"ed25519\",\"public\":\"" + aPub + "\",\"private\":\"" + skB64 + ".ed25519\"}",
      "{\"curve\":\"ed25519\",\"public\":\"" + aPub + "\",\"private\":\"abcd.ed25519\"}",
      std::string(70000, ' '),
  };
  for (std::size_t i = 0; i < broken.size(); ++i) {
    const std::string file = (dir.path() / ("broken" + std::to_string(i))).string();
    writeFile(file, broken[i], 0600);
    auto refused = DeviceKey::load(file);
    ASSERT_FALSE(refused) << i;
    EXPECT_EQ(refused.error().code(), Errc::Config) << i;
    EXPECT_NE(refused.error().message().find(file), std::string::npos) << i;
    EXPECT_EQ(refused.error().message().find(skB64.substr(0, 20)), std::string::npos) << i;
  }
}

}  // namespace
}  // namespace portcullis
