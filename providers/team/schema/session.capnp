# The team provider on the wire: the normative schemas of the team spec's §6.6 (handshake claims
# and the messages of a session) and §8 (signed changes). Ordinals and types fix the bytes that
# are signed and hashed, so nothing here may be renumbered, retyped or reordered.
#
# Framing (§6): every message is u32 big-endian length ‖ payload. A `Claim` travels AEAD-sealed
# inside m2 (Claim_R, ≤ 8 KiB) or m3 (Claim_I, ≤ 4 KiB); every message after m3 is one
# `Message`, AEAD-sealed under the sender's transport key. Claims and ChangeBody are canonical
# Cap'n Proto (one segment, preorder, no far pointers, trailing zero words truncated); the other
# messages are single-segment. A change travels as a `SealedChange`: `body` holds the canonical
# encoding of a `ChangeBody`, `signature` the actor's Ed25519 signature over
# "portcullis/team/v3/change-sig" ‖ docId ‖ body.
#
# Every byte is untrusted until wire/session_codec.cc has checked it: absent Data is a null
# pointer (an empty Data or List is malformed), hashes are 32 bytes and pkTags 16, lists of
# hashes strictly ascending. Versioning: a later version adds union members and fields. Words
# beyond this schema in a Claim or Message are ignored, an unknown Message member is ignored, an
# unknown Reason reads as denied and an unknown Kind is denied unknownDevice; a ChangeBody with
# such words is "unknown": kept and relayed, never applied.
@0xdab647f8843a00b3;

using Link = import "link.capnp".Link;

struct Claim {
  teamId @0 :Data;
  kind @1 :Kind;
  deviceId @2 :Data;
  signature @3 :Data;
  invitations @4 :List(Offer);    # Claim_R, mode 1 only
  invitation @5 :Data;            # Claim_I of an invitee only, from here on
  encKey @6 :Data;
  userId @7 :Text;
  proof @8 :Data;
  consent @9 :Data;
  inviteSig @10 :Data;
}
enum Kind { member @0; server @1; invitee @2; }
struct Offer { pkTag @0 :Data; invitation @1 :Data; }  # H128(pk), the invite link's hash
struct Status { union { ok @0 :Void; proveAdmission @1 :Void; denied @2 :Reason; } }
enum Reason {
  wrongTeam @0; unknownDevice @1; removed @2; badSignature @3; reflection @4;
  badProof @5; invitationRevoked @6; invitationUsedUp @7; invitationExpired @8;
  userIdTaken @9; needMember @10; timeout @11; tooLarge @12;
}
struct Proof { links @0 :List(Link); }                 # at most 256 (§6.2)
struct Need { hashes @0 :List(Data); }
struct Heads { hashes @0 :List(Data); linkCount @1 :UInt64; }
struct Vector { entries @0 :List(Entry); }             # ascending by deviceId
struct Entry { deviceId @0 :Data; deviceSeq @1 :UInt64; }
struct Want { hashes @0 :List(Data); }
struct Links { links @0 :List(Link); }                 # T order; one batch (§4.8)
struct Message {
  union {
    status @0 :Status;
    proof @1 :Proof;
    need @2 :Need;
    heads @3 :Heads;
    vector @4 :Vector;
    want @5 :Want;
    links @6 :Links;
  }
}

struct SealedChange { body @0 :Data; signature @1 :Data; }   # body = canonical ChangeBody
struct ChangeBody {
  actor @0 :Data;
  seq @1 :UInt64;
  startOp @2 :UInt64;
  opCount @3 :UInt32;
  deps @4 :List(Data);
  teamHeads @5 :List(Data);
  scope @6 :Text;
  generation @7 :Data;
  nonce @8 :Data;
  ciphertext @9 :Data;
}
struct ChangePayload { time @0 :UInt64; message @1 :Text; ops @2 :Data; }  # ops: the core's bytes
