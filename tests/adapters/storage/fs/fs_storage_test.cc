// FsStorageAdapter beyond the shared contract (tests/conformance): crash consistency under fault
// injection, disk errors (ENOSPC, EIO) at each system call of a save, temp files, hostile files on
// disk, and where the file I/O runs.
#include "fs_storage.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "fault_injection_file_ops.h"
#include "forwarding_file_ops.h"
#include "storage_test_support.h"
#include "syscall_faults.h"

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

// A save that meets a full or failing disk: where it writes, which system call fails, and how many
// calls of that kind the save makes (each is failed in turn).
enum class Target { NewDocument, NextChunk, Overwrite };

struct SaveStep {
  Target target;
  Syscall call;
  std::size_t steps;
};

// Every mutating call of each save, in the order the adapter makes them: a new document creates
// two directories (each synced into its parent), then writes a temp file, syncs it, renames it and
// syncs its directory; a save in existing directories skips the first part. An open precedes the
// write and each fsync.
constexpr SaveStep kSaveSteps[] = {
    {Target::NewDocument, Syscall::Mkdir, 2},  {Target::NewDocument, Syscall::Open, 5},
    {Target::NewDocument, Syscall::Write, 1},  {Target::NewDocument, Syscall::Fsync, 4},
    {Target::NewDocument, Syscall::Rename, 1}, {Target::NextChunk, Syscall::Open, 3},
    {Target::NextChunk, Syscall::Write, 1},    {Target::NextChunk, Syscall::Fsync, 2},
    {Target::NextChunk, Syscall::Rename, 1},   {Target::Overwrite, Syscall::Open, 3},
    {Target::Overwrite, Syscall::Write, 1},    {Target::Overwrite, Syscall::Fsync, 2},
    {Target::Overwrite, Syscall::Rename, 1},
};

class FsStorageAdapterDiskError
    : public ::testing::TestWithParam<std::tuple<SaveStep, int>> {
 protected:
  const StorageKey doc_ = {"doc", "incremental", "a"};
  const StorageKey other_ = {"other", "incremental", "b"};
  const Bytes docData_ = {1, 2, 3};
  const Bytes otherData_ = {4};
  // Big enough to be written in two halves.
  const Bytes written_ = Bytes(4096, 7);

  StorageKey target() const {
    switch (std::get<0>(GetParam()).target) {
      case Target::NewDocument: return {"fresh", "incremental", "c"};
      case Target::NextChunk: return {"doc", "incremental", "c"};
      case Target::Overwrite: return doc_;
    }
    return {};
  }

  // The store holds what was saved before the failed save, and of that save either nothing or
  // all of it (if the failure came after the rename); no partial file passes for a chunk.
  void expectEarlierChunksAndNoPartialOne(asio::io_context& ctx, FsStorageAdapter& storage,
                                          const fs::path& dir) {
    const StorageKey key = target();
    const bool overwrite = key == doc_;
    std::optional<Bytes> docNow = runOrThrow(ctx, storage.load(doc_));
    if (overwrite) {
      EXPECT_TRUE(docNow == docData_ || docNow == written_) << "torn";
    } else {
      EXPECT_EQ(docNow, docData_);
      std::optional<Bytes> targetNow = runOrThrow(ctx, storage.load(key));
      EXPECT_TRUE(targetNow == std::nullopt || targetNow == written_) << "torn";
    }
    EXPECT_EQ(runOrThrow(ctx, storage.load(other_)), otherData_);
    for (const StorageChunk& chunk : runOrThrow(ctx, storage.loadRange({key.front()}))) {
      EXPECT_TRUE(chunk.key == doc_ || chunk.key == key) << ::testing::PrintToString(chunk.key);
      EXPECT_TRUE(chunk.data == docData_ || chunk.data == written_) << "torn";
    }
    EXPECT_TRUE(tempFiles(dir).empty());
  }
};

