#include "wire/change_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>

#include "change.capnp.h"
#include "detail/assert.h"
#include "detail/utf8.h"

namespace portcullis::detail {
namespace {

namespace schema = ::portcullis::schema;

constexpr unsigned kNestingLimit = 16;
constexpr std::uint32_t kSnapshotVersion = 1;

Error malformed(std::string what) { return Error(Errc::Malformed, "change: " + std::move(what)); }

// Capnp reads words; peer bytes may sit at any address, so unaligned input is copied.
class AlignedWords {
 public:
  explicit AlignedWords(ByteView bytes) {
    if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
      words_ = kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()),
                            bytes.size() / sizeof(capnp::word));
    } else {
      copy_ = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
      std::memcpy(copy_.begin(), bytes.data(), bytes.size());
      words_ = copy_.asPtr();
    }
  }
  kj::ArrayPtr<const capnp::word> words() const { return words_; }

 private:
  kj::Array<capnp::word> copy_;
  kj::ArrayPtr<const capnp::word> words_;
};

capnp::ReaderOptions readerOptions(std::size_t words) {
  capnp::ReaderOptions options;
  // A canonical message has no shared pointers, so each pass reads each word once; the
  // canonical check, the validation and the decoding make a few passes between them.
  options.traversalLimitInWords = words * 8 + 1024;
  options.nestingLimit = kNestingLimit;
  return options;
}

ByteView view(capnp::Data::Reader d) { return ByteView(d.begin(), d.size()); }
std::string_view view(capnp::Text::Reader t) { return std::string_view(t.begin(), t.size()); }

// Validates a Change while decoding it. `table_` holds the change's actor table (author first).
class ChangeReader {
 public:
  explicit ChangeReader(schema::Change::Reader change) : change_(change) {}

  // Fills `out`, whose actor the caller has already read.
  Result<void> read(ChangeData& out) {
    table_.push_back(change_.getActor());
    seq_ = change_.getSeq();
    startOp_ = change_.getStartOp();
    if (seq_ == 0 || seq_ > kMaxCounter) return malformed("seq out of range");
    auto ops = change_.getOps();
    if (startOp_ == 0 || startOp_ > kMaxCounter || kMaxCounter - startOp_ + 1 < ops.size()) {
      return malformed("op counters out of range");
    }
    if (!isValidUtf8(view(change_.getMessage()))) return malformed("message is not UTF-8");

    auto deps = change_.getDeps();
    for (unsigned i = 0; i < deps.size(); ++i) {
      auto dep = ChangeHash::fromBytes(view(deps[i]));
      if (!dep) return malformed("dep: " + dep.error().message());
      if (i > 0 && !lessBytes(deps[i - 1], deps[i])) {
        return malformed("deps are not strictly ascending");
      }
      out.deps.push_back(*dep);
    }
    auto others = change_.getOtherActors();
    for (unsigned i = 0; i < others.size(); ++i) {
      auto other = ActorId::fromBytes(view(others[i]));
      if (!other) return malformed("other actor: " + other.error().message());
      if (i > 0 && !lessBytes(others[i - 1], others[i])) {
        return malformed("other actors are not strictly ascending");
      }
      if (std::ranges::equal(view(others[i]), view(change_.getActor()))) {
        return malformed("other actors repeat the author");
      }
      table_.push_back(others[i]);
      out.otherActors.push_back(std::move(*other));
    }
    out.seq = seq_;
    out.startOp = startOp_;
    out.time = change_.getTime();
    out.message = std::string(view(change_.getMessage()));
    out.ops.resize(ops.size());
    for (unsigned i = 0; i < ops.size(); ++i) {
      if (auto ok = readOp(ops[i], startOp_ + i, out.ops[i]); !ok) {
        return malformed("op " + std::to_string(i) + ": " + ok.error().message());
      }
    }
    return {};
  }

 private:
  static bool lessBytes(capnp::Data::Reader a, capnp::Data::Reader b) {
    return std::ranges::lexicographical_compare(view(a), view(b));
  }

