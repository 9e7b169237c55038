// tests/fuzz/core_fuzz_support.h — what the core library's fuzz targets (tests/fuzz/*_fuzz.cc
// other than team_*) and their corpus generator share: a reader for framed inputs, the report of
// a broken invariant, a deterministic randombytes, an in-memory Stream that hands a scripted peer's
// bytes to the code under test in chunks the input chooses, a box-stream writer and a reference
// box-stream reader written from the spec (not from lib/src/crypto), the shs1 derivations the
// fuzzed peers use to play a real client or server, and a dump of a document's whole state.
//
// Test support only, for the fuzz targets, their replay tests and core_gen_corpus.cc. Call
// sodium_init before any of the functions. Single-threaded.
#pragma once

#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/document.h"
#include "portcullis/frame_length.h"
#include "portcullis/network_adapter.h"
#include "portcullis/result.h"
#include "portcullis/secret_handshake.h"
#include "portcullis/types.h"

#include "fuzz_input.h"

namespace portcullis::fuzz {

// --- input framing (Reader, put*, fail and require are fuzz_input.h's) ---------------------------

inline ByteView viewOf(std::string_view s) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}
inline std::string_view charsOf(ByteView b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

// The entry point's body: runs `run` and turns an escaping exception into a broken invariant
// (nothing the code under test does with hostile bytes may throw).
template <typename Run>
void guarded(const char* target, Run&& run) {
  try {
    run();
  } catch (const std::exception& e) {
    fail(target, std::string("threw: ") + e.what());
  } catch (...) {
    fail(target, "threw a non-standard exception");
  }
}

// --- deterministic randomness --------------------------------------------------------------------

// Replaces libsodium's randombytes with a generator that restarts at reset(), so that the
// ephemeral keys (and IDs) the code under test draws are the same in every run of an input and a
// finding replays exactly. Not for anything but tests.
class DeterministicRandom {
 public:
  static void install() {
    static randombytes_implementation impl = {name, random, nullptr, nullptr, buf, nullptr};
    randombytes_set_implementation(&impl);
    reset();
  }
  static void reset() { calls() = 0; }

 private:
  static std::uint64_t& calls() {
    static std::uint64_t n = 0;
    return n;
  }
  static const char* name() { return "portcullis-fuzz"; }
  static void buf(void* const out, const std::size_t size) {
    std::array<unsigned char, randombytes_SEEDBYTES> seed{};
    seed.fill(0x5F);
    const std::uint64_t n = calls()++;
    std::memcpy(seed.data(), &n, sizeof n);
    randombytes_buf_deterministic(out, size, seed.data());
  }
  static std::uint32_t random() {
    std::uint32_t v = 0;
    buf(&v, sizeof v);
    return v;
  }
};

// --- a scripted peer over an in-memory Stream ----------------------------------------------------

// How many bytes one readSome() hands over at most, from one input byte: 0 means "all that is
// pending"; otherwise a small deterministic sequence of sizes, so that reads are cut anywhere
// (inside a length, a header, a body). Only the first kCutReads reads are cut: every read is a
// few coroutine frames, and a long wire read a byte at a time would make the run slow.
class ChunkSizer {
 public:
  static constexpr std::size_t kCutReads = 2048;

  explicit ChunkSizer(std::uint8_t seed = 0) : seed_(seed), state_(seed * 2654435761u + 1) {}
  std::size_t next() {
    if (seed_ == 0 || reads_++ >= kCutReads) return SIZE_MAX;
    static constexpr std::size_t kMax[] = {1, 2, 5, 16, 33, 100, 1000, 4130};
    state_ = state_ * 1103515245u + 12345u;
    return 1 + (state_ >> 8) % kMax[seed_ % 8];
  }

 private:
  std::uint8_t seed_;
  std::uint32_t state_;
  std::size_t reads_ = 0;
};

// The other end of a ScriptedStream. `next` is asked for the peer's next bytes each time the code
// under test wants to read and has read everything given so far (it may look at `written` to
// answer); std::nullopt ends the stream. Nothing ever waits.
struct Script {
  std::function<std::optional<Bytes>()> next;
  ChunkSizer sizer;
  Bytes pending;
  std::size_t pendingAt = 0;
  Bytes delivered;  // every byte the code under test read, in order
  Bytes written;    // every byte it wrote
  std::optional<std::size_t> readBeforeFirstWrite;
  std::size_t writes = 0;
  bool closed = false;
};

class ScriptedStream final : public Stream {
 public:
  explicit ScriptedStream(std::shared_ptr<Script> script) : script_(std::move(script)) {}
  asio::awaitable<Result<std::size_t>> readSome(std::span<std::uint8_t> buf) override {
    Script& s = *script_;
    if (s.closed) co_return Error(Errc::Disconnected, "closed");
    while (s.pendingAt == s.pending.size()) {
      std::optional<Bytes> more = s.next ? s.next() : std::nullopt;
      if (!more) co_return Error(Errc::Disconnected, "the peer hung up");
      s.pending = std::move(*more);
      s.pendingAt = 0;
    }
    const std::size_t n = std::min({buf.size(), s.pending.size() - s.pendingAt, s.sizer.next()});
    std::copy_n(s.pending.begin() + static_cast<std::ptrdiff_t>(s.pendingAt), n, buf.begin());
    s.delivered.insert(s.delivered.end(), buf.begin(),
                       buf.begin() + static_cast<std::ptrdiff_t>(n));
    s.pendingAt += n;
    co_return n;
  }
  asio::awaitable<Result<void>> write(ByteView bytes) override {
    Script& s = *script_;
    if (s.closed) co_return Error(Errc::Disconnected, "closed");
    if (!s.readBeforeFirstWrite) s.readBeforeFirstWrite = s.delivered.size();
    s.written.insert(s.written.end(), bytes.begin(), bytes.end());
    ++s.writes;
    co_return Result<void>();
  }
  void close() override { script_->closed = true; }
  std::string remoteAddress() const override { return "fuzz"; }
  std::string dialedAddress() const override { return dialed_; }
  void setDialedAddress(std::string a) { dialed_ = std::move(a); }

 private:
  std::shared_ptr<Script> script_;
  std::string dialed_;
};

// A script that sends `bytes` once, then ends the stream.
inline std::function<std::optional<Bytes>()> sendOnce(Bytes bytes) {
  auto left = std::make_shared<std::optional<Bytes>>(std::move(bytes));
  return [left]() { return std::exchange(*left, std::nullopt); };
}

template <typename T>
asio::awaitable<void> storeInto(asio::awaitable<T> inner, std::optional<T>& out) {
  out.emplace(co_await std::move(inner));
}

// Runs `aw` on `ctx` until nothing is left to do; its value, or nullopt when it did not finish
// (a scripted stream never waits, so an unfinished awaitable is a hang). Rethrows what it threw.
template <typename T>
std::optional<T> runToEnd(asio::io_context& ctx, asio::awaitable<T> aw) {
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(ctx, storeInto(std::move(aw), out), [&](std::exception_ptr e) { error = e; });
  ctx.restart();
  ctx.run_for(std::chrono::seconds(5));
  if (error) std::rethrow_exception(error);
  return out;
}

// --- hashing and keys, as the shs1 spec writes them ----------------------------------------------

using Key32 = std::array<std::uint8_t, 32>;

inline Key32 sha256(std::initializer_list<ByteView> parts) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  for (ByteView p : parts) crypto_hash_sha256_update(&st, p.data(), p.size());
  Key32 out{};
  crypto_hash_sha256_final(&st, out.data());
  return out;
}

