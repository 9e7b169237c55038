// The team provider's ChangeSealer (the team protocol §8, version 3): local commits sealed as
// signed changes, received ones parsed, verified and opened, alone and under a real Document. Each
// reject path is shown by a change that differs from an accepted one in one respect.
#include "change_sealer.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "fixed_keys.h"
#include "portcullis/document.h"
#include "session.capnp.h"
#include "wire/session_codec.h"

namespace portcullis::team {
namespace {

using fixedkeys::filled;
using fixedkeys::signKeys;

const DocId kDoc = filled<16>(0xD0);
constexpr std::uint8_t kAuthorSeed = 1;

std::shared_ptr<const DeviceKey> deviceKey(std::uint8_t seedByte) {
  return std::make_shared<const DeviceKey>(DeviceKey::fromSeed(filled<32>(seedByte)).value());
}

ActorId actorOf(const Key& key) { return ActorId::fromBytes(key).value(); }
const ActorId& author() {
  static const ActorId a = actorOf(signKeys(kAuthorSeed).pk);
  return a;
}

std::vector<Hash> ascending(std::initializer_list<std::uint8_t> bytes) {
  std::vector<Hash> out;
  for (std::uint8_t b : bytes) out.push_back(filled<32>(b));
  return out;
}

std::vector<Hash> defaultHeads() { return ascending({0x31, 0x32}); }

// The author's sealer for kDoc (or a node's without a device key, when `seed` is 0).
std::shared_ptr<TeamChangeSealer> sealer(
    std::uint8_t seed = kAuthorSeed, const DocId& doc = kDoc,
    std::function<std::vector<Hash>()> heads = defaultHeads,
    std::size_t maxChangeBytes = kMaxChangeBytes) {
  return std::make_shared<TeamChangeSealer>(doc, seed == 0 ? nullptr : deviceKey(seed),
                                            std::move(heads), maxChangeBytes);
}

// Real plain changes by the author: a plain Document's envelopes, one per commit.
std::vector<ChangeEnvelope> plainChanges() {
  DocumentOptions options;
  options.actor = author();
  Document doc(options);
  for (std::int64_t i = 1; i <= 2; ++i) {
    Transaction tx = doc.transaction();
    EXPECT_TRUE(tx.put(ObjId::root(), "k" + std::to_string(i), i));
    tx.commit();
  }
  std::vector<ChangeEnvelope> out;
  for (const ChangeEnvelope* e : doc.graph().changes()) out.push_back(*e);
  return out;
}

// A version-3 body like the ones seal writes, for the reject paths to vary.
ChangeBody v3Body() {
  ChangeBody b;
  b.actor = signKeys(kAuthorSeed).pk;
  b.seq = 1;
  b.startOp = 1;
  b.opCount = 1;
  b.teamHeads = defaultHeads();
  b.scope = "team";
  b.ciphertext = encodeChangePayload(ChangePayload{1'700'000'000'000, "", {1, 2, 3}});
  return b;
}

Bytes signedChange(const Bytes& body, const DocId& doc = kDoc) {
  return encodeSealedChange(body, signChange(doc, body, signKeys(kAuthorSeed).sk));
}
Bytes signedChange(const ChangeBody& body) { return signedChange(encodeChangeBody(body)); }

template <typename T>
void expectError(const Result<T>& r, Errc code, std::string_view what) {
  ASSERT_FALSE(r.has_value()) << "expected " << errcName(code) << " naming '" << what << "'";
  EXPECT_EQ(r.error().code(), code) << r.error().message();
  EXPECT_NE(r.error().message().find(what), std::string::npos)
      << "message '" << r.error().message() << "' does not name " << what;
}

// What the core reads of a change without opening it, hash and payload aside.
auto headerOf(const ChangeEnvelope& e) {
  return std::tie(e.actor, e.seq, e.startOp, e.opCount, e.deps);
}

// --- sealing and opening -------------------------------------------------------------------------

TEST(TeamChangeSealer, SealsAPlainChangeThatParsesAndOpensToTheSameChange) {
  const auto plain = plainChanges();
  ASSERT_EQ(plain.size(), 2u);
  const ChangeEnvelope& second = plain[1];  // it has a dep
  ASSERT_EQ(second.deps.size(), 1u);
  const auto before = std::chrono::system_clock::now();
  const auto sealed = sealer()->seal(second);
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message();
  EXPECT_EQ(headerOf(*sealed), headerOf(second));
  EXPECT_NE(sealed->hash, second.hash);

  // Any node, author or not, reads it back alike.
  for (const auto& s : {sealer(), sealer(0)}) {
    const auto parsed = s->parse(sealed->payload);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
    EXPECT_EQ(headerOf(*parsed), headerOf(second));
    EXPECT_EQ(parsed->hash, sealed->hash);
    EXPECT_EQ(parsed->payload, sealed->payload);
    EXPECT_TRUE(s->canOpen());
    const auto opened = s->open(*parsed);
    ASSERT_TRUE(opened.has_value()) << opened.error().message();
    EXPECT_EQ(*opened, second.payload);
  }

  // The wire form is §8's version 3: the change hash over body and signature, the declared
  // heads, scope "team", no generation nor nonce, the plain change as the payload's ops.
  const auto change = decodeChange(kDoc, sealed->payload);
  ASSERT_TRUE(change.has_value()) << change.error().message();
  EXPECT_EQ(ChangeHash::fromBytes(change->hash).value(), sealed->hash);
  EXPECT_EQ(change->parsed.teamHeads, defaultHeads());
  EXPECT_TRUE(versionThreeShape(change->parsed));
  EXPECT_FALSE(change->unknown);
  EXPECT_EQ(ChangeHash::fromBytes(change->parsed.deps.at(0)).value(), second.deps[0]);
  const auto payload = decodeChangePayload(change->parsed.ciphertext);
  ASSERT_TRUE(payload.has_value()) << payload.error().message();
  EXPECT_EQ(payload->ops, second.payload);
  EXPECT_TRUE(payload->message.empty());
  const auto ms = [](auto t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  };
  EXPECT_GE(payload->time, static_cast<std::uint64_t>(ms(before)));
  EXPECT_LE(payload->time, static_cast<std::uint64_t>(ms(std::chrono::system_clock::now())));

  const auto header = TeamChangeSealer::header(*sealed);
  ASSERT_TRUE(header.has_value()) << header.error().message();
  EXPECT_EQ(header->actor, signKeys(kAuthorSeed).pk);
  EXPECT_EQ(header->teamHeads, defaultHeads());
}

TEST(TeamChangeSealer, DeclaresWhatTeamHeadsReturnsAtEachSeal) {
  auto heads = std::make_shared<std::vector<Hash>>(ascending({0x01}));
  const auto s = sealer(kAuthorSeed, kDoc, [heads] { return *heads; });
  const auto plain = plainChanges();
  const auto first = s->seal(plain[0]);
  *heads = ascending({0x02, 0x03});
  const auto second = s->seal(plain[1]);
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_EQ(TeamChangeSealer::header(*first)->teamHeads, ascending({0x01}));
  EXPECT_EQ(TeamChangeSealer::header(*second)->teamHeads, ascending({0x02, 0x03}));
}

TEST(TeamChangeSealer, ADocumentSealsItsCommitsAndAnotherNodeAppliesThem) {
  DocumentOptions authorOptions;
  authorOptions.actor = author();
  authorOptions.sealer = sealer();
  Document a(authorOptions);
  {
    Transaction tx = a.transaction();
    ASSERT_TRUE(tx.put(ObjId::root(), "title", std::string("minutes")));
    ASSERT_TRUE(tx.commit(CommitOptions{.message = "first", .time = 5, .allowEmpty = false}));
  }
  {
    Transaction tx = a.transaction();
    ASSERT_TRUE(tx.put(ObjId::root(), "count", std::int64_t{2}));
    ASSERT_TRUE(tx.commit());
  }
  const std::vector<Bytes> changes = a.getChangesSince({});
  ASSERT_EQ(changes.size(), 2u);
  for (const Bytes& c : changes) EXPECT_TRUE(decodeChange(kDoc, c).has_value());

  // A node without a device key (a server) applies and loads them.
  DocumentOptions readerOptions;
  readerOptions.sealer = sealer(0);
  Document b(readerOptions);
  const ApplyReport report = b.applyChanges(changes);
  EXPECT_EQ(report.applied, 2u);
  EXPECT_TRUE(report.rejected.empty()) << report.rejected[0].message();
  EXPECT_EQ(b.getHeads(), a.getHeads());
  EXPECT_EQ(b.toJson(), a.toJson());
  EXPECT_EQ(b.toJson(), R"({"count":2,"title":"minutes"})");
  auto loaded = Document::load(a.save(), readerOptions);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message();
  EXPECT_EQ(loaded->toJson(), a.toJson());
  EXPECT_EQ(loaded->getHeads(), a.getHeads());
}

TEST(TeamChangeSealer, ADocumentRefusesASealedChangeWhoseInsideHasAnotherHeader) {
  // The author signs a header that the plain change inside does not carry.
  ChangeEnvelope lying = plainChanges()[0];
  lying.opCount += 1;
  const auto sealed = sealer()->seal(lying);
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message();
  DocumentOptions options;
  options.sealer = sealer(0);
  Document doc(options);
  const ApplyReport report = doc.applyChanges(std::vector<Bytes>{sealed->payload});
  EXPECT_EQ(report.applied, 0u);
  ASSERT_EQ(report.rejected.size(), 1u);
  EXPECT_EQ(report.rejected[0].code(), Errc::Malformed);
}

TEST(TeamChangeSealer, OpenFailsOnAPayloadThatDoesNotDecode) {
  ChangeBody body = v3Body();
  body.ciphertext = Bytes(16, 0xFF);  // not a ChangePayload
  const auto parsed = sealer(0)->parse(signedChange(body));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  expectError(sealer(0)->open(*parsed), Errc::Malformed, "change payload");
}

// --- what seal refuses ---------------------------------------------------------------------------

TEST(TeamChangeSealer, SealRefusesWithoutADeviceKeyOrForAnotherActor) {
  const ChangeEnvelope plain = plainChanges()[0];
  expectError(sealer(0)->seal(plain), Errc::Denied, "no device key");
  expectError(sealer(2)->seal(plain), Errc::Denied, "not this device");
  ChangeEnvelope shortActor = plain;
  shortActor.actor = ActorId::fromBytes(Bytes(16, 0x01)).value();
  expectError(sealer()->seal(shortActor), Errc::Denied, "not this device");
}

TEST(TeamChangeSealer, SealRefusesTeamHeadsThatAreNotOneToSixtyFourAscending) {
  const ChangeEnvelope plain = plainChanges()[0];
  std::vector<Hash> many;
  for (int i = 1; i <= 65; ++i) many.push_back(filled<32>(static_cast<std::uint8_t>(i)));
  const std::vector<Hash> sixtyFour(many.begin(), many.end() - 1);
  EXPECT_TRUE(sealer(kAuthorSeed, kDoc, [&] { return sixtyFour; })->seal(plain).has_value());
  expectError(sealer(kAuthorSeed, kDoc, [&] { return many; })->seal(plain), Errc::Malformed,
              "65 team heads");
  expectError(sealer(kAuthorSeed, kDoc, [] { return std::vector<Hash>{}; })->seal(plain),
              Errc::Malformed, "0 team heads");
  expectError(sealer(kAuthorSeed, kDoc, [] { return ascending({2, 1}); })->seal(plain),
              Errc::Malformed, "not strictly ascending");
  expectError(sealer(kAuthorSeed, kDoc, [] { return ascending({2, 2}); })->seal(plain),
              Errc::Malformed, "not strictly ascending");
}

// --- what parse refuses --------------------------------------------------------------------------

TEST(TeamChangeSealer, ParseAcceptsTheUnalteredChange) {
  // The reference for the reject paths below.
  const auto parsed = sealer(0)->parse(signedChange(v3Body()));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->actor, author());
  EXPECT_EQ(parsed->seq, 1u);
  EXPECT_TRUE(parsed->deps.empty());
}

TEST(TeamChangeSealer, ParseRefusesAChangeSignedForAnotherDocument) {
  const Bytes change = signedChange(encodeChangeBody(v3Body()), filled<16>(0xD1));
  expectError(sealer(0)->parse(change), Errc::Malformed, "signature");
  EXPECT_TRUE(sealer(0, filled<16>(0xD1))->parse(change).has_value());
}

TEST(TeamChangeSealer, ParseRefusesATamperedBodyOrSignature) {
  const Bytes body = encodeChangeBody(v3Body());
  const Signature sig = signChange(kDoc, body, signKeys(kAuthorSeed).sk);
  ChangeBody other = v3Body();
  other.seq = 2;
  expectError(sealer(0)->parse(encodeSealedChange(encodeChangeBody(other), sig)), Errc::Malformed,
              "signature");
  Bytes flipped = body;
  flipped.back() ^= 0x01;  // the last ciphertext byte
  expectError(sealer(0)->parse(encodeSealedChange(flipped, sig)), Errc::Malformed, "signature");
  for (std::size_t i : {std::size_t{0}, std::size_t{63}}) {
    Signature bad = sig;
    bad[i] ^= 0x80;
    expectError(sealer(0)->parse(encodeSealedChange(body, bad)), Errc::Malformed, "signature");
  }
  // Signed by a key that is not the body's actor.
  expectError(sealer(0)->parse(encodeSealedChange(body, signChange(kDoc, body, signKeys(9).sk))),
              Errc::Malformed, "signature");
}

TEST(TeamChangeSealer, ParseRefusesEveryTruncation) {
  const Bytes change = signedChange(v3Body());
  for (std::size_t n = 0; n < change.size(); ++n) {
    const auto r = sealer(0)->parse(Bytes(change.begin(), change.begin() + n));
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_EQ(r.error().code(), Errc::Malformed) << n << ": " << r.error().message();
  }
}

TEST(TeamChangeSealer, ParseRefusesAChangeOverTheLimit) {
  const Bytes change = signedChange(v3Body());
  EXPECT_TRUE(sealer(0, kDoc, defaultHeads, change.size())->parse(change).has_value());
  const auto r = sealer(0, kDoc, defaultHeads, change.size() - 1)->parse(change);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::Malformed);
}

