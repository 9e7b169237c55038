// portcullis/document.h — a CRDT JSON document with automerge's semantics (architecture §4).
//
// A root map holding null, bool, int64, double, string, bytes, counters and nested maps, lists
// and text. Local edits happen in a `Transaction`; committing it makes one change, whose hash
// is BLAKE2b-256 of its canonical Cap'n Proto encoding. The document's state is a pure function
// of its set of changes: replicas that applied the same changes, in any order, read the same
// values and `save()` the same bytes.
//
// Input from peers and storage (`applyChanges`, `load`) is hostile: bad bytes give an error value,
// never a crash or a half-applied change. Misuse by the caller (a second open transaction, a
// transaction outliving its document) is a bug and throws.
//
// Not thread-safe: one owner, one executor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "portcullis/change_graph.h"
#include "portcullis/change_sealer.h"
#include "portcullis/export.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis {

namespace detail {
class DocumentState;
struct DocumentAccess;
}

enum class ObjType : std::uint8_t { Map, List, Text };

// Names an object: the OpId of the op that made it, or the root map. Stable across replicas.
class PORTCULLIS_EXPORT ObjId {
 public:
  static ObjId root() { return ObjId(); }
  ObjId(std::uint64_t counter, const ActorId& actor) : counter_(counter), actor_(actor.bytes().begin(), actor.bytes().end()) {}

  bool isRoot() const noexcept { return counter_ == 0; }
  std::uint64_t counter() const noexcept { return counter_; }
  // Empty for the root.
  const Bytes& actor() const noexcept { return actor_; }
  // "root", or "<counter>@<actor hex>".
  std::string toString() const;

  friend bool operator==(const ObjId&, const ObjId&) = default;

 private:
  ObjId() = default;
  std::uint64_t counter_ = 0;
  Bytes actor_;
};

struct Null {
  friend bool operator==(Null, Null) = default;
};
struct Counter {
  std::int64_t value = 0;
  friend bool operator==(Counter, Counter) = default;
};
struct ObjectRef {
  ObjType type;
  ObjId id;
  friend bool operator==(const ObjectRef&, const ObjectRef&) = default;
};

// One step of a path from the root map to a value: a map key or a list index.
using PathElement = std::variant<std::string, std::size_t>;
// Where a value sits: the keys and indexes from the root to it, as automerge's patches name it.
// Empty: the root itself.
using Path = std::vector<PathElement>;

// What can be written as a leaf.
using ScalarValue = std::variant<Null, bool, std::int64_t, double, std::string, Bytes, Counter>;
// What can be read: a leaf, or a nested object.
using Value = std::variant<Null, bool, std::int64_t, double, std::string, Bytes, Counter, ObjectRef>;

struct DocumentOptions {
  // The author of local changes; 16 random bytes if unset.
  std::optional<ActorId> actor;
  ChangeGraphOptions graph;
  // The largest change (encoded) accepted from outside.
  std::size_t maxChangeBytes = 16u << 20;
  // The largest snapshot `load()` accepts.
  std::size_t maxSnapshotBytes = 1u << 30;
  // Seals local commits and opens received changes (architecture §4); null for plain changes. The
  // sealer must be able to open (canOpen()).
  std::shared_ptr<const ChangeSealer> sealer;
};

// What `applyChanges` did with a batch. Each change is all-or-nothing; one bad change does not
// stop the others.
struct ApplyReport {
  std::size_t applied = 0;     // includes queued changes that this batch unblocked
  std::size_t duplicates = 0;
  std::size_t queued = 0;      // all changes the document holds waiting for deps after the batch
  std::vector<Error> rejected;
};

struct CommitOptions {
  std::string message;
  // Seconds since the Unix epoch; now if unset.
  std::optional<std::int64_t> time;
  // Commit a change even if the transaction made no ops: a new document's first change, so that
  // it has a head that peers can store and find.
  bool allowEmpty = false;
};

class Document;

// One local transaction. Edits apply to the document at once (reads see them); `commit()` makes
// them one change, `rollback()` (or destruction without commit) discards them.
// Holds a reference to its document, which must outlive it; at most one is open per document.
// Edits addressed to an object that does not exist or has the wrong type, or to an index out of
// range, fail with Errc::NotFound and change nothing.
class PORTCULLIS_EXPORT Transaction {
 public:
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();

  // Maps.
  Result<void> put(const ObjId& map, std::string_view key, ScalarValue value);
  Result<ObjId> putObject(const ObjId& map, std::string_view key, ObjType type);
  Result<void> remove(const ObjId& map, std::string_view key);
  // Adds `delta` to the counter at `key` (wrapping on overflow, alike on every replica).
  Result<void> increment(const ObjId& map, std::string_view key, std::int64_t delta);

