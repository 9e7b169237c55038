// The file-system StorageAdapter and the POSIX FileOps it uses by default.
#include "fs_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace portcullis {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kChunkSuffix = ".chunk";
// Starts with '.', which no key element can, so a temp file never passes for a chunk.
constexpr std::string_view kTempPrefix = ".tmp.";
// Enough that documents seldom wait behind each other; a lane is one strand.
constexpr std::size_t kLanes = 64;

// Messages name the operation, never the path: a path holds a document ID, which is a bearer
// secret under the document-id provider, and errors end up in logs.
Error osError(std::string_view what, int err) {
  Errc code = Errc::Io;
  if (err == ENOENT) code = Errc::NotFound;
  if (err == EEXIST || err == ENOTEMPTY) code = Errc::Conflict;
  return Error(code, std::string(what) + ": " + std::system_category().message(err));
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

int systemOpen(const char* path, int flags, mode_t mode) { return ::open(path, flags, mode); }

constexpr detail::PosixCalls kSystemCalls = {
    .open = systemOpen,
    .write = ::write,
    .fsync = ::fsync,
    .rename = ::rename,
    .unlink = ::unlink,
    .mkdir = ::mkdir,
    .rmdir = ::rmdir,
};

Result<void> openAndSync(const detail::PosixCalls& calls, const fs::path& path, int flags,
                         std::string_view what) {
  UniqueFd fd(calls.open(path.c_str(), flags | O_RDONLY | O_CLOEXEC, 0));
  if (fd.get() < 0) return osError(what, errno);
  if (calls.fsync(fd.get()) != 0) return osError(what, errno);
  return {};
}

Result<void> checkCall(int rc, std::string_view what) {
  if (rc != 0) return osError(what, errno);
  return {};
}

// Runs `job` on `lane` and completes with its result on the executor of the awaiting coroutine.
// `co_await asio::post(lane, use_awaitable)` would not do: Asio 1.18 resumes a coroutine on its
// own executor whichever executor the operation ran on, so the job would block the caller's
// thread. An exception from `job` is not handled here, only carried back and rethrown in the
// caller, as co_spawn would. Not a coroutine itself: the awaitable it returns starts the job when
// awaited.
template <typename Executor, typename Job>
auto runOn(Executor lane, Job job) {
  using T = std::invoke_result_t<Job&>;
  auto initiate = [lane, job = std::move(job)](auto handler) mutable {
    // Tracked, so that the caller's io_context does not run out of work while the job is away.
    auto home = asio::prefer(asio::get_associated_executor(handler),
                             asio::execution::outstanding_work.tracked);
    asio::post(lane, [job = std::move(job), handler = std::move(handler), home]() mutable {
      std::optional<T> result;
      std::exception_ptr failure;
      try {
        result.emplace(job());
      } catch (...) {
        failure = std::current_exception();
      }
      asio::post(home,
                 [handler = std::move(handler), failure, result = std::move(result)]() mutable {
                   handler(failure, std::move(result));
                 });
    });
  };
  return asio::async_initiate<const asio::use_awaitable_t<>&,
                              void(std::exception_ptr, std::optional<T>)>(std::move(initiate),
                                                                          asio::use_awaitable);
}

// Calls visit(path, status) for each entry below `tree` (a missing tree has none), `maxDepth`
// levels deep at most, never following a symlink.
template <typename Visit>
Result<void> walk(const fs::path& tree, std::size_t maxDepth, Visit visit) {
  std::error_code ec;
  fs::recursive_directory_iterator it(tree, ec);
  if (ec == std::errc::no_such_file_or_directory) return {};
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    fs::file_status status = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(status) && static_cast<std::size_t>(it.depth()) + 1 >= maxDepth) {
      it.disable_recursion_pending();
    }
    visit(it->path(), status);
  }
  if (ec) return osError("list a storage directory", ec.value());
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PosixFileOps

PosixFileOps::PosixFileOps() : calls_(&kSystemCalls) {}

