// The team handshake (team spec §6.1, §6.3's first paragraph) over a Stream, under a deadline.
#include "handshake.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <string_view>

#include "invitation.h"
#include "portcullis/frame_length.h"
#include "portcullis/logging.h"
#include "wire/session_codec.h"

namespace portcullis::team {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kMagic = "PCT3";
constexpr std::string_view kTeamTagLabel = "portcullis/team/v3/team-tag";
constexpr std::string_view kTranscriptLabel = "portcullis/team/v3/hs";
constexpr std::string_view kResponderLabel = "portcullis/team/v3/responder";
constexpr std::string_view kInitiatorLabel = "portcullis/team/v3/initiator";
constexpr std::string_view kHandshakeKeyLabel = "hs";
constexpr std::string_view kTransportKeyLabel = "data";
constexpr std::size_t kLengthBytes = kFrameLengthBytes;
constexpr std::size_t kEphemeralBytes = 32;
constexpr std::size_t kM1HeadBytes = kMagic.size() + 1;
constexpr std::size_t kM1MemberBytes = kM1HeadBytes + 32 + kEphemeralBytes;
constexpr std::size_t kM1InviteeBytes = kM1HeadBytes + kTeamPrefixBytes + kEphemeralBytes;

static_assert(kEphemeralBytes == crypto_kx_PUBLICKEYBYTES);
static_assert(crypto_kx_SESSIONKEYBYTES == 32);

ByteView viewOf(std::string_view s) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

// H256 (BLAKE2b-256), keyed when `key` is not empty, over the parts in order.
Hash h256(ByteView key, std::initializer_list<ByteView> parts) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.empty() ? nullptr : key.data(), key.size(), 32);
  for (ByteView p : parts) crypto_generichash_update(&st, p.data(), p.size());
  Hash out{};
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

SecretKey<32> secretHash(const SecretKey<32>& key, std::string_view label, const Hash& h) {
  SecretKey<32> out;
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.data(), key.size(), out.size());
  crypto_generichash_update(&st, viewOf(label).data(), label.size());
  crypto_generichash_update(&st, h.data(), h.size());
  crypto_generichash_final(&st, out.data(), out.size());
  secureWipe(&st, sizeof st);
  return out;
}

std::array<std::uint8_t, kAeadNonceBytes> nonceOf(std::uint64_t counter) {
  std::array<std::uint8_t, kAeadNonceBytes> n{};
  for (std::size_t i = 0; i < 8; ++i) n[i] = static_cast<std::uint8_t>(counter >> (8 * i));
  return n;
}

Bytes seal(const SecretKey<32>& key, ByteView ad, ByteView plain, std::uint64_t counter = 0) {
  const auto nonce = nonceOf(counter);
  Bytes out(plain.size() + kAeadFrameTagBytes);
  unsigned long long n = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &n, plain.data(), plain.size(),
                                             ad.data(), ad.size(), nullptr, nonce.data(),
                                             key.data());
  return out;
}

Result<Bytes> open(const SecretKey<32>& key, ByteView ad, ByteView ciphertext, const char* what,
                   std::uint64_t counter = 0) {
  if (ciphertext.size() < kAeadFrameTagBytes) {
    return Error(Errc::Malformed, std::string(what) + " is shorter than its tag");
  }
  const auto nonce = nonceOf(counter);
  Bytes out(ciphertext.size() - kAeadFrameTagBytes);
  unsigned long long n = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &n, nullptr, ciphertext.data(),
                                                 ciphertext.size(), ad.data(), ad.size(),
                                                 nonce.data(), key.data()) != 0) {
    return Error(Errc::Malformed, std::string(what) + " does not authenticate");
  }
  return out;
}

Bytes framed(ByteView payload) {
  Bytes out(kLengthBytes + payload.size());
  const auto length = encodeFrameLength(static_cast<std::uint32_t>(payload.size()));
  std::copy(length.begin(), length.end(), out.begin());
  std::copy(payload.begin(), payload.end(), out.begin() + kLengthBytes);
  return out;
}

