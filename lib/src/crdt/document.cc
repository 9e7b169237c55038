#include "portcullis/document.h"

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "crdt/document_access.h"
#include "crdt/op_set.h"
#include "detail/assert.h"
#include "detail/utf8.h"
#include "wire/change_codec.h"

namespace portcullis {
namespace detail {

// Counts one change's outcome into a batch's report.
static void tally(ApplyReport& report, Result<AddOutcome> outcome) {
  if (!outcome) {
    report.rejected.push_back(std::move(outcome).error());
  } else if (*outcome == AddOutcome::Duplicate) {
    ++report.duplicates;
  }
}

class DocumentState {
 public:
  DocumentState(DocumentOptions options, ActorId actor)
      : options_(options), actor_(std::move(actor)), graph_(options.graph) {
    resetOps();
  }

  // Offers one envelope to the graph and applies what became part of it. `decoded`, if given,
  // is the envelope's decoded change, which spares decoding it again.
  Result<AddOutcome> add(ChangeEnvelope env, ChangeData* decoded, ApplyReport* report) {
    PORTCULLIS_REQUIRE(!txOpen_, "changes cannot be applied while a transaction is open");
    std::vector<const ChangeEnvelope*>& applied = applied_;
    applied.clear();
    auto outcome = graph_.add(std::move(env), &applied, report ? &report->rejected : nullptr);
    // When the offered envelope applied, it comes first; the rest are queued ones it unblocked.
    const bool offeredApplied = outcome && *outcome == AddOutcome::Applied;
    for (std::size_t i = 0; i < applied.size(); ++i) {
      if (decoded && offeredApplied && i == 0) {
        applyOps(*decoded, applied[i]->actor);
      } else {
        applyEnvelope(*applied[i]);
      }
    }
    if (report) report->applied += applied.size();
    return outcome;
  }

  // Parses untrusted bytes and offers them. With a sealer, the bytes are a sealed change: the
  // graph keys it by the sealer's envelope, and the ops come from the plain change inside.
  Result<AddOutcome> addBytes(Bytes bytes, ApplyReport* report) {
    if (options_.sealer) {
      auto sealed = options_.sealer->parse(std::move(bytes));
      if (!sealed) return std::move(sealed).error();
      return addSealed(std::move(*sealed), report);
    }
    auto parsed = parseChange(std::move(bytes), options_.maxChangeBytes, &opsScratch_);
    if (!parsed) return std::move(parsed).error();
    auto outcome = add(std::move(parsed->envelope), &parsed->data, report);
    opsScratch_ = std::move(parsed->data.ops);  // its storage serves the next change
    return outcome;
  }

  // Offers a sealed envelope the sealer parsed, with the plain change inside it.
  Result<AddOutcome> addSealed(ChangeEnvelope sealed, ApplyReport* report) {
    auto plain = open(sealed);
    if (!plain) return std::move(plain).error();
    return add(std::move(sealed), &plain->data, report);
  }

  // The plain change inside a sealed one, which must carry the same header.
  Result<ParsedChange> open(const ChangeEnvelope& sealed) const {
    auto bytes = options_.sealer->open(sealed);
    if (!bytes) return std::move(bytes).error();
    auto plain = parseChange(std::move(*bytes), options_.maxChangeBytes);
    if (!plain) return std::move(plain).error();
    const ChangeEnvelope& p = plain->envelope;
    if (p.actor != sealed.actor || p.seq != sealed.seq || p.startOp != sealed.startOp ||
        p.opCount != sealed.opCount || p.deps != sealed.deps) {
      return Error(Errc::Malformed, "a sealed change's header does not match what it holds");
    }
    return plain;
  }

  // A hint that about `changes` changes will be added (a load).
  void reserve(std::size_t changes) {
    graph_.reserve(changes);
    ops_->reserve(changes);  // at least one op each, as a rule
  }

  ApplyReport applyChanges(std::span<const Bytes> changes) {
    ApplyReport report;
    for (const Bytes& bytes : changes) tally(report, addBytes(bytes, &report));
    report.queued = graph_.pendingCount();
    return report;
  }

  // Copies every change of `other` this document lacks; both already checked them.
  ApplyReport copyFrom(const DocumentState& other) {
    ApplyReport report;
    for (const ChangeEnvelope* e : other.graph_.changes()) {
      if (graph_.contains(e->hash)) continue;
      auto outcome = add(*e, nullptr, &report);
      if (!outcome) report.rejected.push_back(std::move(outcome).error());
    }
    report.queued = graph_.pendingCount();
    return report;
  }

  // --- local transactions --------------------------------------------------------------------

