// providers/team/change_sealer.h — the team provider's ChangeSealer, version 3 (team spec §8):
// changes signed by their author's device key, not encrypted.
//
// A sealed change is the `SealedChange` {body, signature} of wire/session_codec.h. Its body is a
// canonical ChangeBody: the core's header (actor = the author's deviceId, which is also the CRDT
// actor; seq, startOp, opCount, deps), the team heads the author declares, scope "team", no
// generation nor nonce, and as `ciphertext` the canonical ChangePayload in clear, whose `ops` are
// the core's plain canonical change bytes. Its hash is the team's change hash (H256 over body and
// signature), which keys the core's change DAG.
//
// What this sealer checks is §8 rule 1's structural part (canonical body, signature under the
// actor for this document) and rule 3's version-3 shape. Rules 2 to 4 need the team graph: the
// provider checks them in okToReceive, reading each change's declared heads with `header`.
//
// Layer: inside the team provider, the core's ChangeSealer seam (portcullis/change_sealer.h).
// Threads: an instance holds no per-call state and may be used from any thread, provided the
// teamHeads function it was given may be called there.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "link.h"
#include "portcullis/change_graph.h"
#include "portcullis/change_sealer.h"
#include "portcullis/result.h"
#include "portcullis/secret_handshake.h"
#include "portcullis/types.h"

namespace portcullis::team {

// What okToReceive needs from a change beyond its envelope: its author and the team heads it
// declares (1..64, strictly ascending).
struct SealedChangeHeader {
  Key actor{};
  std::vector<Hash> teamHeads;
};

class TeamChangeSealer final : public ChangeSealer {
 public:
  // `docId`: the document's ID bytes, which every signature covers. `author`: this device's key,
  // which signs local commits; null on a node that never authors (a server), whose seal always
  // fails. `teamHeads`: the team heads to declare in the next local change, called once per
  // seal; they must be 1..64 strictly ascending link hashes, or seal fails. `maxChangeBytes`: the
  // largest sealed change (and ChangePayload inside one) parse and open accept.
  TeamChangeSealer(const DocId& docId, std::shared_ptr<const DeviceKey> author,
                   std::function<std::vector<Hash>()> teamHeads, std::size_t maxChangeBytes);

  // Decodes and verifies a SealedChange: Malformed when it is over maxChangeBytes, not a
  // canonical body, or not signed by its actor for this document; Denied when the body is not of
  // the version-3 shape (scope other than "team", a generation or a nonce). A body with words
  // beyond this version's schema (a later version's fields) fails with Unsupported: the spec
  // keeps such a change, relays it and never applies it, but the core's graph cannot hold a
  // change it does not apply, so this version refuses it instead.
  Result<ChangeEnvelope> parse(Bytes payload) const override;

  // Always: a version-3 change is readable by anyone who may read the document.
  bool canOpen() const override { return true; }

  // Signs a local commit. Denied without an author, or when the plain change's actor is not the
  // author's deviceId; Malformed when teamHeads() is not 1..64 strictly ascending hashes;
  // Overloaded for more ops than a ChangeBody counts (2^32 - 1). The sealed change is not bounded
  // by maxChangeBytes here, as the core bounds no local commit.
  Result<ChangeEnvelope> seal(const ChangeEnvelope& plain) const override;

  // The plain change bytes inside an envelope that parse or seal produced. The signature is not
  // verified again (parse or seal vouched for these bytes and an envelope is never edited);
  // the structure is read again, and Malformed when it or its ChangePayload does not decode.
  // Never NotFound: there is no key to lack.
  Result<Bytes> open(const ChangeEnvelope& sealed) const override;

  // The author and declared team heads of an envelope that parse or seal produced, read without
  // verifying again (for okToReceive's §8 rules 2 to 4). Malformed when the payload is not a
  // SealedChange with a decodable body.
  static Result<SealedChangeHeader> header(const ChangeEnvelope& sealed);

 private:
  DocId docId_;
  std::shared_ptr<const DeviceKey> author_;
  std::function<std::vector<Hash>()> teamHeads_;
  std::size_t maxChangeBytes_;
};

}  // namespace portcullis::team