// X25519; nullopt for a low-order point (libsodium refuses an all-zero result).
inline std::optional<Key32> x25519(const Key32& secret, ByteView publicKey) {
  if (publicKey.size() != 32) return std::nullopt;
  Key32 out{};
  if (crypto_scalarmult(out.data(), secret.data(), publicKey.data()) != 0) return std::nullopt;
  return out;
}

// Whether X25519 refuses `point` (of low order). The verdict does not depend on the (clamped)
// scalar, so any one will do.
inline bool lowOrder(ByteView point) {
  Key32 scalar{};
  scalar.fill(0x42);
  return !x25519(scalar, point).has_value();
}

// A long-term Ed25519 key of a fixed test seed, with its Curve25519 halves.
struct TestIdentity {
  Key32 pk{};
  std::array<std::uint8_t, 64> sk{};
  Key32 curvePk{};
  Key32 curveSk{};
  Key32 seed{};
};
inline TestIdentity identityOf(std::uint8_t fill) {
  TestIdentity id;
  id.seed.fill(fill);
  crypto_sign_seed_keypair(id.pk.data(), id.sk.data(), id.seed.data());
  if (crypto_sign_ed25519_pk_to_curve25519(id.curvePk.data(), id.pk.data()) != 0) std::abort();
  crypto_sign_ed25519_sk_to_curve25519(id.curveSk.data(), id.sk.data());
  return id;
}
inline DeviceKey deviceKeyOf(const TestIdentity& id) {
  return std::move(DeviceKey::fromSeed(id.seed)).value();
}

