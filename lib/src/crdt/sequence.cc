#include "crdt/sequence.h"

#include <algorithm>

#include "crdt/op_set.h"
#include "detail/assert.h"

namespace portcullis::detail {
namespace {

// Blocks split when they pass this size; halves of it keep lookups and splits both cheap.
constexpr std::size_t kMaxBlock = 128;

std::size_t positionIn(const SequenceBlock& b, const Elem* e) {
  auto it = std::find(b.elems.begin(), b.elems.end(), e);
  PORTCULLIS_ASSERT(it != b.elems.end(), "element not in its block");
  return static_cast<std::size_t>(it - b.elems.begin());
}

}  // namespace

Sequence::Sequence() = default;
Sequence::~Sequence() = default;
Sequence::Sequence(Sequence&&) noexcept = default;
Sequence& Sequence::operator=(Sequence&&) noexcept = default;

Elem* Sequence::newElem(OpRef id, Object* owner) {
  if (!storage_) storage_ = std::make_unique<std::deque<Elem>>();
  Elem& e = storage_->emplace_back();
  e.id = id;
  e.owner = owner;
  e.slot.elem = &e;
  return &e;
}

void Sequence::place(Elem* ref, Elem* e, const ActorTable& order) {
  if (blocks_.empty()) blocks_.push_back(std::make_unique<SequenceBlock>());
  SequenceBlock* b = ref ? ref->block : blocks_.front().get();
  std::size_t i = ref ? positionIn(*b, ref) + 1 : 0;
  // Skip the elements (and, since descendants have larger ids, their subtrees) that are larger.
  while (true) {
    if (i == b->elems.size()) {
      if (b->index + 1 == blocks_.size()) break;
      b = blocks_[b->index + 1].get();
      i = 0;
      continue;
    }
    if (order.less(b->elems[i]->id, e->id)) break;
    ++i;
  }
  b->elems.insert(b->elems.begin() + static_cast<std::ptrdiff_t>(i), e);
  e->block = b;
  if (e->visible()) {
    ++b->visible;
    ++visible_;
  }
  if (b->elems.size() > kMaxBlock) split(b);
}

void Sequence::split(SequenceBlock* b) {
  auto fresh = std::make_unique<SequenceBlock>();
  const std::size_t half = b->elems.size() / 2;
  fresh->elems.assign(b->elems.begin() + static_cast<std::ptrdiff_t>(half), b->elems.end());
  b->elems.resize(half);
  for (Elem* e : fresh->elems) {
    e->block = fresh.get();
    if (e->visible()) ++fresh->visible;
  }
  b->visible -= fresh->visible;
  const std::size_t at = b->index + 1;
  blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(at), std::move(fresh));
  for (std::size_t k = at; k < blocks_.size(); ++k) blocks_[k]->index = k;
}

void Sequence::updateVisibility(Elem* e, bool wasVisible) {
  if (e->block == nullptr || e->visible() == wasVisible) return;
  if (e->visible()) {
    ++e->block->visible;
    ++visible_;
  } else {
    --e->block->visible;
    --visible_;
  }
}

std::size_t Sequence::visibleBefore(const Elem* e) const {
  PORTCULLIS_REQUIRE(e->block != nullptr, "the element is not placed");
  std::size_t count = 0;
  for (std::size_t k = 0; k < e->block->index; ++k) count += blocks_[k]->visible;
  for (const Elem* x : e->block->elems) {
    if (x == e) return count;
    if (x->visible()) ++count;
  }
  PORTCULLIS_ASSERT(false, "element not in its block");
}

Elem* Sequence::at(std::size_t index) const {
  if (index >= visible_) return nullptr;
  for (const auto& b : blocks_) {
    if (index >= b->visible) {
      index -= b->visible;
      continue;
    }
    for (Elem* e : b->elems) {
      if (e->visible() && index-- == 0) return e;
    }
  }
  PORTCULLIS_ASSERT(false, "visible counts are inconsistent");
}

}  // namespace portcullis::detail
