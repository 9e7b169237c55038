# The `online` provider on the wire. Ordinals and types fix the bytes that are signed, so nothing
# here may be renumbered, retyped or reordered; a later version adds fields and union members.
#
# A certificate and a revocation list travel as a `Signed`: `body` holds the canonical encoding
# (one segment, preorder, trailing zero words truncated) of a `Certificate` or a `Revocations`,
# `signer` the identity service's Ed25519 public key, and `signature` its signature over
#   "portcullis/online/v1/certificate\0" ‖ body   or   "portcullis/online/v1/revocations\0" ‖ body.
#
# Sessions run the secret handshake under the network key BLAKE2b-256("portcullis/online/v1/" ‖
# appId), then box-stream. The dialer's first frame is a `Hello`; in a peer session the acceptor
# answers with its own `Hello`, in a login it answers with a `LoginAnswer` and hangs up. After a
# peer session starts, the provider's messages are `Notice`s.
#
# Every byte is untrusted until providers/online/certificate.cc has checked it: absent Data or
# Text is a null pointer, keys are 32 bytes and signatures 64, text is printable UTF-8 without
# control characters, and every list and blob has a bound (certificate.h).
@0xb90e98f841eabfbf;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("portcullis::online::wire");

struct Signed {
  body @0 :Data;
  signer @1 :Data;
  signature @2 :Data;
}

struct Certificate {
  version @0 :UInt16;           # 1
  appId @1 :Text;
  peerKey @2 :Data;             # the holder's Ed25519 key, as its secret handshake proves it
  userId @3 :Text;
  roles @4 :List(Text);         # null: none
  read @5 :List(Text);          # document IDs or "*"; null: none
  write @6 :List(Text);         # write implies read
  issuedAt @7 :Int64;           # Unix seconds
  expiresAt @8 :Int64;
  serial @9 :UInt64;            # random; what a revocation list names
}

struct Revocations {
  version @0 :UInt16;           # 1
  appId @1 :Text;
  sequence @2 :UInt64;          # a later list has a larger sequence and replaces the earlier
  issuedAt @3 :Int64;
  serials @4 :List(UInt64);     # strictly ascending; null: none
}

struct Hello {
  union {
    certificate @0 :Data;       # a Signed Certificate: a peer session
    login @1 :Login;            # a device asking an identity service for a certificate
  }
  revocations @2 :Data;         # the newest Signed Revocations the sender holds, or null
}

struct Login {
  provider @0 :Text;            # which of the service's validators: "jwt", "webhook", ...
  token @1 :Data;               # opaque to the provider, at most 16 KiB
}

struct LoginAnswer {
  union {
    certificate @0 :Data;       # a Signed Certificate for the device's key
    refused @1 :Text;           # why, in words the device may be told
  }
  clientInfo @2 :Text;          # the webhook's clientInfo (JSON text) for the device only, or null
}

struct Notice {
  revocations @0 :Data;         # a Signed Revocations newer than the receiver may hold
}
