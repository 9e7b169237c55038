// providers/team/team_graph.h — a team's signature chain: the set of stored links, their
// structural checks (§2.3), and its evaluation (§4) into the team's state (§4.7, §9).
//
// Links arrive from anywhere, in any order, duplicated, in batches; the graph stores what
// passes checks 1–5 (links whose `prev` are not all stored wait, bounded, §10), then evaluates
// once per batch. The state observable between batches is a pure function of the stored set.
// Version-3 teams only ("signed, not encrypted", §2.4): a version-4 root is refused.
//
// Not thread-safe: one owner (the provider's executor, or a tool's main thread).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "link.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis::team {

struct DecodedLink;

// §10's bounds, configurable; the defaults are the spec's.
struct GraphLimits {
  std::size_t maxStoredLinks = 200000;
  std::size_t maxPendingLinks = 20000;            // per store
  std::size_t maxPendingBytes = 64u << 20;
  std::size_t maxPendingLinksPerSession = 1000;
  std::size_t maxPendingBytesPerSession = 8u << 20;
};

// Who delivered a batch: a peer session (any non-zero tag the caller chooses), or this device
// itself (its own links, its state directory), which no session budget bounds.
using SessionId = std::uint64_t;
inline constexpr SessionId kLocalSession = 0;

// What happened to one received batch.
struct BatchOutcome {
  std::vector<Hash> stored;    // newly stored links (valid, invalid or unknown)
  std::vector<Hash> dropped;   // failed checks 1–5 (the sender is charged for each, §10)
  std::vector<std::string> dropReasons;  // one per dropped link, for logs
  std::size_t duplicates = 0;  // already stored, pending or dropped
  std::size_t pending = 0;     // links of the batch still waiting for a `prev`
  std::size_t unbacked = 0;    // links of the batch that are unbacked after evaluation (§10)
  bool tooLarge = false;       // the store cap refused some link
};

// A valid invitation in the final state (§5).
struct InvitationInfo {
  Hash hash{};              // the invitation's name: its link hash
  Key publicKey{};
  bool device = false;      // inviteDevice (else inviteMember)
  std::string inviter;      // the inviting member
  Key inviterDevice{};      // the device that signed it
  std::uint32_t maxUses = 0;  // 0: unlimited
  std::size_t uses = 0;     // valid admissions through it
  std::uint64_t expiresAt = 0;  // ms since 1970, 0: never; only the admitting device checks it
  bool revoked = false;     // revoked, or ended by a later device invitation or a device removal
  // Usable now, but for expiry: not revoked, inviter current (and admin, for a member
  // invitation; its device current, for a device invitation), uses left.
  bool open = false;
};

// What a peer session owes for the links it sent (§10): a link that fails checks 1–5 closes the
// session at once (a forger); more than kMaxUnbacked unbacked links close it as a carrier (the
// sender may reconnect; an honest relay of an old attack is slowed, never cut off).
class SessionCharge {
 public:
  static constexpr std::size_t kMaxUnbacked = 1024;
  // Adds one batch's outcome; true when the session must now be closed.
  bool add(const BatchOutcome& outcome);
  bool shouldClose() const noexcept { return forged_ > 0 || carried_ > kMaxUnbacked; }
  bool forger() const noexcept { return forged_ > 0; }
  std::size_t unbacked() const noexcept { return carried_; }

 private:
  std::size_t forged_ = 0;
  std::size_t carried_ = 0;
};

// The validity of one link as the last evaluation left it.
enum class LinkState : std::uint8_t { Absent, Pending, Dropped, Valid, Invalid };

// One stored link, as handed out by forEachLink.
struct StoredLink {
  const Hash& hash;
  ByteView body;
  const Signature& signature;
  std::uint32_t depth;
  bool valid;
  bool unknown;
};

class TeamGraph {
 public:
  explicit TeamGraph(const Hash& teamId, GraphLimits limits = {});
  ~TeamGraph();
  TeamGraph(TeamGraph&&) noexcept;
  TeamGraph& operator=(TeamGraph&&) noexcept;

  // Adds a batch of `Link` messages (any order, duplicates allowed), then evaluates once (§4.8).
  // Links whose prev are not all stored wait, within `session`'s budget and the store's; over
  // budget the oldest are discarded (not charged: they may be sent again).
  BatchOutcome addBatch(std::span<const Bytes> links, SessionId session = kLocalSession);
  // The same for links whose checks 1–2 already passed (decodeLink), e.g. read back from disk.
  BatchOutcome addDecoded(std::vector<DecodedLink> links, SessionId session = kLocalSession);
  // The session closed: its pending links are released (§10).
  void closeSession(SessionId session);

  const Hash& teamId() const noexcept;
  // A well-formed, known, version-3 root is stored: there is a team to evaluate.
  bool hasRoot() const noexcept;
  // Why there is no team yet: the root is missing, malformed, or of an unsupported version.
  std::string rootProblem() const;