TEST(TeamChangeSealer, ParseDeniesAChangeThatIsNotOfTheVersionThreeShape) {
  ChangeBody scoped = v3Body();
  scoped.scope = "role:editor";
  ChangeBody generation = v3Body();
  generation.generation = filled<32>(0x44);
  ChangeBody nonce = v3Body();
  nonce.nonce = filled<24>(0x45);
  for (const ChangeBody& b : {scoped, generation, nonce}) {
    expectError(sealer(0)->parse(signedChange(b)), Errc::Denied, "version-3");
  }
}

// `bytes` (a canonical T) with its root struct grown by a nonzero data word and a non-null
// pointer beyond the schema's sections: a later version's fields.
template <typename T>
Bytes withLaterFields(const Bytes& bytes) {
  // Canonical bytes are one segment without a segment table: what readMessageUnchecked reads.
  auto aligned = kj::heapArray<capnp::word>(bytes.size() / 8);
  std::memcpy(aligned.begin(), bytes.data(), bytes.size());
  const auto old = capnp::readMessageUnchecked<capnp::AnyStruct>(aligned.begin());
  const auto node = capnp::Schema::from<T>().getProto().getStruct();
  const auto dataWords = static_cast<std::uint16_t>(node.getDataWordCount() + 1);
  const auto pointers = static_cast<std::uint16_t>(node.getPointerCount() + 1);
  capnp::MallocMessageBuilder message;
  auto grown = message.getRoot<capnp::AnyPointer>().initAsAnyStruct(dataWords, pointers);
  std::memcpy(grown.getDataSection().begin(), old.getDataSection().begin(),
              old.getDataSection().size());
  grown.getDataSection()[dataWords * 8 - 1] = 0x5A;
  for (unsigned i = 0; i < old.getPointerSection().size(); ++i) {
    grown.getPointerSection()[i].set(old.getPointerSection()[i]);
  }
  grown.getPointerSection()[pointers - 1].setAs<capnp::Text>("later");
  const kj::Array<capnp::word> canonical = grown.asReader().canonicalize();
  return Bytes(canonical.asBytes().begin(), canonical.asBytes().end());
}

TEST(TeamChangeSealer, ParseRefusesABodyWithFieldsOfALaterVersionAsUnsupported) {
  const Bytes body = withLaterFields<::ChangeBody>(encodeChangeBody(v3Body()));
  const Bytes change = signedChange(body);
  const auto decoded = decodeChange(kDoc, change);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  ASSERT_TRUE(decoded->unknown);
  expectError(sealer(0)->parse(change), Errc::Unsupported, "later version");
}

}  // namespace
}  // namespace portcullis::team