Result<void> PosixFileOps::writeFile(const fs::path& path, ByteView data) {
  UniqueFd fd(
      calls_->open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) return osError("create a file", errno);
  while (!data.empty()) {
    ssize_t written = calls_->write(fd.get(), data.data(), data.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return osError("write a file", errno);
    data = data.subspan(static_cast<std::size_t>(written));
  }
  return {};
}

// A second descriptor is enough: Linux (since 4.13) reports a writeback error to every
// descriptor open at the time, and (since 4.16) to one opened later if nobody has seen it yet.
Result<void> PosixFileOps::syncFile(const fs::path& path) {
  return openAndSync(*calls_, path, O_NOFOLLOW, "fsync a file");
}

Result<void> PosixFileOps::rename(const fs::path& from, const fs::path& to) {
  return checkCall(calls_->rename(from.c_str(), to.c_str()), "rename a file");
}

Result<void> PosixFileOps::unlink(const fs::path& path) {
  return checkCall(calls_->unlink(path.c_str()), "unlink a file");
}

Result<void> PosixFileOps::makeDir(const fs::path& path) {
  return checkCall(calls_->mkdir(path.c_str(), 0700), "create a directory");
}

Result<void> PosixFileOps::removeDir(const fs::path& path) {
  return checkCall(calls_->rmdir(path.c_str()), "remove a directory");
}

Result<void> PosixFileOps::syncDir(const fs::path& path) {
  return openAndSync(*calls_, path, O_DIRECTORY, "fsync a directory");
}

// ---------------------------------------------------------------------------------------------
// FsStorageAdapter

Result<std::unique_ptr<FsStorageAdapter>> FsStorageAdapter::open(fs::path root,
                                                                 FsStorageOptions options) {
  return openWith(std::move(root), nullptr, options);
}

Result<std::unique_ptr<FsStorageAdapter>> FsStorageAdapter::open(fs::path root, FileOps& ops,
                                                                 FsStorageOptions options) {
  return openWith(std::move(root), &ops, options);
}

Result<std::unique_ptr<FsStorageAdapter>> FsStorageAdapter::openWith(fs::path root, FileOps* ops,
                                                                     FsStorageOptions options) {
  if (options.threads == 0) return Error(Errc::Config, "fs storage needs at least one thread");
  std::error_code ec;
  // Absolute and without a trailing '/', so that parent_path() is the directory to sync when
  // the root is created.
  fs::path absolute = fs::absolute(root, ec).lexically_normal();
  if (ec) return Error(Errc::Config, "fs storage root " + root.string() + ": " + ec.message());
  if (!absolute.has_filename()) absolute = absolute.parent_path();
  std::unique_ptr<FsStorageAdapter> adapter(
      new FsStorageAdapter(std::move(absolute), ops, options));
  if (auto prepared = adapter->prepareRoot(); !prepared) return prepared.error();
  return adapter;
}

FsStorageAdapter::FsStorageAdapter(fs::path root, FileOps* ops, FsStorageOptions options)
    : root_(std::move(root)),
      ops_(ops != nullptr ? *ops : posixOps_),
      options_(options),
      pool_(options.threads) {
  lanes_.reserve(kLanes);
  for (std::size_t i = 0; i < kLanes; ++i) {
    lanes_.push_back(asio::make_strand(pool_.get_executor()));
  }
}

FsStorageAdapter::~FsStorageAdapter() { pool_.join(); }

asio::awaitable<Result<std::optional<Bytes>>> FsStorageAdapter::load(StorageKey key) {
  return onLane(std::move(key), [this](const StorageKey& k) { return readChunk(fileOf(k)); });
}

asio::awaitable<Result<void>> FsStorageAdapter::save(StorageKey key, Bytes data) {
  return onLane(std::move(key), [this, data = std::move(data)](const StorageKey& k) {
    return writeChunk(k, data);
  });
}

asio::awaitable<Result<void>> FsStorageAdapter::remove(StorageKey key) {
  return onLane(std::move(key), [this](const StorageKey& k) { return removeChunk(k); });
}

asio::awaitable<Result<std::vector<StorageChunk>>> FsStorageAdapter::loadRange(StorageKey prefix) {
  return onLane(std::move(prefix), [this](const StorageKey& p) { return readRange(p); });
}

asio::awaitable<Result<void>> FsStorageAdapter::removeRange(StorageKey prefix) {
  return onLane(std::move(prefix), [this](const StorageKey& p) { return removeTree(p); });
}

template <typename Job>
asio::awaitable<std::invoke_result_t<Job&, const StorageKey&>> FsStorageAdapter::onLane(
    StorageKey key, Job job) {
  if (auto valid = checkStorageKey(key); !valid) co_return valid.error();
  Lane lane = laneFor(key);
  // A named local, not a temporary in the co_await expression: g++ 12 copies such a temporary
  // bitwise into the coroutine frame and then destroys both copies.
  auto bound = [job = std::move(job), key = std::move(key)] { return job(key); };
  co_return *co_await runOn(lane, std::move(bound));
}

// A prefix is never empty, and every key it covers has the same first element, so a range call
// and the single-key calls it overlaps always share a lane.
FsStorageAdapter::Lane FsStorageAdapter::laneFor(const StorageKey& key) const {
  return lanes_[std::hash<std::string>{}(key.front()) % lanes_.size()];
}

fs::path FsStorageAdapter::pathOf(const StorageKey& key) const {
  fs::path path = root_;
  for (const std::string& element : key) path /= element;
  return path;
}

fs::path FsStorageAdapter::fileOf(const StorageKey& key) const {
  return pathOf(key) += kChunkSuffix;
}

Result<std::optional<Bytes>> FsStorageAdapter::readChunk(const fs::path& file) const {
  // O_NOFOLLOW: a symlink planted in the store must not make us read outside it. O_NONBLOCK: a
  // FIFO planted there opens at once (and is refused below) instead of waiting for a writer for
  // ever, with the lane blocked; it changes nothing for a regular file.
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0 && errno == ENOENT) return std::optional<Bytes>{};
  if (fd.get() < 0 && errno == ELOOP) return Error(Errc::Malformed, "a chunk is a symlink");
  if (fd.get() < 0) return osError("open a chunk", errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return osError("stat a chunk", errno);
  if (!S_ISREG(st.st_mode)) return Error(Errc::Malformed, "a chunk is not a regular file");
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > options_.maxChunkSize) {
    return Error(Errc::Malformed, "a chunk of " + std::to_string(size) +
                                      " bytes is over the maximum of " +
                                      std::to_string(options_.maxChunkSize));
  }
  Bytes data(static_cast<std::size_t>(size));
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t got = ::read(fd.get(), data.data() + done, data.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return osError("read a chunk", errno);
    if (got == 0) return Error(Errc::Io, "a chunk shrank while it was read");
    done += static_cast<std::size_t>(got);
  }
  return std::optional<Bytes>{std::move(data)};
}

