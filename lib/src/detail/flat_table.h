// An insert-only hash table with open addressing, for the indexes a document touches once or
// twice per change or op (by change hash, by op id). std::unordered_map costs an allocation per
// entry and a pointer chase per lookup; this keeps entries in one array.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace portcullis::detail {

template <typename K, typename V, typename Hash = std::hash<K>>
class FlatTable {
 public:
  std::size_t size() const { return size_; }

  V* find(const K& key) {
    if (size_ == 0) return nullptr;
    for (std::size_t i = home(key);; i = (i + 1) & mask()) {
      Entry& e = entries_[i];
      if (!e.used) return nullptr;
      if (e.key == key) return &e.value;
    }
  }
  const V* find(const K& key) const { return const_cast<FlatTable*>(this)->find(key); }
  bool contains(const K& key) const { return find(key) != nullptr; }

  // The value at `key`, value-initialized first if absent; the bool says whether it was.
  // Pointers to values stay valid until the next insertion.
  std::pair<V*, bool> tryEmplace(const K& key) {
    if (2 * (size_ + 1) > entries_.size()) grow();
    for (std::size_t i = home(key);; i = (i + 1) & mask()) {
      Entry& e = entries_[i];
      if (!e.used) {
        e = Entry{key, V{}, true};
        ++size_;
        return {&e.value, true};
      }
      if (e.key == key) return {&e.value, false};
    }
  }
  V& operator[](const K& key) { return *tryEmplace(key).first; }

  // Makes room for `n` entries in all, so that inserting them does not grow the table.
  void reserve(std::size_t n) {
    while (2 * n > entries_.size()) grow();
  }

 private:
  struct Entry {
    K key{};
    V value{};
    bool used = false;
  };

  std::size_t mask() const { return entries_.size() - 1; }
  // Fibonacci hashing: the top bits of the product, so that a weak hash still spreads.
  std::size_t home(const K& key) const {
    return static_cast<std::size_t>((Hash{}(key) * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  void grow() {
    std::vector<Entry> old = std::move(entries_);
    const std::size_t capacity = old.empty() ? 16 : old.size() * 2;
    entries_ = std::vector<Entry>(capacity);
    shift_ = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
    for (Entry& e : old) {
      if (!e.used) continue;
      std::size_t i = home(e.key);
      while (entries_[i].used) i = (i + 1) & mask();
      entries_[i] = std::move(e);
    }
  }

  std::vector<Entry> entries_;  // a power of two in size, at most half full
  std::size_t size_ = 0;
  unsigned shift_ = 64;
};

}  // namespace portcullis::detail
