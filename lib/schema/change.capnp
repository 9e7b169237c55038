# change.capnp — one change of a document, and a document snapshot.
#
# A change's identity is BLAKE2b-256 of its canonical encoding (capnp::canonicalize: one
# segment, no segment table), so the bytes a replica receives must already be canonical and are
# hashed as they are. Every field is untrusted: lib/src/wire/change_codec.cc bounds the read and
# checks every rule below before anything reaches the document.
#
# Size matters: a document holds one change per commit, and a typical commit is one op. The
# header is a flat struct, the deps are one blob, and the ops are one blob in the compact
# encoding described at `ops`, so a one-op change is about 120 bytes: a single BLAKE2b block.
# An empty field (no deps, no ops, no message, no other actors) is absent, never an empty
# value, so that every change has exactly one encoding.
#
# Versioning: new fields are added with new ordinals; a reader that meets an op action or flag
# it does not know rejects the change as unsupported (it cannot apply it alike on every replica).
@0x9c516e9df47cefd8;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("portcullis::schema");

struct Change {
  seq @0 :UInt64;                # 1 for the actor's first change
  startOp @1 :UInt64;            # counter of the first op; ops are numbered consecutively
  time @2 :Int64;                # seconds since the Unix epoch, as the author claims
  actor @3 :Data;                # 1 to 32 bytes
  deps @4 :Data;                 # 32-byte change hashes, concatenated, strictly ascending

  # The ops, one after another, each:
  #   head   one byte: bits 0-3 the action (below), bit 4 insert, bit 5 the key is an element
  #          (else a map key); bits 6-7 are zero
  #   obj    an OpRef: the object (counter 0: the root)
  #   key    an OpRef (counter 0: the list head, insert only), or a map key as a length and
  #          that many bytes of UTF-8
  #   pred   a count, then that many OpRefs, strictly ascending by (counter, actor bytes), every
  #          counter below this op's own: the ops this one supersedes (for an increment: the
  #          counters it adds to)
  #   value  by action: delete, null, false, true, makeMap, makeList, makeText: nothing;
  #          int, counter, increment: a zigzag varint; float64: 8 bytes little-endian;
  #          str (UTF-8), bytes: a length and that many bytes
  # Actions: 0 delete, 1 null, 2 false, 3 true, 4 int, 5 float64, 6 str, 7 bytes, 8 counter,
  # 9 increment, 10 makeMap, 11 makeList, 12 makeText.
  # An OpRef is a counter, then, unless the counter is 0, an index into the actor table (0 the
  # change's own actor, i > 0 otherActors[i - 1]). Counts, lengths, counters and indexes are
  # unsigned LEB128 varints in their shortest form. The blob ends exactly after the last op.
  ops @5 :Data;

  message @6 :Text;
  otherActors @7 :List(Data);    # strictly ascending, none equal to `actor`
}

# A saved document (Document::save): every change in canonical order (topological, ties by
# ascending hash), each as its canonical bytes. The changes are concatenated into one blob, and
# `sizes` splits it (each a whole number of words), so that saving is one copy per change. The
# snapshot itself is canonical too.
struct Snapshot {
  version @0 :UInt32;            # 2
  sizes @1 :List(UInt32);        # of each change, in bytes; they add up to the blob's size
  changes @2 :Data;
}
