// providers/team/link.h — a team link as values: the LinkBody of the team spec's §2.1 schema,
// decoded (or about to be encoded), with no Cap'n Proto types.
//
// A link is what a member device signs to change the team: its body names the links it saw
// (`prev`), its author (userId, deviceId, deviceSeq) and one action. The wire form and the
// checks of §2.3 live in wire/link_codec.h; the graph that orders and evaluates links in
// team_graph.h. Plain values; safe to copy between threads.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace portcullis::team {

// Fixed-size byte strings of the schema. Ordered bytewise, as the spec's sets and T order are.
using Hash = std::array<std::uint8_t, 32>;        // a link hash, a team ID
using Key = std::array<std::uint8_t, 32>;         // an Ed25519 public key (device, server, invite)
using EncKey = std::array<std::uint8_t, 32>;      // an X25519 public key
using Signature = std::array<std::uint8_t, 64>;
using DocId = std::array<std::uint8_t, 16>;       // a portcullis DocumentId's bytes
using SealedBox = std::array<std::uint8_t, 80>;   // a lockbox's crypto_box_seal of a seed
using PrevBox = std::array<std::uint8_t, 72>;     // nonce ‖ secretbox of the previous seed

struct Lockbox {
  Key recipient{};
  std::optional<Hash> generation;  // null only inside the KeyGeneration that makes it
  SealedBox sealed{};
  friend bool operator==(const Lockbox&, const Lockbox&) = default;
};
// A list that the schema lets be null: null and empty differ (an empty list fails check 1).
using Lockboxes = std::optional<std::vector<Lockbox>>;

struct KeyGeneration {  // version 4 only (§7); in version 3 it makes a link invalid or dropped
  std::string scope;
  std::optional<Hash> check;
  std::optional<Hash> previous;
  std::optional<PrevBox> prevBox;
  Lockboxes lockboxes;
  friend bool operator==(const KeyGeneration&, const KeyGeneration&) = default;
};

struct Device {
  Key deviceId{};
  EncKey encKey{};
  friend bool operator==(const Device&, const Device&) = default;
};

struct NewDevice {  // a device introduced with its own consent (§5.1)
  Key deviceId{};
  EncKey encKey{};
  Signature consent{};
  friend bool operator==(const NewDevice&, const NewDevice&) = default;
};

enum class Level : std::uint8_t { None = 0, Read = 1, Write = 2 };

// The actions, in the order of the schema's union (so ActionType's value is the union
// discriminant). Unknown stands for a discriminant this version does not know (§2.3).
struct Root {
  std::string teamName;
  Device founder;
  std::optional<Key> recoveryKey;
  std::uint16_t version = 3;
  std::optional<KeyGeneration> teamKeys;
  friend bool operator==(const Root&, const Root&) = default;
};
struct AddMember {
  std::string userId;
  std::vector<NewDevice> devices;                  // ascending by deviceId, 1..16
  std::optional<std::vector<std::string>> roles;   // null or 1..16, ascending
  Lockboxes lockboxes;
  friend bool operator==(const AddMember&, const AddMember&) = default;
};
struct Invite {
  Key publicKey{};
  std::uint32_t maxUses = 0;   // 0: unlimited; an inviteDevice's is 1
  std::uint64_t expiresAt = 0; // ms since 1970; 0: never. Checked only by the admitting device.
  friend bool operator==(const Invite&, const Invite&) = default;
};
struct InviteMember : Invite {};
struct InviteDevice : Invite {};
struct RevokeInvitation {
  Hash invitation{};
  friend bool operator==(const RevokeInvitation&, const RevokeInvitation&) = default;
};
struct AdmitMember {
  Hash invitation{};
  std::string userId;
  NewDevice device;
  Signature inviteSig{};
  Lockboxes lockboxes;
  friend bool operator==(const AdmitMember&, const AdmitMember&) = default;
};
struct AdmitDevice {
  Hash invitation{};
  NewDevice device;
  Signature inviteSig{};
  Lockboxes lockboxes;
  friend bool operator==(const AdmitDevice&, const AdmitDevice&) = default;
};
struct AddDevice {
  std::string userId;
  NewDevice device;
  Lockboxes lockboxes;
  friend bool operator==(const AddDevice&, const AddDevice&) = default;
};
struct RemoveDevice {
  Key deviceId{};
  friend bool operator==(const RemoveDevice&, const RemoveDevice&) = default;
};
struct RemoveMember {
  std::string userId;
  friend bool operator==(const RemoveMember&, const RemoveMember&) = default;
};
struct MemberRole {
  std::string userId;
  std::string role;
  Lockboxes lockboxes;
  friend bool operator==(const MemberRole&, const MemberRole&) = default;
};
struct AddMemberRole : MemberRole {};
struct RemoveMemberRole : MemberRole {};

