// bench/document_bench.cc — the document workload of bench/README.md, run through portcullis:
// one transaction and commit per op, then a merge of two forks, then save and load.
//
// This is the twin of bench/automerge/document_bench.mjs. The two must generate the same ops from
// the same seed; the state digest each prints to stderr lets bench/document_compare check that
// they did.
//
// Usage: document_bench [--seed S] [--reps R]
// stdout: one JSON line per figure (median of R runs, in milliseconds).
// stderr: saved size, change count and state digests.
#include <sodium.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "portcullis/document.h"

namespace {

using portcullis::ActorId;
using portcullis::Document;
using portcullis::DocumentOptions;
using portcullis::ObjId;
using portcullis::ObjType;

constexpr std::size_t kApplyOps = 10'000;
constexpr std::size_t kReplicaOps = 5'000;
constexpr std::uint32_t kKeyCount = 64;
constexpr std::uint32_t kDefaultSeed = 42;
constexpr int kDefaultReps = 5;
constexpr int kMaxReps = 1000;

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "document_bench: FAILED: %s\n", message.c_str());
  std::exit(EXIT_FAILURE);
}

[[noreturn]] void failWith(const portcullis::Error& error, std::string_view what) {
  fail(std::string(what) + ": " + std::string(portcullis::errcName(error.code())) + ": " +
       error.message());
}

void check(const portcullis::Result<void>& result, std::string_view what) {
  if (!result) failWith(result.error(), what);
}

ActorId fixedActor(std::uint8_t fill) {
  auto actor = ActorId::fromBytes(portcullis::Bytes(ActorId::kDefaultSize, fill));
  if (!actor) fail("ActorId::fromBytes refused 16 bytes");
  return std::move(actor).value();
}

// mulberry32. Unsigned 32-bit arithmetic wraps exactly as the JS twin's Math.imul and >>> 0 do.
class Mulberry32 {
 public:
  explicit Mulberry32(std::uint32_t seed) : a_(seed) {}

  std::uint32_t next() {
    a_ += 0x6D2B79F5u;
    std::uint32_t t = a_;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return t ^ (t >> 14);
  }

 private:
  std::uint32_t a_;
};

const std::array<std::string, kKeyCount>& keyNames() {
  static const std::array<std::string, kKeyCount> names = [] {
    std::array<std::string, kKeyCount> out;
    for (std::uint32_t i = 0; i < kKeyCount; ++i) out[i] = "k" + std::to_string(i);
    return out;
  }();
  return names;
}

struct Op {
  bool isSet = false;
  std::uint32_t key = 0;    // set: index into keyNames()
  std::int64_t value = 0;   // set
  std::size_t pos = 0;      // insert
  char ch = 0;              // insert
};

// The op stream of one replica. Even ops set a root key to an int; odd ops insert one letter into
// the text near a cursor that drifts by -2..+2 each time. `textLength` is the text's length when
// the replica starts; the cursor starts at its end.
class OpGenerator {
 public:
  OpGenerator(std::uint32_t seed, std::size_t textLength)
      : rng_(seed), length_(textLength), cursor_(textLength) {}

  Op next() {
    const std::uint32_t r = rng_.next();
    const bool even = index_++ % 2 == 0;
    if (even) return Op{.isSet = true, .key = r % kKeyCount, .value = r >> 1};
    const auto delta = static_cast<std::int64_t>((r >> 8) % 5) - 2;
    const auto wanted = static_cast<std::int64_t>(cursor_) + delta;
    const auto pos = static_cast<std::size_t>(
        std::clamp<std::int64_t>(wanted, 0, static_cast<std::int64_t>(length_)));
    cursor_ = pos + 1;
    ++length_;
    return Op{.pos = pos, .ch = static_cast<char>('a' + r % 26)};
  }

 private:
  Mulberry32 rng_;
  std::size_t length_;
  std::size_t cursor_;
  std::size_t index_ = 0;
};

void applyOp(Document& doc, const ObjId& root, const ObjId& text, const Op& op) {
  auto tx = doc.transaction();
  if (op.isSet) {
    check(tx.put(root, keyNames()[op.key], op.value), "put");
  } else {
    check(tx.splice(text, op.pos, 0, std::string_view(&op.ch, 1)), "splice");
  }
  if (!tx.commit()) fail("a commit with one op made no change");
}

