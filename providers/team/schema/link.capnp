# Team links: the normative schema of the team spec's §2.1. Ordinals and types fix the canonical
# bytes that are signed and hashed, so nothing here may be renumbered, retyped or reordered.
#
# A stored link is one `Link` message: `body` holds the canonical encoding of a `LinkBody` (one
# segment, preorder, no far pointers, trailing zero words truncated), `signature` the author
# device's Ed25519 signature over "portcullis/team/v3/link-sig" ‖ body. Every byte is untrusted
# until wire/link_codec.cc's checks 1 and 2 pass: absent Data is a null pointer (an empty Data
# or List is malformed), optional Data is null or of exact size, and set lists are strictly
# ascending. A later version adds union members and fields; such a link is "unknown": stored,
# invalid under this version, relayed, never dropped.
@0xd4f1a3c2b5e69788;

struct Link { body @0 :Data; signature @1 :Data; }

struct LinkBody {
  prev @0 :List(Data);
  userId @1 :Text;
  deviceId @2 :Data;
  deviceSeq @3 :UInt64;
  timestamp @4 :UInt64;       # ms since 1970; informational only
  action :union {
    root @5 :Root;
    addMember @6 :AddMember;
    inviteMember @7 :Invite;
    inviteDevice @8 :Invite;
    revokeInvitation @9 :Data;     # the invitation's link hash
    admitMember @10 :AdmitMember;
    admitDevice @11 :AdmitDevice;
    addDevice @12 :AddDevice;
    removeDevice @13 :Data;
    removeMember @14 :Text;
    addMemberRole @15 :MemberRole;
    removeMemberRole @16 :MemberRole;
    setDocumentAccess @17 :DocumentAccess;
    addServer @18 :Server;
    removeServer @19 :Data;
    rotateKeys @20 :KeyGeneration;
  }
}

struct Device { deviceId @0 :Data; encKey @1 :Data; }
struct NewDevice { deviceId @0 :Data; encKey @1 :Data; consent @2 :Data; }
struct Lockbox { recipient @0 :Data; generation @1 :Data; sealed @2 :Data; }
struct KeyGeneration {
  scope @0 :Text;
  check @1 :Data;
  previous @2 :Data;
  prevBox @3 :Data;
  lockboxes @4 :List(Lockbox);
}
struct Root {
  teamName @0 :Text;
  founder @1 :Device;
  recoveryKey @2 :Data;
  version @3 :UInt16;
  teamKeys @4 :KeyGeneration;
}
struct AddMember {
  userId @0 :Text;
  devices @1 :List(NewDevice);
  roles @2 :List(Text);
  lockboxes @3 :List(Lockbox);
}
struct Invite { publicKey @0 :Data; maxUses @1 :UInt32; expiresAt @2 :UInt64; }
struct AdmitMember {
  invitation @0 :Data;
  userId @1 :Text;
  device @2 :NewDevice;
  inviteSig @3 :Data;
  lockboxes @4 :List(Lockbox);
}
struct AdmitDevice {
  invitation @0 :Data;
  device @1 :NewDevice;
  inviteSig @2 :Data;
  lockboxes @3 :List(Lockbox);
}
struct AddDevice { userId @0 :Text; device @1 :NewDevice; lockboxes @2 :List(Lockbox); }
struct MemberRole { userId @0 :Text; role @1 :Text; lockboxes @2 :List(Lockbox); }
struct DocumentAccess {
  document @0 :Data;             # 16-byte DocumentId; null = "*"
  principal :union {
    everyone @1 :Void;
    role @2 :Text;
    member @3 :Text;
    server @4 :Data;
  }
  level @5 :Level;
}
enum Level { none @0; read @1; write @2; }
struct Server { serverId @0 :Data; encKey @1 :Data; }
