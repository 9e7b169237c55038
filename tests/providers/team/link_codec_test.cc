// The team links' wire codec: checks 1 and 2 of the team protocol §2.3, each rule shown by a link
// that differs from an accepted one in exactly that respect.
#include "wire/link_codec.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fixed_keys.h"
#include "link.capnp.h"

namespace portcullis::team {
namespace {

using fixedkeys::encKey;
using fixedkeys::filled;
using fixedkeys::SignKeys;
using fixedkeys::signKeys;

const Hash kTeam = filled<32>(0x7E);
const Hash kNoInvitation{};
const Hash kInvitation = filled<32>(0x15);

const SignKeys& author() {
  static const SignKeys k = signKeys(1);
  return k;
}

NewDevice consenting(std::uint8_t seedByte, const Hash& inv, std::string_view userId,
                     const Hash& team = kTeam) {
  const SignKeys k = signKeys(seedByte);
  NewDevice d{k.pk, encKey(seedByte), {}};
  d.consent = signBytes(admissionTuple(team, inv, d.deviceId, d.encKey, userId), k.sk);
  return d;
}

// Two lockboxes for one recipient (null generation first) and one for another.
std::vector<Lockbox> lockboxes() {
  return {Lockbox{filled<32>(0x21), std::nullopt, filled<80>(0xA1)},
          Lockbox{filled<32>(0x21), filled<32>(0x31), filled<80>(0xA2)},
          Lockbox{filled<32>(0x22), filled<32>(0x31), filled<80>(0xA3)}};
}

LinkBody bodyWith(Action action) {
  LinkBody b;
  b.prev = {filled<32>(0x01), filled<32>(0x02)};
  b.userId = "alice";
  b.deviceId = author().pk;
  b.deviceSeq = 7;
  b.timestamp = 1'700'000'000'000;
  b.action = std::move(action);
  return b;
}

LinkBody rootBody(std::uint16_t version = 3) {
  Root r;
  r.teamName = "Ünïcode team";
  r.founder = Device{author().pk, encKey(1)};
  r.recoveryKey = signKeys(99).pk;
  r.version = version;
  if (version == 4) {
    r.teamKeys = KeyGeneration{"team", filled<32>(0x41), std::nullopt, std::nullopt, lockboxes()};
  }
  LinkBody b = bodyWith(r);
  b.prev.clear();
  b.deviceSeq = 1;
  return b;
}

LinkBody addMemberBody() {
  AddMember a;
  a.userId = "bob";
  a.devices = {consenting(2, kNoInvitation, "bob"), consenting(3, kNoInvitation, "bob")};
  std::sort(a.devices.begin(), a.devices.end(),
            [](const NewDevice& x, const NewDevice& y) { return x.deviceId < y.deviceId; });
  a.roles = std::vector<std::string>{"admin", "editor"};
  a.lockboxes = lockboxes();
  return bodyWith(a);
}

LinkBody admitMemberBody() {
  AdmitMember a;
  a.invitation = kInvitation;
  a.userId = "carol";
  a.device = consenting(4, kInvitation, "carol");
  a.inviteSig = filled<64>(0x55);  // checked by the graph (check 5), not here
  return bodyWith(a);
}

LinkBody admitDeviceBody() {
  AdmitDevice a;
  a.invitation = kInvitation;
  a.device = consenting(5, kInvitation, "");
  a.inviteSig = filled<64>(0x56);
  return bodyWith(a);
}

LinkBody addDeviceBody() {
  AddDevice a;
  a.userId = "alice";
  a.device = consenting(6, kNoInvitation, "alice");
  return bodyWith(a);
}

LinkBody addDeviceWithLockboxes() {
  LinkBody b = addDeviceBody();
  std::get<AddDevice>(b.action).lockboxes = lockboxes();
  return b;
}

LinkBody setDocumentAccessBody(Principal principal = {Principal::Kind::Role, "editor", {}}) {
  return bodyWith(SetDocumentAccess{filled<16>(0x0D), std::move(principal), Level::Write});
}

LinkBody inviteDeviceBody() {
  InviteDevice a;
  a.publicKey = signKeys(7).pk;
  a.maxUses = 1;
  a.expiresAt = 1'800'000'000'000;
  return bodyWith(a);
}

// One valid link of every action type, with the optional fields both set and unset somewhere.
std::vector<LinkBody> everyAction() {
  InviteMember invite;
  invite.publicKey = signKeys(8).pk;
  invite.maxUses = 5;
  AddMemberRole addRole;
  addRole.userId = "bob";
  addRole.role = "editor";
  addRole.lockboxes = lockboxes();
  RemoveMemberRole removeRole;
  removeRole.userId = "bob";
  removeRole.role = "editor";
  return {
      rootBody(3),
      addMemberBody(),
      bodyWith(invite),
      inviteDeviceBody(),
      bodyWith(RevokeInvitation{kInvitation}),
      admitMemberBody(),
      admitDeviceBody(),
      addDeviceBody(),
      bodyWith(RemoveDevice{signKeys(6).pk}),
      bodyWith(RemoveMember{"bob"}),
      bodyWith(addRole),
      bodyWith(removeRole),
      setDocumentAccessBody(),
      bodyWith(AddServer{signKeys(9).pk, encKey(9)}),
      bodyWith(RemoveServer{signKeys(9).pk}),
      bodyWith(RotateKeys{KeyGeneration{"role:editor", filled<32>(0x42), filled<32>(0x43),
                                        filled<72>(0x44), lockboxes()}}),
  };
}

Bytes signedLink(ByteView body, const SignKeys& by = author()) {
  return encodeLink(body, signLinkBody(body, by.sk));
}

Result<DecodedLink> decodeSigned(ByteView body, const Hash& team = kTeam) {
  return decodeLink(signedLink(body), team);
}

// Dropped (Malformed) with a message naming `rule`.
void expectDropped(const Result<DecodedLink>& r, std::string_view rule) {
  ASSERT_FALSE(r.has_value()) << "expected a drop for " << rule;
  EXPECT_EQ(r.error().code(), Errc::Malformed);
  EXPECT_NE(r.error().message().find(rule), std::string::npos)
      << "message '" << r.error().message() << "' does not name " << rule;
}
void expectDropped(const Bytes& body, std::string_view rule) {
  expectDropped(decodeSigned(body), rule);
}

void expectAccepted(const Bytes& body) {
  const auto r = decodeSigned(body);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_FALSE(r->unknown);
}

// The body's words, aligned, and a reader over them (no limits: these are our own bytes).
struct BodyReader {
  explicit BodyReader(const Bytes& body) : words(kj::heapArray<capnp::word>(body.size() / 8)) {
    std::memcpy(words.begin(), body.data(), body.size());
    segment = words.asPtr();
  }
  capnp::SegmentArrayMessageReader reader() const {
    return capnp::SegmentArrayMessageReader(kj::arrayPtr(&segment, 1));
  }
  kj::Array<capnp::word> words;
  kj::ArrayPtr<const capnp::word> segment;
};

Bytes bytesOf(kj::ArrayPtr<const capnp::word> words) {
  const auto b = words.asBytes();
  return Bytes(b.begin(), b.end());
}

// Re-encodes `body` canonically after `edit` changed its capnp builder: for what the value types
// cannot express (wrong sizes, null versus empty, unknown discriminants).
Bytes edited(const LinkBody& body, const std::function<void(::LinkBody::Builder)>& edit) {
  const BodyReader in(encodeLinkBody(body));
  auto reader = in.reader();
  capnp::MallocMessageBuilder message;
  message.setRoot(reader.getRoot<::LinkBody>());
  edit(message.getRoot<::LinkBody>());
  return bytesOf(capnp::canonicalize(message.getRoot<::LinkBody>().asReader()));
}

capnp::AnyStruct::Builder anyStruct(::LinkBody::Builder b) {
  return capnp::AnyStruct::Builder(std::move(b));
}

capnp::AnyPointer::Builder slotAt(capnp::AnyPointer::Builder slot, std::span<const unsigned> path) {
  if (path.empty()) return slot;
  return slotAt(slot.getAs<capnp::AnyStruct>().getPointerSection()[path[0]], path.subspan(1));
}
capnp::AnyStruct::Reader structAt(capnp::AnyStruct::Reader s, std::span<const unsigned> path) {
  if (path.empty()) return s;
  return structAt(s.getPointerSection()[path[0]].getAs<capnp::AnyStruct>(), path.subspan(1));
}

// `body` with the struct reached through pointer indices `path` (empty: LinkBody itself) grown
// by a nonzero data word and/or a non-null pointer: fields of a later version.
Bytes widened(const LinkBody& body, std::vector<unsigned> path, bool dataWord, bool pointer) {
  const BodyReader in(encodeLinkBody(body));
  auto reader = in.reader();
  const auto old = structAt(reader.getRoot<capnp::AnyPointer>().getAs<capnp::AnyStruct>(), path);
  capnp::MallocMessageBuilder message;
  message.setRoot(reader.getRoot<::LinkBody>());
  const auto oldData = old.getDataSection();
  const auto oldPointers = old.getPointerSection();
  const auto dataWords = static_cast<std::uint16_t>(oldData.size() / 8 + (dataWord ? 1 : 0));
  const auto pointers = static_cast<std::uint16_t>(oldPointers.size() + (pointer ? 1 : 0));
  auto s = slotAt(message.getRoot<capnp::AnyPointer>(), path).initAsAnyStruct(dataWords, pointers);
  std::memcpy(s.getDataSection().begin(), oldData.begin(), oldData.size());
  if (dataWord) s.getDataSection()[dataWords * 8 - 1] = 0x5A;
  for (unsigned i = 0; i < oldPointers.size(); ++i) s.getPointerSection()[i].set(oldPointers[i]);
  if (pointer) {
    const std::uint8_t later[] = {1, 2, 3};
    s.getPointerSection()[pointers - 1].setAs<capnp::Data>(capnp::Data::Reader(later, 3));
  }
  return bytesOf(capnp::canonicalize(message.getRoot<::LinkBody>().asReader()));
}

capnp::Data::Reader dataOf(const Bytes& b) { return capnp::Data::Reader(b.data(), b.size()); }

// ------------------------------------------------------------------------------------------------

TEST(TeamLinkCodec, AcceptsAndRoundTripsOneValidLinkOfEveryActionType) {
  std::vector<LinkBody> bodies = everyAction();
  bodies.push_back(rootBody(4));
  std::vector<bool> seen(static_cast<std::size_t>(ActionType::Unknown), false);
  for (const LinkBody& body : bodies) {
    SCOPED_TRACE(actionName(typeOf(body.action)));
    seen[static_cast<std::size_t>(typeOf(body.action))] = true;
    const Bytes bytes = encodeLinkBody(body);
    const Signature sig = signLinkBody(bytes, author().sk);
    const auto r = decodeLink(encodeLink(bytes, sig), kTeam);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_FALSE(r->unknown);
    EXPECT_EQ(r->parsed, body);
    EXPECT_EQ(r->body, bytes);
    EXPECT_EQ(r->signature, sig);
    EXPECT_EQ(r->hash, linkHash(bytes, sig));
    EXPECT_EQ(encodeLinkBody(r->parsed), bytes);
    const auto split = decodeLink(bytes, sig, kTeam);
    ASSERT_TRUE(split.has_value()) << split.error().message();
    EXPECT_EQ(split->hash, r->hash);
    EXPECT_EQ(split->parsed, body);
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }));
}