Result<void> FsStorageAdapter::writeChunk(const StorageKey& key, ByteView data) {
  if (data.size() > options_.maxChunkSize) {
    return Error(Errc::Overloaded, "a chunk of " + std::to_string(data.size()) +
                                       " bytes is over the maximum of " +
                                       std::to_string(options_.maxChunkSize));
  }
  if (auto made = makeDirs(key); !made) return made;
  fs::path dir = pathOf(key).parent_path();
  // One temp name per key is enough: calls on a key never overlap, since they share a lane, and
  // writeFile truncates a temp file that a failed call left.
  fs::path temp = dir / (std::string(kTempPrefix) + key.back());
  if (auto written = ops_.writeFile(temp, data); !written) return written;
  if (auto synced = ops_.syncFile(temp); !synced) return synced;
  if (auto renamed = ops_.rename(temp, fileOf(key)); !renamed) return renamed;
  return ops_.syncDir(dir);
}

// A directory that exists is taken as durable, so one whose parent could not be synced is removed
// again: the next save then makes it anew and syncs the parent before anything below it counts as
// stored. (Only if that rmdir fails too does a directory of unknown durability stay.)
Result<void> FsStorageAdapter::makeDirs(const StorageKey& key) {
  fs::path dir = root_;
  for (std::size_t i = 0; i + 1 < key.size(); ++i) {
    fs::path parent = dir;
    dir /= key[i];
    std::error_code ec;
    fs::file_status status = fs::symlink_status(dir, ec);
    if (status.type() == fs::file_type::none) return osError("stat a directory", ec.value());
    if (fs::is_directory(status)) continue;
    if (fs::exists(status)) {
      return Error(Errc::Malformed, "a chunk's directory is taken by a file or a symlink");
    }
    if (auto made = ops_.makeDir(dir); !made) return made;
    if (auto synced = ops_.syncDir(parent); !synced) {
      (void)ops_.removeDir(dir);  // the sync's error is the one to report
      return synced;
    }
  }
  return {};
}

Result<void> FsStorageAdapter::removeChunk(const StorageKey& key) {
  auto unlinked = ops_.unlink(fileOf(key));
  if (!unlinked && unlinked.error().code() != Errc::NotFound) return unlinked;
  // Synced even when the chunk was already gone: an earlier remove() may have unlinked it and
  // then failed to sync.
  return syncDirs({pathOf(key).parent_path()});
}

