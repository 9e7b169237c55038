// Fuzz target: the team handshake's responder (providers/team/handshake.h's runResponder, the
// team protocol §6.1) reading a fuzzed initiator's m1, m3 and Status frame, then the AEAD
// channel after it (aead_channel.h) reading one session frame.
//
// handshake.cc has no parse helpers: m1, c3 and the Status frame are parsed only inside
// runResponder, over a Stream. The target therefore runs the real runResponder on a fresh
// io_context over an in-memory Stream whose reads never wait: each time the responder has read
// everything it was given and wants more, the stream hands it the input's next chunk (the input's
// framing is in team_session_fuzz_support.h), and after the last chunk it reads end of stream.
// Nothing ever waits for time, so the run ends when the input is used up (the 10 s deadline never
// fires; the target asserts it did not). libsodium's randombytes is replaced by a deterministic
// generator, reset for every input, so that a finding replays exactly (the responder's E_R is the
// same in every run).
//
// The fuzzed peer can play a real initiator: when m1's E_I is handshakeKeys().ephemeralPk the
// target knows its secret, so after reading m2 it derives the keys as §6.1 says (h0..h3, hk, tk)
// and seals the input's Claim_I, Status and session frame; with kResign it signs Claim_I over h2
// with the initiator device's key. That takes mutated claims, statuses and frames past the AEAD
// and the signature check to the decoders and the judge.
//
// Invariants, beyond "no crash, no leak, no hang":
//   * runResponder never throws; it fails only with Malformed, Overloaded, Denied, Disconnected
//     or Unsupported, and never with the deadline;
//   * it writes nothing unless the m1 it read (the bytes read before its first write) is "PCT3" ‖
//     mode 0 or 1 ‖ tag or prefix ‖ E_I of the mode's exact size that the lookups map to exactly
//     one team; conversely, when chunk 1 holds such an m1 with handshakeKeys().ephemeralPk as E_I,
//     it writes m2; with kReflect applied it writes nothing;
//   * what it writes is m2 (at most kMaxM2Bytes) and at most one Status frame;
//   * its m2 is E_R ‖ c2, c2 opening under hk_R with ad h1 to a Claim_R that decodes as Claim_R
//     and names the team m1 named, the responder's deviceId and kind, a valid signature over
//     "portcullis/team/v3/responder" ‖ h1, and in mode 1 the first kMaxOffers of
//     invitationsFor's offers (none in mode 0);
//   * unless the peer sealed m3 and the responder read it aligned (right after m1), the
//     handshake fails and the judge is never asked;
//   * when it did: the outcome is the one §6.1 and handshake.h give for that Claim_I, computed
//     here independently: Overloaded for an m3 over kMaxM3Bytes; decodeClaim's error (Malformed,
//     the same message); Denied for a reflected deviceId or a bad signature, after sending
//     denied(reflection) or denied(badSignature); else the Status sent is denied(unknownDevice)
//     for an Unknown kind or an invitee in the wrong mode and the judge's answer otherwise (the
//     judge is asked exactly then, with the decoded Claim_I and the mode, team, h1 and h2); the
//     responder's Status frame opens under tk_R (counter 0) to that Status; the peer's Status
//     frame is refused as Overloaded (over 1 KiB), Malformed (does not decode, or not a Status),
//     or becomes `received`; a result has the mode, team, h3 and peer claim, and a stream
//     exactly when neither side denied;
//   * after the responder sent proveAdmission (§6.2; it holds no proof and verifies nothing):
//     asked to prove in turn, it fails Denied writing nothing more; else the peer's session frame
//     is read as the §6.2 frame: a Proof is answered denied(unknownDevice) under tk_R, counter 1
//     (the result carries it, with no stream), anything else fails the handshake;
//   * on a stream: the AEAD channel over takeKeys() (frame limit 64 KiB) returns the peer's
//     frame sealed under tk_I, counter 1, exactly as it was sealed, or refuses it as Overloaded
//     only when it is over the limit; its first sent frame opens under tk_R, counter 1; a
//     received frame goes through decodeMessage (no crash, Malformed only).
#include <sodium.h>

