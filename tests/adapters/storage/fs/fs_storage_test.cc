// FsStorageAdapter beyond the shared contract (tests/conformance): crash consistency under fault
// injection, temp files, hostile files on disk, and where the file I/O runs.
#include "fs_storage.h"

#include <gtest/gtest.h>

#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "fault_injection_file_ops.h"
#include "forwarding_file_ops.h"
#include "storage_test_support.h"

namespace portcullis::test {
namespace {

namespace fs = std::filesystem;

void plantFile(const fs::path& path, const Bytes& data) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

// Every file below `dir` whose name marks it as a temp file.
std::vector<fs::path> tempFiles(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with(".tmp.")) found.push_back(entry.path());
  }
  return found;
}

class FsStorageAdapterTest : public ::testing::Test {
 protected:
  void open(FileOps& ops, FsStorageOptions options = {}) {
    storage_.reset();
    storage_ = valueOrThrow(FsStorageAdapter::open(dir_.path(), ops, options));
  }
  // A power cut: the adapter goes away, what was not synced is lost, and the store is reopened.
  void crashAndReopen() {
    storage_.reset();
    faults_.simulateCrash();
    open(faults_);
  }
  template <typename T>
  T run(asio::awaitable<T> task) {
    return runToCompletion(ctx_, std::move(task));
  }
  std::optional<Bytes> load(StorageKey key) {
    return runOrThrow(ctx_, storage_->load(std::move(key)));
  }

  TempDir dir_;
  FaultInjectionFileOps faults_{dir_.path()};
  PosixFileOps posix_;
  asio::io_context ctx_;
  std::unique_ptr<FsStorageAdapter> storage_;
};

TEST_F(FsStorageAdapterTest, KeepsEveryCompletedChangeThroughACrash) {
  open(faults_);
  for (int doc = 0; doc < 8; ++doc) {
    for (std::uint8_t change = 0; change < 3; ++change) {
      StorageKey key = {"doc" + std::to_string(doc), "incremental", std::to_string(change)};
      spawn(ctx_, expectSuccess(storage_->save(std::move(key), {change})));
    }
  }
  drain(ctx_);
  runOrThrow(ctx_, storage_->save({"doc0", "incremental", "1"}, {42}));
  runOrThrow(ctx_, storage_->remove({"doc1", "incremental", "2"}));
  runOrThrow(ctx_, storage_->removeRange({"doc2"}));

  crashAndReopen();
  EXPECT_EQ(load({"doc0", "incremental", "1"}), Bytes{42});
  EXPECT_EQ(load({"doc1", "incremental", "2"}), std::nullopt);
  EXPECT_TRUE(runOrThrow(ctx_, storage_->loadRange({"doc2"})).empty());
  for (int doc = 3; doc < 8; ++doc) {
    auto chunks = runOrThrow(ctx_, storage_->loadRange({"doc" + std::to_string(doc)}));
    ASSERT_EQ(chunks.size(), 3u);
    for (std::uint8_t change = 0; change < 3; ++change) {
      EXPECT_EQ(chunks[change].data, Bytes{change});
    }
  }
}

// A change interrupted at each of its file-system calls in turn, then a crash.
enum class Change { FirstSave, Overwrite, Remove, RemoveRange };

class FsStorageAdapterCrash : public FsStorageAdapterTest,
                              public ::testing::WithParamInterface<Change> {};

TEST_P(FsStorageAdapterCrash, LeavesTheOldValueOrTheNewAtEveryCrashPoint) {
  const StorageKey key = {"doc", "incremental", "h"};
  const Bytes before = {1, 2, 3};
  const Bytes after = {4, 5, 6, 7, 8};
  const Change change = GetParam();
  std::optional<Bytes> old = change == Change::FirstSave ? std::nullopt : std::optional(before);
  std::optional<Bytes> fresh = change == Change::FirstSave || change == Change::Overwrite
                                   ? std::optional(after)
                                   : std::nullopt;
  open(faults_);
  for (std::size_t crashPoint = 0;; ++crashPoint) {
    ASSERT_LT(crashPoint, 32u) << "the change never completed";
    SCOPED_TRACE(crashPoint);
    runOrThrow(ctx_, storage_->removeRange({"doc"}));
    if (old) runOrThrow(ctx_, storage_->save(key, *old));

    faults_.crashAfter(crashPoint);
    Result<void> outcome = change == Change::Remove        ? run(storage_->remove(key))
                           : change == Change::RemoveRange ? run(storage_->removeRange({"doc"}))
                                                           : run(storage_->save(key, after));
    crashAndReopen();
    std::optional<Bytes> now = load(key);
    EXPECT_TRUE(now == old || now == fresh) << "torn: " << ::testing::PrintToString(now);
    EXPECT_TRUE(tempFiles(dir_.path()).empty());
    if (outcome) {
      EXPECT_EQ(now, fresh);
      break;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EachChange, FsStorageAdapterCrash,
                         ::testing::Values(Change::FirstSave, Change::Overwrite, Change::Remove,
                                           Change::RemoveRange),
                         [](const ::testing::TestParamInfo<Change>& info) {
                           switch (info.param) {
                             case Change::FirstSave: return "FirstSave";
                             case Change::Overwrite: return "Overwrite";
                             case Change::Remove: return "Remove";
                             case Change::RemoveRange: return "RemoveRange";
                           }
                           return "Unknown";
                         });

TEST_F(FsStorageAdapterTest, NeverLoadsATempFileAndDeletesItOnOpen) {
  open(posix_);
  runOrThrow(ctx_, storage_->save({"doc", "a"}, {1}));
  plantFile(dir_.path() / "doc" / ".tmp.b", {2, 2});
  plantFile(dir_.path() / "doc" / "deeper" / ".tmp.c", {3});
  auto chunks = runOrThrow(ctx_, storage_->loadRange({"doc"}));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].key, (StorageKey{"doc", "a"}));

  open(posix_);
  EXPECT_TRUE(tempFiles(dir_.path()).empty());
  EXPECT_EQ(load({"doc", "a"}), Bytes{1});
}

