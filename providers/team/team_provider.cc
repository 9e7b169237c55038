// The `team` provider: the handshake over the team graph, graph sync and live links on every
// session, endSession and accessChanged after each evaluation, signed changes and §9's hooks.
#include "team_provider.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <deque>
#include <map>
#include <set>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "change_sealer.h"
#include "handshake.h"
#include "invitation.h"
#include "portcullis/logging.h"
#include "state_dir.h"
#include "team_channel.h"
#include "team_graph.h"
#include "wire/link_codec.h"
#include "wire/session_codec.h"

namespace portcullis::team {

namespace {

constexpr std::string_view kName = "team";
// Links per graph-sync message: well inside the frame limit (a larger link travels alone).
constexpr std::size_t kSyncBatchBytes = 1u << 20;
// §6.4's `Want`: hashes per message, and rounds per session before it must be in sync again.
constexpr std::size_t kMaxWantHashes = 1024;
constexpr std::size_t kMaxWantRounds = 64;
// §8: evaluations of declared-heads cuts kept, by (heads, actor, document).
constexpr std::size_t kMaxCachedVerdicts = 4096;
// §8 rule 4: the last declared heads per (document, actor), in memory.
constexpr std::size_t kMaxRememberedAuthors = 65536;
// A team message is at most a frame.
constexpr std::size_t kMaxTeamMessageBytes = kDefaultMaxFrameBytes;

std::optional<Key> keyOfPeer(const PeerId& peer) {
  Key key{};
  const std::string& hex = peer.str();
  std::size_t written = 0;
  if (hex.size() != 2 * key.size() ||
      sodium_hex2bin(key.data(), key.size(), hex.data(), hex.size(), nullptr, &written, nullptr) !=
          0 ||
      written != key.size()) {
    return std::nullopt;
  }
  return key;
}

std::uint64_t nowMs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

Bytes fromHexBytes(std::string_view hex) {
  Bytes out(hex.size() / 2);
  std::size_t written = 0;
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &written,
                     nullptr) != 0) {
    return {};
  }
  out.resize(written);
  return out;
}

PeerId peerOfKey(const Key& key) { return PeerId::parse(toHex(ByteView(key))).value(); }

Status denied(Reason r) { return Status{.kind = Status::Kind::Denied, .reason = r}; }

// One authenticated session, as the provider tracks it.
struct PeerSession {
  PeerSession(SessionId i, const Key& k, bool isServer)
      : id(i), key(k), peer(peerOfKey(k)), server(isServer) {}
  SessionId id = 0;
  Key key{};
  PeerId peer;
  bool server = false;
  std::shared_ptr<TeamSessionChannel> channel;
  std::optional<Heads> peerHeads;  // the last Heads it sent
  bool synced = false;             // its last Heads equal ours
  SessionCharge charge;
  std::size_t wantRounds = 0;
  // §10: a graph-sync step we asked for (a Want) must be answered within options.syncStep.
  std::shared_ptr<asio::steady_timer> stepTimer;
  bool stepWatched = false;
  // §10: the declared-heads cuts evaluated for it in the last minute, oldest first.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::vector<Hash>>> cuts;
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(TeamStateDir dir, std::shared_ptr<const DeviceKey> key, TeamProviderOptions options)
      : dir_(std::move(dir)),
        key_(std::move(key)),
        options_(std::move(options)) {
    const auto& pk = key_->publicKey().bytes();
    std::copy(pk.begin(), pk.end(), self_.begin());
  }

  // Nothing of ours waits on the executor after us.
  ~Core() {
    for (auto& [id, s] : sessions_) s->stepTimer->cancel();
    for (auto& t : linkWaiters_) t->cancel();
  }
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  TeamGraph& graph() { return dir_.graph(); }
  const Key& self() const { return self_; }
  const std::shared_ptr<const DeviceKey>& key() const { return key_; }
  const TeamProviderOptions& options() const { return options_; }
  void attach(RepoCallbacks callbacks) { callbacks_ = std::move(callbacks); }

  Heads ourHeads() {
    return Heads{.hashes = graph().heads(), .linkCount = graph().size()};
  }

  // --- the handshake ---------------------------------------------------------------------------

  // Our kind in the handshake: a member device, else a server (also a server whose addServer
  // has not reached it yet: the member that added it knows it as one).
  ClaimKind ourKind() {
    return graph().standing(self_) == TeamGraph::Standing::Member ? ClaimKind::Member
                                                                  : ClaimKind::Server;
  }

  Status judge(const Claim& peer, const HandshakeContext& context) {
    if (context.teamId != dir_.teamId()) return denied(Reason::WrongTeam);
    if (context.mode == HandshakeMode::Invitee) return admitInvitee(peer, context);
    const TeamGraph::Standing s = graph().standing(peer.deviceId);
    if ((peer.kind == ClaimKind::Member && s == TeamGraph::Standing::Member) ||
        (peer.kind == ClaimKind::Server && s == TeamGraph::Standing::Server)) {
      return Status{};
    }
    if (s == TeamGraph::Standing::Removed) return denied(Reason::Removed);
    if (peer.kind != ClaimKind::Member && peer.kind != ClaimKind::Server) {
      return denied(Reason::UnknownDevice);
    }
    return Status{.kind = Status::Kind::ProveAdmission, .reason = Reason::Unknown};  // §6.2
  }

  // §6.2, proving: the link introducing this device (and its invitation), or the links of `need`.
  std::vector<Bytes> proofOf(std::span<const Hash> need) {
    const std::vector<Hash> hashes = need.empty() ? graph().introductionOf(self_)
                                                  : std::vector<Hash>(need.begin(), need.end());
    std::vector<Bytes> out;
    for (const Hash& h : hashes) {
      if (auto link = graph().find(h)) out.push_back(encodeLink(link->body, link->signature));
    }
    return out;
  }