// redecodeStoredLink (a stored link's copy for a speculative evaluation) gives what decodeLink
// gives, and skips only the signatures: a flipped signature passes it, never decodeLink. Check 1
// still runs.
TEST(TeamLinkCodec, RedecodingAStoredLinkSkipsOnlyItsSignatures) {
  for (const LinkBody& body : everyAction()) {
    SCOPED_TRACE(actionName(typeOf(body.action)));
    const Bytes bytes = encodeLinkBody(body);
    Signature sig = signLinkBody(bytes, author().sk);
    const auto full = decodeLink(bytes, sig, kTeam);
    const auto again = redecodeStoredLink(bytes, sig, kTeam);
    ASSERT_TRUE(full.has_value() && again.has_value());
    EXPECT_EQ(again->hash, full->hash);
    EXPECT_EQ(again->parsed, full->parsed);
    EXPECT_EQ(again->unknown, full->unknown);
    sig[0] ^= 1;
    EXPECT_FALSE(decodeLink(bytes, sig, kTeam).has_value());
    EXPECT_TRUE(redecodeStoredLink(bytes, sig, kTeam).has_value());
  }
  EXPECT_FALSE(redecodeStoredLink(Bytes(7, 0), Signature{}, kTeam).has_value());
}

TEST(TeamLinkCodec, NamesEveryActionAsTheSpecWritesIt) {
  EXPECT_STREQ(actionName(ActionType::Root), "root");
  EXPECT_STREQ(actionName(ActionType::AddMember), "addMember");
  EXPECT_STREQ(actionName(ActionType::InviteMember), "inviteMember");
  EXPECT_STREQ(actionName(ActionType::InviteDevice), "inviteDevice");
  EXPECT_STREQ(actionName(ActionType::RevokeInvitation), "revokeInvitation");
  EXPECT_STREQ(actionName(ActionType::AdmitMember), "admitMember");
  EXPECT_STREQ(actionName(ActionType::AdmitDevice), "admitDevice");
  EXPECT_STREQ(actionName(ActionType::AddDevice), "addDevice");
  EXPECT_STREQ(actionName(ActionType::RemoveDevice), "removeDevice");
  EXPECT_STREQ(actionName(ActionType::RemoveMember), "removeMember");
  EXPECT_STREQ(actionName(ActionType::AddMemberRole), "addMemberRole");
  EXPECT_STREQ(actionName(ActionType::RemoveMemberRole), "removeMemberRole");
  EXPECT_STREQ(actionName(ActionType::SetDocumentAccess), "setDocumentAccess");
  EXPECT_STREQ(actionName(ActionType::AddServer), "addServer");
  EXPECT_STREQ(actionName(ActionType::RemoveServer), "removeServer");
  EXPECT_STREQ(actionName(ActionType::RotateKeys), "rotateKeys");
  EXPECT_STREQ(actionName(ActionType::Unknown), "unknown");
}

TEST(TeamLinkCodec, EncodesAnEmptyTeamNameAndAbsentOptionsAsNull) {
  LinkBody body = rootBody(3);
  auto& root = std::get<Root>(body.action);
  root.teamName.clear();
  root.recoveryKey.reset();
  const BodyReader in(encodeLinkBody(body));
  auto reader = in.reader();
  const auto r = reader.getRoot<::LinkBody>();
  EXPECT_FALSE(r.hasPrev());
  EXPECT_FALSE(r.getAction().getRoot().hasTeamName());
  EXPECT_FALSE(r.getAction().getRoot().hasRecoveryKey());
  EXPECT_FALSE(r.getAction().getRoot().hasTeamKeys());
  expectAccepted(encodeLinkBody(body));
}

