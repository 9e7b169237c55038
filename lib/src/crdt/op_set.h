// The materialised state of a document: every object, the visible values at each map key and
// list element, counters and their increments.
//
// The state is a pure function of the set of ops applied, whatever their order, even for ops
// from a hostile author that refer to ops outside their change's causal past:
// - an op is visible unless some op (other than an increment) names it in `pred`, whenever
//   either arrives;
// - increments add to the op they name, whenever either arrives;
// - an op whose object or reference element has not arrived waits for it; one that names an
//   element of another object, or uses the wrong key kind for its object, is ignored;
// - list elements are ordered by RGA, with every reference to an earlier counter (checked by
//   the codec), so an element always sorts after the element it was inserted after.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crdt/op.h"
#include "crdt/sequence.h"
#include "detail/flat_table.h"

namespace portcullis::detail {

// The document's actors, indexed in the order first seen, with a rank giving their byte order.
class ActorTable {
 public:
  std::uint32_t intern(const ActorId& actor);
  std::optional<std::uint32_t> find(ByteView actor) const;
  const ActorId& at(std::uint32_t index) const { return actors_[index]; }
  // OpIds order by counter, then by actor bytes.
  bool less(OpRef a, OpRef b) const {
    if (a.counter != b.counter) return a.counter < b.counter;
    return rank_[a.actor] < rank_[b.actor];
  }

 private:
  std::vector<ActorId> actors_;
  // By bytes, looked up by a view of them (an ActorId holds its bytes in place).
  struct BytesLess {
    using is_transparent = void;
    bool operator()(ByteView a, ByteView b) const {
      return std::ranges::lexicographical_compare(a, b);
    }
  };
  std::map<Bytes, std::uint32_t, BytesLess> index_;
  std::vector<std::uint32_t> rank_;
  std::uint32_t last_ = 0;  // the actor interned last: runs of changes by one actor are usual
};

struct Object {
  ObjType type = ObjType::Map;
  std::uint32_t depth = 0;                        // the root is 0
  // Where the object was made, so that a change can be named by its path from the root: the
  // op that made it, its parent, and the slot there (a map key's, whose key is `parentKey`, or a
  // list element's). Unset for the root.
  OpRef id;
  const Object* parent = nullptr;
  const Slot* parentSlot = nullptr;
  const std::string* parentKey = nullptr;  // a key of parent->map, whose nodes never move
  std::map<std::string, Slot, std::less<>> map;   // for maps; keys may hold an empty slot
  Sequence seq;                                   // for lists and text
};

// Nesting beyond this is refused locally and ignored from peers, so that reading a document
// (which recurses) stays bounded.
inline constexpr std::uint32_t kMaxDepth = 100;

inline constexpr OpRef kRoot{};

class OpSet {
 public:
  OpSet();
  OpSet(const OpSet&) = delete;
  OpSet& operator=(const OpSet&) = delete;

  ActorTable& actors() { return actors_; }
  const ActorTable& actors() const { return actors_; }

  // A hint that about `ops` more ops will be applied (a load).
  void reserve(std::size_t ops) { opStates_.reserve(opStates_.size() + ops); }

  // Applies the op with id `id`; every OpRef in `op` uses document actor indexes.
  void apply(const Op& op, OpRef id);

  const Object* findObject(OpRef id) const;
  // The list element the insert `id` made, if it has been placed.
  const Elem* findElem(OpRef id) const;
  // The counter's current value: its initial value plus every increment naming it, wrapping.
  std::int64_t counterValue(const Entry& entry) const;

 private:
  void place(const Op& op, OpRef id);
  void supersede(OpRef id);
  void wait(OpRef missing, const Op& op, OpRef id);

  // What is known of one op id; most ops are looked up here once or twice.
  struct OpState {
    Elem* elem = nullptr;        // the list element it inserted
    Slot* visibleAt = nullptr;   // where its value is visible
    std::uint64_t counter = 0;   // the op id, which is the key (counter 0: an empty slot)
    std::uint32_t actor = 0;
    bool superseded = false;     // some op named it in pred (perhaps before it arrived)
  };

  // Makes `entry` visible in `slot`, unless `state` (its op's) says it was superseded already.
  void addEntry(Slot& slot, Entry entry, OpState& state);

  // OpStates by op id, in open addressing over one array of 32-byte slots that hold their own
  // key: a document has one per op, and a smaller slot is fewer cache lines and fresh pages.
  // Op ids never have counter 0 (that names the root or a list head), which marks empty slots.
  class OpStateTable {
   public:
    OpState* find(OpRef id);
    const OpState* find(OpRef id) const { return const_cast<OpStateTable*>(this)->find(id); }
    // The state of `id`, made empty first if absent. Pointers stay valid until the next insert.
    OpState& operator[](OpRef id);
    // Removes the state `s` points at (from find or operator[]).
    void erase(OpState* s);
    // Makes room for `n` entries in all.
    void reserve(std::size_t n);
    std::size_t size() const { return size_; }

   private:
    std::size_t home(OpRef id) const {
      return static_cast<std::size_t>((std::hash<OpRef>{}(id) * 0x9E3779B97F4A7C15ull) >> shift_);
    }
    void rehash(std::size_t capacity);

    std::vector<OpState> slots_;  // a power of two in size, at most half full
    std::size_t size_ = 0;
    unsigned shift_ = 64;
  };

  ActorTable actors_;
  FlatTable<OpRef, std::unique_ptr<Object>> objects_;
  OpStateTable opStates_;
  std::unordered_map<OpRef, std::uint64_t> increments_;
  std::unordered_multimap<OpRef, std::pair<Op, OpRef>> waiting_;  // missing id -> op, its id
  std::vector<OpRef> arrived_;  // placed ids whose waiters are still to be released
};

}  // namespace portcullis::detail
