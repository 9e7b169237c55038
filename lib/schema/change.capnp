# change.capnp — one change of a document, and a document snapshot.
#
# A change's identity is BLAKE2b-256 of its canonical encoding (capnp::canonicalize: one
# segment, no segment table), so the bytes a replica receives must already be canonical and are
# hashed as they are. Every field is untrusted: lib/src/wire/change_codec.cc bounds the read and
# checks every rule below before anything reaches the document.
#
# Versioning: new fields are added with new ordinals; a reader that meets an action or key it
# does not know rejects the change (it cannot apply it alike on every replica).
@0x9c516e9df47cefd8;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("portcullis::schema");

# A reference to an op: counter 0 names the root object (as `obj`) or the head of a list (as
# `key.elem`). `actor` indexes the change's actor table: 0 is the change's own actor, i > 0 is
# otherActors[i - 1].
struct OpRef {
  counter @0 :UInt64;
  actor @1 :UInt32;
}

struct Op {
  obj @0 :OpRef;
  key :union {
    map @1 :Text;        # a map key (valid UTF-8)
    elem @2 :OpRef;      # a list element, or (insert only) head
  }
  insert @3 :Bool;       # a new list element after key.elem
  # Ops this one supersedes (for `increment`: the counters it adds to). Strictly ascending by
  # (counter, actor bytes), every counter below this op's own.
  pred @4 :List(OpRef);
  action :union {
    delete @5 :Void;
    null @6 :Void;
    bool @7 :Bool;
    int @8 :Int64;
    float64 @9 :Float64;
    str @10 :Text;
    bytes @11 :Data;
    counter @12 :Int64;
    increment @13 :Int64;
    makeMap @14 :Void;
    makeList @15 :Void;
    makeText @16 :Void;
  }
}

struct Change {
  actor @0 :Data;                # 1 to 32 bytes
  seq @1 :UInt64;                # 1 for the actor's first change
  startOp @2 :UInt64;            # counter of ops[0]; ops are numbered consecutively
  time @3 :Int64;                # seconds since the Unix epoch, as the author claims
  message @4 :Text;
  deps @5 :List(Data);           # 32-byte change hashes, strictly ascending
  otherActors @6 :List(Data);    # strictly ascending, none equal to `actor`
  ops @7 :List(Op);
}

# A saved document (Document::save): every change in canonical order (topological, ties by
# ascending hash), each as its canonical bytes. The snapshot itself is canonical too.
struct Snapshot {
  version @0 :UInt32;            # 1
  changes @1 :List(Data);
}