  // §6.2, verifying an unknown peer's proof: the `prev` still missing, else a speculative
  // evaluation on a copy of the graph; its links are stored only if they make the peer's device
  // current (of the kind it claims). Runs to the end on this executor, so there is one
  // speculative evaluation at a time (per peer, and per team).
  ProofStep checkProof(const Claim& peer, const std::vector<Bytes>& links) {
    const std::string who = toHex(ByteView(peer.deviceId));
    std::vector<Hash> sent;
    std::vector<Hash> prevs;
    for (const Bytes& bytes : links) {
      auto d = decodeLink(bytes, dir_.teamId());
      if (!d) {
        portcullis::log(
            LogLevel::Warn,
            fmt::format("team: device {} proved its admission with a malformed link: {}", who,
                        d.error().message()));
        return ProofStep{.need = {}, .verdict = denied(Reason::UnknownDevice)};
      }
      sent.push_back(d->hash);
      prevs.insert(prevs.end(), d->parsed.prev.begin(), d->parsed.prev.end());
    }
    std::vector<Hash> need;
    for (const Hash& p : prevs) {
      const LinkState state = graph().state(p);
      if (state != LinkState::Valid && state != LinkState::Invalid &&
          std::find(sent.begin(), sent.end(), p) == sent.end()) {
        need.push_back(p);
      }
    }
    std::sort(need.begin(), need.end());
    need.erase(std::unique(need.begin(), need.end()), need.end());
    if (need.size() > kMaxProofLinks) need.resize(kMaxProofLinks);
    if (!need.empty()) return ProofStep{.need = std::move(need), .verdict = {}};
    // §10-style quota: a speculative evaluation copies the whole graph (about 12 ms at 1,000
    // members, 120 ms at 10,000), and any unknown key may ask for one.
    const auto now = std::chrono::steady_clock::now();
    while (!proofs_.empty() && now - proofs_.front() >= std::chrono::minutes(1)) {
      proofs_.pop_front();
    }
    if (proofs_.size() >= options_.proofsPerMinute) {
      portcullis::log(
          LogLevel::Warn,
          fmt::format("team: device {} asked for a speculative evaluation beyond {} a minute; "
                      "denied",
                      who, options_.proofsPerMinute));
      return ProofStep{.need = {}, .verdict = denied(Reason::UnknownDevice)};
    }
    proofs_.push_back(now);
    const auto wanted = peer.kind == ClaimKind::Server ? TeamGraph::Standing::Server
                                                       : TeamGraph::Standing::Member;
    const TeamGraph::Standing trial = graph().standingWith(links, peer.deviceId);
    if (trial != wanted) {
      portcullis::log(
          LogLevel::Info,
          fmt::format("team: device {} sent {} links that do not make it a current {}; discarded",
                      who, links.size(),
                      peer.kind == ClaimKind::Server ? "server" : "member device"));
      return ProofStep{.need = {}, .verdict = denied(trial == TeamGraph::Standing::Removed
                                                         ? Reason::Removed
                                                         : Reason::UnknownDevice)};
    }
    BatchOutcome outcome = graph().addBatch(links);
    if (!outcome.stored.empty()) linksStored(outcome.stored, kLocalSession);
    if (graph().standing(peer.deviceId) != wanted) return {.need = {}, .verdict = denied(Reason::UnknownDevice)};
    portcullis::log(LogLevel::Info,
                    fmt::format("team: device {} proved its admission with {} links, now stored",
                                who, links.size()));
    return ProofStep{.need = {}, .verdict = Status{}};
  }