TEST(TeamLinkCodec, HashAndSignatureMatchAnIndependentComputation) {
  const Bytes body = encodeLinkBody(rootBody(4));
  const Signature sig = signLinkBody(body, author().sk);

  const std::string sigTag = "portcullis/team/v3/link-sig";
  Bytes signedBytes(sigTag.begin(), sigTag.end());
  signedBytes.insert(signedBytes.end(), body.begin(), body.end());
  EXPECT_EQ(crypto_sign_verify_detached(sig.data(), signedBytes.data(), signedBytes.size(),
                                        author().pk.data()),
            0);
  Signature expectedSig{};
  crypto_sign_detached(expectedSig.data(), nullptr, signedBytes.data(), signedBytes.size(),
                       author().sk.data());
  EXPECT_EQ(sig, expectedSig);  // Ed25519 is deterministic

  const std::string hashTag = "portcullis/team/v3/link";
  Bytes hashed(hashTag.begin(), hashTag.end());
  hashed.insert(hashed.end(), body.begin(), body.end());
  hashed.insert(hashed.end(), sig.begin(), sig.end());
  Hash expected{};
  crypto_generichash(expected.data(), expected.size(), hashed.data(), hashed.size(), nullptr, 0);

  const auto r = decodeLink(encodeLink(body, sig), kTeam);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->hash, expected);
  EXPECT_EQ(linkHash(body, sig), expected);
}

constexpr const char* kPinnedBody =
    "000000000300040007000000000000000068e5cf8b01000009000000000000000d0000000e0000001d000000"
    "320000001d000000020100002900000022000000010000000201000001010101010101010101010101010101"
    "01010101010101010101010101010101616c6963650000008a88e3dd7409f195fd52db2d3cba5d72ca6709bf"
    "1d94121bf3748801b40f6f5c626f620000000000";
constexpr const char* kPinnedSignature =
    "24a2c68cda5d620acf8e6d44a5cc559034302dcbe007dc667ebff2402cd49cd3"
    "3580883c7bc0287856f74c207606af37da53c30c40d59aaf5e33850cb1e60508";
constexpr const char* kPinnedHash =
    "cc2dd84a6594533059c0bccbcc4489f7c5dc0c6d60f90f55df94557248d035b6";

TEST(TeamLinkCodec, PinsTheBytesAndHashOfAFixedSeedLink) {
  // Known answer: a change to the canonical encoding, the tags or the hash changes these.
  LinkBody body = bodyWith(RemoveMember{"bob"});
  body.prev = {filled<32>(0x01)};
  const Bytes bytes = encodeLinkBody(body);
  const Signature sig = signLinkBody(bytes, author().sk);
  EXPECT_EQ(toHex(bytes), kPinnedBody);
  EXPECT_EQ(toHex(sig), kPinnedSignature);
  EXPECT_EQ(toHex(linkHash(bytes, sig)), kPinnedHash);
}

TEST(TeamLinkCodec, BuildsTheAdmissionTupleAsSection51Says) {
  const Key device = filled<32>(0xD0);
  const EncKey enc = filled<32>(0xE0);
  const Bytes t = admissionTuple(kTeam, kInvitation, device, enc, "carol");
  const std::string tag = "portcullis/team/v3/admission";
  Bytes expected(tag.begin(), tag.end());
  for (const auto* part : {&kTeam, &kInvitation}) expected.insert(expected.end(), part->begin(), part->end());
  expected.insert(expected.end(), device.begin(), device.end());
  expected.insert(expected.end(), enc.begin(), enc.end());
  expected.push_back(5);
  for (char c : std::string("carol")) expected.push_back(static_cast<std::uint8_t>(c));
  EXPECT_EQ(t, expected);
  EXPECT_EQ(admissionTuple(kTeam, kNoInvitation, device, enc, "").back(), 0);
}

// --- check 1: deviceSeq --------------------------------------------------------------------------

TEST(TeamLinkCodec, DropsALinkWhoseDeviceSeqIsZero) {
  LinkBody body = addDeviceBody();
  body.deviceSeq = 0;
  expectDropped(encodeLinkBody(body), "deviceSeq");
}

TEST(TeamLinkCodec, DropsALinkWhoseDeviceSeqIsTwoToTheThirtySecond) {
  LinkBody body = addDeviceBody();
  body.deviceSeq = 0x1'0000'0000;
  expectDropped(encodeLinkBody(body), "deviceSeq");
  body.deviceSeq = 0xFFFF'FFFF;
  expectAccepted(encodeLinkBody(body));
}

// --- check 1: sizes, null and empty ---------------------------------------------------------------

struct Edit {
  const char* what;
  LinkBody (*base)();
  std::function<void(::LinkBody::Builder)> edit;
  const char* rule;
};

void expectEditsDropped(const std::vector<Edit>& edits) {
  for (const Edit& e : edits) {
    SCOPED_TRACE(e.what);
    expectDropped(edited(e.base(), e.edit), e.rule);
  }
}

LinkBody root3() { return rootBody(3); }
LinkBody root4() { return rootBody(4); }
LinkBody addMember() { return addMemberBody(); }
LinkBody admitMember() { return admitMemberBody(); }
LinkBody admitDevice() { return admitDeviceBody(); }
LinkBody addDevice() { return addDeviceBody(); }
LinkBody access() { return setDocumentAccessBody(); }
LinkBody accessToServer() {
  return setDocumentAccessBody({Principal::Kind::Server, "", signKeys(9).pk});
}
LinkBody rotate() { return everyAction()[static_cast<std::size_t>(ActionType::RotateKeys)]; }
LinkBody revoke() { return bodyWith(RevokeInvitation{kInvitation}); }
LinkBody removeDevice() { return bodyWith(RemoveDevice{signKeys(6).pk}); }
LinkBody removeServer() { return bodyWith(RemoveServer{signKeys(9).pk}); }
LinkBody addServer() { return bodyWith(AddServer{signKeys(9).pk, encKey(9)}); }
LinkBody inviteDevice() { return inviteDeviceBody(); }

const Bytes k31(31, 0x33), k33(33, 0x33), k15(15, 0x33), k63(63, 0x33), k65(65, 0x33),
    k71(71, 0x33), k79(79, 0x33), kEmpty;