// One length-prefixed handshake message: the length is checked against [minBytes, maxBytes]
// before anything is allocated for it.
asio::awaitable<Result<Bytes>> readMessage(Stream& stream, std::size_t minBytes,
                                           std::size_t maxBytes, const char* what) {
  std::array<std::uint8_t, kLengthBytes> length{};
  auto got = co_await readExactly(stream, length);
  if (!got) co_return got.error();
  const std::size_t n = decodeFrameLength(length);
  if (n > maxBytes) {
    co_return Error(Errc::Overloaded, std::string(what) + " announces " + std::to_string(n) +
                                          " bytes, over its bound of " + std::to_string(maxBytes));
  }
  if (n < minBytes) {
    co_return Error(Errc::Malformed, std::string(what) + " of " + std::to_string(n) +
                                         " bytes is too short");
  }
  Bytes out(n);
  got = co_await readExactly(stream, out);
  if (!got) co_return got.error();
  co_return out;
}

bool verifySignature(std::string_view label, const Hash& h, const Claim& claim) {
  Bytes message(viewOf(label).begin(), viewOf(label).end());
  message.insert(message.end(), h.begin(), h.end());
  return crypto_sign_verify_detached(claim.signature.data(), message.data(), message.size(),
                                     claim.deviceId.data()) == 0;
}

Signature signOver(const Signer& sign, std::string_view label, const Hash& h) {
  Bytes message(viewOf(label).begin(), viewOf(label).end());
  message.insert(message.end(), h.begin(), h.end());
  return sign(message);
}

Status denied(Reason r) { return Status{Status::Kind::Denied, r}; }


struct WatchState {
  WatchState(asio::any_io_executor ex, std::weak_ptr<Stream> s)
      : timer(std::move(ex)), stream(std::move(s)) {}
  asio::steady_timer timer;
  std::weak_ptr<Stream> stream;
  bool finished = false;
  bool fired = false;
};

// Closes the stream when the timer expires; a cancelled wait (a pause, a new expiry) waits again
// until the handshake is finished.
asio::awaitable<void> watch(std::shared_ptr<WatchState> s) {
  while (!s->finished) {
    boost::system::error_code ec;
    co_await s->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (s->finished) break;
    if (!ec) {
      s->fired = true;
      if (auto stream = s->stream.lock()) stream->close();
      break;
    }
  }
}

// The handshake's deadline: started on construction, finished on destruction.
class Deadline {
 public:
  Deadline(const asio::any_io_executor& ex, const std::shared_ptr<Stream>& stream,
           Clock::duration limit)
      : state_(std::make_shared<WatchState>(ex, stream)) {
    state_->timer.expires_after(limit);
    asio::co_spawn(ex, watch(state_), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        portcullis::log(LogLevel::Warn,
                        fmt::format("team handshake: the deadline watchdog failed: {}", x.what()));
      }
    });
  }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  ~Deadline() {
    state_->finished = true;
    state_->timer.cancel();
  }
  bool fired() const noexcept { return state_->fired; }
  void pause() {
    remaining_ = state_->timer.expiry() - Clock::now();
    state_->timer.expires_at(Clock::time_point::max());
  }
  void resume() { state_->timer.expires_after(std::max(remaining_, Clock::duration::zero())); }

 private:
  std::shared_ptr<WatchState> state_;
  Clock::duration remaining_{};
};

// The ephemeral pair and the secrets derived from it; wiped with the object.
struct Ephemeral {
  EphemeralPublic pk{};
  SecretKey<32> sk;
  Ephemeral() { crypto_kx_keypair(pk.data(), sk.data()); }
};

struct Secrets {
  SecretKey<32> kIR;
  SecretKey<32> kRI;
  SecretKey<32> hkI;
  SecretKey<32> hkR;
};

// Sends our Status under `tk` (counter 0), then reads the peer's under `tkPeer`.
asio::awaitable<Result<Status>> exchangeStatus(Stream& stream, const SecretKey<32>& tk,
                                               const SecretKey<32>& tkPeer, Status ours) {
  const Bytes plain = encodeMessage(Message(ours));
  const Bytes frame = framed(seal(tk, {}, plain));
  auto sent = co_await stream.write(frame);
  if (!sent) co_return sent.error();
  auto got = co_await readMessage(stream, kAeadFrameTagBytes,
                                  kMaxStatusFrameBytes + kAeadFrameTagBytes, "the Status frame");
  if (!got) co_return std::move(got).error();
  auto opened = open(tkPeer, {}, *got, "the Status frame");
  if (!opened) co_return std::move(opened).error();
  auto message = decodeMessage(*opened, kMaxStatusFrameBytes);
  if (!message) co_return std::move(message).error();
  if (const auto* status = std::get_if<Status>(&*message)) co_return *status;
  co_return Error(Errc::Malformed, "the first frame after m3 is not a Status");
}

