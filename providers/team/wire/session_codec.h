// providers/team/wire/session_codec.h — the wire forms of what team peers exchange (the spec's
// §6.6 schema in schema/session.capnp): handshake claims, session messages and signed changes
// (§8), with the change signature and hash.
//
// Decoders take peer bytes: they are strict (exact sizes, null versus empty, strictly ascending
// sets, clean text), bounded (the §6 size limits, a caller-given frame limit, tight reader
// limits), and never throw on any input; every failure is Errc::Malformed with a short message
// naming the field. Encoders always write canonical Cap'n Proto (one segment, no segment table).
// Pure functions; any thread.
#pragma once

#include <cstddef>
#include <span>

#include "link.h"
#include "portcullis/result.h"
#include "portcullis/types.h"
#include "session_messages.h"

namespace portcullis::team {

// §6: m2 = E_R(32) ‖ AEAD(Claim_R) ≤ 8 KiB, m3 = AEAD(Claim_I) ≤ 4 KiB (the u32 length prefix
// not counted); the AEAD adds a 16-byte tag.
inline constexpr std::size_t kMaxM2Bytes = 8u << 10;
inline constexpr std::size_t kMaxM3Bytes = 4u << 10;
inline constexpr std::size_t kAeadTagBytes = 16;
inline constexpr std::size_t kEphemeralKeyBytes = 32;
inline constexpr std::size_t kMaxResponderClaimBytes =
    kMaxM2Bytes - kEphemeralKeyBytes - kAeadTagBytes;
inline constexpr std::size_t kMaxInitiatorClaimBytes = kMaxM3Bytes - kAeadTagBytes;
// §6.1: up to 64 member invitations, then at most 16 device invitations of R's own instance.
inline constexpr std::size_t kMaxOffers = 64 + 16;
// §6.2: a Proof holds at most 256 links of 1 MiB in all (the links' bytes).
inline constexpr std::size_t kMaxProofLinks = 256;
inline constexpr std::size_t kMaxProofBytes = 1u << 20;
// §8: teamHeads 1..64.
inline constexpr std::size_t kMaxTeamHeads = 64;
// A ChangeBody's scope: "team" or "role:" and a role of up to 32 bytes, with room to spare for a
// later version's scopes (the text rule still applies).
inline constexpr std::size_t kMaxScopeBytes = 64;
// The default bound on a SealedChange or ChangeBody; callers pass their frame limit.
inline constexpr std::size_t kMaxChangeBytes = 4u << 20;

// Who sent a claim, which decides its size bound and which fields it may carry: Claim_R (in m2)
// has a teamId and no admission fields; Claim_I (in m3) has no teamId nor invitations, and has
// the admission fields (all but userId required) exactly when its kind is invitee.
enum class ClaimRole : std::uint8_t { Responder, Initiator };

// The canonical encoding of `claim`. Does not check it: encoding what decodeClaim rejects is
// allowed (tests build bad claims this way). ClaimKind::Unknown is written as its raw value.
[[nodiscard]] Bytes encodeClaim(const Claim& claim);

// Decodes a canonical Claim sent by `role`: at most kMax{Responder,Initiator}ClaimBytes, sizes
// exact (keys and hashes 32, signatures 64, pkTag 16), encKey acceptable (link_codec.h), userId
// 1..64 bytes of clean text, invitations null or 1..kMaxOffers. Words beyond this schema are
// ignored; an unknown kind decodes as ClaimKind::Unknown, which the caller denies unknownDevice.
[[nodiscard]] Result<Claim> decodeClaim(ByteView bytes, ClaimRole role);

// The canonical encoding of `message`. Each link in a Proof or Links must be a `Link` message
// that splitLink accepts, and an UnknownMessage cannot be encoded: otherwise PORTCULLIS_REQUIRE
// fails (std::logic_error).
[[nodiscard]] Bytes encodeMessage(const Message& message);

// Decodes one single-segment Message (canonical form not required) of at most `frameLimit`
// bytes. Hash lists (Heads, Need, Want) and Vector entries are non-empty and strictly ascending,
// Vector's deviceSeq in 1..2^32-1; every link of a Proof or Links passes splitLink and is
// returned as canonical `Link` bytes; a Proof has at most kMaxProofLinks links and kMaxProofBytes
// of them. An unknown union member decodes as UnknownMessage (the caller ignores it), an unknown
// Status member or Reason as denied with Reason::Unknown. Words beyond this schema are ignored.
[[nodiscard]] Result<Message> decodeMessage(ByteView bytes, std::size_t frameLimit);

// The canonical encoding of a ChangeBody, unchecked (tests encode bad bodies this way).
[[nodiscard]] Bytes encodeChangeBody(const ChangeBody& body);

struct DecodedChangeBody {
  ChangeBody body;
  // Every known field passed, but the body has data or pointer words beyond this schema (fields
  // of a later version): the change is kept and relayed, never charged, never applied (§6.6).
  bool unknown = false;
};

// Decodes a canonical ChangeBody of at most `maxBytes`: actor 32 bytes, deps null or strictly
// ascending 32-byte hashes, teamHeads 1..64 strictly ascending, scope 1..kMaxScopeBytes of clean
// text, generation null or 32 bytes, nonce null or 24, ciphertext non-empty. The version rules
// (versionThreeShape, §8 rule 3) and the core's seq and deps rules are the caller's.
[[nodiscard]] Result<DecodedChangeBody> decodeChangeBody(ByteView bytes,
                                                         std::size_t maxBytes = kMaxChangeBytes);

// §2.4 and §8's version-3 shape: scope "team", generation and nonce null. A version-3 team holds
// any other change invalid.
[[nodiscard]] bool versionThreeShape(const ChangeBody& body);

// The canonical encoding of a ChangePayload, unchecked.
[[nodiscard]] Bytes encodeChangePayload(const ChangePayload& payload);

// Decodes a canonical ChangePayload of at most `maxBytes`: message null or clean text, ops null
// or non-empty. Words beyond this schema are ignored. A version-3 change whose payload fails here
// is applied as opCount no-ops and reported (§8): the caller decides.
[[nodiscard]] Result<ChangePayload> decodeChangePayload(ByteView bytes,
                                                        std::size_t maxBytes = kMaxChangeBytes);

// The `SealedChange` message {body, signature}, canonical.
[[nodiscard]] Bytes encodeSealedChange(ByteView body, const Signature& signature);

struct SealedChangeParts {
  Bytes body;  // unchecked
  Signature signature{};
};
// Splits a single-segment SealedChange of at most `maxBytes` (canonical form not required: the
// envelope is neither signed nor hashed). Body non-empty, signature 64 bytes.
[[nodiscard]] Result<SealedChangeParts> decodeSealedChange(ByteView bytes,
                                                           std::size_t maxBytes = kMaxChangeBytes);

// Ed25519 by the actor over "portcullis/team/v3/change-sig" ‖ docId ‖ body, with a 64-byte
// libsodium secret key.
[[nodiscard]] Signature signChange(const DocId& docId, ByteView body,
                                   std::span<const std::uint8_t, 64> secretKey);

// True iff `signature` is the actor's over "portcullis/team/v3/change-sig" ‖ docId ‖ body.
[[nodiscard]] bool verifyChange(const DocId& docId, ByteView body, const Signature& signature,
                                const Key& actor);

// H256("portcullis/team/v3/change" ‖ body ‖ signature): the change's identity (§8).
[[nodiscard]] Hash changeHash(ByteView body, const Signature& signature);

// A change that is structurally sound (§8 rule 1, the codec's part): body decoded, signature
// verified under body.actor for docId, hash computed (never taken from a sender).
struct DecodedChange {
  Hash hash{};
  Bytes body;  // the canonical ChangeBody bytes, as received
  Signature signature{};
  ChangeBody parsed;
  bool unknown = false;  // as DecodedChangeBody::unknown
};
// decodeSealedChange, decodeChangeBody and verifyChange in one: Malformed on any failure.
[[nodiscard]] Result<DecodedChange> decodeChange(const DocId& docId, ByteView sealedChange,
                                                 std::size_t maxBytes = kMaxChangeBytes);

}  // namespace portcullis::team
