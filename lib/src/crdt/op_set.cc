#include "crdt/op_set.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "detail/assert.h"

namespace portcullis::detail {

std::uint32_t ActorTable::intern(const ActorId& actor) {
  if (last_ < actors_.size() && actors_[last_] == actor) return last_;
  if (auto it = index_.find(actor.bytes()); it != index_.end()) return last_ = it->second;
  auto idx = static_cast<std::uint32_t>(actors_.size());
  actors_.push_back(actor);
  index_.emplace(Bytes(actor.bytes().begin(), actor.bytes().end()), idx);
  // index_ iterates in byte order, which is the rank.
  rank_.resize(actors_.size());
  std::uint32_t r = 0;
  for (const auto& [bytes, i] : index_) rank_[i] = r++;
  return idx;
}

std::optional<std::uint32_t> ActorTable::find(ByteView actor) const {
  auto it = index_.find(actor);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

OpSet::OpState* OpSet::OpStateTable::find(OpRef id) {
  if (size_ == 0 || id.counter == 0) return nullptr;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(id);; i = (i + 1) & mask) {
    OpState& s = slots_[i];
    if (s.counter == 0) return nullptr;
    if (s.counter == id.counter && s.actor == id.actor) return &s;
  }
}

OpSet::OpState& OpSet::OpStateTable::operator[](OpRef id) {
  PORTCULLIS_ASSERT(id.counter != 0, "an op id with counter 0");
  if (2 * (size_ + 1) > slots_.size()) rehash(std::max<std::size_t>(16, 2 * slots_.size()));
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(id);; i = (i + 1) & mask) {
    OpState& s = slots_[i];
    if (s.counter == 0) {
      s.counter = id.counter;
      s.actor = id.actor;
      ++size_;
      return s;
    }
    if (s.counter == id.counter && s.actor == id.actor) return s;
  }
}

