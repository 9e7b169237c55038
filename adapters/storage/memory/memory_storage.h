// memory_storage.h — a StorageAdapter that keeps every chunk in a map in memory: for tests and for
// repos that need no persistence. Nothing survives the object.
//
// Adapter layer; includes only portcullis/*.h. Every method is called on the Repo's executor and
// completes on it without suspending, so calls run one after another in the order they were made.
// Not thread-safe: the Repo's single-threaded executor is its only lock.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "portcullis/export.h"
#include "portcullis/storage_adapter.h"

namespace portcullis {

// The StorageAdapter contract over a std::map ordered by key, with the same key rules
// (checkStorageKey) as every other adapter.
class PORTCULLIS_EXPORT MemoryStorageAdapter final : public StorageAdapter {
 public:
  asio::awaitable<Result<std::optional<Bytes>>> load(StorageKey key) override;
  asio::awaitable<Result<void>> save(StorageKey key, Bytes data) override;
  asio::awaitable<Result<void>> remove(StorageKey key) override;
  asio::awaitable<Result<std::vector<StorageChunk>>> loadRange(StorageKey prefix) override;
  asio::awaitable<Result<void>> removeRange(StorageKey prefix) override;

  using Map = std::map<StorageKey, Bytes>;
  // Everything stored, for tests that inspect what a Repo wrote.
  const Map& chunks() const { return chunks_; }

 private:
  // The chunks whose keys start with `prefix`: one run, since the map's lexicographic order puts
  // every extension of a key right after it.
  std::pair<Map::iterator, Map::iterator> range(const StorageKey& prefix);

  Map chunks_;
};

}  // namespace portcullis
