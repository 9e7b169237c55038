// fault_injection_file_ops.h — a FileOps for tests that remembers what each fsync made durable and
// can forget everything else, as a power cut would (LevelDB's FaultInjectionTestEnv pattern). A
// kill -9 cannot catch a missing fsync, since the page cache survives it; this can.
//
// Test support for adapters/storage/fs. Thread-safe, since FsStorageAdapter calls it from its pool
// threads.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fs_storage.h"

namespace portcullis::test {

// Performs every call on the real files (through PosixFileOps) and keeps a model of the tree with
// two views: what is there now, and what is durable. The model follows POSIX: file data becomes
// durable by syncFile of the file; a directory entry made by writeFile, rename or makeDir, or
// dropped by unlink, rename or removeDir, becomes durable by syncDir of its directory.
class FaultInjectionFileOps final : public FileOps {
 public:
  // Works below `root`, an existing empty directory that counts as durable. Every path given
  // later must lie below `root`, spelt with `root` as its start. `real` makes the calls (and
  // rewrites the tree in simulateCrash()): a test may give it system calls that fail.
  explicit FaultInjectionFileOps(std::filesystem::path root, PosixFileOps real = PosixFileOps());

  // Makes the tree below the root what a crash would leave: each directory holds the entries it
  // had at its last syncDir (none, for one never synced), each file the data it had at its last
  // syncFile (nothing, for one never synced). Afterwards all of it is durable, and calls that
  // crashAfter() stopped go through again.
  void simulateCrash();
  // Lets `count` more calls through; each later one fails with Errc::Io and changes nothing, as
  // if the process had died there, until simulateCrash().
  void crashAfter(std::size_t count);

  Result<void> writeFile(const std::filesystem::path& path, ByteView data) override;
  Result<void> syncFile(const std::filesystem::path& path) override;
  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  Result<void> unlink(const std::filesystem::path& path) override;
  Result<void> makeDir(const std::filesystem::path& path) override;
  Result<void> removeDir(const std::filesystem::path& path) override;
  Result<void> syncDir(const std::filesystem::path& path) override;

 private:
  // A file or a directory, as an inode: a rename moves the node, not its data.
  struct Node {
    bool isDir = false;
    Bytes data{};
    Bytes durableData{};
    std::map<std::string, std::size_t> entries{};
    std::map<std::string, std::size_t> durableEntries{};
  };

  // Under the lock and once admit() allows: the real call, then, if it succeeded, `model` to
  // bring the model along.
  template <typename Real, typename Model>
  Result<void> mutate(Real real, Model model);
  // Fails once crashAfter()'s budget is spent; otherwise takes one from it.
  Result<void> admit();
  // The node of `path`'s directory and `path`'s last name.
  std::pair<std::size_t, std::string> locate(const std::filesystem::path& path) const;
  // The node at `path`.
  std::size_t resolve(const std::filesystem::path& path) const;
  std::size_t addNode(Node node);
  // Drops `path`'s entry from its directory.
  void forget(const std::filesystem::path& path);
  // Recreates the durable view of nodes_[from] at `path` as survivors[to], recursively.
  void restore(std::size_t from, const std::filesystem::path& path, std::vector<Node>& survivors,
               std::size_t to);

  std::mutex mutex_;
  std::filesystem::path root_;
  PosixFileOps real_;
  std::vector<Node> nodes_;  // nodes_[0] is the root
  std::optional<std::size_t> callsLeft_;
};

}  // namespace portcullis::test
