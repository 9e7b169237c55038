// The team state directory: device key, deviceSeq counter, team ID and the links file.
#include "state_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "wire/link_codec.h"

namespace portcullis::team {
namespace {

static_assert(kMaxLinkRecordBytes == kMaxLinkBodyBytes + 1024);
static_assert(kMaxLinkRecordBytes <= 0xFFFFFFFFu, "a record length is a u32");

constexpr std::array<std::uint8_t, 7> kLinksMagic = {'P', 'C', 'T', 'L', 'I', 'N', 'K'};
constexpr const char* kKeyFile = "device.key";
constexpr const char* kSeqFile = "device.seq";
constexpr const char* kTeamIdFile = "team.id";
constexpr const char* kLinksFile = "links";
// Decoded links handed to the graph at once while loading: bounds what open() holds besides the
// graph, and keeps the number of evaluations small (one per batch).
constexpr std::size_t kLoadBatchBytes = std::size_t{32} << 20;
constexpr std::size_t kReadBufferBytes = std::size_t{64} << 10;
constexpr std::size_t kMaxSmallFileBytes = 128;  // team.id and device.seq

using Checksum = std::array<std::uint8_t, kLinksChecksumBytes>;

std::string join(const std::string& dir, std::string_view name) {
  std::string out = dir;
  if (out.empty() || out.back() != '/') out += '/';
  out += name;
  return out;
}

// The directory that holds `path`'s last component (trailing slashes ignored).
std::string parentOf(const std::string& path) {
  const auto last = path.find_last_not_of('/');
  if (last == std::string::npos) return "/";
  const auto slash = path.rfind('/', last);
  if (slash == std::string::npos) return ".";
  const auto end = path.find_last_not_of('/', slash);
  return end == std::string::npos ? "/" : path.substr(0, end + 1);
}

std::string osMessage(int err) { return std::system_category().message(err); }

Error osError(std::string_view what, const std::string& path, int err) {
  Errc code = Errc::Io;
  if (err == ENOENT) code = Errc::NotFound;
  return Error(code, fmt::format("team state: cannot {} {}: {}", what, path, osMessage(err)));
}

Error damage(const std::string& path, std::uint64_t offset, std::string_view why) {
  return Error(Errc::Malformed, fmt::format("{}: {} at byte offset {}", path, why, offset));
}

// Closes on scope exit (the class's OwnedFd is for the member; this is for locals).
class ScopedFd {
 public:
  explicit ScopedFd(int fd) noexcept : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Result<void> writeAll(int fd, ByteView data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return osError("write", path, errno);
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

Result<void> syncDir(const std::string& dir) {
  ScopedFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return osError("open the directory", dir, errno);
  if (::fsync(fd.get()) != 0) return osError("fsync the directory", dir, errno);
  return {};
}

// Replaces DIR/name with `data` so that a crash leaves the old or the new content: write
// DIR/name.tmp, fsync it, rename it over DIR/name, fsync DIR.
Result<void> replaceDurably(const std::string& dir, std::string_view name, ByteView data) {
  const std::string target = join(dir, name);
  const std::string temp = target + ".tmp";
  {
    ScopedFd fd(
        ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.get() < 0) return osError("create", temp, errno);
    if (auto w = writeAll(fd.get(), data, temp); !w) return w;
    if (::fsync(fd.get()) != 0) return osError("fsync", temp, errno);
  }
  if (::rename(temp.c_str(), target.c_str()) != 0) return osError("rename to", target, errno);
  return syncDir(dir);
}

ByteView asBytes(std::string_view text) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

// Reads a file of at most kMaxSmallFileBytes (team.id, device.seq).
Result<std::string> readSmallFile(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return osError("open", path, errno);
  std::string text;
  char chunk[kMaxSmallFileBytes + 1];
  for (;;) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return osError("read", path, errno);
    if (n == 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
    if (text.size() > kMaxSmallFileBytes) {
      return Error(Errc::Malformed, fmt::format("{}: larger than {} bytes", path,
                                                kMaxSmallFileBytes));
    }
  }
  return text;
}

std::string seqText(std::uint64_t seq) { return fmt::format("{}\n", seq); }

Result<std::uint64_t> parseSeq(std::string_view text, const std::string& path) {
  auto bad = [&] {
    return Error(Errc::Malformed,
                 fmt::format("{}: not a deviceSeq (decimal digits without leading zeros, at most "
                             "{}, and a newline)",
                             path, kMaxDeviceSeq));
  };
  if (text.size() < 2 || text.back() != '\n') return bad();
  text.remove_suffix(1);
  if (text.size() > 10 || (text.size() > 1 && text.front() == '0')) return bad();
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return bad();
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (value > kMaxDeviceSeq) return bad();
  return value;
}

std::string teamIdText(const Hash& teamId) { return toHex(teamId) + "\n"; }

Result<Hash> parseTeamId(std::string_view text, const std::string& path) {
  auto bad = [&] {
    return Error(Errc::Malformed,
                 fmt::format("{}: not a team ID (64 lower-case hex digits and a newline)", path));
  };
  if (text.size() != 65 || text.back() != '\n') return bad();
  Hash out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    int byte = 0;
    for (std::size_t j = 0; j < 2; ++j) {
      const char c = text[2 * i + j];
      int digit = 0;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else {
        return bad();
      }
      byte = byte * 16 + digit;
    }
    out[i] = static_cast<std::uint8_t>(byte);
  }
  return out;
}

Checksum checksumOf(ByteView payload) {
  Checksum out{};
  crypto_generichash(out.data(), out.size(), payload.data(), payload.size(), nullptr, 0);
  return out;
}

std::array<std::uint8_t, kLinksHeaderBytes> linksHeader() {
  std::array<std::uint8_t, kLinksHeaderBytes> out{};
  std::copy(kLinksMagic.begin(), kLinksMagic.end(), out.begin());
  out[kLinksMagic.size()] = kLinksFormatVersion;
  return out;
}

void appendRecord(Bytes& out, ByteView payload) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  out.insert(out.end(), payload.begin(), payload.end());
  const Checksum sum = checksumOf(payload);
  out.insert(out.end(), sum.begin(), sum.end());
}

// Sequential reads from a file descriptor through a fixed buffer.
class Reader {
 public:
  Reader(int fd, const std::string& path) : fd_(fd), path_(path), buffer_(kReadBufferBytes) {}

