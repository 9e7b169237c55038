// The plain change format: canonical encoding, hashing, and every structural reject path.
#include "wire/change_codec.h"

#include <algorithm>
#include <functional>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include "change.capnp.h"

namespace portcullis::detail {
namespace {

ActorId actor(std::uint8_t fill) { return *ActorId::fromBytes(Bytes(16, fill)); }

Op setOp(std::string key, std::int64_t value) {
  Op op;
  op.mapKey = std::move(key);
  op.action = Action::Set;
  op.value = value;
  return op;
}

ChangeData sample() {
  ChangeData c{.actor = actor(1)};
  c.seq = 1;
  c.startOp = 1;
  c.time = 1;
  c.message = "m";
  c.ops.push_back(setOp("a", 1));
  return c;
}

Result<ParsedChange> reparse(const ChangeData& c) {
  return parseChange(encodeChange(c).payload, 1 << 20);
}

// sample()'s change with `edit` applied through capnp, canonicalized: as a peer could send it.
Bytes editedSample(const std::function<void(schema::Change::Builder)>& edit) {
  const Bytes payload = encodeChange(sample()).payload;
  kj::ArrayPtr<const capnp::word> segment[1] = {kj::arrayPtr(
      reinterpret_cast<const capnp::word*>(payload.data()), payload.size() / sizeof(capnp::word))};
  capnp::SegmentArrayMessageReader reader(segment);
  capnp::MallocMessageBuilder builder;
  builder.setRoot(reader.getRoot<schema::Change>());
  edit(builder.getRoot<schema::Change>());
  auto words = capnp::canonicalize(builder.getRoot<schema::Change>().asReader());
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

// sample()'s canonical bytes with the op blob replaced by `ops`.
Bytes withOps(const Bytes& ops) {
  return editedSample([&](schema::Change::Builder change) {
    change.setOps(capnp::Data::Reader(ops.data(), ops.size()));
  });
}

// sample()'s op, in the blob encoding: int, root object, key "a", no pred, zigzag(1).
const Bytes kSampleOp{0x04, 0x00, 0x01, 'a', 0x00, 0x02};

void expectRejected(const Bytes& payload, Errc code) {
  auto parsed = parseChange(payload, 1 << 20);
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().code(), code) << parsed.error().message();
}

void expectRejected(const ChangeData& c, Errc code = Errc::Malformed) {
  auto parsed = reparse(c);
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().code(), code) << parsed.error().message();
}

TEST(ChangeCodec, ParsesWhatItEncodes) {
  ChangeData c = sample();
  c.deps = {ChangeHash::of(Bytes{1}), ChangeHash::of(Bytes{2})};
  std::sort(c.deps.begin(), c.deps.end());
  c.otherActors = {actor(2)};
  Op del;
  del.mapKey = "a";
  del.action = Action::Delete;
  del.pred = {OpRef{1, 1}};
  c.startOp = 5;
  c.ops.push_back(std::move(del));
  ChangeEnvelope env = encodeChange(c);
  auto parsed = parseChange(env.payload, 1 << 20);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->envelope.hash, env.hash);
  EXPECT_EQ(parsed->envelope.deps, c.deps);
  EXPECT_EQ(parsed->envelope.opCount, 2u);
  EXPECT_EQ(parsed->data.message, "m");
  EXPECT_EQ(parsed->data.otherActors.size(), 1u);
  ASSERT_EQ(parsed->data.ops.size(), 2u);
  EXPECT_EQ(std::get<std::int64_t>(parsed->data.ops[0].value), 1);
  EXPECT_EQ(parsed->data.ops[1].pred, (std::vector<OpRef>{OpRef{1, 1}}));
}

TEST(ChangeCodec, HashesTheSameChangeIdenticallyEveryTime) {
  // Pinned: a change of the format must never change its hash, or history breaks.
  ChangeEnvelope a = encodeChange(sample());
  ChangeEnvelope b = encodeChange(sample());
  EXPECT_EQ(a.payload, b.payload);
  EXPECT_EQ(a.hash.toHex(), "1427cf5b901cae588bdd84f20c93656355d051dcafa4008626e5bfdea6ae0401");
}

TEST(ChangeCodec, ReadsTheOpBlobAsDocumented) {
  EXPECT_EQ(withOps(kSampleOp), encodeChange(sample()).payload);
}

TEST(ChangeCodec, RejectsAnUnknownActionOrFlagAsUnsupported) {
  Bytes op = kSampleOp;
  op[0] = 0x0D;  // the first action code not assigned
  expectRejected(withOps(op), Errc::Unsupported);
  op[0] = 0x44;  // int, with a flag bit not assigned
  expectRejected(withOps(op), Errc::Unsupported);
}