TEST(TeamLinkCodec, DropsAFixedSizeFieldOfTheWrongSize) {
  expectEditsDropped({
      {"deviceId 31", addDevice, [](auto b) { b.setDeviceId(dataOf(k31)); }, "deviceId"},
      {"deviceId 33", addDevice, [](auto b) { b.setDeviceId(dataOf(k33)); }, "deviceId"},
      {"prev entry 33", addDevice, [](auto b) { b.getPrev().set(1, dataOf(k33)); }, "prev"},
      {"founder 31", root3,
       [](auto b) { b.getAction().getRoot().getFounder().setDeviceId(dataOf(k31)); }, "founder"},
      {"recoveryKey 33", root3,
       [](auto b) { b.getAction().getRoot().setRecoveryKey(dataOf(k33)); }, "recoveryKey"},
      {"consent 63", addDevice,
       [](auto b) { b.getAction().getAddDevice().getDevice().setConsent(dataOf(k63)); },
       "consent"},
      {"encKey 31", addMember,
       [](auto b) { b.getAction().getAddMember().getDevices()[1].setEncKey(dataOf(k31)); },
       "encKey"},
      {"inviteSig 65", admitMember,
       [](auto b) { b.getAction().getAdmitMember().setInviteSig(dataOf(k65)); }, "inviteSig"},
      {"invitation 31", admitDevice,
       [](auto b) { b.getAction().getAdmitDevice().setInvitation(dataOf(k31)); }, "invitation"},
      {"revokeInvitation 33", revoke,
       [](auto b) { b.getAction().setRevokeInvitation(dataOf(k33)); }, "revokeInvitation"},
      {"removeDevice 31", removeDevice,
       [](auto b) { b.getAction().setRemoveDevice(dataOf(k31)); }, "removeDevice"},
      {"removeServer 33", removeServer,
       [](auto b) { b.getAction().setRemoveServer(dataOf(k33)); }, "removeServer"},
      {"serverId 31", addServer,
       [](auto b) { b.getAction().getAddServer().setServerId(dataOf(k31)); }, "serverId"},
      {"document 15", access,
       [](auto b) { b.getAction().getSetDocumentAccess().setDocument(dataOf(k15)); },
       "document"},
      {"principal server 33", accessToServer,
       [](auto b) {
         b.getAction().getSetDocumentAccess().getPrincipal().setServer(dataOf(k33));
       },
       "principal.server"},
      {"check 31", rotate, [](auto b) { b.getAction().getRotateKeys().setCheck(dataOf(k31)); },
       "check"},
      {"previous 33", rotate,
       [](auto b) { b.getAction().getRotateKeys().setPrevious(dataOf(k33)); }, "previous"},
      {"prevBox 71", rotate, [](auto b) { b.getAction().getRotateKeys().setPrevBox(dataOf(k71)); },
       "prevBox"},
      {"sealed 79", rotate,
       [](auto b) { b.getAction().getRotateKeys().getLockboxes()[0].setSealed(dataOf(k79)); },
       "sealed"},
      {"generation 31", root4,
       [](auto b) {
         b.getAction().getRoot().getTeamKeys().getLockboxes()[2].setGeneration(dataOf(k31));
       },
       "generation"},
      {"recipient 33", addMember,
       [](auto b) { b.getAction().getAddMember().getLockboxes()[0].setRecipient(dataOf(k33)); },
       "recipient"},
      {"publicKey 31", inviteDevice,
       [](auto b) { b.getAction().getInviteDevice().setPublicKey(dataOf(k31)); }, "publicKey"},
  });
}

TEST(TeamLinkCodec, DropsAnEmptyDataOrListWhereNullIsAllowed) {
  expectEditsDropped({
      {"root prev empty list", root3, [](auto b) { b.initPrev(0); }, "prev"},
      {"recoveryKey empty", root3,
       [](auto b) { b.getAction().getRoot().setRecoveryKey(dataOf(kEmpty)); }, "recoveryKey"},
      {"roles empty", addMember, [](auto b) { b.getAction().getAddMember().initRoles(0); },
       "roles"},
      {"lockboxes empty", addDevice,
       [](auto b) { b.getAction().getAddDevice().initLockboxes(0); }, "lockboxes"},
      {"teamKeys lockboxes empty", root4,
       [](auto b) { b.getAction().getRoot().getTeamKeys().initLockboxes(0); }, "lockboxes"},
      {"document empty", access,
       [](auto b) { b.getAction().getSetDocumentAccess().setDocument(dataOf(kEmpty)); },
       "document"},
      {"previous empty", rotate,
       [](auto b) { b.getAction().getRotateKeys().setPrevious(dataOf(kEmpty)); }, "previous"},
      {"prevBox empty", rotate,
       [](auto b) { b.getAction().getRotateKeys().setPrevBox(dataOf(kEmpty)); }, "prevBox"},
      {"generation empty", rotate,
       [](auto b) {
         b.getAction().getRotateKeys().getLockboxes()[0].setGeneration(dataOf(kEmpty));
       },
       "generation"},
      {"deviceId empty", addDevice, [](auto b) { b.setDeviceId(dataOf(kEmpty)); }, "deviceId"},
      {"devices empty", addMember, [](auto b) { b.getAction().getAddMember().initDevices(0); },
       "devices"},
  });
}

TEST(TeamLinkCodec, DropsALinkWithoutARequiredField) {
  expectEditsDropped({
      {"deviceId", addDevice, [](auto b) { b.disownDeviceId(); }, "deviceId"},
      {"userId", addDevice, [](auto b) { b.disownUserId(); }, "userId"},
      {"founder", root3, [](auto b) { b.getAction().getRoot().disownFounder(); }, "founder"},
      {"founder encKey", root3,
       [](auto b) { b.getAction().getRoot().getFounder().disownEncKey(); }, "encKey"},
      {"devices", addMember, [](auto b) { b.getAction().getAddMember().disownDevices(); },
       "devices"},
      {"consent", addDevice,
       [](auto b) { b.getAction().getAddDevice().getDevice().disownConsent(); }, "consent"},
      {"device", addDevice, [](auto b) { b.getAction().getAddDevice().disownDevice(); },
       "device"},
      {"inviteSig", admitDevice,
       [](auto b) { b.getAction().getAdmitDevice().disownInviteSig(); }, "inviteSig"},
      {"invitation", admitMember,
       [](auto b) { b.getAction().getAdmitMember().disownInvitation(); }, "invitation"},
      {"revokeInvitation", revoke, [](auto b) { b.getAction().disownRevokeInvitation(); },
       "revokeInvitation"},
      {"removeDevice", removeDevice, [](auto b) { b.getAction().disownRemoveDevice(); },
       "removeDevice"},
      {"removeServer", removeServer, [](auto b) { b.getAction().disownRemoveServer(); },
       "removeServer"},
      {"serverId", addServer, [](auto b) { b.getAction().getAddServer().disownServerId(); },
       "serverId"},
      {"server encKey", addServer, [](auto b) { b.getAction().getAddServer().disownEncKey(); },
       "encKey"},
      {"sealed", addMember,
       [](auto b) { b.getAction().getAddMember().getLockboxes()[1].disownSealed(); }, "sealed"},
      {"recipient", addMember,
       [](auto b) { b.getAction().getAddMember().getLockboxes()[1].disownRecipient(); },
       "recipient"},
      {"rotateKeys", rotate, [](auto b) { b.getAction().disownRotateKeys(); }, "rotateKeys"},
      {"scope", rotate, [](auto b) { b.getAction().getRotateKeys().disownScope(); }, "scope"},
      {"publicKey", inviteDevice,
       [](auto b) { b.getAction().getInviteDevice().disownPublicKey(); }, "publicKey"},
  });
}

// --- check 1: sets and counts ---------------------------------------------------------------------

