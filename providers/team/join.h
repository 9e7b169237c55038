// providers/team/join.h — joining a team over the network with an invitation code, the invitee's
// side of the team spec's §6.3: `portcullis team join CODE --user NAME --connect ADDRESS`.
//
// The invitee dials a member device of the team in handshake mode 1, learns the team ID and the
// open invitations from the responder's claim, runs Argon2id on a worker thread, and stops,
// revealing nothing, unless the derived key is in the responder's list. It then proves the key
// in this session, sends its admission request, and receives the whole graph, which it accepts
// only if the root hashes to the team ID, the graph holds its own valid admission, and the
// responder's device is current. The caller then makes its state directory from the result.
//
// Layer: inside the team provider, beside handshake.h (which it drives as initiator) and
// invitation.h. Runs on the stream's executor; Argon2id runs on a thread of its own.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "link.h"
#include "portcullis/asio.h"
#include "portcullis/network_adapter.h"
#include "portcullis/result.h"
#include "portcullis/secret_handshake.h"

namespace portcullis::team {

struct JoinedTeam {
  Hash teamId{};
  std::string teamName;
  std::vector<Bytes> links;  // every link of the graph, `Link` messages in T order
  std::string userId;        // the member this device now belongs to
  Key responder{};           // the member device that admitted it
};

struct JoinOptions {
  std::string userId;  // the new member's userId; empty for a device invitation
  // The handshake and the graph's arrival, each (Argon2id not counted, §10).
  std::chrono::steady_clock::duration deadline = std::chrono::seconds(10);
};

// Joins through the peer at the other end of `stream` (owned; closed when done). `code` is the
// invitation code as typed; `newDevice` the key this device will use in the team. Errors: Malformed
// for a code that does not parse; Denied when the responder's team does not match the code, does
// not list the invitation (used up, revoked, expired, or another team's code: nothing revealed),
// or refuses the admission (the message names the reason of §6.6); Disconnected or Malformed when
// the graph does not arrive whole and consistent before the deadline.
asio::awaitable<Result<JoinedTeam>> joinTeam(std::unique_ptr<Stream> stream, std::string code,
                                             const DeviceKey& newDevice, JoinOptions options);

}  // namespace portcullis::team
