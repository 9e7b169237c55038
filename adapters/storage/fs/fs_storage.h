// fs_storage.h — a StorageAdapter that keeps each chunk in its own file under one root directory,
// and the FileOps seam through which it changes the file system.
//
// Adapter layer; includes only portcullis/*.h. FsStorageAdapter's methods are called on the Repo's
// executor and complete on it; the blocking file I/O runs meanwhile on a thread pool the adapter
// owns. FileOps is called from those pool threads, concurrently for keys whose first elements
// differ, so an implementation must be thread-safe.
//
// Layout: a key {e1, ..., en} is the file `root/e1/.../e(n-1)/en.chunk`. Key elements are never
// encoded: checkStorageKey() admits only [A-Za-z0-9_-], so an element is always a plain file name
// and can neither leave the root nor collide with the ".chunk" suffix or with a temp file, whose
// name starts with '.'. The file system must be case-sensitive (base58 keys differ by case).
//
// Durability (architecture §6): save() writes a temp file beside the target, fsyncs it, renames it
// over the target and fsyncs the directory; a directory it creates is fsynced into its parent. A
// crash therefore leaves the old chunk or the new one. remove() unlinks and fsyncs the directory.
// Temp files are never loaded and open() deletes them. A save that meets a disk error (ENOSPC, EIO)
// at any of these steps fails with it, never reports success, and leaves the old chunk loadable;
// retried once the disk recovers, it is as durable as any other.
//
// What is on disk is untrusted: a chunk larger than the configured maximum is refused, not
// allocated; a chunk that is a symlink or not a regular file is Malformed; files whose names are
// not valid keys are ignored. Directories are trusted only as far as this: save() refuses to
// write through a symlinked directory and loadRange() does not descend into one.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/export.h"
#include "portcullis/result.h"
#include "portcullis/storage_adapter.h"
#include "portcullis/types.h"

namespace portcullis {

// Every change FsStorageAdapter makes to the file system goes through one of these calls, so that
// a test can substitute an implementation that records what each fsync made durable and simulates
// a crash. Reads do not go through it. Errors: NotFound when the path (or its directory) does not
// exist, Conflict when makeDir finds the path taken or removeDir finds the directory not empty,
// Io for anything else the operating system reports.
class PORTCULLIS_EXPORT FileOps {
 public:
  virtual ~FileOps() = default;

  // Creates `path` (or truncates it if it exists) with mode 0600 and writes all of `data`. Does
  // not sync. Never follows a symlink at `path`.
  virtual Result<void> writeFile(const std::filesystem::path& path, ByteView data) = 0;
  // fsync(2) of the file's data and metadata.
  virtual Result<void> syncFile(const std::filesystem::path& path) = 0;
  // rename(2): atomically replaces `to`; durable only after syncDir of the directories involved.
  virtual Result<void> rename(const std::filesystem::path& from,
                              const std::filesystem::path& to) = 0;
  // unlink(2); durable only after syncDir of the directory.
  virtual Result<void> unlink(const std::filesystem::path& path) = 0;
  // mkdir(2) with mode 0700; durable only after syncDir of the parent.
  virtual Result<void> makeDir(const std::filesystem::path& path) = 0;
  // rmdir(2) of an empty directory; durable only after syncDir of the parent.
  virtual Result<void> removeDir(const std::filesystem::path& path) = 0;
  // fsync(2) of a directory, which makes the entries created, renamed or removed in it durable.
  virtual Result<void> syncDir(const std::filesystem::path& path) = 0;
};

namespace detail {

// The system calls through which PosixFileOps changes the file system, each with its POSIX
// signature and contract (open always gets a mode). A table so that a test can make one of them
// fail as a full or failing disk does (ENOSPC, EIO) at any step of a save, and check that the
// error reaches the caller and that the store still loads; PosixFileOps() uses the real calls.
struct PosixCalls {
  int (*open)(const char* path, int flags, mode_t mode);
  ssize_t (*write)(int fd, const void* data, std::size_t size);
  int (*fsync)(int fd);
  int (*rename)(const char* from, const char* to);
  int (*unlink)(const char* path);
  int (*mkdir)(const char* path, mode_t mode);
  int (*rmdir)(const char* path);
};

}  // namespace detail

// FileOps on the real file system through POSIX calls. Holds nothing but its table of calls, so
// thread-safe.
class PORTCULLIS_EXPORT PosixFileOps final : public FileOps {
 public:
  PosixFileOps();
  // For tests: makes every call through `calls`, which must outlive this object.
  explicit PosixFileOps(const detail::PosixCalls& calls) : calls_(&calls) {}