TEST(TeamLinkCodec, DropsASetListThatIsNotStrictlyAscending) {
  LinkBody prev = addDeviceBody();
  std::swap(prev.prev[0], prev.prev[1]);
  expectDropped(encodeLinkBody(prev), "prev");
  prev.prev[0] = prev.prev[1];
  expectDropped(encodeLinkBody(prev), "prev");

  LinkBody devices = addMemberBody();
  auto& d = std::get<AddMember>(devices.action).devices;
  std::swap(d[0], d[1]);
  expectDropped(encodeLinkBody(devices), "devices");
  d[0] = d[1];
  expectDropped(encodeLinkBody(devices), "devices");

  LinkBody roles = addMemberBody();
  auto& r = *std::get<AddMember>(roles.action).roles;
  std::swap(r[0], r[1]);
  expectDropped(encodeLinkBody(roles), "roles");
  r[0] = r[1];
  expectDropped(encodeLinkBody(roles), "roles");

  LinkBody boxes = addMemberBody();
  auto& l = *std::get<AddMember>(boxes.action).lockboxes;
  std::swap(l[1], l[2]);  // recipients descending
  expectDropped(encodeLinkBody(boxes), "lockboxes");
  boxes = addMemberBody();
  std::swap(l[0], l[1]);  // one recipient: a generation before null
  expectDropped(encodeLinkBody(boxes), "lockboxes");
  boxes = addMemberBody();
  l[1] = l[2];  // a duplicate (recipient, generation)
  l[1].sealed = filled<80>(0x77);
  expectDropped(encodeLinkBody(boxes), "lockboxes");
}

TEST(TeamLinkCodec, BoundsEveryListAtItsLimit) {
  LinkBody prev = addDeviceBody();
  prev.prev.clear();
  for (unsigned i = 0; i < 64; ++i) prev.prev.push_back(filled<32>(static_cast<std::uint8_t>(i)));
  expectAccepted(encodeLinkBody(prev));
  prev.prev.push_back(filled<32>(0xFF));
  expectDropped(encodeLinkBody(prev), "prev");

  LinkBody roles = addMemberBody();
  auto& r = *std::get<AddMember>(roles.action).roles;
  r.clear();
  for (char c = 'a'; c < 'a' + 16; ++c) r.push_back(std::string(1, c));
  expectAccepted(encodeLinkBody(roles));
  r.push_back("z");
  expectDropped(encodeLinkBody(roles), "roles");

  LinkBody devices = addMemberBody();
  auto& d = std::get<AddMember>(devices.action).devices;
  d.clear();
  for (std::uint8_t s = 10; s < 27; ++s) d.push_back(consenting(s, kNoInvitation, "bob"));
  std::sort(d.begin(), d.end(),
            [](const NewDevice& x, const NewDevice& y) { return x.deviceId < y.deviceId; });
  expectDropped(encodeLinkBody(devices), "devices");
  d.pop_back();
  expectAccepted(encodeLinkBody(devices));

  LinkBody boxes = addDeviceBody();
  std::vector<Lockbox> many;
  for (std::uint32_t i = 0; i < 24'000; ++i) {
    Lockbox b{};
    b.recipient[0] = static_cast<std::uint8_t>(i >> 16);
    b.recipient[1] = static_cast<std::uint8_t>(i >> 8);
    b.recipient[2] = static_cast<std::uint8_t>(i);
    b.sealed = filled<80>(0xB0);
    many.push_back(b);
  }
  std::get<AddDevice>(boxes.action).lockboxes = many;
  expectAccepted(encodeLinkBody(boxes));
  Lockbox last{};
  last.recipient.fill(0xFF);
  many.push_back(last);
  std::get<AddDevice>(boxes.action).lockboxes = many;
  expectDropped(encodeLinkBody(boxes), "lockboxes");
}

// --- check 1: text --------------------------------------------------------------------------------

TEST(TeamLinkCodec, DropsAUserIdThatIsNotCleanUtf8OfOneToSixtyFourBytes) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"invalid UTF-8", "al\xC3\x28"},    {"overlong", "a\xC0\xAF"},
      {"surrogate", "a\xED\xA0\x80"},     {"truncated", "a\xE2\x82"},
      {"past U+10FFFF", "a\xF4\x90\x80\x80"},
      {"C0", std::string("a\x01", 2)},    {"NUL", std::string("a\0b", 3)},
      {"newline", "a\nb"},                {"DEL", "a\x7F"},
      {"C1 U+0085", "a\xC2\x85"},         {"C1 U+009F", "a\xC2\x9F"},
      {"65 bytes", std::string(65, 'x')}, {"empty", ""},
  };
  for (const auto& [what, userId] : bad) {
    SCOPED_TRACE(what);
    LinkBody body = addDeviceBody();
    body.userId = userId;
    expectDropped(encodeLinkBody(body), "userId");
    LinkBody action = bodyWith(RemoveMember{userId});
    expectDropped(encodeLinkBody(action), "removeMember");
  }
  LinkBody ok = bodyWith(RemoveMember{std::string(64, 'x')});
  ok.userId = "\xC2\xA0\xE2\x82\xAC\xF0\x9F\x98\x80";  // U+00A0 (first after C1), €, 😀
  expectAccepted(encodeLinkBody(ok));
}

TEST(TeamLinkCodec, DropsABadUserIdInsideEveryAction) {
  LinkBody addMember = addMemberBody();
  std::get<AddMember>(addMember.action).userId = std::string(65, 'b');
  expectDropped(encodeLinkBody(addMember), "addMember.userId");
  LinkBody admit = admitMemberBody();
  std::get<AdmitMember>(admit.action).userId = "c\x7F";
  expectDropped(encodeLinkBody(admit), "admitMember.userId");
  LinkBody addDevice = addDeviceBody();
  std::get<AddDevice>(addDevice.action).userId = "";
  expectDropped(encodeLinkBody(addDevice), "addDevice.userId");
  LinkBody role = bodyWith(AddMemberRole{MemberRole{"b\xC2\x80", "editor", std::nullopt}});
  expectDropped(encodeLinkBody(role), "memberRole.userId");
  expectDropped(encodeLinkBody(setDocumentAccessBody({Principal::Kind::Member, "\x1B", {}})),
                "principal.member");
}

TEST(TeamLinkCodec, DropsATeamNameOverOneHundredTwentyEightBytes) {
  LinkBody body = rootBody(3);
  std::get<Root>(body.action).teamName = std::string(128, 't');
  expectAccepted(encodeLinkBody(body));
  std::get<Root>(body.action).teamName = std::string(129, 't');
  expectDropped(encodeLinkBody(body), "teamName");
  std::get<Root>(body.action).teamName = "tab\tname";
  expectDropped(encodeLinkBody(body), "teamName");
}

TEST(TeamLinkCodec, DropsARoleOutsideLowercaseDigitsUnderscoreAndDash) {
  for (const std::string& role :
       std::vector<std::string>{"Admin!", "Admin", "a b", "", std::string(33, 'r'), "é"}) {
    SCOPED_TRACE(role);
    expectDropped(encodeLinkBody(bodyWith(AddMemberRole{MemberRole{"bob", role, std::nullopt}})),
                  "memberRole.role");
    expectDropped(encodeLinkBody(setDocumentAccessBody({Principal::Kind::Role, role, {}})),
                  "principal.role");
    LinkBody roles = addMemberBody();
    std::get<AddMember>(roles.action).roles = std::vector<std::string>{role};
    expectDropped(encodeLinkBody(roles), "roles");
    LinkBody scope = rotate();
    std::get<RotateKeys>(scope.action).generation.scope = "role:" + role;
    expectDropped(encodeLinkBody(scope), "scope");
  }
  expectAccepted(encodeLinkBody(
      bodyWith(RemoveMemberRole{MemberRole{"bob", std::string(32, '_') , std::nullopt}})));
  expectAccepted(encodeLinkBody(bodyWith(AddMemberRole{MemberRole{"bob", "a-z_09", std::nullopt}})));
}