  void openTransaction() {
    PORTCULLIS_REQUIRE(!txOpen_, "a transaction is already open on this document");
    txOpen_ = true;
    txOps_.clear();
    txTouchStart_ = touched_ ? touched_->size() : 0;
    txStart_ = graph_.maxOp() + 1;
  }

  // Ops are taken by reference (an Op is large), moved only into the transaction's list.
  Result<OpRef> localOp(Op&& op) {
    PORTCULLIS_REQUIRE(txOpen_, "the transaction is closed");
    const OpRef id{txStart_ + txOps_.size(), self_};
    if (id.counter > kMaxCounter) return Error(Errc::Overloaded, "op counter space exhausted");
    ops_->apply(op, id);
    note(op, id);
    txOps_.push_back(std::move(op));
    return id;
  }

  // A local op whose id the caller does not need.
  Result<void> localEdit(Op&& op) {
    auto id = localOp(std::move(op));
    if (!id) return id.error();
    return {};
  }

  std::optional<ChangeHash> commit(CommitOptions options) {
    PORTCULLIS_REQUIRE(txOpen_, "the transaction is closed");
    txOpen_ = false;
    if (txOps_.empty() && !options.allowEmpty) return std::nullopt;
    ChangeData change{
        .actor = actor_,
        .seq = graph_.lastSeq(actor_) + 1,
        .startOp = txStart_,
        .time = options.time.value_or(std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count()),
        .message = std::move(options.message),
        .deps = graph_.heads(),
        .otherActors = {},
        .ops = {},
    };
    // The change's actor table: the author, then every other actor its ops name, by bytes.
    // Document actor indexes, usually none or one besides the author: a sorted vector.
    std::vector<std::uint32_t>& others = commitActors_;
    others.clear();
    auto note = [&](OpRef r) {
      if (r.counter == 0 || r.actor == self_) return;
      auto at = std::lower_bound(others.begin(), others.end(), r.actor);
      if (at == others.end() || *at != r.actor) others.insert(at, r.actor);
    };
    for (const Op& op : txOps_) {
      note(op.obj);
      note(op.elem);
      for (OpRef p : op.pred) note(p);
    }
    std::sort(others.begin(), others.end(), [&](std::uint32_t a, std::uint32_t b) {
      return ops_->actors().at(a) < ops_->actors().at(b);
    });
    for (std::uint32_t a : others) change.otherActors.push_back(ops_->actors().at(a));
    auto localRef = [&](OpRef r) {
      if (r.counter == 0) return r;
      if (r.actor == self_) return OpRef{r.counter, 0};
      const auto at = std::find(others.begin(), others.end(), r.actor);
      PORTCULLIS_ASSERT(at != others.end(), "an op names an actor missing from its change");
      return OpRef{r.counter, static_cast<std::uint32_t>(at - others.begin()) + 1};
    };
    change.ops.swap(txOps_);  // txOps_ gets the (empty) vector; its own storage comes back below
    for (Op& op : change.ops) {
      op.obj = localRef(op.obj);
      op.elem = localRef(op.elem);
      for (OpRef& p : op.pred) p = localRef(p);
      // pred must ascend by (counter, actor bytes) in the encoding.
      std::sort(op.pred.begin(), op.pred.end(), [&](OpRef a, OpRef b) {
        if (a.counter != b.counter) return a.counter < b.counter;
        return actorOf(change, a.actor) < actorOf(change, b.actor);
      });
    }
    ChangeEnvelope plain = encodeChange(std::move(change), opBlob_);
    // The ops' storage serves the next transaction, and so do their preds.
    txOps_.swap(change.ops);
    for (Op& op : txOps_) {
      if (op.pred.capacity() != 0 && sparePreds_.size() < kSparePreds) {
        sparePreds_.push_back(std::move(op.pred));
      }
    }
    txOps_.clear();
    if (!options_.sealer) return graph_.addLocal(std::move(plain)).hash;
    auto sealed = options_.sealer->seal(plain);
    PORTCULLIS_ASSERT(sealed, "the sealer refused a local change: {}", sealed.error().message());
    PORTCULLIS_ASSERT(sealed->actor == plain.actor && sealed->seq == plain.seq &&
                          sealed->startOp == plain.startOp && sealed->opCount == plain.opCount &&
                          sealed->deps == plain.deps,
                      "the sealer changed a change's header");
    return graph_.addLocal(std::move(*sealed)).hash;
  }

  void rollback() {
    PORTCULLIS_REQUIRE(txOpen_, "the transaction is closed");
    txOpen_ = false;
    if (txOps_.empty()) return;
    txOps_.clear();
    resetOps();
    for (const ChangeEnvelope* e : graph_.changes()) applyEnvelope(*e);
    // Replaying the history is no change, and the rolled-back ops are none either.
    if (touched_) touched_->resize(txTouchStart_);
  }

