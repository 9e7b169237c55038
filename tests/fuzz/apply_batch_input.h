// tests/fuzz/apply_batch_input.h — apply_batch_fuzz's fixed document with history and its input
// framing, shared with the corpus generator (core_gen_corpus.cc), which writes its seeds from real
// changes made on top of that same document.
//
// Input: flags (1 byte: bit 0, tight queue limits: at most 2 pending changes) ‖ records, at most
// kMaxRecords, each a kind byte (taken mod 3) and its fields:
//   0 raw: u16 length and that many bytes, offered as they are;
//   1 built: a change the target encodes canonically (capnp::canonicalize) from fields, so that
//     mutations reach the op decoder, the DAG rules and the op set instead of stopping at the
//     canonical-encoding check:
//       u8 flags: bits 0-1 the author (testActor), bit 2 a non-zero time, bit 3 empty fields
//         present (deps, ops, message, otherActors set to empty values: never canonical here),
//         bit 4 deps in input order (else sorted and deduplicated), bit 5 a message
//       i8 seq delta: seq = the author's last seq (in the base document and the records before) +
//         1 + delta
//       i8 startOp delta: startOp = the largest op counter of the deps + 1 + delta
//       u8 n, then n dep indexes into the known hashes (the base document's changes in the order
//         they were added, then each earlier record's hash); 0xFF is a hash nobody has
//       u8 other-actors mask over testActor(0..3) (the author's bit is ignored), sorted by bytes
//       u16 length and that many bytes: the ops blob (change.capnp's op encoding)
//       with bit 5: u8 length and that many message bytes
//   2 repeat: u8 index of an earlier record, offered again.
//
// Test support only. Call sodium_init first. Single-threaded.
#pragma once

#include <capnp/message.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "change.capnp.h"
#include "core_fuzz_support.h"
#include "wire/change_codec.h"