TEST(TeamLinkCodec, DropsAScopeOtherThanTeamOrRoleColonRole) {
  for (const std::string scope : {"teams", "Team", "role:", "role", "role:x:y", " team"}) {
    SCOPED_TRACE(scope);
    LinkBody body = rotate();
    std::get<RotateKeys>(body.action).generation.scope = scope;
    expectDropped(encodeLinkBody(body), "scope");
  }
  LinkBody team = rotate();
  std::get<RotateKeys>(team.action).generation.scope = "team";
  expectAccepted(encodeLinkBody(team));
}

// --- check 1: values ------------------------------------------------------------------------------

TEST(TeamLinkCodec, DropsAnInviteDeviceWhoseMaxUsesIsNotOne) {
  for (std::uint32_t uses : {0u, 2u, 5u}) {
    LinkBody body = inviteDeviceBody();
    std::get<InviteDevice>(body.action).maxUses = uses;
    expectDropped(encodeLinkBody(body), "maxUses");
  }
}

TEST(TeamLinkCodec, DropsARootOfAVersionOtherThanThreeOrFour) {
  for (std::uint16_t version : {0, 2, 5}) {
    LinkBody body = rootBody(3);
    std::get<Root>(body.action).version = version;
    expectDropped(encodeLinkBody(body), "version");
  }
}

TEST(TeamLinkCodec, DropsARootWhoseTeamKeysAreEmptyOrNotTheTeamsOrUnchecked) {
  expectDropped(edited(rootBody(3), [](auto b) { b.getAction().getRoot().initTeamKeys(); }),
                "teamKeys");
  LinkBody scope = rootBody(4);
  std::get<Root>(scope.action).teamKeys->scope = "role:admin";
  expectDropped(encodeLinkBody(scope), "teamKeys");
  LinkBody check = rootBody(4);
  std::get<Root>(check.action).teamKeys->check.reset();
  expectDropped(encodeLinkBody(check), "teamKeys");
  LinkBody minimal = rootBody(4);
  std::get<Root>(minimal.action).teamKeys->lockboxes.reset();
  expectAccepted(encodeLinkBody(minimal));
}

TEST(TeamLinkCodec, DropsALevelOutOfRange) {
  expectDropped(edited(access(),
                       [](auto b) {
                         b.getAction().getSetDocumentAccess().setLevel(static_cast<::Level>(3));
                       }),
                "level");
}

TEST(TeamLinkCodec, DropsAnUnknownPrincipal) {
  expectDropped(edited(access(),
                       [](auto b) {
                         capnp::AnyStruct::Builder s(b.getAction().getSetDocumentAccess());
                         s.getDataSection()[0] = 4;  // the principal union's discriminant
                       }),
                "principal");
}

TEST(TeamLinkCodec, AcceptsOnlyCanonicalEncKeysOfLargeOrder) {
  EXPECT_TRUE(encKeyAcceptable(encKey(1)));
  EncKey zero{};
  EXPECT_FALSE(encKeyAcceptable(zero));
  EncKey one{};
  one[0] = 1;
  EXPECT_FALSE(encKeyAcceptable(one));  // of order 4
  EncKey p = filled<32>(0xFF);
  p[0] = 0xED;
  p[31] = 0x7F;
  EXPECT_FALSE(encKeyAcceptable(p));  // p itself: non-canonical zero
  p[0] = 0xEE;
  EXPECT_FALSE(encKeyAcceptable(p));  // p + 1
  p[0] = 0xEC;
  EXPECT_FALSE(encKeyAcceptable(p));  // p - 1: canonical, but of order 2
  EncKey top = encKey(1);
  top[31] |= 0x80;
  EXPECT_FALSE(encKeyAcceptable(top));
}

// encKeyAcceptable compares with the five canonical small-order u-coordinates instead of
// running §2.3's scalar multiplication; both must agree on every canonical key.
TEST(TeamLinkCodec, DecidesSmallOrderExactlyAsTheSpecsScalarMultiplicationDoes) {
  std::vector<EncKey> keys;
  for (unsigned i = 0; i < 300; ++i) {  // small values, and values just below p
    EncKey low{};
    low[0] = static_cast<std::uint8_t>(i);
    low[1] = static_cast<std::uint8_t>(i >> 8);
    keys.push_back(low);
    EncKey high = filled<32>(0xFF);
    high[31] = 0x7F;
    high[0] = static_cast<std::uint8_t>(0xEC - (i & 0xFF));
    if (i >= 0x100) high[1] = 0xFE;
    keys.push_back(high);
  }
  EncKey order8a{};  // the two points of order 8, as libsodium's list of small-order points has
  sodium_hex2bin(order8a.data(), 32,
                 "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", 64, nullptr,
                 nullptr, nullptr);
  EncKey order8b{};
  sodium_hex2bin(order8b.data(), 32,
                 "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", 64, nullptr,
                 nullptr, nullptr);
  keys.push_back(order8a);
  keys.push_back(order8b);
  for (int i = 0; i < 2000; ++i) {  // random canonical keys (the top bit cleared)
    EncKey k{};
    randombytes_buf(k.data(), k.size());
    k[31] &= 0x7F;
    keys.push_back(k);
  }
  std::size_t rejected = 0;
  for (const EncKey& k : keys) {
    ASSERT_EQ(encKeyAcceptable(k), encKeyAcceptableByScalarMult(k)) << toHex(k);
    rejected += !encKeyAcceptable(k);
  }
  EXPECT_FALSE(encKeyAcceptableByScalarMult(order8a));
  EXPECT_FALSE(encKeyAcceptableByScalarMult(order8b));
  EXPECT_GE(rejected, 5u);  // 0, 1, p − 1 and the two of order 8 (p, p + 1: not canonical)
}

TEST(TeamLinkCodec, DropsALinkIntroducingAnEncKeyOfSmallOrderOrNotCanonical) {
  EncKey p = filled<32>(0xFF);
  p[0] = 0xED;
  p[31] = 0x7F;
  for (const EncKey& bad : {EncKey{}, p}) {
    LinkBody root = rootBody(3);
    std::get<Root>(root.action).founder.encKey = bad;
    expectDropped(encodeLinkBody(root), "encKey");
    LinkBody server = bodyWith(AddServer{signKeys(9).pk, bad});
    expectDropped(encodeLinkBody(server), "encKey");
    // The device's consent covers its encKey: re-sign it so that only the key is wrong.
    LinkBody device = addDeviceBody();
    auto& d = std::get<AddDevice>(device.action).device;
    d.encKey = bad;
    d.consent = signBytes(admissionTuple(kTeam, kNoInvitation, d.deviceId, bad, "alice"),
                          signKeys(6).sk);
    expectDropped(encodeLinkBody(device), "encKey");
  }
}

// --- check 2 --------------------------------------------------------------------------------------

TEST(TeamLinkCodec, DropsALinkSignedByAnotherKey) {
  const Bytes body = encodeLinkBody(addDeviceBody());
  expectDropped(decodeLink(signedLink(body, signKeys(2)), kTeam), "signature");
}

TEST(TeamLinkCodec, DropsALinkWithOneFlippedSignatureByte) {
  const Bytes body = encodeLinkBody(addDeviceBody());
  for (std::size_t i : {0u, 31u, 63u}) {
    Signature sig = signLinkBody(body, author().sk);
    sig[i] ^= 0x01;
    expectDropped(decodeLink(encodeLink(body, sig), kTeam), "signature");
    expectDropped(decodeLink(body, sig, kTeam), "signature");
  }
}

