// Fuzz target: a data directory on disk, as the fs storage adapter (adapters/storage/fs:
// FsStorageAdapter::open and loadRange) lists and reads it and a Repo loads its documents from it
// (Repo::find: the chunks parsed as snapshots of changes and applied). What is on disk is
// untrusted: a corrupted, truncated or tampered folder must load as an error or as the intact
// part, never crash or hang.
//
// Input: see fs_storage_input.h (files, directories, symlinks and FIFOs, made in a fresh
// temporary folder for each input). The documents are the top-level names that are 32
// lower-case hex digits (a Repo's storage name for a document ID), with or without ".chunk"; at
// most kMaxDocs of them.
//
// Invariants, beyond "no crash, no leak, no hang":
//   * open() succeeds on the folder and deletes every temp file (a name starting ".tmp.") within
//     the eight levels it walks, and nothing else;
//   * loadRange({doc}) lists exactly the entries a chunk's path names (DOC.chunk, or DOC/K1/.../Kn
//     .chunk with every element in [A-Za-z0-9_-], at most eight elements), never descending
//     into a symlink, sorted by key, each with exactly the bytes the input wrote; it fails as
//     Malformed exactly when one of them is a symlink, a FIFO or larger than maxChunkSize;
//   * find() of the document fails exactly when loadRange fails (with its error), finds nothing
//     (NotFound, with no peer to ask) when there is no chunk, fails with Io when a chunk is not
//     a snapshot or holds a change that does not parse, and otherwise loads the intact part: the
//     document that applying each chunk's changes in key order gives (its save() and every read,
//     dumpDocument), changes the DAG refuses left out and changes whose deps are missing pending;
//   * removeRange({doc}) succeeds, removes every chunk loadRange lists and nothing outside the
//     document's folder and own chunk.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "core_fuzz_support.h"
#include "fs_storage.h"
#include "fs_storage_input.h"
#include "portcullis/repo.h"
#include "wire/change_codec.h"

namespace portcullis::fuzz {
namespace {

namespace fs = std::filesystem;
using fsinput::Kind;

constexpr const char* kTarget = "fs_storage_fuzz";
constexpr std::size_t kMaxDocs = 4;
constexpr std::string_view kChunkSuffix = ".chunk";

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

// The file system calls of the adapter, without the fsyncs: durability is not what this target
// checks, and an fsync can take longer than the fuzzer's one-second timeout on a busy disk.
class NoSyncFileOps final : public FileOps {
 public:
  Result<void> writeFile(const fs::path& path, ByteView data) override {
    return real_.writeFile(path, data);
  }
  Result<void> syncFile(const fs::path&) override { return {}; }
  Result<void> rename(const fs::path& from, const fs::path& to) override {
    return real_.rename(from, to);
  }
  Result<void> unlink(const fs::path& path) override { return real_.unlink(path); }
  Result<void> makeDir(const fs::path& path) override { return real_.makeDir(path); }
  Result<void> removeDir(const fs::path& path) override { return real_.removeDir(path); }
  Result<void> syncDir(const fs::path&) override { return {}; }