  bool lessRef(schema::OpRef::Reader a, schema::OpRef::Reader b) const {
    if (a.getCounter() != b.getCounter()) return a.getCounter() < b.getCounter();
    return lessBytes(table_[a.getActor()], table_[b.getActor()]);
  }

  // A reference to an earlier op (counter 0 is allowed only where `allowZero`, with actor 0).
  Result<OpRef> readRef(schema::OpRef::Reader ref, std::uint64_t self, bool allowZero) const {
    OpRef r{ref.getCounter(), ref.getActor()};
    if (r.counter == 0) {
      if (!allowZero || r.actor != 0) return Error(Errc::Malformed, "bad root or head reference");
      return r;
    }
    if (r.actor >= table_.size()) return Error(Errc::Malformed, "actor index out of range");
    if (r.counter >= self) return Error(Errc::Malformed, "reference to a later op");
    return r;
  }

  Result<void> readOp(schema::Op::Reader op, std::uint64_t self, Op& out) const {
    auto obj = readRef(op.getObj(), self, /*allowZero=*/true);
    if (!obj) return obj.error();
    bool insert = op.getInsert();
    bool elemKey = false;
    OpRef elem;
    switch (op.getKey().which()) {
      case schema::Op::Key::MAP:
        if (insert) return Error(Errc::Malformed, "insert with a map key");
        if (!isValidUtf8(view(op.getKey().getMap()))) {
          return Error(Errc::Malformed, "key is not UTF-8");
        }
        break;
      case schema::Op::Key::ELEM: {
        auto e = readRef(op.getKey().getElem(), self, /*allowZero=*/insert);
        if (!e) return e.error();
        elemKey = true;
        elem = *e;
        break;
      }
      default:
        return Error(Errc::Unsupported, "unknown key kind");
    }
    auto pred = op.getPred();
    for (unsigned i = 0; i < pred.size(); ++i) {
      auto p = readRef(pred[i], self, /*allowZero=*/false);
      if (!p) return p.error();
      if (i > 0 && !lessRef(pred[i - 1], pred[i])) {
        return Error(Errc::Malformed, "pred is not strictly ascending");
      }
    }
    auto action = op.getAction();
    Action kind = Action::Set;
    ScalarValue value;
    std::int64_t delta = 0;
    switch (action.which()) {
      case schema::Op::Action::DELETE: kind = Action::Delete; break;
      case schema::Op::Action::NULL_: value = Null{}; break;
      case schema::Op::Action::BOOL: value = action.getBool(); break;
      case schema::Op::Action::INT: value = action.getInt(); break;
      case schema::Op::Action::FLOAT64: value = action.getFloat64(); break;
      case schema::Op::Action::STR: {
        auto s = view(action.getStr());
        if (!isValidUtf8(s)) return Error(Errc::Malformed, "string is not UTF-8");
        value = std::string(s);
        break;
      }
      case schema::Op::Action::BYTES: {
        auto b = view(action.getBytes());
        value = Bytes(b.begin(), b.end());
        break;
      }
      case schema::Op::Action::COUNTER: value = Counter{action.getCounter()}; break;
      case schema::Op::Action::INCREMENT:
        kind = Action::Increment;
        delta = action.getIncrement();
        break;
      case schema::Op::Action::MAKE_MAP: kind = Action::MakeMap; break;
      case schema::Op::Action::MAKE_LIST: kind = Action::MakeList; break;
      case schema::Op::Action::MAKE_TEXT: kind = Action::MakeText; break;
      default:
        return Error(Errc::Unsupported, "unknown action");
    }
    if ((kind == Action::Delete || kind == Action::Increment) && (insert || pred.size() == 0)) {
      return Error(Errc::Malformed, "a delete or increment must name ops and cannot insert");
    }
    out.obj = *obj;
    out.elemKey = elemKey;
    if (!elemKey) out.mapKey = std::string(view(op.getKey().getMap()));
    out.elem = elem;
    out.insert = insert;
    out.pred.reserve(pred.size());
    for (auto p : pred) out.pred.push_back(OpRef{p.getCounter(), p.getActor()});
    out.action = kind;
    out.value = std::move(value);
    out.delta = delta;
    return {};
  }

