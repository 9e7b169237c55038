// Fuzz target: the client's side of the secret handshake (portcullis/secret_handshake.h:
// shsHandshake as the dialer, hence shsServerKeyOf, shsClient and ShsClient) reading a fuzzed
// server's hello (message 2) and accept (message 4), then the box-stream channel it yields
// reading the server's packets.
//
// The fuzzed server can play a real shs1 server (the target's own derivations, from the spec): it
// knows its ephemeral secret and the test identities' keys, so it can tag its hello, open the
// client's message 3, and box message 4 under sha256(N ‖ ab ‖ aB ‖ Ab) with a signature of its
// choice. libsodium's randombytes is deterministic and reset for each input (the client's
// ephemeral key is the same in every run).
//
// Input: flags (1 byte) ‖ chunk seed (1 byte, ChunkSizer) ‖ signer index (1 byte,
// identityByIndex: the client, another device, the server the client pinned) ‖ frames to send
// back (1 byte, mod 4) ‖ the hello's material ‖ message 4's material ‖ the server's box-stream:
// records (writeBoxRecords, sealed towards the client) or, with kRawStream, raw bytes.
//   flags bits 0-1, the hello: 0 honest (the fixed server ephemeral key), 1 tagged: the input's 32
//     bytes as the ephemeral key, tagged with the network key, 2 raw: u8 length and bytes, 3
//     honest but tagged with another network key;
//   bits 2-3, message 4 (after an honest hello): 0 honest, signed by the chosen identity, 1 the
//     input's 64-byte signature, boxed with the right key, 2 raw: u8 length and bytes, 3 honest
//     but boxed under message 3's key; bit 4: the authorize hook refuses the server's key;
//   bit 5: kRawStream.
//
// Invariants, beyond "no crash, no leak, no hang":
//   * the handshake never throws and fails only with Malformed, Denied or Disconnected;
//   * a refusing hook stops it before anything is written (Denied); otherwise it writes message 1
//     first (64 bytes, tagged with the network key), then message 3 (112 bytes) exactly when the
//     server's hello is tagged with the network key and its ephemeral key is usable, and nothing
//     else;
//   * message 3 opens under sha256(N ‖ ab ‖ aB) to the client's signature (over N ‖ B ‖
//     sha256(ab)) and its key;
//   * the outcome is the one the spec gives, computed here: Denied for another network key, a
//     message 4 that does not open or a signature that is not the pinned server's; Malformed for a
//     low-order ephemeral key; Disconnected when the bytes end first; else success, naming the
//     pinned server's key;
//   * after success the session's keys are the spec's: the channel reads exactly what
//     referenceBoxReceive reads from the server's packets sealed towards the client (and fails
//     the same way, every time after), and what it sends reads back, under the keys towards the
//     server, as the frames sent.
#include <string>

#include "core_fuzz_support.h"

namespace portcullis::fuzz {
namespace {

constexpr const char* kTarget = "shs_client_fuzz";
constexpr std::size_t kChannelLimit = 64u << 10;

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

enum Flags : std::uint8_t {
  kHelloMask = 0x03,
  kAcceptShift = 2,
  kRefuse = 0x10,
  kRawStream = 0x20,
};
enum Hello : std::uint8_t { kHonestHello = 0, kTaggedKey = 1, kRawHello = 2, kOtherNetwork = 3 };
enum Accept : std::uint8_t { kHonestAccept = 0, kFuzzedAccept = 1, kRawAccept = 2, kWrongBox = 3 };

struct Prediction {
  bool known = false;
  bool success = false;
  Errc code = Errc::Disconnected;
};

struct Run {
  std::uint8_t flags = 0;
  const TestIdentity* signer = nullptr;
  Key32 taggedKey{};
  Bytes rawHello;
  std::array<std::uint8_t, 64> fuzzedSig{};
  Bytes rawAccept;

  Bytes msg1, msg2;
  std::optional<Key32> ab, aB;
  std::optional<Key32> acceptKey;
  Prediction predicted;

  Hello hello() const { return static_cast<Hello>(flags & kHelloMask); }
  Accept accept() const { return static_cast<Accept>((flags >> kAcceptShift) & 3); }

  void failWith(Errc code) {
    predicted.known = true;
    predicted.success = false;
    predicted.code = code;
  }
  void succeed() {
    predicted.known = true;
    predicted.success = true;
  }

