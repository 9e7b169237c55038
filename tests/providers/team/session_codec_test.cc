// The team session's wire codecs: the claims and messages of the team protocol §6.6 and the signed
// changes of §8. Each reject path is shown by bytes that differ from accepted ones in one respect.
#include "wire/session_codec.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "fixed_keys.h"
#include "session.capnp.h"
#include "wire/link_codec.h"

namespace portcullis::team {
namespace {

using fixedkeys::encKey;
using fixedkeys::filled;
using fixedkeys::SignKeys;
using fixedkeys::signKeys;

const DocId kDoc = filled<16>(0xD0);

const SignKeys& actor() {
  static const SignKeys k = signKeys(1);
  return k;
}

Bytes bytesOf(kj::ArrayPtr<const capnp::word> words) {
  const auto b = words.asBytes();
  return Bytes(b.begin(), b.end());
}
capnp::Data::Reader dataOf(ByteView b) { return capnp::Data::Reader(b.data(), b.size()); }

// A real `Link` message (its body a canonical LinkBody, signed).
Bytes someLink(std::uint8_t n) {
  LinkBody b;
  b.prev = {filled<32>(n)};
  b.userId = "alice";
  b.deviceId = actor().pk;
  b.deviceSeq = n;
  b.action = RemoveMember{"bob"};
  const Bytes body = encodeLinkBody(b);
  return encodeLink(body, signLinkBody(body, actor().sk));
}

// A `Link` message with an arbitrary body of `size` bytes (splitLink does not read the body).
Bytes bulkyLink(std::size_t size) {
  return encodeLink(Bytes(size, 0x11), Signature{});
}

Claim responderClaim(bool modeOne) {
  Claim c;
  c.teamId = filled<32>(0x7E);
  c.kind = ClaimKind::Member;
  c.deviceId = signKeys(2).pk;
  c.signature = filled<64>(0x33);
  if (modeOne) {
    c.invitations = std::vector<Offer>{{filled<16>(0x05), filled<32>(0x09)},
                                       {filled<16>(0x01), filled<32>(0x0A)}};
  }
  return c;
}

Claim initiatorClaim(ClaimKind kind) {
  Claim c;
  c.kind = kind;
  c.deviceId = signKeys(3).pk;
  c.signature = filled<64>(0x34);
  if (kind == ClaimKind::Invitee) {
    c.invitation = filled<32>(0x15);
    c.encKey = encKey(3);
    c.userId = "carol";
    c.proof = filled<64>(0x41);
    c.consent = filled<64>(0x42);
    c.inviteSig = filled<64>(0x43);
  }
  return c;
}

std::vector<Hash> ascending(std::initializer_list<std::uint8_t> bytes) {
  std::vector<Hash> out;
  for (std::uint8_t b : bytes) out.push_back(filled<32>(b));
  return out;
}

std::vector<Message> everyMessage() {
  return {
      Status{Status::Kind::Ok, Reason::Unknown},
      Status{Status::Kind::ProveAdmission, Reason::Unknown},
      Status{Status::Kind::Denied, Reason::Removed},
      Proof{{someLink(1), someLink(2)}},
      Need{ascending({1, 2, 3})},
      Heads{ascending({4}), 1234},
      Vector{{VectorEntry{filled<32>(1), 7}, VectorEntry{filled<32>(2), 0xFFFF'FFFFu}}},
      Want{ascending({5, 9})},
      Links{{someLink(3), someLink(4), someLink(5)}},
  };
}

ChangePayload payload() { return ChangePayload{1'700'000'000'000, "fix the typo", {1, 2, 3, 4}}; }

ChangeBody v3Body() {
  ChangeBody b;
  b.actor = actor().pk;
  b.seq = 3;
  b.startOp = 10;
  b.opCount = 4;
  b.deps = ascending({0x21, 0x22});
  b.teamHeads = ascending({0x31});
  b.scope = "team";
  b.ciphertext = encodeChangePayload(payload());
  return b;
}

ChangeBody v4Body() {
  ChangeBody b = v3Body();
  b.deps.clear();
  b.teamHeads = ascending({0x31, 0x32, 0x33});
  b.scope = "role:editor";
  b.generation = filled<32>(0x44);
  b.nonce = filled<24>(0x45);
  b.ciphertext = Bytes(57, 0xC1);
  return b;
}

Bytes sealed(const Bytes& body, const DocId& doc = kDoc) {
  return encodeSealedChange(body, signChange(doc, body, actor().sk));
}

// Re-encodes `bytes` (a T) canonically after `edit` changed its builder: for what the value
// types cannot express (wrong sizes, null versus empty, unknown values).
template <typename T>
Bytes edited(const Bytes& bytes, const std::function<void(typename T::Builder)>& edit) {
  auto words = kj::heapArray<capnp::word>(bytes.size() / 8);
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  const kj::ArrayPtr<const capnp::word> segment = words.asPtr();
  capnp::SegmentArrayMessageReader reader(kj::arrayPtr(&segment, 1));
  capnp::MallocMessageBuilder message;
  message.setRoot(reader.getRoot<T>());
  edit(message.getRoot<T>());
  return bytesOf(capnp::canonicalize(message.getRoot<T>().asReader()));
}

// `bytes` (a T) with its root struct grown by a nonzero data word and a non-null pointer beyond
// the schema's sections (canonical form may have truncated the known ones).
template <typename T>
Bytes widened(const Bytes& bytes) {
  const auto node = capnp::Schema::from<T>().getProto().getStruct();
  auto words = kj::heapArray<capnp::word>(bytes.size() / 8);
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  const kj::ArrayPtr<const capnp::word> segment = words.asPtr();
  capnp::SegmentArrayMessageReader reader(kj::arrayPtr(&segment, 1));
  const auto old = reader.getRoot<capnp::AnyStruct>();
  capnp::MallocMessageBuilder message;
  const auto dataWords = static_cast<std::uint16_t>(node.getDataWordCount() + 1);
  const auto pointers = static_cast<std::uint16_t>(node.getPointerCount() + 1);
  auto s = message.getRoot<capnp::AnyPointer>().initAsAnyStruct(dataWords, pointers);
  std::memcpy(s.getDataSection().begin(), old.getDataSection().begin(),
              old.getDataSection().size());
  s.getDataSection()[dataWords * 8 - 1] = 0x5A;
  for (unsigned i = 0; i < old.getPointerSection().size(); ++i) {
    s.getPointerSection()[i].set(old.getPointerSection()[i]);
  }
  const std::uint8_t later[] = {1, 2, 3};
  s.getPointerSection()[pointers - 1].setAs<capnp::Data>(capnp::Data::Reader(later, 3));
  return bytesOf(s.asReader().canonicalize());
}

template <typename T>
void expectMalformed(const Result<T>& r, std::string_view what) {
  ASSERT_FALSE(r.has_value()) << "expected Malformed naming '" << what << "'";
  EXPECT_EQ(r.error().code(), Errc::Malformed);
  EXPECT_NE(r.error().message().find(what), std::string::npos)
      << "message '" << r.error().message() << "' does not name " << what;
}

constexpr std::size_t kFrame = 1u << 20;

// --- round trips ---------------------------------------------------------------------------------

TEST(TeamSessionCodec, RoundTripsEveryMessageKind) {
  std::vector<bool> seen(7, false);
  for (const Message& m : everyMessage()) {
    SCOPED_TRACE(m.index());
    seen[m.index()] = true;
    const Bytes bytes = encodeMessage(m);
    const auto r = decodeMessage(bytes, kFrame);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(*r, m);
    EXPECT_EQ(encodeMessage(*r), bytes);
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }));
}

TEST(TeamSessionCodec, RoundTripsEveryReasonADenialCanGive) {
  for (std::uint16_t v = 0; v <= static_cast<std::uint16_t>(Reason::TooLarge); ++v) {
    const Message m = Status{Status::Kind::Denied, static_cast<Reason>(v)};
    const auto r = decodeMessage(encodeMessage(m), kFrame);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(*r, m);
  }
}

TEST(TeamSessionCodec, ReturnsEachLinkAsTheBytesDecodeLinkTakes) {
  const Bytes link = someLink(6);
  const auto r = decodeMessage(encodeMessage(Links{{link}}), kFrame);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  ASSERT_EQ(std::get<Links>(*r).links.size(), 1u);
  EXPECT_EQ(std::get<Links>(*r).links[0], link);
}

TEST(TeamSessionCodec, RoundTripsClaimsOfEveryShape) {
  const std::vector<std::pair<Claim, ClaimRole>> claims = {
      {responderClaim(false), ClaimRole::Responder},
      {responderClaim(true), ClaimRole::Responder},
      {initiatorClaim(ClaimKind::Member), ClaimRole::Initiator},
      {initiatorClaim(ClaimKind::Server), ClaimRole::Initiator},
      {initiatorClaim(ClaimKind::Invitee), ClaimRole::Initiator},
  };
  for (const auto& [claim, role] : claims) {
    const Bytes bytes = encodeClaim(claim);
    const auto r = decodeClaim(bytes, role);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(*r, claim);
    EXPECT_EQ(encodeClaim(*r), bytes);
  }
  Claim deviceInvitee = initiatorClaim(ClaimKind::Invitee);
  deviceInvitee.userId.reset();  // a device invitation: no userId
  const auto r = decodeClaim(encodeClaim(deviceInvitee), ClaimRole::Initiator);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, deviceInvitee);
}

TEST(TeamSessionCodec, RoundTripsChangeBodiesAndPayloads) {
  for (const ChangeBody& body : {v3Body(), v4Body()}) {
    const Bytes bytes = encodeChangeBody(body);
    const auto r = decodeChangeBody(bytes);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_FALSE(r->unknown);
    EXPECT_EQ(r->body, body);
    EXPECT_EQ(encodeChangeBody(r->body), bytes);
  }
  const auto p = decodeChangePayload(v3Body().ciphertext);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(*p, payload());
  const auto empty = decodeChangePayload(encodeChangePayload(ChangePayload{}));
  ASSERT_TRUE(empty.has_value()) << empty.error().message();
  EXPECT_EQ(*empty, ChangePayload{});
  // A commit message is text for people: lines and tabs are kept, invalid UTF-8 is refused.
  ChangePayload lines = payload();
  lines.message = "first line\n\tsecond line";
  const auto kept = decodeChangePayload(encodeChangePayload(lines));
  ASSERT_TRUE(kept.has_value()) << kept.error().message();
  EXPECT_EQ(kept->message, lines.message);
  lines.message = "bad \xC3\x28 byte";
  EXPECT_FALSE(decodeChangePayload(encodeChangePayload(lines)).has_value());
}

TEST(TeamSessionCodec, DecodesASignedChangeWithItsComputedHash) {
  const Bytes body = encodeChangeBody(v3Body());
  const Signature sig = signChange(kDoc, body, actor().sk);
  const auto r = decodeChange(kDoc, encodeSealedChange(body, sig));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->body, body);
  EXPECT_EQ(r->signature, sig);
  EXPECT_EQ(r->parsed, v3Body());
  EXPECT_EQ(r->hash, changeHash(body, sig));
  EXPECT_FALSE(r->unknown);
  EXPECT_TRUE(verifyChange(kDoc, body, sig, actor().pk));
}

TEST(TeamSessionCodec, TellsTheVersionThreeShape) {
  EXPECT_TRUE(versionThreeShape(v3Body()));
  EXPECT_FALSE(versionThreeShape(v4Body()));
  ChangeBody b = v3Body();
  b.generation = filled<32>(1);
  EXPECT_FALSE(versionThreeShape(b));
  b = v3Body();
  b.nonce = filled<24>(1);
  EXPECT_FALSE(versionThreeShape(b));
  b = v3Body();
  b.scope = "role:editor";
  EXPECT_FALSE(versionThreeShape(b));
}

// --- the signature and hash of §8 ---------------------------------------------------------------

TEST(TeamSessionCodec, HashAndSignatureMatchAnIndependentComputation) {
  const Bytes body = encodeChangeBody(v3Body());
  const Signature sig = signChange(kDoc, body, actor().sk);

  const std::string hashTag = "portcullis/team/v3/change";
  Bytes hashed(hashTag.begin(), hashTag.end());
  hashed.insert(hashed.end(), body.begin(), body.end());
  hashed.insert(hashed.end(), sig.begin(), sig.end());
  Hash expected{};
  crypto_generichash(expected.data(), expected.size(), hashed.data(), hashed.size(), nullptr, 0);
  EXPECT_EQ(changeHash(body, sig), expected);

  const std::string sigTag = "portcullis/team/v3/change-sig";
  Bytes signedBytes(sigTag.begin(), sigTag.end());
  signedBytes.insert(signedBytes.end(), kDoc.begin(), kDoc.end());
  signedBytes.insert(signedBytes.end(), body.begin(), body.end());
  EXPECT_EQ(crypto_sign_verify_detached(sig.data(), signedBytes.data(), signedBytes.size(),
                                        actor().pk.data()),
            0);
  Signature direct{};
  crypto_sign_detached(direct.data(), nullptr, signedBytes.data(), signedBytes.size(),
                       actor().sk.data());
  EXPECT_EQ(sig, direct);  // Ed25519 is deterministic
}

TEST(TeamSessionCodec, RejectsAChangeWithOneFlippedSignatureByte) {
  const Bytes body = encodeChangeBody(v3Body());
  const Signature good = signChange(kDoc, body, actor().sk);
  for (std::size_t i : {std::size_t{0}, std::size_t{31}, std::size_t{63}}) {
    Signature bad = good;
    bad[i] ^= 0x01;
    EXPECT_FALSE(verifyChange(kDoc, body, bad, actor().pk));
    expectMalformed(decodeChange(kDoc, encodeSealedChange(body, bad)), "signature");
  }
}

TEST(TeamSessionCodec, RejectsAChangeBodyTamperedAfterSigning) {
  const Bytes body = encodeChangeBody(v3Body());
  const Signature sig = signChange(kDoc, body, actor().sk);
  Bytes tampered = body;
  tampered[tampered.size() - 9] ^= 0x01;  // inside the ciphertext: still canonical
  ASSERT_TRUE(decodeChangeBody(tampered).has_value());
  EXPECT_FALSE(verifyChange(kDoc, tampered, sig, actor().pk));
  expectMalformed(decodeChange(kDoc, encodeSealedChange(tampered, sig)), "signature");
}

TEST(TeamSessionCodec, RejectsASignatureOverAnotherDocument) {
  const Bytes body = encodeChangeBody(v3Body());
  DocId other = kDoc;
  other[15] ^= 0x01;
  const Bytes change = sealed(body, other);
  expectMalformed(decodeChange(kDoc, change), "signature");
  EXPECT_TRUE(decodeChange(other, change).has_value());
}

TEST(TeamSessionCodec, RejectsAChangeSignedByAnotherKey) {
  const Bytes body = encodeChangeBody(v3Body());
  expectMalformed(
      decodeChange(kDoc, encodeSealedChange(body, signChange(kDoc, body, signKeys(9).sk))),
      "signature");
}

// --- sizes, sets, null versus empty --------------------------------------------------------------

TEST(TeamSessionCodec, RejectsAHashOfTheWrongSize) {
  for (std::size_t size : {31u, 33u}) {
    SCOPED_TRACE(size);
    const Bytes wrong(size, 0x42);
    const auto setSecond = [&](::Message::Builder m) {
      m.getHeads().getHashes().set(1, dataOf(wrong));
    };
    expectMalformed(
        decodeMessage(edited<::Message>(encodeMessage(Heads{ascending({1, 2})}), setSecond),
                      kFrame),
                    "heads.hashes: wrong size");
    expectMalformed(decodeChangeBody(edited<::ChangeBody>(
                        encodeChangeBody(v3Body()),
                        [&](::ChangeBody::Builder b) { b.getTeamHeads().set(0, dataOf(wrong)); })),
                    "teamHeads: wrong size");
    expectMalformed(decodeChangeBody(edited<::ChangeBody>(
                        encodeChangeBody(v3Body()),
                        [&](::ChangeBody::Builder b) { b.setActor(dataOf(wrong)); })),
                    "actor: wrong size");
    expectMalformed(decodeClaim(edited<::Claim>(encodeClaim(responderClaim(false)),
                                                [&](::Claim::Builder c) {
                                                  c.setDeviceId(dataOf(wrong));
                                                }),
                                ClaimRole::Responder),
                    "deviceId: wrong size");
    expectMalformed(decodeMessage(edited<::Message>(
                                      encodeMessage(Vector{{VectorEntry{filled<32>(1), 1}}}),
                                      [&](::Message::Builder m) {
                                        m.getVector().getEntries()[0].setDeviceId(dataOf(wrong));
                                      }),
                                  kFrame),
                    "vector.deviceId: wrong size");
  }
  expectMalformed(decodeClaim(edited<::Claim>(encodeClaim(responderClaim(true)),
                                              [](::Claim::Builder c) {
                                                c.getInvitations()[1].setPkTag(
                                                    dataOf(Bytes(15, 1)));
                                              }),
                              ClaimRole::Responder),
                  "pkTag: wrong size");
  expectMalformed(decodeClaim(edited<::Claim>(encodeClaim(initiatorClaim(ClaimKind::Invitee)),
                                              [](::Claim::Builder c) {
                                                c.setConsent(dataOf(Bytes(63, 1)));
                                              }),
                              ClaimRole::Initiator),
                  "consent: wrong size");
  expectMalformed(decodeChangeBody(edited<::ChangeBody>(encodeChangeBody(v4Body()),
                                                        [](::ChangeBody::Builder b) {
                                                          b.setNonce(dataOf(Bytes(32, 1)));
                                                        })),
                  "nonce: wrong size");
}

TEST(TeamSessionCodec, RejectsHashListsThatAreUnsortedOrHaveDuplicates) {
  for (const auto& hashes : {ascending({2, 1}), ascending({1, 1}), ascending({1, 3, 2})}) {
    expectMalformed(decodeMessage(encodeMessage(Heads{hashes, 3}), kFrame), "not strictly");
    expectMalformed(decodeMessage(encodeMessage(Need{hashes}), kFrame), "not strictly");
    expectMalformed(decodeMessage(encodeMessage(Want{hashes}), kFrame), "not strictly");
    ChangeBody b = v3Body();
    b.deps = hashes;
    expectMalformed(decodeChangeBody(encodeChangeBody(b)), "deps: not strictly");
    b = v3Body();
    b.teamHeads = hashes;
    expectMalformed(decodeChangeBody(encodeChangeBody(b)), "teamHeads: not strictly");
  }
  for (const auto& entries :
       {std::vector<VectorEntry>{{filled<32>(2), 1}, {filled<32>(1), 1}},
        std::vector<VectorEntry>{{filled<32>(1), 1}, {filled<32>(1), 2}}}) {
    expectMalformed(decodeMessage(encodeMessage(Vector{entries}), kFrame), "not strictly");
  }
}

TEST(TeamSessionCodec, RejectsAnEmptyListOrDataWhereNullIsMeant) {
  expectMalformed(decodeMessage(edited<::Message>(encodeMessage(Need{ascending({1})}),
                                                  [](::Message::Builder m) {
                                                    m.getNeed().initHashes(0);
                                                  }),
                                kFrame),
                  "need.hashes: empty list");
  expectMalformed(decodeMessage(encodeMessage(Proof{}), kFrame), "proof.links: missing");
  expectMalformed(decodeMessage(edited<::Message>(encodeMessage(Proof{{someLink(1)}}),
                                                  [](::Message::Builder m) {
                                                    m.getProof().initLinks(0);
                                                  }),
                                kFrame),
                  "proof.links: empty list");
  expectMalformed(decodeMessage(encodeMessage(Heads{{}, 0}), kFrame), "heads.hashes: missing");
  expectMalformed(decodeMessage(encodeMessage(Vector{}), kFrame), "vector.entries: missing");
  expectMalformed(decodeClaim(edited<::Claim>(encodeClaim(responderClaim(true)),
                                              [](::Claim::Builder c) { c.initInvitations(0); }),
                              ClaimRole::Responder),
                  "invitations: empty list");
  expectMalformed(decodeClaim(edited<::Claim>(encodeClaim(initiatorClaim(ClaimKind::Invitee)),
                                              [](::Claim::Builder c) {
                                                c.setProof(capnp::Data::Reader());
                                              }),
                              ClaimRole::Initiator),
                  "proof: empty");
  const Bytes body = encodeChangeBody(v3Body());
  expectMalformed(decodeChangeBody(edited<::ChangeBody>(
                      body, [](::ChangeBody::Builder b) { b.initDeps(0); })),
                  "deps: empty list");
  expectMalformed(decodeChangeBody(edited<::ChangeBody>(
                      body, [](::ChangeBody::Builder b) { b.initTeamHeads(0); })),
                  "teamHeads: empty list");
  expectMalformed(decodeChangeBody(edited<::ChangeBody>(
                      body, [](::ChangeBody::Builder b) { b.disownTeamHeads(); })),
                  "teamHeads: missing");
  expectMalformed(decodeChangeBody(edited<::ChangeBody>(
                      body,
                      [](::ChangeBody::Builder b) { b.setCiphertext(capnp::Data::Reader()); })),
                  "ciphertext: empty");
  expectMalformed(decodeChangeBody(edited<::ChangeBody>(
                      body, [](::ChangeBody::Builder b) { b.disownCiphertext(); })),
                  "ciphertext: missing");
  expectMalformed(decodeChangeBody(edited<::ChangeBody>(
                      body,
                      [](::ChangeBody::Builder b) { b.setGeneration(capnp::Data::Reader()); })),
                  "generation: empty");
  expectMalformed(decodeChangePayload(edited<::ChangePayload>(
                      encodeChangePayload(payload()),
                      [](::ChangePayload::Builder p) { p.setOps(capnp::Data::Reader()); })),
                  "ops: empty");
  // Null deps (no dependencies) are fine.
  ChangeBody first = v3Body();
  first.deps.clear();
  EXPECT_TRUE(decodeChangeBody(encodeChangeBody(first)).has_value());
}

TEST(TeamSessionCodec, BoundsTeamHeadsAtSixtyFour) {
  ChangeBody b = v3Body();
  b.teamHeads.clear();
  for (unsigned i = 0; i < kMaxTeamHeads; ++i) {
    Hash h{};
    h[0] = static_cast<std::uint8_t>(i);
    b.teamHeads.push_back(h);
  }
  EXPECT_TRUE(decodeChangeBody(encodeChangeBody(b)).has_value());
  Hash h{};
  h[0] = 0xFF;
  b.teamHeads.push_back(h);
  expectMalformed(decodeChangeBody(encodeChangeBody(b)), "teamHeads: too many");
}

TEST(TeamSessionCodec, RejectsAProofOfMoreThan256Links) {
  Proof p;
  for (int i = 0; i < 256; ++i) p.links.push_back(bulkyLink(8));
  EXPECT_TRUE(decodeMessage(encodeMessage(p), kFrame).has_value());
  p.links.push_back(bulkyLink(8));
  expectMalformed(decodeMessage(encodeMessage(p), kFrame), "proof.links: too many");
}

TEST(TeamSessionCodec, RejectsAProofOverOneMebibyteEvenInALargerFrame) {
  Proof p{{bulkyLink(500u << 10), bulkyLink(500u << 10)}};
  EXPECT_TRUE(decodeMessage(encodeMessage(p), 4u << 20).has_value());
  p.links.push_back(bulkyLink(100u << 10));
  expectMalformed(decodeMessage(encodeMessage(p), 4u << 20), "proof.links: over the size limit");
  // The same links as a Links batch are bounded only by the frame.
  EXPECT_TRUE(decodeMessage(encodeMessage(Links{p.links}), 4u << 20).has_value());
}

TEST(TeamSessionCodec, RejectsAMessageOverTheFrameLimit) {
  const Bytes bytes = encodeMessage(Heads{ascending({1, 2, 3}), 9});
  EXPECT_TRUE(decodeMessage(bytes, bytes.size()).has_value());
  expectMalformed(decodeMessage(bytes, bytes.size() - 8), "over the size limit");
}

TEST(TeamSessionCodec, RejectsALinkWhoseEnvelopeSplitLinkRefuses) {
  const Bytes link = someLink(1);
  const auto parts = splitLink(link);
  ASSERT_TRUE(parts.has_value());
  expectMalformed(decodeMessage(edited<::Message>(encodeMessage(Links{{link}}),
                                                  [](::Message::Builder m) {
                                                    m.getLinks().getLinks()[0].setSignature(
                                                        dataOf(Bytes(63, 0)));
                                                  }),
                                kFrame),
                  "links.links");
  expectMalformed(decodeMessage(edited<::Message>(encodeMessage(Proof{{link}}),
                                                  [](::Message::Builder m) {
                                                    m.getProof().getLinks()[0].disownBody();
                                                  }),
                                kFrame),
                  "proof.links");
}

TEST(TeamSessionCodec, RejectsAVectorEntryWhoseDeviceSeqIsOutOfRange) {
  for (std::uint64_t seq : {std::uint64_t{0}, std::uint64_t{1} << 32}) {
    expectMalformed(decodeMessage(encodeMessage(Vector{{VectorEntry{filled<32>(1), seq}}}),
                                  kFrame),
                    "vector.deviceSeq");
  }
}

TEST(TeamSessionCodec, RejectsTextThatIsNotCleanUtf8) {
  for (const std::string& bad : {std::string("a\nb"), std::string("\xC3"), std::string("\x7F"),
                                std::string("\xC2\x85"), std::string(65, 'a')}) {
    Claim c = initiatorClaim(ClaimKind::Invitee);
    c.userId = bad;
    expectMalformed(decodeClaim(encodeClaim(c), ClaimRole::Initiator), "userId");
    ChangeBody b = v3Body();
    b.scope = bad;
    if (bad.size() <= kMaxScopeBytes) {
      expectMalformed(decodeChangeBody(encodeChangeBody(b)), "scope");
    }
  }
  // A change's message is text for people: only invalid UTF-8 is refused there.
  ChangePayload p = payload();
  p.message = "\xC3";
  expectMalformed(decodeChangePayload(encodeChangePayload(p)), "message");
  ChangeBody b = v3Body();
  b.scope.clear();
  expectMalformed(decodeChangeBody(encodeChangeBody(b)), "scope: missing");
}

TEST(TeamSessionCodec, RejectsClaimFieldsTheSenderMayNotCarry) {
  Claim c = responderClaim(false);
  c.teamId.reset();
  expectMalformed(decodeClaim(encodeClaim(c), ClaimRole::Responder), "teamId: missing");
  c = responderClaim(false);
  c.consent = filled<64>(1);
  expectMalformed(decodeClaim(encodeClaim(c), ClaimRole::Responder), "invitee's fields");
  c = initiatorClaim(ClaimKind::Member);
  c.teamId = filled<32>(1);
  expectMalformed(decodeClaim(encodeClaim(c), ClaimRole::Initiator), "teamId");
  c = initiatorClaim(ClaimKind::Member);
  c.invitations = std::vector<Offer>{{filled<16>(1), filled<32>(1)}};
  expectMalformed(decodeClaim(encodeClaim(c), ClaimRole::Initiator), "invitations");
  c = initiatorClaim(ClaimKind::Member);
  c.encKey = encKey(4);
  expectMalformed(decodeClaim(encodeClaim(c), ClaimRole::Initiator), "invitee's fields");
  c = initiatorClaim(ClaimKind::Invitee);
  c.inviteSig.reset();
  expectMalformed(decodeClaim(encodeClaim(c), ClaimRole::Initiator), "missing");
  c = initiatorClaim(ClaimKind::Invitee);
  c.encKey = EncKey{};  // zero: of small order
  expectMalformed(decodeClaim(encodeClaim(c), ClaimRole::Initiator), "encKey");
  c = responderClaim(false);
  c.signature = Signature{};
  EXPECT_TRUE(decodeClaim(encodeClaim(c), ClaimRole::Responder).has_value());  // zero, not null
  expectMalformed(decodeClaim(edited<::Claim>(encodeClaim(c),
                                              [](::Claim::Builder b) { b.disownSignature(); }),
                              ClaimRole::Responder),
                  "signature: missing");
}

TEST(TeamSessionCodec, BoundsClaimsByTheirHandshakeMessage) {
  Claim c = responderClaim(true);
  c.invitations->clear();
  for (unsigned i = 0; i < kMaxOffers; ++i) {
    c.invitations->push_back(Offer{filled<16>(static_cast<std::uint8_t>(i)), filled<32>(2)});
  }
  const Bytes full = encodeClaim(c);
  ASSERT_LE(full.size(), kMaxResponderClaimBytes);
  EXPECT_TRUE(decodeClaim(full, ClaimRole::Responder).has_value());
  c.invitations->push_back(Offer{filled<16>(0xEE), filled<32>(2)});
  expectMalformed(decodeClaim(encodeClaim(c), ClaimRole::Responder), "invitations: too many");

  Bytes over(kMaxInitiatorClaimBytes + 8, 0);
  expectMalformed(decodeClaim(over, ClaimRole::Initiator), "over the size limit");
  Bytes overR(kMaxResponderClaimBytes + 8, 0);
  expectMalformed(decodeClaim(overR, ClaimRole::Responder), "over the size limit");
}

// --- framing: truncation, garbage, canonical form ------------------------------------------------

std::vector<std::pair<std::string, std::function<bool(ByteView)>>> decoders() {
  return {
      {"claimR", [](ByteView b) { return decodeClaim(b, ClaimRole::Responder).has_value(); }},
      {"claimI", [](ByteView b) { return decodeClaim(b, ClaimRole::Initiator).has_value(); }},
      {"message", [](ByteView b) { return decodeMessage(b, kFrame).has_value(); }},
      {"changeBody", [](ByteView b) { return decodeChangeBody(b).has_value(); }},
      {"payload", [](ByteView b) { return decodeChangePayload(b).has_value(); }},
      {"sealed", [](ByteView b) { return decodeSealedChange(b).has_value(); }},
      {"change", [](ByteView b) { return decodeChange(kDoc, b).has_value(); }},
  };
}

// Valid encodings, keyed by the decoder that accepts them.
std::vector<std::pair<std::string, Bytes>> validEncodings() {
  std::vector<std::pair<std::string, Bytes>> out = {
      {"claimR", encodeClaim(responderClaim(true))},
      {"claimR", encodeClaim(responderClaim(false))},
      {"claimI", encodeClaim(initiatorClaim(ClaimKind::Invitee))},
      {"claimI", encodeClaim(initiatorClaim(ClaimKind::Member))},
      {"changeBody", encodeChangeBody(v3Body())},
      {"changeBody", encodeChangeBody(v4Body())},
      {"payload", encodeChangePayload(payload())},
      {"sealed", sealed(encodeChangeBody(v3Body()))},
      {"change", sealed(encodeChangeBody(v3Body()))},
  };
  for (const Message& m : everyMessage()) out.emplace_back("message", encodeMessage(m));
  return out;
}

TEST(TeamSessionCodec, RejectsTruncatedBytesAtEveryLength) {
  const auto all = decoders();
  for (const auto& [name, bytes] : validEncodings()) {
    const auto& decode =
        std::find_if(all.begin(), all.end(), [&](const auto& d) { return d.first == name; })
            ->second;
    ASSERT_TRUE(decode(bytes)) << name;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_FALSE(decode(ByteView(bytes.data(), n))) << name << " truncated to " << n;
    }
  }
}

