// providers/team/evaluator.h — internals of TeamGraph: the stored links as compact nodes with
// everything that does not depend on validity (checks 3–5, depth, T order, version vectors),
// and the evaluation of §4: passes in T order against per-entity event lists, the iteration of
// §4.6 and the state of a cut (§4.3, §4.7, §9). The contests and kills of §4.5 are in
// contests.h, behind this file's pass machinery.
//
// Not thread-safe: one owner, the TeamGraph.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "link.h"
#include "portcullis/types.h"

// An invariant of the graph; a failure is a bug (a provider cannot use the core's internal
// PORTCULLIS_ASSERT).
#define PORTCULLIS_TEAM_CHECK(cond)                                                         \
  do {                                                                                      \
    if (!(cond)) [[unlikely]]                                                               \
      throw std::logic_error(std::string("team graph invariant failed: ") + #cond);         \
  } while (false)

namespace portcullis::team::detail {

inline constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
inline constexpr std::size_t kMaxDevicesPerInstance = 16;  // §3 room

// One stored link. Indices name interned devices (or server keys), userIds and roles, and other
// nodes (by their index in Store::nodes).
struct Node {
  Hash hash{};
  Bytes body;
  Signature signature{};
  ActionType type = ActionType::Unknown;
  bool unknown = false;        // check 1: a later version's link (stored, invalid for ever)
  bool lockboxes = false;      // a non-null lockbox list (invalid in version 3, §2.4)
  std::uint32_t dev = kNone;   // author device
  std::uint32_t user = kNone;  // author userId
  std::uint32_t seq = 0;
  std::uint32_t depth = 0;
  std::vector<std::uint32_t> prev;
  // The action, interned. Which fields are set depends on `type`.
  std::uint32_t targetUser = kNone;   // addMember/admitMember/addDevice/removeMember/roles
  std::uint32_t targetDev = kNone;    // removeDevice; the device an admission/addDevice adds;
                                      // addServer/removeServer's server key
  std::vector<std::uint32_t> newDevs;  // addMember's devices
  std::vector<std::uint32_t> roles;    // addMember's roles
  std::uint32_t role = kNone;          // add/removeMemberRole
  std::uint32_t invitation = kNone;    // admissions, revokeInvitation: the invitation's node
  Key inviteKey{};                     // invitations: the invitation's public key
  std::uint64_t expiresAt = 0;         // invitations: ms since 1970, 0 = never
  std::uint32_t maxUses = 0;           // invitations
  std::uint32_t accessKey = kNone;     // setDocumentAccess: interned (document, principal)
  Level level = Level::None;
  std::uint32_t principalUser = kNone;  // setDocumentAccess to `member u`
  // (userId, device) pairs this link introduces (§2.3 check 5′): root, addMember, admitMember,
  // addDevice, admitDevice (the invitation's author userId).
  std::vector<std::pair<std::uint32_t, std::uint32_t>> intros;
  // Version vector over past(L) ∪ {L}: (device, largest deviceSeq), ascending by device.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> vv;
};

// What a valid link established in a pass (the model's `info`).
struct Info {
  std::uint32_t inst = kNone;     // the author's instance (admission node)
  bool admin = false;             // needed the admin role (**A**, §3)
  bool newInstance = false;       // root, addMember, admitMember: this node starts an instance
  std::uint32_t introOwner = kNone;  // owner instance of the devices it introduces
  std::uint32_t target = kNone;   // removeMember/roles: the target instance
  bool demotion = false;
  std::uint32_t inviter = kNone;  // invitations and admissions: the inviter instance
  std::uint32_t maxUses = 0;      // invitations and admissions: the invitation's maxUses
};

// The access entries' interned key: a document (or "*") and a principal.
struct AccessKey {
  std::optional<DocId> document;
  Principal principal;
  friend bool operator==(const AccessKey&, const AccessKey&) = default;
};

class Store;

// Event lists of one pass: for each entity, the links valid in this pass that concern it, in T
// order (a journal lets a pass be rolled back to a T position and resumed, §4.8).
class PassState {
 public:
  enum Kind : std::uint8_t {
    kDevIntro,     // device -> links introducing it
    kDevRemoval,   // device -> removeDevice links
    kUserInst,     // userId -> links starting an instance of it
    kInstEnd,      // instance -> removeMember links ending it
    kInstIntro,    // instance -> links introducing a device into it
    kGrant,        // (instance, role) -> grants
    kRevoke,       // (instance, role) -> removeMemberRole links
    kInvRevoke,    // invitation -> revokeInvitation links
    kInvUse,       // invitation -> admissions through it
    kDevInvite,    // device -> inviteDevice links it authored
    kDevInviteAny, // device -> invitations (member or device) it authored
    kSrvAdd,       // server key -> addServer links
    kSrvRemove,    // server key -> removeServer links
    kAccess,       // access key -> setDocumentAccess links
    kInto,         // instance -> addDevice/admitDevice into it (§3 room's rivals)
    kByInst,       // instance -> links its devices authored
    kByDev,        // device -> links it authored
    kInviterAdmit, // inviter instance -> admissions through its invitations
    kRoleOf,       // instance -> grants to it (any role)
  };
  static std::uint64_t key(Kind k, std::uint32_t a, std::uint32_t b = 0) {
    return (std::uint64_t{k} << 56) | (std::uint64_t{b & 0xFFFFFFu} << 32) | a;
  }

  void reset(std::size_t nodes);
  // Forgets every decision at T position >= p (positions as `tpos` now gives them).
  void rollback(std::uint32_t p, const std::vector<std::uint32_t>& tpos);
  void add(std::uint64_t k, std::uint32_t node) {
    lists_[k].push_back(node);
    journal_.emplace_back(k, node);
  }
  const std::vector<std::uint32_t>& get(std::uint64_t k) const {
    auto it = lists_.find(k);
    return it == lists_.end() ? empty_ : it->second;
  }

  std::vector<std::uint8_t> valid;  // per node
  std::vector<Info> info;           // per node (meaningful where valid)
  std::vector<std::uint32_t> order; // the valid links (V) in T order

 private:
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> lists_;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> journal_;
  std::vector<std::uint32_t> empty_;
};

// A cut (§3): the strict past of a link, or every link of the evaluated set.
struct Cut {
  std::uint32_t of = kNone;  // kNone: the whole set
};

// The stored links and what does not depend on validity.
class Store {
 public:
  std::vector<Node> nodes;
  std::unordered_map<Hash, std::uint32_t, ArrayHash> byHash;
  // T order (§4.1) and each node's position in it.
  std::vector<std::uint32_t> order;
  std::vector<std::uint32_t> tpos;
  // Interning.
  std::vector<Key> keys;
  std::unordered_map<Key, std::uint32_t, ArrayHash> keyIndex;
  std::vector<std::string> users;
  std::unordered_map<std::string, std::uint32_t> userIndex;
  std::vector<std::string> roleNames;
  std::unordered_map<std::string, std::uint32_t> roleIndex;
  std::vector<AccessKey> accessKeys;
  std::unordered_map<std::string, std::uint32_t> accessIndex;
  // Static indexes over stored links.
  std::vector<std::vector<std::uint32_t>> linksOfDev;  // device -> its links
  std::vector<std::uint8_t> twinned;                   // device -> has two links at one seq
  std::unordered_set<std::uint64_t> seqsSeen;          // (device, seq) of every stored link
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> introducers;  // (user, dev)
  // Keys (users, devices, servers) introduced by two or more stored links: K5b's candidates.
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> k5Groups;
  // Invitations with two or more stored admissions: K5a's candidates.
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> admissionsOf;
  std::vector<std::uint64_t> k5Multi;            // the keys of k5Groups with two or more links
  std::vector<std::uint8_t> namedAsPrev;          // node -> some stored link names it in prev

  // Pass 1 of each link's own past (§2.3 check 5′): computed once, when the link is stored.
  PassState p1;

  std::uint32_t root = kNone;
  std::uint32_t founderUser = kNone;
  std::uint32_t recovery = kNone;  // the recovery key, if any
  std::uint32_t adminRole = kNone;
  Hash teamId{};
  std::string teamName;

  std::uint32_t internKey(const Key& k);
  std::uint32_t internUser(const std::string& u);
  std::uint32_t internRole(const std::string& r);
  std::uint32_t internAccess(const AccessKey& k);
  std::optional<std::uint32_t> findAccess(const AccessKey& k) const;
  std::optional<std::uint32_t> findKey(const Key& k) const;
  std::optional<std::uint32_t> findUser(std::string_view u) const;

  // a ∈ past(b): exact (version vectors, or reachability for a twinned device, §4.2).
  bool ancestor(std::uint32_t a, std::uint32_t b) const;
  bool concurrent(std::uint32_t a, std::uint32_t b) const {
    return a != b && !ancestor(a, b) && !ancestor(b, a);
  }
  bool inCut(std::uint32_t a, Cut c) const { return c.of == kNone || ancestor(a, c.of); }
  // T order (§4.1): by depth, then hash bytewise.
  bool tBefore(std::uint32_t x, std::uint32_t y) const {
    const Node& a = nodes[x];
    const Node& b = nodes[y];
    return a.depth != b.depth ? a.depth < b.depth : a.hash < b.hash;
  }
  // Instance x is senior to y (§4.1): its admission link is T-before y's, the rank being that
  // link's (depth, hash).
  bool senior(std::uint32_t x, std::uint32_t y) const { return tBefore(x, y); }
  std::uint32_t vvAt(const Node& n, std::uint32_t dev) const;
};

// Records a valid link's events in `s` (its decision is `info`).
void recordValid(const Store& st, PassState& s, std::uint32_t n, const Info& info);

// One evaluation of a set of stored links (all of them, or the downset of some heads, §8).
class Evaluator {
 public:
  // `inSet`: which nodes belong to the evaluated set (empty: all stored nodes).
  Evaluator(const Store& store, std::vector<std::uint8_t> inSet = {});

  // §4.6 from K = ∅. With `resumeFrom` (a T position), pass 1 reuses `pass1` below that
  // position (§4.8); the caller guarantees pass1 holds the previous evaluation's first pass of a
  // subset of this set that differs only at or after that position.
  void evaluate(std::optional<std::uint32_t> resumeFrom = std::nullopt);

  const Store& store() const { return store_; }
  const std::vector<std::uint32_t>& order() const { return order_; }
  bool member(std::uint32_t n) const { return inSet_.empty() || inSet_[n]; }

  // One pass with kill set `kills` (a bitmap over nodes) into `out`, from T position `from`.
  void runPass(const std::vector<std::uint8_t>& kills, PassState& out, std::uint32_t from) const;
  // §4.5 "rests on": the links of V that are invalid in a pass where only V less `victims` may
  // be valid (a side pass; it revalidates nothing).
  std::vector<std::uint8_t> resting(const PassState& pass,
                                    const std::vector<std::uint32_t>& victims) const;

  // The last pass of the last evaluation, and what it found.
  const PassState& final() const { return *final_; }
  int passes() const { return passes_; }
  const std::vector<std::uint8_t>& active() const { return active_; }
  // The kill set K the last evaluation ended with (§4.6).
  bool killed(std::uint32_t n) const { return n < killed_.size() && killed_[n]; }

  // State of a cut against a pass's decisions (§4.3).
  std::uint32_t current(const PassState& s, Cut c, std::uint32_t user) const;
  bool live(const PassState& s, Cut c, std::uint32_t user) const;
  bool ever(const PassState& s, Cut c, std::uint32_t user) const;
  std::uint32_t device(const PassState& s, Cut c, std::uint32_t dev) const;
  bool fresh(const PassState& s, Cut c, std::uint32_t dev) const;
  bool has(const PassState& s, Cut c, std::uint32_t inst, std::uint32_t role) const;
  std::size_t ndevices(const PassState& s, Cut c, std::uint32_t inst) const;
  bool twinnedIn(Cut c, std::uint32_t dev) const;
  bool revoked(const PassState& s, Cut c, std::uint32_t inv) const;
  std::size_t uses(const PassState& s, Cut c, std::uint32_t inv) const;
  bool server(const PassState& s, std::uint32_t key) const;
  std::optional<Level> entry(const PassState& s, std::uint32_t accessKey) const;
  std::vector<std::uint32_t> rolesOf(const PassState& s, std::uint32_t inst) const;
  // §9 levels in the final state.
  Level memberLevel(std::uint32_t user, const std::optional<DocId>& doc) const;
  Level serverLevel(std::uint32_t key, const std::optional<DocId>& doc) const;

  // §3: authorizes node `n` against the state of its past in pass `s` (room's rivals counted
  // from `s`'s T-earlier introductions when `rivals`). nullopt: not authorized, and `*why` (if
  // given) says which rule refused it, for people reading the history.
  std::optional<Info> authorize(const PassState& s, std::uint32_t n, bool rivals,
                                const char** why = nullptr) const;
  Info rootInfo() const;

  PassState pass1;  // the first pass of the last evaluation, kept for §4.8

 private:
  const Store& store_;
  std::vector<std::uint8_t> inSet_;
  std::vector<std::uint32_t> order_;  // the evaluated set in T order
  PassState work_;
  mutable PassState side_;
  const PassState* final_ = nullptr;
  int passes_ = 0;
  std::vector<std::uint8_t> active_;  // valid and not condemned in some pass (§10)
  std::vector<std::uint8_t> killed_;
};

}  // namespace portcullis::team::detail
