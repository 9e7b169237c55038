// Convergence property test for Document (architecture §4).
//
// 3 to 5 replicas with fixed actors make random edits in random-sized transactions: scalar puts
// and removes on shared root keys (conflicts), nested maps, lists and text made concurrently
// under the same key, list inserts, sets and removes, text splices on shared text, and counter
// increments. A simulated network hands each replica random subsets of everyone's changes in
// random order, with duplicates, partial delivery and changes that arrive before their deps.
// Finally everything is delivered to everyone, and every replica must save the same bytes,
// read the same JSON, and read exactly a trivial model wherever the model is unambiguous:
// the objects only one replica edits, counters everyone increments but nobody overwrites, and
// the winner of a concurrent `putObject` race that has a fixed outcome.
//
// Seeds: gtest's random seed * 1000 + the test parameter. A failure prints the seed and the
// flags that replay it: `--gtest_random_seed=<seed / 1000> --gtest_filter=<the test>`.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "portcullis/document.h"

namespace portcullis {
namespace {

using Rng = std::mt19937_64;

std::size_t pick(Rng& rng, std::size_t n) {
  return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
}
std::int64_t between(Rng& rng, std::int64_t lo, std::int64_t hi) {
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}
bool chance(Rng& rng, double p) { return std::bernoulli_distribution(p)(rng); }

std::uint64_t seedFor(int param) {
  return static_cast<std::uint64_t>(testing::UnitTest::GetInstance()->random_seed()) * 1000 +
         static_cast<std::uint64_t>(param);
}

std::string seedNote(std::uint64_t seed) {
  const testing::TestInfo& test = *testing::UnitTest::GetInstance()->current_test_info();
  std::ostringstream out;
  out << "seed " << seed << " (replay: --gtest_random_seed=" << seed / 1000
      << " --gtest_filter='" << test.test_suite_name() << "." << test.name() << "')";
  return out.str();
}

// --- Values -------------------------------------------------------------------------------

std::string toUtf8(const std::u32string& text) {
  std::string out;
  for (char32_t c : text) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

// ASCII, two-, three- and four-byte UTF-8 (one outside the BMP), and the object replacement
// character itself.
constexpr char32_t kAlphabet[] = {U'a', U'b', U'z', U' ', U'\n', U'\u00e9', U'\u20ac',
                                  U'\u4e2d', U'\uFFFC', U'\U0001D11E', U'\U0001F600'};

std::u32string randomText(Rng& rng, std::size_t maxLen) {
  std::u32string out(pick(rng, maxLen + 1), U'a');
  for (char32_t& c : out) c = kAlphabet[pick(rng, std::size(kAlphabet))];
  return out;
}

double randomDouble(Rng& rng) {
  switch (pick(rng, 8)) {
    case 0: return -0.0;
    case 1: return std::numeric_limits<double>::infinity();
    case 2: return std::numeric_limits<double>::quiet_NaN();
    case 3: return std::numeric_limits<double>::denorm_min();
    case 4: return std::numeric_limits<double>::max();
    default: return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
  }
}

std::int64_t randomInt(Rng& rng) {
  switch (pick(rng, 6)) {
    case 0: return std::numeric_limits<std::int64_t>::min();
    case 1: return std::numeric_limits<std::int64_t>::max();
    case 2: return static_cast<std::int64_t>(rng());
    default: return between(rng, -1000, 1000);
  }
}

ScalarValue randomScalar(Rng& rng, bool allowCounter) {
  switch (pick(rng, allowCounter ? 7 : 6)) {
    case 0: return Null{};
    case 1: return chance(rng, 0.5);
    case 2: return randomInt(rng);
    case 3: return randomDouble(rng);
    case 4: return toUtf8(randomText(rng, 6));
    case 5: {
      Bytes b(pick(rng, 9));
      for (auto& x : b) x = static_cast<std::uint8_t>(rng());
      return b;
    }
    default: return Counter{between(rng, -50, 50)};
  }
}

std::string describe(const Value& v) {
  std::ostringstream out;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Null>) {
          out << "null";
        } else if constexpr (std::is_same_v<T, bool>) {
          out << (x ? "true" : "false");
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          out << "int " << x;
        } else if constexpr (std::is_same_v<T, double>) {
          out << "double " << x << " (bits " << std::hex << std::bit_cast<std::uint64_t>(x)
              << ")";
        } else if constexpr (std::is_same_v<T, std::string>) {
          out << "string \"" << x << "\"";
        } else if constexpr (std::is_same_v<T, Bytes>) {
          out << "bytes " << toHex(x);
        } else if constexpr (std::is_same_v<T, Counter>) {
          out << "counter " << x.value;
        } else {
          out << "object " << x.id.toString();
        }
      },
      v);
  return out.str();
}

Value toValue(const ScalarValue& s) {
  return std::visit([](const auto& x) -> Value { return x; }, s);
}

// Doubles compare by bits (NaN equals itself, -0.0 differs from 0.0): a replica must read back
// exactly what was written.
bool sameScalar(const ScalarValue& expected, const Value& actual) {
  if (expected.index() != actual.index()) return false;
  if (const auto* d = std::get_if<double>(&expected)) {
    const double a = std::get<double>(actual);
    if (std::isnan(*d)) return std::isnan(a);
    return std::bit_cast<std::uint64_t>(*d) == std::bit_cast<std::uint64_t>(a);
  }
  return toValue(expected) == actual;
}

