// The team handshake (providers/team/handshake.h, spec §6.1 and §6.3's check) and its AEAD
// channel (aead_channel.h) over the in-process memory network: both modes, every reject path
// with one thing changed, the deadline, and the channel's frame rules.
#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "aead_channel.h"
#include "handshake.h"
#include "invitation.h"
#include "channel_test_support.h"
#include "memory_network.h"
#include "portcullis/asio.h"
#include "wire/link_codec.h"
#include "wire/session_codec.h"

namespace portcullis::team {
namespace {

using testing::PipePair;
using testing::start;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Passes writes through, flipping the byte at `flipAt` (counted over everything written) and
// closing after `cutAfter` bytes.
class BendingStream final : public Stream {
 public:
  BendingStream(std::unique_ptr<Stream> inner, std::optional<std::size_t> flipAt,
                std::optional<std::size_t> cutAfter)
      : inner_(std::move(inner)), flipAt_(flipAt), cutAfter_(cutAfter) {}
  asio::awaitable<Result<std::size_t>> readSome(std::span<std::uint8_t> buf) override {
    co_return co_await inner_->readSome(buf);
  }
  asio::awaitable<Result<void>> write(ByteView bytes) override {
    Bytes out(bytes.begin(), bytes.end());
    if (flipAt_ && *flipAt_ >= written_ && *flipAt_ < written_ + out.size()) {
      out[*flipAt_ - written_] ^= 0x01;
    }
    if (cutAfter_ && written_ + out.size() > *cutAfter_) {
      out.resize(*cutAfter_ - std::min(*cutAfter_, written_));
      written_ += out.size();
      if (!out.empty()) (void)co_await inner_->write(out);
      inner_->close();
      co_return Error(Errc::Disconnected, "cut");
    }
    written_ += out.size();
    co_return co_await inner_->write(out);
  }
  void close() override { inner_->close(); }
  std::string remoteAddress() const override { return inner_->remoteAddress(); }

 private:
  std::unique_ptr<Stream> inner_;
  std::optional<std::size_t> flipAt_;
  std::optional<std::size_t> cutAfter_;
  std::size_t written_ = 0;
};

Hash teamIdOf(std::uint8_t b) {
  Hash h{};
  h.fill(b);
  return h;
}

Key keyOf(const DeviceKey& d) { return d.publicKey().bytes(); }

asio::awaitable<Status> answer(Status s) { co_return s; }
Judge judgeWith(Status s) {
  return [s](const Claim&, const HandshakeContext&) { return answer(s); };
}
constexpr Status kOk{Status::Kind::Ok, Reason::Unknown};

asio::awaitable<Result<Claim>> inviteeFields(Result<Claim> fields) { co_return fields; }

Claim admissionFields() {
  Claim c;
  c.invitation = teamIdOf(9);
  EncKey enc{};
  SecretKey<32> encSecret;
  crypto_box_keypair(enc.data(), encSecret.data());
  c.encKey = enc;
  c.userId = "alice";
  c.proof = Signature{};
  c.consent = Signature{};
  c.inviteSig = Signature{};
  return c;
}

TeamPrefix prefixOf(const Hash& teamId) {
  const std::string b = base58Encode(teamId);
  TeamPrefix p{};
  std::copy_n(b.begin(), p.size(), p.begin());
  return p;
}

struct Fixture {
  DeviceKey initiatorKey = *DeviceKey::fromSeed(Bytes(32, 1));
  DeviceKey responderKey = *DeviceKey::fromSeed(Bytes(32, 2));
  Hash teamId = teamIdOf(7);
  std::vector<Hash> teams{teamIdOf(7)};