  // Fills `out` completely; Errc::Io if the file ends first (the caller checked the size, so
  // that means the file changed under us).
  Result<void> read(std::span<std::uint8_t> out) {
    while (!out.empty()) {
      if (begin_ == end_) {
        const ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return osError("read", path_, errno);
        if (n == 0) {
          return Error(Errc::Io, fmt::format("team state: {} shrank while it was read", path_));
        }
        begin_ = 0;
        end_ = static_cast<std::size_t>(n);
      }
      const std::size_t take = std::min(out.size(), end_ - begin_);
      std::memcpy(out.data(), buffer_.data() + begin_, take);
      begin_ += take;
      out = out.subspan(take);
    }
    return {};
  }

 private:
  int fd_;
  const std::string& path_;
  std::vector<std::uint8_t> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// What reading a links-format file found.
struct ScanEnd {
  std::uint64_t wholeBytes = 0;  // header and whole records
  std::uint64_t fileBytes = 0;
};

using OnRecord = std::function<Result<void>(Bytes payload, DecodedLink link, std::uint64_t offset)>;

// Streams the links-format file open at `fd` (positioned at 0) and calls `onRecord` for each whole,
// checked record. `cutTailIsDamage` decides whether a cut last record is an error (import) or the
// end of the whole records (the state directory's own file).
Result<ScanEnd> scanLinks(int fd, const std::string& path, std::optional<Hash>& teamId,
                          bool cutTailIsDamage, const OnRecord& onRecord) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return osError("stat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return Error(Errc::Malformed, fmt::format("{}: not a regular file", path));
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  Reader reader(fd, path);

  if (size < kLinksHeaderBytes) return damage(path, 0, "file too short for the header");
  std::array<std::uint8_t, kLinksHeaderBytes> header{};
  if (auto r = reader.read(header); !r) return r.error();
  if (!std::equal(kLinksMagic.begin(), kLinksMagic.end(), header.begin())) {
    return damage(path, 0, "not a team links file (bad magic)");
  }
  if (header[kLinksMagic.size()] != kLinksFormatVersion) {
    return Error(Errc::Unsupported,
                 fmt::format("{}: links format version {} (this build reads {}) at byte offset {}",
                             path, header[kLinksMagic.size()], kLinksFormatVersion,
                             kLinksMagic.size()));
  }

  std::uint64_t offset = kLinksHeaderBytes;
  while (offset < size) {
    const std::uint64_t left = size - offset;
    auto cut = [&]() -> Result<ScanEnd> {
      if (cutTailIsDamage) return damage(path, offset, "file ends inside the record");
      return ScanEnd{offset, size};
    };
    if (left < 4) return cut();
    std::array<std::uint8_t, 4> lengthBytes{};
    if (auto r = reader.read(lengthBytes); !r) return r.error();
    std::uint32_t n = 0;
    for (int i = 3; i >= 0; --i) n = (n << 8) | lengthBytes[static_cast<std::size_t>(i)];
    if (n == 0) return damage(path, offset, "record of length 0");
    if (n > kMaxLinkRecordBytes) {
      return damage(path, offset,
                    fmt::format("record length {} over the bound of {} bytes", n,
                                kMaxLinkRecordBytes));
    }
    if (left < 4 + std::uint64_t{n} + kLinksChecksumBytes) return cut();
    Bytes payload(n);
    if (auto r = reader.read(payload); !r) return r.error();
    Checksum stored{};
    if (auto r = reader.read(stored); !r) return r.error();
    if (checksumOf(payload) != stored) return damage(path, offset, "record checksum mismatch");
    if (!teamId) {  // an export names its team by its first record, the root (T order)
      auto parts = splitLink(payload);
      if (!parts) return damage(path, offset, "the first record holds no link");
      teamId = linkHash(parts->body, parts->signature);
    }
    auto decoded = decodeLink(ByteView(payload), *teamId);
    if (decoded && offset == kLinksHeaderBytes &&
        (typeOf(decoded->parsed.action) != ActionType::Root || !decoded->parsed.prev.empty())) {
      return damage(path, offset, "the first record is not the team's root");
    }
    if (!decoded) {
      return damage(path, offset, fmt::format("record holds no valid link of this team ({})",
                                              decoded.error().message()));
    }
    if (auto r = onRecord(std::move(payload), std::move(*decoded), offset); !r) return r.error();
    offset += 4 + std::uint64_t{n} + kLinksChecksumBytes;
  }
  return ScanEnd{offset, size};
}

// Hands one loading batch to the graph and turns what it refuses into errors.
Result<void> flushToGraph(TeamGraph& graph, std::vector<DecodedLink>& batch,
                          std::vector<std::pair<Hash, std::uint64_t>>& offsets,
                          const std::string& path) {
  if (batch.empty()) return {};
  BatchOutcome outcome = graph.addDecoded(std::move(batch));
  batch.clear();
  if (outcome.tooLarge) {
    return Error(Errc::Overloaded,
                 fmt::format("{}: holds more links than the graph's limit allows", path));
  }
  if (!outcome.dropped.empty()) {
    const Hash& hash = outcome.dropped.front();
    const auto it = std::find_if(offsets.begin(), offsets.end(),
                                 [&](const auto& entry) { return entry.first == hash; });
    const std::string why = outcome.dropReasons.empty() ? "" : outcome.dropReasons.front();
    if (it == offsets.end()) {
      return Error(Errc::Malformed,
                   fmt::format("{}: the team graph drops link {} on reload: {}", path,
                               toHex(hash), why));
    }
    return damage(path, it->second,
                  fmt::format("record holds link {} that the team graph drops ({})", toHex(hash),
                              why));
  }
  offsets.clear();
  return {};
}

Result<void> requireStateDirectory(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return Error(Errc::NotFound, fmt::format("team state: no directory at {}", path));
    }
    return osError("stat", path, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error(Errc::Config, fmt::format("team state: {} is not a directory", path));
  }
  return {};
}

// Makes `path` a new, empty, mode-0700 directory, or takes an existing empty one.
Result<void> makeEmptyDirectory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0) return syncDir(parentOf(path));
  const int err = errno;
  if (err != EEXIST) return osError("create the directory", path, err);
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOTDIR || errno == ELOOP) {
      return Error(Errc::Conflict,
                   fmt::format("team state: {} exists and is not a directory", path));
    }
    return osError("open the directory", path, errno);
  }
  DIR* dir = ::fdopendir(fd.get());
  if (dir == nullptr) return osError("list the directory", path, errno);
  fd.release();  // closedir closes it
  bool empty = true;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") {
      empty = false;
      break;
    }
  }
  ::closedir(dir);
  if (!empty) {
    return Error(Errc::Conflict,
                 fmt::format("team state: {} is not empty; refusing to create a team state there",
                             path));
  }
  if (::chmod(path.c_str(), 0700) != 0) return osError("chmod 700", path, errno);
  return {};
}