  // An empty vector for a new op's pred, with room if a committed op left some.
  std::vector<OpRef> sparePred() {
    if (sparePreds_.empty()) return {};
    std::vector<OpRef> pred = std::move(sparePreds_.back());
    sparePreds_.pop_back();
    pred.clear();
    return pred;
  }

  bool txOpen() const { return txOpen_; }
  std::size_t txOpCount() const { return txOps_.size(); }

  // --- lookups shared by reads and transactions ------------------------------------------------

  std::optional<OpRef> toRef(const ObjId& id) const {
    if (id.isRoot()) return kRoot;
    auto actor = ops_->actors().find(id.actor());
    if (!actor) return std::nullopt;
    return OpRef{id.counter(), *actor};
  }

  ObjId toObjId(OpRef ref) const {
    if (ref.counter == 0) return ObjId::root();
    return ObjId(ref.counter, ops_->actors().at(ref.actor));
  }

  const Object* object(const ObjId& id) const {
    auto ref = toRef(id);
    return ref ? ops_->findObject(*ref) : nullptr;
  }

  Value read(const Entry& e) const {
    if (e.object) return ObjectRef{*e.object, toObjId(e.id)};
    if (std::holds_alternative<Counter>(e.value)) return Counter{ops_->counterValue(e)};
    return std::visit([](const auto& v) -> Value { return v; }, e.value);
  }

  const ActorId& actor() const { return actor_; }
  const ChangeGraph& graph() const { return graph_; }
  const DocumentOptions& options() const { return options_; }

 private:
  static const ActorId& actorOf(const ChangeData& c, std::uint32_t local) {
    return local == 0 ? c.actor : c.otherActors[local - 1];
  }

  void resetOps() {
    ops_ = std::make_unique<OpSet>();
    self_ = ops_->actors().intern(actor_);
  }

  // Applies an envelope already in the graph (it opened when it was added).
  void applyEnvelope(const ChangeEnvelope& env) {
    if (options_.sealer) {
      auto plain = open(env);
      PORTCULLIS_ASSERT(plain, "a sealed change in the graph no longer opens: {}",
                        plain.error().message());
      applyOps(plain->data, plain->envelope.actor);
      return;
    }
    ChangeData change = decodeChange(env);
    applyOps(change, env.actor);
  }

  // Applies a decoded change's ops, rewriting their actor indexes to the document's.
  // `author` is the change's actor (parseChange moves it out of the data into the envelope).
  void applyOps(ChangeData& change, const ActorId& author) {
    std::vector<std::uint32_t>& table = actorMap_;
    table.assign(1, ops_->actors().intern(author));
    for (const ActorId& a : change.otherActors) table.push_back(ops_->actors().intern(a));
    auto docRef = [&](OpRef r) { return r.counter == 0 ? r : OpRef{r.counter, table[r.actor]}; };
    for (std::size_t i = 0; i < change.ops.size(); ++i) {
      Op& op = change.ops[i];
      op.obj = docRef(op.obj);
      op.elem = docRef(op.elem);
      for (OpRef& p : op.pred) p = docRef(p);
      const OpRef id{change.startOp + i, table[0]};
      ops_->apply(op, id);
      note(op, id);
    }
  }

  // Records where `op` (with id `id`, document actor indexes) took effect, if recording.
  void note(const Op& op, OpRef id) {
    if (!touched_) return;
    touched_->push_back(Touch{.obj = op.obj,
                              .elem = op.insert ? id : op.elem,
                              .key = op.elemKey ? std::string() : op.mapKey,
                              .elemKey = op.elemKey});
  }

  // The path from the root to `obj`, if it is still in the document: at each step, among the
  // values at the slot where it was made.
  std::optional<Path> pathOf(const Object& obj) const {
    std::vector<const Object*> chain;
    for (const Object* o = &obj; o->parent != nullptr; o = o->parent) chain.push_back(o);
    Path path;
    path.reserve(chain.size() + 1);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      const Object& o = **it;
      const auto& entries = o.parentSlot->entries;
      if (std::none_of(entries.begin(), entries.end(),
                       [&](const Entry& e) { return e.id == o.id; })) {
        return std::nullopt;
      }
      if (o.parentKey != nullptr) {
        path.emplace_back(*o.parentKey);
      } else {
        path.emplace_back(o.parent->seq.visibleBefore(o.parentSlot->elem));
      }
    }
    return path;
  }

 public:
  void recordPaths() {
    if (!touched_) touched_.emplace();
  }

