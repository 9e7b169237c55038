# sync.capnp — the sync protocol (architecture §5): one Envelope per frame of an authenticated
# MessageChannel.
#
# Every field is untrusted. lib/src/wire/sync_codec.cc reads a frame with ReaderOptions limits
# sized to the frame, checks every field below (sizes, ascending hash lists, printable peer IDs)
# and turns a frame that breaks a rule into Errc::Malformed, which closes that session only.
# Change payloads are opaque here: the document store parses them.
#
# Versioning: `Hello.protocolVersion` names the protocol; a peer that speaks another version is
# refused. New message kinds are new union members, which older readers ignore; new fields get
# new ordinals.
@0xe7dcbd568841ba66;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("portcullis::schema");

# The first frame each side sends after authentication.
struct Hello {
  protocolVersion @0 :UInt32;
  peerId @1 :Text;         # must equal the identity the auth provider proved
  storageId @2 :Data;      # 0 or 16 bytes: which store the peer persists to
  isEphemeral @3 :Bool;    # the peer stores nothing (a CLI client)
}

# Hash lists are concatenated 32-byte change hashes, strictly ascending.
struct Sync {
  docId @0 :Data;          # 16 bytes
  heads @1 :Data;          # the sender's heads
  need @2 :Data;           # heads of the receiver the sender does not know: send what leads there
  have @3 :Data;           # a sample of the sender's history (heads, then ancestors at doubling
                           # distances), so the receiver can skip what both sides already have
  changes @4 :List(Data);  # change payloads the receiver lacks, in causal order
  storedHeads @5 :Data;    # the heads durably stored at the sender (empty: no news)
  requestId @6 :UInt64;    # requests only: names the request across hops
  hops @7 :UInt8;          # requests only: how many peers forwarded it so far (at most 8)
}

# The answer to a request for a document the peer lacks or may not send: the same bytes either way.
struct Unavailable {
  docId @0 :Data;
  requestId @1 :UInt64;
}

struct Ephemeral {
  docId @0 :Data;
  senderId @1 :Text;       # the original sender's peer ID
  data @2 :Data;
}

# The answer to changes the receiver's okToReceive refused: they were dropped and not stored.
# It goes only to the peer that sent them and names only what that peer sent in one `sync`:
# the document, and the changes of that frame, never why (which member, role or rule), nor
# anything of another document or peer. A sync for a document the receiver may not send
# (okToSend) gets no answer at all, as a missing one would not.
struct Refused {
  docId @0 :Data;          # 16 bytes: the document the refused changes were sent for
  changes @1 :Data;        # hashes of refused changes of that frame (at most 1024, the last
                           # ones of the frame), strictly ascending
  count @2 :UInt32;        # how many changes of that frame were refused (>= the hashes listed)
}

struct Envelope {
  union {
    hello @0 :Hello;
    sync @1 :Sync;
    request @2 :Sync;      # a sync from a peer that lacks the document
    unavailable @3 :Unavailable;
    ephemeral @4 :Ephemeral;
    provider @5 :Data;     # opaque bytes for the auth provider
    leave @6 :Void;        # the sender is closing the session
    refused @7 :Refused;   # changes the sender refused (older peers ignore it)
  }
}