  Result<void> writeFile(const std::filesystem::path& path, ByteView data) override;
  Result<void> syncFile(const std::filesystem::path& path) override;
  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  Result<void> unlink(const std::filesystem::path& path) override;
  Result<void> makeDir(const std::filesystem::path& path) override;
  Result<void> removeDir(const std::filesystem::path& path) override;
  Result<void> syncDir(const std::filesystem::path& path) override;

 private:
  const detail::PosixCalls* calls_;
};

// Tuning for FsStorageAdapter::open().
struct FsStorageOptions {
  // The largest chunk save() accepts (larger: Overloaded) and load() reads (larger: Malformed).
  std::uint64_t maxChunkSize = std::uint64_t{1} << 30;
  // Threads doing file I/O; at least 1.
  unsigned threads = 2;
};

// The StorageAdapter contract on a directory tree; see the top of this header for the layout and
// the durability argument. Calls on keys with the same first element (one document) run one at a
// time, in the order they were made; calls on other documents may run in parallel.
class PORTCULLIS_EXPORT FsStorageAdapter final : public StorageAdapter {
 public:
  // Opens the store at `root`, creating the directory (not its parents) if it is missing, and
  // deletes the temp files a crash left behind. Fails with Config if `root` is not a directory or
  // the options are out of range, and with Io if the file system fails.
  static Result<std::unique_ptr<FsStorageAdapter>> open(std::filesystem::path root,
                                                        FsStorageOptions options = {});
  // The same, changing the file system only through `ops`, which must outlive the adapter.
  static Result<std::unique_ptr<FsStorageAdapter>> open(std::filesystem::path root, FileOps& ops,
                                                        FsStorageOptions options = {});

  // Waits for the file I/O already started. An awaitable still pending when the adapter goes away
  // is a bug of the caller's (the adapter must outlive every awaitable it returned).
  ~FsStorageAdapter() override;

  asio::awaitable<Result<std::optional<Bytes>>> load(StorageKey key) override;
  asio::awaitable<Result<void>> save(StorageKey key, Bytes data) override;
  asio::awaitable<Result<void>> remove(StorageKey key) override;
  asio::awaitable<Result<std::vector<StorageChunk>>> loadRange(StorageKey prefix) override;
  asio::awaitable<Result<void>> removeRange(StorageKey prefix) override;

 private:
  using Lane = asio::strand<asio::thread_pool::executor_type>;
  struct ChunkFile {
    StorageKey key;
    std::filesystem::path path;
  };

  // `ops` null: use posixOps_.
  static Result<std::unique_ptr<FsStorageAdapter>> openWith(std::filesystem::path root,
                                                            FileOps* ops, FsStorageOptions options);
  FsStorageAdapter(std::filesystem::path root, FileOps* ops, FsStorageOptions options);

  // Checks `key` (Malformed), then runs job(key) on the key's lane and completes with its result
  // on the awaiting coroutine's executor.
  template <typename Job>
  asio::awaitable<std::invoke_result_t<Job&, const StorageKey&>> onLane(StorageKey key, Job job);
  // All calls for one document share a lane, which is what keeps them in order.
  Lane laneFor(const StorageKey& key) const;
  // root/e1/.../en: the chunk `key` is this path plus ".chunk", and a prefix's chunks lie below it.
  std::filesystem::path pathOf(const StorageKey& key) const;
  std::filesystem::path fileOf(const StorageKey& key) const;

  // The blocking halves of the StorageAdapter methods, run on a lane.
  Result<std::optional<Bytes>> readChunk(const std::filesystem::path& file) const;
  Result<void> writeChunk(const StorageKey& key, ByteView data);
  Result<void> removeChunk(const StorageKey& key);
  Result<std::vector<StorageChunk>> readRange(const StorageKey& prefix) const;
  Result<void> removeTree(const StorageKey& prefix);

  // The chunk files whose keys start with `prefix`, ordered by key, and the directories below it.
  struct Listing {
    std::vector<ChunkFile> chunks;
    std::vector<std::filesystem::path> dirs;
  };
  Result<Listing> list(const StorageKey& prefix) const;
  // Creates the directories the chunk `key` lives in, each synced into its parent.
  Result<void> makeDirs(const StorageKey& key);
  // Creates the root if missing and deletes temp files a crash left.
  Result<void> prepareRoot();
  // syncDir() of each of `dirs` that still exists.
  Result<void> syncDirs(std::vector<std::filesystem::path> dirs);

  std::filesystem::path root_;
  PosixFileOps posixOps_;
  FileOps& ops_;  // posixOps_ unless open() was given ops
  FsStorageOptions options_;
  asio::thread_pool pool_;
  std::vector<Lane> lanes_;
};

}  // namespace portcullis