// After we sent denied: waits (bounded by the deadline and a few bytes) for the peer to hang up
// on reading it, so that a transport which drops unread bytes on close (the memory network, a
// TCP reset) still delivers our reason.
asio::awaitable<void> linger(Stream& stream) {
  std::array<std::uint8_t, 256> sink{};
  for (std::size_t drained = 0; drained <= kMaxStatusFrameBytes + 2 * kLengthBytes;) {
    auto got = co_await stream.readSome(sink);
    if (!got) break;
    drained += *got;
  }
  stream.close();
}

// The error to return for `e`: the deadline's when it fired; the stream is closed either way.
Error failWith(Stream& stream, const Deadline& deadline, Error e) {
  stream.close();
  if (deadline.fired()) return Error(Errc::Disconnected, "the handshake deadline passed");
  return e;
}

// One §6.2 message under our transport key, at the next counter.
// (By value: the coroutine is lazy. Callers make it outside `co_await`: g++ 12 destroys
// temporaries inside it twice.)
asio::awaitable<Result<void>> sendProofMessage(Stream& stream, HandshakeResult& r,
                                               Message message) {
  const Bytes frame = framed(seal(r.sendKey, {}, encodeMessage(message), r.sendCounter++));
  co_return co_await stream.write(frame);
}

// At most kMaxProofLinks links of at most kMaxProofBytes in all, in order.
Proof boundedProof(std::vector<Bytes> links) {
  Proof p;
  std::size_t bytes = 0;
  for (Bytes& link : links) {
    if (p.links.size() == kMaxProofLinks || bytes + link.size() > kMaxProofBytes) break;
    bytes += link.size();
    p.links.push_back(std::move(link));
  }
  return p;
}

// §6.2 after the Status frames: we prove when the peer sent proveAdmission, we verify when we
// did; both at once when each is unknown to the other. Ends with the final statuses in `r` (a
// side that denies stops at once); errors for a peer that breaks the exchange.
asio::awaitable<Result<void>> proveAdmission(Stream& stream, HandshakeResult& r,
                                             const AdmissionHooks& hooks) {
  bool verifying = r.sent.kind == Status::Kind::ProveAdmission;
  bool proving = r.received.kind == Status::Kind::ProveAdmission;
  if (proving) {
    Proof proof = hooks.prove ? boundedProof(hooks.prove(r.teamId, {})) : Proof{};
    if (proof.links.empty()) {
      co_return Error(Errc::Denied, "asked to prove our admission, and no stored link "
                                    "introduces this device");
    }
    auto sending = sendProofMessage(stream, r, Message(std::move(proof)));
    auto sent = co_await std::move(sending);
    if (!sent) co_return sent.error();
  }
  std::vector<Bytes> links;  // the peer's proof so far
  std::size_t budget = kMaxProofBytes;  // all it may send before it is authorized
  while (verifying || proving) {
    auto frame = co_await readMessage(stream, kAeadFrameTagBytes, budget, "a §6.2 frame");
    if (!frame && verifying && links.empty()) {
      co_return Error(frame.error().code(), "unknownDevice: asked to prove its admission, it "
                                            "sent no proof (" + frame.error().message() + ")");
    }
    if (!frame) co_return std::move(frame).error();
    budget -= frame->size();
    auto plain = open(r.receiveKey, {}, *frame, "a §6.2 frame", r.receiveCounter++);
    if (!plain) co_return std::move(plain).error();
    auto message = decodeMessage(*plain, kMaxProofBytes);
    if (!message) co_return std::move(message).error();
    if (const auto* status = std::get_if<Status>(&*message)) {
      if (!proving || status->kind == Status::Kind::ProveAdmission) {
        co_return Error(Errc::Malformed, "a Status we did not wait for");
      }
      r.received = *status;
      proving = false;
      if (status->kind == Status::Kind::Denied) break;
    } else if (auto* proof = std::get_if<Proof>(&*message)) {
      if (!verifying) co_return Error(Errc::Malformed, "a Proof we did not ask for");
      const std::size_t before = links.size();
      for (Bytes& link : proof->links) {
        if (std::find(links.begin(), links.end(), link) == links.end()) {
          links.push_back(std::move(link));
        }
      }
      ProofStep step;
      if (links.size() > kMaxProofLinks) {
        step.verdict = denied(Reason::TooLarge);
      } else if (links.size() == before) {
        step.verdict = denied(Reason::UnknownDevice);  // a Need answered with nothing new
      } else if (hooks.verify) {
        auto verdict = hooks.verify(r.teamId, r.peer, links);
        step = co_await std::move(verdict);
      } else {
        step.verdict = denied(Reason::UnknownDevice);
      }
      if (!step.need.empty()) {
        auto sending = sendProofMessage(stream, r, Message(Need{std::move(step.need)}));
        auto sent = co_await std::move(sending);
        if (!sent) co_return sent.error();
        continue;
      }
      auto sending = sendProofMessage(stream, r, Message(step.verdict));
      auto sent = co_await std::move(sending);
      if (!sent) co_return sent.error();
      r.sent = step.verdict;
      verifying = false;
      if (step.verdict.kind == Status::Kind::Denied) break;
    } else if (const auto* need = std::get_if<Need>(&*message)) {
      if (!proving) co_return Error(Errc::Malformed, "a Need for a proof we did not send");
      Proof more = hooks.prove ? boundedProof(hooks.prove(r.teamId, need->hashes)) : Proof{};
      if (more.links.empty()) {
        co_return Error(Errc::Denied, "the peer needs links of our proof that we do not hold");
      }
      auto sending = sendProofMessage(stream, r, Message(std::move(more)));
      auto sent = co_await std::move(sending);
      if (!sent) co_return sent.error();
    } else {
      co_return Error(Errc::Malformed, "only Proof, Need and Status flow before both sides "
                                       "are authorized");
    }
  }
  co_return Result<void>{};
}

