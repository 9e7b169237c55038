#include "portcullis/change_graph.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>
#include <new>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "detail/assert.h"

namespace portcullis {

namespace {

struct Node {
  ChangeEnvelope env;
  std::uint32_t depsBegin = 0;      // positions of env.deps in Impl::nodes, at
  std::uint32_t depsCount = 0;      // Impl::depPositions[depsBegin, depsBegin + depsCount)
  std::uint64_t generation = 1;     // 1 + the largest generation among deps
};

// The nodes in the order added, in chunks that double in size (4 nodes, then 8, 16, ...): nodes
// never move (the canonical index keeps views of their payloads), a large graph allocates a few
// chunks where a deque of 144-byte nodes allocates a block per three, a one-change document
// (there are many) holds room for four, and finding a position is a bit count and a subtraction.
// Chunks are left uninitialized until nodes are built in them.
class NodeStore {
 public:
  NodeStore() = default;
  NodeStore(const NodeStore&) = delete;
  NodeStore& operator=(const NodeStore&) = delete;
  ~NodeStore() {
    for (std::size_t i = 0; i < size_; ++i) at(i)->~Node();
  }

  std::size_t size() const { return size_; }
  Node& operator[](std::size_t pos) { return *at(pos); }
  const Node& operator[](std::size_t pos) const { return *const_cast<NodeStore*>(this)->at(pos); }
  Node& back() { return *at(size_ - 1); }
  // Builds the node in place: an envelope is large, and each move of it costs.
  Node& emplace_back(ChangeEnvelope&& env, std::uint32_t depsBegin, std::uint32_t depsCount,
                     std::uint64_t generation) {
    if (size_ == capacity_) {
      const std::size_t chunk = std::size_t{1} << (chunks_.size() + kBaseShift);
      chunks_.push_back(std::unique_ptr<std::byte[]>(new std::byte[chunk * sizeof(Node)]));
      capacity_ += chunk;
    }
    Node* slot = new (at(size_)) Node{std::move(env), depsBegin, depsCount, generation};
    ++size_;
    return *slot;
  }

 private:
  static constexpr unsigned kBaseShift = 2;  // the first chunk holds 4 nodes

  // Chunk k holds 4 * 2^k nodes and starts at position 4 * (2^k - 1).
  Node* at(std::size_t pos) {
    const std::size_t units = (pos >> kBaseShift) + 1;
    const auto chunk = static_cast<unsigned>(std::bit_width(units) - 1);
    const std::size_t start = ((std::size_t{1} << chunk) - 1) << kBaseShift;
    return std::launder(reinterpret_cast<Node*>(chunks_[chunk].get())) + (pos - start);
  }

  std::vector<std::unique_ptr<std::byte[]>> chunks_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// Node positions by change hash, in open addressing over 8-byte slots: the position and 32
// bits of the hash as a tag, from which the slot's home also comes, so that growing the table
// never reads a node. Small slots keep the table in cache; a tag match is confirmed against the
// node's full hash, so a crafted tag collision costs only a comparison.
class HashIndex {
 public:
  std::optional<std::uint32_t> find(const ChangeHash& h, const NodeStore& nodes) const {
    if (slots_.empty()) return std::nullopt;
    const std::uint32_t tag = tagOf(h);
    for (std::size_t i = home(tag);; i = (i + 1) & mask()) {
      const Slot& slot = slots_[i];
      if (slot.pos == kEmpty) return std::nullopt;
      if (slot.tag == tag && nodes[slot.pos].env.hash == h) return slot.pos;
    }
  }

  // Adds the node at `pos`, which must be in `nodes` already and not yet in the index.
  void insert(std::uint32_t pos, const NodeStore& nodes) {
    if (2 * (size_ + 1) > slots_.size()) reserve(size_ + 1);
    place(Slot{tagOf(nodes[pos].env.hash), pos});
    ++size_;
  }

