// Fuzz target: one received team link through the wire codec (the team protocol §2.1–§2.3, checks
// 1–2).
//
// Input: teamId (32 bytes) ‖ signer seed (32 bytes) ‖ a `Link` message. The team ID is the one
// consents are checked for; the seed's key re-signs the body (team_fuzz_support.h says why).
//
// Invariants, beyond "no crash, no leak, no hang":
//   * decodeLink never throws, and fails only with Errc::Malformed;
//   * splitLink accepts only the canonical envelope: encodeLink(body, signature) gives back the
//     input's exact bytes;
//   * an accepted link's hash is linkHash(body, signature); decode → encode → decode gives the
//     same body, signature, parsed value, unknown flag and hash; a known link's parsed value
//     re-encodes (encodeLinkBody) to its body exactly (else it is unknown);
//   * check 1 depends on the body alone: the received link and the same body re-signed by the
//     seed's key fail check 1 with the same message, or neither fails it;
//   * a link that was accepted as received is accepted re-signed by its own deviceId's key.
#include <algorithm>
#include <cstdlib>
#include <exception>

#include "team_fuzz_support.h"

namespace portcullis::team::fuzz {
namespace {

constexpr const char* kTarget = "team_link_fuzz";

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }


// decodeLink with every invariant of an accepted or refused link checked.
Result<DecodedLink> decodeChecked(ByteView link, const Hash& teamId) {
  auto d = decodeLink(link, teamId);
  if (!d) {
    check(d.error().code() == Errc::Malformed, "decodeLink failed with another Errc than Malformed");
    return d;
  }
  check(d->hash == linkHash(d->body, d->signature), "the hash is not linkHash(body, signature)");
  check(typeOf(d->parsed.action) != ActionType::Unknown || d->unknown,
        "an UnknownAction is not marked unknown");

  const Bytes again = encodeLink(d->body, d->signature);
  check(std::ranges::equal(again, link), "an accepted Link does not re-encode to its own bytes");
  auto d2 = decodeLink(again, teamId);
  check(d2.has_value(), "decode → encode → decode refuses the link");
  check(d2->hash == d->hash && d2->body == d->body && d2->signature == d->signature &&
            d2->parsed == d->parsed && d2->unknown == d->unknown,
        "decode → encode → decode is not the identity");

  if (!d->unknown) {
    check(encodeLinkBody(d->parsed) == d->body,
          "a known link's parsed body does not re-encode to the body (canonical round trip)");
  }
  return d;
}

void run(ByteView input) {
  Reader in(input);
  const auto teamId = in.fixed<32>();
  const auto seed = in.fixed<32>();
  if (!teamId || !seed) return;
  const ByteView link = in.rest();

  const auto asReceived = decodeChecked(link, *teamId);

  auto parts = splitLink(link);
  if (!parts) {
    check(!asReceived.has_value(), "decodeLink accepted what splitLink refuses");
    return;
  }
  check(std::ranges::equal(encodeLink(parts->body, parts->signature), link),
        "splitLink accepted a Link that is not the canonical encoding of its parts");

  const TestSigner signer = signerFromSeed(*seed);
  if (authorIn(parts->body, std::span(&signer, 1)) == nullptr) return;
  const Bytes resigned = resign(parts->body, signer);
  const auto again = decodeChecked(resigned, *teamId);

  const bool check1Received = !asReceived && !failedCheck2(asReceived.error());
  const bool check1Resigned = !again && !failedCheck2(again.error());
  check(check1Received == check1Resigned, "check 1's verdict depends on the signature");
  if (check1Received) {
    check(asReceived.error().message() == again.error().message(),
          "check 1 gives another reason for the same body under another signature");
  }
  if (asReceived && asReceived->parsed.deviceId == signer.publicKey) {
    check(again.has_value() && again->hash == asReceived->hash,
          "an accepted link re-signed by its own device (Ed25519 is deterministic) differs");
  }
}

}  // namespace
}  // namespace portcullis::team::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::team::fuzz::fail("team_link_fuzz", "sodium_init failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // "Never throws on any input" is itself an invariant: an exception is reported, not swallowed.
  try {
    portcullis::team::fuzz::run(portcullis::ByteView(data, size));
  } catch (const std::exception& e) {
    portcullis::team::fuzz::fail("team_link_fuzz", std::string("threw: ") + e.what());
  } catch (...) {
    portcullis::team::fuzz::fail("team_link_fuzz", "threw a non-standard exception");
  }
  return 0;
}