  std::vector<Path> takeChangedPaths() {
    std::vector<Path> out;
    if (!touched_) return out;
    for (const Touch& t : *touched_) {
      const Object* obj = ops_->findObject(t.obj);
      if (obj == nullptr || t.elemKey == (obj->type == ObjType::Map)) continue;
      auto path = pathOf(*obj);
      if (!path) continue;
      if (obj->type == ObjType::Map) {
        path->emplace_back(t.key);
      } else if (obj->type == ObjType::List) {
        const Elem* e = ops_->findElem(t.elem);
        if (e == nullptr || e->owner != obj) continue;
        path->emplace_back(obj->seq.visibleBefore(e));
      }
      // A text changes as a whole: its characters are not values of their own.
      out.push_back(std::move(*path));
    }
    touched_.reset();
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

 private:
  DocumentOptions options_;
  ActorId actor_;
  ChangeGraph graph_;
  // Where recorded ops took effect (recordPaths): the object, and the key or element.
  struct Touch {
    OpRef obj;
    OpRef elem;
    std::string key;
    bool elemKey = false;
  };
  std::optional<std::vector<Touch>> touched_;
  std::size_t txTouchStart_ = 0;  // touched_'s size when the open transaction began

 public:
  // The state is read directly by Document and Transaction below.
  std::unique_ptr<OpSet> ops_;

 private:
  std::uint32_t self_ = 0;
  bool txOpen_ = false;
  std::vector<Op> txOps_;
  std::uint64_t txStart_ = 0;
  // Scratch space of add() and applyOps(), kept to spare an allocation per change.
  std::vector<const ChangeEnvelope*> applied_;
  std::vector<std::uint32_t> actorMap_;
  std::vector<std::uint32_t> commitActors_;  // commit()'s, likewise
  std::vector<Op> opsScratch_;               // addBytes()'s decoded ops, likewise
  Bytes opBlob_;                             // commit()'s op blob, likewise
  static constexpr std::size_t kSparePreds = 16;
  std::vector<std::vector<OpRef>> sparePreds_;  // committed ops' preds, for sparePred()
};

}  // namespace detail

using detail::Action;
using detail::Elem;
using detail::Entry;
using detail::Object;
using detail::Op;
using detail::OpRef;
using detail::Slot;

namespace {

Error notFound(const std::string& what) { return Error(Errc::NotFound, what); }

const Slot* mapSlot(const Object& obj, std::string_view key) {
  auto it = obj.map.find(key);
  return it == obj.map.end() || it->second.entries.empty() ? nullptr : &it->second;
}

bool isSequence(const Object& obj) { return obj.type != ObjType::Map; }

// The ids of a slot's entries, as a new op's pred.
std::vector<OpRef> idsOf(detail::DocumentState& s, const Slot& slot) {
  std::vector<OpRef> ids = s.sparePred();
  ids.reserve(slot.entries.size());
  for (const Entry& e : slot.entries) ids.push_back(e.id);
  return ids;
}

// Increments name the counter that currently wins; anything else is not a counter to add to.
Result<std::vector<OpRef>> counterTarget(const Slot* slot) {
  if (slot == nullptr || slot->entries.back().object ||
      !std::holds_alternative<Counter>(slot->entries.back().value)) {
    return notFound("no counter there");
  }
  return std::vector<OpRef>{slot->entries.back().id};
}

Op mapOp(OpRef obj, std::string_view key, std::vector<OpRef> pred, Action action) {
  Op op;
  op.obj = obj;
  op.mapKey = std::string(key);
  op.pred = std::move(pred);
  op.action = action;
  return op;
}

Op elemOp(OpRef obj, OpRef elem, bool insert, std::vector<OpRef> pred, Action action) {
  Op op;
  op.obj = obj;
  op.elemKey = true;
  op.elem = elem;
  op.insert = insert;
  op.pred = std::move(pred);
  op.action = action;
  return op;
}

Action makeAction(ObjType type) {
  switch (type) {
    case ObjType::Map: return Action::MakeMap;
    case ObjType::List: return Action::MakeList;
    case ObjType::Text: return Action::MakeText;
  }
  PORTCULLIS_REQUIRE(false, "unknown object type");
}

}  // namespace

// --- Transaction ----------------------------------------------------------------------------

namespace {

struct Target {
  OpRef ref;
  const Object* obj;
};

Result<Target> findTarget(const detail::DocumentState& s, const ObjId& id, bool wantMap) {
  auto ref = s.toRef(id);
  const Object* obj = ref ? s.ops_->findObject(*ref) : nullptr;
  if (obj == nullptr) return notFound("no object " + id.toString());
  if (isSequence(*obj) == wantMap) {
    return notFound("object " + id.toString() + (wantMap ? " is not a map" : " is not a list"));
  }
  return Target{*ref, obj};
}

Result<const Elem*> findElem(const Target& t, std::size_t index) {
  const Elem* e = t.obj->seq.at(index);
  if (e == nullptr) return notFound("index " + std::to_string(index) + " is out of range");
  return e;
}

// The element after which an insert at `index` goes (kRoot: the head).
Result<OpRef> insertRef(const Target& t, std::size_t index) {
  if (index > t.obj->seq.visibleCount()) {
    return notFound("index " + std::to_string(index) + " is past the end");
  }
  return index == 0 ? detail::kRoot : t.obj->seq.at(index - 1)->id;
}

Result<void> checkDepth(const Target& t) {
  if (t.obj->depth + 1 > detail::kMaxDepth) {
    return Error(Errc::Overloaded, "objects nest at most " + std::to_string(detail::kMaxDepth) +
                                       " deep");
  }
  return {};
}

Result<void> checkValue(const ScalarValue& v) {
  if (auto* s = std::get_if<std::string>(&v); s && !detail::isValidUtf8(*s)) {
    return Error(Errc::Malformed, "string is not valid UTF-8");
  }
  return {};
}

}  // namespace

Transaction::Transaction(Transaction&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}

Transaction::~Transaction() {
  if (state_ && state_->txOpen()) state_->rollback();
}

Result<void> Transaction::put(const ObjId& map, std::string_view key, ScalarValue value) {
  auto t = findTarget(*state_, map, true);
  if (!t) return t.error();
  if (auto ok = checkValue(value); !ok) return ok;
  if (!detail::isValidUtf8(key)) return Error(Errc::Malformed, "key is not valid UTF-8");
  const Slot* slot = mapSlot(*t->obj, key);
  Op op = mapOp(t->ref, key, slot ? idsOf(*state_, *slot) : std::vector<OpRef>{}, Action::Set);
  op.value = std::move(value);
  return state_->localEdit(std::move(op));
}

Result<ObjId> Transaction::putObject(const ObjId& map, std::string_view key, ObjType type) {
  auto t = findTarget(*state_, map, true);
  if (!t) return t.error();
  if (auto ok = checkDepth(*t); !ok) return ok.error();
  if (!detail::isValidUtf8(key)) return Error(Errc::Malformed, "key is not valid UTF-8");
  const Slot* slot = mapSlot(*t->obj, key);
  auto id = state_->localOp(
      mapOp(t->ref, key, slot ? idsOf(*state_, *slot) : std::vector<OpRef>{}, makeAction(type)));
  if (!id) return id.error();
  return state_->toObjId(*id);
}

Result<void> Transaction::remove(const ObjId& map, std::string_view key) {
  auto t = findTarget(*state_, map, true);
  if (!t) return t.error();
  const Slot* slot = mapSlot(*t->obj, key);
  if (slot == nullptr) return notFound("no key '" + std::string(key) + "'");
  return state_->localEdit(mapOp(t->ref, key, idsOf(*state_, *slot), Action::Delete));
}

Result<void> Transaction::increment(const ObjId& map, std::string_view key, std::int64_t delta) {
  auto t = findTarget(*state_, map, true);
  if (!t) return t.error();
  auto target = counterTarget(mapSlot(*t->obj, key));
  if (!target) return target.error();
  Op op = mapOp(t->ref, key, std::move(*target), Action::Increment);
  op.delta = delta;
  return state_->localEdit(std::move(op));
}

Result<void> Transaction::insert(const ObjId& list, std::size_t index, ScalarValue value) {
  auto t = findTarget(*state_, list, false);
  if (!t) return t.error();
  if (auto ok = checkValue(value); !ok) return ok;
  auto ref = insertRef(*t, index);
  if (!ref) return ref.error();
  Op op = elemOp(t->ref, *ref, true, {}, Action::Set);
  op.value = std::move(value);
  return state_->localEdit(std::move(op));
}

Result<ObjId> Transaction::insertObject(const ObjId& list, std::size_t index, ObjType type) {
  auto t = findTarget(*state_, list, false);
  if (!t) return t.error();
  if (auto ok = checkDepth(*t); !ok) return ok.error();
  auto ref = insertRef(*t, index);
  if (!ref) return ref.error();
  auto id = state_->localOp(elemOp(t->ref, *ref, true, {}, makeAction(type)));
  if (!id) return id.error();
  return state_->toObjId(*id);
}

Result<void> Transaction::set(const ObjId& list, std::size_t index, ScalarValue value) {
  auto t = findTarget(*state_, list, false);
  if (!t) return t.error();
  if (auto ok = checkValue(value); !ok) return ok;
  auto e = findElem(*t, index);
  if (!e) return e.error();
  Op op = elemOp(t->ref, (*e)->id, false, idsOf(*state_, (*e)->slot), Action::Set);
  op.value = std::move(value);
  return state_->localEdit(std::move(op));
}

Result<ObjId> Transaction::setObject(const ObjId& list, std::size_t index, ObjType type) {
  auto t = findTarget(*state_, list, false);
  if (!t) return t.error();
  if (auto ok = checkDepth(*t); !ok) return ok.error();
  auto e = findElem(*t, index);
  if (!e) return e.error();
  auto id = state_->localOp(
      elemOp(t->ref, (*e)->id, false, idsOf(*state_, (*e)->slot), makeAction(type)));
  if (!id) return id.error();
  return state_->toObjId(*id);
}

Result<void> Transaction::remove(const ObjId& list, std::size_t index) {
  auto t = findTarget(*state_, list, false);
  if (!t) return t.error();
  auto e = findElem(*t, index);
  if (!e) return e.error();
  return state_->localEdit(
      elemOp(t->ref, (*e)->id, false, idsOf(*state_, (*e)->slot), Action::Delete));
}

Result<void> Transaction::increment(const ObjId& list, std::size_t index, std::int64_t delta) {
  auto t = findTarget(*state_, list, false);
  if (!t) return t.error();
  auto e = findElem(*t, index);
  if (!e) return e.error();
  auto target = counterTarget(&(*e)->slot);
  if (!target) return target.error();
  Op op = elemOp(t->ref, (*e)->id, false, std::move(*target), Action::Increment);
  op.delta = delta;
  return state_->localEdit(std::move(op));
}

Result<void> Transaction::splice(const ObjId& textObj, std::size_t index, std::size_t deleteCount,
                                 std::string_view text) {
  auto t = findTarget(*state_, textObj, false);
  if (!t) return t.error();
  if (t->obj->type != ObjType::Text) return notFound("object " + textObj.toString() + " is not text");
  if (!detail::isValidUtf8(text)) return Error(Errc::Malformed, "text is not valid UTF-8");
  const std::size_t length = t->obj->seq.visibleCount();
  if (index > length || deleteCount > length - index) {
    return notFound("splice range is out of bounds");
  }
  for (std::size_t i = 0; i < deleteCount; ++i) {
    if (auto ok = remove(textObj, index); !ok) return ok;
  }
  // Each character goes after the one before it: its reference is the previous op's id.
  auto ref = insertRef(*t, index);
  if (!ref) return ref.error();
  OpRef after = *ref;
  while (!text.empty()) {
    std::size_t n = detail::utf8CodePointLength(text);
    Op op = elemOp(t->ref, after, true, {}, Action::Set);
    op.value = std::string(text.substr(0, n));
    auto id = state_->localOp(std::move(op));
    if (!id) return id.error();
    after = *id;
    text.remove_prefix(n);
  }
  return {};
}

std::size_t Transaction::pendingOps() const { return state_->txOpCount(); }

std::optional<ChangeHash> Transaction::commit(CommitOptions options) {
  return state_->commit(std::move(options));
}

void Transaction::rollback() { state_->rollback(); }

// --- Document -------------------------------------------------------------------------------

// Not value_or: that would draw random bytes (a system call) even when the actor is given.
Document::Document(DocumentOptions options)
    : state_(std::make_unique<detail::DocumentState>(
          options, options.actor ? *options.actor : ActorId::random())) {}
Document::Document(std::unique_ptr<detail::DocumentState> state) : state_(std::move(state)) {}
Document::~Document() = default;
Document::Document(Document&&) noexcept = default;
Document& Document::operator=(Document&&) noexcept = default;

Result<Document> Document::load(ByteView snapshot, DocumentOptions options) {
  auto changes = detail::parseSnapshot(snapshot, options.maxSnapshotBytes);
  if (!changes) return std::move(changes).error();
  Document doc(options);
  doc.state_->reserve(changes->size());
  for (std::size_t i = 0; i < changes->size(); ++i) {
    auto fail = [&](const std::string& why) {
      return Error(Errc::Malformed, "snapshot: change " + std::to_string(i) + ": " + why);
    };
    auto outcome = doc.state_->addBytes(std::move((*changes)[i]), nullptr);
    if (!outcome) return fail(outcome.error().message());
    if (*outcome != AddOutcome::Applied) return fail("out of order or repeated");
  }
  return doc;
}

Bytes Document::save() const { return detail::encodeSnapshot(state_->graph()); }

Document Document::fork(std::optional<ActorId> actor) const {
  DocumentOptions options = state_->options();
  options.actor = std::move(actor);
  Document copy(options);
  auto report = copy.state_->copyFrom(*state_);
  PORTCULLIS_ASSERT(report.rejected.empty() && report.queued == 0, "fork lost changes");
  return copy;
}

ApplyReport Document::merge(const Document& other) { return state_->copyFrom(*other.state_); }

const ActorId& Document::actor() const { return state_->actor(); }

Transaction Document::transaction() {
  state_->openTransaction();
  return Transaction(*state_);
}

std::optional<Value> Document::get(const ObjId& map, std::string_view key) const {
  const Object* obj = state_->object(map);
  if (obj == nullptr || isSequence(*obj)) return std::nullopt;
  const Slot* slot = mapSlot(*obj, key);
  if (slot == nullptr) return std::nullopt;
  return state_->read(slot->entries.back());
}

std::optional<Value> Document::get(const ObjId& list, std::size_t index) const {
  const Object* obj = state_->object(list);
  if (obj == nullptr || !isSequence(*obj)) return std::nullopt;
  const Elem* e = obj->seq.at(index);
  if (e == nullptr) return std::nullopt;
  return state_->read(e->slot.entries.back());
}

namespace {
std::vector<Value> readAll(const detail::DocumentState& s, const Slot* slot) {
  std::vector<Value> out;
  if (slot == nullptr) return out;
  for (const Entry& e : slot->entries) out.push_back(s.read(e));
  return out;
}
}  // namespace

std::vector<Value> Document::getConflicts(const ObjId& map, std::string_view key) const {
  const Object* obj = state_->object(map);
  if (obj == nullptr || isSequence(*obj)) return {};
  return readAll(*state_, mapSlot(*obj, key));
}

std::vector<Value> Document::getConflicts(const ObjId& list, std::size_t index) const {
  const Object* obj = state_->object(list);
  if (obj == nullptr || !isSequence(*obj)) return {};
  const Elem* e = obj->seq.at(index);
  return readAll(*state_, e ? &e->slot : nullptr);
}

std::vector<std::string> Document::keys(const ObjId& map) const {
  std::vector<std::string> out;
  const Object* obj = state_->object(map);
  if (obj == nullptr || isSequence(*obj)) return out;
  for (const auto& [key, slot] : obj->map) {
    if (!slot.entries.empty()) out.push_back(key);
  }
  return out;
}

std::size_t Document::length(const ObjId& id) const {
  const Object* obj = state_->object(id);
  if (obj == nullptr) return 0;
  if (isSequence(*obj)) return obj->seq.visibleCount();
  return static_cast<std::size_t>(std::count_if(
      obj->map.begin(), obj->map.end(), [](const auto& kv) { return !kv.second.entries.empty(); }));
}

std::optional<ObjType> Document::objectType(const ObjId& id) const {
  const Object* obj = state_->object(id);
  if (obj == nullptr) return std::nullopt;
  return obj->type;
}

namespace {

constexpr std::string_view kReplacementObject = "\xEF\xBF\xBC";  // U+FFFC

std::string textOf(const Object& obj) {
  std::string out;
  obj.seq.forEachVisible([&](const Elem& e) {
    const Entry& w = e.slot.entries.back();
    const auto* s = w.object ? nullptr : std::get_if<std::string>(&w.value);
    out += s ? std::string_view(*s) : kReplacementObject;
  });
  return out;
}

std::string base64(const Bytes& b) {
  std::string out(sodium_base64_encoded_len(b.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), b.data(), b.size(), sodium_base64_VARIANT_ORIGINAL);
  out.pop_back();  // the terminating NUL
  return out;
}

nlohmann::json toJsonValue(const detail::DocumentState& s, const Entry& e);

nlohmann::json toJsonObject(const detail::DocumentState& s, const Object& obj) {
  switch (obj.type) {
    case ObjType::Map: {
      auto out = nlohmann::json::object();
      for (const auto& [key, slot] : obj.map) {
        if (!slot.entries.empty()) out[key] = toJsonValue(s, slot.entries.back());
      }
      return out;
    }
    case ObjType::List: {
      auto out = nlohmann::json::array();
      obj.seq.forEachVisible([&](const Elem& e) { out.push_back(toJsonValue(s, e.slot.entries.back())); });
      return out;
    }
    case ObjType::Text:
      return textOf(obj);
  }
  return nullptr;
}

nlohmann::json toJsonValue(const detail::DocumentState& s, const Entry& e) {
  if (e.object) return toJsonObject(s, *s.ops_->findObject(e.id));
  return std::visit(
      [&](const auto& v) -> nlohmann::json {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, Null>) return nullptr;
        else if constexpr (std::is_same_v<V, Bytes>) return base64(v);
        else if constexpr (std::is_same_v<V, Counter>) return s.ops_->counterValue(e);
        else return v;
      },
      e.value);
}

}  // namespace