  InitiatorConfig initiator(HandshakeMode mode = HandshakeMode::Member) {
    InitiatorConfig c;
    c.identity = {keyOf(initiatorKey), ClaimKind::Member, signerFor(initiatorKey)};
    c.mode = mode;
    c.teamId = teamId;
    c.prefix = prefixOf(teamId);
    c.judge = judgeWith(kOk);
    c.inviteeCheck = [](const Claim& r, const Hash&) {
      if (!r.invitations) return inviteeFields(Error(Errc::Denied, "no invitations"));
      return inviteeFields(admissionFields());
    };
    return c;
  }
  ResponderConfig responder() {
    ResponderConfig c;
    c.identity = {keyOf(responderKey), ClaimKind::Member, signerFor(responderKey)};
    std::vector<Hash> known = teams;
    c.findTeamByTag = [known](const Hash& tag, const EphemeralPublic& e) -> std::optional<Hash> {
      for (const Hash& t : known) {
        if (teamTag(t, e) == tag) return t;
      }
      return std::nullopt;
    };
    c.findTeamsByPrefix = [known](const TeamPrefix& p) {
      std::vector<Hash> out;
      for (const Hash& t : known) {
        if (prefixOf(t) == p) out.push_back(t);
      }
      return out;
    };
    c.invitationsFor = [](const Hash&) { return std::vector<Offer>{Offer{PkTag{}, teamIdOf(9)}}; };
    c.judge = judgeWith(kOk);
    return c;
  }
};

using HsOutcome = std::shared_ptr<testing::Outcome<Result<HandshakeResult>>>;

struct Run {
  HsOutcome initiator;
  HsOutcome responder;
};

Run runBoth(PipePair& p, InitiatorConfig ic, ResponderConfig rc,
            std::unique_ptr<Stream> dialer = nullptr, std::unique_ptr<Stream> acceptor = nullptr) {
  Run r;
  r.responder = start(p.ctx, runResponder(acceptor ? std::move(acceptor)
                                                   : std::move(p.acceptorEnd),
                                          std::move(rc)));
  r.initiator = start(p.ctx, runInitiator(dialer ? std::move(dialer) : std::move(p.dialerEnd),
                                          std::move(ic)));
  EXPECT_TRUE(p.runUntil([&] { return r.initiator->done() && r.responder->done(); }));
  EXPECT_FALSE(r.initiator->error);
  EXPECT_FALSE(r.responder->error);
  return r;
}

Bytes bytesOf(const SecretKey<32>& k) { return Bytes(k.data(), k.data() + k.size()); }

Errc errcOf(const HsOutcome& o) {
  EXPECT_TRUE(o->done() && o->value);
  EXPECT_FALSE(o->value->has_value());
  return o->value->error().code();
}

asio::awaitable<Result<Bytes>> sendThenReceive(MessageChannel& a, MessageChannel& b, Bytes f) {
  auto sent = co_await a.send(f);
  if (!sent) co_return sent.error();
  co_return co_await b.receive();
}

asio::awaitable<Result<void>> writeRaw(Stream& s, Bytes b) { co_return co_await s.write(b); }
asio::awaitable<Result<Bytes>> readN(Stream& s, std::size_t n) {
  Bytes out(n);
  auto got = co_await readExactly(s, out);
  if (!got) co_return got.error();
  co_return out;
}

Bytes be32(std::uint32_t n) {
  return {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
          static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
}

Bytes memberM1(const Hash& teamId, const EphemeralPublic& e) {
  Bytes m1{'P', 'C', 'T', '3', 0};
  const Hash tag = teamTag(teamId, e);
  m1.insert(m1.end(), tag.begin(), tag.end());
  m1.insert(m1.end(), e.begin(), e.end());
  Bytes out = be32(static_cast<std::uint32_t>(m1.size()));
  out.insert(out.end(), m1.begin(), m1.end());
  return out;
}

// Both handshakes completed with the responder's `status` (a denial): neither side is
// authorized, and neither keeps a stream.
void expectResponderDenied(const Run& r, const Status& status) {
  ASSERT_TRUE(*r.initiator->value) << r.initiator->value->error().message();
  ASSERT_TRUE(*r.responder->value) << r.responder->value->error().message();
  EXPECT_EQ((*r.initiator->value)->received, status);
  EXPECT_EQ((*r.responder->value)->sent, status);
  EXPECT_FALSE((*r.initiator->value)->authorized());
  EXPECT_FALSE((*r.initiator->value)->stream);
  EXPECT_FALSE((*r.responder->value)->stream);
}

// Handshakes ------------------------------------------------------------------------------------

TEST(TeamHandshake, MembersAgreeOnCrosswiseTransportKeysAndExchangeFramesBothWays) {
  Fixture f;
  PipePair p;
  auto r = runBoth(p, f.initiator(), f.responder());
  ASSERT_TRUE(*r.initiator->value) << r.initiator->value->error().message();
  ASSERT_TRUE(*r.responder->value) << r.responder->value->error().message();
  HandshakeResult& i = **r.initiator->value;
  HandshakeResult& s = **r.responder->value;
  EXPECT_TRUE(i.authorized());
  EXPECT_TRUE(s.authorized());
  EXPECT_EQ(i.peer.deviceId, keyOf(f.responderKey));
  EXPECT_EQ(s.peer.deviceId, keyOf(f.initiatorKey));
  EXPECT_EQ(i.teamId, f.teamId);
  EXPECT_EQ(s.teamId, f.teamId);
  EXPECT_EQ(i.h3, s.h3);
  EXPECT_EQ(bytesOf(i.sendKey), bytesOf(s.receiveKey));
  EXPECT_EQ(bytesOf(i.receiveKey), bytesOf(s.sendKey));
  EXPECT_NE(bytesOf(i.sendKey), bytesOf(i.receiveKey));
  auto ic = makeAeadChannel(std::move(i.stream), i.takeKeys());
  auto rc = makeAeadChannel(std::move(s.stream), s.takeKeys());
  const Bytes hello{'h', 'i'};
  auto there = start(p.ctx, sendThenReceive(*ic, *rc, hello));
  ASSERT_TRUE(p.runUntil([&] { return there->done(); }));
  ASSERT_TRUE(*there->value);
  EXPECT_EQ(**there->value, hello);
  auto back = start(p.ctx, sendThenReceive(*rc, *ic, Bytes{'y', 'o'}));
  ASSERT_TRUE(p.runUntil([&] { return back->done(); }));
  ASSERT_TRUE(*back->value);
  EXPECT_EQ(**back->value, (Bytes{'y', 'o'}));
}

// §6.1 mode 0: m1 names the team by a tag keyed with the team ID over the initiator's fresh
// ephemeral, so two handshakes to the same team share nothing an observer could link, and
// neither carries the team ID.
TEST(TeamHandshake, TwoModeZeroHandshakesToOneTeamSendUnlinkableFirstMessages) {
  Fixture f;
  std::vector<Bytes> firsts;
  for (int i = 0; i < 2; ++i) {
    PipePair p;
    auto r = runBoth(p, f.initiator(), f.responder());
    ASSERT_TRUE(*r.initiator->value) << r.initiator->value->error().message();
    const auto& wire = p.link->bytesFromDialer();
    ASSERT_GE(wire.size(), 4u + 5 + 32 + 32);
    firsts.emplace_back(wire.begin() + 4, wire.begin() + 4 + 5 + 32 + 32);  // m1 without length
  }
  const auto tagOf = [](const Bytes& m1) { return Bytes(m1.begin() + 5, m1.begin() + 37); };
  const auto ephemeralOf = [](const Bytes& m1) { return Bytes(m1.begin() + 37, m1.end()); };
  EXPECT_NE(tagOf(firsts[0]), tagOf(firsts[1]));
  EXPECT_NE(ephemeralOf(firsts[0]), ephemeralOf(firsts[1]));
  for (const Bytes& m1 : firsts) {
    EXPECT_TRUE(std::search(m1.begin(), m1.end(), f.teamId.begin(), f.teamId.end()) == m1.end());
    EXPECT_TRUE(std::equal(m1.begin(), m1.begin() + 5, Bytes{'P', 'C', 'T', '3', 0}.begin()));
  }
}

TEST(TeamHandshake, AnInviteeCompletesModeOneAndTheResponderSeesItsAdmissionFields) {
  Fixture f;
  PipePair p;
  auto rc = f.responder();
  std::optional<Claim> judged;
  rc.judge = [&judged](const Claim& c, const HandshakeContext& ctx) {
    judged = c;
    EXPECT_EQ(ctx.mode, HandshakeMode::Invitee);
    return answer(kOk);
  };
  auto r = runBoth(p, f.initiator(HandshakeMode::Invitee), std::move(rc));
  ASSERT_TRUE(*r.initiator->value) << r.initiator->value->error().message();
  ASSERT_TRUE(*r.responder->value) << r.responder->value->error().message();
  EXPECT_TRUE((*r.initiator->value)->authorized());
  EXPECT_TRUE((*r.responder->value)->authorized());
  ASSERT_TRUE(judged);
  EXPECT_EQ(judged->kind, ClaimKind::Invitee);
  EXPECT_EQ(judged->userId, "alice");
  ASSERT_TRUE((*r.initiator->value)->peer.invitations);
  EXPECT_EQ((*r.initiator->value)->peer.invitations->size(), 1u);
}

TEST(TeamHandshake, AResponderThatKnowsNoTeamForTheTagHangsUpWithoutAReply) {
  Fixture f;
  PipePair p;
  auto ic = f.initiator();
  ic.teamId = teamIdOf(8);
  auto r = runBoth(p, std::move(ic), f.responder());
  EXPECT_EQ(errcOf(r.responder), Errc::Denied);
  EXPECT_EQ(errcOf(r.initiator), Errc::Disconnected);
  EXPECT_TRUE(p.link->bytesFromAcceptor().empty());
}

TEST(TeamHandshake, AResponderRefusesModeOneWhenTwoOfItsTeamsShareThePrefix) {
  Fixture f;
  PipePair p;
  Hash twin = f.teamId;
  twin[31] ^= 1;  // same leading base58 characters
  ASSERT_EQ(prefixOf(twin), prefixOf(f.teamId));
  f.teams.push_back(twin);
  auto r = runBoth(p, f.initiator(HandshakeMode::Invitee), f.responder());
  EXPECT_EQ(errcOf(r.responder), Errc::Denied);
  EXPECT_EQ(errcOf(r.initiator), Errc::Disconnected);
  EXPECT_TRUE(p.link->bytesFromAcceptor().empty());
}

TEST(TeamHandshake, AnInitiatorRefusesAResponderThatReflectsItsEphemeral) {
  Fixture f;
  PipePair p;
  auto i = start(p.ctx, runInitiator(std::move(p.dialerEnd), f.initiator()));
  auto m1 = start(p.ctx, readN(*p.acceptorEnd, 4 + 69));
  ASSERT_TRUE(p.runUntil([&] { return m1->done(); }));
  ASSERT_TRUE(*m1->value);
  Bytes m2 = be32(32 + 64);
  m2.insert(m2.end(), (*m1->value)->end() - 32, (*m1->value)->end());
  m2.resize(m2.size() + 64, 0xAA);
  auto w = start(p.ctx, writeRaw(*p.acceptorEnd, m2));
  ASSERT_TRUE(p.runUntil([&] { return i->done(); }));
  EXPECT_EQ(errcOf(i), Errc::Denied);
  EXPECT_EQ(p.link->bytesFromDialer().size(), 4u + 69u) << "nothing after m1";
}

TEST(TeamHandshake, AnInitiatorRefusesAResponderThatReflectsItsDeviceId) {
  Fixture f;
  PipePair p;
  auto rc = f.responder();
  rc.identity = {keyOf(f.initiatorKey), ClaimKind::Member, signerFor(f.initiatorKey)};
  auto r = runBoth(p, f.initiator(), std::move(rc));
  EXPECT_EQ(errcOf(r.initiator), Errc::Denied);
  EXPECT_EQ(errcOf(r.responder), Errc::Disconnected);
  EXPECT_EQ(p.link->bytesFromDialer().size(), 4u + 69u) << "nothing after m1";
}

// Signs a message other than the one it is given: a claim signed over another transcript.
Signer wrongSigner(const DeviceKey& key) {
  Signer good = signerFor(key);
  return [good](ByteView m) {
    Bytes other(m.begin(), m.end());
    other.back() ^= 1;
    return good(other);
  };
}

TEST(TeamHandshake, AnInitiatorRefusesAResponderSignatureOverAnotherTranscript) {
  Fixture f;
  PipePair p;
  auto rc = f.responder();
  rc.identity.sign = wrongSigner(f.responderKey);
  auto r = runBoth(p, f.initiator(), std::move(rc));
  EXPECT_EQ(errcOf(r.initiator), Errc::Denied);
  EXPECT_EQ(errcOf(r.responder), Errc::Disconnected);
  EXPECT_EQ(p.link->bytesFromDialer().size(), 4u + 69u);
}

TEST(TeamHandshake, AResponderDeniesAnInitiatorSignatureOverAnotherTranscript) {
  Fixture f;
  PipePair p;
  auto ic = f.initiator();
  ic.identity.sign = wrongSigner(f.initiatorKey);
  auto r = runBoth(p, std::move(ic), f.responder());
  EXPECT_EQ(errcOf(r.responder), Errc::Denied);
  ASSERT_TRUE(*r.initiator->value) << r.initiator->value->error().message();
  EXPECT_EQ((*r.initiator->value)->received, (Status{Status::Kind::Denied, Reason::BadSignature}));
  EXPECT_FALSE((*r.initiator->value)->stream);
}

TEST(TeamHandshake, ATamperedByteOfC2OrC3FailsTheAead) {
  for (const bool c2 : {true, false}) {
    SCOPED_TRACE(c2 ? "c2" : "c3");
    Fixture f;
    PipePair p;
    std::unique_ptr<Stream> dialer = std::move(p.dialerEnd);
    std::unique_ptr<Stream> acceptor = std::move(p.acceptorEnd);
    if (c2) {
      acceptor = std::make_unique<BendingStream>(std::move(acceptor), 4 + 32 + 5, std::nullopt);
    } else {
      dialer = std::make_unique<BendingStream>(std::move(dialer), 73 + 4 + 5, std::nullopt);
    }
    auto r = runBoth(p, f.initiator(), f.responder(), std::move(dialer), std::move(acceptor));
    EXPECT_EQ(errcOf(c2 ? r.initiator : r.responder), Errc::Malformed);
    EXPECT_EQ(errcOf(c2 ? r.responder : r.initiator), Errc::Disconnected);
  }
}

TEST(TeamHandshake, TruncatedMessagesEndTheHandshakeWithoutHanging) {
  // Dialer cuts: inside m1 (its length, its body), inside m3. Acceptor cuts: inside m2.
  for (const std::size_t cut : {2u, 40u, 72u, 75u, 90u}) {
    SCOPED_TRACE("dialer cut at " + std::to_string(cut));
    Fixture f;
    PipePair p;
    auto dialer = std::make_unique<BendingStream>(std::move(p.dialerEnd), std::nullopt, cut);
    auto r = runBoth(p, f.initiator(), f.responder(), std::move(dialer));
    EXPECT_EQ(errcOf(r.responder), Errc::Disconnected);
    EXPECT_FALSE(r.initiator->value->has_value());
  }
  for (const std::size_t cut : {3u, 20u, 36u, 100u}) {
    SCOPED_TRACE("acceptor cut at " + std::to_string(cut));
    Fixture f;
    PipePair p;
    auto acceptor = std::make_unique<BendingStream>(std::move(p.acceptorEnd), std::nullopt, cut);
    auto r = runBoth(p, f.initiator(), f.responder(), nullptr, std::move(acceptor));
    EXPECT_EQ(errcOf(r.initiator), Errc::Disconnected);
    EXPECT_FALSE(r.responder->value->has_value());
  }
}

// A recorded initiator, replayed byte for byte to the same responder in a new session: its m3
// was sealed under the first session's keys (and signs the first transcript), so it fails here.
TEST(TeamHandshake, AReplayedInitiatorIsRefusedInAnotherSession) {
  Fixture f;
  Bytes recorded;
  {
    PipePair p;
    auto r = runBoth(p, f.initiator(), f.responder());
    ASSERT_TRUE(*r.initiator->value) << r.initiator->value->error().message();
    recorded = p.link->bytesFromDialer();
  }
  PipePair p;
  bool judged = false;
  ResponderConfig rc = f.responder();
  rc.judge = [&judged](const Claim&, const HandshakeContext&) -> asio::awaitable<Status> {
    judged = true;
    co_return Status{};
  };
  auto rs = start(p.ctx, runResponder(std::move(p.acceptorEnd), std::move(rc)));
  auto w = start(p.ctx, writeRaw(*p.dialerEnd, recorded));
  ASSERT_TRUE(p.runUntil([&] { return rs->done(); }));
  EXPECT_EQ(errcOf(rs), Errc::Malformed);
  EXPECT_FALSE(judged);
}

TEST(TeamHandshake, AnOversizedLengthIsRefusedBeforeAllocation) {
  Fixture f;
  PipePair p;
  auto rs = start(p.ctx, runResponder(std::move(p.acceptorEnd), f.responder()));
  gLargestAllocation = 0;
  gTrackAllocations = true;
  auto w = start(p.ctx, writeRaw(*p.dialerEnd, be32(0xFFFFFFF0u)));
  const bool done = p.runUntil([&] { return rs->done(); });
  gTrackAllocations = false;
  ASSERT_TRUE(done);
  EXPECT_EQ(errcOf(rs), Errc::Overloaded);
  EXPECT_LT(gLargestAllocation.load(), 64u << 10);
  EXPECT_TRUE(p.link->bytesFromAcceptor().empty());
}

TEST(TeamHandshake, ASmallOrderEphemeralEndsTheHandshake) {
  Fixture f;
  PipePair p;
  auto rs = start(p.ctx, runResponder(std::move(p.acceptorEnd), f.responder()));
  const EphemeralPublic zero{};  // the identity point: every shared secret is zero
  auto w = start(p.ctx, writeRaw(*p.dialerEnd, memberM1(f.teamId, zero)));
  ASSERT_TRUE(p.runUntil([&] { return rs->done(); }));
  EXPECT_EQ(errcOf(rs), Errc::Malformed);
  EXPECT_TRUE(p.link->bytesFromAcceptor().empty());
}

TEST(TeamHandshake, AnInviteeWhoseCheckRefusesSendsNothingAfterMessageTwo) {
  Fixture f;
  PipePair p;
  auto ic = f.initiator(HandshakeMode::Invitee);
  ic.inviteeCheck = [](const Claim&, const Hash&) {
    return inviteeFields(Error(Errc::Denied, "our pk is not listed"));
  };
  bool judged = false;
  auto rc = f.responder();
  rc.judge = [&judged](const Claim&, const HandshakeContext&) {
    judged = true;
    return answer(kOk);
  };
  auto r = runBoth(p, std::move(ic), std::move(rc));
  EXPECT_EQ(errcOf(r.initiator), Errc::Denied);
  EXPECT_EQ(errcOf(r.responder), Errc::Disconnected);
  EXPECT_FALSE(judged);
  EXPECT_EQ(p.link->bytesFromDialer().size(), 4u + 43u) << "only m1";
}

TEST(TeamHandshake, AJudgeThatDeniesRemovedSendsThatReason) {
  Fixture f;
  PipePair p;
  auto rc = f.responder();
  const Status removed{Status::Kind::Denied, Reason::Removed};
  rc.judge = judgeWith(removed);
  auto r = runBoth(p, f.initiator(), std::move(rc));
  expectResponderDenied(r, removed);
}

TEST(TeamHandshake, APeerThatStopsAfterMessageOneFailsTheResponderAtTheDeadline) {
  Fixture f;
  PipePair p;
  auto rc = f.responder();
  rc.deadline = 200ms;
  const auto begin = Clock::now();
  auto rs = start(p.ctx, runResponder(std::move(p.acceptorEnd), std::move(rc)));
  EphemeralPublic e{};
  SecretKey<32> sk;
  crypto_kx_keypair(e.data(), sk.data());
  auto w = start(p.ctx, writeRaw(*p.dialerEnd, memberM1(f.teamId, e)));
  ASSERT_TRUE(p.runUntil([&] { return rs->done(); }, 3s));
  EXPECT_EQ(errcOf(rs), Errc::Disconnected);
  EXPECT_NE(rs->value->error().message().find("deadline"), std::string::npos);
  const auto took = Clock::now() - begin;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 2s);
}

TEST(TeamHandshake, AResponderThatNeverAnswersFailsTheInitiatorAtTheDeadline) {
  Fixture f;
  PipePair p;
  auto ic = f.initiator();
  ic.deadline = 200ms;
  const auto begin = Clock::now();
  auto is = start(p.ctx, runInitiator(std::move(p.dialerEnd), std::move(ic)));
  ASSERT_TRUE(p.runUntil([&] { return is->done(); }, 3s));
  EXPECT_EQ(errcOf(is), Errc::Disconnected);
  EXPECT_LT(Clock::now() - begin, 2s);
}

// §6.2 Proof and Need -------------------------------------------------------------------------

constexpr Status kProve{Status::Kind::ProveAdmission, Reason::Unknown};
constexpr Status kUnknownDevice{Status::Kind::Denied, Reason::UnknownDevice};

// A `Link` envelope (splitLink accepts it; no graph is involved at this layer).
Bytes fakeLink(std::uint8_t fill, std::size_t bodyBytes = 8) {
  return encodeLink(Bytes(bodyBytes, fill), Signature{});
}

// Proves with `first` when asked, and answers every Need with `more`.
AdmissionHooks proverOf(std::vector<Bytes> first, std::vector<Bytes> more = {}) {
  AdmissionHooks h;
  h.prove = [first, more](const Hash&, std::span<const Hash> need) {
    return need.empty() ? first : more;
  };
  return h;
}

asio::awaitable<ProofStep> stepOf(ProofStep s) { co_return s; }

// Asks once for a `prev` (Need) while it holds fewer than `enough` links, then answers `verdict`;
// records what it was shown.
struct ScriptedVerifier {
  std::size_t enough = 1;
  Status verdict = kOk;
  std::shared_ptr<std::vector<std::vector<Bytes>>> seen =
      std::make_shared<std::vector<std::vector<Bytes>>>();
  void into(AdmissionHooks& h) const {
    h.verify = [*this](const Hash&, const Claim&, const std::vector<Bytes>& links) {
      seen->push_back(links);
      if (links.size() < enough) return stepOf(ProofStep{{teamIdOf(5)}, {}});
      return stepOf(ProofStep{{}, verdict});
    };
  }
};

// Frames both ways over the channels the handshake results hand over.
void expectChannelWorks(PipePair& p, HandshakeResult& i, HandshakeResult& s) {
  auto ic = makeAeadChannel(std::move(i.stream), i.takeKeys());
  auto rc = makeAeadChannel(std::move(s.stream), s.takeKeys());
  auto there = start(p.ctx, sendThenReceive(*ic, *rc, Bytes{'h', 'i'}));
  ASSERT_TRUE(p.runUntil([&] { return there->done(); }));
  ASSERT_TRUE(*there->value) << there->value->error().message();
  EXPECT_EQ(**there->value, (Bytes{'h', 'i'}));
  auto back = start(p.ctx, sendThenReceive(*rc, *ic, Bytes{'y', 'o'}));
  ASSERT_TRUE(p.runUntil([&] { return back->done(); }));
  ASSERT_TRUE(*back->value) << back->value->error().message();
  EXPECT_EQ(**back->value, (Bytes{'y', 'o'}));
}

TEST(TeamHandshake, AnUnknownInitiatorProvesItsAdmissionAcrossANeedAndTheChannelFollows) {
  Fixture f;
  PipePair p;
  auto ic = f.initiator();
  ic.admission = proverOf({fakeLink(1)}, {fakeLink(2)});
  auto rc = f.responder();
  rc.judge = judgeWith(kProve);
  ScriptedVerifier v{.enough = 2, .verdict = kOk};
  v.into(rc.admission);
  auto r = runBoth(p, std::move(ic), std::move(rc));
  ASSERT_TRUE(*r.initiator->value) << r.initiator->value->error().message();
  ASSERT_TRUE(*r.responder->value) << r.responder->value->error().message();
  HandshakeResult& i = **r.initiator->value;
  HandshakeResult& s = **r.responder->value;
  EXPECT_TRUE(i.authorized());
  EXPECT_TRUE(s.authorized());
  ASSERT_EQ(v.seen->size(), 2u);
  EXPECT_EQ(v.seen->back(), (std::vector<Bytes>{fakeLink(1), fakeLink(2)}));
  // Two Proofs one way, a Need and the verdict the other: the channel's counters continue.
  EXPECT_EQ(i.sendCounter, 3u);
  EXPECT_EQ(s.receiveCounter, 3u);
  EXPECT_EQ(s.sendCounter, 3u);
  expectChannelWorks(p, i, s);
}

TEST(TeamHandshake, TwoPeersUnknownToEachOtherProveToEachOtherAtOnce) {
  Fixture f;
  PipePair p;
  auto ic = f.initiator();
  ic.judge = judgeWith(kProve);
  ic.admission = proverOf({fakeLink(1)});
  ScriptedVerifier vi{.enough = 2, .verdict = kOk};  // asks the responder for one more link
  vi.into(ic.admission);
  auto rc = f.responder();
  rc.judge = judgeWith(kProve);
  rc.admission = proverOf({fakeLink(3)}, {fakeLink(4)});
  ScriptedVerifier vr{.enough = 1, .verdict = kOk};
  vr.into(rc.admission);
  auto r = runBoth(p, std::move(ic), std::move(rc));
  ASSERT_TRUE(*r.initiator->value) << r.initiator->value->error().message();
  ASSERT_TRUE(*r.responder->value) << r.responder->value->error().message();
  EXPECT_TRUE((*r.initiator->value)->authorized());
  EXPECT_TRUE((*r.responder->value)->authorized());
  EXPECT_EQ(vi.seen->back(), (std::vector<Bytes>{fakeLink(3), fakeLink(4)}));
  EXPECT_EQ(vr.seen->back(), (std::vector<Bytes>{fakeLink(1)}));
  expectChannelWorks(p, **r.initiator->value, **r.responder->value);
}

TEST(TeamHandshake, AProofTheVerifierRejectsIsDeniedUnknownDeviceAndNothingFollows) {
  Fixture f;
  PipePair p;
  auto ic = f.initiator();
  ic.admission = proverOf({fakeLink(1)});
  auto rc = f.responder();
  rc.judge = judgeWith(kProve);
  ScriptedVerifier v{.enough = 1, .verdict = kUnknownDevice};
  v.into(rc.admission);
  auto r = runBoth(p, std::move(ic), std::move(rc));
  expectResponderDenied(r, kUnknownDevice);
}

TEST(TeamHandshake, AProverWithNothingToShowHangsUpAndTheVerifierSaysUnknownDevice) {
  Fixture f;
  PipePair p;
  auto ic = f.initiator();
  ic.admission = proverOf({});
  auto rc = f.responder();
  rc.judge = judgeWith(kProve);
  ScriptedVerifier v;
  v.into(rc.admission);
  auto r = runBoth(p, std::move(ic), std::move(rc));
  EXPECT_EQ(errcOf(r.initiator), Errc::Denied);
  EXPECT_NE(r.responder->value->error().message().find("unknownDevice"), std::string::npos)
      << r.responder->value->error().message();
  EXPECT_TRUE(v.seen->empty());
}

TEST(TeamHandshake, ANeedAnsweredWithNothingNewIsDeniedUnknownDevice) {
  Fixture f;
  PipePair p;
  auto ic = f.initiator();
  ic.admission = proverOf({fakeLink(1)}, {fakeLink(1)});  // the same link again
  auto rc = f.responder();
  rc.judge = judgeWith(kProve);
  ScriptedVerifier v{.enough = 2, .verdict = kOk};
  v.into(rc.admission);
  auto r = runBoth(p, std::move(ic), std::move(rc));
  ASSERT_TRUE(*r.initiator->value) << r.initiator->value->error().message();
  EXPECT_EQ((*r.initiator->value)->received, kUnknownDevice);
  EXPECT_EQ(v.seen->size(), 1u);
}

TEST(TeamHandshake, AllAnUnknownPeerSendsIsBoundedByOneMebibyte) {
  Fixture f;
  PipePair p;
  const std::size_t big = 300u << 10;
  auto ic = f.initiator();
  // Three links fill the first Proof (0.9 MiB); the fourth, asked for, passes the budget.
  ic.admission = proverOf({fakeLink(1, big), fakeLink(2, big), fakeLink(3, big)},
                          {fakeLink(4, big)});
  auto rc = f.responder();
  rc.judge = judgeWith(kProve);
  ScriptedVerifier v{.enough = 4, .verdict = kOk};
  v.into(rc.admission);
  auto r = runBoth(p, std::move(ic), std::move(rc));
  EXPECT_EQ(errcOf(r.responder), Errc::Overloaded);
  ASSERT_EQ(v.seen->size(), 1u);
  EXPECT_EQ(v.seen->front().size(), 3u);
  EXPECT_FALSE(*r.initiator->value);
}

// Passes its first `passWrites` writes; later ones are swallowed (the peer goes silent without
// hanging up).
class SilencingStream final : public Stream {
 public:
  SilencingStream(std::unique_ptr<Stream> inner, std::size_t passWrites)
      : inner_(std::move(inner)), left_(passWrites) {}
  asio::awaitable<Result<std::size_t>> readSome(std::span<std::uint8_t> buf) override {
    co_return co_await inner_->readSome(buf);
  }
  asio::awaitable<Result<void>> write(ByteView bytes) override {
    if (left_ == 0) co_return Result<void>{};
    --left_;
    co_return co_await inner_->write(bytes);
  }
  void close() override { inner_->close(); }
  std::string remoteAddress() const override { return inner_->remoteAddress(); }