TEST(TeamSessionCodec, RejectsTrailingGarbage) {
  const auto all = decoders();
  for (const auto& [name, bytes] : validEncodings()) {
    const auto& decode =
        std::find_if(all.begin(), all.end(), [&](const auto& d) { return d.first == name; })
            ->second;
    for (const Bytes& tail : {Bytes(8, 0), Bytes(8, 0xAB), Bytes(3, 0xAB), Bytes(16, 0)}) {
      Bytes longer = bytes;
      longer.insert(longer.end(), tail.begin(), tail.end());
      EXPECT_FALSE(decode(longer)) << name << " + " << tail.size();
    }
  }
}

TEST(TeamSessionCodec, RejectsANonCanonicalChangeBodyOrClaim) {
  const ChangeBody v = v3Body();
  capnp::MallocMessageBuilder message;
  auto b = message.initRoot<::ChangeBody>();
  // Out of preorder: the ciphertext is written before the actor and the hashes.
  b.setCiphertext(dataOf(v.ciphertext));
  b.setActor(capnp::Data::Reader(v.actor.data(), v.actor.size()));
  b.setSeq(v.seq);
  b.setStartOp(v.startOp);
  b.setOpCount(v.opCount);
  auto deps = b.initDeps(2);
  deps.set(0, capnp::Data::Reader(v.deps[0].data(), 32));
  deps.set(1, capnp::Data::Reader(v.deps[1].data(), 32));
  b.initTeamHeads(1).set(0, capnp::Data::Reader(v.teamHeads[0].data(), 32));
  b.setScope("team");
  ASSERT_EQ(message.getSegmentsForOutput().size(), 1u);
  const Bytes nonCanonical = bytesOf(message.getSegmentsForOutput()[0]);
  ASSERT_NE(nonCanonical, encodeChangeBody(v));
  expectMalformed(decodeChangeBody(nonCanonical), "not canonical");
  expectMalformed(decodeChange(kDoc, sealed(nonCanonical)), "not canonical");

  capnp::MallocMessageBuilder claimMessage;
  auto c = claimMessage.initRoot<::Claim>();
  const Claim value = responderClaim(false);
  c.setSignature(capnp::Data::Reader(value.signature.data(), 64));
  c.setDeviceId(capnp::Data::Reader(value.deviceId.data(), 32));
  c.setTeamId(capnp::Data::Reader(value.teamId->data(), 32));
  expectMalformed(decodeClaim(bytesOf(claimMessage.getSegmentsForOutput()[0]),
                              ClaimRole::Responder),
                  "not canonical");
}

