// Fuzz target: the server's side of the secret handshake (portcullis/secret_handshake.h:
// shsHandshake as the acceptor, hence shsServer and ShsServer) reading a fuzzed client's hello
// (message 1) and client authenticate (message 3), then the box-stream channel it yields reading
// the client's packets.
//
// The fuzzed client can play a real shs1 client (the target's own derivations from the spec,
// core_fuzz_support.h): it knows its ephemeral secret and the test identities' keys, so it can
// tag its hello with the network key, box message 3 under sha256(N ‖ ab ‖ aB) and sign it. That
// takes fuzzed keys and signatures past the boxes to PublicKey::fromBytes, the signature check
// and the authorize hook. libsodium's randombytes is deterministic and reset for each input (the
// server's ephemeral key is the same in every run), so that findings replay.
//
// Input: flags (1 byte) ‖ chunk seed (1 byte, ChunkSizer) ‖ identity index (1 byte,
// identityByIndex: the client, another device, the server itself) ‖ frames to send back
// (1 byte, mod 4) ‖ the hello's material ‖ message 3's material ‖ the client's box-stream: records
// (writeBoxRecords, sealed towards the server) or, with kRawStream, raw bytes.
//   flags bits 0-1, the hello: 0 honest (the fixed client ephemeral key), 1 tagged: the input's
//     32 bytes as the ephemeral key, tagged with the network key, 2 raw: u8 length and that many
//     bytes, 3 honest but tagged with another network key;
//   bits 2-3, message 3 (after an honest hello): 0 honest, signed by the chosen identity, 1 the
//     input's 32-byte key and 64-byte signature, boxed with the right key, 2 raw: u8 length and
//     bytes, 3 honest but boxed under sha256(N ‖ ab); bit 4: the authorize hook refuses;
//   bit 5: kRawStream.
//
// Invariants, beyond "no crash, no leak, no hang":
//   * the handshake never throws and fails only with Malformed, Denied or Disconnected;
//   * it writes nothing unless the first 64 bytes it read are a hello tagged with our network key
//     (and read before anything else); then it writes message 2 (64 bytes, tagged with the
//     network key, a usable ephemeral key), and message 4 (80 bytes) exactly when it succeeds;
//   * the outcome is the one the shs1 spec gives, computed here: Denied for another network key,
//     a message 3 that does not open (raw, wrong box key), a signature that does not verify, or a
//     refusal by the hook; Malformed for a low-order ephemeral key or an unusable long-term key;
//     Disconnected when the bytes end first; success, with the client's proven key, otherwise;
//   * after success, message 4 opens under sha256(N ‖ ab ‖ aB ‖ Ab) to the server's signature
//     over N ‖ sig_A ‖ A ‖ sha256(ab), and the session's keys are the spec's: the channel reads
//     exactly what referenceBoxReceive reads from the client's packets sealed towards the server
//     (and fails the same way, every time after), and what it sends reads back, under the keys
//     towards the client, as the frames sent.
#include <string>

#include "core_fuzz_support.h"

namespace portcullis::fuzz {
namespace {

constexpr const char* kTarget = "shs_server_fuzz";
constexpr std::size_t kChannelLimit = 64u << 10;

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

enum Flags : std::uint8_t {
  kHelloMask = 0x03,
  kAuthShift = 2,
  kRefuse = 0x10,
  kRawStream = 0x20,
};
enum Hello : std::uint8_t { kHonestHello = 0, kTaggedKey = 1, kRawHello = 2, kOtherNetwork = 3 };
enum Auth : std::uint8_t { kHonestAuth = 0, kFuzzedAuth = 1, kRawAuth = 2, kWrongBox = 3 };

// What the spec says the handshake ends with.
struct Prediction {
  bool known = false;  // false: any allowed failure, or success (a raw replay of a transcript)
  bool success = false;
  Errc code = Errc::Disconnected;
  const TestIdentity* client = nullptr;  // on success: whose key it proves
  Key32 clientPk{};
};

struct Run {
  std::uint8_t flags = 0;
  const TestIdentity* identity = nullptr;
  Key32 taggedKey{};
  Bytes rawHello;
  Key32 fuzzedKey{};
  std::array<std::uint8_t, 64> fuzzedSig{};
  Bytes rawAuth;