  // §6.1 mode 1: the team's open member invitations (most recent first, at most 64), then the
  // open device invitations of this device's own member (at most 16).
  std::vector<Offer> offers() {
    std::vector<Offer> members;
    std::vector<Offer> devices;
    const auto me = graph().memberOfDevice(self_);
    const std::uint64_t now = nowMs();
    auto all = graph().invitations();
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      if (!it->open || invitationExpired(it->expiresAt, now)) continue;
      const Offer offer{.pkTag = invitationKeyTag(it->publicKey), .invitation = it->hash};
      if (!it->device && members.size() < 64) members.push_back(offer);
      if (it->device && me && it->inviter == *me && devices.size() < 16) devices.push_back(offer);
    }
    members.insert(members.end(), devices.begin(), devices.end());
    return members;
  }

  // §6.3 at the responder: checks the invitee's proof and admission request against the
  // invitation, then posts the admission. Any doubt is a denial.
  Status admitInvitee(const Claim& peer, const HandshakeContext& context) {
    if (graph().standing(self_) != TeamGraph::Standing::Member) return denied(Reason::NeedMember);
    if (peer.kind != ClaimKind::Invitee || !peer.invitation || !peer.encKey || !peer.proof ||
        !peer.consent || !peer.inviteSig) {
      return denied(Reason::BadProof);
    }
    std::optional<InvitationInfo> info;
    for (InvitationInfo& i : graph().invitations()) {
      if (i.hash == *peer.invitation) info = std::move(i);
    }
    if (!info) return denied(Reason::InvitationRevoked);
    const std::string userId = peer.userId.value_or("");
    const AdmissionRequest request{.invitation = *peer.invitation, .deviceId = peer.deviceId,
                                   .encKey = *peer.encKey, .userId = userId,
                                   .consent = *peer.consent, .inviteSig = *peer.inviteSig};
    const bool proofOk = verifyInvitationProof(info->publicKey, *peer.proof, context.h2,
                                               peer.deviceId, *peer.encKey, userId);
    const bool requestOk = verifyAdmissionRequest(dir_.teamId(), request, info->publicKey);
    if (!proofOk || !requestOk || info->device != userId.empty() ||
        !encKeyAcceptable(*peer.encKey) || (!info->device && !textAcceptable(userId, 1, 64))) {
      return denied(Reason::BadProof);
    }
    if (info->revoked) return denied(Reason::InvitationRevoked);
    if (info->maxUses != 0 && info->uses >= info->maxUses) return denied(Reason::InvitationUsedUp);
    if (invitationExpired(info->expiresAt, nowMs())) return denied(Reason::InvitationExpired);
    if (!info->open) return denied(Reason::InvitationRevoked);
    if (!info->device) {
      const auto members = graph().members();
      const auto removed = graph().removed();
      if (std::binary_search(members.begin(), members.end(), userId) ||
          std::find(removed.begin(), removed.end(), userId) != removed.end()) {
        return denied(Reason::UserIdTaken);
      }
    }
    const NewDevice device{peer.deviceId, *peer.encKey, *peer.consent};
    Action action = info->device ? Action(AdmitDevice{*peer.invitation, device, *peer.inviteSig,
                                                      std::nullopt})
                                 : Action(AdmitMember{*peer.invitation, userId, device,
                                                      *peer.inviteSig, std::nullopt});
    auto admitted = act(std::move(action));
    if (!admitted) {
      portcullis::log(LogLevel::Warn,
                      fmt::format("team: could not admit device {}: {}",
                                  toHex(ByteView(peer.deviceId)), admitted.error().message()));
      return denied(Reason::InvitationRevoked);
    }
    portcullis::log(LogLevel::Info,
                    fmt::format("team: admitted {} (device {}) through invitation {}",
                                info->device ? "a new device of " + info->inviter : userId,
                                toHex(ByteView(peer.deviceId)),
                                toHex(ByteView(*peer.invitation)).substr(0, 8)));
    return Status{};
  }

  // A new session whose handshake succeeded: its channel, then our Heads (§6.4).
  std::unique_ptr<MessageChannel> openSession(asio::any_io_executor ex, const Claim& peer,
                                              std::unique_ptr<MessageChannel> aead,
                                              bool invitee) {
    auto s = std::make_shared<PeerSession>(nextSession_++, peer.deviceId,
                                           peer.kind == ClaimKind::Server);
    std::weak_ptr<Core> weakCore = weak_from_this();
    std::weak_ptr<PeerSession> weakSession = s;
    auto pair = makeTeamChannel(
        ex, std::move(aead),
        TeamChannelHandlers{
            .onTeamMessage =
                [weakCore, weakSession](Bytes message) {
                  return dispatch(weakCore, weakSession, std::move(message));
                },
            .onEnd =
                [weakCore, id = s->id](const std::string& reason) {
                  if (auto core = weakCore.lock()) core->sessionEnded(id, reason);
                }});
    s->channel = pair.provider;
    s->stepTimer = std::make_shared<asio::steady_timer>(ex);
    sessions_[s->id] = s;
    send(*s, ourHeads());
    if (invitee) {  // §6.3: the new device has no graph yet; it gets all of it
      for (auto& batch : graph().linksBeyond({}, kSyncBatchBytes)) {
        send(*s, Links{.links = std::move(batch)});
      }
    }
    return std::move(pair.repo);
  }

  // --- graph sync and live links (§6.4, §6.5) --------------------------------------------------

  static asio::awaitable<void> dispatch(std::weak_ptr<Core> weakCore,
                                        std::weak_ptr<PeerSession> weakSession, Bytes message) {
    auto core = weakCore.lock();
    auto s = weakSession.lock();
    if (core && s && !s->channel->closed()) core->onMessage(*s, message);
    co_return;
  }

  void onMessage(PeerSession& s, ByteView bytes) {
    auto message = decodeMessage(bytes, kMaxTeamMessageBytes);
    if (!message) {
      s.channel->close("a malformed team message: " + message.error().message());
      return;
    }
    if (auto* heads = std::get_if<Heads>(&*message)) {
      onHeads(s, std::move(*heads));
    } else if (auto* vector = std::get_if<Vector>(&*message)) {
      onVector(s, *vector);
    } else if (auto* want = std::get_if<Want>(&*message)) {
      onWant(s, *want);
    } else if (auto* links = std::get_if<Links>(&*message)) {
      onLinks(s, links->links);
    }
    // Status, Proof and Need belong to the handshake; unknown members are ignored (§6.6).
  }

  void onHeads(PeerSession& s, Heads heads) {
    const Heads ours = ourHeads();
    s.synced = heads == ours;
    if (s.synced) {
      s.wantRounds = 0;
      s.stepTimer->expires_at(asio::steady_timer::time_point::max());
    }
    std::vector<Hash> unknown;
    for (const Hash& h : heads.hashes) {
      if (graph().state(h) == LinkState::Absent) unknown.push_back(h);
    }
    s.peerHeads = std::move(heads);
    if (unknown.empty()) return;  // equal, or it lacks links of ours: its Vector asks for them
    Vector v;
    for (const auto& [device, seq] : graph().deviceVector()) v.entries.push_back({device, seq});
    if (!v.entries.empty()) send(s, std::move(v));
    // Twins at equal seqs are not found by the vector: fetch unknown heads by hash as well.
    want(s, std::move(unknown));
  }

  void onVector(PeerSession& s, const Vector& v) {
    std::vector<std::pair<Key, std::uint64_t>> peer;
    peer.reserve(v.entries.size());
    for (const VectorEntry& e : v.entries) peer.emplace_back(e.deviceId, e.deviceSeq);
    for (auto& batch : graph().linksBeyond(peer, kSyncBatchBytes)) {
      send(s, Links{.links = std::move(batch)});
    }
  }

  void onWant(PeerSession& s, const Want& w) {
    Links out;
    std::size_t bytes = 0;
    for (const Hash& h : w.hashes) {
      auto link = graph().find(h);
      if (!link) continue;
      out.links.push_back(encodeLink(link->body, link->signature));
      bytes += out.links.back().size();
      if (bytes >= kSyncBatchBytes) {
        send(s, std::move(out));
        out = Links{};
        bytes = 0;
      }
    }
    if (!out.links.empty()) send(s, std::move(out));
  }

  void onLinks(PeerSession& s, const std::vector<Bytes>& links) {
    s.stepTimer->expires_at(asio::steady_timer::time_point::max());  // answered; want() re-arms
    BatchOutcome outcome = graph().addBatch(links, s.id);
    const bool close = s.charge.add(outcome);
    if (!outcome.stored.empty()) linksStored(outcome.stored, s.id);
    if (close) {
      const std::string reason = s.charge.forger()
                                     ? "it sent team links that fail the structural checks"
                                     : "it carried more unbacked team links than allowed";
      portcullis::log(LogLevel::Warn,
                      fmt::format("team: closing the session of {}: {}", s.peer.str(), reason));
      s.channel->close(reason);
      return;
    }
    if (outcome.tooLarge) {
      portcullis::log(LogLevel::Warn,
                      fmt::format("team: the team is at its stored-link cap; links from {} refused",
                                  s.peer.str()));
    }
    // Links that wait for a `prev`, and heads the peer named that are still unknown.
    std::vector<Hash> missing = graph().missingPrev(kMaxWantHashes);
    if (s.peerHeads) {
      for (const Hash& h : s.peerHeads->hashes) {
        if (graph().state(h) == LinkState::Absent) missing.push_back(h);
      }
    }
    std::sort(missing.begin(), missing.end());
    missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
    want(s, std::move(missing));
  }

  void want(PeerSession& s, std::vector<Hash> hashes) {
    if (hashes.empty() || s.wantRounds >= kMaxWantRounds) return;
    ++s.wantRounds;
    if (hashes.size() > kMaxWantHashes) hashes.resize(kMaxWantHashes);
    send(s, Want{.hashes = std::move(hashes)});
    s.stepTimer->expires_after(options_.syncStep);
    if (!s.stepWatched) {
      s.stepWatched = true;
      asio::co_spawn(s.stepTimer->get_executor(),
                     watchStep(weak_from_this(), s.stepTimer, s.id, options_.syncStep),
                     asio::detached);
    }
  }

  // Closes session `id` when its step timer expires while armed; a re-arm or disarm cancels the
  // wait and it looks again. Ends with the session (its timer is cancelled then).
  static asio::awaitable<void> watchStep(std::weak_ptr<Core> weakCore,
                                         std::shared_ptr<asio::steady_timer> timer, SessionId id,
                                         std::chrono::milliseconds step) {
    for (;;) {
      boost::system::error_code ec;
      co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      auto core = weakCore.lock();
      if (!core) co_return;
      auto it = core->sessions_.find(id);
      if (it == core->sessions_.end() || it->second->channel->closed()) co_return;
      if (timer->expiry() == asio::steady_timer::time_point::max()) {
        it->second->stepWatched = false;
        co_return;
      }
      if (asio::steady_timer::clock_type::now() < timer->expiry()) continue;
      const std::string reason = fmt::format(
          "it did not answer a graph-sync step within {} ms", step.count());
      portcullis::log(LogLevel::Warn, fmt::format("team: closing the session of {}: {}",
                                                  it->second->peer.str(), reason));
      it->second->channel->close(reason);
      core->wakeLinkWaiters();  // changes waiting on this session give up now
      co_return;
    }
  }

  // Links this node stored (from session `from`, or its own: kLocalSession): durable first, then
  // to every other session, then the consequences of the new evaluation.
  void linksStored(const std::vector<Hash>& stored, SessionId from) {
    std::vector<Bytes> bytes;
    bytes.reserve(stored.size());
    for (const Hash& h : stored) {
      auto link = graph().find(h);
      if (link) bytes.push_back(encodeLink(link->body, link->signature));
    }
    if (auto ok = dir_.appendLinks(bytes); !ok) {
      portcullis::log(LogLevel::Error,
                      fmt::format("team: could not append {} links to {}: {}", bytes.size(),
                                  dir_.path(), ok.error().message()));
    }
    const Heads ours = ourHeads();
    std::vector<std::shared_ptr<PeerSession>> all;
    for (auto& [id, s] : sessions_) all.push_back(s);
    for (auto& s : all) {
      if (s->channel->closed()) continue;
      if (s->id == from) {
        send(*s, ours);  // it may now be in sync with us
      } else {
        send(*s, Links{.links = bytes});
      }
    }
    // §6.5: a peer no longer current ends now; the others' access may have changed.
    for (auto& s : all) {
      const TeamGraph::Standing standing = graph().standing(s->key);
      const bool current = s->server ? standing == TeamGraph::Standing::Server
                                     : standing == TeamGraph::Standing::Member;
      if (!current) {
        const std::string reason = standing == TeamGraph::Standing::Removed
                                       ? "removed from the team"
                                       : "no longer a current device of the team";
        portcullis::log(LogLevel::Info,
                        fmt::format("team: ending the session of {}: {}", s->peer.str(), reason));
        if (callbacks_.endSession) callbacks_.endSession(s->peer, reason);
        s->channel->close(reason);
      } else if (callbacks_.accessChanged) {
        callbacks_.accessChanged(s->peer);
      }
    }
    wakeLinkWaiters();
  }

  void send(PeerSession& s, Message message) {
    if (!s.channel->sendTeam(encodeMessage(message))) {
      portcullis::log(LogLevel::Info,
                      fmt::format("team: the session of {} is closed", s.peer.str()));
    }
  }

  void sessionEnded(SessionId id, const std::string& reason) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    portcullis::log(LogLevel::Debug, fmt::format("team: session {} with {} ended: {}", id,
                                                 it->second->peer.str(), reason));
    it->second->stepTimer->cancel();
    sessions_.erase(it);
    graph().closeSession(id);
    wakeLinkWaiters();
  }

  std::shared_ptr<PeerSession> sessionOf(const PeerId& peer) const {
    std::shared_ptr<PeerSession> found;
    for (const auto& [id, s] : sessions_) {
      if (s->peer == peer && !s->channel->closed()) found = s;  // the newest
    }
    return found;
  }

  bool syncedWith(const PeerId& peer) {
    const Heads ours = ourHeads();
    for (const auto& [id, s] : sessions_) {
      if (s->peer == peer && s->peerHeads && *s->peerHeads == ours) return true;
    }
    return false;
  }

  Result<Hash> act(Action action) {
    auto userId = graph().memberOfDevice(self_);
    if (!userId) return Error(Errc::Denied, "team: this device is not a current member device");
    const ActionType type = typeOf(action);
    auto message = dir_.signNext(*userId, std::move(action), nowMs());
    if (!message) return std::move(message).error();
    auto parts = splitLink(*message);
    if (!parts) return std::move(parts).error();
    const Hash hash = linkHash(parts->body, parts->signature);
    const std::vector<Bytes> batch{std::move(*message)};
    BatchOutcome outcome = graph().addBatch(batch);
    if (!outcome.dropped.empty()) {
      return Error(Errc::Malformed, std::string("team: the ") + actionName(type) + " link is malformed: " +
                                        outcome.dropReasons.front());
    }
    linksStored(outcome.stored, kLocalSession);
    if (graph().state(hash) != LinkState::Valid) {
      return Error(Errc::Denied, std::string("team: the team holds this ") + actionName(type) +
                                     " link invalid: " + graph().whyInvalid(hash));
    }
    return hash;
  }

  // --- §8 and §9 -------------------------------------------------------------------------------

  // The heads a local change declares: all of them, or the 64 deepest (their downset holds the
  // rest's authors' history as far as a bounded list can).
  std::vector<Hash> declaredHeads() {
    std::vector<Hash> heads = graph().heads();
    if (heads.size() > kMaxTeamHeads) {
      std::vector<std::pair<std::uint32_t, Hash>> byDepth;
      for (const Hash& h : heads) byDepth.emplace_back(graph().find(h)->depth, h);
      std::sort(byDepth.begin(), byDepth.end(), std::greater<>());
      heads.clear();
      for (std::size_t i = 0; i < kMaxTeamHeads; ++i) heads.push_back(byDepth[i].second);
      std::sort(heads.begin(), heads.end());
    }
    return heads;
  }

  bool allStored(const std::vector<Hash>& heads) {
    return std::all_of(heads.begin(), heads.end(), [&](const Hash& h) {
      const LinkState s = graph().state(h);
      return s == LinkState::Valid || s == LinkState::Invalid;
    });
  }

  // §8 rule 2: waits until every declared head is stored, asking the sending session for those it
  // does not have, up to the deadline.
  asio::awaitable<bool> waitForHeads(const PeerId& from, const std::vector<Hash>& heads,
                                     std::chrono::steady_clock::time_point deadline) {
    auto ex = co_await asio::this_coro::executor;
    while (!allStored(heads)) {
      auto s = sessionOf(from);
      if (!s || std::chrono::steady_clock::now() >= deadline) co_return false;
      std::vector<Hash> missing;
      for (const Hash& h : heads) {
        if (graph().state(h) == LinkState::Absent) missing.push_back(h);
      }
      want(*s, std::move(missing));
      auto timer = std::make_shared<asio::steady_timer>(ex, deadline);
      linkWaiters_.push_back(timer);
      boost::system::error_code ec;
      co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      std::erase(linkWaiters_, timer);
    }
    co_return true;
  }

  // §10: at most options_.cutsPerMinute new declared-heads cuts evaluated per session per
  // minute; more wait for the window to move, up to the change's deadline.
  asio::awaitable<bool> admitCut(const PeerId& from, const std::vector<Hash>& heads,
                                 std::chrono::steady_clock::time_point deadline) {
    using Clock = std::chrono::steady_clock;
    constexpr auto kWindow = std::chrono::minutes(1);
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
      auto s = sessionOf(from);
      if (!s) co_return false;
      const auto now = Clock::now();
      while (!s->cuts.empty() && now - s->cuts.front().first >= kWindow) s->cuts.pop_front();
      if (std::any_of(s->cuts.begin(), s->cuts.end(),
                      [&](const auto& cut) { return cut.second == heads; })) {
        co_return true;
      }
      if (s->cuts.size() < options_.cutsPerMinute) {
        s->cuts.emplace_back(now, heads);
        co_return true;
      }
      if (now >= deadline) co_return false;
      asio::steady_timer timer(ex, std::min(deadline, s->cuts.front().first + kWindow));
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  void wakeLinkWaiters() {
    for (auto& t : linkWaiters_) t->cancel();
  }

  // §8 rule 3, cached by (declared heads, actor, document).
  bool verdictCached(const std::vector<Hash>& heads, const Key& actor, const DocId& doc) const {
    return verdicts_.contains(std::make_tuple(heads, actor, doc));
  }

  bool changeValid(const std::vector<Hash>& heads, const Key& actor, const DocId& doc) {
    auto key = std::make_tuple(heads, actor, doc);
    if (auto it = verdicts_.find(key); it != verdicts_.end()) return it->second;
    const std::optional<bool> valid = graph().changeValid(heads, actor, doc);
    if (!valid) return false;  // a head went missing: cannot happen after waitForHeads
    if (verdicts_.size() >= kMaxCachedVerdicts) verdicts_.clear();
    verdicts_.emplace(std::move(key), *valid);
    return *valid;
  }

  asio::awaitable<bool> okToReceive(const PeerIdentity& peer, const DocumentId& doc,
                                    const ChangeBatch& batch) {
    auto peerKey = keyOfPeer(peer.peer);
    if (!peerKey || !graph().okToSend(*peerKey, doc.bytes())) co_return false;
    // Rule 4 within the batch: the declared heads of the actor's change seq − 1.
    std::map<Key, std::pair<std::uint64_t, std::vector<Hash>>> seen;
    for (const ChangeEnvelope& e : batch.changes) {
      auto header = TeamChangeSealer::header(e);
      if (!header) co_return false;
      const auto deadline = std::chrono::steady_clock::now() + options_.changeWait;
      const bool stored = co_await waitForHeads(peer.peer, header->teamHeads, deadline);
      if (!stored) {
        portcullis::log(
            LogLevel::Info,
            fmt::format("team: a change to {} from {} waited for team links it declares and is "
                        "discarded",
                        doc.logName(), peer.peer.str()));
        co_return false;
      }
      if (!verdictCached(header->teamHeads, header->actor, doc.bytes())) {
        const bool admitted = co_await admitCut(peer.peer, header->teamHeads, deadline);
        if (!admitted) {
          portcullis::log(
              LogLevel::Info,
              fmt::format("team: {} sent more new team-heads cuts than {} a minute; a change to {} "
                          "waited and is discarded",
                          peer.peer.str(), options_.cutsPerMinute, doc.logName()));
          co_return false;
        }
      }
      if (!changeValid(header->teamHeads, header->actor, doc.bytes())) {
        portcullis::log(
            LogLevel::Info,
            fmt::format("team: a change to {} by {} (from {}) is not valid at the team heads it "
                        "declares: its author may not write the document there",
                        doc.logName(), toHex(ByteView(header->actor)), peer.peer.str()));
        co_return false;
      }
      const std::pair<std::uint64_t, std::vector<Hash>>* previous = nullptr;
      if (auto it = seen.find(header->actor); it != seen.end()) {
        previous = &it->second;
      } else if (auto last = lastHeads_.find({doc.bytes(), header->actor});
                 last != lastHeads_.end()) {
        previous = &last->second;
      }
      if (previous && previous->first + 1 == e.seq) {
        for (const Hash& h : previous->second) {
          if (!graph().inDownset(h, header->teamHeads)) {
            portcullis::log(
                LogLevel::Info,
                fmt::format("team: a change to {} by {} declares team heads behind its previous "
                            "change's (§8 rule 4)",
                            doc.logName(), toHex(ByteView(header->actor))));
            co_return false;
          }
        }
      }
      seen[header->actor] = {e.seq, std::move(header->teamHeads)};
    }
    if (lastHeads_.size() + seen.size() > kMaxRememberedAuthors) lastHeads_.clear();
    for (auto& [actor, last] : seen) lastHeads_[{doc.bytes(), actor}] = std::move(last);
    co_return true;
  }

  bool okToSend(const PeerIdentity& peer, const DocumentId& doc) {
    auto key = keyOfPeer(peer.peer);
    return key && graph().okToSend(*key, doc.bytes());
  }

  std::shared_ptr<const ChangeSealer> sealerFor(const DocumentId& doc) {
    const bool author = graph().standing(self_) != TeamGraph::Standing::Server;
    std::weak_ptr<Core> weak = weak_from_this();
    return std::make_shared<TeamChangeSealer>(
        doc.bytes(), author ? key_ : nullptr,
        [weak] {
          auto core = weak.lock();
          return core ? core->declaredHeads() : std::vector<Hash>{};
        },
        kMaxChangeBytes);
  }

  PeerIdentity identityOf(const Claim& peer) {
    PeerIdentity id{.peer = peerOfKey(peer.deviceId), .user = {}, .roles = {},
                    .provider = std::string(kName)};
    if (auto member = graph().memberOfDevice(peer.deviceId)) {
      id.user = *member;
      id.roles = graph().roles(*member);
    }
    return id;
  }

  const Hash& teamId() const { return dir_.teamId(); }

  // On a host of several teams: the documents of this team, in DIR/documents (one hex document
  // ID a line, appended and fsynced when a document becomes the team's).
  bool owns(const DocumentId& doc) const { return documents_.contains(doc); }

  Result<void> loadDocuments() {
    const std::string path = dir_.path() + "/documents";
    std::ifstream in(path);
    std::string line;
    std::size_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      auto id = DocumentId::fromBytes(fromHexBytes(line));
      if (!id) {
        return Error(Errc::Malformed, fmt::format("{}:{}: not a document ID", path, number));
      }
      documents_.insert(*id);
    }
    return {};
  }

  Result<void> bind(const DocumentId& doc) {
    const std::string path = dir_.path() + "/documents";
    const std::string line = toHex(ByteView(doc.bytes())) + "\n";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return Error(Errc::Io, path + ": " + std::strerror(errno));
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return Error(Errc::Io, path + ": could not be written");
    documents_.insert(doc);
    return {};
  }

 private:
  TeamStateDir dir_;
  std::shared_ptr<const DeviceKey> key_;
  Key self_{};
  TeamProviderOptions options_;
  RepoCallbacks callbacks_;
  std::map<SessionId, std::shared_ptr<PeerSession>> sessions_;
  SessionId nextSession_ = 1;
  std::vector<std::shared_ptr<asio::steady_timer>> linkWaiters_;
  std::map<std::tuple<std::vector<Hash>, Key, DocId>, bool> verdicts_;
  std::map<std::pair<DocId, Key>, std::pair<std::uint64_t, std::vector<Hash>>> lastHeads_;
  std::set<DocumentId> documents_;  // a host's: this team's documents
  std::deque<std::chrono::steady_clock::time_point> proofs_;  // §6.2 evaluations, last minute
};

