// Fuzz target: a signed change from a peer through the session codec (the team protocol §8;
// providers/team/wire/session_codec.h's decodeChange, decodeSealedChange, decodeChangeBody,
// decodeChangePayload).
//
// Input: bytes, read as a SealedChange for changeDoc() (decodeChange), and also, the same bytes,
// as a ChangeBody (decodeChangeBody) and as a ChangePayload (decodeChangePayload). The sealed
// change's body, when it splits, goes through decodeChangeBody, and a version-3 body's ciphertext
// (the payload in clear) through decodeChangePayload. Random bytes almost never carry a valid
// signature, so a body whose actor is one of changeSigners() (team_session_fuzz_support.h) is
// also re-signed by that key and decoded again.
//
// Invariants, beyond "no crash, no leak, no hang":
//   * no decoder throws, and each fails only with Errc::Malformed;
//   * ChangeBody (any bytes it accepts): teamHeads 1..kMaxTeamHeads and strictly ascending, deps
//     strictly ascending, scope 1..kMaxScopeBytes, ciphertext non-empty; e = encodeChangeBody of
//     the body decodes to an equal body (operator==) with unknown = false; when unknown is false
//     e is the input's exact bytes (decodeChangeBody takes canonical bytes only, so a known body
//     has one encoding); when unknown is true (words beyond this schema, or bits this version
//     does not read) e is other bytes, never longer;
//   * ChangePayload (any bytes it accepts): e = encodeChangePayload of it decodes to an equal
//     payload, and e is the input's exact bytes or shorter (words beyond this schema, ignored);
//   * SealedChange: encodeSealedChange(body, signature) of what decodeSealedChange split splits
//     to the same body and signature;
//   * decodeChange accepts exactly when decodeSealedChange splits, decodeChangeBody accepts the
//     body and verifyChange(changeDoc(), body, signature, actor) holds; a body refusal is passed
//     on with the same message; on success hash == changeHash(body, signature), body and
//     signature are the split ones, parsed and unknown are decodeChangeBody's;
//   * re-signed by its actor's key (Ed25519 is deterministic), a body decodeChangeBody accepts is
//     accepted by decodeChange for changeDoc() with hash changeHash(body, new signature), and the
//     same sealed change is refused for otherDoc() (the signature binds the document).
#include <exception>
#include <string>

#include "team_session_fuzz_support.h"
#include "wire/session_codec.h"