TEST(TeamLinkCodec, DropsABodyTamperedAfterSigning) {
  const Bytes body = encodeLinkBody(addDeviceBody());
  const Signature sig = signLinkBody(body, author().sk);
  Bytes tampered = body;
  const std::string alice = "alice";
  const auto at = std::search(tampered.begin(), tampered.end(), alice.begin(), alice.end());
  ASSERT_NE(at, tampered.end());
  *at = 'b';  // still canonical and well formed: only the signature can tell
  expectDropped(decodeLink(encodeLink(tampered, sig), kTeam), "signature");
  tampered = body;
  tampered[8] ^= 0x01;  // the deviceSeq
  expectDropped(decodeLink(encodeLink(tampered, sig), kTeam), "signature");
}

TEST(TeamLinkCodec, DropsAConsentByTheWrongKeyOrOverTheWrongTuple) {
  LinkBody addDevice = addDeviceBody();
  auto& d = std::get<AddDevice>(addDevice.action).device;
  d.consent = signBytes(admissionTuple(kTeam, kNoInvitation, d.deviceId, d.encKey, "alice"),
                        signKeys(2).sk);
  expectDropped(encodeLinkBody(addDevice), "consent");

  LinkBody addMember = addMemberBody();
  auto& m = std::get<AddMember>(addMember.action);
  for (std::uint8_t seed : {2, 3}) {  // the second device's consent, for another userId
    if (signKeys(seed).pk == m.devices[1].deviceId) {
      m.devices[1].consent = consenting(seed, kNoInvitation, "mallory").consent;
    }
  }
  expectDropped(encodeLinkBody(addMember), "consent");

  LinkBody admitMember = admitMemberBody();
  std::get<AdmitMember>(admitMember.action).device = consenting(4, kNoInvitation, "carol");
  expectDropped(encodeLinkBody(admitMember), "consent");  // signed for no invitation

  LinkBody admitDevice = admitDeviceBody();
  std::get<AdmitDevice>(admitDevice.action).device = consenting(5, kInvitation, "alice");
  expectDropped(encodeLinkBody(admitDevice), "consent");  // admitDevice's userId is empty

  expectDropped(decodeSigned(encodeLinkBody(addDeviceBody()), filled<32>(0x7F)), "consent");
}

TEST(TeamLinkCodec, LeavesTheInviteSigToTheGraph) {
  LinkBody body = admitMemberBody();
  std::get<AdmitMember>(body.action).inviteSig = filled<64>(0x00);
  expectAccepted(encodeLinkBody(body));
}

// --- framing: truncation, garbage, canonical form, size -------------------------------------------

TEST(TeamLinkCodec, DropsTruncatedBytesAtEveryLength) {
  const Bytes body = encodeLinkBody(addMemberBody());
  const Signature sig = signLinkBody(body, author().sk);
  const Bytes link = encodeLink(body, sig);
  for (std::size_t n = 0; n < link.size(); ++n) {
    const auto r = decodeLink(ByteView(link.data(), n), kTeam);
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_EQ(r.error().code(), Errc::Malformed);
  }
  for (std::size_t n = 0; n < body.size(); ++n) {
    const auto r = decodeLink(ByteView(body.data(), n), sig, kTeam);
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_EQ(r.error().code(), Errc::Malformed);
  }
}

TEST(TeamLinkCodec, DropsTrailingGarbage) {
  const Bytes body = encodeLinkBody(addDeviceBody());
  const Signature sig = signLinkBody(body, author().sk);
  for (const Bytes& tail : {Bytes(8, 0), Bytes(8, 0xAB), Bytes(3, 0xAB)}) {
    Bytes link = encodeLink(body, sig);
    link.insert(link.end(), tail.begin(), tail.end());
    expectDropped(decodeLink(link, kTeam), "link");
    Bytes longer = body;
    longer.insert(longer.end(), tail.begin(), tail.end());
    expectDropped(decodeLink(longer, signLinkBody(longer, author().sk), kTeam), "body");
  }
}