template <typename T>
testing::AssertionResult isOk(const Result<T>& r) {
  if (r.has_value()) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "error " << errcName(r.error().code()) << ": "
                                     << r.error().message();
}

// --- The model of the objects only one replica edits ---------------------------------------

struct ModelNode;
using ModelValue = std::variant<ScalarValue, std::shared_ptr<ModelNode>>;

struct ModelNode {
  ObjType type = ObjType::Map;
  ObjId id = ObjId::root();
  std::size_t depth = 0;
  std::map<std::string, ModelValue> map;
  std::vector<ModelValue> list;
  std::u32string text;
};

std::shared_ptr<ModelNode> makeNode(ObjType type, ObjId id, std::size_t depth) {
  auto node = std::make_shared<ModelNode>();
  node->type = type;
  node->id = std::move(id);
  node->depth = depth;
  return node;
}

testing::AssertionResult matchesNode(const Document& doc, const ModelNode& node,
                                     const std::string& path);

testing::AssertionResult matchesValue(const Document& doc, const std::optional<Value>& actual,
                                      const ModelValue& expected, const std::string& path) {
  if (!actual) return testing::AssertionFailure() << path << ": missing";
  if (const auto* s = std::get_if<ScalarValue>(&expected)) {
    if (!sameScalar(*s, *actual)) {
      return testing::AssertionFailure() << path << ": read " << describe(*actual)
                                         << ", model has " << describe(toValue(*s));
    }
    return testing::AssertionSuccess();
  }
  const ModelNode& node = *std::get<std::shared_ptr<ModelNode>>(expected);
  const auto* ref = std::get_if<ObjectRef>(&*actual);
  if (ref == nullptr || ref->type != node.type || !(ref->id == node.id)) {
    return testing::AssertionFailure() << path << ": read " << describe(*actual)
                                       << ", model has object " << node.id.toString();
  }
  return matchesNode(doc, node, path);
}

testing::AssertionResult matchesNode(const Document& doc, const ModelNode& node,
                                     const std::string& path) {
  if (doc.objectType(node.id) != node.type) {
    return testing::AssertionFailure() << path << ": wrong or missing object type";
  }
  switch (node.type) {
    case ObjType::Map: {
      std::vector<std::string> expectedKeys;
      for (const auto& [k, v] : node.map) expectedKeys.push_back(k);
      const auto keys = doc.keys(node.id);
      if (keys != expectedKeys) {
        std::ostringstream out;
        out << path << ": keys [";
        for (const auto& k : keys) out << k << ' ';
        out << "], model has [";
        for (const auto& k : expectedKeys) out << k << ' ';
        return testing::AssertionFailure() << out.str() << "]";
      }
      if (doc.length(node.id) != node.map.size()) {
        return testing::AssertionFailure() << path << ": length " << doc.length(node.id);
      }
      for (const auto& [k, v] : node.map) {
        const std::string sub = path + "." + k;
        if (auto r = matchesValue(doc, doc.get(node.id, k), v, sub); !r) return r;
        // Only one replica writes here, so there is never a conflict.
        if (doc.getConflicts(node.id, k).size() != 1) {
          return testing::AssertionFailure()
                 << sub << ": " << doc.getConflicts(node.id, k).size() << " conflicts";
        }
      }
      return testing::AssertionSuccess();
    }
    case ObjType::List: {
      if (doc.length(node.id) != node.list.size()) {
        return testing::AssertionFailure() << path << ": length " << doc.length(node.id)
                                           << ", model has " << node.list.size();
      }
      for (std::size_t i = 0; i < node.list.size(); ++i) {
        const std::string sub = path + "[" + std::to_string(i) + "]";
        if (auto r = matchesValue(doc, doc.get(node.id, i), node.list[i], sub); !r) return r;
      }
      if (doc.get(node.id, node.list.size())) {
        return testing::AssertionFailure() << path << ": reads past the end";
      }
      return testing::AssertionSuccess();
    }
    case ObjType::Text: {
      const std::string expected = toUtf8(node.text);
      const std::string actual = doc.text(node.id);
      if (actual != expected || doc.length(node.id) != node.text.size()) {
        return testing::AssertionFailure() << path << ": text \"" << actual << "\" (length "
                                           << doc.length(node.id) << "), model has \""
                                           << expected << "\" (length " << node.text.size()
                                           << ")";
      }
      return testing::AssertionSuccess();
    }
  }
  return testing::AssertionFailure() << path << ": bad model type";
}

void collectNodes(const std::shared_ptr<ModelNode>& node,
                  std::vector<std::shared_ptr<ModelNode>>& out) {
  out.push_back(node);
  auto visit = [&](const ModelValue& v) {
    if (const auto* child = std::get_if<std::shared_ptr<ModelNode>>(&v)) {
      collectNodes(*child, out);
    }
  };
  for (const auto& [k, v] : node->map) visit(v);
  for (const auto& v : node->list) visit(v);
}

// --- The simulation ------------------------------------------------------------------------

struct Config {
  std::size_t replicas;
  std::size_t editsPerReplica;
};

// One workload per test parameter: 3 to 5 replicas x 1,000 edits each, and one longer history.
constexpr Config kConfigs[] = {{3, 1000}, {4, 1000}, {5, 1000}, {3, 1000},
                               {4, 1000}, {5, 1000}, {5, 5000}};

