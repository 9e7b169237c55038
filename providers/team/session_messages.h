// providers/team/session_messages.h — what team peers say to each other, as values: the
// handshake's `Claim` and the session `Message`s of the team spec's §6.6, and the signed change
// of §8 (`ChangeBody`, `ChangePayload`), with no Cap'n Proto types.
//
// The wire forms, their bounds and checks live in wire/session_codec.h; the handshake and sync
// that exchange them come with the provider on the wire. Plain values; safe to copy between
// threads.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "link.h"
#include "portcullis/types.h"

namespace portcullis::team {

using PkTag = std::array<std::uint8_t, 16>;   // H128 of an invitation's public key (§6.1)
using Nonce = std::array<std::uint8_t, 24>;   // a version-4 change's XChaCha20 nonce (§8)

// The claimant's kind. Unknown stands for a value this version does not know: the caller denies
// it `unknownDevice` (§6.6). Its value is outside the schema's range, so it never collides.
enum class ClaimKind : std::uint16_t { Member = 0, Server = 1, Invitee = 2, Unknown = 0xFFFF };

// One open invitation offered to an invitee in Claim_R (mode 1).
struct Offer {
  PkTag pkTag{};      // H128(pk)
  Hash invitation{};  // the invite link's hash
  friend bool operator==(const Offer&, const Offer&) = default;
};

// A handshake claim (§6.1). Which fields are present depends on who sends it: Claim_R has a
// teamId and, in mode 1, invitations; Claim_I of an invitee has the admission fields
// (invitation … inviteSig; userId only for a member invitation). Absent means null on the wire.
struct Claim {
  std::optional<Hash> teamId;
  ClaimKind kind = ClaimKind::Member;
  Key deviceId{};
  Signature signature{};
  std::optional<std::vector<Offer>> invitations;  // most recent first; null or 1..80
  std::optional<Hash> invitation;
  std::optional<EncKey> encKey;
  std::optional<std::string> userId;
  std::optional<Signature> proof;
  std::optional<Signature> consent;
  std::optional<Signature> inviteSig;
  friend bool operator==(const Claim&, const Claim&) = default;
};

// Why a peer is denied (§6.6). Unknown stands for a value of a later version: it still reads as
// denied.
enum class Reason : std::uint16_t {
  WrongTeam = 0,
  UnknownDevice = 1,
  Removed = 2,
  BadSignature = 3,
  Reflection = 4,
  BadProof = 5,
  InvitationRevoked = 6,
  InvitationUsedUp = 7,
  InvitationExpired = 8,
  UserIdTaken = 9,
  NeedMember = 10,
  Timeout = 11,
  TooLarge = 12,
  Unknown = 0xFFFF,
};

// ok, proveAdmission or denied(reason). `reason` means something only when denied.
struct Status {
  enum class Kind : std::uint8_t { Ok, ProveAdmission, Denied };
  Kind kind = Kind::Ok;
  Reason reason = Reason::Unknown;
  friend bool operator==(const Status&, const Status&) = default;
};

// The links a peer proves its admission with (§6.2): each one a `Link` message's canonical bytes,
// envelope checked (wire/link_codec.h's splitLink); decodeLink still runs checks 1 and 2.
struct Proof {
  std::vector<Bytes> links;
  friend bool operator==(const Proof&, const Proof&) = default;
};
struct Need {  // the missing `prev` of links the verifier was sent; strictly ascending
  std::vector<Hash> hashes;
  friend bool operator==(const Need&, const Need&) = default;
};
struct Heads {  // strictly ascending
  std::vector<Hash> hashes;
  std::uint64_t linkCount = 0;
  friend bool operator==(const Heads&, const Heads&) = default;
};
struct VectorEntry {
  Key deviceId{};
  std::uint64_t deviceSeq = 0;  // the device's largest stored deviceSeq
  friend bool operator==(const VectorEntry&, const VectorEntry&) = default;
};
struct Vector {  // strictly ascending by deviceId
  std::vector<VectorEntry> entries;
  friend bool operator==(const Vector&, const Vector&) = default;
};
struct Want {  // strictly ascending
  std::vector<Hash> hashes;
  friend bool operator==(const Want&, const Want&) = default;
};
struct Links {  // T order, one batch; each as in Proof
  std::vector<Bytes> links;
  friend bool operator==(const Links&, const Links&) = default;
};
// A Message union member of a later version: the caller ignores it (§6.6).
struct UnknownMessage {
  std::uint16_t discriminant = 0;
  friend bool operator==(const UnknownMessage&, const UnknownMessage&) = default;
};

// One session message after m3. The alternatives are in the schema's union order, so index()
// is the discriminant for all but UnknownMessage.
using Message = std::variant<Status, Proof, Need, Heads, Vector, Want, Links, UnknownMessage>;

// The signed part of a change (§8). Version 3: scope "team", generation and nonce null,
// ciphertext the canonical ChangePayload in clear.
struct ChangeBody {
  Key actor{};               // the author deviceId, also the CRDT actor ID
  std::uint64_t seq = 0;
  std::uint64_t startOp = 0;
  std::uint32_t opCount = 0;
  std::vector<Hash> deps;    // change hashes, strictly ascending; null when empty
  std::vector<Hash> teamHeads;  // link hashes, 1..64, strictly ascending
  std::string scope;
  std::optional<Hash> generation;
  std::optional<Nonce> nonce;
  Bytes ciphertext;
  friend bool operator==(const ChangeBody&, const ChangeBody&) = default;
};

// A change's content (§8): in version 3 the ciphertext itself, in version 4 what it seals.
struct ChangePayload {
  std::uint64_t time = 0;    // ms since 1970; informational only
  std::string message;       // null when empty
  Bytes ops;                 // the core's bytes, opaque here; null when empty
  friend bool operator==(const ChangePayload&, const ChangePayload&) = default;
};

}  // namespace portcullis::team