std::string Document::text(const ObjId& textObj) const {
  const Object* obj = state_->object(textObj);
  return obj && isSequence(*obj) ? textOf(*obj) : std::string();
}

std::string Document::toJson() const {
  return toJsonObject(*state_, *state_->ops_->findObject(detail::kRoot)).dump();
}

ApplyReport Document::applyChanges(std::span<const Bytes> changes) {
  return state_->applyChanges(changes);
}

ApplyReport detail::DocumentAccess::applyParsed(Document& doc, std::vector<ChangeEnvelope> envelopes,
                                               std::vector<ChangeData>& data) {
  PORTCULLIS_REQUIRE(!doc.state_->options().sealer, "a sealed document parses through its sealer");
  PORTCULLIS_REQUIRE(envelopes.size() == data.size(), "one decoded change per envelope");
  ApplyReport report;
  for (std::size_t i = 0; i < envelopes.size(); ++i) {
    tally(report, doc.state_->add(std::move(envelopes[i]), &data[i], &report));
  }
  report.queued = doc.state_->graph().pendingCount();
  return report;
}

ApplyReport detail::DocumentAccess::applySealed(Document& doc,
                                                std::vector<ChangeEnvelope> envelopes) {
  PORTCULLIS_REQUIRE(doc.state_->options().sealer, "applySealed needs a sealed document");
  ApplyReport report;
  for (ChangeEnvelope& sealed : envelopes) {
    tally(report, doc.state_->addSealed(std::move(sealed), &report));
  }
  report.queued = doc.state_->graph().pendingCount();
  return report;
}