TEST(TeamSessionCodec, AcceptsASingleSegmentMessageThatIsNotCanonical) {
  capnp::MallocMessageBuilder message;
  auto heads = message.initRoot<::Message>().initHeads();
  heads.setLinkCount(2);
  auto list = heads.initHashes(2);
  const Hash a = filled<32>(1), b = filled<32>(2);
  list.set(1, capnp::Data::Reader(b.data(), 32));  // out of preorder
  list.set(0, capnp::Data::Reader(a.data(), 32));
  const Bytes bytes = bytesOf(message.getSegmentsForOutput()[0]);
  ASSERT_NE(bytes, encodeMessage(Heads{{a, b}, 2}));
  const auto r = decodeMessage(bytes, kFrame);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, Message(Heads{{a, b}, 2}));
}

TEST(TeamSessionCodec, RejectsPointersOfTheWrongKind) {
  // Heads.hashes as a list of structs; the root pointer as a list.
  expectMalformed(decodeMessage(edited<::Message>(encodeMessage(Heads{ascending({1}), 1}),
                                                  [](::Message::Builder m) {
                                                    capnp::AnyStruct::Builder(m.getHeads())
                                                        .getPointerSection()[0]
                                                        .initAsAnyList(
                                                            capnp::ElementSize::INLINE_COMPOSITE,
                                                            1);
                                                  }),
                                kFrame),
                  "message");
  Bytes listRoot(16, 0);
  listRoot[0] = 1;
  listRoot[4] = 2;
  listRoot[8] = 0x41;
  expectMalformed(decodeMessage(listRoot, kFrame), "message");
  expectMalformed(decodeChangeBody(listRoot), "change body");
  expectMalformed(decodeClaim(listRoot, ClaimRole::Responder), "claim");
}

