// TeamGraph: storage of links with checks 3–5 (§2.3), the pending set (§10), T order, and the
// evaluation per batch (§4.8) through evaluator.h.
#include "team_graph.h"

#include <algorithm>
#include <deque>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <sodium.h>

#include "contests.h"
#include "evaluator.h"
#include "wire/link_codec.h"

namespace portcullis::team {

using detail::Cut;
using detail::kNone;
using detail::Node;

namespace {

std::uint64_t pairKey(std::uint32_t user, std::uint32_t dev) {
  return (std::uint64_t{user} << 32) | dev;
}

template <typename T>
const T* actionAs(const LinkBody& b) {
  return std::get_if<T>(&b.action);
}

}  // namespace

struct TeamGraph::Impl {
  struct Pending {
    DecodedLink link;
    SessionId session = kLocalSession;
  };
  struct SessionBudget {
    std::size_t links = 0;
    std::size_t bytes = 0;
    std::deque<Hash> age;  // oldest first (may hold hashes no longer pending)
  };

  explicit Impl(const Hash& teamId, GraphLimits l) : limits(l), eval(store) {
    store.teamId = teamId;
    store.adminRole = store.internRole("admin");
  }

  GraphLimits limits;
  detail::Store store;
  detail::Evaluator eval;
  bool evaluated = false;
  std::string rootProblem = "the team's root link has not arrived";

  std::unordered_map<Hash, Pending, ArrayHash> pending;
  std::deque<Hash> pendingAge;  // oldest first (may hold hashes no longer pending)
  std::size_t pendingBytes = 0;
  std::unordered_map<SessionId, SessionBudget> sessions;
  std::unordered_map<Hash, std::vector<Hash>, ArrayHash> waiters;  // missing prev -> links
  std::unordered_set<Hash, ArrayHash> dropped;

  BatchOutcome add(std::vector<DecodedLink> links, SessionId session);
  void drop(const Hash& h, std::string reason, BatchOutcome& out);
  void dropWaiters(const Hash& h, BatchOutcome& out);
  // Checks 3–5 of a link whose prev are all stored; stores it or says why not.
  std::optional<std::string> storeLink(DecodedLink& link, std::vector<std::uint32_t>& added);
  std::optional<std::string> rootCheck(const DecodedLink& link) const;
  void storeRoot(DecodedLink& link, std::vector<std::uint32_t>& added);
  void index(std::uint32_t n);
  void addPending(DecodedLink link, SessionId session);
  // Forgets a pending link, returning it (its budgets released).
  DecodedLink takePending(std::unordered_map<Hash, Pending, ArrayHash>::iterator it);
  // Discards the oldest pending links of `age` while `over()` (not charged, §10).
  template <typename Over>
  void evict(std::deque<Hash>& age, Over over);
  // §10: every stored link introducing the author is inert (never valid and not condemned in a
  // pass of the last evaluation, and invalid in its final pass).
  bool isUnbacked(std::uint32_t n) const;

