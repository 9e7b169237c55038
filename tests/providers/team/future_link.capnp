# Test only: a "later version" of the team link schema (providers/team/schema/link.capnp), to
# build links that this version must treat as unknown (the team protocol §2.3): stored, invalid for
# ever, relayed, never dropped. Every ordinal and type of link.capnp is kept, so a message of this
# schema reads as a message of that one; the additions (a union member @21, a LinkBody field
# @22, a KeyGeneration field @5) are what a later version could add. Its own file ID, so its
# generated types never collide with the real schema's.
@0xec72c609355606c3;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("portcullis::team::future_schema");

struct Link { body @0 :Data; signature @1 :Data; }

struct LinkBody {
  prev @0 :List(Data);
  userId @1 :Text;
  deviceId @2 :Data;
  deviceSeq @3 :UInt64;
  timestamp @4 :UInt64;
  action :union {
    root @5 :Root;
    addMember @6 :AddMember;
    inviteMember @7 :Invite;
    inviteDevice @8 :Invite;
    revokeInvitation @9 :Data;
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
    futureAction @21 :FutureAction;   # later version: an action this version does not know
  }
  futureField @22 :UInt64;            # later version: a data word beyond this schema's
}

# The unknown action's content: its name and the symbolic act as canonical JSON.
struct FutureAction { name @0 :Text; payload @1 :Text; }

struct Device { deviceId @0 :Data; encKey @1 :Data; }
struct NewDevice { deviceId @0 :Data; encKey @1 :Data; consent @2 :Data; }
struct Lockbox { recipient @0 :Data; generation @1 :Data; sealed @2 :Data; }
struct KeyGeneration {
  scope @0 :Text;
  check @1 :Data;
  previous @2 :Data;
  prevBox @3 :Data;
  lockboxes @4 :List(Lockbox);
  futureField @5 :UInt64;             # later version: a data word beyond this schema's
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
  document @0 :Data;
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
