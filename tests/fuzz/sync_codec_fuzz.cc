// Fuzz target: one sync-protocol frame from a peer, as lib/src/wire/sync_codec.h reads it
// (decodeMessage), every envelope member: hello, sync, request, unavailable, ephemeral, provider,
// leave, refused, and members a later version may add.
//
// Input: the bytes of one frame (a Cap'n Proto `Envelope`, lib/schema/sync.capnp).
//
// Invariants, beyond "no crash, no leak, no hang":
//   * decodeMessage never throws and fails only with Malformed;
//   * it accepts only what encodeMessage may be given: an accepted frame re-encodes without
//     tripping a precondition (hash lists strictly ascending, a refused list within its bound
//     and its count);
//   * decode → encode → decode is identical, field by field, and encoding is a function: the
//     second encoding has the first one's bytes;
//   * a sync frame's changes re-encoded through encodeSync (the path that copies payloads
//     straight from the store) decode to the same message, and its size stays within what
//     encodedChangeSize promises for the changes plus the rest of the frame.
#include <string>
#include <variant>

#include "core_fuzz_support.h"
#include "wire/sync_codec.h"

namespace portcullis::fuzz {
namespace {

using namespace detail;

constexpr const char* kTarget = "sync_codec_fuzz";

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

bool same(const HelloMsg& a, const HelloMsg& b) {
  return a.protocolVersion == b.protocolVersion && a.peerId == b.peerId &&
         a.storageId == b.storageId && a.isEphemeral == b.isEphemeral;
}
bool same(const SyncMsg& a, const SyncMsg& b) {
  return a.doc == b.doc && a.heads == b.heads && a.need == b.need && a.have == b.have &&
         a.changes == b.changes && a.storedHeads == b.storedHeads && a.requestId == b.requestId &&
         a.hops == b.hops && a.isRequest == b.isRequest;
}
bool same(const UnavailableMsg& a, const UnavailableMsg& b) {
  return a.doc == b.doc && a.requestId == b.requestId;
}
bool same(const EphemeralMsg& a, const EphemeralMsg& b) {
  return a.doc == b.doc && a.sender == b.sender && a.data == b.data;
}
bool same(const ProviderMsg& a, const ProviderMsg& b) { return a.data == b.data; }
bool same(const LeaveMsg&, const LeaveMsg&) { return true; }
bool same(const RefusedMsg& a, const RefusedMsg& b) {
  return a.doc == b.doc && a.changes == b.changes && a.count == b.count;
}
bool same(const UnknownMsg&, const UnknownMsg&) { return true; }

bool same(const SyncMessage& a, const SyncMessage& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&](const auto& x) { return same(x, std::get<std::decay_t<decltype(x)>>(b)); }, a);
}

// The sync frame again, its changes copied from envelopes as the Repo sends them from its store.
void checkEncodeSync(const SyncMsg& sync) {
  // encodeSync reads only the payloads.
  static const ActorId actor = *ActorId::fromBytes(Bytes(16, 0xAC));
  std::vector<ChangeEnvelope> envelopes;
  envelopes.reserve(sync.changes.size());
  std::size_t changeBytes = 0;
  for (const Bytes& change : sync.changes) {
    envelopes.push_back(ChangeEnvelope{.hash = {}, .actor = actor, .deps = {}, .payload = change});
    changeBytes += encodedChangeSize(change.size());
  }
  std::vector<const ChangeEnvelope*> pointers;
  for (const ChangeEnvelope& e : envelopes) pointers.push_back(&e);
  SyncMsg bare = sync;
  bare.changes.clear();
  const Bytes frame = encodeSync(bare, pointers);
  auto decoded = decodeMessage(frame);
  check(decoded.has_value(), "encodeSync wrote a frame decodeMessage refuses");
  check(same(*decoded, SyncMessage(sync)), "encodeSync's frame reads as another message");
  check(frame.size() <= encodeMessage(bare).size() + changeBytes,
        "encodeSync's frame is larger than encodedChangeSize promises");
}

void run(ByteView input) {
  auto decoded = decodeMessage(input);
  if (!decoded) {
    check(decoded.error().code() == Errc::Malformed, "a refused frame is not Malformed");
    return;
  }
  if (std::holds_alternative<UnknownMsg>(*decoded)) return;  // ignored, never sent
  const Bytes encoded = encodeMessage(*decoded);
  auto again = decodeMessage(encoded);
  check(again.has_value(), "encodeMessage wrote a frame decodeMessage refuses");
  check(same(*again, *decoded), "decode → encode → decode changed the message");
  check(encodeMessage(*again) == encoded, "the same message encodes to other bytes");
  if (const auto* sync = std::get_if<SyncMsg>(&*decoded); sync != nullptr && !sync->isRequest) {
    checkEncodeSync(*sync);
  }
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("sync_codec_fuzz", "sodium_init failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("sync_codec_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