#include <chrono>
#include <exception>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "aead_channel.h"
#include "handshake.h"
#include "portcullis/asio.h"
#include "portcullis/frame_length.h"
#include "team_session_fuzz_support.h"
#include "wire/session_codec.h"

namespace portcullis::team::fuzz {
namespace {

constexpr const char* kTarget = "team_handshake_fuzz";
constexpr std::string_view kTranscriptLabel = "portcullis/team/v3/hs";
constexpr std::string_view kResponderLabel = "portcullis/team/v3/responder";
constexpr std::string_view kInitiatorLabel = "portcullis/team/v3/initiator";
constexpr std::size_t kSessionFrameLimit = 64u << 10;

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

// --- deterministic randomness --------------------------------------------------------------------

std::uint64_t gRandomCalls = 0;
const char* rngName() { return "team_handshake_fuzz"; }
void rngBuf(void* const out, const std::size_t size) {
  std::array<unsigned char, randombytes_SEEDBYTES> seed{};
  seed.fill(0x5E);
  std::memcpy(seed.data(), &gRandomCalls, sizeof gRandomCalls);
  ++gRandomCalls;
  randombytes_buf_deterministic(out, size, seed.data());
}
std::uint32_t rngRandom() {
  std::uint32_t v = 0;
  rngBuf(&v, sizeof v);
  return v;
}
randombytes_implementation gRng = {rngName, rngRandom, nullptr, nullptr, rngBuf, nullptr};

// The E_R the responder draws first in every run (the generator is reset for each input).
EphemeralPublic gResponderEphemeral{};

// --- §6.1's derivations, as the initiator makes them ---------------------------------------------

ByteView viewOf(std::string_view s) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}
Hash h256(std::initializer_list<ByteView> parts) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  for (ByteView p : parts) crypto_generichash_update(&st, p.data(), p.size());
  Hash out{};
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}
using Key32 = std::array<std::uint8_t, 32>;
Key32 keyedHash(const Key32& key, std::string_view label, const Hash& h) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.data(), key.size(), 32);
  crypto_generichash_update(&st, viewOf(label).data(), label.size());
  crypto_generichash_update(&st, h.data(), h.size());
  Key32 out{};
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}
std::array<std::uint8_t, kAeadNonceBytes> nonceOf(std::uint64_t counter) {
  std::array<std::uint8_t, kAeadNonceBytes> n{};
  for (std::size_t i = 0; i < 8; ++i) n[i] = static_cast<std::uint8_t>(counter >> (8 * i));
  return n;
}
Bytes aeadSeal(const Key32& key, std::uint64_t counter, ByteView ad, ByteView plain) {
  const auto nonce = nonceOf(counter);
  Bytes out(plain.size() + kAeadFrameTagBytes);
  unsigned long long n = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &n, plain.data(), plain.size(),
                                             ad.data(), ad.size(), nullptr, nonce.data(),
                                             key.data());
  return out;
}
std::optional<Bytes> aeadOpen(const Key32& key, std::uint64_t counter, ByteView ad,
                              ByteView sealed) {
  if (sealed.size() < kAeadFrameTagBytes) return std::nullopt;
  const auto nonce = nonceOf(counter);
  Bytes out(sealed.size() - kAeadFrameTagBytes);
  unsigned long long n = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &n, nullptr, sealed.data(),
                                                 sealed.size(), ad.data(), ad.size(),
                                                 nonce.data(), key.data()) != 0) {
    return std::nullopt;
  }
  return out;
}
Bytes labelled(std::string_view label, const Hash& h) {
  Bytes m(viewOf(label).begin(), viewOf(label).end());
  putBytes(m, h);
  return m;
}
bool verifiesOver(std::string_view label, const Hash& h, const Claim& c) {
  const Bytes m = labelled(label, h);
  return crypto_sign_verify_detached(c.signature.data(), m.data(), m.size(),
                                     c.deviceId.data()) == 0;
}