constexpr std::size_t kSharedRootKeys = 6;   // "k0".."k5": everyone writes, conflicts
constexpr std::size_t kCounterKeys = 4;      // "counters"."c0".."c3": increments only
constexpr std::size_t kCounterElems = 3;     // "counter-list"[0..2]: increments only
constexpr std::size_t kMaxOwnNodes = 40;     // bounds the nesting of the own trees
constexpr std::size_t kMaxDepth = 3;

ActorId actorFor(std::size_t r) {
  // Distinct lengths, so the encoding of 1-, 16- and 32-byte actors is exercised; bytewise order
  // decides conflicts.
  static constexpr std::size_t kLengths[] = {1, 16, 32, 7, 2};
  Bytes b(kLengths[r % std::size(kLengths)], static_cast<std::uint8_t>(0x11 * (r + 1)));
  b.back() = static_cast<std::uint8_t>(r);
  return ActorId::fromBytes(b).value();
}

struct Replica {
  std::size_t index = 0;
  std::optional<Document> doc;
  std::shared_ptr<ModelNode> own;  // root key "own-<index>", edited by this replica only
  std::size_t edits = 0;
  std::size_t commits = 0;
};

class Simulation {
 public:
  Simulation(std::uint64_t seed, Config config) : rng_(seed), config_(config) {
    for (std::size_t r = 0; r < config.replicas; ++r) {
      Replica rep;
      rep.index = r;
      DocumentOptions options;
      options.actor = actorFor(r);
      rep.doc.emplace(std::move(options));
      replicas_.push_back(std::move(rep));
    }
  }

  Rng& rng() { return rng_; }
  std::vector<Replica>& replicas() { return replicas_; }
  const std::vector<Bytes>& pool() const { return pool_; }
  std::size_t step() const { return step_; }

  // Replica 0 makes the shared objects and everyone receives them; then every replica, before
  // hearing from anyone else, makes its own tree and races the others to create "shared-map".
  void setUp() {
    Document& d0 = *replicas_[0].doc;
    {
      auto tx = d0.transaction();
      auto list = tx.putObject(ObjId::root(), "list", ObjType::List);
      ASSERT_TRUE(isOk(list));
      for (std::size_t i = 0; i < 3; ++i) {
        ASSERT_TRUE(isOk(tx.insert(*list, i, static_cast<std::int64_t>(i))));
      }
      auto text = tx.putObject(ObjId::root(), "text", ObjType::Text);
      ASSERT_TRUE(isOk(text));
      ASSERT_TRUE(isOk(tx.splice(*text, 0, 0, "hello, world")));
      auto counters = tx.putObject(ObjId::root(), "counters", ObjType::Map);
      ASSERT_TRUE(isOk(counters));
      for (std::size_t c = 0; c < kCounterKeys; ++c) {
        const std::int64_t start = between(rng_, -100, 100);
        counterSums_.push_back(start);
        ASSERT_TRUE(isOk(tx.put(*counters, "c" + std::to_string(c), Counter{start})));
      }
      auto counterList = tx.putObject(ObjId::root(), "counter-list", ObjType::List);
      ASSERT_TRUE(isOk(counterList));
      for (std::size_t i = 0; i < kCounterElems; ++i) {
        const std::int64_t start = between(rng_, -100, 100);
        counterElemSums_.push_back(start);
        ASSERT_TRUE(isOk(tx.insert(*counterList, i, Counter{start})));
      }
      const auto hash = tx.commit(CommitOptions{.message = "setup", .time = 0});
      ASSERT_TRUE(hash.has_value());
      listId_ = *list;
      textId_ = *text;
      countersId_ = *counters;
      counterListId_ = *counterList;
      ASSERT_NO_FATAL_FAILURE(recordChange(replicas_[0], *hash));
    }
    for (std::size_t r = 1; r < replicas_.size(); ++r) {
      ASSERT_NO_FATAL_FAILURE(deliver(replicas_[r], pool_));
    }
    for (auto& rep : replicas_) {
      Document& doc = *rep.doc;
      auto tx = doc.transaction();
      // First op of the first change after setup: every replica's "shared-map" has the same
      // counter, so the largest actor must win.
      auto shared = tx.putObject(ObjId::root(), "shared-map", ObjType::Map);
      ASSERT_TRUE(isOk(shared));
      ASSERT_TRUE(isOk(tx.put(*shared, "creator", static_cast<std::int64_t>(rep.index))));
      sharedMapIds_.push_back(*shared);
      const std::string ownKey = "own-" + std::to_string(rep.index);
      auto own = tx.putObject(ObjId::root(), ownKey, ObjType::Map);
      ASSERT_TRUE(isOk(own));
      rep.own = makeNode(ObjType::Map, *own, 0);
      auto ownList = tx.putObject(*own, "list", ObjType::List);
      ASSERT_TRUE(isOk(ownList));
      rep.own->map["list"] = makeNode(ObjType::List, *ownList, 1);
      auto ownText = tx.putObject(*own, "text", ObjType::Text);
      ASSERT_TRUE(isOk(ownText));
      rep.own->map["text"] = makeNode(ObjType::Text, *ownText, 1);
      const auto hash = tx.commit(CommitOptions{.message = "own tree", .time = 1});
      ASSERT_TRUE(hash.has_value());
      ASSERT_NO_FATAL_FAILURE(recordChange(rep, *hash));
    }
  }