// The fixed keys of the handshake targets: the network key, the server's and the client's
// long-term keys, a third device, and the fixed ephemeral secrets the fuzzed peers use.
struct ShsTestKeys {
  Key32 network{};
  Key32 otherNetwork{};
  TestIdentity server = identityOf(0xB5);
  TestIdentity client = identityOf(0xA5);
  TestIdentity other = identityOf(0xC5);
  Key32 clientEphemeralSk{};
  Key32 clientEphemeralPk{};
  Key32 serverEphemeralSk{};
  Key32 serverEphemeralPk{};
};
inline const ShsTestKeys& shsKeys() {
  static const ShsTestKeys keys = [] {
    ShsTestKeys k;
    k.network.fill(0x4E);
    k.otherNetwork.fill(0x4F);
    k.clientEphemeralSk.fill(0xAE);
    k.serverEphemeralSk.fill(0xBE);
    crypto_scalarmult_base(k.clientEphemeralPk.data(), k.clientEphemeralSk.data());
    crypto_scalarmult_base(k.serverEphemeralPk.data(), k.serverEphemeralSk.data());
    return k;
  }();
  return keys;
}
inline const TestIdentity& identityByIndex(std::uint8_t i) {
  const ShsTestKeys& k = shsKeys();
  switch (i % 3) {
    case 0:
      return k.client;
    case 1:
      return k.other;
    default:
      return k.server;
  }
}

// hmac(N, ephemeral) ‖ ephemeral: messages 1 and 2 (spec §2).
inline std::array<std::uint8_t, kShsHelloBytes> shsHello(const Key32& network, ByteView ephemeral) {
  std::array<std::uint8_t, kShsHelloBytes> m{};
  crypto_auth(m.data(), ephemeral.data(), ephemeral.size(), network.data());
  std::copy(ephemeral.begin(), ephemeral.end(), m.begin() + crypto_auth_BYTES);
  return m;
}
inline bool shsHelloVerifies(const Key32& network, ByteView hello) {
  return hello.size() == kShsHelloBytes &&
         crypto_auth_verify(hello.data(), hello.data() + crypto_auth_BYTES, 32, network.data()) ==
             0;
}
inline Bytes secretboxZeroNonce(ByteView plain, const Key32& key) {
  const std::uint8_t nonce[crypto_secretbox_NONCEBYTES] = {};
  Bytes out(plain.size() + crypto_secretbox_MACBYTES);
  crypto_secretbox_easy(out.data(), plain.data(), plain.size(), nonce, key.data());
  return out;
}
inline std::optional<Bytes> openZeroNonce(ByteView boxed, const Key32& key) {
  if (boxed.size() < crypto_secretbox_MACBYTES) return std::nullopt;
  const std::uint8_t nonce[crypto_secretbox_NONCEBYTES] = {};
  Bytes out(boxed.size() - crypto_secretbox_MACBYTES);
  if (crypto_secretbox_open_easy(out.data(), boxed.data(), boxed.size(), nonce, key.data()) != 0) {
    return std::nullopt;
  }
  return out;
}
inline bool ed25519Verifies(ByteView sig, ByteView message, ByteView pk) {
  return sig.size() == 64 && pk.size() == 32 &&
         crypto_sign_verify_detached(sig.data(), message.data(), message.size(), pk.data()) == 0;
}
inline std::array<std::uint8_t, 64> ed25519Sign(ByteView message,
                                                const std::array<std::uint8_t, 64>& sk) {
  std::array<std::uint8_t, 64> sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), sk.data());
  return sig;
}