  void reserve(std::size_t n) {
    std::size_t capacity = std::max<std::size_t>(slots_.size(), 16);
    while (2 * n > capacity) capacity *= 2;
    if (capacity == slots_.size()) return;
    std::vector<Slot> old = std::exchange(slots_, std::vector<Slot>(capacity));
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
    for (const Slot& slot : old) {
      if (slot.pos != kEmpty) place(slot);
    }
  }

 private:
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFF;
  struct Slot {
    std::uint32_t tag = 0;
    std::uint32_t pos = kEmpty;
  };

  static std::uint32_t tagOf(const ChangeHash& h) {
    std::uint32_t tag = 0;
    std::memcpy(&tag, h.bytes().data(), sizeof tag);  // any fixed mapping of the bytes will do
    return tag;
  }
  // Fibonacci hashing of the tag: the top bits of the product.
  std::size_t home(std::uint32_t tag) const {
    return static_cast<std::size_t>((std::uint64_t{tag} * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  std::size_t mask() const { return slots_.size() - 1; }

  void place(Slot slot) {
    std::size_t i = home(slot.tag);
    while (slots_[i].pos != kEmpty) i = (i + 1) & mask();
    slots_[i] = slot;
  }

  std::vector<Slot> slots_;  // a power of two in size, at most half full
  std::size_t size_ = 0;
  unsigned shift_ = 64;
};

Error invalid(const ChangeEnvelope& env, const std::string& why) {
  return Error(Errc::Malformed, "change " + env.hash.toHex().substr(0, 16) + " by " +
                                    env.actor.toHex() + " seq " + std::to_string(env.seq) +
                                    ": " + why);
}

}  // namespace

struct ChangeGraph::Impl {
  ChangeGraphOptions options;
  NodeStore nodes;  // in the order added (topological)
  std::vector<std::uint32_t> depPositions;  // every node's deps, in one array
  std::vector<std::uint32_t> scratchDeps;   // checkReady's output, reused
  HashIndex index;

  std::optional<std::uint32_t> find(const ChangeHash& h) const { return index.find(h, nodes); }
  bool contains(const ChangeHash& h) const { return find(h).has_value(); }
  std::map<ActorId, std::vector<std::uint32_t>> byActor;  // position of seq s at [s - 1]
  // The chain last looked up: runs of changes by one actor are the usual case.
  mutable const ActorId* lastActor = nullptr;
  mutable std::vector<std::uint32_t>* lastChain = nullptr;

  // The actor's chain, if it has one.
  std::vector<std::uint32_t>* chainOf(const ActorId& actor) const {
    if (lastChain != nullptr && *lastActor == actor) return lastChain;
    auto it = byActor.find(actor);
    if (it == byActor.end()) return nullptr;
    lastActor = &it->first;
    lastChain = const_cast<std::vector<std::uint32_t>*>(&it->second);
    return lastChain;
  }
  std::vector<ChangeHash> heads;                        // ascending; usually one or two
  std::uint64_t maxOp = 0;
  std::size_t payloadBytes = 0;                         // of the nodes, not of `pending`
  // The canonical order: sorted by (generation, hash), which is topological with hash
  // tie-break. Entries past `sortedPrefix` are appended unsorted and ordered lazily. Each
  // entry carries its sort key, so that sorting reads one array instead of every node.
  struct CanonicalKey {
    std::uint64_t hashPrefix;  // the hash's first 8 bytes, big-endian: orders like the hash
    std::uint32_t generation;  // fits: a generation is at most the number of changes
    std::uint32_t pos;
    // The node's payload, which never moves or changes once added: saving reads the payloads
    // in this order without fetching each scattered node first.
    ByteView payload;
  };
  mutable std::vector<CanonicalKey> canonical;
  mutable std::size_t sortedPrefix = 0;
  // Whether the entries past `sortedPrefix` are in order among themselves, as the changes one
  // peer sends (a merge, a sync) are: then reading merges the two runs as it goes, and moves no
  // entry.
  mutable bool tailSorted = true;

  bool canonicalLess(const CanonicalKey& a, const CanonicalKey& b) const {
    if (a.generation != b.generation) return a.generation < b.generation;
    if (a.hashPrefix != b.hashPrefix) return a.hashPrefix < b.hashPrefix;
    return nodes[a.pos].env.hash < nodes[b.pos].env.hash;
  }

  // Brings `canonical` into order (for a tail that is not).
  void sortCanonical() const;

  // Calls f(i) for every index i of `canonical`, in canonical order: the sorted prefix and the
  // tail are two runs, merged as they are read.
  template <typename F>
  void forEachCanonical(F f) const {
    if (!tailSorted) sortCanonical();
    const std::size_t end = canonical.size();
    std::size_t a = 0;
    std::size_t b = sortedPrefix;
    while (a < sortedPrefix && b < end) f(canonicalLess(canonical[b], canonical[a]) ? b++ : a++);
    for (; a < sortedPrefix; ++a) f(a);
    for (; b < end; ++b) f(b);
  }

  std::unordered_map<ChangeHash, ChangeEnvelope> pending;
  std::unordered_multimap<ChangeHash, ChangeHash> waiting;  // missing dep -> pending change
  std::size_t pendingBytes = 0;

  // Rules that need nothing but the envelope.
  static Result<void> checkShape(const ChangeEnvelope& env) {
    for (std::size_t i = 1; i < env.deps.size(); ++i) {
      if (!(env.deps[i - 1] < env.deps[i])) return invalid(env, "deps are not strictly ascending");
    }
    if (env.seq == 0 || env.seq > kMaxCounter) return invalid(env, "seq out of range");
    if (env.startOp == 0 || env.startOp > kMaxCounter ||
        env.opCount > kMaxCounter - env.startOp + 1) {
      return invalid(env, "op counters out of range");
    }
    return {};
  }

  // Is the change at `target` in the causal past of `deps`? Only changes whose startOp is above
  // target's last op can descend from it, which keeps the walk to what came after it.
  std::span<const std::uint32_t> depsOf(std::uint32_t n) const {
    return std::span(depPositions).subspan(nodes[n].depsBegin, nodes[n].depsCount);
  }

  bool inPast(std::uint32_t target, const std::vector<std::uint32_t>& deps) const {
    if (std::ranges::find(deps, target) != deps.end()) return true;  // the usual case
    const std::uint64_t floor = nodes[target].env.maxOp();
    std::vector<std::uint32_t> stack(deps.begin(), deps.end());
    std::unordered_set<std::uint32_t> seen;
    while (!stack.empty()) {
      std::uint32_t n = stack.back();
      stack.pop_back();
      if (n == target) return true;
      if (nodes[n].env.startOp <= floor || !seen.insert(n).second) continue;
      auto d = depsOf(n);
      stack.insert(stack.end(), d.begin(), d.end());
    }
    return false;
  }

  // The positions of every dep, into `deps`; false (and `deps` partial) if one is missing.
  bool resolveDeps(const ChangeEnvelope& env, std::vector<std::uint32_t>& deps) const {
    deps.clear();
    for (const ChangeHash& d : env.deps) {
      const auto pos = find(d);
      if (!pos) return false;
      deps.push_back(*pos);
    }
    return true;
  }

  // Rules against the graph, for an envelope whose deps are all present; their positions go
  // into `deps`.
  Result<void> checkReady(const ChangeEnvelope& env, std::vector<std::uint32_t>& deps) const {
    const bool resolved = resolveDeps(env, deps);
    PORTCULLIS_ASSERT(resolved, "checkReady needs every dep in the graph");
    return checkResolved(env, deps);
  }

  // checkReady for `deps` that resolveDeps filled.
  Result<void> checkResolved(const ChangeEnvelope& env, const std::vector<std::uint32_t>& deps) const {
    std::uint64_t expectedStart = 1;
    for (std::uint32_t pos : deps) expectedStart = std::max(expectedStart, nodes[pos].env.maxOp() + 1);
    const std::vector<std::uint32_t>* chain = chainOf(env.actor);
    std::uint64_t last = chain == nullptr ? 0 : chain->size();
    if (env.seq <= last) {
      return Error(Errc::Conflict, "equivocation: actor " + env.actor.toHex() +
                                       " already has a different change with seq " +
                                       std::to_string(env.seq));
    }
    if (env.seq != last + 1) {
      return invalid(env, "seq does not follow the actor's last change (" +
                              std::to_string(last) + ")");
    }
    if (last > 0 && !inPast(chain->back(), deps)) {
      return invalid(env, "does not depend on its actor's previous change");
    }
    if (env.startOp != expectedStart) {
      return invalid(env, "startOp " + std::to_string(env.startOp) + " should be " +
                              std::to_string(expectedStart));
    }
    return {};
  }

  const ChangeEnvelope& insert(ChangeEnvelope&& env, const std::vector<std::uint32_t>& deps) {
    auto pos = static_cast<std::uint32_t>(nodes.size());
    std::erase_if(heads, [&](const ChangeHash& h) {
      return std::ranges::binary_search(env.deps, h);
    });
    heads.insert(std::ranges::upper_bound(heads, env.hash), env.hash);

    std::vector<std::uint32_t>* chain = chainOf(env.actor);
    if (chain == nullptr) chain = &byActor[env.actor];
    chain->push_back(pos);
    maxOp = std::max(maxOp, env.maxOp());
    payloadBytes += env.payload.size();
    std::uint64_t generation = 1;
    for (std::uint32_t d : deps) generation = std::max(generation, nodes[d].generation + 1);
    std::uint64_t hashPrefix = 0;
    std::memcpy(&hashPrefix, env.hash.bytes().data(), sizeof hashPrefix);
    if constexpr (std::endian::native == std::endian::little) {
      hashPrefix = __builtin_bswap64(hashPrefix);  // big-endian: orders like the bytes
    }
    const auto depsBegin = static_cast<std::uint32_t>(depPositions.size());
    depPositions.insert(depPositions.end(), deps.begin(), deps.end());
    nodes.emplace_back(std::move(env), depsBegin, static_cast<std::uint32_t>(deps.size()),
                       generation);
    index.insert(pos, nodes);
    const CanonicalKey key{hashPrefix, static_cast<std::uint32_t>(generation), pos,
                           ByteView(nodes.back().env.payload)};
    const bool inOrder = canonical.empty() || canonicalLess(canonical.back(), key);
    if (sortedPrefix == canonical.size()) {
      if (inOrder) ++sortedPrefix;  // else the key starts the tail, sorted as one entry
    } else {
      tailSorted = tailSorted && inOrder;
    }
    canonical.push_back(key);
    return nodes.back().env;
  }

  // Moves queued changes whose last missing dep was `arrived` into the graph, transitively.
  void release(const ChangeHash& arrived, std::vector<const ChangeEnvelope*>* applied,
               std::vector<Error>* rejected) {
    if (waiting.empty()) return;  // the usual case, and then nothing is allocated
    std::vector<ChangeHash> work{arrived};
    std::vector<std::uint32_t>& deps = scratchDeps;
    while (!work.empty()) {
      ChangeHash h = work.back();
      work.pop_back();
      auto [first, last] = waiting.equal_range(h);
      std::vector<ChangeHash> candidates;
      for (auto it = first; it != last; ++it) candidates.push_back(it->second);
      waiting.erase(first, last);
      for (const ChangeHash& c : candidates) {
        auto p = pending.find(c);
        if (p == pending.end()) continue;
        bool ready = std::ranges::all_of(p->second.deps,
                                         [&](const ChangeHash& d) { return contains(d); });
        if (!ready) continue;
        ChangeEnvelope env = std::move(p->second);
        pending.erase(p);
        pendingBytes -= env.payload.size();
        if (auto ok = checkReady(env, deps); !ok) {
          if (rejected) rejected->push_back(ok.error());
          continue;
        }
        const ChangeEnvelope& added = insert(std::move(env), deps);
        if (applied) applied->push_back(&added);
        work.push_back(added.hash);
      }
    }
  }
};

ChangeGraph::ChangeGraph(ChangeGraphOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
}
ChangeGraph::~ChangeGraph() = default;
ChangeGraph::ChangeGraph(ChangeGraph&&) noexcept = default;
ChangeGraph& ChangeGraph::operator=(ChangeGraph&&) noexcept = default;

Result<AddOutcome> ChangeGraph::add(ChangeEnvelope env, std::vector<const ChangeEnvelope*>* applied,
                                    std::vector<Error>* rejected) {
  Impl& g = *impl_;
  if (g.contains(env.hash) || g.pending.contains(env.hash)) return AddOutcome::Duplicate;
  if (auto ok = Impl::checkShape(env); !ok) return ok.error();

  if (!g.resolveDeps(env, g.scratchDeps)) {
    if (g.pending.size() >= g.options.maxPendingChanges ||
        env.payload.size() > g.options.maxPendingBytes - g.pendingBytes) {
      return Error(Errc::Overloaded, "too many changes are waiting for missing dependencies");
    }
    for (const ChangeHash& d : env.deps) {
      if (!g.contains(d)) g.waiting.emplace(d, env.hash);
    }
    g.pendingBytes += env.payload.size();
    ChangeHash hash = env.hash;
    g.pending.emplace(hash, std::move(env));
    return AddOutcome::Queued;
  }

  if (auto ok = g.checkResolved(env, g.scratchDeps); !ok) return ok.error();
  const ChangeEnvelope& added = g.insert(std::move(env), g.scratchDeps);
  if (applied) applied->push_back(&added);
  g.release(added.hash, applied, rejected);
  return AddOutcome::Applied;
}

const ChangeEnvelope& ChangeGraph::addLocal(ChangeEnvelope env) {
  Impl& g = *impl_;
  PORTCULLIS_ASSERT(std::ranges::equal(env.deps, g.heads), "a local change must build on the heads");
  auto ok = Impl::checkShape(env);
  PORTCULLIS_ASSERT(ok.has_value(), "{}", ok ? "" : ok.error().message());
  ok = g.checkReady(env, g.scratchDeps);
  PORTCULLIS_ASSERT(ok.has_value(), "{}", ok ? "" : ok.error().message());
  return g.insert(std::move(env), g.scratchDeps);
}

void ChangeGraph::reserve(std::size_t changes) {
  Impl& g = *impl_;
  const std::size_t total = g.nodes.size() + changes;
  g.index.reserve(total);
  g.canonical.reserve(total);
  g.depPositions.reserve(total);  // most changes have one dep
}

bool ChangeGraph::contains(const ChangeHash& hash) const { return impl_->contains(hash); }

const ChangeEnvelope* ChangeGraph::find(const ChangeHash& hash) const {
  const auto pos = impl_->find(hash);
  return pos ? &impl_->nodes[*pos].env : nullptr;
}

std::size_t ChangeGraph::size() const { return impl_->nodes.size(); }

std::vector<ChangeHash> ChangeGraph::heads() const {
  return impl_->heads;
}

std::vector<ChangeHash> ChangeGraph::missingDeps() const {
  std::set<ChangeHash> missing;
  for (const auto& [dep, waiter] : impl_->waiting) {
    if (!impl_->contains(dep) && !impl_->pending.contains(dep)) missing.insert(dep);
  }
  return {missing.begin(), missing.end()};
}

std::size_t ChangeGraph::pendingCount() const { return impl_->pending.size(); }

std::uint64_t ChangeGraph::maxOp() const { return impl_->maxOp; }

std::uint64_t ChangeGraph::lastSeq(const ActorId& actor) const {
  const auto* chain = impl_->chainOf(actor);
  return chain == nullptr ? 0 : chain->size();
}

std::vector<const ChangeEnvelope*> ChangeGraph::changesSince(
    std::span<const ChangeHash> heads) const {
  const Impl& g = *impl_;
  std::vector<bool> known(g.nodes.size(), false);
  std::vector<std::uint32_t> stack;
  for (const ChangeHash& h : heads) {
    if (const auto pos = g.find(h)) stack.push_back(*pos);
  }
  while (!stack.empty()) {
    std::uint32_t n = stack.back();
    stack.pop_back();
    if (known[n]) continue;
    known[n] = true;
    auto d = g.depsOf(n);
    stack.insert(stack.end(), d.begin(), d.end());
  }
  std::vector<const ChangeEnvelope*> out;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    if (!known[i]) out.push_back(&g.nodes[i].env);
  }
  return out;
}

std::vector<const ChangeEnvelope*> ChangeGraph::changes() const { return changesAfter(0); }

std::vector<const ChangeEnvelope*> ChangeGraph::changesAfter(std::size_t count) const {
  std::vector<const ChangeEnvelope*> out;
  const auto& nodes = impl_->nodes;
  if (count >= nodes.size()) return out;
  out.reserve(nodes.size() - count);
  for (std::size_t i = count; i < nodes.size(); ++i) out.push_back(&nodes[i].env);
  return out;
}

const ChangeEnvelope& ChangeGraph::changeAt(std::size_t position) const {
  PORTCULLIS_REQUIRE(position < impl_->nodes.size(), "no change at position {}", position);
  return impl_->nodes[position].env;
}

std::optional<std::size_t> ChangeGraph::positionOf(const ChangeHash& hash) const {
  const auto pos = impl_->find(hash);
  if (!pos) return std::nullopt;
  return *pos;
}

void ChangeGraph::Impl::sortCanonical() const {
  const Impl& g = *this;
  auto less = [&](const Impl::CanonicalKey& a, const Impl::CanonicalKey& b) {
    return g.canonicalLess(a, b);
  };
  if (g.sortedPrefix < g.canonical.size()) {
    auto middle = g.canonical.begin() + static_cast<std::ptrdiff_t>(g.sortedPrefix);
    // The appended entries rarely sort before more than the prefix's tail, so only that tail
    // takes part in the merge.
    std::sort(middle, g.canonical.end(), less);
    std::inplace_merge(std::upper_bound(g.canonical.begin(), middle, *middle, less), middle,
                       g.canonical.end(), less);
    g.sortedPrefix = g.canonical.size();
  }
  g.tailSorted = true;
}

std::vector<const ChangeEnvelope*> ChangeGraph::canonicalOrder() const {
  const Impl& g = *impl_;
  std::vector<const ChangeEnvelope*> out;
  out.reserve(g.canonical.size());
  g.forEachCanonical([&](std::size_t i) { out.push_back(&g.nodes[g.canonical[i].pos].env); });
  return out;
}

void ChangeGraph::forEachCanonicalPayload(const std::function<void(ByteView)>& f) const {
  const Impl& g = *impl_;
  // Payloads are scattered on the heap: asking for the payload a few entries ahead in the same
  // run hides most of the wait for them.
  constexpr std::size_t kAhead = 8;
  constexpr std::size_t kLine = 64;
  g.forEachCanonical([&](std::size_t i) {
    const std::size_t runEnd = i < g.sortedPrefix ? g.sortedPrefix : g.canonical.size();
    if (i + kAhead < runEnd) {
      const ByteView ahead = g.canonical[i + kAhead].payload;
      for (std::size_t at = 0; at < ahead.size(); at += kLine) __builtin_prefetch(ahead.data() + at);
    }
    f(g.canonical[i].payload);
  });
}

std::size_t ChangeGraph::payloadBytes() const { return impl_->payloadBytes; }

}  // namespace portcullis