  // Random bursts of local transactions, each followed by a random delivery.
  void run() {
    for (;;) {
      std::vector<std::size_t> busy;
      for (const auto& rep : replicas_) {
        if (rep.edits < config_.editsPerReplica) busy.push_back(rep.index);
      }
      if (busy.empty()) break;
      Replica& rep = replicas_[busy[pick(rng_, busy.size())]];
      const std::size_t burst = 1 + pick(rng_, 6);
      for (std::size_t i = 0; i < burst; ++i) {
        ++step_;
        ASSERT_NO_FATAL_FAILURE(transaction(rep)) << "step " << step_;
      }
      ++step_;
      ASSERT_NO_FATAL_FAILURE(randomDelivery()) << "step " << step_;
      if (step_ % 64 < 8) {
        // The own tree reads back locally at all times, whatever else has arrived.
        ASSERT_TRUE(matchesNode(*rep.doc, *rep.own, "own-" + std::to_string(rep.index)))
            << "step " << step_;
      }
    }
  }

  // Every change to every replica, shuffled, with duplicates, in random-sized batches.
  void deliverEverything() {
    for (auto& rep : replicas_) {
      std::vector<Bytes> all = pool_;
      for (std::size_t i = 0, n = pool_.size() / 10; i < n; ++i) {
        all.push_back(pool_[pick(rng_, pool_.size())]);
      }
      std::shuffle(all.begin(), all.end(), rng_);
      std::size_t at = 0;
      while (at < all.size()) {
        const std::size_t n = std::min(all.size() - at, 1 + pick(rng_, 200));
        ASSERT_NO_FATAL_FAILURE(deliver(rep, std::vector<Bytes>(all.begin() + at,
                                                               all.begin() + at + n)));
        at += n;
      }
    }
  }

  void deliver(Replica& rep, const std::vector<Bytes>& changes) {
    const std::size_t pendingBefore = rep.doc->graph().pendingCount();
    const ApplyReport report = rep.doc->applyChanges(changes);
    stats_.offered += changes.size();
    stats_.applied += report.applied;
    stats_.duplicates += report.duplicates;
    const std::size_t pendingAfter = rep.doc->graph().pendingCount();
    if (pendingAfter > pendingBefore) ++stats_.batchesThatQueued;
    if (report.applied > 0 && pendingAfter < pendingBefore) ++stats_.batchesThatUnblocked;
    ASSERT_TRUE(report.rejected.empty())
        << "replica " << rep.index << " rejected " << report.rejected.size() << " of "
        << changes.size() << " valid changes; first: "
        << errcName(report.rejected.front().code()) << ": "
        << report.rejected.front().message();
  }

  // How hard the network tried: the test checks that queueing and duplicates happened.
  struct Stats {
    std::size_t offered = 0;
    std::size_t applied = 0;
    std::size_t duplicates = 0;
    std::size_t batchesThatQueued = 0;
    std::size_t batchesThatUnblocked = 0;
  };
  const Stats& stats() const { return stats_; }

  // What the model says, once everyone has everything.
  const std::vector<std::int64_t>& counterSums() const { return counterSums_; }
  const std::vector<std::int64_t>& counterElemSums() const { return counterElemSums_; }
  const ObjId& countersId() const { return countersId_; }
  const ObjId& counterListId() const { return counterListId_; }
  const std::vector<ObjId>& sharedMapIds() const { return sharedMapIds_; }

 private:
  void recordChange(Replica& rep, const ChangeHash& hash) {
    auto bytes = rep.doc->getChange(hash);
    ASSERT_TRUE(bytes.has_value()) << "getChange misses a local commit";
    pool_.push_back(std::move(*bytes));
    ++rep.commits;
  }

  void transaction(Replica& rep) {
    Document& doc = *rep.doc;
    auto tx = doc.transaction();
    const std::size_t ops = 1 + pick(rng_, 5);
    for (std::size_t i = 0; i < ops; ++i) {
      const std::size_t kind = pick(rng_, 100);
      if (kind < 45) {
        ASSERT_NO_FATAL_FAILURE(ownEdit(rep, tx));
      } else if (kind < 85) {
        ASSERT_NO_FATAL_FAILURE(sharedEdit(doc, tx));
      } else {
        ASSERT_NO_FATAL_FAILURE(counterEdit(tx));
      }
      ++rep.edits;
    }
    // A splice is one op per character deleted or inserted.
    ASSERT_GE(tx.pendingOps(), ops);
    CommitOptions options;
    options.time = static_cast<std::int64_t>(step_);
    if (chance(rng_, 0.2)) options.message = toUtf8(randomText(rng_, 12));
    const auto hash = tx.commit(std::move(options));
    ASSERT_TRUE(hash.has_value()) << "a transaction with ops made no change";
    ASSERT_NO_FATAL_FAILURE(recordChange(rep, *hash));
  }

