// providers/team/handshake.h — the team provider's handshake (team spec §6.1, SIGMA-I with
// role-labelled signatures; the invitee's check of §6.3), up to and including the first AEAD
// frame each way, the Status, and §6.2's Proof and Need when a side is asked to prove:
//
//   m1 I→R  "PCT3" ‖ mode ‖ team ‖ E_I          (mode 0: team tag, mode 1: 6 PREFIX bytes)
//   m2 R→I  E_R ‖ c2    c2 = AEAD(hk_R, 0, ad=h1, Claim_R)
//   m3 I→R  c3          c3 = AEAD(hk_I, 0, ad=h2, Claim_I)
//   then each side: one frame under its transport key tk (counter 0) holding its Status;
//   on proveAdmission: Proof → (Need → Proof)* → the verifier's final Status (§6.2).
//
// Every message is u32 big-endian length ‖ payload; m1 and m3 at most 4 KiB, m2 8 KiB, refused
// before anything is allocated for them. The whole exchange runs under one deadline (10 s by
// default): a watchdog closes the stream when it passes, which fails the pending read.
//
// Layer: inside the team provider, below its authenticate(): this file knows nothing of the graph.
// The caller decides who the peer is through callbacks (a Judge; for the responder the team
// lookups; for an invitee its §6.3 check). Runs on the stream's executor; callbacks are called
// there and must not block it (an invitee's Argon2id runs on a worker, see invitation.h).
//
// Errors (never exceptions on peer input): Disconnected when the stream ends or the deadline
// passes (the message says which); Malformed for bytes that cannot be a message of this
// handshake (a wrong size, a claim that does not decode, a c2/c3 or Status frame that does not
// authenticate, a small-order ephemeral); Overloaded for an announced length over its bound;
// Denied for a peer that does not prove what it must (reflection, a bad signature), for a team
// tag or prefix we do not know, and for an invitee check that refuses. On every error the
// stream is closed.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "aead_channel.h"
#include "link.h"
#include "portcullis/asio.h"
#include "portcullis/network_adapter.h"
#include "portcullis/result.h"
#include "portcullis/secret_handshake.h"
#include "portcullis/types.h"
#include "session_messages.h"

