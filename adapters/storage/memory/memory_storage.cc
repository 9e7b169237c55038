// The in-memory StorageAdapter.
#include "memory_storage.h"

#include <utility>

namespace portcullis {

asio::awaitable<Result<std::optional<Bytes>>> MemoryStorageAdapter::load(StorageKey key) {
  if (auto valid = checkStorageKey(key); !valid) co_return valid.error();
  auto it = chunks_.find(key);
  if (it == chunks_.end()) co_return std::optional<Bytes>{};
  co_return std::optional<Bytes>{it->second};
}

asio::awaitable<Result<void>> MemoryStorageAdapter::save(StorageKey key, Bytes data) {
  if (auto valid = checkStorageKey(key); !valid) co_return valid;
  chunks_.insert_or_assign(std::move(key), std::move(data));
  co_return Result<void>{};
}

asio::awaitable<Result<void>> MemoryStorageAdapter::remove(StorageKey key) {
  if (auto valid = checkStorageKey(key); !valid) co_return valid;
  chunks_.erase(key);
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<StorageChunk>>> MemoryStorageAdapter::loadRange(
    StorageKey prefix) {
  if (auto valid = checkStorageKey(prefix); !valid) co_return valid.error();
  auto [first, last] = range(prefix);
  std::vector<StorageChunk> out;
  for (auto it = first; it != last; ++it) out.push_back(StorageChunk{it->first, it->second});
  co_return out;
}

asio::awaitable<Result<void>> MemoryStorageAdapter::removeRange(StorageKey prefix) {
  if (auto valid = checkStorageKey(prefix); !valid) co_return valid;
  auto [first, last] = range(prefix);
  chunks_.erase(first, last);
  co_return Result<void>{};
}

std::pair<MemoryStorageAdapter::Map::iterator, MemoryStorageAdapter::Map::iterator>
MemoryStorageAdapter::range(const StorageKey& prefix) {
  auto first = chunks_.lower_bound(prefix);
  auto last = first;
  while (last != chunks_.end() && hasKeyPrefix(last->first, prefix)) ++last;
  return {first, last};
}

}  // namespace portcullis