namespace portcullis::fuzz::batch {

inline constexpr std::size_t kMaxRecords = 32;
inline constexpr std::uint8_t kTightLimits = 0x01;

enum RecordKind : std::uint8_t { kRaw = 0, kBuilt = 1, kRepeat = 2 };
enum BuiltFlags : std::uint8_t {
  kActorMask = 0x03,
  kWithTime = 0x04,
  kEmptyFields = 0x08,
  kDepsAsGiven = 0x10,
  kWithMessage = 0x20,
};
inline constexpr std::uint8_t kUnknownDep = 0xFF;
// The time a built record with kWithTime carries.
inline constexpr std::int64_t kBuiltTime = 1'700'000'100;

// The authors: the base document's two, a new one of another size, and one of the maximum size.
inline ActorId testActor(std::size_t i) {
  switch (i % 4) {
    case 0:
      return *ActorId::fromBytes(Bytes(16, 0x11));
    case 1:
      return *ActorId::fromBytes(Bytes(16, 0x22));
    case 2:
      return *ActorId::fromBytes(Bytes(8, 0x33));
    default:
      return *ActorId::fromBytes(Bytes(32, 0x01));
  }
}

inline DocumentOptions batchOptions(std::size_t actor, bool tight = false) {
  DocumentOptions o;
  o.actor = testActor(actor);
  if (tight) {
    o.graph.maxPendingChanges = 2;
    o.graph.maxPendingBytes = 4096;
  }
  return o;
}

// The fixed document with history: maps, a list, a text, a counter, scalars of every type,
// concurrent edits by two actors and merges. Deterministic (fixed actors and times).
inline Document baseDocument() {
  CommitOptions at{.message = {}, .time = 1'700'000'000, .allowEmpty = false};
  Document a(batchOptions(0));
  ObjId list = ObjId::root(), text = ObjId::root(), map = ObjId::root();
  {
    Transaction tx = a.transaction();
    (void)tx.put(ObjId::root(), "title", std::string("base"));
    list = *tx.putObject(ObjId::root(), "list", ObjType::List);
    for (std::int64_t i = 0; i < 4; ++i) (void)tx.insert(list, static_cast<std::size_t>(i), i);
    text = *tx.putObject(ObjId::root(), "text", ObjType::Text);
    (void)tx.splice(text, 0, 0, "hello");
    (void)tx.put(ObjId::root(), "n", Counter{1});
    map = *tx.putObject(ObjId::root(), "map", ObjType::Map);
    (void)tx.put(map, "k", std::int64_t{1});
    at.message = "first";
    tx.commit(at);
  }
  Document b = a.fork(testActor(1));
  {
    Transaction tx = a.transaction();
    (void)tx.put(ObjId::root(), "title", std::string("from a"));
    (void)tx.increment(ObjId::root(), "n", 5);
    (void)tx.insert(list, 2, std::string("a"));
    at.message = {};
    at.time = 1'700'000'001;
    tx.commit(at);
  }
  {
    Transaction tx = b.transaction();
    (void)tx.put(ObjId::root(), "title", std::string("from b"));
    (void)tx.splice(text, 5, 0, " world");
    (void)tx.remove(list, 0);
    (void)tx.increment(ObjId::root(), "n", -2);
    at.time = 1'700'000'002;
    tx.commit(at);
  }
  (void)a.merge(b);
  {
    Transaction tx = a.transaction();
    (void)tx.put(ObjId::root(), "d", 2.5);
    (void)tx.put(ObjId::root(), "bytes", Bytes{0, 1, 2});
    (void)tx.put(ObjId::root(), "t", true);
    (void)tx.put(ObjId::root(), "null", Null{});
    (void)tx.put(map, "k", std::int64_t{2});
    at.time = 1'700'000'003;
    tx.commit(at);
  }
  {
    Transaction tx = b.transaction();
    (void)tx.putObject(ObjId::root(), "map", ObjType::Map);  // concurrent with a's edit of it
    (void)tx.splice(text, 0, 1, "J");
    at.time = 1'700'000'004;
    tx.commit(at);
  }
  (void)a.merge(b);
  return a;
}

// The known hashes a dep index names, and each author's last seq and each hash's largest op,
// as the records before have left them.
struct BatchState {
  std::vector<ChangeHash> known;
  std::map<ChangeHash, std::uint64_t> maxOp;
  std::map<Bytes, std::uint64_t> lastSeq;

  explicit BatchState(const Document& base) {
    for (const ChangeEnvelope* e : base.graph().changes()) {
      known.push_back(e->hash);
      maxOp[e->hash] = e->maxOp();
    }
    for (std::size_t i = 0; i < 4; ++i) {
      const ActorId a = testActor(i);
      lastSeq[Bytes(a.bytes().begin(), a.bytes().end())] = base.graph().lastSeq(a);
    }
  }
  // A record was offered: its hash becomes known; a change that parses moves its author's seq.
  void note(const Bytes& bytes) {
    const ChangeHash h = ChangeHash::of(bytes);
    known.push_back(h);
    auto parsed = detail::parseChange(bytes, 1u << 20);
    if (!parsed) return;
    const ChangeEnvelope& e = parsed->envelope;
    maxOp[h] = e.maxOp();
    Bytes actor(e.actor.bytes().begin(), e.actor.bytes().end());
    lastSeq[actor] = std::max(lastSeq[actor], e.seq);
  }
  ChangeHash unknownHash(std::size_t salt) const {
    const std::uint8_t b[2] = {0xFF, static_cast<std::uint8_t>(salt)};
    return ChangeHash::of(ByteView(b, 2));
  }
};

// The fields of a built record.
struct Built {
  std::uint8_t flags = 0;
  std::int8_t seqDelta = 0;
  std::int8_t startOpDelta = 0;
  std::vector<std::uint8_t> deps;
  std::uint8_t others = 0;
  Bytes ops;
  std::string message;
};

inline Bytes encodeBuilt(const Built& b, const BatchState& state) {
  const ActorId author = testActor(b.flags & kActorMask);
  const Bytes authorBytes(author.bytes().begin(), author.bytes().end());
  std::vector<ChangeHash> deps;
  std::uint64_t depsMaxOp = 0;
  for (std::size_t i = 0; i < b.deps.size(); ++i) {
    const ChangeHash h = b.deps[i] == kUnknownDep || state.known.empty()
                             ? state.unknownHash(i)
                             : state.known[b.deps[i] % state.known.size()];
    deps.push_back(h);
    if (auto it = state.maxOp.find(h); it != state.maxOp.end()) {
      depsMaxOp = std::max(depsMaxOp, it->second);
    }
  }
  if (!(b.flags & kDepsAsGiven)) {
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
  }
  std::vector<ActorId> others;
  for (std::size_t i = 0; i < 4; ++i) {
    if ((b.others >> i & 1) && testActor(i) != author) others.push_back(testActor(i));
  }
  std::sort(others.begin(), others.end());
  const auto seqIt = state.lastSeq.find(authorBytes);
  const std::uint64_t last = seqIt == state.lastSeq.end() ? 0 : seqIt->second;
  const auto seq = static_cast<std::uint64_t>(static_cast<std::int64_t>(last) + 1 + b.seqDelta);
  const auto startOp =
      static_cast<std::uint64_t>(static_cast<std::int64_t>(depsMaxOp) + 1 + b.startOpDelta);

  capnp::MallocMessageBuilder builder;
  auto c = builder.initRoot<schema::Change>();
  c.setSeq(seq);
  c.setStartOp(startOp);
  if (b.flags & kWithTime) c.setTime(kBuiltTime);
  c.setActor(capnp::Data::Reader(author.bytes().data(), author.bytes().size()));
  const bool empties = (b.flags & kEmptyFields) != 0;
  if (!deps.empty() || empties) {
    Bytes all;
    for (const ChangeHash& h : deps) putBytes(all, h.bytes());
    c.setDeps(capnp::Data::Reader(all.data(), all.size()));
  }
  if (!b.ops.empty() || empties) c.setOps(capnp::Data::Reader(b.ops.data(), b.ops.size()));
  if (!b.message.empty() || empties) {
    c.setMessage(capnp::Text::Reader(b.message.data(), b.message.size()));
  }
  if (!others.empty() || empties) {
    auto list = c.initOtherActors(static_cast<unsigned>(others.size()));
    for (unsigned i = 0; i < others.size(); ++i) {
      list.set(i, capnp::Data::Reader(others[i].bytes().data(), others[i].bytes().size()));
    }
  }
  const auto words = capnp::canonicalize(c.asReader());
  const auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

// The batch an input describes, offered in this order.
inline std::vector<Bytes> readBatch(Reader& r, BatchState& state) {
  std::vector<Bytes> batch;
  while (!r.empty() && batch.size() < kMaxRecords) {
    const std::size_t before = batch.size();
    switch (r.byte() % 3) {
      case kRaw: {
        const ByteView bytes = r.take(r.u16());
        batch.emplace_back(bytes.begin(), bytes.end());
        break;
      }
      case kBuilt: {
        Built b;
        b.flags = r.byte();
        b.seqDelta = static_cast<std::int8_t>(r.byte());
        b.startOpDelta = static_cast<std::int8_t>(r.byte());
        const ByteView deps = r.take(r.byte());
        b.deps.assign(deps.begin(), deps.end());
        b.others = r.byte();
        const ByteView ops = r.take(r.u16());
        b.ops.assign(ops.begin(), ops.end());
        if (b.flags & kWithMessage) b.message = std::string(charsOf(r.take(r.byte())));
        batch.push_back(encodeBuilt(b, state));
        break;
      }
      default: {
        if (batch.empty()) break;
        const Bytes again = batch[r.byte() % batch.size()];
        batch.push_back(again);
        break;
      }
    }
    if (batch.size() > before) state.note(batch.back());
  }
  return batch;
}

// --- for the generator: records of real changes -------------------------------------------------

inline void putRaw(Bytes& out, const Bytes& change) {
  out.push_back(kRaw);
  putU16(out, static_cast<std::uint16_t>(change.size()));
  putBytes(out, change);
}

// The built record that encodes to exactly `change` given `state`, when one does (its author is a
// test actor, its deps are known, and it has no empty field); else nothing.
inline std::optional<Bytes> builtRecordOf(const Bytes& change, const BatchState& state) {
  auto parsed = detail::parseChange(change, 1u << 20);
  if (!parsed) return std::nullopt;
  const ChangeEnvelope& e = parsed->envelope;
  Built b;
  std::optional<std::size_t> author;
  for (std::size_t i = 0; i < 4; ++i) {
    if (testActor(i) == e.actor) author = i;
  }
  if (!author) return std::nullopt;
  b.flags = static_cast<std::uint8_t>(*author);
  if (parsed->data.time != 0) b.flags |= kWithTime;
  for (const ChangeHash& h : e.deps) {
    auto at = std::find(state.known.begin(), state.known.end(), h);
    if (at == state.known.end() || at - state.known.begin() >= kUnknownDep) return std::nullopt;
    b.deps.push_back(static_cast<std::uint8_t>(at - state.known.begin()));
  }
  for (const ActorId& o : parsed->data.otherActors) {
    bool found = false;
    for (std::size_t i = 0; i < 4; ++i) {
      if (testActor(i) == o) {
        b.others |= static_cast<std::uint8_t>(1u << i);
        found = true;
      }
    }
    if (!found) return std::nullopt;
  }
  if (parsed->data.message.size() > 255) return std::nullopt;
  if (!parsed->data.message.empty()) {
    b.flags |= kWithMessage;
    b.message = parsed->data.message;
  }
  // The ops blob, as it stands in the change.
  kj::ArrayPtr<const capnp::word> segment[1] = {kj::arrayPtr(
      reinterpret_cast<const capnp::word*>(change.data()), change.size() / sizeof(capnp::word))};
  capnp::SegmentArrayMessageReader reader(segment);
  const auto ops = reader.getRoot<schema::Change>().getOps();
  b.ops.assign(ops.begin(), ops.end());
  // The deltas that give this change's seq and startOp.
  const Bytes actorBytes(e.actor.bytes().begin(), e.actor.bytes().end());
  const auto seqIt = state.lastSeq.find(actorBytes);
  const std::int64_t last =
      seqIt == state.lastSeq.end() ? 0 : static_cast<std::int64_t>(seqIt->second);
  std::uint64_t depsMaxOp = 0;
  for (const ChangeHash& h : e.deps) {
    if (auto it = state.maxOp.find(h); it != state.maxOp.end())
      depsMaxOp = std::max(depsMaxOp, it->second);
  }
  const std::int64_t seqDelta = static_cast<std::int64_t>(e.seq) - last - 1;
  const std::int64_t opDelta =
      static_cast<std::int64_t>(e.startOp) - static_cast<std::int64_t>(depsMaxOp) - 1;
  if (seqDelta < -128 || seqDelta > 127 || opDelta < -128 || opDelta > 127) return std::nullopt;
  b.seqDelta = static_cast<std::int8_t>(seqDelta);
  b.startOpDelta = static_cast<std::int8_t>(opDelta);
  if (encodeBuilt(b, state) != change) return std::nullopt;

  Bytes out{kBuilt, b.flags, static_cast<std::uint8_t>(b.seqDelta),
            static_cast<std::uint8_t>(b.startOpDelta), static_cast<std::uint8_t>(b.deps.size())};
  putBytes(out, b.deps);
  out.push_back(b.others);
  putU16(out, static_cast<std::uint16_t>(b.ops.size()));
  putBytes(out, b.ops);
  if (b.flags & kWithMessage) {
    out.push_back(static_cast<std::uint8_t>(b.message.size()));
    putBytes(out, viewOf(b.message));
  }
  return out;
}

}  // namespace portcullis::fuzz::batch