// Splits `bytes` into u32 big-endian framed messages; a cut-off tail is returned as `rest`.
struct Framed {
  std::vector<Bytes> messages;
  Bytes rest;
};
Framed splitFramed(ByteView bytes) {
  Framed out;
  while (bytes.size() >= kFrameLengthBytes) {
    const std::size_t n = decodeFrameLength(bytes.first<kFrameLengthBytes>());
    if (bytes.size() - kFrameLengthBytes < n) break;
    out.messages.emplace_back(bytes.begin() + kFrameLengthBytes,
                              bytes.begin() + kFrameLengthBytes + n);
    bytes = bytes.subspan(kFrameLengthBytes + n);
  }
  out.rest.assign(bytes.begin(), bytes.end());
  return out;
}

// --- the responder's configuration, and the same lookups as a model ------------------------------

Lookup lookupOf(std::uint8_t flags) { return static_cast<Lookup>(flags & kLookupMask); }

std::optional<Hash> teamForTag(std::uint8_t flags, const Hash& tag, const EphemeralPublic& e) {
  switch (lookupOf(flags)) {
    case Lookup::Any: return handshakeTeam();
    case Lookup::None: return std::nullopt;
    case Lookup::Honest:
    case Lookup::Two: break;
  }
  if (teamTag(handshakeTeam(), e) == tag) return handshakeTeam();
  return std::nullopt;
}
std::vector<Hash> teamsForPrefix(std::uint8_t flags, const TeamPrefix& p) {
  switch (lookupOf(flags)) {
    case Lookup::Any: return {handshakeTeam()};
    case Lookup::None: return {};
    case Lookup::Two: return {handshakeTeam(), otherHandshakeTeam()};
    case Lookup::Honest: break;
  }
  if (prefixOf(handshakeTeam()) == p) return {handshakeTeam()};
  return {};
}
std::vector<Offer> offersFor(std::uint8_t flags) {
  const std::size_t n = (flags & kManyOffers) ? kMaxOffers + 1 : 1;
  std::vector<Offer> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i].pkTag = filledWith<16>(static_cast<std::uint8_t>(i));
    out[i].invitation = filledWith<32>(static_cast<std::uint8_t>(0x80 + i));
  }
  return out;
}
Status judgeAnswer(std::uint8_t flags) {
  switch ((flags & kJudgeMask) >> kJudgeShift) {
    case 0: return Status{Status::Kind::Ok, Reason::Unknown};
    case 1: return Status{Status::Kind::ProveAdmission, Reason::Unknown};
    case 2: return Status{Status::Kind::Denied, Reason::Removed};
    default: return Status{Status::Kind::Denied, Reason::NeedMember};
  }
}

// What a well-formed m1 (the whole framed message) names: its mode, E_I and the one team.
struct M1 {
  HandshakeMode mode = HandshakeMode::Member;
  EphemeralPublic e{};
  Hash team{};
};
std::optional<M1> modelM1(std::uint8_t flags, ByteView framed) {
  if (framed.size() < kFrameLengthBytes) return std::nullopt;
  const std::size_t n = decodeFrameLength(framed.first<kFrameLengthBytes>());
  if (framed.size() != kFrameLengthBytes + n || n > kMaxM1Bytes) return std::nullopt;
  const ByteView m1 = framed.subspan(kFrameLengthBytes);
  if (m1.size() < 5 || !std::equal(m1.begin(), m1.begin() + 4, "PCT3") || m1[4] > 1) {
    return std::nullopt;
  }
  M1 out;
  out.mode = static_cast<HandshakeMode>(m1[4]);
  const std::size_t field = out.mode == HandshakeMode::Member ? 32 : kTeamPrefixBytes;
  if (m1.size() != 5 + field + 32) return std::nullopt;
  std::copy_n(m1.end() - 32, 32, out.e.begin());
  if (out.mode == HandshakeMode::Member) {
    Hash tag{};
    std::copy_n(m1.begin() + 5, 32, tag.begin());
    const auto t = teamForTag(flags, tag, out.e);
    if (!t) return std::nullopt;
    out.team = *t;
  } else {
    TeamPrefix p{};
    std::copy_n(m1.begin() + 5, p.size(), p.begin());
    const auto teams = teamsForPrefix(flags, p);
    if (teams.size() != 1) return std::nullopt;
    out.team = teams.front();
  }
  return out;
}