// --- later versions ------------------------------------------------------------------------------

TEST(TeamSessionCodec, DecodesAnUnknownMessageMemberAsUnknownMessage) {
  const Bytes bytes = edited<::Message>(encodeMessage(Need{ascending({1})}),
                                        [](::Message::Builder m) {
                                          auto data =
                                              capnp::AnyStruct::Builder(std::move(m))
                                                  .getDataSection();
                                          data[0] = 9;  // the union's discriminant: ordinal @9
                                          data[1] = 0;
                                        });
  const auto r = decodeMessage(bytes, kFrame);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, Message(UnknownMessage{9}));
  EXPECT_THROW((void)encodeMessage(UnknownMessage{9}), std::logic_error);
}

TEST(TeamSessionCodec, ReadsAnUnknownReasonOrStatusAsDenied) {
  const Bytes reason = edited<::Message>(
      encodeMessage(Status{Status::Kind::Denied, Reason::Timeout}),
      [](::Message::Builder m) { m.getStatus().setDenied(static_cast<::Reason>(40)); });
  const auto r = decodeMessage(reason, kFrame);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, Message(Status{Status::Kind::Denied, Reason::Unknown}));

  const Bytes member = edited<::Message>(
      encodeMessage(Status{Status::Kind::Ok, Reason::Unknown}), [](::Message::Builder m) {
        capnp::AnyStruct::Builder(m.getStatus()).getDataSection()[0] = 3;  // ordinal @3
      });
  const auto s = decodeMessage(member, kFrame);
  ASSERT_TRUE(s.has_value()) << s.error().message();
  EXPECT_EQ(*s, Message(Status{Status::Kind::Denied, Reason::Unknown}));
}