Result<FsStorageAdapter::Listing> FsStorageAdapter::list(const StorageKey& prefix) const {
  Listing listing;
  fs::path own = fileOf(prefix);
  std::error_code ec;
  fs::file_status ownStatus = fs::symlink_status(own, ec);
  if (ownStatus.type() == fs::file_type::none) return osError("stat a chunk", ec.value());
  if (fs::exists(ownStatus) && !fs::is_directory(ownStatus)) {
    listing.chunks.push_back(ChunkFile{prefix, own});
  }

  fs::path tree = pathOf(prefix);
  // Only a real directory is walked: the iterator would follow a symlink at `tree` itself (and
  // list, or remove, what lies outside the store), and a file or FIFO there is a stranger whose
  // name is no chunk's, ignored like any other.
  fs::file_status treeStatus = fs::symlink_status(tree, ec);
  if (treeStatus.type() == fs::file_type::none) return osError("stat a directory", ec.value());
  if (!fs::is_directory(treeStatus)) return listing;
  listing.dirs.push_back(tree);
  auto found = walk(tree, kMaxStorageKeyElements - prefix.size(),
                    [&](const fs::path& path, fs::file_status status) {
                      if (fs::is_directory(status)) {
                        listing.dirs.push_back(path);
                        return;
                      }
                      StorageKey key = prefix;
                      for (const fs::path& part : path.lexically_relative(tree)) {
                        key.push_back(part.string());
                      }
                      // Anything not named like a chunk (temp files, strangers) is not ours.
                      if (!key.back().ends_with(kChunkSuffix)) return;
                      key.back().resize(key.back().size() - kChunkSuffix.size());
                      if (!checkStorageKey(key)) return;
                      listing.chunks.push_back(ChunkFile{std::move(key), path});
                    });
  if (!found) return found.error();
  std::sort(listing.chunks.begin(), listing.chunks.end(),
            [](const ChunkFile& a, const ChunkFile& b) { return a.key < b.key; });
  return listing;
}

Result<std::vector<StorageChunk>> FsStorageAdapter::readRange(const StorageKey& prefix) const {
  auto listing = list(prefix);
  if (!listing) return listing.error();
  std::vector<StorageChunk> out;
  for (ChunkFile& chunk : listing->chunks) {
    auto data = readChunk(chunk.path);
    if (!data) return data.error();
    if (*data) out.push_back(StorageChunk{std::move(chunk.key), std::move(**data)});
  }
  return out;
}

// Also removes the directories the prefix leaves empty, so a removed document leaves nothing.
Result<void> FsStorageAdapter::removeTree(const StorageKey& prefix) {
  auto listing = list(prefix);
  if (!listing) return listing.error();
  // The prefix's own directory is synced even when the tree was already gone: an earlier call
  // may have removed it and then failed to sync.
  std::vector<fs::path> changed{pathOf(prefix).parent_path()};
  for (const ChunkFile& chunk : listing->chunks) {
    auto unlinked = ops_.unlink(chunk.path);
    if (!unlinked && unlinked.error().code() != Errc::NotFound) return unlinked;
    changed.push_back(chunk.path.parent_path());
  }
  // Deepest first, so that a directory is empty by the time its turn comes unless something
  // that is not a chunk lives in it; that one stays, with its parents (Conflict).
  std::sort(listing->dirs.begin(), listing->dirs.end(), std::greater<>());
  for (const fs::path& dir : listing->dirs) {
    auto removed = ops_.removeDir(dir);
    if (removed) {
      changed.push_back(dir.parent_path());
    } else if (removed.error().code() != Errc::Conflict) {
      return removed;
    }
  }
  return syncDirs(std::move(changed));
}

Result<void> FsStorageAdapter::syncDirs(std::vector<fs::path> dirs) {
  std::sort(dirs.begin(), dirs.end());
  dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
  for (const fs::path& dir : dirs) {
    // A directory removed since is durable once its parent is synced, and that one is listed.
    auto synced = ops_.syncDir(dir);
    if (!synced && synced.error().code() != Errc::NotFound) return synced;
  }
  return {};
}

Result<void> FsStorageAdapter::prepareRoot() {
  std::error_code ec;
  // The root itself may be a symlink: the operator chose it.
  fs::file_status status = fs::status(root_, ec);
  if (status.type() == fs::file_type::none) return osError("stat the storage root", ec.value());
  if (status.type() == fs::file_type::not_found) {
    if (auto made = ops_.makeDir(root_); !made) return made;
    if (auto synced = ops_.syncDir(root_.parent_path()); !synced) return synced;
  } else if (!fs::is_directory(status)) {
    return Error(Errc::Config, "fs storage root " + root_.string() + " is not a directory");
  }
  std::vector<fs::path> changed;
  Result<void> removed;
  auto found = walk(root_, kMaxStorageKeyElements, [&](const fs::path& path, fs::file_status type) {
    if (!removed || fs::is_directory(type)) return;
    if (!path.filename().string().starts_with(kTempPrefix)) return;
    removed = ops_.unlink(path);
    changed.push_back(path.parent_path());
  });
  if (!found) return found;
  if (!removed) return removed;
  return syncDirs(std::move(changed));
}

}  // namespace portcullis
