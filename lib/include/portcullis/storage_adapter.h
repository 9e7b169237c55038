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

#include <optional>
#include <string>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis {

// A key: one or more non-empty strings. Adapters may restrict the characters they accept and
// fail with Errc::Malformed on others; the Repo uses only [A-Za-z0-9_-] and base58.
using StorageKey = std::vector<std::string>;

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
  // Every chunk whose key starts with `prefix` (element by element), ordered by key.
  virtual asio::awaitable<Result<std::vector<StorageChunk>>> loadRange(StorageKey prefix) = 0;
  // Removes every chunk whose key starts with `prefix`.
  virtual asio::awaitable<Result<void>> removeRange(StorageKey prefix) = 0;
};

}  // namespace portcullis