TEST(TeamSessionCodec, DecodesAnUnknownKindAsAMarkerTheCallerDenies) {
  Claim c = initiatorClaim(ClaimKind::Member);
  c.kind = static_cast<ClaimKind>(3);
  const auto r = decodeClaim(encodeClaim(c), ClaimRole::Initiator);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->kind, ClaimKind::Unknown);
}

TEST(TeamSessionCodec, IgnoresExtraWordsInAClaimOrMessage) {
  for (const Claim& c : {responderClaim(true), responderClaim(false)}) {
    const auto r = decodeClaim(widened<::Claim>(encodeClaim(c)), ClaimRole::Responder);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(*r, c);
  }
  const Message heads = Heads{ascending({1, 2}), 5};
  const auto m = decodeMessage(widened<::Message>(encodeMessage(heads)), kFrame);
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_EQ(*m, heads);
  const auto p = decodeChangePayload(widened<::ChangePayload>(encodeChangePayload(payload())));
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(*p, payload());
}

TEST(TeamSessionCodec, MarksAChangeBodyWithExtraWordsUnknown) {
  const Bytes body = widened<::ChangeBody>(encodeChangeBody(v3Body()));
  const auto r = decodeChangeBody(body);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_TRUE(r->unknown);
  EXPECT_EQ(r->body, v3Body());
  const auto change = decodeChange(kDoc, sealed(body));
  ASSERT_TRUE(change.has_value()) << change.error().message();
  EXPECT_TRUE(change->unknown);
  EXPECT_EQ(change->hash, changeHash(body, change->signature));

  // Its known fields are still checked.
  ChangeBody bad = v3Body();
  bad.teamHeads = ascending({2, 1});
  expectMalformed(decodeChangeBody(widened<::ChangeBody>(encodeChangeBody(bad))), "teamHeads");
}