// The teams of one node: one (a member device, or a server of one team), or several (a server
// hosting several teams with one device key). With several, every document belongs to the team
// whose member first wrote it there, and is never disclosed to another team's peers.
class TeamProvider final : public AuthProvider {
 public:
  // `hosting`: a server's host folder, whose documents each belong to one team.
  TeamProvider(std::vector<std::shared_ptr<Core>> cores, bool hosting)
      : cores_(std::move(cores)), hosting_(hosting) {}
  ~TeamProvider() override = default;
  TeamProvider(const TeamProvider&) = delete;
  TeamProvider& operator=(const TeamProvider&) = delete;

  std::string_view name() const override { return kName; }
  std::optional<PeerId> localPeer() const override { return peerOfKey(first().self()); }
  std::optional<ActorId> localActor() const override {
    return ActorId::fromBytes(ByteView(first().self())).value();
  }

  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> stream,
                                                Side side) override {
    auto cores = cores_;
    auto ex = co_await asio::this_coro::executor;
    Judge judge = [cores](const Claim& peer, const HandshakeContext& context) {
      return judgeOf(coreFor(cores, context.teamId), peer, context);
    };
    const Core& one = *cores.front();
    // A host of several teams is their server in each; one team's node says what it is there.
    const ClaimKind kind = cores.size() == 1 ? cores.front()->ourKind() : ClaimKind::Server;
    HandshakeIdentity identity{one.self(), kind, signerFor(*one.key())};
    AdmissionHooks admission{
        .prove =
            [cores](const Hash& teamId, std::span<const Hash> need) {
              auto core = coreFor(cores, teamId);
              return core ? core->proofOf(need) : std::vector<Bytes>{};
            },
        .verify = [cores](const Hash& teamId, const Claim& peer,
                          const std::vector<Bytes>& links) {
          return verifyOf(coreFor(cores, teamId), peer, links);
        }};
    Result<HandshakeResult> result = Error(Errc::Denied, "no handshake");
    if (side == Side::Dialer) {
      if (cores.size() != 1) {
        co_return Error(Errc::Config, "team: a node of several teams only accepts connections");
      }
      InitiatorConfig config{.identity = std::move(identity),
                             .mode = HandshakeMode::Member,
                             .teamId = one.teamId(),
                             .prefix = {},
                             .judge = std::move(judge),
                             .inviteeCheck = {},
                             .admission = std::move(admission),
                             .deadline = one.options().handshakeDeadline};
      // (No temporaries with destructors inside co_await: g++ 12 destroys them twice.)
      auto handshake = runInitiator(std::move(stream), std::move(config));
      result = co_await std::move(handshake);
    } else {
      ResponderConfig config{
          .identity = std::move(identity),
          .findTeamByTag = [cores](const Hash& tag,
                                   const EphemeralPublic& e) -> std::optional<Hash> {
            for (const auto& core : cores) {
              const Hash expected = teamTag(core->teamId(), e);
              if (sodium_memcmp(expected.data(), tag.data(), tag.size()) == 0) {
                return core->teamId();
              }
            }
            return std::nullopt;
          },
          .findTeamsByPrefix =
              [cores](const TeamPrefix& prefix) {
                std::vector<Hash> found;
                for (const auto& core : cores) {
                  if (base58Encode(core->teamId())
                          .starts_with(std::string_view(prefix.data(), prefix.size()))) {
                    found.push_back(core->teamId());
                  }
                }
                return found;
              },
          .invitationsFor =
              [cores](const Hash& teamId) {
                auto core = coreFor(cores, teamId);
                return core ? core->offers() : std::vector<Offer>{};
              },
          .judge = std::move(judge),
          .admission = std::move(admission),
          .deadline = one.options().handshakeDeadline};
      auto handshake = runResponder(std::move(stream), std::move(config));
      result = co_await std::move(handshake);
    }
    if (!result) co_return Error(result.error().code(), "team: " + result.error().message());
    if (!result->authorized()) {
      const bool weRefused = result->sent.kind == Status::Kind::Denied;
      const Status& s = weRefused ? result->sent : result->received;
      const std::string who = toHex(ByteView(result->peer.deviceId));
      co_return Error(Errc::Denied,
                      weRefused ? fmt::format("team: refused device {}: {}", who,
                                              reasonName(s.reason))
                                : fmt::format("team: device {} refused us: {}", who,
                                              reasonName(s.reason)));
    }
    auto core = coreFor(cores, result->teamId);
    if (!core) co_return Error(Errc::Denied, "team: the team went away");
    PeerIdentity identityOfPeer = core->identityOf(result->peer);
    auto aead = makeAeadChannel(std::move(result->stream), result->takeKeys(),
                                kDefaultMaxFrameBytes + 1);
    auto channel = core->openSession(ex, result->peer, std::move(aead),
                                     result->mode == HandshakeMode::Invitee);
    co_return Session{.identity = std::move(identityOfPeer), .channel = std::move(channel)};
  }

  asio::awaitable<bool> okToAdvertise(const PeerIdentity& peer, const DocumentId& doc) override {
    co_return mayRead(peer, doc);
  }
  asio::awaitable<bool> okToSend(const PeerIdentity& peer, const DocumentId& doc) override {
    co_return mayRead(peer, doc);
  }
  asio::awaitable<bool> okToReceive(const PeerIdentity& peer, const DocumentId& doc,
                                    const ChangeBatch& changes) override {
    auto core = coreOf(peer.peer);
    if (!core || !claim(*core, doc)) co_return false;
    const bool valid = co_await core->okToReceive(peer, doc, changes);
    if (!valid || !hosting_ || core->owns(doc)) co_return valid;
    // The first changes a host takes for a document make it the team's.
    auto bound = core->bind(doc);
    if (!bound) {
      portcullis::log(
          LogLevel::Error,
          fmt::format("team: could not record that {} belongs to team {}: {}", doc.logName(),
                      toHex(ByteView(core->teamId())).substr(0, 8), bound.error().message()));
    }
    co_return bound.has_value();
  }

  std::shared_ptr<const ChangeSealer> sealerFor(const DocumentId& doc) override {
    return cores_.front()->sealerFor(doc);
  }

  void attach(RepoCallbacks callbacks) override {
    for (auto& core : cores_) core->attach(callbacks);
  }

  bool inStepWith(const PeerId& peer) const override { return syncedWith(peer); }

  bool syncedWith(const PeerId& peer) const {
    return std::any_of(cores_.begin(), cores_.end(),
                       [&](const auto& core) { return core->syncedWith(peer); });
  }
  Result<Hash> act(Action action) {
    if (cores_.size() != 1) return Error(Errc::Denied, "team: a host of several teams signs no links");
    return cores_.front()->act(std::move(action));
  }

 private:
  const Core& first() const { return *cores_.front(); }

  static std::shared_ptr<Core> coreFor(const std::vector<std::shared_ptr<Core>>& cores,
                                       const Hash& teamId) {
    for (const auto& core : cores) {
      if (core->teamId() == teamId) return core;
    }
    return nullptr;
  }

  // The team of `peer`'s session.
  std::shared_ptr<Core> coreOf(const PeerId& peer) const {
    if (cores_.size() == 1) return cores_.front();
    for (const auto& core : cores_) {
      if (core->sessionOf(peer)) return core;
    }
    return nullptr;
  }

  // On a host, a document belongs to one team: the team of the first peer that names it here
  // (held in memory, bounded), made durable by the first changes this host accepts for it, which
  // are recorded before they are applied. Other teams' peers are told nothing of it.
  bool claim(const Core& core, const DocumentId& doc) {
    if (!hosting_) return true;
    for (const auto& other : cores_) {
      if (other->owns(doc)) return other.get() == &core;
    }
    auto [it, fresh] = claims_.try_emplace(doc, &core);
    if (fresh) {
      claimOrder_.push_back(doc);
      if (claimOrder_.size() > kMaxClaims) {
        claims_.erase(claimOrder_.front());
        claimOrder_.pop_front();
      }
    }
    return it->second == &core;
  }

  bool mayRead(const PeerIdentity& peer, const DocumentId& doc) {
    auto core = coreOf(peer.peer);
    return core && claim(*core, doc) && core->okToSend(peer, doc);
  }

  static asio::awaitable<ProofStep> verifyOf(std::shared_ptr<Core> core, Claim peer,
                                             std::vector<Bytes> links) {
    if (!core) co_return ProofStep{.need = {}, .verdict = denied(Reason::WrongTeam)};
    co_return core->checkProof(peer, links);
  }

  static asio::awaitable<Status> judgeOf(std::shared_ptr<Core> core, Claim peer,
                                         HandshakeContext context) {
    co_return core ? core->judge(peer, context) : denied(Reason::WrongTeam);
  }

  std::vector<std::shared_ptr<Core>> cores_;
  bool hosting_ = false;
  // Documents named by a team's peer but not yet recorded as that team's, oldest first.
  static constexpr std::size_t kMaxClaims = 65536;
  std::map<DocumentId, const Core*> claims_;
  std::deque<DocumentId> claimOrder_;
};