void runOps(Document& doc, const ObjId& text, OpGenerator& generator, std::size_t count) {
  const ObjId root = ObjId::root();
  for (std::size_t i = 0; i < count; ++i) applyOp(doc, root, text, generator.next());
}

std::optional<ObjId> findText(const Document& doc) {
  auto value = doc.get(ObjId::root(), "text");
  if (!value) return std::nullopt;
  const auto* ref = std::get_if<portcullis::ObjectRef>(&*value);
  if (ref == nullptr || ref->type != ObjType::Text) return std::nullopt;
  return ref->id;
}

// FNV-1a (32 bits) of the text and the root keys, in a form both twins write identically.
std::string stateDigest(const Document& doc, const ObjId& text) {
  std::string s = doc.text(text);
  for (const std::string& key : keyNames()) {
    auto value = doc.get(ObjId::root(), key);
    if (!value) continue;
    const auto* n = std::get_if<std::int64_t>(&*value);
    if (n == nullptr) fail("root key " + key + " does not hold an int");
    s += "\n" + key + "=" + std::to_string(*n);
  }
  std::uint32_t h = 0x811c9dc5u;
  for (char c : s) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 0x01000193u;
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", h);
  return hex;
}

struct Sample {
  double applyMs = 0;
  double mergeMs = 0;
  double saveMs = 0;
  double loadMs = 0;
  // Lower bounds of this snapshot format, timed on the same bytes (bench/README.md):
  double saveFloorMs = 0;  // the snapshot's bytes copied into new memory
  double loadFloorMs = 0;  // BLAKE2b of every change in it, which a verifying load must do
  std::size_t savedBytes = 0;
  std::size_t changes = 0;
  std::string digestApply;
  std::string digestLoad;
};

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

