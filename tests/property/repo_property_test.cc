// Convergence property test for Repos over the memory network (architecture §5).
//
// 3 or 4 Repos, each with a ScriptedProvider that allows everything, start in a random topology.
// Random steps: local edits on random repos (puts and deletes of keys only that repo writes, of
// keys everyone writes, counter increments, list inserts), new documents, cuts of random links,
// reconnections (a new connect(), in a random direction) and random link delays. Then the network
// heals (every pair connected, no delay) and every repo must hold every document with the same
// heads and the same JSON, and agree with a trivial model where it is unambiguous: the keys only
// one repo ever wrote, the counter (the sum of every increment that committed) and the length of
// the list (inserts only, never removes).
//
// Seeds: gtest's random seed * 1000 + the test parameter. A failure prints the seed and the flags
// that replay it: `--gtest_random_seed=<seed / 1000> --gtest_filter=<the test>`.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "portcullis/repo.h"
#include "../lib/repo/repo_harness.h"

namespace portcullis::testing {
namespace {

using Rng = std::mt19937_64;
using Clock = std::chrono::steady_clock;

constexpr int kSteps = 120;
constexpr std::size_t kMaxDocuments = 5;
constexpr std::chrono::milliseconds kHealLimit{12'000};

std::uint64_t seedFor(int param) {
  return static_cast<std::uint64_t>(::testing::UnitTest::GetInstance()->random_seed()) * 1000 +
         static_cast<std::uint64_t>(param);
}

std::string seedNote(std::uint64_t seed) {
  const ::testing::TestInfo& test = *::testing::UnitTest::GetInstance()->current_test_info();
  std::ostringstream out;
  out << "seed " << seed << " (replay: --gtest_random_seed=" << seed / 1000
      << " --gtest_filter='" << test.test_suite_name() << "." << test.name() << "')";
  return out.str();
}

// What a document must read after convergence, where that is unambiguous.
struct DocModel {
  // Keys only one repo ever writes: their last value there, or nothing after a delete.
  std::map<std::string, std::optional<std::string>> ownKeys;
  std::int64_t counter = 0;
  std::size_t listLength = 0;
};

class Simulation {
 public:
  Simulation(std::uint64_t seed, std::size_t repoCount,
             const std::function<void(RepoOptions&)>& tweak = {})
      : rng_(seed) {
    for (std::size_t i = 0; i < repoCount; ++i) {
      repos_.push_back(&h_.add("p" + std::to_string(i), tweak));
    }
  }

  std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  // A random spanning tree plus some extra links: every repo starts reachable from every other,
  // through relays.
  void randomTopology() {
    std::vector<std::size_t> order(repos_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng_);
    for (std::size_t i = 1; i < order.size(); ++i) link(order[pick(i)], order[i]);
    for (std::size_t i = 0; i < repos_.size(); ++i) {
      for (std::size_t j = i + 1; j < repos_.size(); ++j) {
        if (!isLinked(i, j) && chance(0.25)) link(i, j);
      }
    }
  }

  void createDocument(std::size_t r) {
    if (model_.size() >= kMaxDocuments) return;
    DocHandle doc = repos_[r]->repo->create();
    auto made = doc.change([](Transaction& tx) -> Result<void> {
      auto counter = tx.put(ObjId::root(), "counter", ScalarValue(Counter{0}));
      if (!counter) return counter;
      auto list = tx.putObject(ObjId::root(), "list", ObjType::List);
      if (!list) return list.error();
      return Result<void>();
    });
    ASSERT_TRUE(made && *made) << "creating a document";
    model_[doc.id()] = DocModel{};
  }

  void step() {
    const std::size_t r = pick(repos_.size());
    const double roll = std::uniform_real_distribution<double>(0, 1)(rng_);
    if (roll < 0.55) {
      edit(r);
    } else if (roll < 0.62) {
      createDocument(r);
    } else if (roll < 0.74) {
      cutRandomLink();
    } else if (roll < 0.86) {
      const std::size_t other = pick(repos_.size());
      if (other != r && !isLinked(r, other)) {
        link(r, other);
        ++stats_.reconnects;
      }
    } else if (roll < 0.95) {
      delayRandomLink();
    }
    h_.runFor(std::chrono::milliseconds(pick(15)));
  }

  // Connects every pair that has no open link, removes every delay, and runs until every repo
  // holds every document with the same heads, reconnecting pairs whose new link was closed (a
  // reconnection that raced the old session's teardown). Returns whether that happened in time.
  bool heal() {
    for (auto& [pair, links] : links_) {
      for (auto& l : links) {
        if (l->isOpen()) l->setDelay(std::chrono::milliseconds(0));
      }
    }
    const auto end = Clock::now() + kHealLimit;
    while (Clock::now() < end) {
      for (std::size_t i = 0; i < repos_.size(); ++i) {
        for (std::size_t j = i + 1; j < repos_.size(); ++j) {
          if (!isLinked(i, j)) chance(0.5) ? link(i, j) : link(j, i);
        }
      }
      if (h_.runUntil([&] { return converged(); }, std::chrono::milliseconds(300))) {
        // Stable: nothing more arrives that would change it.
        h_.runFor(std::chrono::milliseconds(50));
        if (converged()) return true;
      }
    }
    return converged();
  }

  bool converged() const {
    std::vector<DocumentId> all;
    for (const auto& [id, m] : model_) all.push_back(id);
    for (const TestPeer* peer : repos_) {
      if (peer->repo->documents() != all) return false;
    }
    for (const DocumentId& id : all) {
      std::optional<std::vector<ChangeHash>> heads;
      for (const TestPeer* peer : repos_) {
        auto handle = peer->repo->findLocal(id);
        if (!handle || !handle->isOpen()) return false;
        auto mine = handle->heads();
        if (mine.empty()) return false;
        if (heads && *heads != mine) return false;
        heads = std::move(mine);
      }
    }
    return true;
  }

  // Every replica alike, and each agrees with the model.
  void checkReplicas() const {
    for (const auto& [id, m] : model_) {
      SCOPED_TRACE(id.logName());
      const DocHandle first = *repos_[0]->repo->findLocal(id);
      for (std::size_t r = 1; r < repos_.size(); ++r) {
        auto other = repos_[r]->repo->findLocal(id);
        ASSERT_TRUE(other) << repos_[r]->name;
        EXPECT_EQ(other->heads(), first.heads()) << repos_[r]->name;
        EXPECT_EQ(other->toJson(), first.toJson()) << repos_[r]->name;
      }
      for (const TestPeer* peer : repos_) {
        SCOPED_TRACE(peer->name);
        const Document& doc = peer->repo->findLocal(id)->doc();
        for (const auto& [key, value] : m.ownKeys) {
          auto read = doc.get(ObjId::root(), key);
          if (!value) {
            EXPECT_FALSE(read.has_value()) << key << " was deleted";
            continue;
          }
          ASSERT_TRUE(read.has_value()) << key;
          ASSERT_TRUE(std::holds_alternative<std::string>(*read)) << key;
          EXPECT_EQ(std::get<std::string>(*read), *value) << key;
        }
        for (const std::string& key : doc.keys(ObjId::root())) {
          if (key.starts_with("own-")) {
            EXPECT_TRUE(m.ownKeys.contains(key)) << key;
          }
        }
        auto counter = doc.get(ObjId::root(), "counter");
        ASSERT_TRUE(counter && std::holds_alternative<Counter>(*counter));
        EXPECT_EQ(std::get<Counter>(*counter).value, m.counter);
        auto list = doc.get(ObjId::root(), "list");
        ASSERT_TRUE(list && std::holds_alternative<ObjectRef>(*list));
        EXPECT_EQ(doc.length(std::get<ObjectRef>(*list).id), m.listLength);
      }
    }
  }

  // For a failure message: who is connected to whom, and what each repo holds.
  std::string describe() const {
    std::ostringstream out;
    for (const TestPeer* peer : repos_) {
      out << peer->name << ": peers";
      for (const PeerId& p : peer->repo->peers()) out << " " << p.str();
      out << "; documents";
      for (const DocumentId& id : peer->repo->documents()) {
        auto handle = peer->repo->findLocal(id);
        out << " " << id.logName() << "(" << (handle ? handle->heads().size() : 0) << " heads)";
      }
      out << "\n";
    }
    out << model_.size() << " documents made; open links:";
    for (const auto& [pair, links] : links_) {
      for (const auto& l : links) {
        if (l->isOpen()) out << " " << pair.first << "-" << pair.second;
      }
    }
    return out.str();
  }

  // What the steps did, so that a run that exercised nothing is noticed.
  struct Stats {
    std::size_t commits = 0;
    std::size_t cuts = 0;
    std::size_t reconnects = 0;
  };
  const Stats& stats() const { return stats_; }
  std::size_t documentCount() const { return model_.size(); }

 private:
  void link(std::size_t dialer, std::size_t acceptor) {
    links_[std::minmax(dialer, acceptor)].push_back(h_.link(*repos_[dialer], *repos_[acceptor]));
  }

  bool isLinked(std::size_t a, std::size_t b) const {
    auto it = links_.find(std::minmax(a, b));
    if (it == links_.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(), [](const auto& l) { return l->isOpen(); });
  }

  std::vector<std::shared_ptr<MemoryLink>> openLinks() const {
    std::vector<std::shared_ptr<MemoryLink>> out;
    for (const auto& [pair, links] : links_) {
      for (const auto& l : links) {
        if (l->isOpen()) out.push_back(l);
      }
    }
    return out;
  }

  void cutRandomLink() {
    auto open = openLinks();
    if (open.empty()) return;
    open[pick(open.size())]->cut();
    ++stats_.cuts;
  }

  void delayRandomLink() {
    auto open = openLinks();
    if (!open.empty()) open[pick(open.size())]->setDelay(std::chrono::milliseconds(pick(30)));
  }

  // One transaction of 1 to 3 random ops on a random document repo `r` holds. The model learns
  // of the ops only if the change commits.
  void edit(std::size_t r) {
    TestPeer& peer = *repos_[r];
    const std::vector<DocumentId> ids = peer.repo->documents();
    if (ids.empty()) return;
    const DocumentId id = ids[pick(ids.size())];
    auto handle = peer.repo->findLocal(id);
    if (!handle || !handle->isOpen()) return;
    DocModel staged = model_.at(id);
    const std::size_t ops = 1 + pick(3);
    const Document& doc = handle->doc();
    auto committed = handle->change([&](Transaction& tx) -> Result<void> {
      for (std::size_t i = 0; i < ops; ++i) {
        auto done = oneOp(tx, doc, peer.name, staged);
        if (!done) return done;
      }
      return Result<void>();
    });
    if (committed && *committed) {
      model_[id] = std::move(staged);
      ++stats_.commits;
    }
  }

  Result<void> oneOp(Transaction& tx, const Document& doc, const std::string& who, DocModel& m) {
    const ObjId root = ObjId::root();
    switch (pick(6)) {
      case 0:
      case 1: {
        const std::string key = "own-" + who + "-" + std::to_string(pick(3));
        const std::string value = who + "#" + std::to_string(nextValue_++);
        auto put = tx.put(root, key, ScalarValue(value));
        if (put) m.ownKeys[key] = value;
        return put;
      }
      case 2: {
        std::vector<std::string> present;
        for (const auto& [key, value] : m.ownKeys) {
          if (value && key.starts_with("own-" + who + "-")) present.push_back(key);
        }
        if (present.empty()) return Result<void>();
        const std::string key = present[pick(present.size())];
        auto removed = tx.remove(root, key);
        EXPECT_TRUE(removed) << who << " could not delete its own key " << key << ": "
                             << (removed ? "" : removed.error().message());
        if (removed) m.ownKeys[key] = std::nullopt;
        return removed;
      }
      case 3: {
        const std::string key = "shared-" + std::to_string(pick(3));
        if (chance(0.3) && doc.get(root, key)) return tx.remove(root, key);
        return tx.put(root, key, ScalarValue(std::int64_t(nextValue_++)));
      }
      case 4: {
        const auto delta = static_cast<std::int64_t>(pick(16)) - 5;
        auto inc = tx.increment(root, "counter", delta);
        if (inc) m.counter += delta;
        return inc;
      }
      default: {
        auto list = doc.get(root, "list");
        const ObjectRef* ref = list ? std::get_if<ObjectRef>(&*list) : nullptr;
        if (!ref || ref->type != ObjType::List) return Result<void>();
        const std::size_t at = pick(doc.length(ref->id) + 1);
        auto inserted = tx.insert(ref->id, at, ScalarValue(std::int64_t(nextValue_++)));
        if (inserted) ++m.listLength;
        return inserted;
      }
    }
  }

  RepoHarness h_;
  Rng rng_;
  std::vector<TestPeer*> repos_;
  std::map<std::pair<std::size_t, std::size_t>, std::vector<std::shared_ptr<MemoryLink>>> links_;
  std::map<DocumentId, DocModel> model_;
  std::int64_t nextValue_ = 0;
  Stats stats_;
};

// Runs the simulation of `seed` to the end and checks every replica.
void convergesAfterHealing(std::uint64_t seed,
                           const std::function<void(RepoOptions&)>& tweak = {}) {
  Rng setup(seed ^ 0x5eed);
  const std::size_t repoCount = 3 + std::uniform_int_distribution<std::size_t>(0, 1)(setup);
  Simulation sim(seed, repoCount, tweak);
  SCOPED_TRACE(::testing::Message() << repoCount << " repos");

  sim.randomTopology();
  for (int i = 0; i < 2; ++i) {
    ASSERT_NO_FATAL_FAILURE(sim.createDocument(sim.pick(repoCount)));
  }
  for (int step = 0; step < kSteps; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    ASSERT_NO_FATAL_FAILURE(sim.step());
  }

  const auto& stats = sim.stats();
  SCOPED_TRACE(::testing::Message() << stats.commits << " commits, " << stats.cuts << " cuts, "
                                    << stats.reconnects << " reconnections");
  ::testing::Test::RecordProperty("commits", static_cast<int>(stats.commits));
  ::testing::Test::RecordProperty("cuts", static_cast<int>(stats.cuts));
  ::testing::Test::RecordProperty("reconnects", static_cast<int>(stats.reconnects));
  ::testing::Test::RecordProperty("documents", static_cast<int>(sim.documentCount()));
  EXPECT_GE(stats.commits, 20u) << "the steps barely edited anything";
  EXPECT_GE(stats.cuts, 1u) << "the steps never cut a link";

  SCOPED_TRACE("after healing the network");
  ASSERT_TRUE(sim.heal()) << "no convergence within " << kHealLimit.count() << " ms:\n"
                          << sim.describe();
  sim.checkReplicas();
}

class RepoConvergence : public ::testing::TestWithParam<int> {};

TEST_P(RepoConvergence, EveryRepoHoldsTheSameDocumentsAndTheModelAfterTheNetworkHeals) {
  const std::uint64_t seed = seedFor(GetParam());
  SCOPED_TRACE(seedNote(seed));
  convergesAfterHealing(seed);
}

INSTANTIATE_TEST_SUITE_P(Seeds, RepoConvergence, ::testing::Range(0, 8));

class RepoConvergenceInSmallFrames : public ::testing::TestWithParam<int> {};

// Sync batches of about one change: histories travel in many frames while both sides edit and
// links are cut, so what each side knows the other has is tracked across frames.
TEST_P(RepoConvergenceInSmallFrames, EveryRepoHoldsTheSameDocumentsAndTheModelAfterTheNetworkHeals) {
  const std::uint64_t seed = seedFor(GetParam());
  SCOPED_TRACE(seedNote(seed));
  convergesAfterHealing(seed, [](RepoOptions& o) { o.syncBatchBytes = 64; });
}

INSTANTIATE_TEST_SUITE_P(Seeds, RepoConvergenceInSmallFrames, ::testing::Range(0, 4));

}  // namespace
}  // namespace portcullis::testing