 private:
  std::unique_ptr<Stream> inner_;
  std::size_t left_;
};

TEST(TeamHandshake, AProverThatFallsSilentFailsBothSidesAtTheHandshakeDeadline) {
  Fixture f;
  PipePair p;
  auto ic = f.initiator();
  ic.admission = proverOf({fakeLink(1)});
  ic.deadline = 300ms;
  auto rc = f.responder();
  rc.judge = judgeWith(kProve);
  rc.deadline = 300ms;
  ScriptedVerifier v;
  v.into(rc.admission);
  const auto begin = Clock::now();
  // m1, m3 and the Status frame reach the responder; the Proof never does.
  auto r = runBoth(p, std::move(ic), std::move(rc),
                   std::make_unique<SilencingStream>(std::move(p.dialerEnd), 3));
  const auto took = Clock::now() - begin;
  EXPECT_EQ(errcOf(r.responder), Errc::Disconnected);
  EXPECT_NE(r.responder->value->error().message().find("deadline"), std::string::npos)
      << r.responder->value->error().message();
  EXPECT_EQ(errcOf(r.initiator), Errc::Disconnected);
  EXPECT_TRUE(v.seen->empty());
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 3s);
}

// The AEAD channel ------------------------------------------------------------------------------

struct ChannelPair {
  PipePair p;
  std::unique_ptr<MessageChannel> a;
  std::unique_ptr<Stream> rawB;  // b's end, unwrapped, for hostile bytes
  SecretKey<32> key;             // a's send key = what b expects
  ChannelPair() {
    randombytes_buf(key.data(), key.size());
    SecretKey<32> copy;
    std::copy_n(key.data(), key.size(), copy.data());
    SecretKey<32> other;
    randombytes_buf(other.data(), other.size());
    a = makeAeadChannel(std::move(p.acceptorEnd),
                        AeadChannelKeys{AeadDirection(std::move(other), 0),
                                        AeadDirection(std::move(copy), 0)});
    rawB = std::move(p.dialerEnd);
  }
  Bytes frame(std::uint64_t counter, ByteView plain) {
    SecretKey<32> copy;
    std::copy_n(key.data(), key.size(), copy.data());
    AeadDirection d(std::move(copy), counter);
    Bytes ct = *d.seal(plain);
    Bytes out = be32(static_cast<std::uint32_t>(ct.size()));
    out.insert(out.end(), ct.begin(), ct.end());
    return out;
  }
  Result<Bytes> receive() {
    auto got = start(p.ctx, a->receive());
    EXPECT_TRUE(p.runUntil([&] { return got->done(); }));
    return std::move(*got->value);
  }
  void write(Bytes b) {
    auto w = start(p.ctx, writeRaw(*rawB, std::move(b)));
    EXPECT_TRUE(p.runUntil([&] { return w->done(); }));
  }
};

TEST(TeamAeadChannel, ATamperedFrameIsMalformed) {
  ChannelPair c;
  Bytes f = c.frame(0, Bytes{1, 2, 3});
  f[6] ^= 0x40;
  c.write(f);
  auto got = c.receive();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::Malformed);
}