// Opens DIR/links for reading and appending and takes its lock.
Result<int> openLinks(const std::string& file) {
  ScopedFd fd(::open(file.c_str(), O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return osError("open", file, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Error(Errc::Conflict,
                   fmt::format("team state: {} is in use (another process, or an open state "
                               "directory, holds its lock)",
                               file));
    }
    return osError("lock", file, errno);
  }
  return fd.release();
}

}  // namespace

TeamStateDir::OwnedFd& TeamStateDir::OwnedFd::operator=(OwnedFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

TeamStateDir::OwnedFd::~OwnedFd() {
  if (fd_ >= 0) ::close(fd_);
}

TeamStateDir::TeamStateDir(std::string path, const Hash& teamId, DeviceKey key,
                           std::uint64_t seq, TeamGraph graph, OwnedFd links,
                           std::uint64_t linksSize)
    : path_(std::move(path)),
      teamId_(teamId),
      key_(std::move(key)),
      seq_(seq),
      graph_(std::move(graph)),
      links_(std::move(links)),
      linksSize_(linksSize) {}

Result<TeamStateDir> TeamStateDir::create(const std::string& path, const Hash& teamId,
                                          DeviceKey key, std::uint64_t lastSignedSeq,
                                          GraphLimits limits) {
  if (lastSignedSeq > kMaxDeviceSeq) {
    return Error(Errc::Overloaded, fmt::format("team state: deviceSeq {} is over the bound {}",
                                               lastSignedSeq, kMaxDeviceSeq));
  }
  if (auto made = makeEmptyDirectory(path); !made) return made.error();
  if (auto saved = key.save(join(path, kKeyFile)); !saved) return saved.error();
  if (auto w = replaceDurably(path, kSeqFile, asBytes(seqText(lastSignedSeq))); !w) {
    return w.error();
  }
  if (auto w = replaceDurably(path, kLinksFile, linksHeader()); !w) return w.error();
  // Last: its presence says the directory is complete.
  if (auto w = replaceDurably(path, kTeamIdFile, asBytes(teamIdText(teamId))); !w) {
    return w.error();
  }
  auto fd = openLinks(join(path, kLinksFile));
  if (!fd) return fd.error();
  return TeamStateDir(path, teamId, std::move(key), lastSignedSeq, TeamGraph(teamId, limits),
                      OwnedFd(*fd), kLinksHeaderBytes);
}

Result<TeamStateDir> TeamStateDir::open(const std::string& path, GraphLimits limits) {
  if (auto dir = requireStateDirectory(path); !dir) return dir.error();
  const std::string teamIdFile = join(path, kTeamIdFile);
  auto teamIdRaw = readSmallFile(teamIdFile);
  if (!teamIdRaw) {
    if (teamIdRaw.error().code() == Errc::NotFound) {
      return Error(Errc::NotFound,
                   fmt::format("team state: {} has no {}: not a team state directory, or its "
                               "creation was interrupted (remove it and create it again)",
                               path, kTeamIdFile));
    }
    return teamIdRaw.error();
  }
  auto teamId = parseTeamId(*teamIdRaw, teamIdFile);
  if (!teamId) return teamId.error();

  const std::string linksFile = join(path, kLinksFile);
  auto fd = openLinks(linksFile);
  if (!fd) return fd.error();
  OwnedFd links(*fd);

  auto key = DeviceKey::load(join(path, kKeyFile));
  if (!key) return key.error();
  const std::string seqFile = join(path, kSeqFile);
  auto seqRaw = readSmallFile(seqFile);
  if (!seqRaw) return seqRaw.error();
  auto seq = parseSeq(*seqRaw, seqFile);
  if (!seq) return seq.error();

  TeamGraph graph(*teamId, limits);
  std::vector<DecodedLink> batch;
  std::vector<std::pair<Hash, std::uint64_t>> offsets;
  std::size_t batchBytes = 0;
  std::optional<Hash> expected = *teamId;
  auto scanned = scanLinks(
      links.get(), linksFile, expected, /*cutTailIsDamage=*/false,
      [&](Bytes payload, DecodedLink link, std::uint64_t offset) -> Result<void> {
        batchBytes += payload.size();
        offsets.emplace_back(link.hash, offset);
        batch.push_back(std::move(link));
        if (batchBytes < kLoadBatchBytes) return {};
        batchBytes = 0;
        return flushToGraph(graph, batch, offsets, linksFile);
      });
  if (!scanned) return scanned.error();
  if (auto r = flushToGraph(graph, batch, offsets, linksFile); !r) return r.error();
  if (graph.pendingCount() != 0) {
    return Error(Errc::Malformed,
                 fmt::format("{}: {} links name a `prev` the file does not hold", linksFile,
                             graph.pendingCount()));
  }

  std::uint64_t discarded = 0;
  if (scanned->wholeBytes < scanned->fileBytes) {
    // A crash cut the last append short: drop the partial record before anything follows it.
    discarded = scanned->fileBytes - scanned->wholeBytes;
    if (::ftruncate(links.get(), static_cast<off_t>(scanned->wholeBytes)) != 0) {
      return osError("truncate the cut last record of", linksFile, errno);
    }
    if (::fsync(links.get()) != 0) return osError("fsync", linksFile, errno);
  }

  TeamStateDir out(path, *teamId, std::move(*key), *seq, std::move(graph), std::move(links),
                   scanned->wholeBytes);
  out.discarded_ = discarded;
  // The last reserved value never reached the links file (a crash between reserving and
  // appending). Links are appended before they are sent, so no peer has seen a link with that
  // seq: signing it now makes no twin, and skipping it would break check 4 for ever.
  out.reuseLost_ = *seq > 0 && out.graph_.lastSeqOf(out.key_.publicKey().bytes()) + 1 == *seq;
  return out;
}

Result<void> TeamStateDir::appendLinks(std::span<const Bytes> links) {
  const std::string file = join(path_, kLinksFile);
  if (appendsBroken_) {
    return Error(Errc::Io, fmt::format("team state: an earlier append to {} failed and could not "
                                       "be undone; reopen the state directory",
                                       file));
  }
  std::size_t total = 0;
  for (std::size_t i = 0; i < links.size(); ++i) {
    if (links[i].empty() || links[i].size() > kMaxLinkRecordBytes) {
      return Error(Errc::Malformed,
                   fmt::format("team state: link {} of the batch has {} bytes (1 to {} allowed); "
                               "nothing appended to {}",
                               i, links[i].size(), kMaxLinkRecordBytes, file));
    }
    total += 4 + links[i].size() + kLinksChecksumBytes;
  }
  if (links.empty()) return {};

  Bytes records;
  records.reserve(total);
  for (const Bytes& link : links) appendRecord(records, link);
  auto written = writeAll(links_.get(), records, file);
  if (written && ::fsync(links_.get()) != 0) written = osError("fsync", file, errno);
  if (!written) {
    // Leave no partial batch in front of the next one: that would be damage, not a cut tail.
    if (::ftruncate(links_.get(), static_cast<off_t>(linksSize_)) != 0 ||
        ::fsync(links_.get()) != 0) {
      appendsBroken_ = true;
    }
    return written;
  }
  linksSize_ += records.size();
  return {};
}

Result<Bytes> TeamStateDir::signNext(const std::string& userId, Action action,
                                      std::uint64_t timestampMs) {
  const Key me = key_.publicKey().bytes();
  LinkBody body;
  if (auto last = graph_.lastLinkOf(me)) body.prev.push_back(*last);
  for (const Hash& h : graph_.heads()) {
    if (body.prev.size() >= kMaxPrev) break;
    if (std::find(body.prev.begin(), body.prev.end(), h) == body.prev.end()) {
      body.prev.push_back(h);
    }
  }
  std::sort(body.prev.begin(), body.prev.end());
  body.userId = userId;
  body.deviceId = me;
  auto seq = reserveNextSeq();
  if (!seq) return std::move(seq).error();
  body.deviceSeq = *seq;
  body.timestamp = timestampMs;
  body.action = std::move(action);
  const Bytes encoded = encodeLinkBody(body);
  return encodeLink(encoded, signLinkBody(encoded, key_.secretKey().span()));
}

Result<std::uint64_t> TeamStateDir::reserveNextSeq() {
  const std::uint64_t signedInGraph = graph_.lastSeqOf(key_.publicKey().bytes());
  if (signedInGraph > seq_) {
    return Error(Errc::Conflict,
                 fmt::format("team state {}: this device signed links this state directory does "
                             "not remember (restored from a backup?); join the team again as a "
                             "new device (the team holds deviceSeq {}, {} remembers {})",
                             path_, signedInGraph, kSeqFile, seq_));
  }
  if (reuseLost_ && signedInGraph + 1 == seq_) {
    reuseLost_ = false;
    return seq_;
  }
  reuseLost_ = false;
  if (seq_ >= kMaxDeviceSeq) {
    return Error(Errc::Overloaded,
                 fmt::format("team state {}: this device has used every deviceSeq up to {}; join "
                             "the team again as a new device",
                             path_, kMaxDeviceSeq));
  }
  const std::uint64_t next = seq_ + 1;
  if (auto w = replaceDurably(path_, kSeqFile, asBytes(seqText(next))); !w) return w.error();
  seq_ = next;
  return next;
}

Result<ImportedLinks> TeamStateDir::importFile(const std::string& path, std::size_t maxLinks) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return osError("open", path, errno);
  ImportedLinks out;
  std::optional<Hash> teamId;
  auto scanned = scanLinks(fd.get(), path, teamId, /*cutTailIsDamage=*/true,
                           [&](Bytes payload, DecodedLink, std::uint64_t offset) -> Result<void> {
                             if (out.links.size() >= maxLinks) {
                               return Error(Errc::Overloaded,
                                            fmt::format("{}: more than {} links (at byte offset "
                                                        "{})",
                                                        path, maxLinks, offset));
                             }
                             out.links.push_back(std::move(payload));
                             return {};
                           });
  if (!scanned) return scanned.error();
  if (!teamId) return Error(Errc::Malformed, fmt::format("{}: holds no link", path));
  out.teamId = *teamId;
  return out;
}

