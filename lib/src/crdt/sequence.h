// The order of a list's or text's elements (RGA), kept in blocks so that reaching the n-th
// visible element costs O(blocks + block size) instead of O(length).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "crdt/op.h"

namespace portcullis::detail {

class ActorTable;
struct Object;
struct Elem;

// One value some op put somewhere.
struct Entry {
  OpRef id;
  std::optional<ObjType> object;  // the op made an object, named by `id`
  ScalarValue value;              // when it did not
};

// The visible values at one map key or list element, ascending by OpId (the winner last).
struct Slot {
  std::vector<Entry> entries;
  Elem* elem = nullptr;  // the element this slot belongs to, if any
};

struct SequenceBlock;

struct Elem {
  OpRef id;
  Object* owner = nullptr;
  SequenceBlock* block = nullptr;
  Slot slot;
  bool visible() const { return !slot.entries.empty(); }
};

class Sequence {
 public:
  Sequence();
  ~Sequence();
  Sequence(Sequence&&) noexcept;
  Sequence& operator=(Sequence&&) noexcept;

  // Makes a new element, owned by the sequence, with no values yet.
  Elem* newElem(OpRef id, Object* owner);
  // Places `e` after `ref` (nullptr: the head) by RGA order: after every element there whose id
  // is larger, which keeps concurrent inserts at one place in descending OpId order.
  void place(Elem* ref, Elem* e, const ActorTable& order);
  // Must be called when an element's visibility may have changed.
  void updateVisibility(Elem* e, bool wasVisible);

  std::size_t visibleCount() const { return visible_; }
  // The visible element at `index`, or nullptr.
  Elem* at(std::size_t index) const;
  // How many visible elements precede `e`: its index if it is visible, else where it was (or
  // would be). Precondition: `e` is placed (it has a block).
  std::size_t visibleBefore(const Elem* e) const;

  template <typename F>
  void forEachVisible(F&& f) const;

 private:
  void split(SequenceBlock* b);
  // Allocated with the first element: most objects are maps, whose Sequence stays empty.
  std::unique_ptr<std::deque<Elem>> storage_;
  std::vector<std::unique_ptr<SequenceBlock>> blocks_;
  std::size_t visible_ = 0;
};

struct SequenceBlock {
  std::vector<Elem*> elems;
  std::size_t visible = 0;
  std::size_t index = 0;  // position in Sequence::blocks_
};

template <typename F>
void Sequence::forEachVisible(F&& f) const {
  for (const auto& b : blocks_) {
    if (b->visible == 0) continue;
    for (const Elem* e : b->elems) {
      if (e->visible()) f(*e);
    }
  }
}

}  // namespace portcullis::detail