TEST(TeamAeadChannel, AnOversizedAnnouncedLengthIsOverloadedBeforeAllocation) {
  ChannelPair c;
  gLargestAllocation = 0;
  gTrackAllocations = true;
  c.write(be32(0xFFFFFF00u));
  auto got = c.receive();
  gTrackAllocations = false;
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::Overloaded);
  EXPECT_LT(gLargestAllocation.load(), 64u << 10);
}

TEST(TeamAeadChannel, AReplayedFrameIsMalformed) {
  ChannelPair c;
  const Bytes f = c.frame(0, Bytes{1, 2, 3});
  c.write(f);
  auto first = c.receive();
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(*first, (Bytes{1, 2, 3}));
  c.write(f);
  auto again = c.receive();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::Malformed);
}

TEST(TeamAeadChannel, AOneMebibyteFrameRoundTrips) {
  ChannelPair c;
  Bytes big(1u << 20);
  randombytes_buf(big.data(), big.size());
  c.write(c.frame(0, big));
  auto got = c.receive();
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_TRUE(*got == big);
}

TEST(TeamAeadChannel, ASpentCounterRefusesToSeal) {
  SecretKey<32> k;
  AeadDirection d(std::move(k), kAeadLastCounter);
  auto sealed = d.seal(Bytes{1});
  ASSERT_FALSE(sealed);
  EXPECT_EQ(sealed.error().code(), Errc::Overloaded);
}

}  // namespace
}  // namespace portcullis::team