TEST(ChangeCodec, RejectsAnOpBlobThatIsCutShortOverlongOrFollowedByBytes) {
  for (std::size_t n = 1; n < kSampleOp.size(); ++n) {
    expectRejected(withOps(Bytes(kSampleOp.begin(), kSampleOp.begin() + static_cast<std::ptrdiff_t>(n))),
                   Errc::Malformed);
  }
  // kSampleOp with zigzag(1) written in two bytes
  expectRejected(withOps(Bytes{0x04, 0x00, 0x01, 'a', 0x00, 0x82, 0x00}), Errc::Malformed);
  // kSampleOp, then the start of a second op (which would be counter 2)
  expectRejected(withOps(Bytes{0x04, 0x00, 0x01, 'a', 0x00, 0x02, 0x04}), Errc::Malformed);
}

TEST(ChangeCodec, RejectsAnEmptyFieldThatIsPresent) {
  Bytes empty;
  expectRejected(withOps(empty), Errc::Malformed);
}

TEST(ChangeCodec, RejectsBytesThatAreNotCanonical) {
  Bytes payload = encodeChange(sample()).payload;
  payload.insert(payload.end(), 8, 0);  // a trailing word no canonical message has
  EXPECT_FALSE(parseChange(payload, 1 << 20).has_value());
}

TEST(ChangeCodec, RejectsOversizedAndRaggedInput) {
  Bytes payload = encodeChange(sample()).payload;
  auto big = parseChange(payload, payload.size() - 8);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code(), Errc::Overloaded);
  payload.pop_back();
  EXPECT_FALSE(parseChange(payload, 1 << 20).has_value());
  EXPECT_FALSE(parseChange(Bytes{}, 1 << 20).has_value());
}

TEST(ChangeCodec, RejectsAReferenceToALaterOrOwnOp) {
  ChangeData c = sample();
  c.ops[0].pred = {OpRef{1, 0}};  // the op itself has counter 1
  expectRejected(c);
}

TEST(ChangeCodec, RejectsAnActorIndexOutOfRange) {
  ChangeData c = sample();
  c.startOp = 3;
  c.ops[0].pred = {OpRef{1, 1}};  // no other actors
  expectRejected(c);
}

TEST(ChangeCodec, RejectsPredNotStrictlyAscending) {
  ChangeData c = sample();
  c.startOp = 5;
  c.ops[0].pred = {OpRef{2, 0}, OpRef{1, 0}};
  expectRejected(c);
  c.ops[0].pred = {OpRef{2, 0}, OpRef{2, 0}};
  expectRejected(c);
}

TEST(ChangeCodec, RejectsDepsNotStrictlyAscending) {
  ChangeData c = sample();
  c.deps = {ChangeHash::of(Bytes{1}), ChangeHash::of(Bytes{2})};
  std::sort(c.deps.rbegin(), c.deps.rend());
  expectRejected(c);
}

TEST(ChangeCodec, RejectsOtherActorsThatRepeatTheAuthorOrAreUnsorted) {
  ChangeData c = sample();
  c.otherActors = {actor(1)};
  expectRejected(c);
  c.otherActors = {actor(3), actor(2)};
  expectRejected(c);
}

TEST(ChangeCodec, RejectsInvalidUtf8) {
  ChangeData c = sample();
  c.ops[0].mapKey = "\xC0\xAF";  // overlong
  expectRejected(c);
  c = sample();
  c.ops[0].value = std::string("\xED\xA0\x80");  // a surrogate
  expectRejected(c);
  c = sample();
  c.message = "\xFF";
  expectRejected(c);
}

TEST(ChangeCodec, RejectsADeleteOrIncrementThatNamesNothing) {
  ChangeData c = sample();
  c.ops[0].action = Action::Delete;
  expectRejected(c);
  c.ops[0].action = Action::Increment;
  expectRejected(c);
}

TEST(ChangeCodec, RejectsAnInsertWithAMapKeyOrASetOfTheHead) {
  ChangeData c = sample();
  c.ops[0].insert = true;
  expectRejected(c);
  c = sample();
  c.ops[0].elemKey = true;  // set (not insert) at the head
  expectRejected(c);
}

TEST(ChangeCodec, RejectsCountersOutOfRange) {
  ChangeData c = sample();
  c.startOp = kMaxCounter;
  c.ops.push_back(setOp("b", 2));  // the second op would pass kMaxCounter
  expectRejected(c);
  c = sample();
  c.seq = 0;
  expectRejected(c);
}