Result<std::vector<Bytes>> TeamStateDir::importFile(const std::string& path, const Hash& teamId,
                                                    std::size_t maxLinks) {
  auto imported = importFile(path, maxLinks);
  if (!imported) return imported.error();
  if (imported->teamId != teamId) {
    return Error(Errc::Malformed,
                 fmt::format("{}: holds the links of another team (byte offset {})", path,
                             kLinksHeaderBytes));
  }
  return std::move(imported->links);
}

Result<void> TeamStateDir::exportLinks(const TeamGraph& graph, const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    if (errno == EEXIST) {
      return Error(Errc::Conflict,
                   fmt::format("team export: {} exists; refusing to overwrite it", path));
    }
    return osError("create", path, errno);
  }
  const auto header = linksHeader();
  Bytes out(header.begin(), header.end());
  Result<void> result;
  auto flush = [&] {
    if (result) result = writeAll(fd.get(), out, path);
    out.clear();
  };
  graph.forEachLink([&](const StoredLink& link) {
    appendRecord(out, encodeLink(link.body, link.signature));
    if (out.size() >= kReadBufferBytes) flush();
  });
  flush();
  if (result && ::fsync(fd.get()) != 0) result = osError("fsync", path, errno);
  if (result) result = syncDir(parentOf(path));
  if (!result) ::unlink(path.c_str());
  return result;
}

}  // namespace portcullis::team
