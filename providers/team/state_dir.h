// providers/team/state_dir.h — the team provider's state directory (`[auth.team] state = DIR`):
// this device's key and deviceSeq counter, the team ID, and the stored links, kept durably so
// that a restart rebuilds the same TeamGraph and never signs a deviceSeq twice (the team spec's
// §1).
//
// Layer: the team provider's graph library, below the provider itself (which owns one
// TeamStateDir) and the `team` tool commands (`team export`/`team import` use the links-file
// format below). Plain blocking file I/O: call it from the provider's executor only where a short
// fsync is acceptable, or from a tool's main thread. Not thread-safe: one owner. While a
// TeamStateDir is open it holds an exclusive flock(2) on DIR/links, so a second process (or a
// second open in this one) is refused instead of racing for deviceSeq values.
//
// Layout of DIR (created mode 0700; every file is written by this device only):
//   device.key   the device's Ed25519 key pair, written by DeviceKey::save (mode 0600) and read by
//                DeviceKey::load, which refuses it when group or others may access it. Never
//                rewritten.
//   device.seq   the persisted deviceSeq: the last deviceSeq this device may have signed, as ASCII
//                decimal digits and one '\n' ("0\n" before the first link; at most 2^32 − 1, no
//                leading zeros). Replaced atomically: write device.seq.tmp, fsync, rename, fsync
//                DIR.
//   team.id      the 32-byte team ID as 64 lower-case hex digits and one '\n'. Written once, last
//                of all files by create(): a directory without it is an interrupted creation.
//   links        the stored links (format below). Append-only.
//   config.toml  reserved for the provider's configuration; never read or written here.
//   *.tmp        leftovers of an interrupted replacement; ignored and overwritten.
//
// The links file (also the format of `team export`/`team import` files):
//   header  8 bytes: the magic "PCTLINK" (7 ASCII bytes) and the format version, 1 (one byte).
//   records, each: u32 little-endian n ‖ payload (n bytes) ‖ H128(payload) (16 bytes, BLAKE2b
//           with a 16-byte output, unkeyed), where 1 ≤ n ≤ kMaxLinkRecordBytes and the payload is
//           a canonical `Link` message (encodeLink(body, signature)).
// Records are appended in batches, one fsync per batch. Reading, at the offset o of each record
// (the header's length is the first record's offset):
//   - the file ends inside the record (fewer than 4 bytes left, or fewer than 4 + n + 16 after a
//     valid length): a cut last record, the mark of a crash during an append. open() ignores it
//     and truncates the file back to o (then fsyncs) before anything else is appended;
//     importFile() refuses it (an export is written whole, so a cut one is incomplete);
//   - anything else that is not a valid record stops the reader with Errc::Malformed, naming the
//     file and o: a length of 0 or over kMaxLinkRecordBytes (even at the end of the file: no
//     record starts that way), a checksum that does not match, or a payload that decodeLink
//     rejects for this team. A header that is short or does not start with the magic is
//     Malformed at offset 0; a known magic with another version is Errc::Unsupported at
//     offset 7.
// Damage before the last record is therefore never repaired: the file is the user's team, and a
// silently shortened team history would hide the damage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "link.h"
#include "portcullis/result.h"
#include "portcullis/secret_handshake.h"
#include "portcullis/types.h"
#include "team_graph.h"