// Who a document access entry is about (§9).
struct Principal {
  enum class Kind : std::uint8_t { Everyone, Role, Member, Server };
  Kind kind = Kind::Everyone;
  std::string name;  // the role or the member's userId
  Key server{};      // Kind::Server only
  friend bool operator==(const Principal&, const Principal&) = default;
  friend auto operator<=>(const Principal&, const Principal&) = default;
};
struct SetDocumentAccess {
  std::optional<DocId> document;  // null: "*", every document
  Principal principal;
  Level level = Level::None;
  friend bool operator==(const SetDocumentAccess&, const SetDocumentAccess&) = default;
};
struct AddServer {
  Key serverId{};
  EncKey encKey{};
  friend bool operator==(const AddServer&, const AddServer&) = default;
};
struct RemoveServer {
  Key serverId{};
  friend bool operator==(const RemoveServer&, const RemoveServer&) = default;
};
struct RotateKeys {
  KeyGeneration generation;
  friend bool operator==(const RotateKeys&, const RotateKeys&) = default;
};
struct UnknownAction {  // a union member of a later version: stored, invalid, relayed
  std::uint16_t discriminant = 0;
  friend bool operator==(const UnknownAction&, const UnknownAction&) = default;
};

using Action = std::variant<Root, AddMember, InviteMember, InviteDevice, RevokeInvitation,
                            AdmitMember, AdmitDevice, AddDevice, RemoveDevice, RemoveMember,
                            AddMemberRole, RemoveMemberRole, SetDocumentAccess, AddServer,
                            RemoveServer, RotateKeys, UnknownAction>;

enum class ActionType : std::uint8_t {
  Root, AddMember, InviteMember, InviteDevice, RevokeInvitation, AdmitMember, AdmitDevice,
  AddDevice, RemoveDevice, RemoveMember, AddMemberRole, RemoveMemberRole, SetDocumentAccess,
  AddServer, RemoveServer, RotateKeys, Unknown
};

inline ActionType typeOf(const Action& a) noexcept { return static_cast<ActionType>(a.index()); }

// The action's name as the spec writes it ("addMember", ...); "unknown" for UnknownAction.
const char* actionName(ActionType) noexcept;

struct LinkBody {
  std::vector<Hash> prev;       // strictly ascending; empty only in the root
  std::string userId;
  Key deviceId{};
  std::uint64_t deviceSeq = 1;
  std::uint64_t timestamp = 0;  // ms since 1970; informational only
  Action action;
  friend bool operator==(const LinkBody&, const LinkBody&) = default;
};

}  // namespace portcullis::team

namespace portcullis::team {
// For unordered containers keyed by a hash or key: they are uniformly distributed already, so
// their first word is as good a hash as any.
struct ArrayHash {
  template <std::size_t N>
  std::size_t operator()(const std::array<std::uint8_t, N>& a) const noexcept {
    static_assert(N >= sizeof(std::size_t));
    std::size_t out = 0;
    std::memcpy(&out, a.data(), sizeof out);
    return out;
  }
};
}  // namespace portcullis::team