// --- the fuzzed initiator ------------------------------------------------------------------------

struct Peer {
  std::uint8_t flags = 0;
  std::array<Bytes, 4> chunks;

  Bytes pending;
  std::size_t pendingAt = 0;
  Bytes delivered;  // every byte the responder read, in order
  Bytes written;    // every byte the responder wrote
  std::optional<std::size_t> readBeforeFirstWrite;
  std::size_t step = 0;
  bool closed = false;

  // Set when the peer could play the initiator (sealed m3).
  bool sealed = false;
  bool aligned = false;  // the responder asked for m3 right after reading m1
  M1 m1;
  Hash h1{}, h2{}, h3{};
  Key32 tkI{}, tkR{};
  Bytes claimI;  // the plaintext sealed in c3

  std::optional<Bytes> next() {
    switch (step++) {
      case 0: return chunks[0];
      case 1: return m3();
      case 2: return sealed ? framedBigEndian(aeadSeal(tkI, 0, {}, chunks[2])) : chunks[2];
      case 3: return sealed ? framedBigEndian(aeadSeal(tkI, 1, {}, chunks[3])) : chunks[3];
      default: return std::nullopt;
    }
  }

  Bytes m3() {
    if (!(flags & kSeal) || !readBeforeFirstWrite) return chunks[1];
    const ByteView m1Framed = ByteView(delivered).first(*readBeforeFirstWrite);
    const auto parsed = modelM1(flags, m1Framed);
    const auto& keys = handshakeKeys();
    if (!parsed || parsed->e != keys.ephemeralPk) return chunks[1];
    const Framed out = splitFramed(written);
    if (out.messages.empty() || out.messages[0].size() < 32 + kAeadFrameTagBytes) {
      return chunks[1];
    }
    const Bytes& m2 = out.messages[0];
    EphemeralPublic eR{};
    std::copy_n(m2.begin(), 32, eR.begin());
    Key32 kIR{}, kRI{};
    if (crypto_kx_client_session_keys(kRI.data(), kIR.data(), keys.ephemeralPk.data(),
                                      keys.ephemeralSk.data(), eR.data()) != 0) {
      return chunks[1];
    }
    m1 = *parsed;
    const Hash h0 = h256({viewOf(kTranscriptLabel), m1Framed});
    h1 = h256({h0, eR});
    const Key32 hkI = keyedHash(kIR, "hs", h1);
    const Key32 hkR = keyedHash(kRI, "hs", h1);
    const ByteView c2 = ByteView(m2).subspan(32);
    h2 = h256({h1, c2});
    checkClaimR(hkR, c2);

    claimI = chunks[1];
    const auto placeholder = signaturePlaceholder();
    const auto at = std::search(claimI.begin(), claimI.end(), placeholder.begin(),
                                placeholder.end());
    if ((flags & kResign) && at != claimI.end()) {
      const Bytes message = labelled(kInitiatorLabel, h2);
      crypto_sign_detached(&*at, nullptr, message.data(), message.size(),
                           keys.initiator.secretKey.data());
    }
    const Bytes c3 = aeadSeal(hkI, 0, h2, claimI);
    h3 = h256({h2, c3});
    tkI = keyedHash(kIR, "data", h3);
    tkR = keyedHash(kRI, "data", h3);
    sealed = true;
    aligned = delivered.size() == *readBeforeFirstWrite;
    return framedBigEndian(c3);
  }

  // The responder's Claim_R, as the initiator reads it.
  void checkClaimR(const Key32& hkR, ByteView c2) const {
    const auto plain = aeadOpen(hkR, 0, h1, c2);
    check(plain.has_value(), "c2 does not open under hk_R with ad h1");
    const auto claim = decodeClaim(*plain, ClaimRole::Responder);
    check(claim.has_value(), "the responder's Claim_R does not decode as Claim_R");
    check(claim->teamId == m1.team, "Claim_R names another team than m1's");
    check(claim->deviceId == handshakeKeys().responder.publicKey &&
              claim->kind == ClaimKind::Member,
          "Claim_R names another device or kind than the responder's");
    check(verifiesOver(kResponderLabel, h1, *claim), "Claim_R's signature does not verify");
    if (m1.mode == HandshakeMode::Member) {
      check(!claim->invitations, "a mode-0 Claim_R offers invitations");
    } else {
      auto offers = offersFor(flags);
      offers.resize(std::min(offers.size(), kMaxOffers));
      check(claim->invitations == offers, "a mode-1 Claim_R does not offer invitationsFor's");
    }
  }
};