std::vector<ChangeHash> Document::getHeads() const { return state_->graph().heads(); }

std::vector<ChangeHash> Document::getMissingDeps() const { return state_->graph().missingDeps(); }

std::vector<Bytes> Document::getChangesSince(std::span<const ChangeHash> heads) const {
  std::vector<Bytes> out;
  for (const ChangeEnvelope* e : state_->graph().changesSince(heads)) out.push_back(e->payload);
  return out;
}

std::optional<Bytes> Document::getChange(const ChangeHash& hash) const {
  const ChangeEnvelope* e = state_->graph().find(hash);
  if (e == nullptr) return std::nullopt;
  return e->payload;
}

const ChangeGraph& Document::graph() const { return state_->graph(); }

namespace {

// Which changes (by position in the order added) are in the causal past of `heads`, the heads
// included.
Result<std::vector<bool>> pastOf(const ChangeGraph& graph, std::span<const ChangeHash> heads) {
  for (const ChangeHash& h : heads) {
    if (!graph.contains(h)) return notFound("change " + h.toHex() + " is not in the history");
  }
  std::vector<bool> past(graph.size(), true);
  for (const ChangeEnvelope* e : graph.changesSince(heads))
    past[*graph.positionOf(e->hash)] = false;
  return past;
}

}  // namespace