  Bytes msg1;
  Bytes msg3;
  Bytes plain3;  // sig_A ‖ A, as boxed in message 3
  std::optional<Key32> ab, aB;
  Prediction predicted;

  Hello hello() const { return static_cast<Hello>(flags & kHelloMask); }
  Auth auth() const { return static_cast<Auth>((flags >> kAuthShift) & 3); }

  Bytes firstMessage() {
    const ShsTestKeys& k = shsKeys();
    switch (hello()) {
      case kHonestHello:
        msg1 = toBytes(shsHello(k.network, k.clientEphemeralPk));
        break;
      case kTaggedKey:
        msg1 = toBytes(shsHello(k.network, taggedKey));
        break;
      case kRawHello:
        msg1 = rawHello;
        break;
      case kOtherNetwork:
        msg1 = toBytes(shsHello(k.otherNetwork, k.clientEphemeralPk));
        break;
    }
    return msg1;
  }

  // Message 3, once the server's hello is in `written`; also what the spec predicts from here.
  Bytes thirdMessage(const Bytes& written) {
    const ShsTestKeys& k = shsKeys();
    if (hello() != kHonestHello || written.size() < kShsHelloBytes) {
      msg3 = auth() == kRawAuth ? rawAuth : Bytes(kShsAuthenticateBytes, 0);
      return msg3;
    }
    const ByteView serverEph = ByteView(written).subspan(32, 32);
    ab = x25519(k.clientEphemeralSk, serverEph);
    aB = x25519(k.clientEphemeralSk, k.server.curvePk);
    check(ab && aB, "the server's ephemeral key is of low order");
    const Key32 boxKey = sha256({k.network, *ab, *aB});
    const Key32 abHash = sha256({*ab});
    Bytes signedText;
    putBytes(signedText, k.network);
    putBytes(signedText, k.server.pk);
    putBytes(signedText, abHash);
    auto honestPlain = [&](const TestIdentity& id) {
      Bytes p;
      putBytes(p, ed25519Sign(signedText, id.sk));
      putBytes(p, id.pk);
      return p;
    };
    switch (auth()) {
      case kHonestAuth:
        plain3 = honestPlain(*identity);
        msg3 = secretboxZeroNonce(plain3, boxKey);
        succeedAs(identity->pk);
        break;
      case kFuzzedAuth: {
        plain3.clear();
        putBytes(plain3, fuzzedSig);
        putBytes(plain3, fuzzedKey);
        msg3 = secretboxZeroNonce(plain3, boxKey);
        Key32 curve{};
        if (crypto_sign_ed25519_pk_to_curve25519(curve.data(), fuzzedKey.data()) != 0) {
          failWith(Errc::Malformed);
        } else if (!ed25519Verifies(fuzzedSig, signedText, fuzzedKey)) {
          failWith(Errc::Denied);
        } else if (lowOrder(curve)) {
          failWith(Errc::Malformed);
        } else {
          succeedAs(fuzzedKey);
        }
        break;
      }
      case kRawAuth: {
        // Denied, unless the bytes are some test identity's honest message 3 (a seed's).
        msg3 = rawAuth;
        if (rawAuth.size() < kShsAuthenticateBytes) {
          failWith(Errc::Disconnected);
          break;
        }
        failWith(Errc::Denied);
        for (std::uint8_t i = 0; i < 3; ++i) {
          const Bytes p = honestPlain(identityByIndex(i));
          const Bytes honest = secretboxZeroNonce(p, boxKey);
          if (std::equal(honest.begin(), honest.end(), rawAuth.begin())) {
            plain3 = p;
            succeedAs(identityByIndex(i).pk);
          }
        }
        break;
      }
      case kWrongBox:
        plain3 = honestPlain(*identity);
        msg3 = secretboxZeroNonce(plain3, sha256({k.network, *ab}));
        failWith(Errc::Denied);
        break;
    }
    return msg3;
  }