  // An edit of the replica's own tree, mirrored in the model.
  void ownEdit(Replica& rep, Transaction& tx) {
    std::vector<std::shared_ptr<ModelNode>> nodes;
    collectNodes(rep.own, nodes);
    ModelNode& node = *nodes[pick(rng_, nodes.size())];
    const bool mayNest = nodes.size() < kMaxOwnNodes && node.depth < kMaxDepth;
    const auto randomType = [&] {
      static constexpr ObjType kTypes[] = {ObjType::Map, ObjType::List, ObjType::Text};
      return kTypes[pick(rng_, 3)];
    };
    switch (node.type) {
      case ObjType::Map: {
        const std::string key(1, static_cast<char>('a' + pick(rng_, 8)));
        const auto it = node.map.find(key);
        const std::size_t op = pick(rng_, 100);
        if (op < 15 && mayNest) {
          const ObjType type = randomType();
          auto id = tx.putObject(node.id, key, type);
          ASSERT_TRUE(isOk(id));
          node.map[key] = makeNode(type, *id, node.depth + 1);
        } else if (op < 40 && it != node.map.end()) {
          ASSERT_TRUE(isOk(tx.remove(node.id, key)));
          node.map.erase(it);
        } else if (op < 60 && it != node.map.end() &&
                   std::holds_alternative<ScalarValue>(it->second) &&
                   std::holds_alternative<Counter>(std::get<ScalarValue>(it->second))) {
          const std::int64_t delta = between(rng_, -20, 20);
          ASSERT_TRUE(isOk(tx.increment(node.id, key, delta)));
          std::get<Counter>(std::get<ScalarValue>(it->second)).value += delta;
        } else {
          ScalarValue v = randomScalar(rng_, true);
          ASSERT_TRUE(isOk(tx.put(node.id, key, v)));
          node.map[key] = std::move(v);
        }
        return;
      }
      case ObjType::List: {
        const std::size_t len = node.list.size();
        const std::size_t op = len > 40 ? 60 + pick(rng_, 40) : pick(rng_, 100);
        if (op < 10 && mayNest) {
          const std::size_t at = pick(rng_, len + 1);
          const ObjType type = randomType();
          auto id = tx.insertObject(node.id, at, type);
          ASSERT_TRUE(isOk(id));
          node.list.insert(node.list.begin() + static_cast<std::ptrdiff_t>(at),
                           makeNode(type, *id, node.depth + 1));
        } else if (op < 50 || len == 0) {
          const std::size_t at = pick(rng_, len + 1);
          ScalarValue v = randomScalar(rng_, true);
          ASSERT_TRUE(isOk(tx.insert(node.id, at, v)));
          node.list.insert(node.list.begin() + static_cast<std::ptrdiff_t>(at), std::move(v));
        } else if (op < 55 && mayNest) {
          const std::size_t at = pick(rng_, len);
          const ObjType type = randomType();
          auto id = tx.setObject(node.id, at, type);
          ASSERT_TRUE(isOk(id));
          node.list[at] = makeNode(type, *id, node.depth + 1);
        } else if (op < 70) {
          const std::size_t at = pick(rng_, len);
          auto& slot = node.list[at];
          if (std::holds_alternative<ScalarValue>(slot) &&
              std::holds_alternative<Counter>(std::get<ScalarValue>(slot))) {
            const std::int64_t delta = between(rng_, -20, 20);
            ASSERT_TRUE(isOk(tx.increment(node.id, at, delta)));
            std::get<Counter>(std::get<ScalarValue>(slot)).value += delta;
          } else {
            ScalarValue v = randomScalar(rng_, true);
            ASSERT_TRUE(isOk(tx.set(node.id, at, v)));
            slot = std::move(v);
          }
        } else {
          const std::size_t at = pick(rng_, len);
          ASSERT_TRUE(isOk(tx.remove(node.id, at)));
          node.list.erase(node.list.begin() + static_cast<std::ptrdiff_t>(at));
        }
        return;
      }
      case ObjType::Text: {
        const std::size_t len = node.text.size();
        const std::size_t at = pick(rng_, len + 1);
        const std::size_t maxDelete = std::min<std::size_t>(len - at, len > 60 ? 12 : 4);
        const std::size_t del = pick(rng_, maxDelete + 1);
        std::u32string ins = randomText(rng_, len > 60 ? 2 : 6);
        if (del == 0 && ins.empty()) ins = U"x";
        ASSERT_TRUE(isOk(tx.splice(node.id, at, del, toUtf8(ins))));
        node.text.replace(at, del, ins);
        return;
      }
    }
  }

  // An edit of what everyone edits: no model, but every replica must end up alike.
  void sharedEdit(const Document& doc, Transaction& tx) {
    const std::size_t where = pick(rng_, 100);
    if (where < 30) {
      const std::string key = "k" + std::to_string(pick(rng_, kSharedRootKeys));
      return rootKeyEdit(doc, tx, key);
    }
    ObjId id = ObjId::root();
    ObjType type = ObjType::Map;
    std::size_t depth = 1;
    if (where < 55) {
      id = listId_;
      type = ObjType::List;
    } else if (where < 75) {
      id = textId_;
      type = ObjType::Text;
    } else {
      // Descend from a shared root key into whatever objects are there now.
      const std::string key = "k" + std::to_string(pick(rng_, kSharedRootKeys));
      const auto v = doc.get(ObjId::root(), key);
      const auto* ref = v ? std::get_if<ObjectRef>(&*v) : nullptr;
      if (ref == nullptr) return rootKeyEdit(doc, tx, key);
      id = ref->id;
      type = ref->type;
    }
    while (depth < kMaxDepth + 1 && type != ObjType::Text && chance(rng_, 0.4)) {
      std::optional<Value> child;
      if (type == ObjType::Map) {
        const auto keys = doc.keys(id);
        if (keys.empty()) break;
        child = doc.get(id, keys[pick(rng_, keys.size())]);
      } else {
        const std::size_t len = doc.length(id);
        if (len == 0) break;
        child = doc.get(id, pick(rng_, len));
      }
      ASSERT_TRUE(child.has_value());
      const auto* ref = std::get_if<ObjectRef>(&*child);
      if (ref == nullptr) break;
      id = ref->id;
      type = ref->type;
      ++depth;
    }
    objectEdit(doc, tx, id, type, depth);
  }