// Status frames and §6.2, then the result (stream and keys dropped when either side denied).
asio::awaitable<Result<HandshakeResult>> finish(std::unique_ptr<Stream> stream,
                                                const Deadline& deadline, HandshakeResult result,
                                                const AdmissionHooks& hooks) {
  auto peerStatus = co_await exchangeStatus(*stream, result.sendKey, result.receiveKey,
                                            result.sent);
  if (!peerStatus) co_return failWith(*stream, deadline, std::move(peerStatus).error());
  result.received = *peerStatus;
  if (result.sent.kind != Status::Kind::Denied && result.received.kind != Status::Kind::Denied &&
      (result.sent.kind == Status::Kind::ProveAdmission ||
       result.received.kind == Status::Kind::ProveAdmission)) {
    auto proved = co_await proveAdmission(*stream, result, hooks);
    if (!proved) co_return failWith(*stream, deadline, std::move(proved).error());
  }
  if (result.sent.kind == Status::Kind::Denied || result.received.kind == Status::Kind::Denied) {
    if (result.received.kind == Status::Kind::Denied) {
      stream->close();
    } else {
      co_await linger(*stream);
    }
    result.sendKey = SecretKey<kAeadKeyBytes>();
    result.receiveKey = SecretKey<kAeadKeyBytes>();
    co_return result;
  }
  result.stream = std::move(stream);
  co_return result;
}

}  // namespace

const char* reasonName(Reason r) {
  switch (r) {
    case Reason::WrongTeam: return "wrongTeam";
    case Reason::UnknownDevice: return "unknownDevice";
    case Reason::Removed: return "removed";
    case Reason::BadSignature: return "badSignature";
    case Reason::Reflection: return "reflection";
    case Reason::BadProof: return "badProof";
    case Reason::InvitationRevoked: return "invitationRevoked";
    case Reason::InvitationUsedUp: return "invitationUsedUp";
    case Reason::InvitationExpired: return "invitationExpired";
    case Reason::UserIdTaken: return "userIdTaken";
    case Reason::NeedMember: return "needMember";
    case Reason::Timeout: return "timeout";
    case Reason::TooLarge: return "tooLarge";
    case Reason::Unknown: break;
  }
  return "unknown";
}

Hash teamTag(const Hash& teamId, const EphemeralPublic& initiatorEphemeral) {
  return h256(teamId, {viewOf(kTeamTagLabel), initiatorEphemeral});
}

Signer signerFor(const DeviceKey& device) {
  const DeviceKey* key = &device;
  return [key](ByteView message) {
    Signature sig{};
    crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(),
                         key->secretKey().data());
    return sig;
  };
}