Sample runOnce(std::uint32_t seed) {
  Sample sample;

  // Setup: A's first change makes the empty text.
  DocumentOptions options;
  options.actor = fixedActor(0x01);
  Document a(std::move(options));
  ObjId text = ObjId::root();
  {
    auto tx = a.transaction();
    auto made = tx.putObject(ObjId::root(), "text", ObjType::Text);
    if (!made) failWith(made.error(), "putObject");
    text = *made;
    if (!tx.commit()) fail("creating the text made no change");
  }

  OpGenerator applyOps(seed, 0);
  auto start = Clock::now();
  runOps(a, text, applyOps, kApplyOps);
  sample.applyMs = msSince(start);
  if (a.length(text) != kApplyOps / 2) {
    fail("A's text has " + std::to_string(a.length(text)) + " characters");
  }
  sample.digestApply = stateDigest(a, text);

  const std::size_t forkLength = a.length(text);
  Document b = a.fork(fixedActor(0x02));
  Document c = a.fork(fixedActor(0x03));
  OpGenerator bOps(seed + 1, forkLength);
  OpGenerator cOps(seed + 2, forkLength);
  runOps(b, text, bOps, kReplicaOps);
  runOps(c, text, cOps, kReplicaOps);

  start = Clock::now();
  const portcullis::ApplyReport report = b.merge(c);
  sample.mergeMs = msSince(start);
  if (report.applied != kReplicaOps || !report.rejected.empty() || report.queued != 0) {
    fail("merge applied " + std::to_string(report.applied) + ", queued " +
         std::to_string(report.queued) + ", rejected " + std::to_string(report.rejected.size()) +
         (report.rejected.empty() ? "" : " (first: " + report.rejected.front().message() + ")") +
         "; expected " + std::to_string(kReplicaOps) + " applied");
  }

  start = Clock::now();
  const portcullis::Bytes saved = b.save();
  sample.saveMs = msSince(start);
  sample.savedBytes = saved.size();

  start = Clock::now();
  auto loaded = Document::load(saved);
  sample.loadMs = msSince(start);
  if (!loaded) failWith(loaded.error(), "load");

  const std::size_t expectedLength = kApplyOps / 2 + 2 * (kReplicaOps / 2);
  const std::optional<ObjId> loadedText = findText(*loaded);
  if (!loadedText) fail("the loaded document has no text at root key \"text\"");
  if (loaded->length(*loadedText) != expectedLength) {
    fail("loaded text has " + std::to_string(loaded->length(*loadedText)) +
         " characters, expected " + std::to_string(expectedLength));
  }
  sample.changes = loaded->graph().size();
  const std::size_t expectedChanges = 1 + kApplyOps + 2 * kReplicaOps;
  if (sample.changes != expectedChanges) {
    fail("loaded document has " + std::to_string(sample.changes) + " changes, expected " +
         std::to_string(expectedChanges));
  }
  sample.digestLoad = stateDigest(*loaded, *loadedText);
  if (stateDigest(b, text) != sample.digestLoad) fail("the loaded document differs from the saved one");

  start = Clock::now();
  const portcullis::Bytes copy(saved.begin(), saved.end());
  sample.saveFloorMs = msSince(start);
  if (copy != saved) fail("the copy of the snapshot differs");

  // Each change's own allocation, as load leaves them; the hashes are checked against the
  // graph's so that the loop cannot be optimised away.
  std::vector<portcullis::ByteView> payloads;
  loaded->graph().forEachCanonicalPayload([&](portcullis::ByteView p) { payloads.push_back(p); });
  std::vector<portcullis::ChangeHash> hashes(payloads.size());
  start = Clock::now();
  for (std::size_t i = 0; i < payloads.size(); ++i) hashes[i] = portcullis::ChangeHash::of(payloads[i]);
  sample.loadFloorMs = msSince(start);
  for (const portcullis::ChangeHash& h : hashes) {
    if (!loaded->graph().contains(h)) fail("a change's hash is not in the loaded graph");
  }
  return sample;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

template <typename T>
bool parseNumber(std::string_view text, T& out) {
  if (text.empty() || text.front() < '0' || text.front() > '9') return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

struct Options {
  std::uint32_t seed = kDefaultSeed;
  int reps = kDefaultReps;
};

Options parseArgs(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::puts("usage: document_bench [--seed S] [--reps R]");
      std::exit(EXIT_SUCCESS);
    }
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if ((arg == "--seed" || arg == "--reps") && i + 1 < argc) {
      value = argv[++i];
    }
    if (name == "--seed") {
      if (!value || !parseNumber(*value, options.seed)) fail("--seed needs an integer 0..2^32-1");
    } else if (name == "--reps") {
      if (!value || !parseNumber(*value, options.reps) || options.reps < 1 ||
          options.reps > kMaxReps) {
        fail("--reps must be between 1 and " + std::to_string(kMaxReps));
      }
    } else {
      fail("unknown argument '" + std::string(arg) + "'");
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parseArgs(argc, argv);
  if (sodium_init() < 0) fail("sodium_init failed");

  std::vector<Sample> runs;
  for (int rep = 0; rep < options.reps; ++rep) {
    Sample run = runOnce(options.seed);
    if (!runs.empty() && (run.digestApply != runs.front().digestApply ||
                          run.digestLoad != runs.front().digestLoad)) {
      fail("the workload gave a different state on a repeat run");
    }
    runs.push_back(std::move(run));
  }

  const Sample& last = runs.back();
  struct Figure {
    const char* bench;
    const char* impl;
    std::size_t n;
    double Sample::*ms;
  };
  const Figure figures[] = {
      {"document.apply", "portcullis", kApplyOps, &Sample::applyMs},
      {"document.merge", "portcullis", 2 * kReplicaOps, &Sample::mergeMs},
      {"document.save", "portcullis", last.changes, &Sample::saveMs},
      {"document.load", "portcullis", last.changes, &Sample::loadMs},
      {"document.save", "floor", last.changes, &Sample::saveFloorMs},
      {"document.load", "floor", last.changes, &Sample::loadFloorMs},
  };
  for (const Figure& figure : figures) {
    std::vector<double> values;
    for (const Sample& run : runs) values.push_back(run.*figure.ms);
    std::printf(
        "{\"bench\":\"%s\",\"impl\":\"%s\",\"n\":%zu,\"value\":%.3f,\"unit\":\"ms\","
        "\"seed\":%u}\n",
        figure.bench, figure.impl, figure.n, median(std::move(values)),
        static_cast<unsigned>(options.seed));
  }
  std::fflush(stdout);
  std::fprintf(stderr,
               "portcullis document_bench: saved %zu bytes (%zu changes); state digest after "
               "apply %s, after load %s\n",
               last.savedBytes, last.changes, last.digestApply.c_str(), last.digestLoad.c_str());
  return 0;
}
