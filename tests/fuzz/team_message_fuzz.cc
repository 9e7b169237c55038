// Fuzz target: one session message from a peer through the session codec (the team protocol §6.2,
// §6.4, §6.6; providers/team/wire/session_codec.h's decodeMessage).
//
// Input: the message's bytes (one frame's plaintext), decoded under two frame limits: 1 KiB (the
// handshake's bound on a Status frame, kMaxStatusFrameBytes) and 16 MiB (kDefaultMaxFrameBytes,
// a session's).
//
// Invariants, beyond "no crash, no leak, no hang":
//   * decodeMessage never throws, and fails only with Errc::Malformed;
//   * it accepts nothing over its frame limit;
//   * the limit only bounds: what decodes under 1 KiB decodes under 16 MiB to an equal Message;
//   * an accepted message keeps the contract: Need, Heads and Want hashes non-empty and strictly
//     ascending; Vector entries non-empty, strictly ascending by deviceId, deviceSeq in
//     1..2^32-1; every link of a Proof or Links passes splitLink and is its parts' canonical
//     encoding (encodeLink(body, signature) == link); a Proof has at most kMaxProofLinks links
//     of at most kMaxProofBytes in all; an UnknownMessage has a discriminant past the schema's
//     last member (Links, 6);
//   * round trip, for every message but UnknownMessage: encodeMessage(decoded) does not throw,
//     e = that encoding decodes (under max(limit, e.size()); the input need not be canonical,
//     so e may be larger than it) to a Message equal (operator==) to the decoded one, and
//     encodeMessage of that gives e again.
#include <algorithm>
#include <exception>
#include <string>

#include "handshake.h"
#include "team_fuzz_support.h"
#include "wire/session_codec.h"

namespace portcullis::team::fuzz {
namespace {

constexpr const char* kTarget = "team_message_fuzz";
constexpr std::size_t kSmallLimit = kMaxStatusFrameBytes;
constexpr std::size_t kLargeLimit = kDefaultMaxFrameBytes;

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

void checkAscending(const std::vector<Hash>& hashes, std::string_view what) {
  check(!hashes.empty(), what);
  for (std::size_t i = 1; i < hashes.size(); ++i) check(hashes[i - 1] < hashes[i], what);
}

void checkLinks(const std::vector<Bytes>& links) {
  for (const Bytes& link : links) {
    const auto parts = splitLink(link);
    check(parts.has_value(), "an accepted message holds a link that splitLink refuses");
    check(encodeLink(parts->body, parts->signature) == link,
          "an accepted message holds a link that is not in canonical form");
  }
}

void checkContract(const Message& m) {
  if (const auto* p = std::get_if<Proof>(&m)) {
    check(!p->links.empty() && p->links.size() <= kMaxProofLinks,
          "an accepted Proof has no links or too many");
    std::size_t total = 0;
    for (const Bytes& l : p->links) total += l.size();
    check(total <= kMaxProofBytes, "an accepted Proof is over kMaxProofBytes");
    checkLinks(p->links);
  } else if (const auto* n = std::get_if<Need>(&m)) {
    checkAscending(n->hashes, "an accepted Need's hashes are empty or not strictly ascending");
  } else if (const auto* h = std::get_if<Heads>(&m)) {
    checkAscending(h->hashes, "an accepted Heads' hashes are empty or not strictly ascending");
  } else if (const auto* w = std::get_if<Want>(&m)) {
    checkAscending(w->hashes, "an accepted Want's hashes are empty or not strictly ascending");
  } else if (const auto* v = std::get_if<Vector>(&m)) {
    check(!v->entries.empty(), "an accepted Vector is empty");
    for (std::size_t i = 0; i < v->entries.size(); ++i) {
      check(v->entries[i].deviceSeq >= 1 && v->entries[i].deviceSeq <= 0xFFFF'FFFFu,
            "an accepted Vector's deviceSeq is not in 1..2^32-1");
      if (i > 0) {
        check(v->entries[i - 1].deviceId < v->entries[i].deviceId,
              "an accepted Vector is not strictly ascending by deviceId");
      }
    }
  } else if (const auto* l = std::get_if<Links>(&m)) {
    check(!l->links.empty(), "an accepted Links has no links");
    checkLinks(l->links);
  } else if (const auto* u = std::get_if<UnknownMessage>(&m)) {
    check(u->discriminant > 6, "an UnknownMessage has a discriminant of a known member");
  }
}

std::optional<Message> decodeChecked(ByteView input, std::size_t limit) {
  auto d = decodeMessage(input, limit);
  if (!d) {
    check(d.error().code() == Errc::Malformed,
          "decodeMessage failed with another Errc than Malformed");
    return std::nullopt;
  }
  check(input.size() <= limit, "decodeMessage accepted a message over its frame limit");
  checkContract(*d);
  if (!std::holds_alternative<UnknownMessage>(*d)) {
    const Bytes e = encodeMessage(*d);
    const auto again = decodeMessage(e, std::max(limit, e.size()));
    check(again.has_value(), "encodeMessage(decoded) does not decode");
    check(*again == *d, "encodeMessage(decoded) decodes to another Message");
    check(encodeMessage(*again) == e, "the canonical encoding is not a fixed point");
  }
  return std::move(*d);
}

void run(ByteView input) {
  const auto small = decodeChecked(input, kSmallLimit);
  const auto large = decodeChecked(input, kLargeLimit);
  if (small) {
    check(large.has_value(), "a message accepted under 1 KiB is refused under 16 MiB");
    check(*small == *large, "a message decodes to another value under a larger frame limit");
  }
}

}  // namespace
}  // namespace portcullis::team::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::team::fuzz::fail("team_message_fuzz", "sodium_init failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    portcullis::team::fuzz::run(portcullis::ByteView(data, size));
  } catch (const std::exception& e) {
    portcullis::team::fuzz::fail("team_message_fuzz", std::string("threw: ") + e.what());
  } catch (...) {
    portcullis::team::fuzz::fail("team_message_fuzz", "threw a non-standard exception");
  }
  return 0;
}
