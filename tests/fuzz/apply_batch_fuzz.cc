// Fuzz target: a batch of changes received from a peer, applied to a document that already has
// history (Document::applyChanges, and the Repo's path: parseChange then
// DocumentAccess::applyParsed). Stateful: the document is baseDocument() (apply_batch_input.h:
// two actors, concurrent edits of maps, a list, a text and a counter), loaded afresh for every
// input.
//
// Input: see apply_batch_input.h (raw changes, changes built canonically from fuzzed fields so
// that they get past the encoding checks, and repeats).
//
// Invariants, beyond "no crash, no leak, no hang":
//   * nothing throws; every change is all or nothing: after each change offered alone, the graph
//     grew by exactly the report's `applied`, and a change that applied nothing (rejected,
//     duplicate or queued) left save(), the whole readable state (dumpDocument), the heads and
//     the missing deps unchanged;
//   * so a rejected batch (applied == 0) leaves save() and the state unchanged;
//   * a batch is nothing but its changes one at a time: the whole batch through applyChanges, the
//     changes one by one, and the Repo's path (each parsed with fresh ops, then applyParsed) give
//     the same save(), state, pending count and missing deps;
//   * the state reached incrementally is the one the history gives: load(save()) of the result
//     succeeds, saves the same bytes and reads the same (the op set does not depend on the order
//     or the batches in which changes arrived);
//   * applying the same batch again applies nothing and changes nothing (without the tight queue
//     limits, under which a change refused for a full queue may fit later).
#include <string>

#include "apply_batch_input.h"
#include "crdt/document_access.h"
#include "core_fuzz_support.h"

namespace portcullis::fuzz {
namespace {

constexpr const char* kTarget = "apply_batch_fuzz";

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

struct Base {
  Document doc = batch::baseDocument();
  Bytes saved = doc.save();
};
const Base& base() {
  static const Base b;
  return b;
}

// What a change must leave alone when it applies nothing.
struct Observed {
  Bytes saved;
  std::string dump;
  std::vector<ChangeHash> heads;
  std::vector<ChangeHash> missing;
  std::size_t size = 0;
  std::size_t pending = 0;
  explicit Observed(const Document& d)
      : saved(d.save()),
        dump(dumpDocument(d)),
        heads(d.getHeads()),
        missing(d.getMissingDeps()),
        size(d.graph().size()),
        pending(d.graph().pendingCount()) {}
  // The same document, and the same queue unless `queued` (a change that waits for its deps
  // changes the missing deps, and nothing else).
  bool sameState(const Observed& o, bool queued = false) const {
    return saved == o.saved && dump == o.dump && heads == o.heads &&
           (queued ? pending >= o.pending : missing == o.missing && pending == o.pending);
  }
};

Document loadBase(const DocumentOptions& options) {
  auto doc = Document::load(base().saved, options);
  check(doc.has_value(), "the base document does not load");
  return std::move(*doc);
}

void run(ByteView input) {
  Reader r(input);
  const bool tight = (r.byte() & batch::kTightLimits) != 0;
  batch::BatchState state(base().doc);
  const std::vector<Bytes> changes = batch::readBatch(r, state);
  DocumentOptions options = batch::batchOptions(0, tight);
  options.actor = *ActorId::fromBytes(Bytes(16, 0x77));

  // The whole batch at once.
  Document whole = loadBase(options);
  const Observed before(whole);
  const ApplyReport report = whole.applyChanges(changes);
  const Observed after(whole);
  check(after.size == before.size + report.applied,
        "the graph did not grow by the batch's applied count");
  check(report.queued == after.pending, "the report's queued count is not the pending count");
  if (report.applied == 0) {
    check(after.sameState(before, true), "a batch that applied nothing changed the document");
  }

  // One change at a time.
  Document single = loadBase(options);
  Observed was(single);
  for (const Bytes& change : changes) {
    const ApplyReport one = single.applyChanges(std::span<const Bytes>(&change, 1));
    Observed now(single);
    check(now.size == was.size + one.applied,
          "the graph did not grow by one change's applied count");
    if (one.applied == 0) {
      check(now.sameState(was, now.pending > was.pending),
            "a change that applied nothing half-applied");
    }
    was = std::move(now);
  }
  check(Observed(single).sameState(after) && single.graph().pendingCount() == after.pending,
        "the changes one at a time give another document than the batch");

  // The Repo's path: parsed first with fresh ops, then applied parsed.
  Document parsed = loadBase(options);
  std::vector<ChangeEnvelope> envelopes;
  std::vector<detail::ChangeData> data;
  for (const Bytes& change : changes) {
    auto p = detail::parseChange(change, options.maxChangeBytes);
    if (!p) continue;
    envelopes.push_back(std::move(p->envelope));
    data.push_back(std::move(p->data));
  }
  (void)detail::DocumentAccess::applyParsed(parsed, std::move(envelopes), data);
  check(Observed(parsed).sameState(after) && parsed.graph().pendingCount() == after.pending,
        "parseChange then applyParsed gives another document than applyChanges");

  // The history gives the same state.
  auto rebuilt = Document::load(after.saved, options);
  check(rebuilt.has_value(), "save() of the result does not load");
  check(rebuilt->save() == after.saved, "load(save()) of the result saves other bytes");
  check(dumpDocument(*rebuilt) == after.dump,
        "the state reached change by change differs from the state its history gives");

  if (!tight) {
    const ApplyReport again = whole.applyChanges(changes);
    check(again.applied == 0, "the same batch applied twice applied changes the second time");
    check(Observed(whole).sameState(after), "the same batch applied twice changed the document");
  }
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("apply_batch_fuzz", "sodium_init failed");
  portcullis::fuzz::guarded("apply_batch_fuzz", [] { (void)portcullis::fuzz::base(); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("apply_batch_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