asio::awaitable<Result<HandshakeResult>> runInitiator(std::unique_ptr<Stream> owned,
                                                      InitiatorConfig config) {
  std::shared_ptr<Stream> shared(std::move(owned));
  auto stream = std::make_unique<SharedStream>(shared);
  Deadline deadline(co_await asio::this_coro::executor, shared, config.deadline);

  // m1
  Ephemeral e;
  Bytes m1(kMagic.begin(), kMagic.end());
  m1.push_back(static_cast<std::uint8_t>(config.mode));
  if (config.mode == HandshakeMode::Member) {
    const Hash tag = teamTag(config.teamId, e.pk);
    m1.insert(m1.end(), tag.begin(), tag.end());
  } else {
    m1.insert(m1.end(), config.prefix.begin(), config.prefix.end());
  }
  m1.insert(m1.end(), e.pk.begin(), e.pk.end());
  const Bytes m1Framed = framed(m1);
  auto done = co_await stream->write(m1Framed);
  if (!done) co_return failWith(*stream, deadline, done.error());
  const Hash h0 = h256({}, {viewOf(kTranscriptLabel), m1Framed});

  // m2
  auto m2 = co_await readMessage(*stream, kEphemeralBytes + kAeadFrameTagBytes, kMaxM2Bytes,
                                 "m2");
  if (!m2) co_return failWith(*stream, deadline, std::move(m2).error());
  EphemeralPublic eR{};
  std::copy_n(m2->begin(), kEphemeralBytes, eR.begin());
  if (sodium_memcmp(eR.data(), e.pk.data(), eR.size()) == 0) {
    co_return failWith(*stream, deadline, Error(Errc::Denied, "m2 reflects our ephemeral key"));
  }
  Secrets s;
  if (crypto_kx_client_session_keys(s.kRI.data(), s.kIR.data(), e.pk.data(), e.sk.data(),
                                    eR.data()) != 0) {
    co_return failWith(*stream, deadline,
                       Error(Errc::Malformed, "the responder's ephemeral key is of small order"));
  }
  e.sk = SecretKey<32>();
  const Hash h1 = h256({}, {h0, eR});
  s.hkI = secretHash(s.kIR, kHandshakeKeyLabel, h1);
  s.hkR = secretHash(s.kRI, kHandshakeKeyLabel, h1);
  const ByteView c2 = ByteView(*m2).subspan(kEphemeralBytes);
  auto claimBytes = open(s.hkR, h1, c2, "c2");
  if (!claimBytes) co_return failWith(*stream, deadline, std::move(claimBytes).error());
  const Hash h2 = h256({}, {h1, c2});
  auto claimR = decodeClaim(*claimBytes, ClaimRole::Responder);
  if (!claimR) co_return failWith(*stream, deadline, std::move(claimR).error());

  // Claim_R: nothing of ours has been revealed yet, so every failure just hangs up.
  if (claimR->deviceId == config.identity.deviceId) {
    co_return failWith(*stream, deadline, Error(Errc::Denied, "Claim_R reflects our deviceId"));
  }
  if (!verifySignature(kResponderLabel, h1, *claimR)) {
    co_return failWith(*stream, deadline,
                       Error(Errc::Denied, "Claim_R's signature does not verify"));
  }
  if (claimR->kind != ClaimKind::Member && claimR->kind != ClaimKind::Server) {
    co_return failWith(*stream, deadline, Error(Errc::Denied, "Claim_R is of no usable kind"));
  }
  HandshakeContext context{config.mode, *claimR->teamId, h1, h2};
  Claim claimI;
  Status ours;
  if (config.mode == HandshakeMode::Member) {
    if (*claimR->teamId != config.teamId) {
      co_return failWith(*stream, deadline, Error(Errc::Denied, "Claim_R names another team"));
    }
    ours = co_await config.judge(*claimR, context);
    claimI.kind = config.identity.kind;
  } else {
    const std::string base58 = base58Encode(*claimR->teamId);
    if (base58.size() < kTeamPrefixBytes ||
        !std::equal(config.prefix.begin(), config.prefix.end(), base58.begin())) {
      co_return failWith(*stream, deadline,
                         Error(Errc::Denied, "Claim_R's team does not match the prefix"));
    }
    deadline.pause();  // §10: the deadline does not count the invitee's Argon2id
    auto fields = co_await config.inviteeCheck(*claimR, h2);
    deadline.resume();
    if (!fields) {
      co_return failWith(*stream, deadline,
                         Error(Errc::Denied, "the invitee check refused: " +
                                                 fields.error().message()));
    }
    claimI = std::move(*fields);
    claimI.kind = ClaimKind::Invitee;
    ours = Status{Status::Kind::Ok, Reason::Unknown};
  }
  claimI.teamId.reset();
  claimI.invitations.reset();
  claimI.deviceId = config.identity.deviceId;
  claimI.signature = signOver(config.identity.sign, kInitiatorLabel, h2);
  const Bytes claimIBytes = encodeClaim(claimI);
  if (claimIBytes.size() > kMaxInitiatorClaimBytes) {
    co_return failWith(*stream, deadline, Error(Errc::Overloaded, "Claim_I is over its bound"));
  }

  // m3
  const Bytes c3 = seal(s.hkI, h2, claimIBytes);
  done = co_await stream->write(framed(c3));
  if (!done) co_return failWith(*stream, deadline, done.error());
  HandshakeResult result;
  result.mode = config.mode;
  result.teamId = *claimR->teamId;
  result.h3 = h256({}, {h2, c3});
  result.sendKey = secretHash(s.kIR, kTransportKeyLabel, result.h3);
  result.receiveKey = secretHash(s.kRI, kTransportKeyLabel, result.h3);
  s = Secrets();  // forward secrecy: nothing but the transport keys outlives h3
  result.peer = std::move(*claimR);
  result.sent = ours;
  // (No temporaries with destructors inside co_await: g++ 12 destroys them twice.)
  auto finishing = finish(std::move(stream), deadline, std::move(result), config.admission);
  co_return co_await std::move(finishing);
}

