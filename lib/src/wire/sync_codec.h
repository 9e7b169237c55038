// The sync protocol's frames (lib/schema/sync.capnp) as plain structs, and their strict codec.
// This file and its .cc are the only code that touches capnp for the sync protocol.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "portcullis/change_graph.h"
#include "portcullis/ids.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis::detail {

inline constexpr std::uint32_t kProtocolVersion = 1;
inline constexpr std::uint8_t kMaxHops = 8;
// The most change hashes a `refused` frame lists (32 KiB of them).
inline constexpr std::size_t kMaxRefusedHashes = 1024;

struct HelloMsg {
  std::uint32_t protocolVersion = kProtocolVersion;
  PeerId peerId;
  Bytes storageId;
  bool isEphemeral = false;
};

// `sync`, or `request` when isRequest.
struct SyncMsg {
  DocumentId doc;
  std::vector<ChangeHash> heads;
  std::vector<ChangeHash> need;
  std::vector<ChangeHash> have;
  std::vector<Bytes> changes;
  std::vector<ChangeHash> storedHeads;
  std::uint64_t requestId = 0;
  std::uint8_t hops = 0;
  bool isRequest = false;
};

struct UnavailableMsg {
  DocumentId doc;
  std::uint64_t requestId = 0;
};

struct EphemeralMsg {
  DocumentId doc;
  PeerId sender;
  Bytes data;
};

struct ProviderMsg {
  Bytes data;
};

struct LeaveMsg {};

// Changes of one `sync` that the sender refused (sync.capnp `Refused`).
struct RefusedMsg {
  DocumentId doc;
  std::vector<ChangeHash> changes;  // strictly ascending, at most kMaxRefusedHashes
  std::uint32_t count = 0;          // >= changes.size()
};

// A union member this version does not know: ignored (architecture §5).
struct UnknownMsg {};

using SyncMessage = std::variant<HelloMsg, SyncMsg, UnavailableMsg, EphemeralMsg, ProviderMsg,
                                 LeaveMsg, RefusedMsg, UnknownMsg>;

// Encodes one frame. Preconditions (bugs if violated): hash lists strictly ascending; a
// RefusedMsg lists at most kMaxRefusedHashes hashes and no more than its count.
Bytes encodeMessage(const SyncMessage& message);
// Encodes a `sync` frame whose changes are `changes` (sync.changes must be empty): the payloads
// are copied once, straight from the store into the frame.
Bytes encodeSync(const SyncMsg& sync, std::span<const ChangeEnvelope* const> changes);

// Reads one untrusted frame; Errc::Malformed on anything that breaks a rule of sync.capnp.
Result<SyncMessage> decodeMessage(ByteView frame);

// The encoded size of a change payload inside a Sync message, for batching under a frame limit.
std::size_t encodedChangeSize(std::size_t payloadBytes);

}  // namespace portcullis::detail