  void rootKeyEdit(const Document& doc, Transaction& tx, const std::string& key) {
    const auto current = doc.get(ObjId::root(), key);
    const std::size_t op = pick(rng_, 100);
    if (op < 25) {
      static constexpr ObjType kTypes[] = {ObjType::Map, ObjType::List, ObjType::Text};
      ASSERT_TRUE(isOk(tx.putObject(ObjId::root(), key, kTypes[pick(rng_, 3)])));
    } else if (op < 45 && current) {
      ASSERT_TRUE(isOk(tx.remove(ObjId::root(), key)));
    } else if (op < 60 && current && std::holds_alternative<Counter>(*current)) {
      ASSERT_TRUE(isOk(tx.increment(ObjId::root(), key, between(rng_, -9, 9))));
    } else {
      ASSERT_TRUE(isOk(tx.put(ObjId::root(), key, randomScalar(rng_, true))));
    }
  }

  void objectEdit(const Document& doc, Transaction& tx, const ObjId& id, ObjType type,
                  std::size_t depth) {
    const std::size_t op = pick(rng_, 100);
    switch (type) {
      case ObjType::Map: {
        const std::string key(1, static_cast<char>('a' + pick(rng_, 6)));
        const auto current = doc.get(id, key);
        if (op < 10 && depth < kMaxDepth) {
          static constexpr ObjType kTypes[] = {ObjType::Map, ObjType::List, ObjType::Text};
          ASSERT_TRUE(isOk(tx.putObject(id, key, kTypes[pick(rng_, 3)])));
        } else if (op < 35 && current) {
          ASSERT_TRUE(isOk(tx.remove(id, key)));
        } else if (op < 55 && current && std::holds_alternative<Counter>(*current)) {
          ASSERT_TRUE(isOk(tx.increment(id, key, between(rng_, -9, 9))));
        } else {
          ASSERT_TRUE(isOk(tx.put(id, key, randomScalar(rng_, true))));
        }
        return;
      }
      case ObjType::List: {
        const std::size_t len = doc.length(id);
        const std::size_t choice = len > 60 ? 60 + pick(rng_, 40) : op;
        if (choice < 8 && depth < kMaxDepth) {
          static constexpr ObjType kTypes[] = {ObjType::Map, ObjType::List, ObjType::Text};
          ASSERT_TRUE(isOk(tx.insertObject(id, pick(rng_, len + 1), kTypes[pick(rng_, 3)])));
        } else if (choice < 50 || len == 0) {
          ASSERT_TRUE(isOk(tx.insert(id, pick(rng_, len + 1), randomScalar(rng_, true))));
        } else if (choice < 70) {
          const std::size_t at = pick(rng_, len);
          const auto current = doc.get(id, at);
          ASSERT_TRUE(current.has_value()) << "index " << at << " of " << len;
          if (std::holds_alternative<Counter>(*current)) {
            ASSERT_TRUE(isOk(tx.increment(id, at, between(rng_, -9, 9))));
          } else {
            ASSERT_TRUE(isOk(tx.set(id, at, randomScalar(rng_, true))));
          }
        } else {
          ASSERT_TRUE(isOk(tx.remove(id, pick(rng_, len))));
        }
        return;
      }
      case ObjType::Text: {
        const std::size_t len = doc.length(id);
        const std::size_t at = pick(rng_, len + 1);
        const std::size_t maxDelete = std::min<std::size_t>(len - at, len > 150 ? 20 : 4);
        const std::size_t del = pick(rng_, maxDelete + 1);
        std::string ins = toUtf8(randomText(rng_, len > 150 ? 1 : 6));
        if (del == 0 && ins.empty()) ins = "y";
        ASSERT_TRUE(isOk(tx.splice(id, at, del, ins)));
        return;
      }
    }
  }

  void counterEdit(Transaction& tx) {
    const std::int64_t delta = between(rng_, -1000, 1000);
    if (chance(rng_, 0.5)) {
      const std::size_t c = pick(rng_, kCounterKeys);
      ASSERT_TRUE(isOk(tx.increment(countersId_, "c" + std::to_string(c), delta)));
      counterSums_[c] += delta;
    } else {
      const std::size_t i = pick(rng_, kCounterElems);
      ASSERT_TRUE(isOk(tx.increment(counterListId_, i, delta)));
      counterElemSums_[i] += delta;
    }
  }

  // What a sync would send: the changes `from` has and `to` has not applied, in `from`'s order.
  // (getChangesSince(to's heads) would resend everything once `to` has heads `from` lacks.)
  static std::vector<Bytes> lacking(const Replica& from, const Replica& to) {
    std::vector<Bytes> out;
    for (const ChangeEnvelope* c : from.doc->graph().changes()) {
      if (!to.doc->graph().contains(c->hash)) out.push_back(c->payload);
    }
    return out;
  }