TEST_F(FsStorageAdapterTest, RefusesAChunkOverTheMaximumSize) {
  open(posix_, {.maxChunkSize = 16});
  runOrThrow(ctx_, storage_->save({"doc", "fits"}, Bytes(16, 1)));
  auto saved = run(storage_->save({"doc", "big"}, Bytes(17, 1)));
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code(), Errc::Overloaded);

  // One that reached the disk some other way is refused before anything is allocated for it.
  plantFile(dir_.path() / "doc" / "big.chunk", Bytes(17, 1));
  auto loaded = run(storage_->load({"doc", "big"}));
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code(), Errc::Malformed);
  auto ranged = run(storage_->loadRange({"doc"}));
  ASSERT_FALSE(ranged.has_value());
  EXPECT_EQ(ranged.error().code(), Errc::Malformed);
}

TEST_F(FsStorageAdapterTest, NeverFollowsASymlinkPlantedInTheStore) {
  TempDir outside;
  plantFile(outside.path() / "secret", {7});
  open(posix_);
  fs::create_directory(dir_.path() / "doc");
  fs::create_symlink(outside.path() / "secret", dir_.path() / "doc" / "link.chunk");
  fs::create_directory_symlink(outside.path(), dir_.path() / "escape");

  auto loaded = run(storage_->load({"doc", "link"}));
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code(), Errc::Malformed);
  auto saved = run(storage_->save({"escape", "secret"}, {8}));
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code(), Errc::Malformed);
  EXPECT_TRUE(runOrThrow(ctx_, storage_->loadRange({"escape"})).empty());
  EXPECT_FALSE(fs::exists(outside.path() / "secret.chunk"));
}

TEST_F(FsStorageAdapterTest, RemoveRangeLeavesNoEmptyDirectoryBehind) {
  open(posix_);
  runOrThrow(ctx_, storage_->save({"doc", "incremental", "h"}, {1}));
  runOrThrow(ctx_, storage_->save({"doc", "snapshot", "h"}, {2}));
  runOrThrow(ctx_, storage_->save({"kept", "x"}, {3}));
  plantFile(dir_.path() / "kept" / "notes.txt", {4});
  runOrThrow(ctx_, storage_->removeRange({"doc"}));
  runOrThrow(ctx_, storage_->removeRange({"kept"}));
  EXPECT_FALSE(fs::exists(dir_.path() / "doc"));
  // A file that is not ours keeps its directory alive.
  EXPECT_TRUE(fs::exists(dir_.path() / "kept" / "notes.txt"));
}

TEST_F(FsStorageAdapterTest, OpenCreatesAMissingRootAndRefusesOneThatIsAFile) {
  auto created = valueOrThrow(FsStorageAdapter::open(dir_.path() / "store"));
  EXPECT_TRUE(fs::is_directory(dir_.path() / "store"));

  plantFile(dir_.path() / "file", {1});
  auto opened = FsStorageAdapter::open(dir_.path() / "file");
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code(), Errc::Config);
  auto threadless = FsStorageAdapter::open(dir_.path() / "store", {.threads = 0});
  ASSERT_FALSE(threadless.has_value());
  EXPECT_EQ(threadless.error().code(), Errc::Config);
}

// Notes the threads that write files.
class ThreadRecordingFileOps final : public ForwardingFileOps {
 public:
  using ForwardingFileOps::ForwardingFileOps;
  Result<void> writeFile(const fs::path& path, ByteView data) override {
    std::lock_guard lock(mutex_);
    threads_.insert(std::this_thread::get_id());
    return ForwardingFileOps::writeFile(path, data);
  }
  std::set<std::thread::id> threads() {
    std::lock_guard lock(mutex_);
    return threads_;
  }

 private:
  std::mutex mutex_;
  std::set<std::thread::id> threads_;
};

TEST_F(FsStorageAdapterTest, DoesItsFileIoOffTheCallersThread) {
  ThreadRecordingFileOps recorder(posix_);
  open(recorder);
  runOrThrow(ctx_, storage_->save({"doc", "a"}, {1}));
  ASSERT_FALSE(recorder.threads().empty());
  EXPECT_EQ(recorder.threads().count(std::this_thread::get_id()), 0u);
  storage_.reset();
}

}  // namespace
}  // namespace portcullis::test
