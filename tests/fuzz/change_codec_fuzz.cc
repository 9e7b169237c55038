// Fuzz target: one plain change from outside, as lib/src/wire/change_codec.h reads it: its
// envelope {hash, actor, seq, startOp, opCount, deps, payload} and its payload's ops
// (parseChange, parseChangeWithCapnp, decodeChange, encodeChange).
//
// Input: the bytes of one change payload (a canonical Cap'n Proto `Change`,
// lib/schema/change.capnp).
//
// Invariants, beyond "no crash, no leak, no hang":
//   * parseChange never throws and fails only with Malformed, Unsupported or Overloaded; with a
//     limit one byte under the input's size it fails with Overloaded;
//   * parseChange (the direct reading of the canonical layout) and parseChangeWithCapnp (capnp's
//     isCanonical and getters) give the same verdict; when both refuse, the same Errc and
//     message; when both accept, equal envelopes and equal decoded changes;
//   * parseChange with a recycled ops vector that holds other ops gives what it gives without one
//     (every field of a reused op is overwritten);
//   * an accepted change: hash == BLAKE2b-256 of the input, payload == the input, opCount == the
//     number of ops, startOp + opCount - 1 <= kMaxCounter, seq and startOp in 1..kMaxCounter,
//     deps strictly ascending;
//   * decode → encode → decode is identical: decodeChange(envelope) equals the parsed change (with
//     the envelope's actor and deps), and parseChange of encodeChange of it gives the same change
//     again (header and ops). A change of this schema has one encoding: when its root struct has
//     at most this schema's 3 data words and 5 pointers, encodeChange gives exactly the input's
//     bytes and hash. A later writer's fields (more words; change.capnp's versioning) are read past
//     and kept in the payload, which is what is hashed, stored and relayed: then the re-encoding
//     is shorter and has another hash.
#include <string>

#include "core_fuzz_support.h"
#include "wire/change_codec.h"