// One box-stream direction's key and starting nonce.
struct BoxKeys {
  Key32 key{};
  ShsNonce nonce{};
};

// The two directions of a completed handshake (spec §3), from the message-4 box key
// sha256(N ‖ ab ‖ aB ‖ Ab): towards a side, sha256(sha256(that key) ‖ that side's long-term key),
// with the first 24 bytes of that side's hello tag as the nonce.
struct ShsDirections {
  BoxKeys toServer;
  BoxKeys toClient;
};
inline ShsDirections shsDirections(const Key32& acceptKey, ByteView serverPk, ByteView clientPk,
                                   ByteView serverHello, ByteView clientHello) {
  const Key32 s = sha256({acceptKey});
  ShsDirections d;
  d.toServer.key = sha256({s, serverPk});
  d.toClient.key = sha256({s, clientPk});
  std::copy_n(serverHello.begin(), d.toServer.nonce.size(), d.toServer.nonce.begin());
  std::copy_n(clientHello.begin(), d.toClient.nonce.size(), d.toClient.nonce.begin());
  return d;
}

// --- box-stream, from the spec (§4) --------------------------------------------------------------

inline void incrementNonce(ShsNonce& n) {
  for (std::size_t i = n.size(); i-- > 0;) {
    if (++n[i] != 0) break;
  }
}

// Writes box-stream packets in sequence: each a 34-byte header box (u16 big-endian length ‖ the
// body's tag) under nonce n and the body under n + 1; the goodbye is a header box of 18 zeros.
class BoxWriter {
 public:
  explicit BoxWriter(const BoxKeys& keys) : key_(keys.key), nonce_(keys.nonce) {}

  void packet(ByteView body) {
    std::uint8_t header[18];
    header[0] = static_cast<std::uint8_t>(body.size() >> 8);
    header[1] = static_cast<std::uint8_t>(body.size());
    ShsNonce bodyNonce = nonce_;
    incrementNonce(bodyNonce);
    Bytes cipher(body.size());
    crypto_secretbox_detached(cipher.data(), header + 2, body.data(), body.size(), bodyNonce.data(),
                              key_.data());
    begin();
    sealHeader(header);
    putBytes(wire_, cipher);
    nonce_ = bodyNonce;
    incrementNonce(nonce_);
  }
  // A header announcing `length` with `tag` as the body's tag, and no body.
  void headerOnly(std::uint16_t length, const std::array<std::uint8_t, 16>& tag) {
    std::uint8_t header[18];
    header[0] = static_cast<std::uint8_t>(length >> 8);
    header[1] = static_cast<std::uint8_t>(length);
    std::copy(tag.begin(), tag.end(), header + 2);
    begin();
    sealHeader(header);
    incrementNonce(nonce_);
    incrementNonce(nonce_);
  }
  void goodbye() {
    const std::uint8_t zeros[18] = {};
    begin();
    sealHeader(zeros);
    incrementNonce(nonce_);
  }
  // A frame as the channel sends it: one packet when it fits one (1 to 4096 bytes, not 4), else
  // a 4-byte packet holding its u32 big-endian length and its bytes in packets of 4096.
  void frame(ByteView bytes) {
    const bool fits = !bytes.empty() && bytes.size() != 4 && bytes.size() <= kBoxStreamMaxBodyBytes;
    if (fits) return packet(bytes);
    const auto length = encodeFrameLength(static_cast<std::uint32_t>(bytes.size()));
    packet(length);
    for (std::size_t at = 0; at < bytes.size(); at += kBoxStreamMaxBodyBytes) {
      packet(bytes.subspan(at, std::min(kBoxStreamMaxBodyBytes, bytes.size() - at)));
    }
  }
  void raw(ByteView bytes) {
    begin();
    putBytes(wire_, bytes);
  }
  // Flips bits of the last thing written (a packet or raw bytes).
  void tamper(std::size_t at, std::uint8_t mask) {
    const std::size_t n = wire_.size() - lastStart_;
    if (n == 0) return;
    wire_[lastStart_ + at % n] ^= static_cast<std::uint8_t>(mask | 1);
  }
  // Cuts up to `bytes` off the end of the last thing written.
  void truncate(std::size_t bytes) {
    wire_.resize(wire_.size() - std::min(bytes, wire_.size() - lastStart_));
  }

