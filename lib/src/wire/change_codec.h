// The plain change format: a change is its canonical Cap'n Proto encoding (lib/schema/change.capnp)
// and its hash is BLAKE2b-256 of those bytes. This file and its .cc are the only code that
// touches capnp for changes and snapshots.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "crdt/op.h"
#include "portcullis/change_graph.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis::detail {

struct ParsedChange {
  ChangeEnvelope envelope;  // owns the bytes
  ChangeData data;          // its actor and deps are moved out: they are the envelope's
};

// Reads untrusted bytes as one plain change and checks everything that can be checked without
// the document: size (at most `maxBytes`), canonical encoding, field ranges and every op's
// structure. The DAG rules (seq, startOp against deps) are ChangeGraph's.
// `recycledOps`, if given, is a vector of ops whose storage the decoded ops reuse (it is moved
// into the result's data).
Result<ParsedChange> parseChange(Bytes bytes, std::size_t maxBytes,
                                 std::vector<Op>* recycledOps = nullptr);
// The same, reading every change through capnp (isCanonical, then its getters) instead of
// first trying the direct reading of the canonical layout: the reference that tests hold
// parseChange to.
Result<ParsedChange> parseChangeWithCapnp(Bytes bytes, std::size_t maxBytes);

// Decodes the ops of an envelope that parseChange accepted (or encodeChange made).
ChangeData decodeChange(const ChangeEnvelope& envelope);

// Encodes a change made locally. Preconditions (bugs if violated): the same rules parseChange
// checks.
ChangeEnvelope encodeChange(const ChangeData& change);
// The same, moving the actor and the deps into the envelope (the ops are left in `change`),
// with `scratch` as the buffer for the op blob.
ChangeEnvelope encodeChange(ChangeData&& change, Bytes& scratch);

// Snapshots: every change's payload, in the order given, or every change of `graph` in its
// canonical order.
Bytes encodeSnapshot(const std::vector<const ChangeEnvelope*>& changes);
Bytes encodeSnapshot(const ChangeGraph& graph);
// Splits a snapshot into its changes' bytes (each still to be parsed). At most `maxBytes`.
Result<std::vector<Bytes>> parseSnapshot(ByteView bytes, std::size_t maxBytes);

}  // namespace portcullis::detail
