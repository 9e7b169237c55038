// providers/team/wire/link_codec.h — the wire form of team links (the spec's §2.1 schema in
// schema/link.capnp), their signature and hash (§2.2), and the checks that decide whether a
// received link is dropped: check 1 (exact structure) and check 2 (signatures) of §2.3.
//
// The only code of the team provider that touches Cap'n Proto. Pure functions; any thread.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "link.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis::team {

inline constexpr std::size_t kMaxLinkBodyBytes = 4u << 20;  // §10
inline constexpr std::size_t kMaxPrev = 64;
inline constexpr std::size_t kMaxDevicesPerLink = 16;
inline constexpr std::size_t kMaxRoles = 16;
inline constexpr std::size_t kMaxLockboxes = 24000;

// A link that passed checks 1 and 2: what the graph stores.
struct DecodedLink {
  Hash hash{};          // computed (§2.2), never taken from a sender
  Bytes body;           // the canonical LinkBody bytes, as received
  Signature signature{};
  // For an unknown union member: UnknownAction. For a known action with fields of a later
  // version: the known action, as this version reads it.
  LinkBody parsed;
  // Check 1 passed but the link is of a later version (an unknown union member, words beyond
  // this schema in some struct, or bits in the unused parts of its words, so that the body does
  // not re-encode to itself): stored, invalid for ever, relayed, never charged.
  bool unknown = false;
};

// Decodes a `Link` {body, signature} message and runs checks 1 and 2: the body is canonical and
// exactly as §2.3 says (sizes, null versus empty, text rules, ascending sets, encKeys canonical
// and not of small order), the signature verifies under body.deviceId over
// "portcullis/team/v3/link-sig" ‖ body, and every consent in the link verifies over its
// admission tuple (§5.1) for `teamId`. Errc::Malformed, with a message saying which rule failed,
// means the link is dropped (and its sender charged, §10). Never throws on any input.
[[nodiscard]] Result<DecodedLink> decodeLink(ByteView link, const Hash& teamId);

// The body and signature of a `Link` message, the body unchecked. Errc::Malformed when the
// envelope itself is malformed (then no link hash can be computed for it).
struct LinkParts {
  Bytes body;
  Signature signature{};
};
[[nodiscard]] Result<LinkParts> splitLink(ByteView link);

// The same checks for a body and signature already split (e.g. a link read back from disk).
[[nodiscard]] Result<DecodedLink> decodeLink(ByteView body, const Signature& signature,
                                             const Hash& teamId);

// Check 1 only, for a link this process already checked in full and stored (a graph's copy for a
// speculative evaluation): its signature and consents are not verified again. Never for bytes
// that come from outside.
[[nodiscard]] Result<DecodedLink> redecodeStoredLink(ByteView body, const Signature& signature,
                                                     const Hash& teamId);

// The canonical encoding of `body` (Cap'n Proto canonical form, §2.1). Does not check the body;
// encoding what check 1 rejects is allowed (tests build bad links this way). An UnknownAction
// cannot be encoded by this version: PORTCULLIS_REQUIRE fails.
[[nodiscard]] Bytes encodeLinkBody(const LinkBody& body);

// The `Link` message {body, signature}, canonical.
[[nodiscard]] Bytes encodeLink(ByteView body, const Signature& signature);

// Ed25519 over "portcullis/team/v3/link-sig" ‖ body with a 64-byte libsodium secret key.
[[nodiscard]] Signature signLinkBody(ByteView body, std::span<const std::uint8_t, 64> secretKey);

// H256("portcullis/team/v3/link" ‖ body ‖ signature).
[[nodiscard]] Hash linkHash(ByteView body, const Signature& signature);

// §5.1: "portcullis/team/v3/admission" ‖ teamId ‖ inv ‖ deviceId ‖ encKey ‖ u8(len) ‖ userId,
// with inv all zero for addMember/addDevice and userId empty for admitDevice.
[[nodiscard]] Bytes admissionTuple(const Hash& teamId, const Hash& invitation, const Key& deviceId,
                                   const EncKey& encKey, std::string_view userId);

// Ed25519 signature and verification over raw bytes (consent, inviteSig).
[[nodiscard]] Signature signBytes(ByteView message, std::span<const std::uint8_t, 64> secretKey);
[[nodiscard]] bool verifyBytes(ByteView message, const Signature& signature, const Key& publicKey);

// §2.3 check 1's rule for an encKey: canonical (< 2^255 − 19, top bit clear) and not of small
// order.
[[nodiscard]] bool encKeyAcceptable(const EncKey& key);
// The same rule computed as §2.3 words it (crypto_scalarmult with the fixed scalar must not
// return −1), for tests that check encKeyAcceptable against it.
[[nodiscard]] bool encKeyAcceptableByScalarMult(const EncKey& key);

// §2.3's text rule: valid UTF-8 of lo..hi bytes with no C0 control, DEL or C1 control.
[[nodiscard]] bool textAcceptable(std::string_view text, std::size_t lo, std::size_t hi);
// Valid UTF-8, control characters allowed (text for people, such as a change's message).
[[nodiscard]] bool utf8Valid(std::string_view text);
// A role: 1..32 bytes of [a-z0-9_-].
[[nodiscard]] bool roleAcceptable(std::string_view role);

}  // namespace portcullis::team