  // One delivery to one replica, of one of several shapes.
  void randomDelivery() {
    Replica& to = replicas_[pick(rng_, replicas_.size())];
    Replica& from = replicas_[pick(rng_, replicas_.size())];
    std::vector<Bytes> batch;
    switch (pick(rng_, 4)) {
      case 0: {
        // Changes picked from everything ever made: duplicates and gaps.
        for (std::size_t i = 0, n = 1 + pick(rng_, 30); i < n; ++i) {
          batch.push_back(pool_[pick(rng_, pool_.size())]);
        }
        break;
      }
      case 1: {
        // A sync from a peer that loses some changes and repeats others.
        for (auto& c : lacking(from, to)) {
          if (chance(rng_, 0.25)) continue;
          if (chance(rng_, 0.1)) batch.push_back(c);
          batch.push_back(std::move(c));
        }
        std::shuffle(batch.begin(), batch.end(), rng_);
        break;
      }
      case 2: {
        // A complete sync from a peer in reverse order: everything but the last queues first.
        batch = lacking(from, to);
        std::reverse(batch.begin(), batch.end());
        break;
      }
      default: {
        // Recent changes, most recent first, a few at a time.
        const std::size_t n = std::min<std::size_t>(pool_.size(), 1 + pick(rng_, 12));
        batch.assign(pool_.end() - static_cast<std::ptrdiff_t>(n), pool_.end());
        std::reverse(batch.begin(), batch.end());
        break;
      }
    }
    // Occasionally split the batch, so that queued changes wait across calls.
    const std::size_t split = batch.empty() ? 0 : pick(rng_, batch.size() + 1);
    ASSERT_NO_FATAL_FAILURE(deliver(to, std::vector<Bytes>(batch.begin(), batch.begin() +
                                                              static_cast<std::ptrdiff_t>(split))));
    ASSERT_NO_FATAL_FAILURE(deliver(to, std::vector<Bytes>(batch.begin() +
                                                              static_cast<std::ptrdiff_t>(split),
                                                          batch.end())));
  }

  Rng rng_;
  Config config_;
  std::vector<Replica> replicas_;
  std::vector<Bytes> pool_;  // every change ever made, in the order made
  std::size_t step_ = 0;
  ObjId listId_ = ObjId::root();
  ObjId textId_ = ObjId::root();
  ObjId countersId_ = ObjId::root();
  ObjId counterListId_ = ObjId::root();
  std::vector<std::int64_t> counterSums_;
  std::vector<std::int64_t> counterElemSums_;
  std::vector<ObjId> sharedMapIds_;
  Stats stats_;
};

class DocumentConvergence : public testing::TestWithParam<int> {};

TEST_P(DocumentConvergence, EveryReplicaSavesTheSameBytesAndReadsTheModelAfterFullDelivery) {
  const std::uint64_t seed = seedFor(GetParam());
  const Config config = kConfigs[static_cast<std::size_t>(GetParam()) % std::size(kConfigs)];
  SCOPED_TRACE(seedNote(seed));
  SCOPED_TRACE(testing::Message() << config.replicas << " replicas x "
                                  << config.editsPerReplica << " edits");
  const auto started = std::chrono::steady_clock::now();

  Simulation sim(seed, config);
  ASSERT_NO_FATAL_FAILURE(sim.setUp());
  ASSERT_NO_FATAL_FAILURE(sim.run());
  {
    SCOPED_TRACE("final delivery");
    ASSERT_NO_FATAL_FAILURE(sim.deliverEverything());
  }
  SCOPED_TRACE(testing::Message() << "after step " << sim.step() << ", " << sim.pool().size()
                                  << " changes");

  // The network did what it is for: changes arrived before their deps and more than once.
  const auto& stats = sim.stats();
  EXPECT_GT(stats.batchesThatQueued, 0u);
  EXPECT_GT(stats.batchesThatUnblocked, 0u);
  EXPECT_GT(stats.duplicates, 0u);
  RecordProperty("changes", static_cast<int>(sim.pool().size()));
  RecordProperty("offered", static_cast<int>(stats.offered));
  RecordProperty("duplicates", static_cast<int>(stats.duplicates));
  RecordProperty("batchesThatQueued", static_cast<int>(stats.batchesThatQueued));

  auto& reps = sim.replicas();
  for (const auto& rep : reps) {
    EXPECT_GE(rep.edits, config.editsPerReplica);
    EXPECT_TRUE(rep.doc->getMissingDeps().empty()) << "replica " << rep.index;
    EXPECT_EQ(rep.doc->graph().pendingCount(), 0u) << "replica " << rep.index;
    EXPECT_EQ(rep.doc->graph().size(), sim.pool().size()) << "replica " << rep.index;
  }
  const Document& first = *reps[0].doc;
  const Bytes saved = first.save();
  const std::string json = first.toJson();
  for (std::size_t r = 1; r < reps.size(); ++r) {
    EXPECT_EQ(reps[r].doc->getHeads(), first.getHeads()) << "replica " << r;
    EXPECT_TRUE(reps[r].doc->save() == saved) << "replica " << r << " saves other bytes";
    EXPECT_EQ(reps[r].doc->toJson(), json) << "replica " << r;
  }

  // The model: every replica reads every replica's own tree exactly.
  for (const auto& reader : reps) {
    for (const auto& owner : reps) {
      const std::string key = "own-" + std::to_string(owner.index);
      EXPECT_TRUE(matchesValue(*reader.doc, reader.doc->get(ObjId::root(), key), owner.own, key))
          << "read by replica " << reader.index;
    }
  }
  // Counters nobody overwrites hold the sum of all increments.
  for (const auto& rep : reps) {
    for (std::size_t c = 0; c < sim.counterSums().size(); ++c) {
      const auto v = rep.doc->get(sim.countersId(), "c" + std::to_string(c));
      ASSERT_TRUE(v.has_value());
      EXPECT_EQ(*v, Value(Counter{sim.counterSums()[c]}))
          << "counter c" << c << " on replica " << rep.index << " reads " << describe(*v);
    }
    for (std::size_t i = 0; i < sim.counterElemSums().size(); ++i) {
      const auto v = rep.doc->get(sim.counterListId(), i);
      ASSERT_TRUE(v.has_value());
      EXPECT_EQ(*v, Value(Counter{sim.counterElemSums()[i]}))
          << "counter-list[" << i << "] on replica " << rep.index << " reads " << describe(*v);
    }
  }
  // The "shared-map" race: same counter everywhere, so the largest actor wins, and every
  // contender stays readable as a conflict, ascending by OpId (here: by actor).
  std::vector<std::size_t> byActor(reps.size());
  for (std::size_t r = 0; r < reps.size(); ++r) byActor[r] = r;
  std::sort(byActor.begin(), byActor.end(),
            [](std::size_t a, std::size_t b) { return actorFor(a) < actorFor(b); });
  for (const auto& rep : reps) {
    const auto conflicts = rep.doc->getConflicts(ObjId::root(), "shared-map");
    ASSERT_EQ(conflicts.size(), reps.size()) << "replica " << rep.index;
    for (std::size_t i = 0; i < conflicts.size(); ++i) {
      const std::size_t creator = byActor[i];
      EXPECT_EQ(conflicts[i], Value(ObjectRef{ObjType::Map, sim.sharedMapIds()[creator]}))
          << "conflict " << i << " on replica " << rep.index << " reads "
          << describe(conflicts[i]);
      EXPECT_EQ(rep.doc->get(sim.sharedMapIds()[creator], "creator"),
                std::optional<Value>(static_cast<std::int64_t>(creator)));
    }
    EXPECT_EQ(rep.doc->get(ObjId::root(), "shared-map"), std::optional<Value>(conflicts.back()));
  }

  // A loaded snapshot saves the same bytes again.
  auto loaded = Document::load(saved);
  ASSERT_TRUE(isOk(loaded));
  EXPECT_TRUE(loaded->save() == saved) << "load(save()) saves other bytes";
  EXPECT_EQ(loaded->toJson(), json);
  EXPECT_EQ(loaded->getHeads(), first.getHeads());

  const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
  RecordProperty("seconds", testing::PrintToString(elapsed.count()));
}