 private:
  PosixFileOps real_;
};

// $TMPDIR, else /dev/shm where there is one (memory: every input makes and removes a tree).
fs::path scratchBase() {
  if (const char* dir = std::getenv("TMPDIR"); dir != nullptr && *dir != '\0') return dir;
  std::error_code ec;
  if (fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  return fs::temp_directory_path();
}

struct Folder {
  fs::path base;
  Folder() {
    std::string pattern = (scratchBase() / "portcullis-fs-fuzz.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) fail(kTarget, "mkdtemp failed");
    base = pattern;
  }
  ~Folder() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
  Folder(const Folder&) = delete;
  Folder& operator=(const Folder&) = delete;
};
Folder& folder() {
  static Folder f;
  return f;
}

// What the target made: every entry by its components, with its kind, and a file's bytes.
struct Made {
  Kind kind;
  Bytes data;
};
using Tree = std::map<std::vector<std::string>, Made>;

bool isDirAt(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool existsAt(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

void make(const fs::path& root, Reader& r, Tree& tree) {
  for (std::size_t n = 0; n < fsinput::kMaxEntries && !r.empty(); ++n) {
    const auto kind = static_cast<Kind>(r.byte() % 4);
    const auto parts = fsinput::components(charsOf(r.take(r.byte())));
    Bytes data;
    std::optional<std::vector<std::string>> target;
    if (kind == fsinput::kFile) {
      const ByteView d = r.take(r.u32());
      data.assign(d.begin(), d.end());
    } else if (kind == fsinput::kSymlink) {
      target = fsinput::components(charsOf(r.take(r.byte())));
    }
    if (!parts || (kind == fsinput::kSymlink && !target)) continue;
    // Parents: made as directories where missing; anything else there skips the entry.
    fs::path at = root;
    bool ok = true;
    for (std::size_t i = 0; ok && i + 1 < parts->size(); ++i) {
      at /= (*parts)[i];
      if (isDirAt(at)) continue;
      if (existsAt(at) || ::mkdir(at.c_str(), 0700) != 0) {
        ok = false;
        break;
      }
      tree[std::vector<std::string>(parts->begin(),
                                    parts->begin() + static_cast<std::ptrdiff_t>(i) + 1)] =
          Made{fsinput::kDir, {}};
    }
    if (!ok) continue;
    const fs::path path = root / fsinput::joined(*parts);
    switch (kind) {
      case fsinput::kFile: {
        const int fd =
            ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) continue;
        std::size_t done = 0;
        while (done < data.size()) {
          const ssize_t w = ::write(fd, data.data() + done, data.size() - done);
          if (w <= 0) break;
          done += static_cast<std::size_t>(w);
        }
        ::close(fd);
        check(done == data.size(), "cannot write a file of the input");
        break;
      }
      case fsinput::kDir:
        if (::mkdir(path.c_str(), 0700) != 0) continue;
        break;
      case fsinput::kSymlink:
        if (::symlink(fsinput::joined(*target).c_str(), path.c_str()) != 0) continue;
        break;
      case fsinput::kFifo:
        if (::mkfifo(path.c_str(), 0600) != 0) continue;
        break;
    }
    tree[*parts] = Made{kind, std::move(data)};
  }
}

bool isTemp(const std::vector<std::string>& parts) { return parts.back().starts_with(".tmp."); }

// The key a path names as a chunk of the store, if it does.
std::optional<StorageKey> chunkKey(std::vector<std::string> parts) {
  std::string& last = parts.back();
  if (!last.ends_with(kChunkSuffix)) return std::nullopt;
  last.resize(last.size() - kChunkSuffix.size());
  if (!checkStorageKey(parts)) return std::nullopt;
  return parts;
}

std::optional<DocumentId> documentOf(const std::string& name) {
  std::string_view hex = name;
  if (hex.ends_with(kChunkSuffix)) hex.remove_suffix(kChunkSuffix.size());
  if (hex.size() != 2 * DocumentId::kSize) return std::nullopt;
  Bytes bytes(DocumentId::kSize);
  std::size_t written = 0;
  const char* end = nullptr;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  if (sodium_hex2bin(bytes.data(), bytes.size(), hex.data(), hex.size(), nullptr, &written, &end) !=
          0 ||
      written != bytes.size()) {
    return std::nullopt;
  }
  return *DocumentId::fromBytes(bytes);
}

// What loadRange({doc}) must give: the chunks in key order, or a failure (Malformed).
struct Listing {
  bool fails = false;
  std::vector<StorageChunk> chunks;
};
Listing expectedListing(const Tree& tree, const std::string& doc, std::uint64_t maxChunk) {
  Listing out;
  for (const auto& [parts, made] : tree) {
    if (parts.front() != doc &&
        !(parts.size() == 1 && parts.front() == doc + std::string(kChunkSuffix))) {
      continue;
    }
    if (made.kind == fsinput::kDir) continue;
    const auto key = chunkKey(parts);
    if (!key || !hasKeyPrefix(*key, StorageKey{doc})) continue;
    if (made.kind != fsinput::kFile || made.data.size() > maxChunk) out.fails = true;
    out.chunks.push_back(StorageChunk{*key, made.data});
  }
  std::sort(out.chunks.begin(), out.chunks.end(),
            [](const StorageChunk& a, const StorageChunk& b) { return a.key < b.key; });
  return out;
}

// What find() must give for a listing that loaded: an error code, or the document.
struct Loaded {
  std::optional<Errc> error;
  std::optional<Document> doc;
};
Loaded expectedLoad(const std::vector<StorageChunk>& chunks, const DocumentOptions& options) {
  Loaded out;
  if (chunks.empty()) {
    out.error = Errc::NotFound;
    return out;
  }
  std::vector<std::vector<Bytes>> payloads;
  for (const StorageChunk& c : chunks) {
    auto p = detail::parseSnapshot(c.data, options.maxSnapshotBytes);
    if (!p) {
      out.error = Errc::Io;
      return out;
    }
    for (const Bytes& change : *p) {
      if (!detail::parseChange(change, options.maxChangeBytes)) {
        out.error = Errc::Io;
        return out;
      }
    }
    payloads.push_back(std::move(*p));
  }
  out.doc.emplace(options);
  for (const auto& p : payloads) (void)out.doc->applyChanges(p);
  return out;
}

// find()'s verdict on `doc`, whose listing was `listed`.
void checkFind(asio::io_context& ctx, Repo& repo, const std::string& doc,
               const Result<std::vector<StorageChunk>>& listed, const DocumentOptions& options) {
  const DocumentId id = *documentOf(doc);
  auto found = runToEnd(ctx, repo.find(id));
  check(found.has_value(), "find() did not complete");
  if (!listed) {
    check(!*found && found->error().code() == listed.error().code(),
          "find() did not fail as loadRange did");
    return;
  }
  const Loaded model = expectedLoad(*listed, options);
  if (model.error) {
    check(!*found && found->error().code() == *model.error,
          "find() did not fail as a folder with a broken or no chunk must");
    return;
  }
  check(found->has_value(), "find() failed on a folder whose chunks all parse");
  const Document& loaded = (*found)->doc();
  check(loaded.save() == model.doc->save(),
        "the loaded document saves other bytes than its chunks give");
  check(dumpDocument(loaded) == dumpDocument(*model.doc),
        "the loaded document reads differently than its chunks give");
  check(loaded.graph().pendingCount() == model.doc->graph().pendingCount(),
        "the loaded document has another number of pending changes");
}

// removeRange({doc}) removes the document's chunks and nothing outside its folder (never through
// a symlink).
// The document's entries are then forgotten: the folders it left empty are gone.
void checkRemove(asio::io_context& ctx, FsStorageAdapter& adapter, const fs::path& root,
                 Tree& tree, const std::string& doc, const Listing& expected) {
  auto removed = runToEnd(ctx, adapter.removeRange(StorageKey{doc}));
  check(removed.has_value() && removed->has_value(), "removeRange failed");
  for (const StorageChunk& c : expected.chunks) {
    check(!existsAt(root / (fsinput::joined(c.key) + std::string(kChunkSuffix))),
          "removeRange left a chunk of the document");
  }
  for (auto it = tree.begin(); it != tree.end();) {
    const auto& parts = it->first;
    const bool ours = parts.front() == doc ||
                      (parts.size() == 1 && parts.front() == doc + std::string(kChunkSuffix));
    if (ours) {
      it = tree.erase(it);
      continue;
    }
    check(existsAt(root / fsinput::joined(parts)),
          "removeRange removed something outside the document's folder: " +
              fsinput::joined(parts));
    ++it;
  }
}

void run(ByteView input) {
  const fs::path root = folder().base / "store";
  {
    std::error_code ec;
    fs::remove_all(root, ec);
    check(!ec && ::mkdir(root.c_str(), 0700) == 0, "cannot make the store folder");
  }
  Reader r(input);
  const std::uint8_t flags = r.byte();
  Tree tree;
  make(root, r, tree);

  FsStorageOptions options;
  options.threads = 1;
  if (flags & fsinput::kSmallChunks) options.maxChunkSize = fsinput::kSmallChunk;
  static NoSyncFileOps ops;
  auto opened = FsStorageAdapter::open(root, ops, options);
  check(opened.has_value(), "open() failed on a folder it may use");
  std::shared_ptr<FsStorageAdapter> adapter = std::move(*opened);

  // Temp files within reach are gone, and nothing else.
  for (auto it = tree.begin(); it != tree.end();) {
    const fs::path path = root / fsinput::joined(it->first);
    const bool temp = it->second.kind != fsinput::kDir && isTemp(it->first) &&
                      it->first.size() <= kMaxStorageKeyElements;
    check(existsAt(path) != temp, temp ? "open() left a temp file" : "open() deleted an entry");
    it = temp ? tree.erase(it) : std::next(it);
  }

  std::set<std::string> docs;
  for (const auto& [parts, made] : tree) {
    if (docs.size() < kMaxDocs && documentOf(parts.front())) {
      std::string name = parts.front();
      if (name.ends_with(kChunkSuffix)) name.resize(name.size() - kChunkSuffix.size());
      docs.insert(name);
    }
  }

  asio::io_context ctx;
  RepoOptions repoOptions;
  repoOptions.storage = adapter;
  repoOptions.auth = makeOpenProvider(*PeerId::parse("fuzz"));
  repoOptions.peerId = *PeerId::parse("fuzz");
  repoOptions.findTimeout = std::chrono::milliseconds(200);
  repoOptions.document.actor = *ActorId::fromBytes(Bytes(16, 0x5A));
  Repo repo(ctx.get_executor(), repoOptions);

  for (const std::string& doc : docs) {
    const Listing expected = expectedListing(tree, doc, options.maxChunkSize);
    auto listed = runToEnd(ctx, adapter->loadRange(StorageKey{doc}));
    check(listed.has_value(), "loadRange did not complete");
    if (expected.fails) {
      check(!*listed && listed->error().code() == Errc::Malformed,
            "loadRange did not fail as Malformed on a chunk that is no regular file or too large");
    } else {
      check(listed->has_value(), "loadRange failed on chunks that are all regular files");
      const std::vector<StorageChunk>& got = **listed;
      check(got.size() == expected.chunks.size(),
            "loadRange listed other chunks than the folder holds");
      for (std::size_t i = 0; i < got.size(); ++i) {
        check(got[i].key == expected.chunks[i].key, "loadRange listed other keys, or out of order");
        check(got[i].data == expected.chunks[i].data, "loadRange read other bytes than the file's");
      }
    }

    checkFind(ctx, repo, doc, *listed, repoOptions.document);
    checkRemove(ctx, *adapter, root, tree, doc, expected);
  }
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("fs_storage_fuzz", "sodium_init failed");
  spdlog::set_level(spdlog::level::off);
  portcullis::fuzz::guarded("fs_storage_fuzz", [] { (void)portcullis::fuzz::folder(); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("fs_storage_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
