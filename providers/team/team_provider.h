// providers/team/team_provider.h — the `team` auth provider: a member device (or a server) of one
// team, authenticated by the team's signature chain (providers/team/README.md says what it
// protects and what not).
//
// Layer: an AuthProvider plugin (libportcullis-auth-team.so) over the team graph library. Made
// from the `[auth.team]` table of a deployment's config:
//
//   state       = "DIR"   # required: the device's team state directory (`portcullis team init`,
//                         # `team join`, or `team host` for a server)
//   change-wait = 10000   # optional: ms a change may wait for team links it declares (§8 rule 2)
//
// What it does on the wire (the team spec's §6.1, §6.4, §6.5, §8, §9):
//   - authenticate: the SIGMA-I handshake in mode 0; a peer is accepted when its device is a
//     current member device or a current server in this device's final state, and denied
//     `removed` when the graph shows it removed. A device it has never heard of is asked to prove
//     its admission (§6.2): the links it sends are evaluated on a copy of the graph and stored
//     only if they make it current, else it is denied `unknownDevice` (or `removed`). Frames
//     then travel AEAD-sealed (team_channel.h).
//   - graph sync at the start of every session (Heads, Vector, Links, Want), and every link this
//     node stores, from a peer or its own, goes at once to every other session; links are
//     appended to the state directory before anything else sees them. A Want left unanswered
//     for the sync step (10 s) closes the session (§10).
//   - after each evaluation, a session whose peer is no longer current ends (endSession); the
//     Repo is asked to check the access of every other peer again (accessChanged).
//   - changes are signed by their author device and declare the team heads they were made at;
//     okToReceive holds each change to §8 rules 2–4 (waiting, bounded, for links it declares).
//   - okToAdvertise, okToSend and okToRequest answer from §9's document access.
//
// Every method runs on the Repo's executor, like every AuthProvider. The state directory is held
// open (and locked) for the provider's life.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "link.h"
#include "portcullis/auth_provider.h"
#include "portcullis/provider_registry.h"
#include "portcullis/result.h"
#include "team.h"  // registerProvider

namespace portcullis::team {

struct TeamProviderOptions {
  std::string state;                                  // the state directory
  std::chrono::milliseconds changeWait{10'000};       // §8 rule 2's deadline
  std::chrono::milliseconds handshakeDeadline{10'000};
  // §10: new declared-heads cuts evaluated per session per minute (more wait, up to changeWait).
  std::size_t cutsPerMinute = 16;
  // §10: a graph-sync step this node asked for (a Want) unanswered this long closes the session
  // (the peer may reconnect; sync resumes from Vector).
  std::chrono::milliseconds syncStep{10'000};
  // §6.2: speculative evaluations of unknown peers' proofs per team per minute (each copies the
  // graph); more are denied `unknownDevice` until the window moves.
  std::size_t proofsPerMinute = 16;
};

// A team provider over an existing state directory. Errors as TeamStateDir::open gives them, and
// Errc::Config for a directory whose team has no root yet.
Result<std::shared_ptr<AuthProvider>> makeTeamProvider(const TeamProviderOptions& options);

// True once a Heads message from `peer` equals this node's heads: both hold the same links. For
// tools that push links and wait until a peer has them.
bool teamSyncedWith(const AuthProvider& provider, const PeerId& peer);

// Signs `action` as this device while the node runs (a running node holds its state directory,
// so the `team` tool cannot sign there), the way a member device manages its team: the link is
// stored, made durable, and sent at once to every session; sessions that are no longer current
// end. Returns the link's hash. Errc::Denied when this device is not a current member device, or
// when the team holds the new link invalid (the message names the rule; the link is kept and
// sent like any stored link, so its deviceSeq is never signed twice); Errc::Malformed when the
// graph drops it; Errc::Config when `provider` is not a team provider.
Result<Hash> teamAct(AuthProvider& provider, Action action);

}  // namespace portcullis::team