namespace portcullis::fuzz {
namespace {

using detail::ChangeData;
using detail::Op;
using detail::ParsedChange;

constexpr const char* kTarget = "change_codec_fuzz";
constexpr std::size_t kMaxBytes = 1u << 20;

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

bool sameScalar(const ScalarValue& a, const ScalarValue& b) {
  if (a.index() != b.index()) return false;
  if (const auto* x = std::get_if<double>(&a)) {  // NaN != NaN: compare the bits
    return std::memcmp(x, &std::get<double>(b), sizeof(double)) == 0;
  }
  return a == b;
}

bool sameOp(const Op& a, const Op& b) {
  return a.obj == b.obj && a.elemKey == b.elemKey && a.mapKey == b.mapKey && a.elem == b.elem &&
         a.insert == b.insert && a.pred == b.pred && a.action == b.action &&
         sameScalar(a.value, b.value) && a.delta == b.delta;
}

// Everything but actor and deps, which parseChange moves into the envelope.
bool sameBody(const ChangeData& a, const ChangeData& b) {
  if (a.seq != b.seq || a.startOp != b.startOp || a.time != b.time || a.message != b.message ||
      a.otherActors != b.otherActors || a.ops.size() != b.ops.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.ops.size(); ++i) {
    if (!sameOp(a.ops[i], b.ops[i])) return false;
  }
  return true;
}

bool sameEnvelope(const ChangeEnvelope& a, const ChangeEnvelope& b) {
  return a.hash == b.hash && a.actor == b.actor && a.seq == b.seq && a.startOp == b.startOp &&
         a.opCount == b.opCount && a.deps == b.deps && a.payload == b.payload;
}

bool sameParsed(const ParsedChange& a, const ParsedChange& b) {
  return sameEnvelope(a.envelope, b.envelope) && sameBody(a.data, b.data);
}

// Ops with every field set, for parseChange to overwrite.
std::vector<Op> junkOps() {
  std::vector<Op> ops(5);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    Op& op = ops[i];
    op.obj = detail::OpRef{7 + i, 1};
    op.elemKey = i % 2 == 0;
    op.mapKey = "junk key that is long enough to live on the heap " + std::to_string(i);
    op.elem = detail::OpRef{3, 2};
    op.insert = true;
    op.pred = {detail::OpRef{1, 0}, detail::OpRef{2, 1}, detail::OpRef{9, 3}};
    op.action = static_cast<detail::Action>(i % 6);
    op.value = i % 2 == 0 ? ScalarValue(std::string(100, 'j')) : ScalarValue(Bytes(40, 0x6A));
    op.delta = -5;
  }
  return ops;
}

bool allowedError(Errc e) {
  return e == Errc::Malformed || e == Errc::Unsupported || e == Errc::Overloaded;
}

void run(ByteView input) {
  const Bytes bytes(input.begin(), input.end());
  auto fast = detail::parseChange(bytes, kMaxBytes);
  auto slow = detail::parseChangeWithCapnp(bytes, kMaxBytes);
  std::vector<Op> recycled = junkOps();
  auto reused = detail::parseChange(bytes, kMaxBytes, &recycled);

  check(fast.has_value() == slow.has_value(),
        "parseChange and parseChangeWithCapnp disagree on whether the change is valid");
  check(fast.has_value() == reused.has_value(),
        "parseChange with a recycled ops vector gives another verdict");
  if (!bytes.empty()) {
    auto limited = detail::parseChange(bytes, bytes.size() - 1);
    check(!limited && limited.error().code() == Errc::Overloaded,
          "a change over the size limit is not refused as Overloaded");
  }
  if (!fast) {
    check(allowedError(fast.error().code()), "parseChange failed with an unexpected Errc");
    check(slow.error().code() == fast.error().code() &&
              slow.error().message() == fast.error().message(),
          "parseChange and parseChangeWithCapnp refuse with different errors: '" +
              fast.error().message() + "' and '" + slow.error().message() + "'");
    check(reused.error().code() == fast.error().code() &&
              reused.error().message() == fast.error().message(),
          "parseChange with a recycled ops vector refuses with another error");
    return;
  }
  check(sameParsed(*fast, *slow), "parseChange and parseChangeWithCapnp decode different changes");
  check(sameParsed(*fast, *reused),
        "parseChange with a recycled ops vector decodes another change");

  const ChangeEnvelope& env = fast->envelope;
  check(env.hash == ChangeHash::of(bytes), "the envelope's hash is not BLAKE2b of the bytes");
  check(env.payload == bytes, "the envelope's payload is not the input");
  check(env.opCount == fast->data.ops.size(), "opCount is not the number of ops");
  check(env.seq >= 1 && env.seq <= kMaxCounter && env.startOp >= 1 && env.startOp <= kMaxCounter,
        "seq or startOp out of range");
  check(env.opCount == 0 || env.maxOp() <= kMaxCounter, "the change's op counters overflow");
  for (std::size_t i = 1; i < env.deps.size(); ++i) {
    check(env.deps[i - 1] < env.deps[i], "deps are not strictly ascending");
  }

  // decode → encode → decode.
  const ChangeData decoded = detail::decodeChange(env);
  check(decoded.actor == env.actor && decoded.deps == env.deps && sameBody(decoded, fast->data),
        "decodeChange does not give the parsed change");
  const ChangeEnvelope encoded = detail::encodeChange(decoded);
  auto again = detail::parseChange(encoded.payload, kMaxBytes);
  check(again.has_value() && sameBody(again->data, fast->data) &&
            again->envelope.actor == env.actor && again->envelope.seq == env.seq &&
            again->envelope.startOp == env.startOp && again->envelope.opCount == env.opCount &&
            again->envelope.deps == env.deps,
        "the re-encoded change does not parse to the same change");
  // The root struct's sizes, from its pointer (word 0 of a canonical message).
  const std::size_t dataWords = std::size_t{bytes[4]} | std::size_t{bytes[5]} << 8;
  const std::size_t pointers = std::size_t{bytes[6]} | std::size_t{bytes[7]} << 8;
  if (dataWords <= 3 && pointers <= 5) {
    check(encoded.payload == bytes, "encodeChange of a change of this schema gives other bytes");
    check(sameEnvelope(encoded, env) && sameParsed(*again, *fast),
          "encodeChange of a change of this schema gives another envelope");
  } else {
    check(encoded.payload.size() < bytes.size() && encoded.hash != env.hash,
          "a change with a later writer's fields re-encodes to its own size or hash");
  }
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("change_codec_fuzz", "sodium_init failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("change_codec_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