  schema::Change::Reader change_;
  std::vector<capnp::Data::Reader> table_;
  std::uint64_t seq_ = 0;
  std::uint64_t startOp_ = 0;
};

Result<void> checkFrame(ByteView bytes, std::size_t maxBytes, const char* what) {
  if (bytes.size() > maxBytes) {
    return Error(Errc::Overloaded, std::string(what) + " of " + std::to_string(bytes.size()) +
                                       " bytes exceeds the limit of " + std::to_string(maxBytes));
  }
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Error(Errc::Malformed, std::string(what) + " is not a whole number of words");
  }
  return {};
}

void setRef(schema::OpRef::Builder b, OpRef r) {
  b.setCounter(r.counter);
  b.setActor(r.actor);
}

capnp::Data::Reader asData(ByteView b) { return capnp::Data::Reader(b.data(), b.size()); }
capnp::Text::Reader text(const std::string& s) { return capnp::Text::Reader(s.c_str(), s.size()); }

// The envelope of a plain change: its header, and its canonical bytes as payload and hash.
ChangeEnvelope envelopeOf(const ChangeData& change, Bytes payload) {
  return ChangeEnvelope{
      .hash = ChangeHash::of(payload),
      .actor = change.actor,
      .seq = change.seq,
      .startOp = change.startOp,
      .opCount = change.ops.size(),
      .deps = change.deps,
      .payload = std::move(payload),
  };
}

Bytes canonicalBytes(kj::Array<capnp::word> words) {
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

}  // namespace

Result<ParsedChange> parseChange(Bytes payload, std::size_t maxBytes) {
  if (auto ok = checkFrame(payload, maxBytes, "change"); !ok) return ok.error();
  try {
    // operator new aligns the vector's storage for capnp.
    kj::ArrayPtr<const capnp::word> segment[1] = {
        kj::arrayPtr(reinterpret_cast<const capnp::word*>(payload.data()),
                     payload.size() / sizeof(capnp::word))};
    capnp::SegmentArrayMessageReader message(segment, readerOptions(segment[0].size()));
    if (!message.isCanonical()) return malformed("not canonically encoded");
    auto change = message.getRoot<schema::Change>();
    auto actor = ActorId::fromBytes(view(change.getActor()));
    if (!actor) return malformed(actor.error().message());
    ChangeData data{.actor = std::move(*actor)};
    if (auto ok = ChangeReader(change).read(data); !ok) return ok.error();
    ChangeEnvelope envelope = envelopeOf(data, std::move(payload));
    return ParsedChange{std::move(envelope), std::move(data)};
  } catch (const kj::Exception& e) {
    return malformed(e.getDescription().cStr());
  }
}

ChangeData decodeChange(const ChangeEnvelope& envelope) {
  kj::ArrayPtr<const capnp::word> segment[1] = {
      kj::arrayPtr(reinterpret_cast<const capnp::word*>(envelope.payload.data()),
                   envelope.payload.size() / sizeof(capnp::word))};
  capnp::SegmentArrayMessageReader message(segment, readerOptions(segment[0].size()));
  ChangeData out{.actor = envelope.actor};
  auto ok = ChangeReader(message.getRoot<schema::Change>()).read(out);
  PORTCULLIS_ASSERT(ok.has_value(), "a checked change no longer decodes");
  return out;
}

