// §4.5 of the team spec (v3.7): contests and their victims, "rests on" (side passes), mutual
// answers, rule A with seniority, kills (with K1/K2's later links), K4's forks and K5's
// conflicting admissions. Follows the spec's executable model step by step.
#include "contests.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace portcullis::team::detail {
namespace {

using K = PassState;

struct Contest {
  std::uint32_t link;
  std::vector<std::uint32_t> victims;  // ascending node indices
};

void sortUnique(std::vector<std::uint32_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

bool contains(const std::vector<std::uint32_t>& sorted, std::uint32_t x) {
  return std::binary_search(sorted.begin(), sorted.end(), x);
}

class Kills {
 public:
  Kills(const Evaluator& ev, const PassState& pass)
      : ev_(ev), st_(ev.store()), pass_(pass) {}

  std::vector<std::uint32_t> compute(std::vector<std::uint8_t>& active);

 private:
  std::vector<Contest> contests() const;
  // {contest: the contests that answer it}, for the victim lists of `cs`.
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> answers(
      const std::vector<Contest>& cs) const;
  std::vector<std::uint32_t> forks() const;  // K4's victims
  std::uint32_t inst(std::uint32_t n) const { return pass_.info[n].inst; }
  std::vector<std::uint8_t> resting(const std::vector<std::uint32_t>& victims) const {
    return ev_.resting(pass_, victims);
  }
  // The instance that owns device d in this pass (the last valid introduction of d in T order).
  std::uint32_t owner(std::uint32_t d) const {
    const auto& intros = pass_.get(K::key(K::kDevIntro, d));
    return intros.empty() ? kNone : pass_.info[intros.back()].introOwner;
  }

  const Evaluator& ev_;
  const Store& st_;
  const PassState& pass_;
};

std::vector<Contest> Kills::contests() const {
  std::vector<Contest> out;
  for (std::uint32_t k : pass_.order) {
    const Node& l = st_.nodes[k];
    const Info& info = pass_.info[k];
    std::vector<std::uint32_t> hit;
    if (l.type == ActionType::RemoveMember) {  // K1, a leave included
      const auto& mine = pass_.get(K::key(K::kByInst, info.target));
      const auto& through = pass_.get(K::key(K::kInviterAdmit, info.target));
      hit.insert(hit.end(), mine.begin(), mine.end());
      hit.insert(hit.end(), through.begin(), through.end());
    } else if (l.type == ActionType::RemoveDevice) {  // K2
      const auto& mine = pass_.get(K::key(K::kByDev, l.targetDev));
      hit.insert(hit.end(), mine.begin(), mine.end());
      for (std::uint32_t inv : pass_.get(K::key(K::kDevInviteAny, l.targetDev))) {
        const auto& uses = pass_.get(K::key(K::kInvUse, inv));
        hit.insert(hit.end(), uses.begin(), uses.end());
      }
    } else if (l.type == ActionType::RemoveMemberRole && info.demotion) {  // K3
      for (std::uint32_t m : pass_.get(K::key(K::kByInst, info.target))) {
        if (pass_.info[m].admin) hit.push_back(m);
      }
      for (std::uint32_t m : pass_.get(K::key(K::kInviterAdmit, info.target))) {
        if (st_.nodes[m].type == ActionType::AdmitMember) hit.push_back(m);
      }
    } else {
      continue;
    }
    sortUnique(hit);
    Contest c{k, {}};
    for (std::uint32_t m : hit) {
      if (st_.concurrent(m, k)) c.victims.push_back(m);
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> Kills::answers(
    const std::vector<Contest>& cs) const {
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> next;
  for (const Contest& h : cs) {
    std::vector<std::uint32_t> cand;
    for (const Contest& c : cs) {
      if (c.link == h.link || inst(c.link) != inst(h.link)) continue;
      bool touches = contains(h.victims, c.link);
      for (std::size_t i = 0; !touches && i < h.victims.size(); ++i) {
        touches = st_.ancestor(h.victims[i], c.link);
      }
      if (touches) cand.push_back(c.link);
    }
    auto& out = next[h.link];
    if (cand.empty() || h.victims.empty()) continue;
    std::vector<std::uint8_t> rests = resting(h.victims);
    for (std::uint32_t c : cand) {
      if (rests[c]) out.push_back(c);
    }
  }
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> out;
  for (const Contest& h : cs) {
    std::vector<std::uint32_t> seen;
    std::vector<std::uint32_t> todo{h.link};
    while (!todo.empty()) {
      std::uint32_t x = todo.back();
      todo.pop_back();
      for (std::uint32_t c : next[x]) {
        if (std::find(seen.begin(), seen.end(), c) == seen.end()) {
          seen.push_back(c);
          todo.push_back(c);
        }
      }
    }
    seen.erase(std::remove(seen.begin(), seen.end(), h.link), seen.end());
    sortUnique(seen);
    out[h.link] = std::move(seen);
  }
  return out;
}

std::vector<std::uint32_t> Kills::forks() const {
  std::vector<std::uint32_t> k4;
  for (std::uint32_t d = 0; d < st_.keys.size(); ++d) {
    if (!st_.twinned[d]) continue;
    std::vector<std::uint32_t> seqs;
    for (std::uint32_t n : st_.linksOfDev[d]) {
      if (ev_.member(n)) seqs.push_back(st_.nodes[n].seq);
    }
    std::sort(seqs.begin(), seqs.end());
    auto twin = std::adjacent_find(seqs.begin(), seqs.end());
    if (twin == seqs.end()) continue;
    const std::uint32_t forkSeq = *twin;  // the least seq with two links
    std::vector<std::uint32_t> fork;      // d's valid links from the fork on
    for (std::uint32_t m : pass_.order) {
      if (st_.nodes[m].dev == d && st_.nodes[m].seq >= forkSeq) fork.push_back(m);
    }
    sortUnique(fork);
    // Rule 2: a fork link in the past of a valid link of another device stays (witnessed), if
    // that past holds one branch only; if both branches are witnessed at one seq, only the
    // witnessed links below the least such seq stay.
    std::vector<std::uint32_t> keep;
    for (std::uint32_t l : pass_.order) {
      if (st_.nodes[l].dev == d || contains(fork, l)) continue;
      std::vector<std::uint32_t> hit;
      for (std::uint32_t x : fork) {
        if (st_.ancestor(x, l)) hit.push_back(x);
      }
      if (hit.empty()) continue;
      std::vector<std::uint32_t> hitSeqs;
      for (std::uint32_t x : hit) hitSeqs.push_back(st_.nodes[x].seq);
      std::sort(hitSeqs.begin(), hitSeqs.end());
      if (std::adjacent_find(hitSeqs.begin(), hitSeqs.end()) == hitSeqs.end()) {
        keep.insert(keep.end(), hit.begin(), hit.end());
      }
    }
    sortUnique(keep);
    std::vector<std::uint32_t> keptSeqs;
    for (std::uint32_t x : keep) keptSeqs.push_back(st_.nodes[x].seq);
    std::sort(keptSeqs.begin(), keptSeqs.end());
    auto both = std::adjacent_find(keptSeqs.begin(), keptSeqs.end());
    if (both != keptSeqs.end()) {
      const std::uint32_t least = *both;
      std::erase_if(keep, [&](std::uint32_t x) { return st_.nodes[x].seq >= least; });
    }
    // Rule 1: a fork never kills its device's removals, demotions and revocations.
    for (std::uint32_t x : fork) {
      ActionType t = st_.nodes[x].type;
      if (t == ActionType::RemoveMember || t == ActionType::RemoveMemberRole ||
          t == ActionType::RemoveDevice || t == ActionType::RevokeInvitation) {
        keep.push_back(x);
      }
    }
    sortUnique(keep);
    for (std::uint32_t x : fork) {
      if (!contains(keep, x)) k4.push_back(x);
    }
  }
  sortUnique(k4);
  return k4;
}

std::vector<std::uint32_t> Kills::compute(std::vector<std::uint8_t>& active) {
  std::vector<Contest> cs = contests();
  // Mutual contests (one instance only): (i) a contest is no victim of a contest that answers
  // it; (ii) "answers" again on the reduced victims, for rule A.
  auto ans = answers(cs);
  for (Contest& k : cs) {
    std::erase_if(k.victims, [&](std::uint32_t m) {
      auto it = ans.find(m);
      return it != ans.end() && contains(it->second, k.link);
    });
  }
  ans = answers(cs);
  const std::vector<std::uint32_t> k4 = forks();

  // Rule A: the victims of this pass, and every link resting on them, are condemned.
  std::vector<std::uint32_t> victims = k4;
  for (const Contest& c : cs) victims.insert(victims.end(), c.victims.begin(), c.victims.end());
  sortUnique(victims);
  std::vector<std::uint8_t> condemned =
      victims.empty() ? std::vector<std::uint8_t>(st_.nodes.size(), 0) : resting(victims);
  // A contest is condemned only by the victims of contests that neither answer it nor are
  // authored by an instance junior to its own, and by K4's.
  for (const Contest& k : cs) {
    if (!condemned[k.link]) continue;
    const auto& answering = ans[k.link];
    std::vector<std::uint32_t> rest = k4;
    std::size_t by = 0;
    for (const Contest& c : cs) {
      if (contains(answering, c.link) || st_.senior(inst(k.link), inst(c.link))) continue;
      ++by;
      rest.insert(rest.end(), c.victims.begin(), c.victims.end());
    }
    if (by == cs.size()) continue;
    sortUnique(rest);
    if (rest.empty() || !resting(rest)[k.link]) condemned[k.link] = 0;
  }
  for (std::uint32_t n : pass_.order) {
    if (!condemned[n]) active[n] = 1;
  }

  std::vector<std::uint32_t> kills = k4;
  for (const Contest& k : cs) {
    if (condemned[k.link]) continue;
    kills.insert(kills.end(), k.victims.begin(), k.victims.end());
    // A removal (K1, K2) that kills also kills its target's links signed after it.
    const Node& l = st_.nodes[k.link];
    std::vector<std::uint32_t> devices;
    if (l.type == ActionType::RemoveDevice) {
      devices.push_back(l.targetDev);
    } else if (l.type == ActionType::RemoveMember) {
      const std::uint32_t y = pass_.info[k.link].target;
      for (std::uint32_t i : pass_.get(K::key(K::kInstIntro, y))) {
        const Node& in = st_.nodes[i];
        if (in.type == ActionType::AddMember) {
          for (std::uint32_t d : in.newDevs) devices.push_back(d);
        } else {
          devices.push_back(in.targetDev);
        }
      }
      sortUnique(devices);
      std::erase_if(devices, [&](std::uint32_t d) { return owner(d) != y; });
    }
    for (std::uint32_t d : devices) {
      for (std::uint32_t m : st_.linksOfDev[d]) {
        if (ev_.member(m) && st_.ancestor(k.link, m)) kills.push_back(m);
      }
    }
  }

  // K5: rivals are valid and not condemned.
  auto rival = [&](std::uint32_t n) { return pass_.valid[n] && !condemned[n] && ev_.member(n); };
  for (const auto& [inv, all] : st_.admissionsOf) {  // (a) over-used invitations
    if (all.size() < 2) continue;
    std::vector<std::uint32_t> u;
    for (std::uint32_t a : all) {
      if (rival(a)) u.push_back(a);
    }
    for (std::uint32_t a : u) {
      const std::uint32_t m = pass_.info[a].maxUses;
      if (m == 0) continue;
      std::size_t before = 0;
      std::size_t rivals = 0;
      for (std::uint32_t b : u) {
        before += st_.ancestor(b, a);
        rivals += st_.concurrent(a, b);
      }
      if (rivals > 0 && before + rivals >= m) kills.push_back(a);
    }
  }
  for (std::uint64_t key : st_.k5Multi) {  // (b) one userId or key introduced concurrently
    std::vector<std::uint32_t> g;
    for (std::uint32_t a : st_.k5Groups.at(key)) {
      if (a != st_.root && rival(a)) g.push_back(a);
    }
    for (std::uint32_t a : g) {
      for (std::uint32_t b : g) {
        if (st_.concurrent(a, b)) {
          kills.push_back(a);
          break;
        }
      }
    }
  }
  sortUnique(kills);
  return kills;
}

}  // namespace

std::vector<std::uint32_t> computeKills(const Evaluator& ev, const PassState& pass,
                                        std::vector<std::uint8_t>& active) {
  return Kills(ev, pass).compute(active);
}

}  // namespace portcullis::team::detail
