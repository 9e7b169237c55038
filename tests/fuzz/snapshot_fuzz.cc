// Fuzz target: a saved document from outside (storage, a file a user hands over), read by
// Document::load (portcullis/document.h; lib/src/wire/change_codec.h's parseSnapshot and
// parseChange underneath).
//
// Input: the bytes of one snapshot (Document::save's output, lib/schema/change.capnp `Snapshot`).
//
// Invariants, beyond "no crash, no leak, no hang":
//   * load never throws and fails only with Malformed, Unsupported or Overloaded; with
//     maxSnapshotBytes one under the input's size it fails with Overloaded;
//   * a loaded document holds every change of the snapshot (graph size = the number of changes
//     parseSnapshot splits it into), nothing pending, no missing deps;
//   * load → save → load gives the same document: the second load succeeds, saves the same bytes
//     (save is canonical), and reads the same (dumpDocument: every object, key, element,
//     conflict, counter and text), with the same heads;
//   * the state does not depend on the order of the changes: a fresh document that applies them
//     in reverse (each waits for its deps) applies all of them, rejects none, and saves and reads
//     the same; so does fork().
#include <string>

#include "core_fuzz_support.h"
#include "wire/change_codec.h"

namespace portcullis::fuzz {
namespace {

constexpr const char* kTarget = "snapshot_fuzz";

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

DocumentOptions options(std::uint8_t actorFill) {
  DocumentOptions o;
  o.actor = *ActorId::fromBytes(Bytes(16, actorFill));
  return o;
}

void run(ByteView input) {
  auto doc = Document::load(input, options(0xF1));
  if (!input.empty()) {
    DocumentOptions tight = options(0xF1);
    tight.maxSnapshotBytes = input.size() - 1;
    auto limited = Document::load(input, tight);
    check(!limited && limited.error().code() == Errc::Overloaded,
          "a snapshot over maxSnapshotBytes is not refused as Overloaded");
  }
  if (!doc) {
    const Errc e = doc.error().code();
    check(e == Errc::Malformed || e == Errc::Unsupported || e == Errc::Overloaded,
          "load failed with an unexpected Errc");
    return;
  }
  auto changes = detail::parseSnapshot(input, SIZE_MAX);
  check(changes.has_value(), "load accepted a snapshot parseSnapshot refuses");
  check(doc->graph().size() == changes->size(),
        "the loaded document does not hold every change of the snapshot");
  check(doc->graph().pendingCount() == 0 && doc->getMissingDeps().empty(),
        "a loaded document has pending changes or missing deps");

  const Bytes saved = doc->save();
  const std::string dump = dumpDocument(*doc);
  auto again = Document::load(saved, options(0xF2));
  check(again.has_value(), "save() of a loaded document does not load");
  check(again->save() == saved, "load(save()) saves other bytes");
  check(dumpDocument(*again) == dump, "load(save()) reads differently");
  check(again->getHeads() == doc->getHeads(), "load(save()) has other heads");

  Document reversed(options(0xF3));
  std::vector<Bytes> backwards(changes->rbegin(), changes->rend());
  const ApplyReport report = reversed.applyChanges(backwards);
  check(report.rejected.empty() && report.applied == changes->size() && report.queued == 0,
        "the snapshot's changes applied in reverse are not all applied");
  check(reversed.save() == saved, "the changes applied in reverse save other bytes");
  check(dumpDocument(reversed) == dump, "the changes applied in reverse read differently");

  const Document forked = doc->fork(*ActorId::fromBytes(Bytes(16, 0xF4)));
  check(forked.save() == saved && dumpDocument(forked) == dump, "fork() differs from its origin");
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("snapshot_fuzz", "sodium_init failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("snapshot_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