namespace portcullis::team {

// The largest payload of a links-file record: a `Link` message around a body of §10's largest
// size (kMaxLinkBodyBytes, 4 MiB) with room for its signature and Cap'n Proto framing.
inline constexpr std::size_t kMaxLinkRecordBytes = (std::size_t{4} << 20) + 1024;
// The links file's header: magic and format version.
inline constexpr std::size_t kLinksHeaderBytes = 8;
inline constexpr std::uint8_t kLinksFormatVersion = 1;
// A record's checksum: H128 of its payload.
inline constexpr std::size_t kLinksChecksumBytes = 16;
// The largest deviceSeq check 1 allows (§2.3).
inline constexpr std::uint64_t kMaxDeviceSeq = 0xFFFFFFFFu;

// A team's state directory, open. Owns the device key, the team graph rebuilt from the links
// file, and the open links file (with its lock). Move-only.
// What importFile read: the team the file's root names, and its `Link` messages.
struct ImportedLinks {
  Hash teamId{};
  std::vector<Bytes> links;
};

class TeamStateDir {
 public:
  // Makes the state directory of a device that joins (or founds) team `teamId`: creates `path`
  // (mode 0700; its parent must exist) or takes an existing empty directory (set to 0700), then
  // writes device.key, device.seq = `lastSignedSeq`, an empty links file and team.id, each
  // durably, team.id last. `lastSignedSeq` is the last deviceSeq `key` has already signed: 0 for
  // a new device, 1 for a founder that signed the root before the team ID (the root's hash)
  // existed; the founder appends the root with appendLinks next. Errors: Errc::Conflict when
  // `path` exists and is not an empty directory; Errc::Io (NotFound for a missing parent) when
  // the OS fails; Errc::Overloaded when lastSignedSeq exceeds kMaxDeviceSeq. A failed create
  // may leave a directory without team.id, which open() refuses; remove it and create again.
  [[nodiscard]] static Result<TeamStateDir> create(const std::string& path, const Hash& teamId,
                                                   DeviceKey key, std::uint64_t lastSignedSeq = 0,
                                                   GraphLimits limits = {});

  // Opens an existing state directory: locks DIR/links, reads team.id, device.key (refused, with
  // Errc::Config, when group or others may access it), device.seq, then streams the links file
  // through decodeLink into a new TeamGraph (in batches of bounded size, each evaluated once).
  // A cut last record is discarded as the header says (see discardedTailBytes()). Errors name the
  // file: Errc::NotFound when DIR or one of its files is missing; Errc::Conflict when another
  // open holds the lock; Errc::Malformed for damaged files (with the byte offset for the links
  // file), for a link the graph drops on reload, and for links left waiting for a `prev` the
  // file does not hold; Errc::Overloaded when the links exceed `limits`; Errc::Io otherwise.
  [[nodiscard]] static Result<TeamStateDir> open(const std::string& path, GraphLimits limits = {});

  TeamStateDir(TeamStateDir&&) noexcept = default;
  TeamStateDir& operator=(TeamStateDir&&) noexcept = default;
  ~TeamStateDir() = default;

  const std::string& path() const noexcept { return path_; }
  const Hash& teamId() const noexcept { return teamId_; }
  // The device's key. Reference valid while this object lives; never log or copy the secret.
  const DeviceKey& deviceKey() const noexcept { return key_; }
  // The team graph rebuilt from the links file. Links added to it are not persisted by that:
  // the caller appends what the graph stored (BatchOutcome::stored) with appendLinks.
  TeamGraph& graph() noexcept { return graph_; }
  const TeamGraph& graph() const noexcept { return graph_; }
  // The persisted deviceSeq (the last value reserveNextSeq returned, or create's lastSignedSeq).
  std::uint64_t persistedSeq() const noexcept { return seq_; }
  // Bytes of a cut last record that open() discarded (0 when the file was whole).
  std::uint64_t discardedTailBytes() const noexcept { return discarded_; }

  // Appends one batch of `Link` messages (as sent on the wire: encodeLink(body, signature)) to
  // the links file with a single fsync, and returns once they are durable. The caller appends
  // links the graph stored, in the order it stored them (a link after its `prev`); links are not
  // decoded again here, but each must be 1 to kMaxLinkRecordBytes bytes (else Errc::Malformed,
  // and nothing is written). An empty batch writes nothing. On a failed write the file is cut
  // back to its size before the batch; if even that fails, this object refuses every later
  // append (Errc::Io: reopen the directory, which discards the cut record).
  [[nodiscard]] Result<void> appendLinks(std::span<const Bytes> links);