class PeerStream final : public Stream {
 public:
  explicit PeerStream(std::shared_ptr<Peer> peer) : peer_(std::move(peer)) {}
  asio::awaitable<Result<std::size_t>> readSome(std::span<std::uint8_t> buf) override {
    Peer& p = *peer_;
    if (p.closed) co_return Error(Errc::Disconnected, "closed");
    while (p.pendingAt == p.pending.size()) {
      auto more = p.next();
      if (!more) co_return Error(Errc::Disconnected, "the peer hung up");
      p.pending = std::move(*more);
      p.pendingAt = 0;
    }
    const std::size_t n = std::min(buf.size(), p.pending.size() - p.pendingAt);
    std::copy_n(p.pending.begin() + static_cast<std::ptrdiff_t>(p.pendingAt), n, buf.begin());
    p.delivered.insert(p.delivered.end(), buf.begin(),
                       buf.begin() + static_cast<std::ptrdiff_t>(n));
    p.pendingAt += n;
    co_return n;
  }
  asio::awaitable<Result<void>> write(ByteView bytes) override {
    Peer& p = *peer_;
    if (p.closed) co_return Error(Errc::Disconnected, "closed");
    if (!p.readBeforeFirstWrite) p.readBeforeFirstWrite = p.delivered.size();
    p.written.insert(p.written.end(), bytes.begin(), bytes.end());
    co_return Result<void>();
  }
  void close() override { peer_->closed = true; }
  std::string remoteAddress() const override { return "fuzz"; }

 private:
  std::shared_ptr<Peer> peer_;
};

// --- running -------------------------------------------------------------------------------------

struct JudgeCall {
  Claim claim;
  HandshakeContext context;
};

asio::awaitable<Status> answer(Status s) { co_return s; }

template <typename T>
asio::awaitable<void> into(asio::awaitable<T> inner, std::optional<T>& out) {
  out.emplace(co_await std::move(inner));
}

// Runs `aw` on `ctx` until nothing is left to do; the value, or nullopt when it did not finish.
template <typename T>
std::optional<T> runToEnd(asio::io_context& ctx, asio::awaitable<T> aw) {
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(ctx, into(std::move(aw), out), [&](std::exception_ptr e) { error = e; });
  ctx.restart();
  ctx.run_for(std::chrono::seconds(5));
  if (error) std::rethrow_exception(error);
  return out;
}

// The responder's second message, its Status frame (counter 0 under tk_R), decoded.
Status responderStatus(const Peer& p) {
  const Framed out = splitFramed(p.written);
  check(out.messages.size() >= 2, "the responder wrote no Status frame after m2");
  const auto plain = aeadOpen(p.tkR, 0, {}, out.messages[1]);
  check(plain.has_value(), "the responder's Status frame does not open under tk_R");
  const auto m = decodeMessage(*plain, kMaxStatusFrameBytes);
  check(m.has_value() && std::holds_alternative<Status>(*m),
        "the responder's Status frame is not a Status");
  return std::get<Status>(*m);
}