namespace portcullis::team::fuzz {
namespace {

constexpr const char* kTarget = "team_change_fuzz";

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

bool sameBytes(const Bytes& a, ByteView b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

void checkAscending(const std::vector<Hash>& hashes, std::string_view what) {
  for (std::size_t i = 1; i < hashes.size(); ++i) check(hashes[i - 1] < hashes[i], what);
}

std::optional<DecodedChangeBody> bodyChecked(ByteView bytes) {
  auto d = decodeChangeBody(bytes);
  if (!d) {
    check(d.error().code() == Errc::Malformed,
          "decodeChangeBody failed with another Errc than Malformed");
    return std::nullopt;
  }
  const ChangeBody& b = d->body;
  check(!b.teamHeads.empty() && b.teamHeads.size() <= kMaxTeamHeads,
        "an accepted body has no teamHeads or too many");
  checkAscending(b.teamHeads, "an accepted body's teamHeads are not strictly ascending");
  checkAscending(b.deps, "an accepted body's deps are not strictly ascending");
  check(!b.scope.empty() && b.scope.size() <= kMaxScopeBytes,
        "an accepted body's scope is empty or too long");
  check(!b.ciphertext.empty(), "an accepted body's ciphertext is empty");

  const Bytes e = encodeChangeBody(b);
  const auto again = decodeChangeBody(e);
  check(again.has_value(), "encodeChangeBody(decoded) does not decode");
  check(again->body == b, "encodeChangeBody(decoded) decodes to another body");
  check(!again->unknown, "encodeChangeBody(decoded) has words beyond the schema");
  if (!d->unknown) {
    check(sameBytes(e, bytes), "a known body does not re-encode to its exact (canonical) bytes");
  } else {
    check(!sameBytes(e, bytes) && e.size() <= bytes.size(),
          "an unknown body re-encodes to its own bytes, or grows");
  }
  return std::move(*d);
}

void payloadChecked(ByteView bytes) {
  auto d = decodeChangePayload(bytes);
  if (!d) {
    check(d.error().code() == Errc::Malformed,
          "decodeChangePayload failed with another Errc than Malformed");
    return;
  }
  const Bytes e = encodeChangePayload(*d);
  const auto again = decodeChangePayload(e);
  check(again.has_value(), "encodeChangePayload(decoded) does not decode");
  check(*again == *d, "encodeChangePayload(decoded) decodes to another payload");
  check(sameBytes(e, bytes) || e.size() < bytes.size(),
        "a canonical payload re-encodes to other bytes of the same or larger size");
}

void resigned(const Bytes& body, const DecodedChangeBody& parsed) {
  for (const TestSigner& s : changeSigners()) {
    if (s.publicKey != parsed.body.actor) continue;
    const Signature sig = signChange(changeDoc(), body, s.secretKey);
    const Bytes sealed = encodeSealedChange(body, sig);
    const auto d = decodeChange(changeDoc(), sealed);
    check(d.has_value(), "a body decodeChangeBody accepts, signed by its actor, is refused");
    check(d->hash == changeHash(body, sig) && d->body == body && d->signature == sig &&
              d->parsed == parsed.body && d->unknown == parsed.unknown,
          "a re-signed change decodes to other values");
    check(!decodeChange(otherDoc(), sealed).has_value(),
          "a change signed for one document is accepted for another");
  }
}

void run(ByteView input) {
  (void)bodyChecked(input);
  payloadChecked(input);

  const auto change = decodeChange(changeDoc(), input);
  if (!change) {
    check(change.error().code() == Errc::Malformed,
          "decodeChange failed with another Errc than Malformed");
  }
  auto parts = decodeSealedChange(input);
  if (!parts) {
    check(parts.error().code() == Errc::Malformed,
          "decodeSealedChange failed with another Errc than Malformed");
    check(!change, "decodeChange accepted what decodeSealedChange refuses");
    return;
  }
  const auto again = decodeSealedChange(encodeSealedChange(parts->body, parts->signature));
  check(again.has_value() && again->body == parts->body && again->signature == parts->signature,
        "encodeSealedChange of the split parts does not split to them");

  const auto body = bodyChecked(parts->body);
  if (!body) {
    check(!change, "decodeChange accepted a body decodeChangeBody refuses");
    check(change.error().message() == decodeChangeBody(parts->body).error().message(),
          "decodeChange does not pass on decodeChangeBody's reason");
    return;
  }
  if (!body->unknown && versionThreeShape(body->body)) payloadChecked(body->body.ciphertext);

  const bool verifies = verifyChange(changeDoc(), parts->body, parts->signature, body->body.actor);
  check(change.has_value() == verifies,
        "decodeChange's verdict on a well-formed body is not verifyChange's");
  if (change) {
    check(change->hash == changeHash(parts->body, parts->signature),
          "decodeChange's hash is not changeHash(body, signature)");
    check(change->body == parts->body && change->signature == parts->signature,
          "decodeChange's body or signature is not the split one");
    check(change->parsed == body->body && change->unknown == body->unknown,
          "decodeChange's parsed body is not decodeChangeBody's");
  }
  resigned(parts->body, *body);
}

}  // namespace
}  // namespace portcullis::team::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::team::fuzz::fail("team_change_fuzz", "sodium_init failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    portcullis::team::fuzz::run(portcullis::ByteView(data, size));
  } catch (const std::exception& e) {
    portcullis::team::fuzz::fail("team_change_fuzz", std::string("threw: ") + e.what());
  } catch (...) {
    portcullis::team::fuzz::fail("team_change_fuzz", "threw a non-standard exception");
  }
  return 0;
}
