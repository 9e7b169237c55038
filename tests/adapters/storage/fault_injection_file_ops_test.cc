// The crash model of FaultInjectionFileOps, and the proof that it has teeth: an fs adapter that
// skips any one of its fsyncs loses a completed save in a simulated crash.
#include "fault_injection_file_ops.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iterator>

#include "forwarding_file_ops.h"
#include "storage_test_support.h"

namespace portcullis::test {
namespace {

namespace fs = std::filesystem;

std::optional<Bytes> readFile(const fs::path& path) {
  if (!fs::exists(path)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void expectOk(const Result<void>& result) {
  EXPECT_TRUE(result.has_value()) << result.error().message();
}

class FaultInjectionFileOpsTest : public ::testing::Test {
 protected:
  fs::path at(const char* name) const { return dir_.path() / name; }
  Result<void> write(const char* name, Bytes data) { return faults_.writeFile(at(name), data); }
  // A file whose data and name are both durable.
  void writeDurably(const char* name, Bytes data) {
    expectOk(write(name, std::move(data)));
    expectOk(faults_.syncFile(at(name)));
    expectOk(faults_.syncDir(dir_.path()));
  }

  TempDir dir_;
  FaultInjectionFileOps faults_{dir_.path()};
};

TEST_F(FaultInjectionFileOpsTest, ForgetsFileDataThatWasNeverSynced) {
  expectOk(write("a", {1, 2, 3}));
  expectOk(faults_.syncDir(dir_.path()));
  writeDurably("b", {4});
  expectOk(write("b", {5, 6}));
  faults_.simulateCrash();
  EXPECT_EQ(readFile(at("a")), Bytes{});
  EXPECT_EQ(readFile(at("b")), Bytes{4});
}

TEST_F(FaultInjectionFileOpsTest, ForgetsAFileWhoseDirectoryWasNeverSynced) {
  expectOk(write("a", {1}));
  expectOk(faults_.syncFile(at("a")));
  faults_.simulateCrash();
  EXPECT_EQ(readFile(at("a")), std::nullopt);
}

TEST_F(FaultInjectionFileOpsTest, UndoesARenameUntilItsDirectoryIsSynced) {
  writeDurably("target", {1});
  expectOk(write("temp", {2}));
  expectOk(faults_.syncFile(at("temp")));
  expectOk(faults_.rename(at("temp"), at("target")));
  EXPECT_EQ(readFile(at("target")), Bytes{2});
  faults_.simulateCrash();
  EXPECT_EQ(readFile(at("target")), Bytes{1});
  EXPECT_EQ(readFile(at("temp")), std::nullopt);

  expectOk(write("temp", {3}));
  expectOk(faults_.syncFile(at("temp")));
  expectOk(faults_.rename(at("temp"), at("target")));
  expectOk(faults_.syncDir(dir_.path()));
  faults_.simulateCrash();
  EXPECT_EQ(readFile(at("target")), Bytes{3});
  EXPECT_EQ(readFile(at("temp")), std::nullopt);
}

TEST_F(FaultInjectionFileOpsTest, UndoesUnlinksAndDirectoryChangesUntilTheParentIsSynced) {
  writeDurably("kept", {1});
  expectOk(faults_.makeDir(at("old")));
  expectOk(faults_.syncDir(dir_.path()));
  expectOk(faults_.unlink(at("kept")));
  expectOk(faults_.removeDir(at("old")));
  expectOk(faults_.makeDir(at("new")));
  faults_.simulateCrash();
  EXPECT_EQ(readFile(at("kept")), Bytes{1});
  EXPECT_TRUE(fs::is_directory(at("old")));
  EXPECT_FALSE(fs::exists(at("new")));
}

TEST_F(FaultInjectionFileOpsTest, FailsEveryCallAfterTheCrashPointUntilTheCrash) {
  faults_.crashAfter(1);
  expectOk(write("a", {1}));
  auto synced = faults_.syncFile(at("a"));
  ASSERT_FALSE(synced.has_value());
  EXPECT_EQ(synced.error().code(), Errc::Io);
  EXPECT_FALSE(faults_.makeDir(at("d")).has_value());
  EXPECT_FALSE(fs::exists(at("d")));
  faults_.simulateCrash();
  expectOk(faults_.makeDir(at("d")));
}

// Which fsync a broken adapter forgets.
enum class Skip { FileSync, DirSync, ParentSyncAfterMakeDir };

// FsStorageAdapter with one of its fsyncs missing, as far as the disk can tell.
class SkippingFileOps final : public ForwardingFileOps {
 public:
  SkippingFileOps(FileOps& inner, Skip skip) : ForwardingFileOps(inner), skip_(skip) {}

  Result<void> syncFile(const fs::path& path) override {
    if (skip_ == Skip::FileSync) return {};
    return ForwardingFileOps::syncFile(path);
  }
  Result<void> makeDir(const fs::path& path) override {
    justMadeDir_ = true;
    return ForwardingFileOps::makeDir(path);
  }
  Result<void> syncDir(const fs::path& path) override {
    bool afterMakeDir = justMadeDir_.exchange(false);
    if (skip_ == Skip::DirSync || (skip_ == Skip::ParentSyncAfterMakeDir && afterMakeDir)) {
      return {};
    }
    return ForwardingFileOps::syncDir(path);
  }

 private:
  Skip skip_;
  std::atomic<bool> justMadeDir_ = false;
};

class FaultInjectionCatches : public ::testing::TestWithParam<Skip> {};

TEST_P(FaultInjectionCatches, AnAdapterThatSkipsAnFsync) {
  TempDir dir;
  FaultInjectionFileOps faults(dir.path());
  asio::io_context ctx;
  const StorageKey key = {"doc", "incremental", "h"};
  const Bytes data = {1, 2, 3, 4};
  {
    SkippingFileOps broken(faults, GetParam());
    auto storage = valueOrThrow(FsStorageAdapter::open(dir.path(), broken));
    runOrThrow(ctx, storage->save(key, data));
    // Until the power goes, the page cache hides the missing fsync.
    EXPECT_EQ(runOrThrow(ctx, storage->load(key)), data);
  }
  faults.simulateCrash();
  auto storage = valueOrThrow(FsStorageAdapter::open(dir.path(), faults));
  EXPECT_NE(runOrThrow(ctx, storage->load(key)), data);
}

INSTANTIATE_TEST_SUITE_P(EachFsync, FaultInjectionCatches,
                         ::testing::Values(Skip::FileSync, Skip::DirSync,
                                           Skip::ParentSyncAfterMakeDir),
                         [](const ::testing::TestParamInfo<Skip>& info) {
                           switch (info.param) {
                             case Skip::FileSync: return "SkippedFileSync";
                             case Skip::DirSync: return "SkippedDirSync";
                             case Skip::ParentSyncAfterMakeDir: return "SkippedParentSync";
                           }
                           return "Unknown";
                         });

}  // namespace
}  // namespace portcullis::test
