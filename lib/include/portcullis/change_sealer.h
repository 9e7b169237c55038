// portcullis/change_sealer.h — the seam for sealed changes (architecture §4).
//
// A provider that signs and encrypts changes (the `team` provider, the team protocol §8) supplies a
// ChangeSealer per document. Local commits are sealed on the way out; received payloads are
// parsed into envelopes without any secret (so a relay that holds no key still validates and
// serves the DAG by hash and deps) and opened on the way in by nodes that hold the key. Without
// a sealer a change's payload is its plain canonical encoding and its hash is BLAKE2b of that.
//
// Implementations must be callable from the Repo's executor; they hold no per-call state.
#pragma once

#include "portcullis/change_graph.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis {

class ChangeSealer {
 public:
  virtual ~ChangeSealer() = default;

  // Reads a payload as it travels and is stored, checking everything that can be checked
  // without a secret (structure, signature, the hash the sealer defines). Fails with
  // Errc::Malformed or Errc::Denied; never throws.
  virtual Result<ChangeEnvelope> parse(Bytes payload) const = 0;

  // Whether this node holds what `open` needs. A relay answers false and keeps envelopes only.
  virtual bool canOpen() const = 0;

  // Seals a local commit. `plain` is a plain change (payload: its canonical encoding); the result
  // keeps its actor, seq, startOp, opCount and deps and carries the sealer's own hash and payload.
  virtual Result<ChangeEnvelope> seal(const ChangeEnvelope& plain) const = 0;

  // The plain change inside `sealed` (an envelope `parse` or `seal` produced): its canonical
  // encoding, whose actor, seq, startOp, opCount and deps equal the envelope's. Fails with
  // Errc::NotFound when this node has no key for it and Errc::Malformed when it does not open.
  virtual Result<Bytes> open(const ChangeEnvelope& sealed) const = 0;
};

}  // namespace portcullis
