// The passes of §4.4, the iteration of §4.6 and the state of a cut (§4.3) over per-entity event
// lists; see evaluator.h. Each query filters an entity's few events by exact ancestry, so a pass
// authorizes each link in time independent of the size of the team.
#include "evaluator.h"

#include <algorithm>
#include <stdexcept>

#include "contests.h"

namespace portcullis::team::detail {

// ---------------------------------------------------------------------------------------------
// PassState

void PassState::reset(std::size_t nodes) {
  valid.assign(nodes, 0);
  info.assign(nodes, Info{});
  order.clear();
  lists_.clear();
  journal_.clear();
}

void PassState::rollback(std::uint32_t p, const std::vector<std::uint32_t>& tpos) {
  while (!journal_.empty() && tpos[journal_.back().second] >= p) {
    lists_[journal_.back().first].pop_back();
    journal_.pop_back();
  }
  while (!order.empty() && tpos[order.back()] >= p) order.pop_back();
  valid.resize(tpos.size(), 0);
  info.resize(tpos.size());
}

// ---------------------------------------------------------------------------------------------
// Store

std::uint32_t Store::internKey(const Key& k) {
  auto [it, added] = keyIndex.try_emplace(k, static_cast<std::uint32_t>(keys.size()));
  if (added) {
    keys.push_back(k);
    linksOfDev.emplace_back();
    twinned.push_back(0);
  }
  return it->second;
}

std::uint32_t Store::internUser(const std::string& u) {
  auto [it, added] = userIndex.try_emplace(u, static_cast<std::uint32_t>(users.size()));
  if (added) users.push_back(u);
  return it->second;
}

std::uint32_t Store::internRole(const std::string& r) {
  auto [it, added] = roleIndex.try_emplace(r, static_cast<std::uint32_t>(roleNames.size()));
  if (added) roleNames.push_back(r);
  return it->second;
}

namespace {
std::string accessKeyBytes(const AccessKey& k) {
  std::string out;
  if (k.document) {
    out.push_back('d');
    out.append(reinterpret_cast<const char*>(k.document->data()), k.document->size());
  } else {
    out.push_back('*');
  }
  out.push_back(static_cast<char>(k.principal.kind));
  if (k.principal.kind == Principal::Kind::Server) {
    out.append(reinterpret_cast<const char*>(k.principal.server.data()), k.principal.server.size());
  } else {
    out.append(k.principal.name);
  }
  return out;
}
}  // namespace

std::uint32_t Store::internAccess(const AccessKey& k) {
  auto [it, added] =
      accessIndex.try_emplace(accessKeyBytes(k), static_cast<std::uint32_t>(accessKeys.size()));
  if (added) accessKeys.push_back(k);
  return it->second;
}

std::optional<std::uint32_t> Store::findAccess(const AccessKey& k) const {
  auto it = accessIndex.find(accessKeyBytes(k));
  if (it == accessIndex.end()) return std::nullopt;
  return it->second;
}

std::optional<std::uint32_t> Store::findKey(const Key& k) const {
  auto it = keyIndex.find(k);
  if (it == keyIndex.end()) return std::nullopt;
  return it->second;
}

std::optional<std::uint32_t> Store::findUser(std::string_view u) const {
  auto it = userIndex.find(std::string(u));
  if (it == userIndex.end()) return std::nullopt;
  return it->second;
}

std::uint32_t Store::vvAt(const Node& n, std::uint32_t dev) const {
  auto it = std::lower_bound(n.vv.begin(), n.vv.end(), std::make_pair(dev, std::uint32_t{0}));
  return it != n.vv.end() && it->first == dev ? it->second : 0;
}

bool Store::ancestor(std::uint32_t a, std::uint32_t b) const {
  if (a == b) return false;
  const Node& A = nodes[a];
  const Node& B = nodes[b];
  if (A.depth >= B.depth) return false;
  // Check 4: B's own device has seqs below B's in its past, so a link of that device with B's
  // seq or more is not there (B's twin, before B is stored and its device marked twinned).
  if (A.dev == B.dev && A.seq >= B.seq) return false;
  if (!twinned[A.dev]) return vvAt(B, A.dev) >= A.seq;
  // A twinned device's seq no longer names one link: walk B's past (§4.2), never below A.
  std::vector<std::uint32_t> todo(B.prev.begin(), B.prev.end());
  std::vector<std::uint32_t> seen;
  while (!todo.empty()) {
    std::uint32_t x = todo.back();
    todo.pop_back();
    if (x == a) return true;
    const Node& X = nodes[x];
    if (X.depth <= A.depth || vvAt(X, A.dev) < A.seq) continue;
    if (std::find(seen.begin(), seen.end(), x) != seen.end()) continue;
    seen.push_back(x);
    todo.insert(todo.end(), X.prev.begin(), X.prev.end());
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Recording a valid link's events

namespace {

using K = PassState;

void introducedDevices(const Node& l, std::vector<std::uint32_t>& out) {
  out.clear();
  if (l.type == ActionType::AddMember) {
    out = l.newDevs;
  } else if (l.type == ActionType::Root || l.type == ActionType::AdmitMember ||
             l.type == ActionType::AdmitDevice || l.type == ActionType::AddDevice) {
    out.push_back(l.targetDev);
  }
}

}  // namespace

void recordValid(const Store& st, PassState& s, std::uint32_t n, const Info& info) {
  const Node& l = st.nodes[n];
  s.valid[n] = 1;
  s.info[n] = info;
  s.order.push_back(n);
  s.add(K::key(K::kByInst, info.inst), n);
  s.add(K::key(K::kByDev, l.dev), n);
  if (info.newInstance) {
    s.add(K::key(K::kUserInst, l.targetUser), n);
    for (std::uint32_t r : l.roles) {
      s.add(K::key(K::kGrant, n, r), n);
      s.add(K::key(K::kRoleOf, n), n);
    }
  }
  if (info.introOwner != kNone) {
    s.add(K::key(K::kInstIntro, info.introOwner), n);
    if (l.type == ActionType::AddMember) {
      for (std::uint32_t d : l.newDevs) s.add(K::key(K::kDevIntro, d), n);
    } else {
      s.add(K::key(K::kDevIntro, l.targetDev), n);
    }
  }
  switch (l.type) {
    case ActionType::RemoveMember: s.add(K::key(K::kInstEnd, info.target), n); break;
    case ActionType::RemoveDevice: s.add(K::key(K::kDevRemoval, l.targetDev), n); break;
    case ActionType::AddMemberRole:
      s.add(K::key(K::kGrant, info.target, l.role), n);
      s.add(K::key(K::kRoleOf, info.target), n);
      break;
    case ActionType::RemoveMemberRole: s.add(K::key(K::kRevoke, info.target, l.role), n); break;
    case ActionType::InviteDevice:
      s.add(K::key(K::kDevInvite, l.dev), n);
      s.add(K::key(K::kDevInviteAny, l.dev), n);
      break;
    case ActionType::InviteMember: s.add(K::key(K::kDevInviteAny, l.dev), n); break;
    case ActionType::RevokeInvitation: s.add(K::key(K::kInvRevoke, l.invitation), n); break;
    case ActionType::AdmitMember:
      s.add(K::key(K::kInvUse, l.invitation), n);
      s.add(K::key(K::kInviterAdmit, info.inviter), n);
      break;
    case ActionType::AdmitDevice:
      s.add(K::key(K::kInvUse, l.invitation), n);
      s.add(K::key(K::kInviterAdmit, info.inviter), n);
      s.add(K::key(K::kInto, info.introOwner), n);
      break;
    case ActionType::AddDevice: s.add(K::key(K::kInto, info.introOwner), n); break;
    case ActionType::AddServer: s.add(K::key(K::kSrvAdd, l.targetDev), n); break;
    case ActionType::RemoveServer: s.add(K::key(K::kSrvRemove, l.targetDev), n); break;
    case ActionType::SetDocumentAccess: s.add(K::key(K::kAccess, l.accessKey), n); break;
    default: break;
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluator: state of a cut

Evaluator::Evaluator(const Store& store, std::vector<std::uint8_t> inSet)
    : store_(store), inSet_(std::move(inSet)) {}

std::uint32_t Evaluator::current(const PassState& s, Cut c, std::uint32_t user) const {
  std::uint32_t found = kNone;
  int count = 0;
  for (std::uint32_t i : s.get(K::key(K::kUserInst, user))) {
    if (!store_.inCut(i, c)) continue;
    bool ended = false;
    for (std::uint32_t e : s.get(K::key(K::kInstEnd, i))) {
      if (store_.inCut(e, c)) {
        ended = true;
        break;
      }
    }
    if (!ended) {
      ++count;
      found = i;
    }
  }
  return count == 1 ? found : kNone;
}

bool Evaluator::live(const PassState& s, Cut c, std::uint32_t user) const {
  for (std::uint32_t i : s.get(K::key(K::kUserInst, user))) {
    if (!store_.inCut(i, c)) continue;
    bool ended = false;
    for (std::uint32_t e : s.get(K::key(K::kInstEnd, i))) ended = ended || store_.inCut(e, c);
    if (!ended) return true;
  }
  return false;
}

bool Evaluator::ever(const PassState& s, Cut c, std::uint32_t user) const {
  for (std::uint32_t i : s.get(K::key(K::kUserInst, user))) {
    if (store_.inCut(i, c)) return true;
  }
  return false;
}

bool Evaluator::twinnedIn(Cut c, std::uint32_t dev) const {
  if (!store_.twinned[dev]) return false;
  std::vector<std::uint32_t> seqs;
  for (std::uint32_t n : store_.linksOfDev[dev]) {
    if (member(n) && store_.inCut(n, c)) seqs.push_back(store_.nodes[n].seq);
  }
  std::sort(seqs.begin(), seqs.end());
  return std::adjacent_find(seqs.begin(), seqs.end()) != seqs.end();
}

std::uint32_t Evaluator::device(const PassState& s, Cut c, std::uint32_t dev) const {
  std::uint32_t intro = kNone;
  for (std::uint32_t i : s.get(K::key(K::kDevIntro, dev))) {
    if (!store_.inCut(i, c)) continue;
    if (intro != kNone) return kNone;  // introduced twice: nobody's
    intro = i;
  }
  if (intro == kNone) return kNone;
  for (std::uint32_t r : s.get(K::key(K::kDevRemoval, dev))) {
    if (store_.inCut(r, c)) return kNone;
  }
  if (twinnedIn(c, dev)) return kNone;
  std::uint32_t owner = s.info[intro].introOwner;
  return current(s, c, store_.nodes[owner].targetUser) == owner ? owner : kNone;
}

bool Evaluator::fresh(const PassState& s, Cut c, std::uint32_t dev) const {
  if (dev == store_.recovery) return false;
  for (std::uint32_t i : s.get(K::key(K::kDevIntro, dev))) {
    if (store_.inCut(i, c)) return false;
  }
  for (std::uint32_t i : s.get(K::key(K::kSrvAdd, dev))) {
    if (store_.inCut(i, c)) return false;
  }
  return true;
}

bool Evaluator::has(const PassState& s, Cut c, std::uint32_t inst, std::uint32_t role) const {
  if (role == store_.adminRole && inst == store_.root) return true;  // the founder, for ever
  const auto& revokes = s.get(K::key(K::kRevoke, inst, role));
  for (std::uint32_t g : s.get(K::key(K::kGrant, inst, role))) {
    if (!store_.inCut(g, c)) continue;
    bool standing = true;
    for (std::uint32_t r : revokes) {
      if (store_.inCut(r, c) && !store_.ancestor(r, g)) {
        standing = false;
        break;
      }
    }
    if (standing) return true;
  }
  return false;
}

std::size_t Evaluator::ndevices(const PassState& s, Cut c, std::uint32_t inst) const {
  std::vector<std::uint32_t> devs;
  std::vector<std::uint32_t> introduced;
  for (std::uint32_t i : s.get(K::key(K::kInstIntro, inst))) {
    if (!store_.inCut(i, c)) continue;
    introducedDevices(store_.nodes[i], introduced);
    devs.insert(devs.end(), introduced.begin(), introduced.end());
  }
  std::sort(devs.begin(), devs.end());
  devs.erase(std::unique(devs.begin(), devs.end()), devs.end());
  std::size_t count = 0;
  for (std::uint32_t d : devs) count += device(s, c, d) == inst;
  return count;
}

bool Evaluator::revoked(const PassState& s, Cut c, std::uint32_t inv) const {
  for (std::uint32_t r : s.get(K::key(K::kInvRevoke, inv))) {
    if (store_.inCut(r, c)) return true;
  }
  const Node& i = store_.nodes[inv];
  if (i.type == ActionType::InviteDevice) {  // F7/N7: a later device invitation of its device
    for (std::uint32_t h : s.get(K::key(K::kDevInvite, i.dev))) {
      if (store_.inCut(h, c) && store_.ancestor(inv, h)) return true;
    }
  }
  for (std::uint32_t r : s.get(K::key(K::kDevRemoval, i.dev))) {  // P3: its device's removal
    if (store_.inCut(r, c) && store_.ancestor(inv, r)) return true;
  }
  return false;
}

std::size_t Evaluator::uses(const PassState& s, Cut c, std::uint32_t inv) const {
  std::size_t n = 0;
  for (std::uint32_t a : s.get(K::key(K::kInvUse, inv))) n += store_.inCut(a, c);
  return n;
}

bool Evaluator::server(const PassState& s, std::uint32_t key) const {
  const auto& removes = s.get(K::key(K::kSrvRemove, key));
  for (std::uint32_t a : s.get(K::key(K::kSrvAdd, key))) {
    bool standing = true;
    for (std::uint32_t r : removes) standing = standing && store_.ancestor(r, a);
    if (standing) return true;
  }
  return false;
}

std::optional<Level> Evaluator::entry(const PassState& s, std::uint32_t accessKey) const {
  const auto& es = s.get(K::key(K::kAccess, accessKey));
  std::optional<Level> out;
  for (std::uint32_t h : es) {
    bool front = true;
    for (std::uint32_t h2 : es) front = front && !store_.ancestor(h, h2);
    if (!front) continue;
    Level lv = store_.nodes[h].level;
    if (!out || lv < *out) out = lv;
  }
  return out;
}

std::vector<std::uint32_t> Evaluator::rolesOf(const PassState& s, std::uint32_t inst) const {
  std::vector<std::uint32_t> candidates;
  if (inst == store_.root) candidates.push_back(store_.adminRole);
  for (std::uint32_t g : s.get(K::key(K::kRoleOf, inst))) {
    const Node& l = store_.nodes[g];
    if (l.type == ActionType::AddMemberRole) {
      candidates.push_back(l.role);
    } else {
      candidates.insert(candidates.end(), l.roles.begin(), l.roles.end());
    }
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  std::vector<std::uint32_t> out;
  for (std::uint32_t r : candidates) {
    if (has(s, Cut{}, inst, r)) out.push_back(r);
  }
  return out;
}

Level Evaluator::memberLevel(std::uint32_t user, const std::optional<DocId>& doc) const {
  const PassState& s = final();
  std::uint32_t inst = current(s, Cut{}, user);
  if (inst == kNone) return Level::None;
  std::vector<std::uint32_t> roles = rolesOf(s, inst);
  auto lookup = [&](const std::optional<DocId>& scope, Principal p) -> std::optional<Level> {
    auto k = store_.findAccess(AccessKey{scope, std::move(p)});
    return k ? entry(s, *k) : std::nullopt;
  };
  std::vector<std::optional<DocId>> scopes;
  if (doc) scopes.push_back(doc);
  scopes.emplace_back(std::nullopt);
  for (const auto& scope : scopes) {
    if (auto e = lookup(scope, Principal{Principal::Kind::Member, store_.users[user], {}})) {
      return *e;
    }
    std::optional<Level> best;
    for (std::uint32_t r : roles) {
      auto e = lookup(scope, Principal{Principal::Kind::Role, store_.roleNames[r], {}});
      if (e && (!best || *e > *best)) best = e;
    }
    if (best) return *best;
    if (auto e = lookup(scope, Principal{Principal::Kind::Everyone, {}, {}})) return *e;
  }
  return Level::Write;
}

Level Evaluator::serverLevel(std::uint32_t key, const std::optional<DocId>& doc) const {
  const PassState& s = final();
  if (!server(s, key)) return Level::None;
  std::vector<std::optional<DocId>> scopes;
  if (doc) scopes.push_back(doc);
  scopes.emplace_back(std::nullopt);
  for (const auto& scope : scopes) {
    auto k = store_.findAccess(
        AccessKey{scope, Principal{Principal::Kind::Server, {}, store_.keys[key]}});
    if (auto e = k ? entry(s, *k) : std::nullopt) return std::min(*e, Level::Read);
  }
  return Level::Read;
}

// ---------------------------------------------------------------------------------------------
// Authorization (§3)

Info Evaluator::rootInfo() const {
  Info info;
  info.inst = store_.root;
  info.newInstance = true;
  info.introOwner = store_.root;
  return info;
}

std::optional<Info> Evaluator::authorize(const PassState& s, std::uint32_t n,
                                         bool withRivals, const char** why) const {
  const Node& l = store_.nodes[n];
  const Cut c{n};
  auto refuse = [why](const char* reason) -> std::optional<Info> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  if (l.unknown || l.type == ActionType::Unknown) {
    return refuse("an action of a later version (stored and relayed, never valid here)");
  }
  if (l.type == ActionType::Root) return refuse("a second root");
  if (l.type == ActionType::RotateKeys || l.lockboxes) {  // version 3 (§2.4)
    return refuse("team keys or lockboxes, which a version-3 team does not have");
  }

  auto room = [&](std::uint32_t y) {
    std::size_t rivals = 0;
    if (withRivals) {
      for (std::uint32_t h : s.get(K::key(K::kInto, y))) rivals += !store_.ancestor(h, n);
    }
    return ndevices(s, c, y) + rivals < kMaxDevicesPerInstance;
  };
  const std::uint32_t founder = store_.root;

  if (l.dev == store_.recovery && l.user == store_.founderUser) {  // founder devices only
    if (twinnedIn(c, l.dev)) return refuse("the recovery key signed two links with one deviceSeq");
    Info info;
    info.inst = founder;
    if (l.type == ActionType::AddDevice && l.targetUser == store_.founderUser &&
        fresh(s, c, l.targetDev) && room(founder)) {
      info.introOwner = founder;
      return info;
    }
    if (l.type == ActionType::RemoveDevice && device(s, c, l.targetDev) == founder) return info;
    return refuse("the recovery key may only add a fresh founder device (with room) or remove "
                  "a current founder device");
  }

  const std::uint32_t x = device(s, c, l.dev);
  if (x == kNone || store_.nodes[x].targetUser != l.user) {
    return refuse("its author was not a current device of that member in the link's past");
  }
  const bool admin = has(s, c, x, store_.adminRole);
  auto senior = [&](std::uint32_t y) { return store_.senior(x, y); };
  Info info;
  info.inst = x;

  switch (l.type) {
    case ActionType::AddMember: {
      if (!admin) return refuse("only an admin may add a member");
      if (live(s, c, l.targetUser)) return refuse("that userId is already a member");
      for (std::uint32_t d : l.newDevs) {
        if (!fresh(s, c, d)) return refuse("a device it adds is already in use (not fresh)");
      }
      info.admin = true;
      info.newInstance = true;
      info.introOwner = n;
      return info;
    }
    case ActionType::InviteMember:
      if (!admin) return refuse("only an admin may invite members");
      info.admin = true;
      info.inviter = x;
      info.maxUses = l.maxUses;
      return info;
    case ActionType::InviteDevice:
      info.inviter = x;
      info.maxUses = 1;
      return info;
    case ActionType::RevokeInvitation: {
      const std::uint32_t inv = l.invitation;
      if (!s.valid[inv] || !store_.inCut(inv, c)) return refuse("the invitation is not valid");
      const std::uint32_t inviter = s.info[inv].inviter;
      if (inviter != x && !admin) return refuse("only the inviter or an admin may revoke it");
      info.admin = inviter != x;
      return info;
    }
    case ActionType::AdmitMember:
    case ActionType::AdmitDevice: {
      const std::uint32_t inv = l.invitation;
      if (!s.valid[inv] || !store_.inCut(inv, c)) return refuse("the invitation is not valid");
      if (revoked(s, c, inv)) return refuse("the invitation was revoked or ended");
      const Info& iv = s.info[inv];
      if (current(s, c, store_.nodes[iv.inviter].targetUser) != iv.inviter) {
        return refuse("the inviter is no longer a member");
      }
      if (iv.maxUses != 0 && uses(s, c, inv) >= iv.maxUses) {
        return refuse("the invitation was used up");
      }
      if (!fresh(s, c, l.targetDev)) return refuse("the device is already in use (not fresh)");
      info.inviter = iv.inviter;
      info.maxUses = iv.maxUses;
      if (l.type == ActionType::AdmitDevice) {
        if (!room(iv.inviter)) return refuse("the member already has 16 devices");
        info.introOwner = iv.inviter;
        return info;
      }
      if (!has(s, c, iv.inviter, store_.adminRole)) return refuse("the inviter is no admin");
      if (ever(s, c, l.targetUser)) return refuse("that userId was a member before");
      info.newInstance = true;
      info.introOwner = n;
      return info;
    }
    case ActionType::AddDevice: {
      const std::uint32_t y = current(s, c, l.targetUser);
      if (y != x) return refuse("a member may add devices only to itself");
      if (!fresh(s, c, l.targetDev)) return refuse("the device is already in use (not fresh)");
      if (!room(y)) return refuse("the member already has 16 devices");
      info.introOwner = y;
      return info;
    }
    case ActionType::RemoveDevice: {
      const std::uint32_t y = device(s, c, l.targetDev);
      if (y == kNone) return refuse("that device is not a current member device");
      if (!(y == x || (admin && senior(y)))) {
        return refuse("only its own member or a senior admin may remove a device");
      }
      info.admin = y != x;
      return info;
    }
    case ActionType::RemoveMember: {
      const std::uint32_t y = current(s, c, l.targetUser);
      if (y == kNone) return refuse("that userId is not a member");
      if (y == x && x == founder) return refuse("the founder cannot leave");
      if (!(y == x || (admin && senior(y)))) {
        return refuse("only a senior admin may remove a member");
      }
      info.admin = y != x;
      info.target = y;
      return info;
    }
    case ActionType::AddMemberRole: {
      const std::uint32_t y = current(s, c, l.targetUser);
      if (y == kNone) return refuse("that userId is not a member");
      if (!admin) return refuse("only an admin may grant roles");
      info.admin = true;
      info.target = y;
      return info;
    }
    case ActionType::RemoveMemberRole: {
      const std::uint32_t y = current(s, c, l.targetUser);
      if (y == kNone) return refuse("that userId is not a member");
      if (y == x) {  // dropping one's own role; the founder never drops admin
        if (l.role == store_.adminRole && x == founder) {
          return refuse("the founder is an admin for ever");
        }
        info.target = y;
        return info;
      }
      if (!admin || !senior(y)) return refuse("only a senior admin may remove another's role");
      info.admin = true;
      info.target = y;
      info.demotion = l.role == store_.adminRole;
      return info;
    }
    case ActionType::SetDocumentAccess:
    case ActionType::AddServer:
    case ActionType::RemoveServer: {
      if (!admin) return refuse("only an admin may change servers or document access");
      if (l.type == ActionType::AddServer) {
        for (std::uint32_t i : s.get(K::key(K::kDevIntro, l.targetDev))) {
          if (store_.inCut(i, c)) return refuse("that key is a member device");
        }
      }
      if (l.type == ActionType::SetDocumentAccess && l.principalUser != kNone) {
        const std::uint32_t y = current(s, c, l.principalUser);
        if (y != kNone && y != x && !senior(y)) {
          return refuse("only the member itself or a senior admin may set its access");
        }
      }
      info.admin = true;
      return info;
    }
    default:
      return refuse("not an action a member may sign");
  }
}

// ---------------------------------------------------------------------------------------------
// Passes and the iteration

void Evaluator::runPass(const std::vector<std::uint8_t>& kills, PassState& out,
                        std::uint32_t from) const {
  if (from == 0) {
    out.reset(store_.nodes.size());
  } else {
    out.rollback(from, store_.tpos);
  }
  for (std::size_t i = from; i < order_.size(); ++i) {
    const std::uint32_t n = order_[i];
    out.valid[n] = 0;
    if (n == store_.root) {
      recordValid(store_, out, n, rootInfo());
      continue;
    }
    if (!kills.empty() && kills[n]) continue;
    if (auto info = authorize(out, n, true)) recordValid(store_, out, n, *info);
  }
}

std::vector<std::uint8_t> Evaluator::resting(const PassState& pass,
                                             const std::vector<std::uint32_t>& victims) const {
  std::vector<std::uint8_t> kills(store_.nodes.size(), 1);
  for (std::uint32_t n : pass.order) kills[n] = 0;
  for (std::uint32_t v : victims) kills[v] = 1;
  runPass(kills, side_, 0);
  std::vector<std::uint8_t> out(store_.nodes.size(), 0);
  for (std::uint32_t n : pass.order) out[n] = !side_.valid[n];
  return out;
}

void Evaluator::evaluate(std::optional<std::uint32_t> resumeFrom) {
  if (inSet_.empty()) {
    order_ = store_.order;
  } else {
    order_.clear();
    for (std::uint32_t n : store_.order) {
      if (inSet_[n]) order_.push_back(n);
    }
  }
  PORTCULLIS_TEAM_CHECK(!inSet_.empty() || !resumeFrom || *resumeFrom <= order_.size());
  active_.assign(store_.nodes.size(), 0);
  std::vector<std::uint8_t> kills;  // K, empty in pass 1
  runPass(kills, pass1, resumeFrom.value_or(0));
  passes_ = 1;
  std::vector<std::uint32_t> found = computeKills(*this, pass1, active_);
  const PassState* last = &pass1;
  kills.assign(store_.nodes.size(), 0);
  while (true) {
    bool grew = false;
    for (std::uint32_t k : found) {
      if (!kills[k]) {
        kills[k] = 1;
        grew = true;
      }
    }
    if (!grew) break;
    runPass(kills, work_, 0);
    ++passes_;
    last = &work_;
    found = computeKills(*this, work_, active_);
  }
  final_ = last;
  killed_ = std::move(kills);
}

}  // namespace portcullis::team::detail