asio::awaitable<Result<HandshakeResult>> runResponder(std::unique_ptr<Stream> owned,
                                                      ResponderConfig config) {
  std::shared_ptr<Stream> shared(std::move(owned));
  auto stream = std::make_unique<SharedStream>(shared);
  const Deadline deadline(co_await asio::this_coro::executor, shared, config.deadline);

  // m1: every failure closes without a reply.
  auto m1 = co_await readMessage(*stream, kM1HeadBytes, kMaxM1Bytes, "m1");
  if (!m1) co_return failWith(*stream, deadline, std::move(m1).error());
  if (!std::equal(kMagic.begin(), kMagic.end(), m1->begin())) {
    co_return failWith(*stream, deadline, Error(Errc::Malformed, "m1 does not start with PCT3"));
  }
  const std::uint8_t modeByte = (*m1)[kMagic.size()];
  if (modeByte > static_cast<std::uint8_t>(HandshakeMode::Invitee)) {
    co_return failWith(*stream, deadline,
                       Error(Errc::Unsupported, "m1 asks for mode " + std::to_string(modeByte)));
  }
  const auto mode = static_cast<HandshakeMode>(modeByte);
  const std::size_t expected = mode == HandshakeMode::Member ? kM1MemberBytes : kM1InviteeBytes;
  if (m1->size() != expected) {
    co_return failWith(*stream, deadline,
                       Error(Errc::Malformed, "m1 of " + std::to_string(m1->size()) +
                                                  " bytes in mode " + std::to_string(modeByte)));
  }
  EphemeralPublic eI{};
  std::copy_n(m1->end() - kEphemeralBytes, kEphemeralBytes, eI.begin());
  Hash teamId{};
  if (mode == HandshakeMode::Member) {
    Hash tag{};
    std::copy_n(m1->begin() + kM1HeadBytes, tag.size(), tag.begin());
    auto found = config.findTeamByTag(tag, eI);
    if (!found) co_return failWith(*stream, deadline, Error(Errc::Denied, "m1 names no team of ours"));
    teamId = *found;
  } else {
    TeamPrefix prefix{};
    std::copy_n(m1->begin() + kM1HeadBytes, prefix.size(), prefix.begin());
    const auto teams = config.findTeamsByPrefix(prefix);
    if (teams.empty()) {
      co_return failWith(*stream, deadline, Error(Errc::Denied, "m1's prefix names no team"));
    }
    if (teams.size() > 1) {
      co_return failWith(*stream, deadline,
                         Error(Errc::Denied, "m1's prefix names two of our teams"));
    }
    teamId = teams.front();
  }
  const Bytes m1Framed = framed(*m1);
  const Hash h0 = h256({}, {viewOf(kTranscriptLabel), m1Framed});

  // m2
  Ephemeral e;
  if (sodium_memcmp(e.pk.data(), eI.data(), eI.size()) == 0) {
    co_return failWith(*stream, deadline, Error(Errc::Denied, "m1 reflects our ephemeral key"));
  }
  Secrets s;
  if (crypto_kx_server_session_keys(s.kIR.data(), s.kRI.data(), e.pk.data(), e.sk.data(),
                                    eI.data()) != 0) {
    co_return failWith(*stream, deadline,
                       Error(Errc::Malformed, "the initiator's ephemeral key is of small order"));
  }
  e.sk = SecretKey<32>();
  const Hash h1 = h256({}, {h0, e.pk});
  s.hkI = secretHash(s.kIR, kHandshakeKeyLabel, h1);
  s.hkR = secretHash(s.kRI, kHandshakeKeyLabel, h1);
  Claim claimR;
  claimR.teamId = teamId;
  claimR.kind = config.identity.kind;
  claimR.deviceId = config.identity.deviceId;
  claimR.signature = signOver(config.identity.sign, kResponderLabel, h1);
  if (mode == HandshakeMode::Invitee && config.invitationsFor) {
    auto offers = config.invitationsFor(teamId);
    if (offers.size() > kMaxOffers) offers.resize(kMaxOffers);
    if (!offers.empty()) claimR.invitations = std::move(offers);
  }
  const Bytes claimRBytes = encodeClaim(claimR);
  if (claimRBytes.size() > kMaxResponderClaimBytes) {
    co_return failWith(*stream, deadline, Error(Errc::Overloaded, "Claim_R is over its bound"));
  }
  const Bytes c2 = seal(s.hkR, h1, claimRBytes);
  Bytes m2(e.pk.begin(), e.pk.end());
  m2.insert(m2.end(), c2.begin(), c2.end());
  auto done = co_await stream->write(framed(m2));
  if (!done) co_return failWith(*stream, deadline, done.error());
  const Hash h2 = h256({}, {h1, c2});

  // m3
  auto c3 = co_await readMessage(*stream, kAeadFrameTagBytes, kMaxM3Bytes, "m3");
  if (!c3) co_return failWith(*stream, deadline, std::move(c3).error());
  auto claimBytes = open(s.hkI, h2, *c3, "c3");
  if (!claimBytes) co_return failWith(*stream, deadline, std::move(claimBytes).error());
  HandshakeResult result;
  result.mode = mode;
  result.teamId = teamId;
  result.h3 = h256({}, {h2, *c3});
  result.sendKey = secretHash(s.kRI, kTransportKeyLabel, result.h3);
  result.receiveKey = secretHash(s.kIR, kTransportKeyLabel, result.h3);
  s = Secrets();  // forward secrecy
  auto claimI = decodeClaim(*claimBytes, ClaimRole::Initiator);
  if (!claimI) co_return failWith(*stream, deadline, std::move(claimI).error());

  // Claim_I: the handshake's own checks answer denied and end it; the judge decides the rest.
  std::optional<Reason> refused;
  if (claimI->deviceId == config.identity.deviceId) {
    refused = Reason::Reflection;
  } else if (!verifySignature(kInitiatorLabel, h2, *claimI)) {
    refused = Reason::BadSignature;
  }
  if (refused) {
    const Bytes frame = framed(seal(result.sendKey, {}, encodeMessage(Message(denied(*refused)))));
    if (co_await stream->write(frame)) co_await linger(*stream);
    co_return failWith(*stream, deadline,
                       Error(Errc::Denied, std::string("Claim_I refused: ") +
                                               reasonName(*refused)));
  }
  const bool invitee = claimI->kind == ClaimKind::Invitee;
  if (claimI->kind == ClaimKind::Unknown || invitee != (mode == HandshakeMode::Invitee)) {
    result.sent = denied(Reason::UnknownDevice);
  } else {
    const HandshakeContext context{mode, teamId, h1, h2};
    result.sent = co_await config.judge(*claimI, context);
  }
  result.peer = std::move(*claimI);
  // (No temporaries with destructors inside co_await: g++ 12 destroys them twice.)
  auto finishing = finish(std::move(stream), deadline, std::move(result), config.admission);
  co_return co_await std::move(finishing);
}

}  // namespace portcullis::team