void checkChannel(Peer& p, HandshakeResult& result, asio::io_context& ctx) {
  auto channel = makeAeadChannel(std::move(result.stream), result.takeKeys(), kSessionFrameLimit);
  const std::size_t writtenBefore = p.written.size();
  const Bytes ours = encodeMessage(Message(Status{Status::Kind::Ok, Reason::Unknown}));
  auto sent = runToEnd(ctx, channel->send(ours));
  check(sent.has_value() && sent->has_value(), "the channel does not send a frame");
  const Framed out = splitFramed(ByteView(p.written).subspan(writtenBefore));
  check(out.messages.size() == 1 && out.rest.empty(), "the channel wrote other than one frame");
  const auto opened = aeadOpen(p.tkR, 1, {}, out.messages[0]);
  check(opened.has_value() && *opened == ours,
        "the channel's first frame does not open under tk_R, counter 1");

  auto got = runToEnd(ctx, channel->receive());
  check(got.has_value(), "the channel's receive did not finish");
  if (*got) {
    check(**got == p.chunks[3], "the channel returns another frame than the peer sealed");
    const auto m = decodeMessage(**got, kSessionFrameLimit);
    if (!m) check(m.error().code() == Errc::Malformed, "decodeMessage failed with another Errc");
  } else {
    check(p.chunks[3].size() > kSessionFrameLimit && got->error().code() == Errc::Overloaded,
          "the channel refused a frame the peer sealed, other than as Overloaded over its limit");
  }
}

// §6.2 after the responder sent proveAdmission (it has no admission hooks here, so it proves
// nothing and verifies nothing): asked to prove in turn, it fails Denied at once; otherwise the
// peer's session frame is read as the §6.2 frame (bounded by 1 MiB): a Proof is answered
// denied(unknownDevice) under tk_R, counter 1, and the result carries that Status and no stream;
// anything else fails the handshake (Malformed, Overloaded, or the stream's end).
void checkProofPhase(const Peer& p, const Result<HandshakeResult>& result, const Status& received) {
  const Framed out = splitFramed(p.written);
  if (received.kind == Status::Kind::ProveAdmission) {
    check(!result && result.error().code() == Errc::Denied && out.messages.size() == 2,
          "a responder asked to prove with nothing to show did not fail Denied at once");
    return;
  }
  // The peer sealed chunk 4 under tk_I, counter 1 (its frame after its Status).
  const auto m = decodeMessage(p.chunks[3], kMaxProofBytes);
  const bool proof = p.chunks[3].size() + kAeadFrameTagBytes <= kMaxProofBytes && m &&
                     std::holds_alternative<Proof>(*m);
  if (!proof) {
    check(!result && out.messages.size() == 2,
          "a §6.2 frame that is not a Proof did not fail the handshake, or was answered");
    const Errc e = result.error().code();
    check(e == Errc::Malformed || e == Errc::Overloaded || e == Errc::Disconnected,
          "a §6.2 frame that is not a Proof failed with another Errc");
    return;
  }
  const Status unknown{Status::Kind::Denied, Reason::UnknownDevice};
  check(result.has_value() && result->sent == unknown && result->received == received &&
            !result->stream,
        "a Proof to a responder that verifies nothing did not end in denied(unknownDevice)");
  check(out.messages.size() == 3, "the responder's verdict on a Proof was not written");
  const auto verdict = aeadOpen(p.tkR, 1, {}, out.messages[2]);
  check(verdict.has_value(), "the responder's verdict does not open under tk_R, counter 1");
  const auto vm = decodeMessage(*verdict, kMaxStatusFrameBytes);
  check(vm && std::holds_alternative<Status>(*vm) && std::get<Status>(*vm) == unknown,
        "the responder's verdict is not denied(unknownDevice)");
}