  // The final state (§4.7). Lists are sorted (userIds and keys bytewise).
  std::vector<std::string> members() const;
  std::vector<std::string> admins() const;
  std::vector<std::string> removed() const;  // userIds ever removed (leaves included)
  std::vector<Key> devices() const;          // current member devices
  std::vector<Key> servers() const;          // current servers
  std::vector<std::string> roles(std::string_view userId) const;
  std::string teamName() const;
  std::optional<Key> recoveryKey() const;
  // The member whose current device `device` is.
  std::optional<std::string> memberOfDevice(const Key& device) const;
  // The current devices of a member.
  std::vector<Key> devicesOf(std::string_view userId) const;

  // Where `device` stands in the final state, for the handshake's Status (§6.1, §6.2): a current
  // member device, a current server, a key the graph names but that is not current (denied
  // `removed`), or one it has never heard of (unknown: `unknownDevice`, or a §6.2 proof).
  enum class Standing : std::uint8_t { Member, Server, Removed, Unknown };
  Standing standing(const Key& device) const;

  // §6.2, the prover's side: the valid link that introduced `device` in the final state (the
  // T-last, if several did), preceded by its invitation when it is an admission; empty when no
  // valid link introduces it.
  std::vector<Hash> introductionOf(const Key& device) const;
  // §6.2, the verifier's side: where `device` would stand if `links` were added, evaluated on a
  // copy of this graph (which is left unchanged; nothing is stored). Links failing checks 1–5, or
  // still waiting for a `prev`, count as not added. Costs a fresh evaluation of the whole store.
  Standing standingWith(std::span<const Bytes> links, const Key& device) const;

  // §8 rule 4: `link` is stored and in the downset of the stored `heads` (one of them, or in the
  // past of one).
  bool inDownset(const Hash& link, std::span<const Hash> heads) const;

  // §9: a member's level on a document (nullopt: the "*" entries only), and a server's.
  Level memberAccess(std::string_view userId, const std::optional<DocId>& doc) const;
  Level serverAccess(const Key& server, const std::optional<DocId>& doc) const;
  // §9 okToAdvertise / okToSend: a current member device with level ≥ read, or a current server
  // whose level is read.
  bool okToSend(const Key& peer, const DocId& doc) const;

  // §8 rule 3: a change by `actor` declaring `teamHeads` is valid iff, in the team evaluated on
  // the downset of those heads alone, the actor is a current member device whose member may
  // write `doc`; in version 3 the scope must be "team" and the generation null. nullopt: a head
  // (or a link below it) is not stored, so the change waits.
  std::optional<bool> changeValid(std::span<const Hash> teamHeads, const Key& actor,
                                  const DocId& doc, std::string_view scope = "team",
                                  const std::optional<Hash>& generation = std::nullopt) const;

  // The valid invitations of the final state, in T order.
  std::vector<InvitationInfo> invitations() const;

  LinkState state(const Hash& link) const;
  // Why a stored link is invalid, for people reading the history ("" when it is valid): killed
  // by a contest (§4.5), or the rule of §3 that refused it.
  std::string whyInvalid(const Hash& link) const;
  std::vector<Hash> invalid() const;         // stored and invalid (unknown links included)
  std::vector<Hash> dropped() const;         // dropped, plus links still pending
  std::vector<Hash> unbacked() const;        // §10: stored links whose author is unbacked
  std::vector<Hash> heads() const;           // stored links no stored link names in `prev`
  std::size_t size() const noexcept;         // stored links
  std::size_t pendingCount() const noexcept;
  // What pending links wait for (§6.4 `Want`): the `prev` they name that are neither stored nor
  // pending themselves, ascending, at most `max`.
  std::vector<Hash> missingPrev(std::size_t max) const;
  int passes() const noexcept;               // passes of the last evaluation (§4.6)

  // §6.4 graph sync. The device vector: (device, largest stored deviceSeq) for every device that
  // authored a stored link (valid, invalid or unknown), ascending by device.
  std::vector<std::pair<Key, std::uint64_t>> deviceVector() const;
  // The stored links whose deviceSeq exceeds the peer's vector entry for their author (no entry:
  // 0), as `Link` messages in T order, split into batches of at most `maxBatchBytes` (a larger
  // link travels alone). Twins at equal seqs are not found this way: heads that still differ
  // are fetched by hash (`Want`).
  std::vector<std::vector<Bytes>> linksBeyond(
      std::span<const std::pair<Key, std::uint64_t>> peerVector, std::size_t maxBatchBytes) const;

  // Every stored link in T order (§4.1).
  void forEachLink(const std::function<void(const StoredLink&)>& fn) const;
  // The stored link's bytes (body and signature), if stored.
  std::optional<StoredLink> find(const Hash& link) const;
  // The largest deviceSeq `device` has among stored links (0: none). A device about to sign
  // checks this against its own persisted counter.
  std::uint64_t lastSeqOf(const Key& device) const;
  // The stored link of `device` with that largest deviceSeq (the T-last of twins): a device's
  // next link names it in `prev` (check 4).
  std::optional<Hash> lastLinkOf(const Key& device) const;
  // The founder's userId (the root's author); empty without a root.
  std::string founder() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portcullis::team