  void failWith(Errc code) {
    predicted.known = true;
    predicted.success = false;
    predicted.code = code;
  }
  void succeedAs(const Key32& pk) {
    if (flags & kRefuse) return failWith(Errc::Denied);
    predicted.known = true;
    predicted.success = true;
    predicted.clientPk = pk;
    predicted.client = nullptr;
    for (std::uint8_t i = 0; i < 3; ++i) {
      if (identityByIndex(i).pk == pk) predicted.client = &identityByIndex(i);
    }
  }

  template <std::size_t N>
  static Bytes toBytes(const std::array<std::uint8_t, N>& a) {
    return Bytes(a.begin(), a.end());
  }
};

// The prediction for what happens before message 3 is read (the hello's own verdict).
void predictHello(Run& run) {
  const ShsTestKeys& k = shsKeys();
  switch (run.hello()) {
    case kOtherNetwork:
      run.failWith(Errc::Denied);
      break;
    case kRawHello:
      if (run.rawHello.size() < kShsHelloBytes) {
        run.failWith(Errc::Disconnected);
      } else if (!shsHelloVerifies(k.network, ByteView(run.rawHello).first(kShsHelloBytes))) {
        run.failWith(Errc::Denied);
      }
      break;  // a tagged raw hello: anything may follow (a replayed transcript succeeds)
    case kTaggedKey:
      if (run.taggedKey == k.clientEphemeralPk) break;  // the honest hello after all
      if (lowOrder(run.taggedKey)) {
        run.failWith(Errc::Malformed);
      } else {
        run.failWith(run.auth() == kRawAuth && run.rawAuth.size() < kShsAuthenticateBytes
                         ? Errc::Disconnected
                         : Errc::Denied);
      }
      break;
    case kHonestHello:
      break;  // decided by message 3
  }
}

void checkSession(Run& run, const std::shared_ptr<Script>& script,
                  const std::shared_ptr<ScriptedStream>& stream, ShsSession session, Reader& rest,
                  std::uint8_t sends) {
  const ShsTestKeys& k = shsKeys();
  const Bytes& written = script->written;
  check(written.size() == kShsHelloBytes + kShsAcceptBytes,
        "a successful handshake did not write exactly messages 2 and 4");
  check(session.remotePublicKey.bytes() == run.predicted.clientPk,
        "the session names another client key than the one message 3 proved");
  if (run.predicted.client == nullptr || !run.ab) return;  // a key whose secret we lack
  const TestIdentity& client = *run.predicted.client;
  const ByteView msg2 = ByteView(written).first(kShsHelloBytes);
  const ByteView msg4 = ByteView(written).subspan(kShsHelloBytes, kShsAcceptBytes);
  const auto Ab = x25519(client.curveSk, msg2.subspan(32, 32));
  check(Ab.has_value(), "Ab is of low order");
  const Key32 acceptKey = sha256({k.network, *run.ab, *run.aB, *Ab});
  const auto sigB = openZeroNonce(msg4, acceptKey);
  check(sigB.has_value(), "message 4 does not open under sha256(N ‖ ab ‖ aB ‖ Ab)");
  Bytes signedText;
  putBytes(signedText, k.network);
  putBytes(signedText, run.plain3);
  putBytes(signedText, sha256({*run.ab}));
  check(ed25519Verifies(*sigB, signedText, k.server.pk),
        "the server's signature in message 4 does not verify");
  const ShsDirections dirs = shsDirections(acceptKey, k.server.pk, client.pk, msg2, run.msg1);

  asio::io_context ctx;
  auto channel = makeBoxStreamChannel(std::make_unique<SharedStream>(stream), std::move(session),
                                      kChannelLimit);
  static constexpr std::size_t kSizes[] = {0, 4, 5000};
  checkBoxChannel(kTarget, ctx, *channel, *script, kShsHelloBytes + kShsAcceptBytes, dirs.toClient,
                  dirs.toServer, kSizes, 0xE0, sends, (run.flags & kRawStream) != 0, rest,
                  kChannelLimit);
}

void run(ByteView input) {
  DeterministicRandom::reset();
  Reader r(input);
  Run run;
  run.flags = r.byte();
  const std::uint8_t chunks = r.byte();
  run.identity = &identityByIndex(r.byte());
  const std::uint8_t sends = r.byte() % 4;
  if (run.hello() == kTaggedKey) run.taggedKey = r.fixedOrZero<32>();
  if (run.hello() == kRawHello) {
    const ByteView raw = r.take(r.byte());
    run.rawHello.assign(raw.begin(), raw.end());
  }
  if (run.auth() == kFuzzedAuth) {
    run.fuzzedKey = r.fixedOrZero<32>();
    run.fuzzedSig = r.fixedOrZero<64>();
  }
  if (run.auth() == kRawAuth) {
    const ByteView raw = r.take(r.byte());
    run.rawAuth.assign(raw.begin(), raw.end());
  }
  predictHello(run);

  auto script = std::make_shared<Script>();
  script->sizer = ChunkSizer(chunks);
  std::size_t step = 0;
  script->next = [&run, &step, raw = script.get()]() -> std::optional<Bytes> {
    switch (step++) {
      case 0:
        return run.firstMessage();
      case 1:
        // A short raw hello is all the client sends: the server waits for the rest, in vain.
        if (run.hello() == kRawHello && run.rawHello.size() < kShsHelloBytes) return std::nullopt;
        return run.thirdMessage(raw->written);
      default:
        return std::nullopt;
    }
  };
  auto stream = std::make_shared<ScriptedStream>(script);
  const ShsTestKeys& k = shsKeys();
  static const NetworkKey network = *NetworkKey::fromBytes(k.network);
  static const DeviceKey identity = deviceKeyOf(k.server);
  const ShsConfig config{.networkKey = network, .identity = identity};
  std::optional<Key32> authorized;
  std::function<bool(const PublicKey&)> authorize = [&](const PublicKey& key) {
    check(!authorized, "authorize was asked twice");
    authorized = key.bytes();
    return (run.flags & kRefuse) == 0;
  };

  asio::io_context ctx;
  auto result = runToEnd(ctx, shsHandshake(*stream, Side::Acceptor, config, authorize));
  check(result.has_value(), "the handshake did not complete on a stream that never waits");
  const Bytes written = script->written;

  // What it wrote, and when.
  if (!written.empty()) {
    check(script->readBeforeFirstWrite == kShsHelloBytes,
          "the server wrote before reading exactly one hello");
    check(shsHelloVerifies(k.network, ByteView(script->delivered).first(kShsHelloBytes)),
          "the server answered a hello not tagged with the network key");
    check(shsHelloVerifies(k.network, ByteView(written).first(kShsHelloBytes)),
          "the server's hello is not tagged with the network key");
    check(!lowOrder(ByteView(written).subspan(32, 32)),
          "the server's ephemeral key is of low order");
  }
  check(written.empty() || written.size() == kShsHelloBytes ||
            written.size() == kShsHelloBytes + kShsAcceptBytes,
        "the server wrote other than message 2 and message 4");
  check(result->has_value() == (written.size() == kShsHelloBytes + kShsAcceptBytes),
        "the server wrote message 4 without succeeding, or succeeded without it");
  if (authorized) {
    check(result->has_value() || result->error().code() == Errc::Denied,
          "the handshake failed otherwise than Denied after the hook was asked");
  }

  const Prediction& p = run.predicted;
  if (!*result) {
    const Errc e = result->error().code();
    check(e == Errc::Malformed || e == Errc::Denied || e == Errc::Disconnected,
          "the handshake failed with an unexpected Errc");
    check(!p.known || (!p.success && p.code == e),
          "the handshake failed otherwise than the spec says");
    return;
  }
  check(!p.known || p.success, "the handshake succeeded where the spec says it fails");
  check(authorized && *authorized == result->value().remotePublicKey.bytes(),
        "the hook was not asked about the key the session names");
  if (!p.known) return;  // a replayed raw hello: no keys to check with
  checkSession(run, script, stream, std::move(**result), r, sends);
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("shs_server_fuzz", "sodium_init failed");
  portcullis::fuzz::DeterministicRandom::install();
  (void)portcullis::fuzz::shsKeys();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("shs_server_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