Result<Document> Document::forkAt(std::span<const ChangeHash> heads,
                                  std::optional<ActorId> actor) const {
  const ChangeGraph& graph = state_->graph();
  auto past = pastOf(graph, heads);
  if (!past) return std::move(past).error();
  DocumentOptions options = state_->options();
  options.actor = std::move(actor);
  Document copy(options);
  ApplyReport report;
  // In the order added, which is topological: each change finds its deps already there.
  for (std::size_t pos = 0; pos < graph.size(); ++pos) {
    if ((*past)[pos])
      detail::tally(report, copy.state_->add(graph.changeAt(pos), nullptr, &report));
  }
  PORTCULLIS_ASSERT(
      report.rejected.empty() && report.duplicates == 0 && copy.state_->graph().pendingCount() == 0,
      "forkAt lost changes");
  return copy;
}

Result<std::vector<Bytes>> Document::changesBetween(std::span<const ChangeHash> from,
                                                    std::span<const ChangeHash> to) const {
  const ChangeGraph& graph = state_->graph();
  auto before = pastOf(graph, from);
  if (!before) return std::move(before).error();
  auto after = pastOf(graph, to);
  if (!after) return std::move(after).error();
  for (const ChangeHash& h : from) {
    if (!(*after)[*graph.positionOf(h)]) {
      return Error(Errc::Conflict,
                   "change " + h.toHex() + " is not in the past of the target heads");
    }
  }
  std::vector<Bytes> out;
  for (std::size_t pos = 0; pos < graph.size(); ++pos) {
    if ((*after)[pos] && !(*before)[pos]) out.push_back(graph.changeAt(pos).payload);
  }
  return out;
}

void detail::DocumentAccess::recordPaths(Document& doc) { doc.state_->recordPaths(); }

std::vector<Path> detail::DocumentAccess::takeChangedPaths(Document& doc) {
  return doc.state_->takeChangedPaths();
}

}  // namespace portcullis