  // The deviceSeq for the next link this device signs: the persisted counter + 1, made durable
  // (device.seq.tmp, fsync, rename, fsync DIR) before it is returned, so a link is only ever
  // signed with a seq already on disk. Sign exactly one link with it. Refuses with
  // Errc::Conflict, and changes nothing, when graph() holds a link by this device with a larger
  // deviceSeq than the counter: the directory was restored from a backup (or copied), and
  // signing again would make twins (§4.5 K4); the device must join again as a new device.
  // Errc::Overloaded past kMaxDeviceSeq; Errc::Io when the counter could not be made durable
  // (the value is then not returned, and not used up in memory).
  // After open(), a reserved value whose link never reached the links file (a crash between
  // reserving and appending) is returned once more: callers MUST append a signed link before
  // sending it anywhere, so no peer has seen that seq and reusing it makes no twin (a gap would
  // break check 4 for every later link of this device).
  [[nodiscard]] Result<std::uint64_t> reserveNextSeq();

  // Signs `action` as this device (member `userId`) with the next deviceSeq (reserveNextSeq)
  // on top of the graph's heads (and this device's last link, which check 4 wants named), and
  // returns the `Link` message. Adds it to nothing: the caller offers it to graph() and appends
  // what the graph stored before sending it anywhere (see reserveNextSeq).
  [[nodiscard]] Result<Bytes> signNext(const std::string& userId, Action action,
                                       std::uint64_t timestampMs);

  // Reads a file of the links-file format (a `team export`), with the same checks as open(),
  // except that a cut last record is Errc::Malformed too. Its first record must be a team's root
  // (exports and links files are in T order): that names the team. Returns the team ID and the
  // `Link` messages in file order, for TeamGraph::addBatch. At most `maxLinks` records
  // (Errc::Overloaded beyond). Errors name the file and, for damage, the byte offset.
  [[nodiscard]] static Result<ImportedLinks> importFile(
      const std::string& path, std::size_t maxLinks = GraphLimits{}.maxStoredLinks);
  // The same for a file that must hold the links of team `teamId` (Errc::Malformed otherwise).
  [[nodiscard]] static Result<std::vector<Bytes>> importFile(
      const std::string& path, const Hash& teamId,
      std::size_t maxLinks = GraphLimits{}.maxStoredLinks);

  // Writes every link `graph` stores, in T order, to a new file at `path` (mode 0600, created
  // exclusively: Errc::Conflict when it exists), fsynced with its directory. The format is the
  // links file's, so importFile (or a state directory's links) reads it back.
  [[nodiscard]] static Result<void> exportLinks(const TeamGraph& graph, const std::string& path);

 private:
  // A file descriptor with one owner; closing it releases the flock.
  class OwnedFd {
   public:
    OwnedFd() = default;
    explicit OwnedFd(int fd) noexcept : fd_(fd) {}
    OwnedFd(OwnedFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    OwnedFd& operator=(OwnedFd&& other) noexcept;
    ~OwnedFd();
    int get() const noexcept { return fd_; }

   private:
    int fd_ = -1;
  };

  TeamStateDir(std::string path, const Hash& teamId, DeviceKey key, std::uint64_t seq,
               TeamGraph graph, OwnedFd links, std::uint64_t linksSize);

  std::string path_;
  Hash teamId_;
  DeviceKey key_;
  std::uint64_t seq_;
  TeamGraph graph_;
  OwnedFd links_;
  std::uint64_t linksSize_;       // bytes of whole records (and the header) in the links file
  std::uint64_t discarded_ = 0;
  bool appendsBroken_ = false;    // a failed append could not be undone
  bool reuseLost_ = false;        // open() found the last reserved seq unused (see reserveNextSeq)
};

}  // namespace portcullis::team
