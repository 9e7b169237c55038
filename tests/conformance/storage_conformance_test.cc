// The StorageAdapter contract, checked against every adapter: memory, and fs in a fresh directory
// per test.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fs_storage.h"
#include "memory_storage.h"
#include "storage_test_support.h"

namespace portcullis::test {
namespace {

namespace fs = std::filesystem;

struct AdapterKind {
  std::string name;
  // Opens the adapter; a persistent one keeps its data in `dir`.
  std::function<std::unique_ptr<StorageAdapter>(const fs::path& dir)> open;
  bool persistent;
};

void PrintTo(const AdapterKind& kind, std::ostream* out) { *out << kind.name; }

std::unique_ptr<StorageAdapter> openMemory(const fs::path&) {
  return std::make_unique<MemoryStorageAdapter>();
}

std::unique_ptr<StorageAdapter> openFs(const fs::path& dir) {
  return valueOrThrow(FsStorageAdapter::open(dir));
}

Bytes pattern(std::size_t size, std::uint8_t seed) {
  Bytes out(size);
  for (std::size_t i = 0; i < size; ++i) {
    out[i] = static_cast<std::uint8_t>(seed + i * 31 + i / 251);
  }
  return out;
}

asio::awaitable<void> loadInto(asio::awaitable<Result<std::optional<Bytes>>> call,
                               std::optional<Bytes>& out) {
  auto loaded = co_await std::move(call);
  EXPECT_TRUE(loaded.has_value()) << loaded.error().message();
  if (loaded) out = std::move(*loaded);
}

template <typename T>
void expectMalformed(const Result<T>& result) {
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), Errc::Malformed) << result.error().message();
}

class StorageConformance : public ::testing::TestWithParam<AdapterKind> {
 protected:
  void SetUp() override { storage_ = GetParam().open(dir_.path()); }

  void reopen() {
    storage_.reset();
    storage_ = GetParam().open(dir_.path());
  }

  template <typename T>
  T run(asio::awaitable<T> task) {
    return runToCompletion(ctx_, std::move(task));
  }
  void save(StorageKey key, Bytes data) {
    runOrThrow(ctx_, storage_->save(std::move(key), std::move(data)));
  }
  std::optional<Bytes> load(StorageKey key) {
    return runOrThrow(ctx_, storage_->load(std::move(key)));
  }
  void remove(StorageKey key) { runOrThrow(ctx_, storage_->remove(std::move(key))); }
  void removeRange(StorageKey prefix) {
    runOrThrow(ctx_, storage_->removeRange(std::move(prefix)));
  }
  // The keys loadRange(prefix) returns, in its order.
  std::vector<StorageKey> rangeKeys(StorageKey prefix) {
    std::vector<StorageKey> keys;
    for (StorageChunk& chunk : runOrThrow(ctx_, storage_->loadRange(std::move(prefix)))) {
      keys.push_back(std::move(chunk.key));
    }
    return keys;
  }

  TempDir dir_;
  asio::io_context ctx_;
  std::unique_ptr<StorageAdapter> storage_;
};

TEST_P(StorageConformance, LoadsNothingForAKeyNeverSaved) {
  EXPECT_EQ(load({"doc", "incremental", "h1"}), std::nullopt);
  EXPECT_TRUE(rangeKeys({"doc"}).empty());
}

TEST_P(StorageConformance, LoadsExactlyWhatWasSaved) {
  Bytes large = pattern(5 << 20, 7);
  save({"doc", "empty"}, {});
  save({"doc", "small"}, {1, 2, 3});
  save({"doc", "large"}, large);
  EXPECT_EQ(load({"doc", "empty"}), Bytes{});
  EXPECT_EQ(load({"doc", "small"}), (Bytes{1, 2, 3}));
  // Not EXPECT_EQ: a failure would print megabytes.
  EXPECT_TRUE(load({"doc", "large"}) == large);
}

TEST_P(StorageConformance, SavingAgainReplacesTheWholeValue) {
  save({"doc", "k"}, pattern(1000, 1));
  save({"doc", "k"}, {9, 9});
  EXPECT_EQ(load({"doc", "k"}), (Bytes{9, 9}));
}

TEST_P(StorageConformance, RemoveDeletesTheKeyAndSucceedsWhenItIsMissing) {
  save({"doc", "k"}, {1});
  save({"doc", "other"}, {2});
  remove({"doc", "k"});
  EXPECT_EQ(load({"doc", "k"}), std::nullopt);
  EXPECT_EQ(load({"doc", "other"}), Bytes{2});
  remove({"doc", "k"});
  remove({"never", "saved"});
}

TEST_P(StorageConformance, KeysThatExtendOneAnotherHoldSeparateValues) {
  save({"a"}, {1});
  save({"a", "b"}, {2});
  save({"a", "b", "c"}, {3});
  EXPECT_EQ(load({"a"}), Bytes{1});
  EXPECT_EQ(load({"a", "b"}), Bytes{2});
  EXPECT_EQ(load({"a", "b", "c"}), Bytes{3});
  remove({"a", "b"});
  EXPECT_EQ(load({"a"}), Bytes{1});
  EXPECT_EQ(load({"a", "b"}), std::nullopt);
  EXPECT_EQ(load({"a", "b", "c"}), Bytes{3});
}