  const Bytes& wire() const { return wire_; }

 private:
  void begin() { lastStart_ = wire_.size(); }
  void sealHeader(const std::uint8_t (&plain)[18]) {
    std::uint8_t out[kBoxStreamHeaderBytes];
    crypto_secretbox_easy(out, plain, sizeof plain, nonce_.data(), key_.data());
    wire_.insert(wire_.end(), out, out + sizeof out);
  }

  Key32 key_;
  ShsNonce nonce_;
  Bytes wire_;
  std::size_t lastStart_ = 0;
};

// The box-stream records of an input, written with `w` until the input ends (at most kMaxBoxRecords
// records and about kMaxBoxWire bytes). Each record is an op byte (taken mod 8) and its fields:
//   0 packet: u16 length, then that many body bytes (what is left if fewer); an empty body is
//     skipped
//   1 frame: u16 length, u8 scale (length × 1, 16, 256 or 4096, at most kMaxBoxFrame), then up to
//     64 bytes that are repeated to fill the frame; sent as the channel sends a frame
//   2 length packet: a 4-byte packet announcing u32 bytes
//   3 goodbye
//   4 junk: u8 length and that many raw bytes
//   5 tamper: u16 offset, u8 mask: flips bits of the last packet or junk
//   6 header only: u16 announced length (any), 16 tag bytes, and no body
//   7 truncate: u16, bytes cut off the end of the last packet or junk
inline constexpr std::size_t kMaxBoxRecords = 64;
inline constexpr std::size_t kMaxBoxWire = 256u << 10;
inline constexpr std::size_t kMaxBoxFrame = 72u << 10;  // over the targets' 64 KiB limits
inline void writeBoxRecords(Reader& r, BoxWriter& w) {
  for (std::size_t n = 0; n < kMaxBoxRecords && !r.empty() && w.wire().size() < kMaxBoxWire; ++n) {
    switch (r.byte() % 8) {
      case 0: {
        const ByteView body = r.take(r.u16() % (kBoxStreamMaxBodyBytes + 1));
        if (!body.empty()) w.packet(body);
        break;
      }
      case 1: {
        static constexpr std::size_t kScale[] = {1, 16, 256, 4096};
        const std::size_t length =
            std::min(kMaxBoxFrame, std::size_t{r.u16()} * kScale[r.byte() % 4]);
        const ByteView fill = r.take(64);
        Bytes frame(length);
        for (std::size_t i = 0; i < length; ++i) {
          frame[i] = fill.empty() ? static_cast<std::uint8_t>(i * 7) : fill[i % fill.size()];
        }
        w.frame(frame);
        break;
      }
      case 2:
        w.packet(encodeFrameLength(r.u32()));
        break;
      case 3:
        w.goodbye();
        break;
      case 4:
        w.raw(r.take(r.byte()));
        break;
      case 5: {
        const std::uint16_t at = r.u16();
        w.tamper(at, r.byte());
        break;
      }
      case 6: {
        const std::uint16_t length = r.u16();
        w.headerOnly(length, r.fixedOrZero<16>());
        break;
      }
      default:
        w.truncate(r.u16());
        break;
    }
  }
}

// What a receiver makes of a box-stream wire: the frames it delivers, in order, and the error
// that ends them (every later receive gives the same one).
struct BoxReceived {
  std::vector<Bytes> frames;
  Errc end = Errc::Disconnected;
};