  // Message 2, after the client's message 1 (in `written`).
  Bytes secondMessage(const Bytes& written) {
    const ShsTestKeys& k = shsKeys();
    check(written.size() == kShsHelloBytes && shsHelloVerifies(k.network, written),
          "the client's first write is not a hello tagged with the network key");
    msg1 = written;
    switch (hello()) {
      case kHonestHello: {
        const auto m = shsHello(k.network, k.serverEphemeralPk);
        msg2.assign(m.begin(), m.end());
        break;  // decided by message 4
      }
      case kTaggedKey: {
        const auto m = shsHello(k.network, taggedKey);
        msg2.assign(m.begin(), m.end());
        if (taggedKey == k.serverEphemeralPk) break;  // the honest hello after all
        if (lowOrder(taggedKey)) {
          failWith(Errc::Malformed);
        } else {
          failWith(accept() == kRawAccept && rawAccept.size() < kShsAcceptBytes ? Errc::Disconnected
                                                                                : Errc::Denied);
        }
        break;
      }
      case kRawHello:
        msg2 = rawHello;
        if (rawHello.size() < kShsHelloBytes) {
          failWith(Errc::Disconnected);
        } else if (!shsHelloVerifies(k.network, ByteView(rawHello).first(kShsHelloBytes))) {
          failWith(Errc::Denied);
        }
        break;
      case kOtherNetwork: {
        const auto m = shsHello(k.otherNetwork, k.serverEphemeralPk);
        msg2.assign(m.begin(), m.end());
        failWith(Errc::Denied);
        break;
      }
    }
    return msg2;
  }

