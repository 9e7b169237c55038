// portcullis/storage_adapter.h — where a Repo keeps documents: a key-value store whose keys are
// arrays of strings, as automerge-repo's StorageAdapter.
//
// The Repo writes a document as chunks under `[docId, "incremental", hash]` and, after a
// compaction, `[docId, "snapshot", headsHash]`, and reads all of a document's chunks with
// `loadRange({docId})`. Adapters: adapters/storage/memory and adapters/storage/fs.
//
// Every method is called on the Repo's executor and returns an awaitable that completes on that
// executor; an adapter may do its I/O elsewhere (a thread pool) meanwhile. Calls may overlap: an
// adapter must keep concurrent calls on different keys independent and serialise calls on the
// same key in the order they were made.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis {

// A key: one or more non-empty strings. Every adapter accepts exactly the keys that
// checkStorageKey() accepts and fails with Errc::Malformed on others, so that a key that works
// with the memory adapter in a test also works with the fs adapter in production. The Repo uses
// only [A-Za-z0-9_-] and base58.
using StorageKey = std::vector<std::string>;

// Bounds on a key, so that a file path made of one stays far below PATH_MAX.
inline constexpr std::size_t kMaxStorageKeyElements = 8;
inline constexpr std::size_t kMaxStorageKeyElementSize = 128;

// Fails with Malformed unless `key` has 1 to kMaxStorageKeyElements elements, each of 1 to
// kMaxStorageKeyElementSize characters from [A-Za-z0-9_-]. The character set keeps every element
// a plain file name (never "." or "..", no '/', no NUL) and leaves '.' free for an adapter's own
// file names. A prefix given to loadRange() or removeRange() obeys
// the same rule, so no call can address the whole store at once.
[[nodiscard]] inline Result<void> checkStorageKey(const StorageKey& key) {
  if (key.empty() || key.size() > kMaxStorageKeyElements) {
    return Error(Errc::Malformed, "a storage key has 1 to " +
                                      std::to_string(kMaxStorageKeyElements) + " elements, not " +
                                      std::to_string(key.size()));
  }
  for (const std::string& element : key) {
    if (element.empty() || element.size() > kMaxStorageKeyElementSize) {
      return Error(Errc::Malformed, "a storage key element has 1 to " +
                                        std::to_string(kMaxStorageKeyElementSize) +
                                        " characters, not " + std::to_string(element.size()));
    }
    for (char c : element) {
      bool safe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
      if (!safe) {
        return Error(Errc::Malformed,
                     "a storage key element holds a character outside [A-Za-z0-9_-]");
      }
    }
  }
  return {};
}

// Whether `key` starts with `prefix`, element by element: {"a", "x"} starts with {"a"}, but
// {"ab", "x"} does not.
inline bool hasKeyPrefix(const StorageKey& key, const StorageKey& prefix) {
  return key.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), key.begin());
}

struct StorageChunk {
  StorageKey key;
  Bytes data;
};

class StorageAdapter {
 public:
  virtual ~StorageAdapter() = default;

  // The data saved under exactly `key`, or nullopt if there is none.
  virtual asio::awaitable<Result<std::optional<Bytes>>> load(StorageKey key) = 0;
  // Replaces the data under `key`. Durable when the awaitable completes successfully: a crash
  // after that never loses it, and a crash before it leaves either the old data or the new,
  // never a mix or a truncation.
  virtual asio::awaitable<Result<void>> save(StorageKey key, Bytes data) = 0;
  // Removes `key`; removing a missing key succeeds. Durable on completion, like save().
  virtual asio::awaitable<Result<void>> remove(StorageKey key) = 0;
  // Every chunk whose key starts with `prefix` (element by element, see hasKeyPrefix()), ordered
  // by key.
  virtual asio::awaitable<Result<std::vector<StorageChunk>>> loadRange(StorageKey prefix) = 0;
  // Removes every chunk whose key starts with `prefix`.
  virtual asio::awaitable<Result<void>> removeRange(StorageKey prefix) = 0;
};

}  // namespace portcullis