// gtest's random seed * 1000 + this parameter is the seed; see kConfigs for each workload.
INSTANTIATE_TEST_SUITE_P(Seeds, DocumentConvergence, testing::Range(0, 7));

class DocumentApplicationOrder : public testing::TestWithParam<int> {};

TEST_P(DocumentApplicationOrder, SavesTheSameBytesWhateverOrderTheSameChangesArriveIn) {
  const std::uint64_t seed = seedFor(100 + GetParam());
  SCOPED_TRACE(seedNote(seed));
  Simulation sim(seed, Config{3, 150});
  ASSERT_NO_FATAL_FAILURE(sim.setUp());
  ASSERT_NO_FATAL_FAILURE(sim.run());
  const std::vector<Bytes>& pool = sim.pool();
  Rng& rng = sim.rng();

  // Two random orders, one change per call; and the reverse of creation order in one batch,
  // where nearly everything waits for its deps first.
  std::vector<Document> docs;
  docs.reserve(3);
  for (int order = 0; order < 2; ++order) {
    std::vector<Bytes> shuffled = pool;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    Document& doc = docs.emplace_back();
    std::size_t applied = 0;
    for (const auto& c : shuffled) {
      const ApplyReport report = doc.applyChanges(std::span<const Bytes>(&c, 1));
      ASSERT_TRUE(report.rejected.empty()) << report.rejected.front().message();
      applied += report.applied;
    }
    EXPECT_EQ(applied, pool.size()) << "order " << order;
  }
  {
    std::vector<Bytes> reversed(pool.rbegin(), pool.rend());
    Document& doc = docs.emplace_back();
    const ApplyReport report = doc.applyChanges(reversed);
    ASSERT_TRUE(report.rejected.empty()) << report.rejected.front().message();
    EXPECT_EQ(report.applied, pool.size());
    EXPECT_EQ(report.queued, 0u);
  }

  const Bytes saved = docs[0].save();
  for (std::size_t i = 1; i < docs.size(); ++i) {
    EXPECT_TRUE(docs[i].save() == saved) << "order " << i << " saves other bytes";
    EXPECT_EQ(docs[i].toJson(), docs[0].toJson()) << "order " << i;
    EXPECT_EQ(docs[i].getHeads(), docs[0].getHeads()) << "order " << i;
  }
  EXPECT_TRUE(docs[0].getMissingDeps().empty());
  // The replicas that made the changes only saw part of them, but merging them all gives the
  // same document again.
  DocumentOptions options;
  options.actor = actorFor(4);
  Document merged(std::move(options));
  for (const auto& rep : sim.replicas()) {
    const ApplyReport report = merged.merge(*rep.doc);
    EXPECT_TRUE(report.rejected.empty());
  }
  EXPECT_TRUE(merged.save() == saved) << "merge saves other bytes";
}

INSTANTIATE_TEST_SUITE_P(Seeds, DocumentApplicationOrder, testing::Range(0, 3));

}  // namespace
}  // namespace portcullis