  // Lists (and text, element by element).
  Result<void> insert(const ObjId& list, std::size_t index, ScalarValue value);
  Result<ObjId> insertObject(const ObjId& list, std::size_t index, ObjType type);
  Result<void> set(const ObjId& list, std::size_t index, ScalarValue value);
  Result<ObjId> setObject(const ObjId& list, std::size_t index, ObjType type);
  Result<void> remove(const ObjId& list, std::size_t index);
  Result<void> increment(const ObjId& list, std::size_t index, std::int64_t delta);

  // Text: removes `deleteCount` characters at `index`, then inserts `text` there. Indexes count
  // Unicode scalar values; `text` must be valid UTF-8 (else Errc::Malformed).
  Result<void> splice(const ObjId& textObj, std::size_t index, std::size_t deleteCount,
                      std::string_view text);

  // Number of ops so far.
  std::size_t pendingOps() const;

  // Makes the change and returns its hash, or nothing if the transaction made no ops.
  std::optional<ChangeHash> commit(CommitOptions options = {});
  void rollback();

 private:
  friend class Document;
  explicit Transaction(detail::DocumentState& state) : state_(&state) {}
  detail::DocumentState* state_;
};

class PORTCULLIS_EXPORT Document {
 public:
  explicit Document(DocumentOptions options = {});
  ~Document();
  Document(Document&&) noexcept;
  Document& operator=(Document&&) noexcept;

  // Restores a document from `save()` output, verifying every change. The actor is
  // `options.actor` (random if unset). Errc::Malformed for bytes that are not a valid snapshot.
  static Result<Document> load(ByteView snapshot, DocumentOptions options = {});
  // The canonical snapshot: every applied change in topological order with hash tie-break,
  // nothing local, nothing queued. Replicas with the same changes save the same bytes.
  Bytes save() const;
  // An independent copy with the same history and a new actor (random if unset).
  Document fork(std::optional<ActorId> actor = std::nullopt) const;
  // Applies every change `other` has that this document lacks.
  ApplyReport merge(const Document& other);

  const ActorId& actor() const;
  // Opens the transaction; a second open one is a bug.
  Transaction transaction();

  // Reads. The winner of a conflict is the value with the largest OpId.
  std::optional<Value> get(const ObjId& map, std::string_view key) const;
  std::optional<Value> get(const ObjId& list, std::size_t index) const;
  // Every concurrent value, ascending by OpId (the winner last); empty if none.
  std::vector<Value> getConflicts(const ObjId& map, std::string_view key) const;
  std::vector<Value> getConflicts(const ObjId& list, std::size_t index) const;
  // A map's keys with a value, ascending.
  std::vector<std::string> keys(const ObjId& map) const;
  // Entries of a map, elements of a list, characters of a text; 0 for a missing object.
  std::size_t length(const ObjId& obj) const;
  std::optional<ObjType> objectType(const ObjId& obj) const;
  // The characters of a text object as UTF-8 (an element that is not a string reads U+FFFC).
  std::string text(const ObjId& textObj) const;
  // The whole document as JSON: maps as objects (keys sorted), lists as arrays, text as strings,
  // counters as numbers, bytes as base64 strings, non-finite doubles as null.
  std::string toJson() const;

  // History.
  ApplyReport applyChanges(std::span<const Bytes> changes);
  std::vector<ChangeHash> getHeads() const;
  std::vector<ChangeHash> getMissingDeps() const;
  // Encoded changes not in the causal past of `heads`, in a topological order.
  std::vector<Bytes> getChangesSince(std::span<const ChangeHash> heads) const;
  std::optional<Bytes> getChange(const ChangeHash& hash) const;
  const ChangeGraph& graph() const;
  // The document as it was when `heads` were its heads: an independent copy holding exactly the
  // changes in their causal past (the heads included), with a new actor (random if unset).
  // Editing it leaves this document alone. Errc::NotFound if a hash is not in this document's
  // history (queued changes waiting for deps do not count).
  Result<Document> forkAt(std::span<const ChangeHash> heads,
                          std::optional<ActorId> actor = std::nullopt) const;
  // The encoded changes that lead from `from` to `to`: those in the causal past of `to` and not
  // in that of `from`, in a topological order (applying them to forkAt(from) gives forkAt(to)).
  // Errc::NotFound if a hash of either is not in the history; Errc::Conflict if `from` is not
  // in the causal past of `to` (the walk would have to go backwards).
  Result<std::vector<Bytes>> changesBetween(std::span<const ChangeHash> from,
                                            std::span<const ChangeHash> to) const;

 private:
  explicit Document(std::unique_ptr<detail::DocumentState> state);
  // The Repo applies changes it has already parsed (to show them to an auth hook) without
  // parsing them again.
  friend struct detail::DocumentAccess;
  std::unique_ptr<detail::DocumentState> state_;
};

}  // namespace portcullis