TEST(ChangeCodec, SnapshotRoundTripsItsChanges) {
  ChangeEnvelope a = encodeChange(sample());
  ChangeData second = sample();
  second.seq = 2;
  second.startOp = 2;
  second.deps = {a.hash};
  ChangeEnvelope b = encodeChange(second);
  Bytes snapshot = encodeSnapshot({&a, &b});
  auto parts = parseSnapshot(snapshot, 1 << 20);
  ASSERT_TRUE(parts.has_value()) << parts.error().message();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0], a.payload);
  EXPECT_EQ((*parts)[1], b.payload);
}

TEST(ChangeCodec, SnapshotRejectsSizesThatDoNotSplitItsChanges) {
  const Bytes change = encodeChange(sample()).payload;
  auto snapshotWith = [&](std::vector<std::uint32_t> sizes) {
    capnp::MallocMessageBuilder builder;
    auto s = builder.initRoot<schema::Snapshot>();
    s.setVersion(2);
    auto list = s.initSizes(static_cast<unsigned>(sizes.size()));
    for (unsigned i = 0; i < sizes.size(); ++i) list.set(i, sizes[i]);
    s.setChanges(capnp::Data::Reader(change.data(), change.size()));
    auto words = capnp::canonicalize(s.asReader());
    auto bytes = words.asBytes();
    return Bytes(bytes.begin(), bytes.end());
  };
  const auto size = static_cast<std::uint32_t>(change.size());
  ASSERT_TRUE(parseSnapshot(snapshotWith({size}), 1 << 20).has_value());
  // Sizes need not be whole words (a sealer's payloads are not): this splits into two parts,
  // which fail later, when each is parsed as a change.
  auto uneven = parseSnapshot(snapshotWith({size - 4, 4}), 1 << 20);
  ASSERT_TRUE(uneven.has_value());
  EXPECT_EQ(uneven->size(), 2u);
  for (auto sizes : std::vector<std::vector<std::uint32_t>>{
           {}, {size - 8}, {size + 8}, {0, size}, {size - 8, 8, 8}}) {
    auto parsed = parseSnapshot(snapshotWith(sizes), 1 << 20);
    ASSERT_FALSE(parsed.has_value());
    EXPECT_EQ(parsed.error().code(), Errc::Malformed);
  }
}

TEST(ChangeCodec, SnapshotRoundTripsAnyNumberOfChanges) {
  // 0 and odd counts leave the list of sizes empty or padded to a word.
  std::vector<ChangeEnvelope> envelopes;
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    ChangeData c = sample();
    c.seq = seq;
    c.startOp = seq;
    if (!envelopes.empty()) c.deps = {envelopes.back().hash};
    envelopes.push_back(encodeChange(c));
  }
  for (std::size_t n = 0; n <= envelopes.size(); ++n) {
    std::vector<const ChangeEnvelope*> order;
    for (std::size_t i = 0; i < n; ++i) order.push_back(&envelopes[i]);
    auto parts = parseSnapshot(encodeSnapshot(order), 1 << 20);
    ASSERT_TRUE(parts.has_value()) << n << ": " << parts.error().message();
    ASSERT_EQ(parts->size(), n);
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ((*parts)[i], envelopes[i].payload);
  }
}

TEST(ChangeCodec, SnapshotRejectsTruncationAndSize) {
  ChangeEnvelope a = encodeChange(sample());
  Bytes snapshot = encodeSnapshot({&a});
  for (std::size_t n = 0; n < snapshot.size(); ++n) {
    Bytes cut(snapshot.begin(), snapshot.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(parseSnapshot(cut, 1 << 20).has_value()) << "length " << n;
  }
  auto big = parseSnapshot(snapshot, snapshot.size() - 8);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code(), Errc::Overloaded);
}

// Changes of every header shape: each of `times`, with and without deps, three messages, 0, 1
// or 3 other actors (the first named by a pred when `predOnOther`), and one with no ops.
std::vector<ChangeData> headerShapes(std::initializer_list<std::int64_t> times, bool predOnOther) {
  std::vector<ChangeData> shapes;
  for (std::int64_t time : times) {
    for (bool withDeps : {false, true}) {
      for (const char* message : {"", "m", "a longer message of more than eight bytes"}) {
        for (std::size_t others : {0u, 1u, 3u}) {
          ChangeData c = sample();
          c.time = time;
          c.message = message;
          if (withDeps) {
            c.deps = {ChangeHash::of(Bytes{1}), ChangeHash::of(Bytes{2})};
            std::sort(c.deps.begin(), c.deps.end());
          }
          for (std::size_t i = 0; i < others; ++i) c.otherActors.push_back(actor(10 + i));
          if (predOnOther && others > 0) {
            c.startOp = 2;
            c.ops[0].pred = {OpRef{1, 1}};
          }
          shapes.push_back(c);
        }
      }
    }
  }
  ChangeData noOps = sample();
  noOps.ops.clear();
  noOps.message.clear();
  shapes.push_back(noOps);
  return shapes;
}

