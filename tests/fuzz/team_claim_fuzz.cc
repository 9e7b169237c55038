// Fuzz target: a handshake claim from a peer through the session codec (the team protocol §6.1,
// §6.6; providers/team/wire/session_codec.h's decodeClaim).
//
// Input: the claim's bytes, decoded twice, once as Claim_R (ClaimRole::Responder, as an
// initiator reads m2) and once as Claim_I (ClaimRole::Initiator, as a responder reads m3).
//
// Invariants, for each role, beyond "no crash, no leak, no hang":
//   * decodeClaim never throws, and fails only with Errc::Malformed;
//   * it accepts at most kMaxResponderClaimBytes (Responder) or kMaxInitiatorClaimBytes
//     (Initiator) bytes;
//   * an accepted claim keeps the role's contract: Claim_R has a teamId and none of the admission
//     fields (invitation, encKey, userId, proof, consent, inviteSig), invitations null or
//     1..kMaxOffers; Claim_I has no teamId and no invitations, an invitee has invitation, encKey,
//     proof, consent and inviteSig, a member or server has none of the admission fields; an encKey
//     passes encKeyAcceptable, a userId is 1..64 bytes of textAcceptable text;
//   * round trip: e = encodeClaim(decoded) decodes under the same role to a Claim equal
//     (operator==) to the decoded one, and encodeClaim of that gives e again (the canonical
//     form is a fixed point);
//   * the input is canonical (decodeClaim takes nothing else), so e differs from it only where it
//     carries what decodeClaim ignores by contract (a later version's fields) or what Cap'n
//     Proto's reader ignores: words beyond the schema's (e is then shorter); bits of the root's
//     one data word outside `kind`; an unknown kind's raw value, which e writes as 0xFFFF; and
//     bit 31 of the invitations list's tag word (the element count has 29 bits; isCanonical
//     does not look at that bit). So e.size() <= input.size() always, and when the sizes are
//     equal (same layout) e is exactly the input with those bits set as encodeClaim writes them.
//     (A member's Claim with bits beside `kind` loses its data word in e, kind 0 not being
//     written, so e is shorter.)
//   * no input decodes under both roles (Claim_R needs a teamId, Claim_I must not have one).
#include <exception>
#include <string>

#include "team_fuzz_support.h"
#include "wire/session_codec.h"

namespace portcullis::team::fuzz {
namespace {

constexpr const char* kTarget = "team_claim_fuzz";

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

bool anyAdmission(const Claim& c) {
  return c.invitation || c.encKey || c.userId || c.proof || c.consent || c.inviteSig;
}

void checkContract(const Claim& c, ClaimRole role) {
  if (c.encKey) check(encKeyAcceptable(*c.encKey), "an accepted claim's encKey is not acceptable");
  if (c.userId) {
    check(textAcceptable(*c.userId, 1, 64), "an accepted claim's userId is not 1..64 clean bytes");
  }
  if (role == ClaimRole::Responder) {
    check(c.teamId.has_value(), "an accepted Claim_R has no teamId");
    check(!anyAdmission(c), "an accepted Claim_R carries an invitee's fields");
    if (c.invitations) {
      check(!c.invitations->empty() && c.invitations->size() <= kMaxOffers,
            "an accepted Claim_R has an empty or oversized invitations list");
    }
    return;
  }
  check(!c.teamId, "an accepted Claim_I has a teamId");
  check(!c.invitations, "an accepted Claim_I has invitations");
  if (c.kind == ClaimKind::Invitee) {
    check(c.invitation && c.encKey && c.proof && c.consent && c.inviteSig,
          "an accepted invitee's Claim_I misses an admission field");
  } else if (c.kind == ClaimKind::Member || c.kind == ClaimKind::Server) {
    check(!anyAdmission(c), "an accepted member's or server's Claim_I has admission fields");
  }
}

std::uint64_t wordAt(const Bytes& b, std::size_t at) {
  std::uint64_t w = 0;
  for (std::size_t i = 0; i < 8; ++i) w |= std::uint64_t{b[at + i]} << (8 * i);
  return w;
}

// A canonical Claim's bytes with the bits decodeClaim (or Cap'n Proto's reader) ignores set as
// encodeClaim writes them. Word 0 is the root struct pointer, the root's data section follows
// (`kind` is the first 16 bits of its one word), then its pointers (invitations is the fourth).
Bytes asEncoderWrites(ByteView input, const Claim& decoded) {
  Bytes x(input.begin(), input.end());
  const std::uint64_t root = wordAt(x, 0);
  const std::size_t dataWords = (root >> 32) & 0xFFFF;
  const std::size_t pointers = root >> 48;
  if (dataWords >= 1) {
    std::fill(x.begin() + 10, x.begin() + 16, 0);
    if (decoded.kind == ClaimKind::Unknown) x[8] = x[9] = 0xFF;
  }
  if (decoded.invitations && pointers > 3) {
    const std::size_t at = 8 * (1 + dataWords + 3);
    const auto offset = static_cast<std::int32_t>(static_cast<std::uint32_t>(wordAt(x, at))) >> 2;
    const std::size_t tag = at + 8 + 8 * static_cast<std::size_t>(offset);
    if (offset >= 0 && tag + 8 <= x.size()) x[tag + 3] &= 0x7F;
  }
  return x;
}

// decodeClaim under `role` with every invariant of an accepted or refused claim checked.
bool decodeChecked(ByteView input, ClaimRole role) {
  const auto d = decodeClaim(input, role);
  if (!d) {
    check(d.error().code() == Errc::Malformed,
          "decodeClaim failed with another Errc than Malformed");
    return false;
  }
  const std::size_t limit =
      role == ClaimRole::Responder ? kMaxResponderClaimBytes : kMaxInitiatorClaimBytes;
  check(input.size() <= limit, "decodeClaim accepted a claim over its role's size bound");
  checkContract(*d, role);

  const Bytes e = encodeClaim(*d);
  const auto again = decodeClaim(e, role);
  check(again.has_value(), "encodeClaim(decoded) does not decode under the same role");
  check(*again == *d, "encodeClaim(decoded) decodes to another Claim");
  check(encodeClaim(*again) == e, "the canonical encoding is not a fixed point");

  check(e.size() <= input.size(), "a canonical claim re-encodes to more bytes");
  if (e.size() == input.size()) {
    check(e == asEncoderWrites(input, *d),
          "a canonical claim re-encodes to other bytes than the input with its ignored bits "
          "(beside kind, an unknown kind, the invitations tag's bit 31) as encodeClaim writes them");
  }
  return true;
}

void run(ByteView input) {
  const bool asResponder = decodeChecked(input, ClaimRole::Responder);
  const bool asInitiator = decodeChecked(input, ClaimRole::Initiator);
  check(!(asResponder && asInitiator), "a claim decodes both as Claim_R and as Claim_I");
}

}  // namespace
}  // namespace portcullis::team::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::team::fuzz::fail("team_claim_fuzz", "sodium_init failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    portcullis::team::fuzz::run(portcullis::ByteView(data, size));
  } catch (const std::exception& e) {
    portcullis::team::fuzz::fail("team_claim_fuzz", std::string("threw: ") + e.what());
  } catch (...) {
    portcullis::team::fuzz::fail("team_claim_fuzz", "threw a non-standard exception");
  }
  return 0;
}