TEST(TeamLinkCodec, DropsABodyReachedThroughAFarPointer) {
  // The same struct, its root pointer a far pointer to a landing pad after the content.
  const Bytes body = encodeLinkBody(addDeviceBody());
  const std::size_t n = body.size() / 8;
  Bytes far = body;
  std::uint64_t rootPointer = 0;
  std::memcpy(&rootPointer, body.data(), 8);
  const std::uint64_t farPointer = 2 | (static_cast<std::uint64_t>(n) << 3);
  const auto pad = static_cast<std::uint32_t>(-static_cast<std::int32_t>(n)) << 2;
  const std::uint64_t landing = (rootPointer & 0xFFFF'FFFF'0000'0000u) | pad;
  std::memcpy(far.data(), &farPointer, 8);
  far.resize(body.size() + 8);
  std::memcpy(far.data() + body.size(), &landing, 8);
  // capnp reads it as the same struct; only the canonical check refuses it.
  const BodyReader in(far);
  auto reader = in.reader();
  EXPECT_EQ(reader.getRoot<::LinkBody>().getUserId(), "alice");
  expectDropped(far, "canonical");
}

TEST(TeamLinkCodec, DropsABodyOfTwoSegmentsOrWithASegmentTable) {
  const Bytes body = encodeLinkBody(addMemberBody());
  const BodyReader in(body);
  auto reader = in.reader();
  capnp::MallocMessageBuilder split(1, capnp::AllocationStrategy::FIXED_SIZE);
  split.setRoot(reader.getRoot<::LinkBody>());
  ASSERT_GT(split.getSegmentsForOutput().size(), 1u);
  // The segment table, read as a root pointer, may make a canonical struct of the rest: then
  // check 1 drops it on some field; either way it is dropped.
  expectDropped(bytesOf(capnp::messageToFlatArray(split)), "");
  expectDropped(bytesOf(split.getSegmentsForOutput()[0]), "body");

  capnp::MallocMessageBuilder flat;
  flat.setRoot(reader.getRoot<::LinkBody>());
  expectDropped(bytesOf(capnp::messageToFlatArray(flat)), "");
}

TEST(TeamLinkCodec, DropsANonCanonicalLinkEnvelope) {
  const Bytes body = encodeLinkBody(addDeviceBody());
  const Signature sig = signLinkBody(body, author().sk);
  capnp::MallocMessageBuilder message;
  auto link = message.initRoot<::Link>();
  link.setSignature(capnp::Data::Reader(sig.data(), sig.size()));  // out of preorder
  link.setBody(dataOf(body));
  expectDropped(decodeLink(bytesOf(message.getSegmentsForOutput()[0]), kTeam), "canonical");

  capnp::MallocMessageBuilder extra;
  auto wide = extra.getRoot<capnp::AnyPointer>().initAsAnyStruct(1, 2);
  wide.getDataSection()[0] = 1;
  wide.getPointerSection()[0].setAs<capnp::Data>(dataOf(body));
  wide.getPointerSection()[1].setAs<capnp::Data>(capnp::Data::Reader(sig.data(), sig.size()));
  expectDropped(decodeLink(bytesOf(wide.asReader().canonicalize()), kTeam), "link");

  capnp::MallocMessageBuilder shortSig;
  auto s = shortSig.initRoot<::Link>();
  s.setBody(dataOf(body));
  s.setSignature(capnp::Data::Reader(sig.data(), 63));
  expectDropped(decodeLink(bytesOf(capnp::canonicalize(s.asReader())), kTeam), "signature");
}

TEST(TeamLinkCodec, DropsABodyOverFourMebibytes) {
  const Signature sig{};
  for (std::size_t size : {kMaxLinkBodyBytes + 8, kMaxLinkBodyBytes + 2048}) {
    const Bytes big(size, 0);
    expectDropped(decodeLink(big, sig, kTeam), "4 MiB");
    capnp::MallocMessageBuilder message;
    auto link = message.initRoot<::Link>();
    link.setBody(dataOf(big));
    link.setSignature(capnp::Data::Reader(sig.data(), sig.size()));
    expectDropped(decodeLink(bytesOf(capnp::canonicalize(link.asReader())), kTeam),
                  size < kMaxLinkBodyBytes + 1024 ? "4 MiB" : "size limit");
  }
}

TEST(TeamLinkCodec, DropsPointersOfTheWrongKind) {
  // userId as a struct; prev as a list of structs; the root pointer as a list.
  expectDropped(edited(addDeviceBody(),
                       [](auto b) {
                         auto s = anyStruct(b);
                         s.getPointerSection()[1].initAsAnyStruct(1, 0).getDataSection()[0] = 1;
                       }),
                "body");
  expectDropped(edited(addDeviceBody(),
                       [](::LinkBody::Builder b) {
                         auto l = anyStruct(b).getPointerSection()[0]
                                      .initAs<capnp::List<::Device>>(1);
                         l[0].setDeviceId(dataOf(Bytes(32, 1)));
                       }),
                "prev");
  Bytes listRoot(16, 0);
  listRoot[0] = 1;  // a list pointer, offset 0
  listRoot[4] = 2;  // of bytes (element size 2), one element
  listRoot[5] = 0;
  listRoot[8] = 0x41;
  expectDropped(decodeLink(listRoot, Signature{}, kTeam), "body");
}

TEST(TeamLinkCodec, NeverThrowsOnAnyOneByteChangeOfALink) {
  for (const LinkBody& body : {addMemberBody(), rootBody(4), admitMemberBody()}) {
    const Bytes link = signedLink(encodeLinkBody(body));
    for (std::size_t i = 0; i < link.size(); ++i) {
      for (std::uint8_t flip : {0x01, 0x80, 0xFF}) {
        Bytes bad = link;
        bad[i] ^= flip;
        Result<DecodedLink> r = Error(Errc::Io, "not run");
        ASSERT_NO_THROW(r = decodeLink(bad, kTeam)) << i;
        ASSERT_FALSE(r.has_value()) << "byte " << i << " ^ " << int(flip);
        EXPECT_EQ(r.error().code(), Errc::Malformed);
      }
    }
  }
}

// --- unknown links --------------------------------------------------------------------------------

TEST(TeamLinkCodec, KeepsAnUnknownUnionMemberAsUnknown) {
  const LinkBody base = addDeviceBody();
  const Bytes body = edited(base, [](auto b) {
    auto data = anyStruct(b).getDataSection();
    data[16] = 21;  // the action union's discriminant: ordinal @21, a later version's
    data[17] = 0;
  });
  const auto r = decodeSigned(body);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_TRUE(r->unknown);
  EXPECT_EQ(r->parsed.action, Action(UnknownAction{21}));
  EXPECT_EQ(r->parsed.userId, base.userId);
  EXPECT_EQ(r->parsed.prev, base.prev);
  EXPECT_EQ(r->parsed.deviceSeq, base.deviceSeq);
  EXPECT_EQ(r->hash, linkHash(body, r->signature));
}

TEST(TeamLinkCodec, ChecksTheCommonFieldsOfAnUnknownUnionMember) {
  LinkBody base = addDeviceBody();
  base.deviceSeq = 0;
  expectDropped(edited(base, [](auto b) { anyStruct(b).getDataSection()[16] = 30; }),
                "deviceSeq");
  expectDropped(edited(addDeviceBody(),
                       [](auto b) {
                         anyStruct(b).getDataSection()[16] = 30;
                         b.setUserId("");
                       }),
                "userId");
  // An unknown link's signature is checked all the same.
  const Bytes body = edited(addDeviceBody(), [](auto b) { anyStruct(b).getDataSection()[16] = 30; });
  expectDropped(decodeLink(signedLink(body, signKeys(2)), kTeam), "signature");
}

TEST(TeamLinkCodec, KeepsAKnownStructWithWordsOfALaterVersionAsUnknown) {
  struct Case {
    const char* what;
    LinkBody body;
    std::vector<unsigned> path;
    bool dataWord;
    bool pointer;
  };
  const std::vector<Case> cases = {
      {"LinkBody data word", addDeviceBody(), {}, true, false},
      {"LinkBody pointer", addDeviceBody(), {}, false, true},
      {"AddDevice pointer", addDeviceWithLockboxes(), {3}, false, true},
      {"AddDevice data word", addDeviceBody(), {3}, true, false},
      {"NewDevice pointer", addDeviceBody(), {3, 1}, false, true},
      {"Root's Device data word", rootBody(3), {3, 1}, true, false},
      {"Root pointer", rootBody(4), {3}, false, true},
      {"Invite data word", inviteDeviceBody(), {3}, true, false},
      {"KeyGeneration pointer", rootBody(4), {3, 3}, false, true},
      {"DocumentAccess data word", setDocumentAccessBody(), {3}, true, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const Bytes body = widened(c.body, c.path, c.dataWord, c.pointer);
    ASSERT_NE(body, encodeLinkBody(c.body));
    const auto r = decodeSigned(body);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_TRUE(r->unknown);
    EXPECT_EQ(r->parsed, c.body);  // the known action as this version reads it
  }
}

TEST(TeamLinkCodec, DropsALaterVersionsLinkWhoseKnownFieldsFail) {
  LinkBody body = addDeviceBody();
  std::get<AddDevice>(body.action).userId = "";
  expectDropped(widened(body, {3}, true, false), "addDevice.userId");
  LinkBody consent = addDeviceBody();
  std::get<AddDevice>(consent.action).device.consent = filled<64>(0x01);
  expectDropped(widened(consent, {}, true, false), "consent");
}

TEST(TeamLinkCodec, RefusesToEncodeAnUnknownAction) {
  EXPECT_THROW((void)encodeLinkBody(bodyWith(UnknownAction{21})), std::logic_error);
}

TEST(TeamLinkCodec, JudgesTextAndRolesByTheSectionTwoRules) {
  EXPECT_TRUE(textAcceptable("", 0, 128));
  EXPECT_FALSE(textAcceptable("", 1, 64));
  EXPECT_TRUE(textAcceptable("\xE2\x82\xAC", 3, 3));
  EXPECT_FALSE(textAcceptable("\xE2\x82\xAC", 1, 2));
  EXPECT_FALSE(textAcceptable("\xE0\x80\x80", 0, 10));  // overlong NUL
  EXPECT_FALSE(textAcceptable("\xF8\x88\x80\x80\x80", 0, 10));
  EXPECT_FALSE(textAcceptable("\xC2\x80", 0, 10));
  EXPECT_TRUE(textAcceptable("\xC2\xA0", 0, 10));
  EXPECT_FALSE(textAcceptable("\x80", 0, 10));
  EXPECT_TRUE(roleAcceptable("admin"));
  EXPECT_TRUE(roleAcceptable("a-b_c9"));
  EXPECT_FALSE(roleAcceptable("Admin!"));
  EXPECT_FALSE(roleAcceptable(""));
  EXPECT_FALSE(roleAcceptable(std::string(33, 'a')));
}

}  // namespace
}  // namespace portcullis::team