ChangeEnvelope encodeChange(const ChangeData& change) {
  capnp::MallocMessageBuilder builder;
  auto c = builder.initRoot<schema::Change>();
  c.setActor(asData(change.actor.bytes()));
  c.setSeq(change.seq);
  c.setStartOp(change.startOp);
  c.setTime(change.time);
  c.setMessage(text(change.message));
  auto deps = c.initDeps(change.deps.size());
  for (unsigned i = 0; i < change.deps.size(); ++i) deps.set(i, asData(change.deps[i].bytes()));
  auto others = c.initOtherActors(change.otherActors.size());
  for (unsigned i = 0; i < change.otherActors.size(); ++i) {
    others.set(i, asData(change.otherActors[i].bytes()));
  }
  auto ops = c.initOps(change.ops.size());
  for (unsigned i = 0; i < change.ops.size(); ++i) {
    const Op& op = change.ops[i];
    auto o = ops[i];
    setRef(o.initObj(), op.obj);
    if (op.elemKey) {
      setRef(o.getKey().initElem(), op.elem);
    } else {
      o.getKey().setMap(text(op.mapKey));
    }
    o.setInsert(op.insert);
    auto pred = o.initPred(op.pred.size());
    for (unsigned j = 0; j < op.pred.size(); ++j) setRef(pred[j], op.pred[j]);
    auto a = o.getAction();
    switch (op.action) {
      case Action::Delete: a.setDelete(); break;
      case Action::Increment: a.setIncrement(op.delta); break;
      case Action::MakeMap: a.setMakeMap(); break;
      case Action::MakeList: a.setMakeList(); break;
      case Action::MakeText: a.setMakeText(); break;
      case Action::Set:
        std::visit(
            [&](const auto& v) {
              using V = std::decay_t<decltype(v)>;
              if constexpr (std::is_same_v<V, Null>) a.setNull();
              else if constexpr (std::is_same_v<V, bool>) a.setBool(v);
              else if constexpr (std::is_same_v<V, std::int64_t>) a.setInt(v);
              else if constexpr (std::is_same_v<V, double>) a.setFloat64(v);
              else if constexpr (std::is_same_v<V, std::string>) a.setStr(text(v));
              else if constexpr (std::is_same_v<V, Bytes>) a.setBytes(asData(v));
              else a.setCounter(v.value);
            },
            op.value);
        break;
    }
  }
  return envelopeOf(change, canonicalBytes(capnp::canonicalize(c.asReader())));
}

Bytes encodeSnapshot(const std::vector<const ChangeEnvelope*>& changes) {
  // The size is known exactly, so the snapshot is built in place in the output buffer, in one
  // segment laid out in preorder: the canonical form, with no second pass or copy.
  constexpr std::size_t kWord = sizeof(capnp::word);
  std::size_t words = 1 + 2 + changes.size();  // root pointer, Snapshot struct, list pointers
  // Plain payloads are whole words; a sealer's may not be, and Data pads to a word.
  for (const ChangeEnvelope* c : changes) words += (c->payload.size() + kWord - 1) / kWord;
  Bytes out(words * kWord);
  capnp::FlatMessageBuilder builder(kj::arrayPtr(reinterpret_cast<capnp::word*>(out.data()), words));
  auto s = builder.initRoot<schema::Snapshot>();
  s.setVersion(kSnapshotVersion);
  auto list = s.initChanges(static_cast<unsigned>(changes.size()));
  for (unsigned i = 0; i < changes.size(); ++i) list.set(i, asData(changes[i]->payload));
  builder.requireFilled();
  return out;
}

Result<std::vector<Bytes>> parseSnapshot(ByteView bytes, std::size_t maxBytes) {
  if (auto ok = checkFrame(bytes, maxBytes, "snapshot"); !ok) return ok.error();
  try {
    AlignedWords words(bytes);
    kj::ArrayPtr<const capnp::word> segment[1] = {words.words()};
    capnp::SegmentArrayMessageReader message(segment, readerOptions(segment[0].size()));
    if (!message.isCanonical()) return Error(Errc::Malformed, "snapshot: not canonical");
    auto snapshot = message.getRoot<schema::Snapshot>();
    if (snapshot.getVersion() != kSnapshotVersion) {
      return Error(Errc::Unsupported,
                   "snapshot: version " + std::to_string(snapshot.getVersion()));
    }
    std::vector<Bytes> out;
    out.reserve(snapshot.getChanges().size());
    for (auto c : snapshot.getChanges()) out.emplace_back(c.begin(), c.end());
    return out;
  } catch (const kj::Exception& e) {
    return Error(Errc::Malformed, std::string("snapshot: ") + e.getDescription().cStr());
  }
}

}  // namespace portcullis::detail