// encodeChange writes the canonical form itself; capnp's own canonicalize() of what it wrote must
// give the same bytes, for every shape of header: time zero or negative, deps, a message, other
// actors, empty trailing fields.
TEST(ChangeCodec, WritesExactlyWhatCapnpCanonicalizeWould) {
  const std::vector<ChangeData> shapes = headerShapes({0, 1, -5}, false);
  for (const ChangeData& c : shapes) {
    SCOPED_TRACE("time " + std::to_string(c.time) + ", message '" + c.message + "', " +
                 std::to_string(c.deps.size()) + " deps, " + std::to_string(c.otherActors.size()) +
                 " other actors, " + std::to_string(c.ops.size()) + " ops");
    const Bytes payload = encodeChange(c).payload;
    ASSERT_EQ(payload.size() % sizeof(capnp::word), 0u);
    kj::ArrayPtr<const capnp::word> segment[1] = {kj::arrayPtr(
        reinterpret_cast<const capnp::word*>(payload.data()), payload.size() / sizeof(capnp::word))};
    capnp::SegmentArrayMessageReader reader(segment);
    auto words = capnp::canonicalize(reader.getRoot<schema::Change>());
    auto bytes = words.asBytes();
    EXPECT_EQ(Bytes(bytes.begin(), bytes.end()), payload);
  }
}

// parseChange reads the canonical layout directly and falls back to capnp only for other bytes;
// it must decide and decode exactly as the capnp reading does: for every header shape, and for
// every single-bit flip and truncation of each.
TEST(ChangeCodec, ReadsEveryChangeAndEveryFlipExactlyAsCapnpDoes) {
  const std::vector<ChangeData> shapes = headerShapes({0, -5}, true);
  auto same = [](const Bytes& bytes) -> testing::AssertionResult {
    auto fast = parseChange(bytes, 1 << 20);
    auto slow = parseChangeWithCapnp(bytes, 1 << 20);
    if (fast.has_value() != slow.has_value()) {
      return testing::AssertionFailure()
             << "fast " << (fast ? "accepts" : fast.error().message()) << ", capnp "
             << (slow ? "accepts" : slow.error().message());
    }
    if (!fast) {
      if (fast.error().code() != slow.error().code()) {
        return testing::AssertionFailure() << "different codes: " << fast.error().message()
                                           << " / " << slow.error().message();
      }
      return testing::AssertionSuccess();
    }
    const ChangeEnvelope& a = fast->envelope;
    const ChangeEnvelope& b = slow->envelope;
    if (a.hash != b.hash || a.actor != b.actor || a.seq != b.seq || a.startOp != b.startOp ||
        a.opCount != b.opCount || a.deps != b.deps || fast->data.time != slow->data.time ||
        fast->data.message != slow->data.message ||
        fast->data.otherActors != slow->data.otherActors ||
        encodeChange(fast->data).payload != encodeChange(slow->data).payload) {
      return testing::AssertionFailure() << "both accept, but read different changes";
    }
    return testing::AssertionSuccess();
  };
  std::size_t accepted = 0;
  for (const ChangeData& c : shapes) {
    const Bytes payload = encodeChange(c).payload;
    ASSERT_TRUE(parseChange(payload, 1 << 20).has_value());
    for (std::size_t bit = 0; bit < payload.size() * 8; ++bit) {
      Bytes flipped = payload;
      flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      EXPECT_TRUE(same(flipped)) << "bit " << bit << " of a change of " << payload.size();
      accepted += parseChange(flipped, 1 << 20).has_value();
    }
    for (std::size_t words = 1; words < payload.size() / 8; ++words) {
      EXPECT_TRUE(same(Bytes(payload.begin(), payload.begin() + 8 * words))) << words << " words";
    }
    Bytes longer = payload;
    longer.insert(longer.end(), 8, 0);
    EXPECT_TRUE(same(longer));
  }
  EXPECT_GT(accepted, 0u);  // flips in a time or a value make other valid changes

  // A pointer to an empty value where the canonical layout has a null one: the same size as
  // the change without it, and rejected either way.
  for (int field = 0; field < 4; ++field) {
    SCOPED_TRACE("empty field " + std::to_string(field));
    const Bytes bytes = editedSample([&](schema::Change::Builder change) {
      switch (field) {
        case 0: change.setDeps(capnp::Data::Reader()); break;
        case 1: change.setOps(capnp::Data::Reader()); break;
        case 2: change.setMessage(""); break;
        default: change.initOtherActors(0); break;
      }
    });
    EXPECT_TRUE(same(bytes));
    EXPECT_FALSE(parseChange(bytes, 1 << 20).has_value());
  }
}

}  // namespace
}  // namespace portcullis::detail