void OpSet::OpStateTable::erase(OpState* s) {
  // Backward-shift deletion: later slots of the probe run move into the hole unless their home
  // lies cyclically in (hole, slot], so that every lookup still finds them.
  const std::size_t mask = slots_.size() - 1;
  auto hole = static_cast<std::size_t>(s - slots_.data());
  for (std::size_t j = (hole + 1) & mask; slots_[j].counter != 0; j = (j + 1) & mask) {
    const std::size_t k = home(OpRef{slots_[j].counter, slots_[j].actor});
    const bool stays = hole < j ? (hole < k && k <= j) : (hole < k || k <= j);
    if (!stays) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = OpState{};
  --size_;
}

void OpSet::OpStateTable::reserve(std::size_t n) {
  std::size_t capacity = std::max<std::size_t>(16, slots_.size());
  while (2 * n > capacity) capacity *= 2;
  if (capacity != slots_.size()) rehash(capacity);
}

void OpSet::OpStateTable::rehash(std::size_t capacity) {
  std::vector<OpState> old = std::exchange(slots_, std::vector<OpState>(capacity));
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
  const std::size_t mask = capacity - 1;
  for (const OpState& s : old) {
    if (s.counter == 0) continue;
    std::size_t i = home(OpRef{s.counter, s.actor});
    while (slots_[i].counter != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

OpSet::OpSet() {
  auto root = std::make_unique<Object>();
  root->type = ObjType::Map;
  objects_[kRoot] = std::move(root);
}

const Object* OpSet::findObject(OpRef id) const {
  const auto* object = objects_.find(id);
  return object ? object->get() : nullptr;
}

const Elem* OpSet::findElem(OpRef id) const {
  const OpState* state = opStates_.find(id);
  return state && state->elem && state->elem->block ? state->elem : nullptr;
}

std::int64_t OpSet::counterValue(const Entry& entry) const {
  auto base = static_cast<std::uint64_t>(std::get<Counter>(entry.value).value);
  if (auto it = increments_.find(entry.id); it != increments_.end()) base += it->second;
  return static_cast<std::int64_t>(base);
}

void OpSet::apply(const Op& op, OpRef id) {
  if (op.action == Action::Increment) {
    for (OpRef p : op.pred) increments_[p] += static_cast<std::uint64_t>(op.delta);
    return;
  }
  for (OpRef p : op.pred) supersede(p);
  if (op.action == Action::Delete) return;
  place(op, id);
  // Ops that waited for what was just placed, and what they place in turn. The order does not
  // matter: every rule above gives the same state in any order.
  while (!arrived_.empty()) {
    OpRef a = arrived_.back();
    arrived_.pop_back();
    auto [first, last] = waiting_.equal_range(a);
    std::vector<std::pair<Op, OpRef>> ready;
    for (auto it = first; it != last; ++it) ready.push_back(std::move(it->second));
    waiting_.erase(first, last);
    for (auto& [w, wid] : ready) place(w, wid);
  }
}

void OpSet::supersede(OpRef id) {
  OpState& state = opStates_[id];
  state.superseded = true;
  if (state.visibleAt == nullptr) return;
  Slot& slot = *std::exchange(state.visibleAt, nullptr);
  // The op was placed and is now hidden for good; unless it made a list element, which later
  // inserts may name, nothing asks for its state again (a second supersede makes a new, equal
  // one), so it is dropped: a document where most values were overwritten keeps a small table.
  if (state.elem == nullptr) opStates_.erase(&state);
  auto e = std::find_if(slot.entries.begin(), slot.entries.end(),
                        [&](const Entry& x) { return x.id == id; });
  PORTCULLIS_ASSERT(e != slot.entries.end(), "visible value missing from its slot");
  slot.entries.erase(e);
  if (slot.elem && slot.entries.empty()) slot.elem->owner->seq.updateVisibility(slot.elem, true);
}

void OpSet::addEntry(Slot& slot, Entry entry, OpState& state) {
  if (state.superseded) return;  // named in a pred before it arrived
  const bool wasVisible = !slot.entries.empty();
  auto pos = std::find_if(slot.entries.begin(), slot.entries.end(),
                          [&](const Entry& x) { return actors_.less(entry.id, x.id); });
  state.visibleAt = &slot;
  slot.entries.insert(pos, std::move(entry));
  if (slot.elem) slot.elem->owner->seq.updateVisibility(slot.elem, wasVisible);
}

void OpSet::wait(OpRef missing, const Op& op, OpRef id) { waiting_.emplace(missing, std::pair{op, id}); }

void OpSet::place(const Op& op, OpRef id) {
  const auto* objPtr = objects_.find(op.obj);
  if (objPtr == nullptr) return wait(op.obj, op, id);
  Object& obj = **objPtr;
  if (op.elemKey != (obj.type != ObjType::Map)) return;  // wrong key kind: ignored everywhere

  Slot* slot = nullptr;
  const std::string* key = nullptr;
  Elem* placed = nullptr;
  OpState* state = nullptr;  // the op's, once an insert has made it
  if (!op.elemKey) {
    auto at = obj.map.try_emplace(op.mapKey).first;
    key = &at->first;
    slot = &at->second;
  } else {
    Elem* ref = nullptr;
    if (!(op.insert && op.elem == kRoot)) {
      const OpState* r = opStates_.find(op.elem);
      if (r == nullptr || r->elem == nullptr) return wait(op.elem, op, id);
      ref = r->elem;
      if (ref->owner != &obj) return;  // an element of another object: ignored everywhere
    }
    if (op.insert) {
      placed = obj.seq.newElem(id, &obj);
      obj.seq.place(ref, placed, actors_);
      state = &opStates_[id];
      state->elem = placed;
      slot = &placed->slot;
    } else {
      slot = &ref->slot;
    }
  }

  Entry entry{.id = id, .object = std::nullopt, .value = {}};
  if (isMake(op.action)) {
    if (obj.depth + 1 <= kMaxDepth) {
      auto made = std::make_unique<Object>();
      made->type = madeType(op.action);
      made->depth = obj.depth + 1;
      made->id = id;
      made->parent = &obj;
      made->parentSlot = slot;
      made->parentKey = key;
      objects_[id] = std::move(made);
      entry.object = madeType(op.action);
    } else {
      entry.value = Null{};  // too deep: reads as null, alike everywhere
    }
  } else {
    entry.value = op.value;
  }
  addEntry(*slot, std::move(entry), state ? *state : opStates_[id]);
  if (!waiting_.empty()) arrived_.push_back(id);
}

}  // namespace portcullis::detail