// The reference reader, straight from the spec and makeBoxStreamChannel's contract: a packet is a
// header box and its body; a 4-byte packet announces a frame that does not fit one packet, over
// `maxFrame` is Overloaded; anything that does not open, a length that fits one packet, a packet
// past the announced end or a goodbye inside a frame is Malformed; the goodbye between frames and
// the end of the stream anywhere are Disconnected.
inline BoxReceived referenceBoxReceive(ByteView wire, const BoxKeys& keys, std::size_t maxFrame) {
  BoxReceived out;
  ShsNonce nonce = keys.nonce;
  std::size_t at = 0;
  struct Packet {
    bool goodbye = false;
    Bytes body;
  };
  // One packet, or the error that ends the stream.
  auto next = [&]() -> std::variant<Packet, Errc> {
    if (wire.size() - at < kBoxStreamHeaderBytes) return Errc::Disconnected;
    std::uint8_t plain[18];
    if (crypto_secretbox_open_easy(plain, wire.data() + at, kBoxStreamHeaderBytes, nonce.data(),
                                   keys.key.data()) != 0) {
      return Errc::Malformed;
    }
    at += kBoxStreamHeaderBytes;
    if (sodium_is_zero(plain, sizeof plain)) return Packet{true, {}};
    const std::size_t length = std::size_t{plain[0]} << 8 | plain[1];
    if (length == 0 || length > kBoxStreamMaxBodyBytes) return Errc::Malformed;
    incrementNonce(nonce);
    if (wire.size() - at < length) return Errc::Disconnected;
    Packet p;
    p.body.resize(length);
    if (crypto_secretbox_open_detached(p.body.data(), wire.data() + at, plain + 2, length,
                                       nonce.data(), keys.key.data()) != 0) {
      return Errc::Malformed;
    }
    at += length;
    incrementNonce(nonce);
    return p;
  };
  for (;;) {
    auto first = next();
    if (auto* e = std::get_if<Errc>(&first)) {
      out.end = *e;
      return out;
    }
    Packet& p = std::get<Packet>(first);
    if (p.goodbye) {
      out.end = Errc::Disconnected;
      return out;
    }
    if (p.body.size() != kFrameLengthBytes) {
      out.frames.push_back(std::move(p.body));
      continue;
    }
    const std::size_t n = decodeFrameLength(std::span<const std::uint8_t, 4>(p.body.data(), 4));
    if (n != 0 && n != kFrameLengthBytes && n <= kBoxStreamMaxBodyBytes) {
      out.end = Errc::Malformed;
      return out;
    }
    if (n > maxFrame) {
      out.end = Errc::Overloaded;
      return out;
    }
    Bytes frame;
    while (frame.size() < n) {
      auto piece = next();
      if (auto* e = std::get_if<Errc>(&piece)) {
        out.end = *e;
        return out;
      }
      Packet& q = std::get<Packet>(piece);
      if (q.goodbye || q.body.size() > n - frame.size()) {
        out.end = Errc::Malformed;
        return out;
      }
      putBytes(frame, q.body);
    }
    out.frames.push_back(std::move(frame));
  }
}

// Receives from `channel` until it fails (at most `limit` frames), then once more: the frames,
// the error, and whether the second failure repeated the first one's code.
struct ChannelReceived {
  std::vector<Bytes> frames;
  std::optional<Error> end;
  bool sticky = true;
  bool finished = true;  // false: a receive did not complete (a hang)
};
template <typename Channel>
ChannelReceived receiveAll(asio::io_context& ctx, Channel& channel, std::size_t limit, bool again) {
  ChannelReceived out;
  while (out.frames.size() <= limit) {
    auto got = runToEnd(ctx, channel.receive());
    if (!got) {
      out.finished = false;
      return out;
    }
    if (!*got) {
      out.end = got->error();
      break;
    }
    out.frames.push_back(std::move(**got));
  }
  if (again && out.end) {
    auto second = runToEnd(ctx, channel.receive());
    out.sticky = second && !*second && second->error().code() == out.end->code();
  }
  return out;
}

