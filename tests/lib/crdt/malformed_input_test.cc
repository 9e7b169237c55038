// Hostile input to Document (architecture §4, §9): every single-bit flip and every
// truncation of real changes and snapshots, random bytes with and without a plausible Cap'n Proto
// framing, oversized input, equivocation and the bounded queue of changes waiting for deps.
//
// The contract under test: bad bytes give an error value (a rejected entry in ApplyReport, or a
// Result error from load), never a crash, never an escaping exception, and never a half-applied
// change: a rejected change leaves save(), toJson(), the heads and the queue as they were.
//
// Random choices (sampled bits, garbage bytes) are seeded from gtest's random seed, which every
// test prints via SCOPED_TRACE; `--gtest_random_seed=<seed>` replays it.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "portcullis/document.h"

namespace portcullis {
namespace {

using Rng = std::mt19937_64;

// Past this many bits, a bit-flip test samples instead of trying every bit.
constexpr std::size_t kMaxBitsPerChange = 8192;
constexpr std::size_t kMaxBitsPerSnapshot = 4096;
constexpr std::size_t kMaxTruncations = 3000;
// Failures reported one by one before the rest are only counted.
constexpr std::size_t kShownFailures = 5;

std::uint32_t gtestSeed() {
  return static_cast<std::uint32_t>(testing::UnitTest::GetInstance()->random_seed());
}

std::string seedNote() {
  std::ostringstream out;
  out << "seed " << gtestSeed() << " (replay: --gtest_random_seed=" << gtestSeed() << ")";
  return out.str();
}

ActorId actor(std::uint8_t fill, std::size_t size) {
  return ActorId::fromBytes(Bytes(size, fill)).value();
}

DocumentOptions withActor(ActorId a) {
  DocumentOptions o;
  o.actor = std::move(a);
  return o;
}

Bytes randomBytes(Rng& rng, std::size_t n) {
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

void putWord(Bytes& out, std::uint64_t w) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(w >> (8 * i)));
}

// A Cap'n Proto struct pointer to the word right after it.
std::uint64_t structPointer(std::uint16_t dataWords, std::uint16_t pointerWords) {
  return (static_cast<std::uint64_t>(pointerWords) << 48) |
         (static_cast<std::uint64_t>(dataWords) << 32);
}

CommitOptions at(std::int64_t time) {
  CommitOptions o;
  o.time = time;
  return o;
}

template <typename T>
testing::AssertionResult isOk(const Result<T>& r) {
  if (r.has_value()) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "error " << errcName(r.error().code()) << ": "
                                     << r.error().message();
}

// Everything observable that a rejected change must not touch.
struct Observed {
  Bytes saved;
  std::string json;
  std::vector<ChangeHash> heads;
  std::vector<ChangeHash> missing;
  std::size_t graphSize = 0;
  std::size_t pending = 0;
  friend bool operator==(const Observed&, const Observed&) = default;
};

Observed observe(const Document& doc) {
  return Observed{doc.save(),          doc.toJson(),       doc.getHeads(),
                  doc.getMissingDeps(), doc.graph().size(), doc.graph().pendingCount()};
}

std::string differences(const Observed& before, const Observed& after) {
  std::string out;
  if (before.saved != after.saved) out += " save() changed;";
  if (before.json != after.json) out += " toJson() changed to " + after.json + ";";
  if (before.heads != after.heads) out += " heads changed;";
  if (before.missing != after.missing) out += " missing deps changed;";
  if (before.graphSize != after.graphSize) out += " graph size changed;";
  if (before.pending != after.pending) out += " pending count changed;";
  return out;
}

// Offers one change; an exception escaping is a failure of its own, reported against `what`.
std::optional<ApplyReport> tryApply(Document& doc, const Bytes& change, const std::string& what) {
  try {
    return doc.applyChanges(std::span<const Bytes>(&change, 1));
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": applyChanges threw: " << e.what();
  } catch (...) {
    ADD_FAILURE() << what << ": applyChanges threw a non-std exception";
  }
  return std::nullopt;
}

std::optional<Result<Document>> tryLoad(ByteView bytes, DocumentOptions options,
                                        const std::string& what) {
  try {
    return Document::load(bytes, std::move(options));
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": load threw: " << e.what();
  } catch (...) {
    ADD_FAILURE() << what << ": load threw a non-std exception";
  }
  return std::nullopt;
}

// ApplyReport::queued counts the changes "still waiting for deps at the end of the batch". That
// may mean those of this batch or every waiting change; both readings are accepted here.
bool queuedMeans(const ApplyReport& report, std::size_t ofThisBatch, std::size_t pendingAfter) {
  return report.queued == ofThisBatch || report.queued == pendingAfter;
}

// A rejected single change: exactly one error, nothing applied or queued, nothing changed.
std::string rejectionProblem(const ApplyReport& report, const Observed& before,
                             const Document& doc) {
  std::ostringstream out;
  if (report.rejected.size() != 1 || report.applied != 0 ||
      !queuedMeans(report, 0, before.pending) || report.duplicates != 0) {
    out << "not rejected (applied " << report.applied << ", queued " << report.queued
        << ", duplicates " << report.duplicates << ", rejected " << report.rejected.size()
        << ");";
  }
  out << differences(before, observe(doc));
  return out.str();
}

bool isBoundError(Errc code) { return code == Errc::Overloaded || code == Errc::Malformed; }

// Every bit if there are few enough, else a sample that always includes the first and last
// 64 bits (framing and the end of the last object).
std::vector<std::size_t> bitsToFlip(Rng& rng, std::size_t bytes, std::size_t maxBits) {
  const std::size_t total = bytes * 8;
  std::vector<std::size_t> bits;
  if (total <= maxBits) {
    for (std::size_t b = 0; b < total; ++b) bits.push_back(b);
    return bits;
  }
  std::set<std::size_t> chosen;
  for (std::size_t b = 0; b < 64; ++b) {
    chosen.insert(b);
    chosen.insert(total - 1 - b);
  }
  std::uniform_int_distribution<std::size_t> any(0, total - 1);
  while (chosen.size() < maxBits) chosen.insert(any(rng));
  return {chosen.begin(), chosen.end()};
}

std::vector<std::size_t> lengthsToTry(Rng& rng, std::size_t size, std::size_t maxLengths) {
  std::vector<std::size_t> lengths;
  if (size <= maxLengths) {
    for (std::size_t n = 0; n < size; ++n) lengths.push_back(n);
    return lengths;
  }
  std::set<std::size_t> chosen;
  for (std::size_t n = 0; n < 128; ++n) {
    chosen.insert(n);
    chosen.insert(size - 1 - n);
  }
  std::uniform_int_distribution<std::size_t> any(0, size - 1);
  while (chosen.size() < maxLengths) chosen.insert(any(rng));
  return {chosen.begin(), chosen.end()};
}

// A real document with every value type, concurrent edits by three actors of 1, 16 and 32 bytes,
// a merge change with two deps, deletes, counters in a map and in a list, and nested objects.
struct Corpus {
  std::vector<Bytes> changes;  // topological order
  Bytes snapshot;
};

void buildCorpus(Corpus& out) {
  const ObjId root = ObjId::root();
  Document alice(withActor(actor(0xA1, 16)));
  ObjId list = root, text = root, map = root;
  {
    auto tx = alice.transaction();
    ASSERT_TRUE(isOk(tx.put(root, "null", Null{})));
    ASSERT_TRUE(isOk(tx.put(root, "true", true)));
    ASSERT_TRUE(isOk(tx.put(root, "false", false)));
    ASSERT_TRUE(isOk(tx.put(root, "int", std::numeric_limits<std::int64_t>::min())));
    ASSERT_TRUE(isOk(tx.put(root, "small", std::int64_t{-42})));
    ASSERT_TRUE(isOk(tx.put(root, "double", 3.25)));
    ASSERT_TRUE(isOk(tx.put(root, "negzero", -0.0)));
    ASSERT_TRUE(isOk(tx.put(root, "inf", std::numeric_limits<double>::infinity())));
    ASSERT_TRUE(isOk(tx.put(root, "string", std::string("h\xC3\xA9llo, \xF0\x9D\x84\x9E"))));
    ASSERT_TRUE(isOk(tx.put(root, "empty", std::string())));
    ASSERT_TRUE(isOk(tx.put(root, "bytes", Bytes{0, 1, 2, 0xFF})));
    ASSERT_TRUE(isOk(tx.put(root, "counter", Counter{10})));
    auto m = tx.putObject(root, "map", ObjType::Map);
    ASSERT_TRUE(isOk(m));
    map = *m;
    ASSERT_TRUE(isOk(tx.put(map, "nested", std::string("x"))));
    auto l = tx.putObject(root, "list", ObjType::List);
    ASSERT_TRUE(isOk(l));
    list = *l;
    ASSERT_TRUE(isOk(tx.insert(list, 0, std::int64_t{1})));
    ASSERT_TRUE(isOk(tx.insert(list, 1, std::string("two"))));
    auto inner = tx.insertObject(list, 2, ObjType::Map);
    ASSERT_TRUE(isOk(inner));
    ASSERT_TRUE(isOk(tx.put(*inner, "three", 3.0)));
    ASSERT_TRUE(isOk(tx.insert(list, 3, Counter{0})));
    ASSERT_TRUE(isOk(tx.insert(list, 4, Bytes{})));
    auto t = tx.putObject(root, "text", ObjType::Text);
    ASSERT_TRUE(isOk(t));
    text = *t;
    ASSERT_TRUE(isOk(tx.splice(text, 0, 0, "hello world")));
    ASSERT_TRUE(tx.commit(CommitOptions{.message = "first", .time = 1'700'000'000}));
  }
  Document bob = alice.fork(actor(0xB2, 32));
  {
    auto tx = bob.transaction();
    ASSERT_TRUE(isOk(tx.increment(root, "counter", 5)));
    ASSERT_TRUE(isOk(tx.splice(text, 5, 6, " there \xE2\x82\xAC")));
    ASSERT_TRUE(isOk(tx.remove(root, "null")));
    ASSERT_TRUE(isOk(tx.set(list, 0, std::string("one"))));
    ASSERT_TRUE(isOk(tx.remove(list, 1)));
    ASSERT_TRUE(isOk(tx.increment(list, 2, 7)));
    auto nestedText = tx.insertObject(list, 0, ObjType::Text);
    ASSERT_TRUE(isOk(nestedText));
    ASSERT_TRUE(isOk(tx.splice(*nestedText, 0, 0, "in a list")));
    ASSERT_TRUE(tx.commit(CommitOptions{.message = "", .time = 1'700'000'100}));
  }
  {
    auto tx = alice.transaction();
    ASSERT_TRUE(isOk(tx.put(root, "int", std::int64_t{7})));
    ASSERT_TRUE(isOk(tx.increment(root, "counter", -3)));
    ASSERT_TRUE(isOk(tx.insert(list, 0, Null{})));
    auto deep = tx.putObject(map, "deep", ObjType::List);
    ASSERT_TRUE(isOk(deep));
    ASSERT_TRUE(isOk(tx.insert(*deep, 0, true)));
    ASSERT_TRUE(tx.commit(CommitOptions{.message = "concurrent", .time = 1'700'000'050}));
  }
  ASSERT_TRUE(alice.merge(bob).rejected.empty());
  {
    auto tx = alice.transaction();
    ASSERT_TRUE(isOk(tx.put(root, "merged", true)));
    ASSERT_TRUE(isOk(tx.put(root, "string", std::string("after the merge"))));
    ASSERT_TRUE(isOk(tx.splice(text, 0, 1, "H")));
    ASSERT_TRUE(tx.commit(CommitOptions{.message = "merge", .time = 1'700'000'200}));
  }
  Document carol(withActor(actor(0xC3, 1)));
  ASSERT_TRUE(carol.merge(alice).rejected.empty());
  {
    auto tx = carol.transaction();
    Bytes blob(300);
    for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<std::uint8_t>(i * 7);
    ASSERT_TRUE(isOk(tx.put(root, "blob", blob)));
    for (std::int64_t i = 0; i < 20; ++i) {
      ASSERT_TRUE(isOk(tx.put(map, "key-" + std::to_string(i), i * i)));
    }
    ASSERT_TRUE(isOk(tx.splice(text, 3, 0, " and some more text")));
    ASSERT_TRUE(isOk(tx.remove(map, "nested")));
    ASSERT_TRUE(tx.commit(CommitOptions{.message = "carol", .time = 1'700'000'300}));
  }
  out.changes = carol.getChangesSince({});
  out.snapshot = carol.save();
  ASSERT_EQ(out.changes.size(), 5u);
}

// A fresh document holding `changes` (which must all apply).
Document documentWith(std::span<const Bytes> changes, DocumentOptions options = {}) {
  Document doc(std::move(options));
  const ApplyReport report = doc.applyChanges(changes);
  EXPECT_TRUE(report.rejected.empty());
  EXPECT_EQ(report.applied, changes.size());
  return doc;
}

class MalformedInput : public testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(buildCorpus(corpus_)); }

  Rng rng_{gtestSeed()};
  Corpus corpus_;
};

TEST_F(MalformedInput, RejectsEveryBitFlipOfARealChangeUnlessItIsAnotherValidChange) {
  SCOPED_TRACE(seedNote());
  std::size_t rejected = 0, accepted = 0, queued = 0, failures = 0;
  for (std::size_t i = 0; i < corpus_.changes.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "change " << i);
    const Bytes& original = corpus_.changes[i];
    const ChangeHash originalHash = ChangeHash::of(original);
    // Every change before this one in topological order: the deps and then some.
    const std::span<const Bytes> prefix(corpus_.changes.data(), i);
    std::optional<Document> doc(documentWith(prefix));
    const Observed before = observe(*doc);

    for (const std::size_t bit : bitsToFlip(rng_, original.size(), kMaxBitsPerChange)) {
      Bytes flipped = original;
      flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      const std::string what = "bit " + std::to_string(bit);
      const auto report = tryApply(*doc, flipped, what);
      if (!report) {
        ++failures;
        doc.emplace(documentWith(prefix));
        continue;
      }
      std::ostringstream problem;
      if (!report->rejected.empty()) {
        ++rejected;
        problem << rejectionProblem(*report, before, *doc);
      } else if (report->queued == 1 && report->applied == 0 && report->duplicates == 0) {
        // (The document had nothing waiting, so both readings of `queued` give 1.)
        // A flipped dep hash names a change nobody has: the change waits, invisibly.
        ++queued;
        const Observed after = observe(*doc);
        if (after.saved != before.saved || after.json != before.json ||
            after.heads != before.heads) {
          problem << "a queued change is visible;";
        }
        if (after.missing.empty() || after.pending != before.pending + 1) {
          problem << "queued but not pending on a missing dep;";
        }
      } else if (report->applied == 1 && report->queued == 0 && report->duplicates == 0) {
        // Still a valid change (a different time, message, value, actor...): a different change,
        // stored under the hash of exactly these bytes.
        ++accepted;
        const ChangeHash hash = ChangeHash::of(flipped);
        const auto stored = doc->getChange(hash);
        if (!stored || *stored != flipped) {
          problem << "accepted, but not stored as these bytes under their hash;";
        }
        if (doc->getChange(originalHash)) problem << "accepted as the original change;";
        const auto heads = doc->getHeads();
        if (std::find(heads.begin(), heads.end(), hash) == heads.end()) {
          problem << "accepted, but not a head;";
        }
        const Bytes saved = doc->save();
        const auto reloaded = tryLoad(saved, {}, what);
        if (!reloaded || !reloaded->has_value()) {
          problem << "accepted, but its save() does not load;";
        } else if ((*reloaded)->save() != saved || (*reloaded)->toJson() != doc->toJson()) {
          problem << "accepted, but load(save()) differs;";
        }
      } else {
        problem << "unexpected outcome: applied " << report->applied << ", queued "
                << report->queued << ", duplicates " << report->duplicates;
      }
      if (!problem.str().empty()) {
        if (++failures <= kShownFailures) ADD_FAILURE() << what << ": " << problem.str();
      }
      if (report->rejected.empty()) doc.emplace(documentWith(prefix));
    }
  }
  EXPECT_EQ(failures, 0u);
  // Flips in the framing, a range or the canonical encoding are refused; flips in a time or an
  // int value make another valid change. Both must happen, or the test tested nothing.
  EXPECT_GT(rejected, 0u);
  EXPECT_GT(accepted, 0u);
  RecordProperty("rejected", static_cast<int>(rejected));
  RecordProperty("accepted", static_cast<int>(accepted));
  RecordProperty("queued", static_cast<int>(queued));
}

TEST_F(MalformedInput, RejectsEveryTruncationOfARealChange) {
  SCOPED_TRACE(seedNote());
  std::size_t failures = 0, tried = 0;
  for (std::size_t i = 0; i < corpus_.changes.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "change " << i);
    const Bytes& original = corpus_.changes[i];
    Document doc = documentWith(std::span<const Bytes>(corpus_.changes.data(), i));
    const Observed before = observe(doc);
    for (const std::size_t length : lengthsToTry(rng_, original.size(), kMaxTruncations)) {
      ++tried;
      const Bytes truncated(original.begin(),
                            original.begin() + static_cast<std::ptrdiff_t>(length));
      const std::string what = "length " + std::to_string(length);
      const auto report = tryApply(doc, truncated, what);
      if (!report) {
        ++failures;
        break;  // the document may be in any state now
      }
      std::string problem = rejectionProblem(*report, before, doc);
      if (report->rejected.size() == 1 && report->rejected[0].code() != Errc::Malformed) {
        problem += " rejected as " + std::string(errcName(report->rejected[0].code())) +
                   ", not Malformed;";
      }
      if (!problem.empty() && ++failures <= kShownFailures) {
        ADD_FAILURE() << what << " of " << original.size() << ": " << problem;
      }
    }
    // The untruncated change still applies: the document was not disturbed.
    const auto report = tryApply(doc, original, "whole change");
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(report->applied, 1u);
  }
  EXPECT_EQ(failures, 0u) << "of " << tried << " truncations";
}

TEST_F(MalformedInput, RefusesEveryTruncationOfASnapshot) {
  SCOPED_TRACE(seedNote());
  const Bytes& snapshot = corpus_.snapshot;
  std::size_t failures = 0;
  for (const std::size_t length : lengthsToTry(rng_, snapshot.size(), kMaxTruncations)) {
    const Bytes truncated(snapshot.begin(), snapshot.begin() + static_cast<std::ptrdiff_t>(length));
    const std::string what = "length " + std::to_string(length);
    const auto loaded = tryLoad(truncated, {}, what);
    if (!loaded) {
      ++failures;
      continue;
    }
    std::string problem;
    if (loaded->has_value()) {
      problem = "a truncated snapshot loaded";
    } else if (loaded->error().code() != Errc::Malformed) {
      problem = "refused as " + std::string(errcName(loaded->error().code())) + ", not Malformed";
    }
    if (!problem.empty() && ++failures <= kShownFailures) {
      ADD_FAILURE() << what << " of " << snapshot.size() << ": " << problem;
    }
  }
  EXPECT_EQ(failures, 0u);
  // The whole snapshot does load, to the same bytes.
  auto whole = Document::load(snapshot);
  ASSERT_TRUE(isOk(whole));
  EXPECT_TRUE(whole->save() == snapshot);
}

TEST_F(MalformedInput, LoadsABitFlippedSnapshotOnlyIntoAConsistentDocument) {
  SCOPED_TRACE(seedNote());
  const Bytes& snapshot = corpus_.snapshot;
  std::size_t refused = 0, loadedCount = 0, failures = 0;
  for (const std::size_t bit : bitsToFlip(rng_, snapshot.size(), kMaxBitsPerSnapshot)) {
    Bytes flipped = snapshot;
    flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    const std::string what = "bit " + std::to_string(bit);
    auto loaded = tryLoad(flipped, {}, what);
    if (!loaded) {
      ++failures;
      continue;
    }
    if (!loaded->has_value()) {
      ++refused;
      continue;
    }
    ++loadedCount;
    const Document& doc = **loaded;
    std::string problem;
    // A snapshot is a whole history: nothing in it may be left waiting for deps.
    if (!doc.getMissingDeps().empty() || doc.graph().pendingCount() != 0) {
      problem += " loaded with changes still waiting for deps;";
    }
    const Bytes saved = doc.save();
    const auto again = tryLoad(saved, {}, what + " (reloaded)");
    if (!again || !again->has_value()) {
      problem += " its save() does not load;";
    } else if ((*again)->save() != saved || (*again)->toJson() != doc.toJson() ||
               (*again)->getHeads() != doc.getHeads()) {
      problem += " load(save()) differs;";
    }
    if (!problem.empty() && ++failures <= kShownFailures) ADD_FAILURE() << what << ":" << problem;
  }
  EXPECT_EQ(failures, 0u);
  EXPECT_GT(refused, 0u);
  RecordProperty("refused", static_cast<int>(refused));
  RecordProperty("loaded", static_cast<int>(loadedCount));
}

TEST_F(MalformedInput, RejectsRandomBytesWithOrWithoutPlausibleFraming) {
  SCOPED_TRACE(seedNote());
  Document doc = documentWith(corpus_.changes);
  const Observed before = observe(doc);

  struct Case {
    std::string name;
    Bytes bytes;
  };
  std::vector<Case> cases;
  for (const std::size_t length : {0u, 1u, 7u, 8u, 64u, 4096u, 1u << 20}) {
    const int tries = length >= 4096 ? 3 : 20;
    for (int t = 0; t < tries; ++t) {
      cases.push_back({"random " + std::to_string(length), randomBytes(rng_, length)});
    }
    if (length < 16) continue;
    const std::size_t words = length / 8 - 1;
    for (int t = 0; t < tries; ++t) {
      // A stream-framed message: one segment of the right size (the format wants none).
      Bytes framed;
      putWord(framed, static_cast<std::uint64_t>(words) << 32);
      Bytes tail = randomBytes(rng_, words * 8);
      framed.insert(framed.end(), tail.begin(), tail.end());
      cases.push_back({"segment table + random " + std::to_string(length), framed});
      // Two segments, sizes adding up.
      Bytes two;
      putWord(two, (static_cast<std::uint64_t>(1) << 0) | (static_cast<std::uint64_t>(1) << 32));
      putWord(two, static_cast<std::uint64_t>(words - 2));
      tail = randomBytes(rng_, (words - 1) * 8);
      two.insert(two.end(), tail.begin(), tail.end());
      cases.push_back({"two segments + random " + std::to_string(length), two});
      // A canonical-looking root: a struct pointer shaped like Change (3 data words, 5 pointers)
      // or like Snapshot (1 and 1), then random words.
      for (const auto& [dataWords, pointerWords] : {std::pair<int, int>{3, 5}, {1, 1}}) {
        Bytes rooted;
        putWord(rooted, structPointer(static_cast<std::uint16_t>(dataWords),
                                      static_cast<std::uint16_t>(pointerWords)));
        tail = randomBytes(rng_, words * 8);
        rooted.insert(rooted.end(), tail.begin(), tail.end());
        cases.push_back({"struct root " + std::to_string(dataWords) + "/" +
                             std::to_string(pointerWords) + " + random " + std::to_string(length),
                         rooted});
      }
    }
    // The same framings over zeros: every field at its default, so no actor and seq 0.
    Bytes zeros;
    putWord(zeros, structPointer(3, 5));
    zeros.resize(length, 0);
    cases.push_back({"struct root + zeros " + std::to_string(length), zeros});
    Bytes framedZeros;
    putWord(framedZeros, static_cast<std::uint64_t>(words) << 32);
    framedZeros.resize(length, 0);
    cases.push_back({"segment table + zeros " + std::to_string(length), framedZeros});
    // Segment tables that lie: a huge segment count, a huge segment.
    Bytes hugeCount;
    putWord(hugeCount, 0xFFFFFFFFull);
    hugeCount.resize(length, 0xAB);
    cases.push_back({"segment count 2^32 " + std::to_string(length), hugeCount});
    Bytes hugeSegment;
    putWord(hugeSegment, 0x7FFFFFFFull << 32);
    hugeSegment.resize(length, 0);
    cases.push_back({"segment of 2^31 words " + std::to_string(length), hugeSegment});
    // A far pointer to a segment that does not exist.
    Bytes far;
    putWord(far, 0x0000000700000002ull);
    far.resize(length, 0);
    cases.push_back({"far pointer " + std::to_string(length), far});
  }

  std::size_t failures = 0;
  for (const auto& c : cases) {
    const auto report = tryApply(doc, c.bytes, c.name);
    if (!report) {
      ++failures;
      continue;
    }
    std::string problem = rejectionProblem(*report, before, doc);
    const auto loaded = tryLoad(c.bytes, {}, c.name);
    if (!loaded) {
      ++failures;
      continue;
    }
    if (loaded->has_value()) problem += " loaded as a snapshot;";
    if (!problem.empty() && ++failures <= kShownFailures) {
      ADD_FAILURE() << c.name << ":" << problem;
    }
  }
  EXPECT_EQ(failures, 0u) << "of " << cases.size() << " inputs";
}

TEST_F(MalformedInput, RefusesInputLargerThanTheConfiguredBounds) {
  SCOPED_TRACE(seedNote());
  // A valid change and a valid snapshot, each well over 1 KiB.
  Document author(withActor(actor(0x42, 16)));
  {
    auto tx = author.transaction();
    ASSERT_TRUE(isOk(tx.put(ObjId::root(), "big", std::string(3000, 'b'))));
    ASSERT_TRUE(tx.commit(at(0)));
  }
  const std::vector<Bytes> big = author.getChangesSince({});
  ASSERT_EQ(big.size(), 1u);
  const Bytes bigSnapshot = author.save();
  ASSERT_GT(big[0].size(), 3000u);

  DocumentOptions small;
  small.maxChangeBytes = 1024;
  small.maxSnapshotBytes = 2048;

  {
    SCOPED_TRACE("a valid change over maxChangeBytes");
    Document doc(small);
    const Observed before = observe(doc);
    const auto report = tryApply(doc, big[0], "big change");
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(rejectionProblem(*report, before, doc), "");
    ASSERT_EQ(report->rejected.size(), 1u);
    EXPECT_TRUE(isBoundError(report->rejected[0].code()))
        << errcName(report->rejected[0].code());
  }
  {
    SCOPED_TRACE("1 MiB of random bytes over maxChangeBytes");
    Document doc(small);
    const Observed before = observe(doc);
    const auto report = tryApply(doc, randomBytes(rng_, 1u << 20), "1 MiB");
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(rejectionProblem(*report, before, doc), "");
    ASSERT_EQ(report->rejected.size(), 1u);
    EXPECT_TRUE(isBoundError(report->rejected[0].code()))
        << errcName(report->rejected[0].code());
  }
  {
    SCOPED_TRACE("a valid snapshot and random bytes over maxSnapshotBytes");
    for (const Bytes& input : {bigSnapshot, randomBytes(rng_, 1u << 20)}) {
      const auto loaded = tryLoad(input, small, "big snapshot");
      ASSERT_TRUE(loaded.has_value());
      ASSERT_FALSE(loaded->has_value()) << "loaded " << input.size() << " bytes";
      EXPECT_TRUE(isBoundError(loaded->error().code())) << errcName(loaded->error().code());
    }
  }
  {
    SCOPED_TRACE("exactly at the bounds");
    DocumentOptions exact;
    exact.maxChangeBytes = big[0].size();
    exact.maxSnapshotBytes = bigSnapshot.size();
    Document doc(exact);
    const auto report = tryApply(doc, big[0], "change at the bound");
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(report->applied, 1u);
    EXPECT_TRUE(report->rejected.empty());
    EXPECT_TRUE(isOk(Document::load(bigSnapshot, exact)));

    DocumentOptions under;
    under.maxChangeBytes = big[0].size() - 1;
    under.maxSnapshotBytes = bigSnapshot.size() - 1;
    Document tooSmall(under);
    const auto refused = tryApply(tooSmall, big[0], "change a byte over the bound");
    ASSERT_TRUE(refused.has_value());
    ASSERT_EQ(refused->rejected.size(), 1u);
    EXPECT_TRUE(isBoundError(refused->rejected[0].code()));
    const auto notLoaded = Document::load(bigSnapshot, under);
    ASSERT_FALSE(notLoaded.has_value());
    EXPECT_TRUE(isBoundError(notLoaded.error().code()));
  }
}

TEST_F(MalformedInput, RejectsASecondDifferentChangeWithTheSameActorAndSeqAsAConflict) {
  const ActorId a = actor(0x5A, 16);
  Document base(withActor(a));
  {
    auto tx = base.transaction();
    ASSERT_TRUE(isOk(tx.put(ObjId::root(), "x", std::int64_t{1})));
    ASSERT_TRUE(tx.commit(at(0)));
  }
  // Two forks with the same actor: each one's next change is (a, seq 2).
  Document left = base.fork(a);
  Document right = base.fork(a);
  ASSERT_EQ(left.actor(), a);
  ASSERT_EQ(right.actor(), a);
  std::optional<ChangeHash> leftHash, rightHash;
  {
    auto tx = left.transaction();
    ASSERT_TRUE(isOk(tx.put(ObjId::root(), "y", std::string("left"))));
    leftHash = tx.commit(at(1));
  }
  {
    auto tx = right.transaction();
    ASSERT_TRUE(isOk(tx.put(ObjId::root(), "y", std::string("right"))));
    rightHash = tx.commit(at(1));
  }
  ASSERT_TRUE(leftHash && rightHash);
  ASSERT_NE(*leftHash, *rightHash);
  const Bytes baseChange = base.getChangesSince({}).at(0);
  const Bytes leftChange = *left.getChange(*leftHash);
  const Bytes rightChange = *right.getChange(*rightHash);

  {
    SCOPED_TRACE("one after the other");
    Document doc = documentWith(std::vector<Bytes>{baseChange, leftChange});
    const Observed before = observe(doc);
    for (int attempt = 0; attempt < 2; ++attempt) {
      const auto report = tryApply(doc, rightChange, "equivocating change");
      ASSERT_TRUE(report.has_value());
      EXPECT_EQ(rejectionProblem(*report, before, doc), "") << "attempt " << attempt;
      ASSERT_EQ(report->rejected.size(), 1u);
      EXPECT_EQ(report->rejected[0].code(), Errc::Conflict)
          << errcName(report->rejected[0].code()) << ": " << report->rejected[0].message();
    }
    EXPECT_EQ(doc.get(ObjId::root(), "y"), std::optional<Value>(std::string("left")));
  }
  {
    SCOPED_TRACE("in one batch");
    Document doc;
    const std::vector<Bytes> batch{baseChange, rightChange, leftChange};
    const ApplyReport report = doc.applyChanges(batch);
    EXPECT_EQ(report.applied, 2u);
    ASSERT_EQ(report.rejected.size(), 1u);
    EXPECT_EQ(report.rejected[0].code(), Errc::Conflict);
    EXPECT_TRUE(doc.save() == right.save()) << "the first of the two should stand";
  }
}

TEST_F(MalformedInput, DropsAndReportsAWaitingChangeThatTurnsOutToEquivocate) {
  Document base(withActor(actor(0x01, 16)));
  {
    auto tx = base.transaction();
    ASSERT_TRUE(isOk(tx.put(ObjId::root(), "base", true)));
    ASSERT_TRUE(tx.commit(at(0)));
  }
  const Bytes baseChange = base.getChangesSince({}).at(0);
  const ActorId e = actor(0xEE, 16);
  Document left = base.fork(e);
  Document right = base.fork(e);
  for (Document* d : {&left, &right}) {
    auto tx = d->transaction();
    ASSERT_TRUE(isOk(tx.put(ObjId::root(), "who", std::string(d == &left ? "left" : "right"))));
    ASSERT_TRUE(tx.commit(at(1)));
  }
  const std::vector<ChangeHash> leftHeads = left.getHeads(), rightHeads = right.getHeads();
  ASSERT_EQ(leftHeads.size(), 1u);
  ASSERT_EQ(rightHeads.size(), 1u);
  const std::vector<Bytes> both{*left.getChange(leftHeads[0]), *right.getChange(rightHeads[0])};

  Document doc;
  const ApplyReport waiting = doc.applyChanges(both);
  EXPECT_EQ(waiting.queued, 2u);
  EXPECT_EQ(waiting.applied, 0u);
  EXPECT_TRUE(waiting.rejected.empty());
  EXPECT_EQ(doc.getMissingDeps(), std::vector<ChangeHash>{ChangeHash::of(baseChange)});

  const auto report = tryApply(doc, baseChange, "the missing dep");
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->applied, 2u);
  EXPECT_EQ(report->queued, 0u);
  ASSERT_EQ(report->rejected.size(), 1u);
  EXPECT_EQ(report->rejected[0].code(), Errc::Conflict);
  EXPECT_TRUE(doc.getMissingDeps().empty());
  EXPECT_EQ(doc.graph().pendingCount(), 0u);
  EXPECT_TRUE(doc.save() == left.save() || doc.save() == right.save());
}

TEST_F(MalformedInput, QueuesAChangeWithMissingDepsAndAppliesItWhenTheyArrive) {
  Document author(withActor(actor(0x77, 16)));
  std::vector<Bytes> chain;
  for (std::int64_t i = 0; i < 3; ++i) {
    auto tx = author.transaction();
    ASSERT_TRUE(isOk(tx.put(ObjId::root(), "n", i)));
    const auto hash = tx.commit(at(i));
    ASSERT_TRUE(hash.has_value());
    chain.push_back(*author.getChange(*hash));
  }
  Document doc;
  const Bytes emptySave = doc.save();

  const auto third = tryApply(doc, chain[2], "third");
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->queued, 1u);
  EXPECT_EQ(third->applied, 0u);
  EXPECT_TRUE(third->rejected.empty());
  EXPECT_EQ(doc.getMissingDeps(), std::vector<ChangeHash>{ChangeHash::of(chain[1])});
  EXPECT_TRUE(doc.getHeads().empty());
  EXPECT_TRUE(doc.save() == emptySave) << "a waiting change is saved";
  EXPECT_FALSE(doc.get(ObjId::root(), "n").has_value());

  const auto again = tryApply(doc, chain[2], "third again");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->duplicates, 1u);
  EXPECT_EQ(doc.graph().pendingCount(), 1u);

  const auto second = tryApply(doc, chain[1], "second");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->applied, 0u);
  EXPECT_TRUE(second->rejected.empty());
  EXPECT_EQ(doc.graph().pendingCount(), 2u);
  EXPECT_EQ(doc.getMissingDeps(), std::vector<ChangeHash>{ChangeHash::of(chain[0])});

  const auto first = tryApply(doc, chain[0], "first");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->applied, 3u);
  EXPECT_EQ(first->queued, 0u);
  EXPECT_TRUE(first->rejected.empty());
  EXPECT_TRUE(doc.getMissingDeps().empty());
  EXPECT_EQ(doc.graph().pendingCount(), 0u);
  EXPECT_EQ(doc.getHeads(), author.getHeads());
  EXPECT_EQ(doc.get(ObjId::root(), "n"), std::optional<Value>(std::int64_t{2}));
  EXPECT_TRUE(doc.save() == author.save());
}

TEST_F(MalformedInput, RefusesTheSixthWaitingChangeWhenFiveMayWait) {
  Document author(withActor(actor(0x66, 16)));
  std::vector<Bytes> chain;
  for (std::int64_t i = 0; i < 7; ++i) {
    auto tx = author.transaction();
    ASSERT_TRUE(isOk(tx.put(ObjId::root(), "k" + std::to_string(i), i)));
    const auto hash = tx.commit(at(i));
    ASSERT_TRUE(hash.has_value());
    chain.push_back(*author.getChange(*hash));
  }
  DocumentOptions options;
  options.graph.maxPendingChanges = 5;
  Document doc(options);
  for (std::size_t i = 1; i <= 5; ++i) {
    const auto report = tryApply(doc, chain[i], "waiting change " + std::to_string(i));
    ASSERT_TRUE(report.has_value());
    EXPECT_TRUE(queuedMeans(*report, 1, i)) << i << ": queued " << report->queued;
    EXPECT_EQ(report->applied, 0u) << i;
    EXPECT_TRUE(report->rejected.empty()) << i;
    EXPECT_EQ(doc.graph().pendingCount(), i);
  }
  {
    // Offering a waiting change again is a duplicate, not a sixth.
    const auto report = tryApply(doc, chain[3], "a waiting change again");
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(report->duplicates, 1u);
    EXPECT_TRUE(report->rejected.empty());
  }
  const Observed before = observe(doc);
  const auto sixth = tryApply(doc, chain[6], "the sixth waiting change");
  ASSERT_TRUE(sixth.has_value());
  EXPECT_EQ(rejectionProblem(*sixth, before, doc), "");
  ASSERT_EQ(sixth->rejected.size(), 1u);
  EXPECT_EQ(sixth->rejected[0].code(), Errc::Overloaded);

  // The missing first change unblocks all five; then the sixth fits.
  const auto first = tryApply(doc, chain[0], "the missing first change");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->applied, 6u);
  EXPECT_EQ(doc.graph().pendingCount(), 0u);
  const auto last = tryApply(doc, chain[6], "the sixth, now applicable");
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->applied, 1u);
  EXPECT_TRUE(doc.save() == author.save());
}

TEST_F(MalformedInput, RefusesAWaitingChangePastThePendingByteBound) {
  Document author(withActor(actor(0x55, 16)));
  std::vector<Bytes> chain;
  for (std::int64_t i = 0; i < 4; ++i) {
    auto tx = author.transaction();
    ASSERT_TRUE(isOk(tx.put(ObjId::root(), "k", std::string(200, static_cast<char>('a' + i)))));
    const auto hash = tx.commit(at(i));
    ASSERT_TRUE(hash.has_value());
    chain.push_back(*author.getChange(*hash));
  }
  DocumentOptions options;
  options.graph.maxPendingBytes = chain[1].size() + chain[2].size() + chain[3].size() / 2;
  Document doc(options);
  for (std::size_t i = 1; i <= 2; ++i) {
    const auto report = tryApply(doc, chain[i], "waiting change " + std::to_string(i));
    ASSERT_TRUE(report.has_value());
    EXPECT_TRUE(queuedMeans(*report, 1, i)) << i << ": queued " << report->queued;
    EXPECT_TRUE(report->rejected.empty()) << i;
    EXPECT_EQ(doc.graph().pendingCount(), i);
  }
  const Observed before = observe(doc);
  const auto third = tryApply(doc, chain[3], "the change past the byte bound");
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(rejectionProblem(*third, before, doc), "");
  ASSERT_EQ(third->rejected.size(), 1u);
  EXPECT_EQ(third->rejected[0].code(), Errc::Overloaded);
}

}  // namespace
}  // namespace portcullis