namespace portcullis::team {

inline constexpr std::size_t kMaxM1Bytes = 4u << 10;
inline constexpr std::size_t kTeamPrefixBytes = 6;
// A Status frame is a few dozen bytes; anything larger in its place is refused unread.
inline constexpr std::size_t kMaxStatusFrameBytes = 1u << 10;
inline constexpr std::chrono::milliseconds kDefaultHandshakeDeadline{10'000};

using EphemeralPublic = std::array<std::uint8_t, 32>;
using TeamPrefix = std::array<char, kTeamPrefixBytes>;

enum class HandshakeMode : std::uint8_t { Member = 0, Invitee = 1 };

// The §6.6 name of a Reason ("removed", "unknownDevice", ...; "unknown" for a later one).
[[nodiscard]] const char* reasonName(Reason r);

// H256(key=teamId, "portcullis/team/v3/team-tag" ‖ E_I): m1's team field in mode 0.
[[nodiscard]] Hash teamTag(const Hash& teamId, const EphemeralPublic& initiatorEphemeral);

// Signs with the device's Ed25519 key. The handshake hands it the exact bytes to sign (a role
// label ‖ a transcript hash) and never sees the secret key.
using Signer = std::function<Signature(ByteView message)>;
// A Signer over `device`'s secret key; `device` must outlive the signer.
[[nodiscard]] Signer signerFor(const DeviceKey& device);

// Our own identity in the handshake.
struct HandshakeIdentity {
  Key deviceId{};
  ClaimKind kind = ClaimKind::Member;  // Member or Server (an invitee's is set by its check)
  Signer sign;
};

// What a judge knows of the session besides the peer's claim: enough to verify an invitee's
// proof (which signs h2) and to know which team is meant.
struct HandshakeContext {
  HandshakeMode mode = HandshakeMode::Member;
  Hash teamId{};
  Hash h1{};
  Hash h2{};
};

// Decides the Status to send for a peer whose claim passed the handshake's own checks (the peer's
// ephemeral and deviceId differ from ours, and its signature verifies under its deviceId): ok,
// proveAdmission, or denied with a reason. The claim and context live until the awaitable
// completes. Any doubt must be denied (fail closed).
using Judge = std::function<asio::awaitable<Status>(const Claim& peer, const HandshakeContext&)>;

// §6.3: an invitee's check, after m2 verified and before m3. Gets Claim_R (teamId already checked
// against the PREFIX by the handshake, and invitations) and h2, over which the invitee's proof
// signs. Returns the invitee's Claim_I admission fields (invitation, encKey, userId, proof,
// consent, inviteSig; kind, deviceId and signature are filled in by the handshake), or an error
// to stop revealing nothing (the handshake then closes without writing and returns Denied). It
// may run Argon2id on a worker; the deadline is paused while it runs (§10: "plus Argon2id").
using InviteeCheck =
    std::function<asio::awaitable<Result<Claim>>(const Claim& responder, const Hash& h2)>;

// §6.2, run by both sides after the Status frames when either sent proveAdmission, under the
// same deadline: the prover sends `Proof` (the link introducing its device and, for an admission,
// the invitation), the verifier answers `Need` for the `prev` it lacks, then its final Status.
// All the peer sends in this phase is bounded by kMaxProofBytes (§6: 1 MiB before it is
// authorized), and every `Need` must bring a new link.
struct ProofStep {
  std::vector<Hash> need;  // non-empty: ask for these (strictly ascending)
  Status verdict;          // otherwise: the final Status (ok, or denied)
};
struct AdmissionHooks {
  // Our proof (`need` empty), or the links of `need` we hold, as `Link` messages. Nothing to
  // show ends the handshake: we cannot prove what we were asked.
  std::function<std::vector<Bytes>(const Hash& teamId, std::span<const Hash> need)> prove;
  // The verdict on every link the peer has sent so far, in the order received. Must not store
  // anything unless the verdict is ok.
  std::function<asio::awaitable<ProofStep>(const Hash& teamId, const Claim& peer,
                                           const std::vector<Bytes>& links)>
      verify;
};

// What the initiator (the dialer) needs.
struct InitiatorConfig {
  HandshakeIdentity identity;
  HandshakeMode mode = HandshakeMode::Member;
  Hash teamId{};         // mode 0: the team we dial
  TeamPrefix prefix{};   // mode 1: the invitation code's PREFIX (base58 characters)
  Judge judge;           // mode 0: the Status for Claim_R
  InviteeCheck inviteeCheck;  // mode 1
  AdmissionHooks admission;   // mode 0 (§6.2)
  std::chrono::steady_clock::duration deadline = kDefaultHandshakeDeadline;
};

// What the responder (the acceptor) needs.
struct ResponderConfig {
  HandshakeIdentity identity;
  // Mode 0: the team whose tag (teamTag(teamId, E_I)) is `tag`, or none.
  std::function<std::optional<Hash>(const Hash& tag, const EphemeralPublic& initiatorEphemeral)>
      findTeamByTag;
  // Mode 1: every team of ours whose base58 ID starts with `prefix`. Two or more: refused.
  std::function<std::vector<Hash>(const TeamPrefix& prefix)> findTeamsByPrefix;
  // Mode 1: Claim_R's `invitations` for the team (at most kMaxOffers; the caller orders them).
  std::function<std::vector<Offer>(const Hash& teamId)> invitationsFor;
  // The Status for Claim_I (mode 1: an invitee's; the judge verifies its proof and admits it).
  Judge judge;
  AdmissionHooks admission;  // mode 0 (§6.2)
  std::chrono::steady_clock::duration deadline = kDefaultHandshakeDeadline;
};

// A handshake whose Status frames (and §6.2's exchange, if any) are done: `sent` and `received`
// are the final ones. Proceed only when `authorized()`. When either is denied the stream is
// already closed, `stream` is null and the keys are zero.
struct HandshakeResult {
  HandshakeMode mode = HandshakeMode::Member;
  Hash teamId{};
  Claim peer;
  Status sent;
  Status received;
  Hash h3{};
  SecretKey<kAeadKeyBytes> sendKey;     // our tk (tk_I for the initiator, tk_R for the responder)
  SecretKey<kAeadKeyBytes> receiveKey;  // the peer's tk
  std::uint64_t sendCounter = 1;        // the next frame's, each way (0 was the Status)
  std::uint64_t receiveCounter = 1;
  std::unique_ptr<Stream> stream;

  bool authorized() const noexcept {
    return sent.kind == Status::Kind::Ok && received.kind == Status::Kind::Ok;
  }
  // The channel keys, counters continuing after the handshake's frames. Moves the keys.
  AeadChannelKeys takeKeys() {
    return AeadChannelKeys{AeadDirection(std::move(sendKey), sendCounter),
                           AeadDirection(std::move(receiveKey), receiveCounter)};
  }
};

// Runs the initiator's side over `stream` (owned; closed on error, else returned in the result).
// Sends m1, checks m2 (reflection, signature), then: mode 0 asks `judge`; mode 1 checks that
// teamId's base58 starts with the PREFIX and runs `inviteeCheck` (an invitee always sends ok: it
// checks R against the graph it receives, §6.3). Sends m3 and its Status, reads R's Status.
asio::awaitable<Result<HandshakeResult>> runInitiator(std::unique_ptr<Stream> stream,
                                                      InitiatorConfig config);

// Runs the responder's side over `stream` (owned as above). Reads m1; closes without a reply
// (Denied) when the tag or prefix names none of our teams, or a prefix names two. Sends m2, checks
// m3 (reflection, signature, kind: an invitee only in mode 1, Unknown kind denied
// unknownDevice), asks `judge`, exchanges Status frames. A peer whose claim fails a check is sent
// denied (badSignature, reflection) and the result is Denied.
asio::awaitable<Result<HandshakeResult>> runResponder(std::unique_ptr<Stream> stream,
                                                      ResponderConfig config);

}  // namespace portcullis::team