TEST_P(FsStorageAdapterDiskError, FailsTheSaveAndKeepsEverythingSavedBeforeAtEveryStep) {
  const auto [step, err] = GetParam();
  for (std::size_t nth = 1; nth <= step.steps + 1; ++nth) {
    SCOPED_TRACE(syscallName(step.call) + " number " + std::to_string(nth) + " fails with " +
                 std::strerror(err));
    TempDir dir;
    SyscallFaults faults;
    FaultInjectionFileOps disk(dir.path(), PosixFileOps(SyscallFaults::calls()));
    asio::io_context ctx;
    {
      auto storage = valueOrThrow(FsStorageAdapter::open(dir.path(), disk));
      runOrThrow(ctx, storage->save(doc_, docData_));
      runOrThrow(ctx, storage->save(other_, otherData_));
      faults.arm(step.call, nth, err);
      Result<void> outcome = runToCompletion(ctx, storage->save(target(), written_));
      const bool fired = faults.disarm();
      if (nth > step.steps) {
        // Past the last call of that kind: the count of steps is right, and a save succeeds.
        EXPECT_FALSE(fired);
        EXPECT_TRUE(outcome.has_value()) << outcome.error().message();
        break;
      }
      ASSERT_TRUE(fired);
      ASSERT_FALSE(outcome.has_value()) << "a save whose system call failed reported success";
      EXPECT_EQ(outcome.error().code(), Errc::Io);
      EXPECT_NE(outcome.error().message().find(std::strerror(err)), std::string::npos)
          << outcome.error().message();
    }
    // The process goes on (the page cache keeps what was written) and reopens the store.
    {
      SCOPED_TRACE("reopened");
      auto storage = valueOrThrow(FsStorageAdapter::open(dir.path(), disk));
      expectEarlierChunksAndNoPartialOne(ctx, *storage, dir.path());
      // The disk recovers and the same save succeeds: it must be durable, even where the failed
      // attempt left something behind that looks done (a directory whose parent was not synced).
      runOrThrow(ctx, storage->save(target(), written_));
    }
    SCOPED_TRACE("after a power cut");
    disk.simulateCrash();
    auto reopened = valueOrThrow(FsStorageAdapter::open(dir.path(), disk));
    expectEarlierChunksAndNoPartialOne(ctx, *reopened, dir.path());
    EXPECT_EQ(runOrThrow(ctx, reopened->load(target())), written_);
  }
}

INSTANTIATE_TEST_SUITE_P(
    EachStepOfASave, FsStorageAdapterDiskError,
    ::testing::Combine(::testing::ValuesIn(kSaveSteps), ::testing::Values(ENOSPC, EIO)),
    [](const ::testing::TestParamInfo<std::tuple<SaveStep, int>>& info) {
      // std::get, not a structured binding: its comma would split the macro's arguments.
      const SaveStep& step = std::get<0>(info.param);
      std::string target = step.target == Target::NewDocument ? "NewDocument"
                           : step.target == Target::NextChunk ? "NextChunk"
                                                              : "Overwrite";
      return target + syscallName(step.call) +
             (std::get<1>(info.param) == ENOSPC ? "Enospc" : "Eio");
    });

// A remove that meets a failing disk reports it, and once the disk recovers, a removal that
// reports success is durable even if the failed attempt had already removed the files.
TEST(FsStorageAdapterRemoveError, IsReportedAndTheRetryIsDurable) {
  for (Syscall call : {Syscall::Unlink, Syscall::Rmdir, Syscall::Fsync}) {
    for (std::size_t nth = 1; nth <= 3; ++nth) {
      SCOPED_TRACE(syscallName(call) + " number " + std::to_string(nth) + " fails");
      TempDir dir;
      SyscallFaults faults;
      FaultInjectionFileOps disk(dir.path(), PosixFileOps(SyscallFaults::calls()));
      asio::io_context ctx;
      auto storage = valueOrThrow(FsStorageAdapter::open(dir.path(), disk));
      runOrThrow(ctx, storage->save({"doc", "incremental", "a"}, {1}));
      runOrThrow(ctx, storage->save({"doc", "snapshot", "s"}, {2}));
      faults.arm(call, nth, EIO);
      Result<void> outcome = runToCompletion(ctx, storage->removeRange({"doc"}));
      if (!faults.disarm()) {
        EXPECT_TRUE(outcome.has_value()) << outcome.error().message();
        continue;
      }
      ASSERT_FALSE(outcome.has_value()) << "a remove whose system call failed reported success";
      runOrThrow(ctx, storage->removeRange({"doc"}));
      storage.reset();
      disk.simulateCrash();
      storage = valueOrThrow(FsStorageAdapter::open(dir.path(), disk));
      EXPECT_TRUE(runOrThrow(ctx, storage->loadRange({"doc"})).empty());
    }
  }
}

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