class TeamFactory final : public AuthProviderFactory {
 public:
  std::string_view name() const override { return kName; }

  Result<std::unique_ptr<AuthProvider>> create(const ConfigTable& config) const override {
    if (auto ok = config.expectKeys({"state", "change-wait"}); !ok) return ok.error();
    auto state = config.path("state");
    if (!state) return std::move(state).error();
    if (!*state) return config.error("state", "missing (required): the team state directory");
    auto wait = config.integer("change-wait");
    if (!wait) return std::move(wait).error();
    TeamProviderOptions options{.state = state->value().string()};
    if (*wait) {
      if (**wait < 1 || **wait > 600'000) {
        return config.error("change-wait", "must be 1 to 600000 (milliseconds)");
      }
      options.changeWait = std::chrono::milliseconds(**wait);
    }
    auto provider = makeProvider(options);
    if (!provider) return config.error("state", provider.error().message());
    return std::unique_ptr<AuthProvider>(std::move(*provider));
  }

  // `options.state` is a team state directory, or a host folder: a device.key and one team state
  // directory per team, each holding the same key (`team host`).
  static Result<std::unique_ptr<TeamProvider>> makeProvider(const TeamProviderOptions& options) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(fs::path(options.state) / "team.id", ec) ||
        !fs::exists(fs::path(options.state) / "device.key", ec)) {
      auto core = openTeam(options.state, options, false);
      if (!core) return std::move(core).error();
      return std::make_unique<TeamProvider>(std::vector<std::shared_ptr<Core>>{*core}, false);
    }
    auto hostKey = DeviceKey::load(options.state + "/device.key");
    if (!hostKey) return std::move(hostKey).error();
    std::vector<std::string> teams;
    for (const auto& entry : fs::directory_iterator(options.state, ec)) {
      if (entry.is_directory() && fs::exists(entry.path() / "team.id")) {
        teams.push_back(entry.path().string());
      }
    }
    std::sort(teams.begin(), teams.end());
    if (ec) return Error(Errc::Io, options.state + ": " + ec.message());
    if (teams.empty()) {
      return Error(Errc::Config, options.state + ": hosts no team yet (`portcullis team host`)");
    }
    std::vector<std::shared_ptr<Core>> cores;
    for (const std::string& dir : teams) {
      auto core = openTeam(dir, options, true);
      if (!core) return std::move(core).error();
      if ((*core)->self() != Key(hostKey->publicKey().bytes())) {
        return Error(Errc::Config, dir + ": its device key is not the host's (" + options.state +
                                       "/device.key)");
      }
      cores.push_back(std::move(*core));
    }
    return std::make_unique<TeamProvider>(std::move(cores), true);
  }

 private:
  static Result<std::shared_ptr<Core>> openTeam(const std::string& path,
                                                const TeamProviderOptions& options,
                                                bool bindsDocuments) {
    auto dir = TeamStateDir::open(path);
    if (!dir) return std::move(dir).error();
    if (!dir->graph().hasRoot()) {
      return Error(Errc::Config, fmt::format("{}: the team has no root: {}", path,
                                             dir->graph().rootProblem()));
    }
    // The provider signs with its own copy of the key: the sealer outlives no state directory,
    // but shares the key with the Repo's documents.
    auto key = DeviceKey::load(path + "/device.key");
    if (!key) return std::move(key).error();
    auto shared = std::make_shared<const DeviceKey>(std::move(*key));
    const TeamGraph::Standing standing =
        dir->graph().standing(Key(shared->publicKey().bytes()));
    portcullis::log(
        LogLevel::Info,
        fmt::format("auth provider 'team': team {} ({}), this device {} ({}), {} links",
                    toHex(ByteView(dir->teamId())), dir->graph().teamName(), shared->publicKeyHex(),
                    standing == TeamGraph::Standing::Member   ? "a member device"
                    : standing == TeamGraph::Standing::Server ? "a server"
                                                              : "not current in the team",
                    dir->graph().size()));
    auto core = std::make_shared<Core>(std::move(*dir), std::move(shared), options);
    if (bindsDocuments) {
      if (auto loaded = core->loadDocuments(); !loaded) return std::move(loaded).error();
    }
    return core;
  }
};

}  // namespace

Result<std::shared_ptr<AuthProvider>> makeTeamProvider(const TeamProviderOptions& options) {
  auto provider = TeamFactory::makeProvider(options);
  if (!provider) return std::move(provider).error();
  return std::shared_ptr<AuthProvider>(std::move(*provider));
}

bool teamSyncedWith(const AuthProvider& provider, const PeerId& peer) {
  const auto* team = dynamic_cast<const TeamProvider*>(&provider);
  return team != nullptr && team->syncedWith(peer);
}

Result<Hash> teamAct(AuthProvider& provider, Action action) {
  auto* team = dynamic_cast<TeamProvider*>(&provider);
  if (team == nullptr) return Error(Errc::Config, "not a team provider");
  return team->act(std::move(action));
}

Result<void> registerProvider(ProviderRegistry& registry) {
  return registry.add(std::make_unique<TeamFactory>());
}

}  // namespace portcullis::team