// The channel half of the handshake targets, after a successful handshake: `sends` frames
// (sizes cycling through `sizes`, bytes from `fill` up) sent on `channel` must read back, under
// `outKeys`, from what the stream got after the handshake's `handshakeBytes`; then the peer's
// packets (box records from `rest` sealed under `inKeys`, or with `raw` the bytes left as they
// are) must read exactly as referenceBoxReceive reads them, and fail the same way every time.
template <typename Channel>
void checkBoxChannel(const char* target, asio::io_context& ctx, Channel& channel, Script& script,
                     std::size_t handshakeBytes, const BoxKeys& outKeys, const BoxKeys& inKeys,
                     std::span<const std::size_t> sizes, std::uint8_t fill, std::uint8_t sends,
                     bool raw, Reader& rest, std::size_t limit) {
  std::vector<Bytes> frames;
  for (std::uint8_t i = 0; i < sends; ++i) {
    frames.emplace_back(sizes[i % sizes.size()], static_cast<std::uint8_t>(fill + i));
    auto sent = runToEnd(ctx, channel.send(frames.back()));
    require(sent && *sent, target, "the channel does not send a frame");
  }
  const BoxReceived echoed =
      referenceBoxReceive(ByteView(script.written).subspan(handshakeBytes), outKeys, SIZE_MAX);
  require(echoed.frames == frames && echoed.end == Errc::Disconnected, target,
          "what the channel sends does not read back under the keys towards the peer");

  Bytes wire;
  if (raw) {
    const ByteView bytes = rest.rest();
    wire.assign(bytes.begin(), bytes.end());
  } else {
    BoxWriter writer(inKeys);
    writeBoxRecords(rest, writer);
    wire = writer.wire();
  }
  const BoxReceived expected = referenceBoxReceive(wire, inKeys, limit);
  script.next = sendOnce(wire);
  const ChannelReceived got = receiveAll(ctx, channel, expected.frames.size(), true);
  require(got.finished, target, "a receive did not complete on a stream that never waits");
  require(got.frames == expected.frames, target,
          "the channel read other frames than the reference reader under the keys towards us");
  require(got.end && got.end->code() == expected.end && got.sticky, target,
          "the channel ended with another error than the reference reader, or not every time");
}

// --- documents -----------------------------------------------------------------------------------

// Everything a reader can see of a document, as text: every object reachable from the root, each
// map key and list element with all its conflicting values (winner last), object IDs, counters'
// values, texts. Two documents with the same dump read the same through every read API.
inline void dumpValue(const Document& doc, const Value& v, std::string& out, unsigned depth);
inline void dumpObject(const Document& doc, const ObjId& id, std::string& out, unsigned depth) {
  const auto type = doc.objectType(id);
  if (!type) {
    out += "<missing>";
    return;
  }
  if (depth > 200) {  // the document bounds nesting at 100
    out += "<too deep>";
    return;
  }
  if (*type == ObjType::Map) {
    out += '{';
    for (const std::string& key : doc.keys(id)) {
      out += std::to_string(key.size());
      out += ':';
      out += key;
      out += '=';
      for (const Value& v : doc.getConflicts(id, key)) dumpValue(doc, v, out, depth + 1);
      out += ';';
    }
    out += '}';
    return;
  }
  out += *type == ObjType::List ? '[' : '<';
  const std::size_t n = doc.length(id);
  for (std::size_t i = 0; i < n; ++i) {
    for (const Value& v : doc.getConflicts(id, i)) dumpValue(doc, v, out, depth + 1);
    out += ',';
  }
  if (*type == ObjType::Text) out += "text:" + doc.text(id);
  out += *type == ObjType::List ? ']' : '>';
}
inline void dumpValue(const Document& doc, const Value& v, std::string& out, unsigned depth) {
  std::visit(
      [&](const auto& x) {
        using V = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<V, Null>) {
          out += "null";
        } else if constexpr (std::is_same_v<V, bool>) {
          out += x ? "true" : "false";
        } else if constexpr (std::is_same_v<V, std::int64_t>) {
          out += "i" + std::to_string(x);
        } else if constexpr (std::is_same_v<V, double>) {
          std::uint64_t bits = 0;
          std::memcpy(&bits, &x, sizeof bits);
          out += "f" + std::to_string(bits);
        } else if constexpr (std::is_same_v<V, std::string>) {
          out += "s" + std::to_string(x.size()) + ":" + x;
        } else if constexpr (std::is_same_v<V, Bytes>) {
          out += "b" + toHex(x);
        } else if constexpr (std::is_same_v<V, Counter>) {
          out += "c" + std::to_string(x.value);
        } else {
          out += "o" + x.id.toString() + "=";
          dumpObject(doc, x.id, out, depth);
        }
        out += ' ';
      },
      v);
}
inline std::string dumpDocument(const Document& doc) {
  std::string out;
  dumpObject(doc, ObjId::root(), out, 0);
  return out;
}

}  // namespace portcullis::fuzz