  const detail::PassState& fin() const { return eval.final(); }
  // The largest deviceSeq among the stored links of device d (0: none).
  std::uint64_t largestSeq(std::uint32_t d) const {
    std::uint64_t out = 0;
    for (std::uint32_t n : store.linksOfDev[d]) {
      out = std::max<std::uint64_t>(out, store.nodes[n].seq);
    }
    return out;
  }
  std::uint32_t userOfInst(std::uint32_t inst) const { return store.nodes[inst].targetUser; }
};

void TeamGraph::Impl::drop(const Hash& h, std::string reason, BatchOutcome& out) {
  dropped.insert(h);
  out.dropped.push_back(h);
  out.dropReasons.push_back(std::move(reason));
  dropWaiters(h, out);
}

void TeamGraph::Impl::dropWaiters(const Hash& h, BatchOutcome& out) {
  auto it = waiters.find(h);
  if (it == waiters.end()) return;
  std::vector<Hash> ws = std::move(it->second);
  waiters.erase(it);
  for (const Hash& w : ws) {
    auto p = pending.find(w);
    if (p == pending.end()) continue;
    takePending(p);
    drop(w, "a link in its prev was dropped", out);
  }
}

std::optional<std::string> TeamGraph::Impl::rootCheck(const DecodedLink& link) const {
  const Root* root = actionAs<Root>(link.parsed);
  if (link.unknown || root == nullptr) return "the team ID names a link that is not a root";
  if (!link.parsed.prev.empty() || link.parsed.deviceSeq != 1 ||
      link.parsed.deviceId != root->founder.deviceId) {
    return "the root must have no prev, deviceSeq 1 and the founder's device as author";
  }
  if (root->teamKeys.has_value() != (root->version == 4)) {
    return "the root's team keys do not match its version";
  }
  if (root->version == 4) {
    return "version-4 (end-to-end encrypted) teams are not supported by this version";
  }
  if (root->version != 3) return "the root's version is neither 3 nor 4";
  return std::nullopt;
}

void TeamGraph::Impl::index(std::uint32_t n) {
  Node& l = store.nodes[n];
  store.byHash.emplace(l.hash, n);
  if (!store.seqsSeen.insert((std::uint64_t{l.dev} << 32) | l.seq).second) {
    store.twinned[l.dev] = 1;
  }
  store.linksOfDev[l.dev].push_back(n);
  store.namedAsPrev.push_back(0);
  for (std::uint32_t p : l.prev) store.namedAsPrev[p] = 1;
  for (const auto& [u, d] : l.intros) store.introducers[pairKey(u, d)].push_back(n);
  auto group = [&](std::uint64_t key) {
    auto& g = store.k5Groups[key];
    g.push_back(n);
    if (g.size() == 2) store.k5Multi.push_back(key);
  };
  constexpr std::uint64_t kDeviceKey = std::uint64_t{1} << 63;
  switch (l.type) {
    case ActionType::AddMember:
      group(l.targetUser);
      for (std::uint32_t d : l.newDevs) group(kDeviceKey | d);
      break;
    case ActionType::AdmitMember:
      group(l.targetUser);
      group(kDeviceKey | l.targetDev);
      break;
    case ActionType::AdmitDevice:
    case ActionType::AddDevice:
    case ActionType::AddServer: group(kDeviceKey | l.targetDev); break;
    default: break;
  }
  if (l.type == ActionType::AdmitMember || l.type == ActionType::AdmitDevice) {
    store.admissionsOf[l.invitation].push_back(n);
  }
  // Pass 1 of the link's own past (check 5′ of later links reads it).
  store.p1.valid.resize(store.nodes.size(), 0);
  store.p1.info.resize(store.nodes.size());
  if (n == store.root) {
    detail::recordValid(store, store.p1, n, eval.rootInfo());
  } else if (auto info = eval.authorize(store.p1, n, false)) {
    detail::recordValid(store, store.p1, n, *info);
  }
}

void TeamGraph::Impl::storeRoot(DecodedLink& link, std::vector<std::uint32_t>& added) {
  const Root& root = std::get<Root>(link.parsed.action);
  Node l;
  l.hash = link.hash;
  l.body = std::move(link.body);
  l.signature = link.signature;
  l.type = ActionType::Root;
  l.dev = store.internKey(link.parsed.deviceId);
  l.user = store.internUser(link.parsed.userId);
  l.seq = 1;
  l.depth = 0;
  l.targetUser = l.user;
  l.targetDev = l.dev;
  l.intros = {{l.user, l.dev}};
  l.vv = {{l.dev, 1}};
  const auto n = static_cast<std::uint32_t>(store.nodes.size());
  store.root = n;
  store.founderUser = l.user;
  store.teamName = root.teamName;
  if (root.recoveryKey) store.recovery = store.internKey(*root.recoveryKey);
  store.nodes.push_back(std::move(l));
  index(n);
  added.push_back(n);
  rootProblem.clear();
}

std::optional<std::string> TeamGraph::Impl::storeLink(DecodedLink& link,
                                                      std::vector<std::uint32_t>& added) {
  const LinkBody& b = link.parsed;
  Node l;
  l.hash = link.hash;
  l.type = typeOf(b.action);
  l.unknown = link.unknown || l.type == ActionType::Unknown;
  l.dev = store.internKey(b.deviceId);
  l.user = store.internUser(b.userId);
  l.seq = static_cast<std::uint32_t>(b.deviceSeq);
  std::uint32_t maxOwn = 0;
  bool ownPrev = false;
  for (const Hash& p : b.prev) {
    const std::uint32_t pi = store.byHash.at(p);
    const Node& pn = store.nodes[pi];
    l.prev.push_back(pi);
    l.depth = std::max(l.depth, pn.depth + 1);
    maxOwn = std::max(maxOwn, store.vvAt(pn, l.dev));
    ownPrev = ownPrev || (pn.dev == l.dev && pn.seq + 1 == l.seq);
    // The version vector: the union of the prev's, by largest seq.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> merged;
    merged.reserve(l.vv.size() + pn.vv.size());
    std::size_t i = 0;
    std::size_t j = 0;
    while (i < l.vv.size() || j < pn.vv.size()) {
      if (j == pn.vv.size() || (i < l.vv.size() && l.vv[i].first < pn.vv[j].first)) {
        merged.push_back(l.vv[i++]);
      } else if (i == l.vv.size() || pn.vv[j].first < l.vv[i].first) {
        merged.push_back(pn.vv[j++]);
      } else {
        merged.emplace_back(l.vv[i].first, std::max(l.vv[i].second, pn.vv[j].second));
        ++i;
        ++j;
      }
    }
    l.vv = std::move(merged);
  }
  // Check 4: the device's links form a chain.
  if (maxOwn != l.seq - 1) return "its deviceSeq does not follow the device's largest in its past";
  if (l.seq > 1 && !ownPrev) return "its prev does not name the device's previous link";
  auto at = std::lower_bound(l.vv.begin(), l.vv.end(), std::make_pair(l.dev, std::uint32_t{0}));
  if (at != l.vv.end() && at->first == l.dev) {
    at->second = std::max(at->second, l.seq);
  } else {
    l.vv.insert(at, {l.dev, l.seq});
  }

  // The node is provisionally in the store so that ancestry questions about it can be asked.
  const auto n = static_cast<std::uint32_t>(store.nodes.size());
  store.nodes.push_back(std::move(l));
  auto undo = [&](std::string why) -> std::optional<std::string> {
    store.nodes.pop_back();
    return why;
  };
  Node& nd = store.nodes[n];

  // Check 5 (5′): the author is introduced by a link in its past authorized in pass 1 of that
  // link's own past, or is the recovery key signing as the founder.
  const bool recoveryLink = nd.dev == store.recovery && nd.user == store.founderUser;
  if (!recoveryLink) {
    bool introduced = false;
    auto it = store.introducers.find(pairKey(nd.user, nd.dev));
    if (it != store.introducers.end()) {
      for (std::uint32_t i : it->second) {
        if (store.p1.valid[i] && store.ancestor(i, n)) {
          introduced = true;
          break;
        }
      }
    }
    if (!introduced) return undo("its author is not introduced in its past (check 5')");
  }

  // The action, interned; admissions and revocations name a stored invitation in their past.
  auto invitation = [&](const Hash& inv, bool member, bool device) -> std::optional<std::string> {
    auto it = store.byHash.find(inv);
    if (it == store.byHash.end() || !store.ancestor(it->second, n)) {
      return "it names an invitation that is not in its past";
    }
    const ActionType t = store.nodes[it->second].type;
    if (!((member && t == ActionType::InviteMember) || (device && t == ActionType::InviteDevice)) ||
        store.nodes[it->second].unknown) {
      return "it names a link that is not an invitation of the right kind";
    }
    nd.invitation = it->second;
    return std::nullopt;
  };
  auto inviteSigOk = [&](const Hash& inv, const NewDevice& dev, std::string_view user,
                         const Signature& sig) {
    Bytes tuple = admissionTuple(store.teamId, inv, dev.deviceId, dev.encKey, user);
    return verifyBytes(tuple, sig, store.nodes[nd.invitation].inviteKey);
  };

  switch (nd.type) {
    case ActionType::Root:
      return undo("a second root");
    case ActionType::AddMember: {
      const auto& a = std::get<AddMember>(b.action);
      nd.targetUser = store.internUser(a.userId);
      for (const NewDevice& d : a.devices) nd.newDevs.push_back(store.internKey(d.deviceId));
      if (a.roles) {
        for (const std::string& r : *a.roles) nd.roles.push_back(store.internRole(r));
      }
      nd.lockboxes = a.lockboxes.has_value();
      for (std::uint32_t d : nd.newDevs) nd.intros.emplace_back(nd.targetUser, d);
      break;
    }
    case ActionType::InviteMember:
    case ActionType::InviteDevice: {
      const Invite& a = nd.type == ActionType::InviteMember
                            ? static_cast<const Invite&>(std::get<InviteMember>(b.action))
                            : static_cast<const Invite&>(std::get<InviteDevice>(b.action));
      nd.inviteKey = a.publicKey;
      nd.maxUses = a.maxUses;
      nd.expiresAt = a.expiresAt;
      break;
    }
    case ActionType::RevokeInvitation:
      if (auto why = invitation(std::get<RevokeInvitation>(b.action).invitation, true, true)) {
        return undo(*why);
      }
      break;
    case ActionType::AdmitMember: {
      const auto& a = std::get<AdmitMember>(b.action);
      if (auto why = invitation(a.invitation, true, false)) return undo(*why);
      if (!inviteSigOk(a.invitation, a.device, a.userId, a.inviteSig)) {
        return undo("its inviteSig does not verify under the invitation's key");
      }
      nd.targetUser = store.internUser(a.userId);
      nd.targetDev = store.internKey(a.device.deviceId);
      nd.lockboxes = a.lockboxes.has_value();
      nd.intros = {{nd.targetUser, nd.targetDev}};
      break;
    }
    case ActionType::AdmitDevice: {
      const auto& a = std::get<AdmitDevice>(b.action);
      if (auto why = invitation(a.invitation, false, true)) return undo(*why);
      if (!inviteSigOk(a.invitation, a.device, "", a.inviteSig)) {
        return undo("its inviteSig does not verify under the invitation's key");
      }
      nd.targetDev = store.internKey(a.device.deviceId);
      nd.lockboxes = a.lockboxes.has_value();
      nd.intros = {{store.nodes[nd.invitation].user, nd.targetDev}};
      break;
    }
    case ActionType::AddDevice: {
      const auto& a = std::get<AddDevice>(b.action);
      nd.targetUser = store.internUser(a.userId);
      nd.targetDev = store.internKey(a.device.deviceId);
      nd.lockboxes = a.lockboxes.has_value();
      nd.intros = {{nd.targetUser, nd.targetDev}};
      break;
    }
    case ActionType::RemoveDevice:
      nd.targetDev = store.internKey(std::get<RemoveDevice>(b.action).deviceId);
      break;
    case ActionType::RemoveMember:
      nd.targetUser = store.internUser(std::get<RemoveMember>(b.action).userId);
      break;
    case ActionType::AddMemberRole:
    case ActionType::RemoveMemberRole: {
      const MemberRole& a = nd.type == ActionType::AddMemberRole
                                ? static_cast<const MemberRole&>(std::get<AddMemberRole>(b.action))
                                : static_cast<const MemberRole&>(
                                      std::get<RemoveMemberRole>(b.action));
      nd.targetUser = store.internUser(a.userId);
      nd.role = store.internRole(a.role);
      nd.lockboxes = a.lockboxes.has_value();
      break;
    }
    case ActionType::SetDocumentAccess: {
      const auto& a = std::get<SetDocumentAccess>(b.action);
      nd.accessKey = store.internAccess(detail::AccessKey{a.document, a.principal});
      nd.level = a.level;
      if (a.principal.kind == Principal::Kind::Member) {
        nd.principalUser = store.internUser(a.principal.name);
      }
      break;
    }
    case ActionType::AddServer:
      nd.targetDev = store.internKey(std::get<AddServer>(b.action).serverId);
      break;
    case ActionType::RemoveServer:
      nd.targetDev = store.internKey(std::get<RemoveServer>(b.action).serverId);
      break;
    case ActionType::RotateKeys:
      nd.lockboxes = true;  // version 4 only: invalid here (§2.4)
      break;
    case ActionType::Unknown:
      break;
  }
  nd.body = std::move(link.body);
  nd.signature = link.signature;
  index(n);
  added.push_back(n);
  return std::nullopt;
}

DecodedLink TeamGraph::Impl::takePending(
    std::unordered_map<Hash, Pending, ArrayHash>::iterator it) {
  const std::size_t bytes = it->second.link.body.size();
  pendingBytes -= bytes;
  if (it->second.session != kLocalSession) {
    auto s = sessions.find(it->second.session);
    if (s != sessions.end()) {
      s->second.links -= 1;
      s->second.bytes -= bytes;
    }
  }
  DecodedLink link = std::move(it->second.link);
  pending.erase(it);
  // No list keeps waking a link that no longer waits (bounded memory under eviction).
  for (const Hash& p : link.parsed.prev) {
    auto w = waiters.find(p);
    if (w == waiters.end()) continue;
    std::erase(w->second, link.hash);
    if (w->second.empty()) waiters.erase(w);
  }
  return link;
}

template <typename Over>
void TeamGraph::Impl::evict(std::deque<Hash>& age, Over over) {
  while (over() && !age.empty()) {
    auto it = pending.find(age.front());
    age.pop_front();
    if (it != pending.end()) takePending(it);
  }
}

void TeamGraph::Impl::addPending(DecodedLink link, SessionId session) {
  const Hash h = link.hash;
  const std::size_t bytes = link.body.size();
  for (const Hash& p : link.parsed.prev) {
    if (!store.byHash.contains(p)) waiters[p].push_back(h);
  }
  pendingBytes += bytes;
  pending.emplace(h, Pending{std::move(link), session});
  pendingAge.push_back(h);
  // Over budget, the oldest wait no longer: they are discarded, not charged, and may be sent
  // again (§10). First the session's own budget, then the store's.
  if (session != kLocalSession) {
    SessionBudget& b = sessions[session];
    b.links += 1;
    b.bytes += bytes;
    b.age.push_back(h);
    evict(b.age, [&] {
      return b.links > limits.maxPendingLinksPerSession ||
             b.bytes > limits.maxPendingBytesPerSession;
    });
  }
  evict(pendingAge, [&] {
    return pending.size() > limits.maxPendingLinks || pendingBytes > limits.maxPendingBytes;
  });
}

BatchOutcome TeamGraph::Impl::add(std::vector<DecodedLink> links, SessionId session) {
  BatchOutcome out;
  std::vector<std::uint32_t> added;
  std::vector<DecodedLink> ready;
  auto release = [&](const Hash& h) {
    auto it = waiters.find(h);
    if (it == waiters.end()) return;
    std::vector<Hash> ws = std::move(it->second);
    waiters.erase(it);
    for (const Hash& w : ws) {
      auto p = pending.find(w);
      // Recounted rather than decremented: a link evicted and sent again waits twice in a list.
      if (p == pending.end() ||
          !std::all_of(p->second.link.parsed.prev.begin(), p->second.link.parsed.prev.end(),
                       [&](const Hash& q) { return store.byHash.contains(q); })) {
        continue;
      }
      ready.push_back(takePending(p));
    }
  };
  auto drain = [&] {
    while (!ready.empty()) {
      DecodedLink link = std::move(ready.back());
      ready.pop_back();
      const Hash h = link.hash;
      if (store.nodes.size() >= limits.maxStoredLinks) {
        out.tooLarge = true;
        continue;
      }
      if (auto why = storeLink(link, added)) {
        drop(h, *why, out);
      } else {
        out.stored.push_back(h);
        release(h);
      }
    }
  };

  for (DecodedLink& link : links) {
    const Hash h = link.hash;
    if (store.byHash.contains(h) || pending.contains(h) || dropped.contains(h)) {
      ++out.duplicates;
      continue;
    }
    if (store.root == kNone && h == store.teamId) {
      if (auto why = rootCheck(link)) {
        rootProblem = *why;
        drop(h, *why, out);
        continue;
      }
      storeRoot(link, added);
      out.stored.push_back(h);
      release(h);
      drain();
      continue;
    }
    if (link.parsed.prev.empty()) {
      drop(h, typeOf(link.parsed.action) == ActionType::Root ? "a root of another team"
                                                             : "a link with no prev",
           out);
      continue;
    }
    if (std::any_of(link.parsed.prev.begin(), link.parsed.prev.end(),
                    [&](const Hash& p) { return dropped.contains(p); })) {
      drop(h, "a link in its prev was dropped", out);
      continue;
    }
    const std::size_t missing = static_cast<std::size_t>(
        std::count_if(link.parsed.prev.begin(), link.parsed.prev.end(),
                      [&](const Hash& p) { return !store.byHash.contains(p); }));
    if (missing == 0) {
      ready.push_back(std::move(link));
      drain();
    } else {
      addPending(std::move(link), session);
    }
  }
  for (const DecodedLink& l : links) {
    if (pending.contains(l.hash)) ++out.pending;
  }

  if (added.empty()) return out;
  // T order (§4.1): merge the new links in; pass 1 is reused before the first of them (§4.8).
  auto tless = [&](std::uint32_t a, std::uint32_t b) { return store.tBefore(a, b); };
  std::sort(added.begin(), added.end(), tless);
  std::vector<std::uint32_t> merged;
  merged.reserve(store.order.size() + added.size());
  std::merge(store.order.begin(), store.order.end(), added.begin(), added.end(),
             std::back_inserter(merged), tless);
  store.order = std::move(merged);
  store.tpos.assign(store.nodes.size(), 0);
  for (std::uint32_t i = 0; i < store.order.size(); ++i) store.tpos[store.order[i]] = i;
  std::optional<std::uint32_t> resume;
  if (evaluated) resume = store.tpos[added.front()];
  eval.evaluate(resume);
  evaluated = true;

  for (std::uint32_t n : added) out.unbacked += isUnbacked(n);
  return out;
}

bool TeamGraph::Impl::isUnbacked(std::uint32_t n) const {
  const Node& l = store.nodes[n];
  if (!evaluated || (l.dev == store.recovery && l.user == store.founderUser)) return false;
  auto it = store.introducers.find(pairKey(l.user, l.dev));
  if (it == store.introducers.end()) return true;
  return std::none_of(it->second.begin(), it->second.end(), [&](std::uint32_t i) {
    return eval.active()[i] || fin().valid[i];
  });
}

// ---------------------------------------------------------------------------------------------
// TeamGraph

TeamGraph::TeamGraph(const Hash& teamId, GraphLimits limits)
    : impl_(std::make_unique<Impl>(teamId, limits)) {}
TeamGraph::~TeamGraph() = default;
TeamGraph::TeamGraph(TeamGraph&&) noexcept = default;
TeamGraph& TeamGraph::operator=(TeamGraph&&) noexcept = default;

BatchOutcome TeamGraph::addBatch(std::span<const Bytes> links, SessionId session) {
  BatchOutcome early;
  std::vector<DecodedLink> decoded;
  decoded.reserve(links.size());
  for (const Bytes& bytes : links) {
    auto d = decodeLink(bytes, impl_->store.teamId);
    if (!d) {
      // Checks 1–2 failed: dropped, keyed by the computed link hash (§2.2) so that a resend is
      // known at once; an envelope too broken to name a body and signature by its bytes' hash.
      Hash h{};
      if (auto parts = splitLink(bytes)) {
        h = linkHash(parts->body, parts->signature);
      } else {
        crypto_generichash(h.data(), h.size(), bytes.data(), bytes.size(), nullptr, 0);
      }
      if (!impl_->dropped.insert(h).second) {
        ++early.duplicates;
        continue;
      }
      early.dropped.push_back(h);
      early.dropReasons.push_back(d.error().message());
      continue;
    }
    decoded.push_back(std::move(*d));
  }
  BatchOutcome out = impl_->add(std::move(decoded), session);
  out.dropped.insert(out.dropped.begin(), early.dropped.begin(), early.dropped.end());
  out.dropReasons.insert(out.dropReasons.begin(), early.dropReasons.begin(),
                         early.dropReasons.end());
  out.duplicates += early.duplicates;
  return out;
}

BatchOutcome TeamGraph::addDecoded(std::vector<DecodedLink> links, SessionId session) {
  return impl_->add(std::move(links), session);
}

void TeamGraph::closeSession(SessionId session) {
  auto it = impl_->sessions.find(session);
  if (it == impl_->sessions.end()) return;
  std::deque<Hash> age = std::move(it->second.age);
  for (const Hash& h : age) {
    auto p = impl_->pending.find(h);
    if (p != impl_->pending.end() && p->second.session == session) impl_->takePending(p);
  }
  impl_->sessions.erase(session);
}

bool SessionCharge::add(const BatchOutcome& outcome) {
  forged_ += outcome.dropped.size();
  carried_ += outcome.unbacked;
  return shouldClose();
}

const Hash& TeamGraph::teamId() const noexcept { return impl_->store.teamId; }
bool TeamGraph::hasRoot() const noexcept { return impl_->store.root != kNone; }
std::string TeamGraph::rootProblem() const { return impl_->rootProblem; }
std::string TeamGraph::teamName() const { return impl_->store.teamName; }

std::optional<Key> TeamGraph::recoveryKey() const {
  if (impl_->store.recovery == kNone) return std::nullopt;
  return impl_->store.keys[impl_->store.recovery];
}

std::vector<std::string> TeamGraph::members() const {
  std::vector<std::string> out;
  if (!impl_->evaluated) return out;
  for (std::uint32_t u = 0; u < impl_->store.users.size(); ++u) {
    if (impl_->eval.current(impl_->fin(), Cut{}, u) != kNone) out.push_back(impl_->store.users[u]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> TeamGraph::admins() const {
  std::vector<std::string> out;
  if (!impl_->evaluated) return out;
  for (std::uint32_t u = 0; u < impl_->store.users.size(); ++u) {
    std::uint32_t inst = impl_->eval.current(impl_->fin(), Cut{}, u);
    if (inst != kNone && impl_->eval.has(impl_->fin(), Cut{}, inst, impl_->store.adminRole)) {
      out.push_back(impl_->store.users[u]);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> TeamGraph::removed() const {
  std::vector<std::string> out;
  if (!impl_->evaluated) return out;
  for (std::uint32_t n : impl_->fin().order) {
    if (impl_->store.nodes[n].type == ActionType::RemoveMember) {
      out.push_back(impl_->store.users[impl_->userOfInst(impl_->fin().info[n].target)]);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<Key> TeamGraph::devices() const {
  std::vector<Key> out;
  if (!impl_->evaluated) return out;
  for (std::uint32_t k = 0; k < impl_->store.keys.size(); ++k) {
    if (impl_->eval.device(impl_->fin(), Cut{}, k) != kNone) out.push_back(impl_->store.keys[k]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Key> TeamGraph::servers() const {
  std::vector<Key> out;
  if (!impl_->evaluated) return out;
  for (std::uint32_t k = 0; k < impl_->store.keys.size(); ++k) {
    if (impl_->eval.server(impl_->fin(), k)) out.push_back(impl_->store.keys[k]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> TeamGraph::roles(std::string_view userId) const {
  std::vector<std::string> out;
  auto u = impl_->store.findUser(userId);
  if (!impl_->evaluated || !u) return out;
  std::uint32_t inst = impl_->eval.current(impl_->fin(), Cut{}, *u);
  if (inst == kNone) return out;
  for (std::uint32_t r : impl_->eval.rolesOf(impl_->fin(), inst)) {
    out.push_back(impl_->store.roleNames[r]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> TeamGraph::memberOfDevice(const Key& device) const {
  auto k = impl_->store.findKey(device);
  if (!impl_->evaluated || !k) return std::nullopt;
  std::uint32_t inst = impl_->eval.device(impl_->fin(), Cut{}, *k);
  if (inst == kNone) return std::nullopt;
  return impl_->store.users[impl_->userOfInst(inst)];
}

TeamGraph::Standing TeamGraph::standing(const Key& device) const {
  auto k = impl_->store.findKey(device);
  if (!impl_->evaluated || !k) return Standing::Unknown;
  if (impl_->eval.device(impl_->fin(), Cut{}, *k) != kNone) return Standing::Member;
  if (impl_->eval.server(impl_->fin(), *k)) return Standing::Server;
  return Standing::Removed;
}

std::vector<Hash> TeamGraph::introductionOf(const Key& device) const {
  auto k = impl_->store.findKey(device);
  if (!impl_->evaluated || !k) return {};
  const detail::PassState& s = impl_->fin();
  std::optional<std::uint32_t> intro;
  for (std::uint32_t n : s.order) {
    const Node& l = impl_->store.nodes[n];
    const bool introduces =
        (l.type == ActionType::AddServer && l.targetDev == *k) ||
        std::any_of(l.intros.begin(), l.intros.end(), [&](const auto& p) { return p.second == *k; });
    if (introduces) intro = n;
  }
  if (!intro) return {};
  const Node& l = impl_->store.nodes[*intro];
  std::vector<Hash> out;
  if ((l.type == ActionType::AdmitMember || l.type == ActionType::AdmitDevice) &&
      l.invitation != kNone) {
    out.push_back(impl_->store.nodes[l.invitation].hash);
  }
  out.push_back(l.hash);
  return out;
}

TeamGraph::Standing TeamGraph::standingWith(std::span<const Bytes> links,
                                            const Key& device) const {
  TeamGraph trial(impl_->store.teamId, impl_->limits);
  std::vector<DecodedLink> stored;
  stored.reserve(impl_->store.order.size());
  for (std::uint32_t n : impl_->store.order) {
    const Node& l = impl_->store.nodes[n];
    // Checked in full when it was stored: its signatures are not verified again.
    auto d = redecodeStoredLink(l.body, l.signature, impl_->store.teamId);
    if (d) stored.push_back(std::move(*d));
  }
  trial.addDecoded(std::move(stored));
  trial.addBatch(links, kLocalSession + 1);
  return trial.standing(device);
}

bool TeamGraph::inDownset(const Hash& link, std::span<const Hash> heads) const {
  auto it = impl_->store.byHash.find(link);
  if (it == impl_->store.byHash.end()) return false;
  for (const Hash& h : heads) {
    auto head = impl_->store.byHash.find(h);
    if (head == impl_->store.byHash.end()) continue;
    if (head->second == it->second || impl_->store.ancestor(it->second, head->second)) return true;
  }
  return false;
}

std::vector<Key> TeamGraph::devicesOf(std::string_view userId) const {
  std::vector<Key> out;
  auto u = impl_->store.findUser(userId);
  if (!impl_->evaluated || !u) return out;
  std::uint32_t inst = impl_->eval.current(impl_->fin(), Cut{}, *u);
  if (inst == kNone) return out;
  for (std::uint32_t k = 0; k < impl_->store.keys.size(); ++k) {
    if (impl_->eval.device(impl_->fin(), Cut{}, k) == inst) out.push_back(impl_->store.keys[k]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Level TeamGraph::memberAccess(std::string_view userId, const std::optional<DocId>& doc) const {
  auto u = impl_->store.findUser(userId);
  if (!impl_->evaluated || !u) return Level::None;
  return impl_->eval.memberLevel(*u, doc);
}

Level TeamGraph::serverAccess(const Key& server, const std::optional<DocId>& doc) const {
  auto k = impl_->store.findKey(server);
  if (!impl_->evaluated || !k) return Level::None;
  return impl_->eval.serverLevel(*k, doc);
}

bool TeamGraph::okToSend(const Key& peer, const DocId& doc) const {
  auto k = impl_->store.findKey(peer);
  if (!impl_->evaluated || !k) return false;
  if (impl_->eval.server(impl_->fin(), *k)) return impl_->eval.serverLevel(*k, doc) != Level::None;
  std::uint32_t inst = impl_->eval.device(impl_->fin(), Cut{}, *k);
  return inst != kNone && impl_->eval.memberLevel(impl_->userOfInst(inst), doc) != Level::None;
}

std::optional<bool> TeamGraph::changeValid(std::span<const Hash> teamHeads, const Key& actor,
                                           const DocId& doc, std::string_view scope,
                                           const std::optional<Hash>& generation) const {
  const detail::Store& st = impl_->store;
  std::vector<std::uint8_t> inSet(st.nodes.size(), 0);
  std::vector<std::uint32_t> todo;
  for (const Hash& h : teamHeads) {
    auto it = st.byHash.find(h);
    if (it == st.byHash.end()) return std::nullopt;  // the change waits for graph sync
    todo.push_back(it->second);
  }
  if (todo.empty()) return false;
  while (!todo.empty()) {
    std::uint32_t n = todo.back();
    todo.pop_back();
    if (inSet[n]) continue;
    inSet[n] = 1;
    todo.insert(todo.end(), st.nodes[n].prev.begin(), st.nodes[n].prev.end());
  }
  detail::Evaluator sub(st, std::move(inSet));
  sub.evaluate();
  auto k = st.findKey(actor);
  if (!k) return false;
  std::uint32_t inst = sub.device(sub.final(), Cut{}, *k);
  if (inst == kNone || sub.memberLevel(st.nodes[inst].targetUser, doc) != Level::Write) {
    return false;
  }
  return scope == "team" && !generation.has_value();  // version 3 (§2.4)
}

std::vector<InvitationInfo> TeamGraph::invitations() const {
  std::vector<InvitationInfo> out;
  if (!impl_->evaluated) return out;
  const detail::PassState& s = impl_->fin();
  for (std::uint32_t n : s.order) {
    const Node& l = impl_->store.nodes[n];
    if (l.type != ActionType::InviteMember && l.type != ActionType::InviteDevice) continue;
    InvitationInfo info;
    info.hash = l.hash;
    info.publicKey = l.inviteKey;
    info.device = l.type == ActionType::InviteDevice;
    info.inviter = impl_->store.users[impl_->userOfInst(s.info[n].inviter)];
    info.inviterDevice = impl_->store.keys[l.dev];
    info.maxUses = s.info[n].maxUses;
    info.uses = impl_->eval.uses(s, Cut{}, n);
    info.expiresAt = l.expiresAt;
    info.revoked = impl_->eval.revoked(s, Cut{}, n);
    const std::uint32_t inviter = s.info[n].inviter;
    const bool inviterCurrent =
        impl_->eval.current(s, Cut{}, impl_->userOfInst(inviter)) == inviter &&
        (info.device ? impl_->eval.device(s, Cut{}, l.dev) != kNone
                     : impl_->eval.has(s, Cut{}, inviter, impl_->store.adminRole));
    info.open = !info.revoked && inviterCurrent && (info.maxUses == 0 || info.uses < info.maxUses);
    out.push_back(info);
  }
  return out;
}

std::string TeamGraph::whyInvalid(const Hash& link) const {
  auto it = impl_->store.byHash.find(link);
  if (it == impl_->store.byHash.end()) return "not stored";
  const std::uint32_t n = it->second;
  if (!impl_->evaluated || impl_->fin().valid[n]) return "";
  if (impl_->eval.killed(n)) {
    return "killed by a concurrent removal, demotion, fork or conflicting admission (§4.5)";
  }
  // Not authorized in the last pass: ask the rules again which one refused it (§3).
  const char* why = nullptr;
  if (!impl_->eval.authorize(impl_->fin(), n, false, &why)) return why;
  return "the member already has 16 devices, counting concurrent introductions (§3)";
}

LinkState TeamGraph::state(const Hash& link) const {
  auto it = impl_->store.byHash.find(link);
  if (it != impl_->store.byHash.end()) {
    return impl_->evaluated && impl_->fin().valid[it->second] ? LinkState::Valid
                                                              : LinkState::Invalid;
  }
  if (impl_->pending.contains(link)) return LinkState::Pending;
  if (impl_->dropped.contains(link)) return LinkState::Dropped;
  return LinkState::Absent;
}

std::vector<Hash> TeamGraph::invalid() const {
  std::vector<Hash> out;
  for (std::uint32_t n = 0; n < impl_->store.nodes.size(); ++n) {
    if (!impl_->evaluated || !impl_->fin().valid[n]) out.push_back(impl_->store.nodes[n].hash);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Hash> TeamGraph::dropped() const {
  std::vector<Hash> out(impl_->dropped.begin(), impl_->dropped.end());
  for (const auto& [h, p] : impl_->pending) out.push_back(h);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Hash> TeamGraph::missingPrev(std::size_t max) const {
  std::set<Hash> out;
  for (const auto& [h, p] : impl_->pending) {
    for (const Hash& prev : p.link.parsed.prev) {
      if (!impl_->store.byHash.contains(prev) && !impl_->pending.contains(prev)) out.insert(prev);
    }
  }
  std::vector<Hash> list(out.begin(), out.end());
  if (list.size() > max) list.resize(max);
  return list;
}

std::vector<Hash> TeamGraph::unbacked() const {
  std::vector<Hash> out;
  for (std::uint32_t n = 0; n < impl_->store.nodes.size(); ++n) {
    if (impl_->isUnbacked(n)) out.push_back(impl_->store.nodes[n].hash);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Hash> TeamGraph::heads() const {
  std::vector<Hash> out;
  for (std::uint32_t n = 0; n < impl_->store.nodes.size(); ++n) {
    if (!impl_->store.namedAsPrev[n]) out.push_back(impl_->store.nodes[n].hash);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t TeamGraph::size() const noexcept { return impl_->store.nodes.size(); }
std::size_t TeamGraph::pendingCount() const noexcept { return impl_->pending.size(); }
int TeamGraph::passes() const noexcept { return impl_->evaluated ? impl_->eval.passes() : 0; }

std::vector<std::pair<Key, std::uint64_t>> TeamGraph::deviceVector() const {
  const detail::Store& st = impl_->store;
  std::vector<std::pair<Key, std::uint64_t>> out;
  for (std::uint32_t d = 0; d < st.keys.size(); ++d) {
    if (const std::uint64_t largest = impl_->largestSeq(d); largest > 0) {
      out.emplace_back(st.keys[d], largest);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::vector<Bytes>> TeamGraph::linksBeyond(
    std::span<const std::pair<Key, std::uint64_t>> peerVector, std::size_t maxBatchBytes) const {
  const detail::Store& st = impl_->store;
  std::unordered_map<std::uint32_t, std::uint64_t> peer;
  for (const auto& [key, seq] : peerVector) {
    if (auto d = st.findKey(key)) peer[*d] = seq;
  }
  std::vector<std::vector<Bytes>> out;
  std::size_t batchBytes = 0;
  for (std::uint32_t n : st.order) {
    const Node& l = st.nodes[n];
    auto it = peer.find(l.dev);
    if (it != peer.end() && l.seq <= it->second) continue;
    Bytes message = encodeLink(l.body, l.signature);
    if (out.empty() || (batchBytes + message.size() > maxBatchBytes && batchBytes > 0)) {
      out.emplace_back();
      batchBytes = 0;
    }
    batchBytes += message.size();
    out.back().push_back(std::move(message));
  }
  return out;
}

void TeamGraph::forEachLink(const std::function<void(const StoredLink&)>& fn) const {
  for (std::uint32_t n : impl_->store.order) {
    const Node& l = impl_->store.nodes[n];
    fn(StoredLink{l.hash, l.body, l.signature, l.depth,
                  impl_->evaluated && impl_->fin().valid[n] != 0, l.unknown});
  }
}

std::optional<StoredLink> TeamGraph::find(const Hash& link) const {
  auto it = impl_->store.byHash.find(link);
  if (it == impl_->store.byHash.end()) return std::nullopt;
  const Node& l = impl_->store.nodes[it->second];
  return StoredLink{l.hash, l.body, l.signature, l.depth,
                    impl_->evaluated && impl_->fin().valid[it->second] != 0, l.unknown};
}

std::uint64_t TeamGraph::lastSeqOf(const Key& device) const {
  auto k = impl_->store.findKey(device);
  return k ? impl_->largestSeq(*k) : 0;
}

std::optional<Hash> TeamGraph::lastLinkOf(const Key& device) const {
  const detail::Store& st = impl_->store;
  auto k = st.findKey(device);
  if (!k) return std::nullopt;
  std::optional<std::uint32_t> best;
  for (std::uint32_t n : st.linksOfDev[*k]) {
    if (!best || st.nodes[n].seq > st.nodes[*best].seq ||
        (st.nodes[n].seq == st.nodes[*best].seq && st.tBefore(*best, n))) {
      best = n;
    }
  }
  if (!best) return std::nullopt;
  return st.nodes[*best].hash;
}

std::string TeamGraph::founder() const {
  const detail::Store& st = impl_->store;
  return st.root == kNone ? std::string() : st.users[st.founderUser];
}

}  // namespace portcullis::team