TEST_P(StorageConformance, LoadRangeMatchesWholeKeyElementsOnly) {
  save({"a"}, {1});
  save({"a", "x"}, {2});
  save({"a", "x", "y"}, {3});
  save({"ab", "x"}, {4});
  save({"b"}, {5});
  EXPECT_EQ(rangeKeys({"a"}), (std::vector<StorageKey>{{"a"}, {"a", "x"}, {"a", "x", "y"}}));
  EXPECT_EQ(rangeKeys({"a", "x"}), (std::vector<StorageKey>{{"a", "x"}, {"a", "x", "y"}}));
  EXPECT_EQ(rangeKeys({"a", "x", "y", "z"}), std::vector<StorageKey>{});

  auto chunks = runOrThrow(ctx_, storage_->loadRange({"ab"}));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].key, (StorageKey{"ab", "x"}));
  EXPECT_EQ(chunks[0].data, Bytes{4});
}

TEST_P(StorageConformance, LoadRangeOrdersChunksByKey) {
  std::vector<StorageKey> sorted = {{"d", "a"},       {"d", "a", "z"}, {"d", "b", "0"},
                                    {"d", "b", "10"}, {"d", "b", "9"}, {"d", "c"}};
  for (std::size_t i : {3u, 0u, 5u, 1u, 4u, 2u}) save(sorted[i], {static_cast<std::uint8_t>(i)});
  EXPECT_EQ(rangeKeys({"d"}), sorted);
}

TEST_P(StorageConformance, RemoveRangeRemovesOnlyKeysUnderThePrefix) {
  save({"a"}, {1});
  save({"a", "x"}, {2});
  save({"a", "x", "y"}, {3});
  save({"a", "z"}, {4});
  save({"ab", "x"}, {5});
  removeRange({"a", "x"});
  EXPECT_EQ(rangeKeys({"a"}), (std::vector<StorageKey>{{"a"}, {"a", "z"}}));
  removeRange({"a"});
  EXPECT_TRUE(rangeKeys({"a"}).empty());
  EXPECT_EQ(load({"ab", "x"}), Bytes{5});
  removeRange({"nothing", "here"});

  save({"a", "x", "y"}, {6});
  EXPECT_EQ(load({"a", "x", "y"}), Bytes{6});
}

TEST_P(StorageConformance, RejectsMalformedKeysInEveryCall) {
  std::vector<StorageKey> malformed = {
      {},
      {""},
      {"doc", ""},
      {"."},
      {".."},
      {"doc", "..", "escape"},
      {"a/b"},
      {"/etc"},
      {std::string("a\0b", 3)},
      {"doc.chunk"},
      {".tmp.doc"},
      {"caf\xc3\xa9"},
      {std::string(kMaxStorageKeyElementSize + 1, 'a')},
      StorageKey(kMaxStorageKeyElements + 1, "a"),
  };
  for (const StorageKey& key : malformed) {
    SCOPED_TRACE(::testing::PrintToString(key));
    expectMalformed(run(storage_->load(key)));
    expectMalformed(run(storage_->save(key, {1})));
    expectMalformed(run(storage_->remove(key)));
    expectMalformed(run(storage_->loadRange(key)));
    expectMalformed(run(storage_->removeRange(key)));
  }
  EXPECT_EQ(load({std::string(kMaxStorageKeyElementSize, 'a')}), std::nullopt);
  EXPECT_EQ(load(StorageKey(kMaxStorageKeyElements, "a")), std::nullopt);
}

TEST_P(StorageConformance, OverlappingCallsOnOneKeyTakeEffectInTheOrderTheyWereMade) {
  // Each round saves, reads back, and (every third round) removes and reads again; every call
  // is its own coroutine, all started before any finishes, with calls on other documents mixed
  // in.
  constexpr std::size_t kRounds = 24;
  std::vector<std::optional<Bytes>> afterSave(kRounds);
  std::vector<std::optional<Bytes>> afterRemove(kRounds);
  for (std::size_t i = 0; i < kRounds; ++i) {
    Bytes value = pattern(100 + i * 50, static_cast<std::uint8_t>(i));
    spawn(ctx_, expectSuccess(storage_->save({"doc", "k"}, value)));
    spawn(ctx_, loadInto(storage_->load({"doc", "k"}), afterSave[i]));
    spawn(ctx_, expectSuccess(storage_->save({"other" + std::to_string(i), "k"}, value)));
    if (i % 3 == 0) {
      spawn(ctx_, expectSuccess(storage_->remove({"doc", "k"})));
      spawn(ctx_, loadInto(storage_->load({"doc", "k"}), afterRemove[i]));
    }
  }
  drain(ctx_);
  for (std::size_t i = 0; i < kRounds; ++i) {
    SCOPED_TRACE(i);
    Bytes value = pattern(100 + i * 50, static_cast<std::uint8_t>(i));
    EXPECT_EQ(afterSave[i], value);
    EXPECT_EQ(afterRemove[i], std::nullopt);
    EXPECT_EQ(load({"other" + std::to_string(i), "k"}), value);
  }
}

TEST_P(StorageConformance, KeepsItsDataWhenReopened) {
  if (!GetParam().persistent) GTEST_SKIP() << GetParam().name << " keeps nothing across opens";
  save({"doc", "snapshot", "h"}, {1, 2});
  save({"doc", "incremental", "h"}, {3});
  save({"doc", "incremental", "gone"}, {4});
  remove({"doc", "incremental", "gone"});
  reopen();
  EXPECT_EQ(rangeKeys({"doc"}),
            (std::vector<StorageKey>{{"doc", "incremental", "h"}, {"doc", "snapshot", "h"}}));
  EXPECT_EQ(load({"doc", "snapshot", "h"}), (Bytes{1, 2}));
}

INSTANTIATE_TEST_SUITE_P(EveryAdapter, StorageConformance,
                         ::testing::Values(AdapterKind{"memory", openMemory, false},
                                           AdapterKind{"fs", openFs, true}),
                         [](const ::testing::TestParamInfo<AdapterKind>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace portcullis::test