  // Message 4, after the client's message 3 (the bytes it wrote after message 1).
  Bytes fourthMessage(const Bytes& written) {
    const ShsTestKeys& k = shsKeys();
    check(written.size() == kShsHelloBytes + kShsAuthenticateBytes,
          "the client wrote other than message 3 after the server's hello");
    if (hello() != kHonestHello) {
      return accept() == kRawAccept ? rawAccept : Bytes(kShsAcceptBytes, 0);
    }
    const ByteView clientEph = ByteView(msg1).subspan(32, 32);
    ab = x25519(k.serverEphemeralSk, clientEph);
    aB = x25519(k.server.curveSk, clientEph);
    check(ab && aB, "the client's ephemeral key is of low order");
    const Key32 abHash = sha256({*ab});
    const auto plain =
        openZeroNonce(ByteView(written).subspan(kShsHelloBytes), sha256({k.network, *ab, *aB}));
    check(plain && plain->size() == 96, "the client's message 3 does not open");
    const ByteView sigA = ByteView(*plain).first(64);
    const ByteView clientPk = ByteView(*plain).subspan(64);
    check(std::equal(clientPk.begin(), clientPk.end(), k.client.pk.begin()),
          "message 3 names another key than the client's");
    Bytes signed3;
    putBytes(signed3, k.network);
    putBytes(signed3, k.server.pk);
    putBytes(signed3, abHash);
    check(ed25519Verifies(sigA, signed3, clientPk), "the client's signature does not verify");

    const auto Ab = x25519(k.serverEphemeralSk, k.client.curvePk);
    check(Ab.has_value(), "Ab is of low order");
    acceptKey = sha256({k.network, *ab, *aB, *Ab});
    Bytes signed4;
    putBytes(signed4, k.network);
    putBytes(signed4, *plain);
    putBytes(signed4, abHash);
    auto honest = [&](const TestIdentity& id) {
      return secretboxZeroNonce(ed25519Sign(signed4, id.sk), *acceptKey);
    };
    switch (accept()) {
      case kHonestAccept:
        if (signer == &k.server) {
          succeed();
        } else {
          failWith(Errc::Denied);
        }
        return honest(*signer);
      case kFuzzedAccept:
        if (ed25519Verifies(fuzzedSig, signed4, k.server.pk)) {
          succeed();
        } else {
          failWith(Errc::Denied);
        }
        return secretboxZeroNonce(fuzzedSig, *acceptKey);
      case kRawAccept: {
        const Bytes right = honest(k.server);
        if (rawAccept.size() < kShsAcceptBytes) {
          failWith(Errc::Disconnected);
        } else if (std::equal(right.begin(), right.end(), rawAccept.begin())) {
          succeed();
        } else {
          failWith(Errc::Denied);
        }
        return rawAccept;
      }
      case kWrongBox:
        failWith(Errc::Denied);
        return secretboxZeroNonce(ed25519Sign(signed4, k.server.sk), sha256({k.network, *ab, *aB}));
    }
    return {};
  }
};

void checkSession(Run& run, const std::shared_ptr<Script>& script,
                  const std::shared_ptr<ScriptedStream>& stream, ShsSession session, Reader& rest,
                  std::uint8_t sends) {
  const ShsTestKeys& k = shsKeys();
  const std::size_t handshakeBytes = kShsHelloBytes + kShsAuthenticateBytes;
  check(script->written.size() == handshakeBytes,
        "a successful handshake wrote other than messages 1 and 3");
  check(session.remotePublicKey.bytes() == k.server.pk,
        "the session names another key than the pinned server's");
  if (!run.acceptKey) return;  // a replayed raw hello: no keys to check with
  const ShsDirections dirs =
      shsDirections(*run.acceptKey, k.server.pk, k.client.pk, run.msg2, run.msg1);

  asio::io_context ctx;
  auto channel = makeBoxStreamChannel(std::make_unique<SharedStream>(stream), std::move(session),
                                      kChannelLimit);
  static constexpr std::size_t kSizes[] = {4097, 1, 4};
  checkBoxChannel(kTarget, ctx, *channel, *script, handshakeBytes, dirs.toServer, dirs.toClient,
                  kSizes, 0xD0, sends, (run.flags & kRawStream) != 0, rest, kChannelLimit);
}

void run(ByteView input) {
  DeterministicRandom::reset();
  Reader r(input);
  Run run;
  run.flags = r.byte();
  const std::uint8_t chunks = r.byte();
  run.signer = &identityByIndex(r.byte());
  const std::uint8_t sends = r.byte() % 4;
  if (run.hello() == kTaggedKey) run.taggedKey = r.fixedOrZero<32>();
  if (run.hello() == kRawHello) {
    const ByteView raw = r.take(r.byte());
    run.rawHello.assign(raw.begin(), raw.end());
  }
  if (run.accept() == kFuzzedAccept) run.fuzzedSig = r.fixedOrZero<64>();
  if (run.accept() == kRawAccept) {
    const ByteView raw = r.take(r.byte());
    run.rawAccept.assign(raw.begin(), raw.end());
  }

  const ShsTestKeys& k = shsKeys();
  auto script = std::make_shared<Script>();
  script->sizer = ChunkSizer(chunks);
  std::size_t step = 0;
  script->next = [&run, &step, raw = script.get()]() -> std::optional<Bytes> {
    switch (step++) {
      case 0:
        return run.secondMessage(raw->written);
      case 1:
        // A short raw hello is all the server sends: the client waits for the rest, in vain.
        if (run.hello() == kRawHello && run.rawHello.size() < kShsHelloBytes) return std::nullopt;
        return run.fourthMessage(raw->written);
      default:
        return std::nullopt;
    }
  };
  auto stream = std::make_shared<ScriptedStream>(script);
  stream->setDialedAddress("net:sync.example:7420~shs:" + toHex(k.server.pk));
  static const NetworkKey network = *NetworkKey::fromBytes(k.network);
  static const DeviceKey identity = deviceKeyOf(k.client);
  const ShsConfig config{.networkKey = network, .identity = identity};
  std::size_t asked = 0;
  std::function<bool(const PublicKey&)> authorize = [&](const PublicKey& key) {
    ++asked;
    check(key.bytes() == k.server.pk, "authorize was asked about another key than the pinned one");
    return (run.flags & kRefuse) == 0;
  };

  asio::io_context ctx;
  auto result = runToEnd(ctx, shsHandshake(*stream, Side::Dialer, config, authorize));
  check(result.has_value(), "the handshake did not complete on a stream that never waits");
  check(asked == 1, "authorize was not asked exactly once, before anything else");
  if (run.flags & kRefuse) {
    check(
        !*result && result->error().code() == Errc::Denied && script->written.empty() && step == 0,
        "a refused server key did not stop the dialer before it wrote anything");
    return;
  }
  const Bytes& written = script->written;
  check(
      written.size() == kShsHelloBytes || written.size() == kShsHelloBytes + kShsAuthenticateBytes,
      "the client wrote other than message 1 and message 3");
  const bool sentThird = written.size() == kShsHelloBytes + kShsAuthenticateBytes;
  if (run.hello() == kHonestHello || run.hello() == kTaggedKey) {
    const bool usable = run.hello() == kHonestHello || !lowOrder(run.taggedKey);
    check(sentThird == usable,
          "message 3 was not sent exactly when the hello was tagged and its key usable");
  }
  if (run.hello() == kOtherNetwork) check(!sentThird, "message 3 was sent to another network");

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
  checkSession(run, script, stream, std::move(**result), r, sends);
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("shs_client_fuzz", "sodium_init failed");
  portcullis::fuzz::DeterministicRandom::install();
  (void)portcullis::fuzz::shsKeys();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("shs_client_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