void run(ByteView input) {
  gRandomCalls = 0;
  Reader in(input);
  const auto flags = in.tryByte();
  if (!flags) return;
  auto peer = std::make_shared<Peer>();
  peer->flags = *flags;
  for (Bytes& c : peer->chunks) {
    const auto n = in.tryU32();
    const ByteView b = in.take(n ? *n : 0);
    c.assign(b.begin(), b.end());
  }
  const auto& keys = handshakeKeys();

  // kReflect: E_I becomes the responder's own E_R, when chunk 1 holds a whole m1 with room for it.
  bool reflected = false;
  if ((*flags & kReflect) && peer->chunks[0].size() >= kFrameLengthBytes) {
    Bytes& c = peer->chunks[0];
    const std::size_t n = decodeFrameLength(ByteView(c).first<kFrameLengthBytes>());
    if (n >= 5 + 32 && c.size() >= kFrameLengthBytes + n) {
      std::copy(gResponderEphemeral.begin(), gResponderEphemeral.end(),
                c.begin() + static_cast<std::ptrdiff_t>(kFrameLengthBytes + n - 32));
      reflected = true;
    }
  }

  std::optional<JudgeCall> judged;
  ResponderConfig config;
  config.identity.deviceId = keys.responder.publicKey;
  config.identity.kind = ClaimKind::Member;
  config.identity.sign = [&keys](ByteView m) {
    Signature s{};
    crypto_sign_detached(s.data(), nullptr, m.data(), m.size(), keys.responder.secretKey.data());
    return s;
  };
  const std::uint8_t f = *flags;
  config.findTeamByTag = [f](const Hash& tag, const EphemeralPublic& e) {
    return teamForTag(f, tag, e);
  };
  config.findTeamsByPrefix = [f](const TeamPrefix& p) { return teamsForPrefix(f, p); };
  config.invitationsFor = [f](const Hash&) { return offersFor(f); };
  config.judge = [f, &judged](const Claim& c, const HandshakeContext& ctx) {
    check(!judged, "the judge was asked twice");
    judged = JudgeCall{c, ctx};
    return answer(judgeAnswer(f));
  };

  asio::io_context ctx;
  auto outcome = runToEnd(ctx, runResponder(std::make_unique<PeerStream>(peer), std::move(config)));
  check(outcome.has_value(), "runResponder did not finish though no read ever waits");
  Peer& p = *peer;
  Result<HandshakeResult>& result = *outcome;
  if (!result) {
    const Errc e = result.error().code();
    check(e == Errc::Malformed || e == Errc::Overloaded || e == Errc::Denied ||
              e == Errc::Disconnected || e == Errc::Unsupported,
          "runResponder failed with an unexpected Errc");
    check(result.error().message().find("deadline") == std::string::npos,
          "the deadline fired though no read ever waits");
  }

  // What was written, and the m1 it answered.
  const Framed out = splitFramed(p.written);
  if (!p.written.empty()) {
    check(p.readBeforeFirstWrite.has_value(), "written without a first write recorded");
    const auto m1 = modelM1(f, ByteView(p.delivered).first(*p.readBeforeFirstWrite));
    check(m1.has_value(), "the responder answered an m1 that is malformed or names no one team");
    check(!reflected, "the responder answered an m1 that reflects its ephemeral key");
    const std::size_t most = judgeAnswer(f).kind == Status::Kind::ProveAdmission ? 3 : 2;
    check(out.rest.empty() && !out.messages.empty() && out.messages.size() <= most,
          "the responder wrote other than m2, at most one Status frame and (§6.2) one verdict");
    check(out.messages[0].size() >= 32 + kAeadFrameTagBytes &&
              out.messages[0].size() <= kMaxM2Bytes,
          "the responder's m2 is out of bounds");
    if (out.messages.size() == 2) {
      check(out.messages[1].size() <= kMaxStatusFrameBytes + kAeadFrameTagBytes,
            "the responder's Status frame is out of bounds");
    }
  } else if (!reflected && p.chunks[0].size() >= kFrameLengthBytes) {
    const std::size_t n = decodeFrameLength(ByteView(p.chunks[0]).first<kFrameLengthBytes>());
    if (p.chunks[0].size() >= kFrameLengthBytes + n) {
      const auto m1 = modelM1(f, ByteView(p.chunks[0]).first(kFrameLengthBytes + n));
      check(!m1 || m1->e != keys.ephemeralPk,
            "the responder did not answer a well-formed m1 that names one team");
    }
  }

  if (!p.sealed || !p.aligned) {
    check(!result, "the handshake succeeded though the peer could not seal m3");
    check(!judged, "the judge was asked though the peer could not seal m3");
    return;
  }

  // The peer sealed m3 and the responder read it as m3: §6.1's outcome for this Claim_I.
  if (p.claimI.size() + kAeadFrameTagBytes > kMaxM3Bytes) {
    check(!result && result.error().code() == Errc::Overloaded,
          "an m3 over its bound is not refused as Overloaded");
    check(!judged, "the judge was asked about an m3 over its bound");
    return;
  }
  const auto claim = decodeClaim(p.claimI, ClaimRole::Initiator);
  if (!claim) {
    check(!result && result.error().code() == Errc::Malformed &&
              result.error().message() == claim.error().message(),
          "a Claim_I that does not decode does not fail the handshake with its reason");
    check(!judged, "the judge was asked about a Claim_I that does not decode");
    return;
  }
  std::optional<Reason> refused;
  if (claim->deviceId == keys.responder.publicKey) {
    refused = Reason::Reflection;
  } else if (!verifiesOver(kInitiatorLabel, p.h2, *claim)) {
    refused = Reason::BadSignature;
  }
  if (refused) {
    check(!result && result.error().code() == Errc::Denied,
          "a reflected or badly signed Claim_I does not fail the handshake as Denied");
    check(!judged, "the judge was asked about a reflected or badly signed Claim_I");
    check(responderStatus(p) == Status{Status::Kind::Denied, *refused},
          "the responder did not send denied(reflection) or denied(badSignature)");
    return;
  }

  const bool asked = claim->kind != ClaimKind::Unknown &&
                     (claim->kind == ClaimKind::Invitee) == (p.m1.mode == HandshakeMode::Invitee);
  const Status sent = asked ? judgeAnswer(f) : Status{Status::Kind::Denied, Reason::UnknownDevice};
  check(judged.has_value() == asked,
        "the judge was asked when it should not, or not asked when it should");
  if (judged) {
    check(judged->claim == *claim, "the judge got another claim than Claim_I");
    check(judged->context.mode == p.m1.mode && judged->context.teamId == p.m1.team &&
              judged->context.h1 == p.h1 && judged->context.h2 == p.h2,
          "the judge got another context than the handshake's");
  }
  check(responderStatus(p) == sent, "the responder's Status frame is not the Status it decided");

  // The peer's Status frame.
  std::optional<Status> received;
  Errc failure = Errc::Malformed;
  if (p.chunks[2].size() > kMaxStatusFrameBytes) {
    failure = Errc::Overloaded;
  } else if (const auto m = decodeMessage(p.chunks[2], kMaxStatusFrameBytes);
             m && std::holds_alternative<Status>(*m)) {
    received = std::get<Status>(*m);
  }
  if (!received) {
    check(!result && result.error().code() == failure,
          "a peer Status frame that is too large, malformed or not a Status is not refused");
    return;
  }
  if (sent.kind == Status::Kind::ProveAdmission && received->kind != Status::Kind::Denied) {
    checkProofPhase(p, result, *received);
    return;
  }
  check(result.has_value(), "a handshake the peer completed failed");
  HandshakeResult& r = *result;
  check(r.sent == sent && r.received == *received,
        "the result's statuses are not the exchanged ones");
  check(r.peer == *claim && r.mode == p.m1.mode && r.teamId == p.m1.team && r.h3 == p.h3,
        "the result's peer, mode, team or h3 is not the handshake's");
  const bool denied = sent.kind == Status::Kind::Denied || received->kind == Status::Kind::Denied;
  check((r.stream != nullptr) == !denied, "the result has a stream though a side denied, or none");
  if (r.stream) checkChannel(p, r, ctx);
}

}  // namespace
}  // namespace portcullis::team::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace portcullis::team::fuzz;
  randombytes_set_implementation(&gRng);
  if (sodium_init() < 0) fail(kTarget, "sodium_init failed");
  // The responder's first draw: its ephemeral key pair.
  gRandomCalls = 0;
  std::array<std::uint8_t, 32> sk{};
  crypto_kx_keypair(gResponderEphemeral.data(), sk.data());
  gRandomCalls = 0;
  (void)handshakeKeys();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    portcullis::team::fuzz::run(portcullis::ByteView(data, size));
  } catch (const std::exception& e) {
    portcullis::team::fuzz::fail("team_handshake_fuzz", std::string("threw: ") + e.what());
  } catch (...) {
    portcullis::team::fuzz::fail("team_handshake_fuzz", "threw a non-standard exception");
  }
  return 0;
}