// Found by the team_change fuzz target (tests/fuzz/corpus/team_change/regress-*).
TEST(TeamSessionCodec, MarksAChangeBodyWithBitsBesideOpCountUnknownAndRefusesANullPayload) {
  Bytes body = encodeChangeBody(v3Body());
  // The root pointer (8 bytes), seq, startOp, then opCount in the low half of the third data
  // word: byte 28 is in its unused high half.
  ASSERT_GT(body.size(), 32u);
  body[28] = 0x01;
  const auto r = decodeChangeBody(body);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_TRUE(r->unknown);
  EXPECT_FALSE(decodeChangeBody(encodeChangeBody(v3Body()))->unknown);  // the control

  expectMalformed(decodeChangePayload(Bytes(8, 0)), "null root");
  EXPECT_TRUE(decodeChangePayload(encodeChangePayload(ChangePayload{})).has_value());
}

// --- robustness ----------------------------------------------------------------------------------

TEST(TeamSessionCodec, NeverThrowsOnTwoThousandRandomMutationsOfEachDecoder) {
  const auto seed = static_cast<std::uint32_t>(testing::UnitTest::GetInstance()->random_seed());
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  const auto all = decoders();
  const auto valid = validEncodings();
  for (const auto& [name, decode] : all) {
    std::vector<Bytes> bases;
    for (const auto& [n, b] : valid) {
      if (n == name) bases.push_back(b);
    }
    ASSERT_FALSE(bases.empty()) << name;
    for (int i = 0; i < 2000; ++i) {
      Bytes bad = bases[rng() % bases.size()];
      const unsigned edits = 1 + rng() % 4;
      for (unsigned e = 0; e < edits; ++e) {
        switch (rng() % 5) {
          case 0: bad[rng() % bad.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;
          case 1: bad[rng() % bad.size()] = static_cast<std::uint8_t>(rng()); break;
          case 2: {  // a random word
            const std::size_t w = (rng() % (bad.size() / 8)) * 8;
            for (std::size_t k = 0; k < 8; ++k) bad[w + k] = static_cast<std::uint8_t>(rng());
            break;
          }
          case 3: {  // drop up to three trailing words, keeping one
            const std::size_t cut = 8 * (1 + rng() % 3);
            bad.resize(bad.size() > cut + 8 ? bad.size() - cut : 8);
            break;
          }
          default: bad.insert(bad.end(), 8, static_cast<std::uint8_t>(rng())); break;
        }
      }
      ASSERT_NO_THROW((void)decode(bad)) << name << " mutation " << i;
    }
  }
}

}  // namespace
}  // namespace portcullis::team
