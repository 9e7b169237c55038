// portcullis/types.h — small value types shared by every layer: byte strings, actor IDs and
// change hashes.
//
// Plain values; safe to copy between threads.
#pragma once

#include <algorithm>
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "portcullis/export.h"
#include "portcullis/result.h"

namespace portcullis {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// Lower-case hexadecimal.
PORTCULLIS_EXPORT std::string toHex(ByteView bytes);

// The author of changes: a byte string of 1 to 32 bytes (16 random bytes by default; a provider
// may use a device public key). Ordered bytewise, which is how concurrent ops are ordered.
class PORTCULLIS_EXPORT ActorId {
 public:
  static constexpr std::size_t kMaxSize = 32;
  static constexpr std::size_t kDefaultSize = 16;

  // Fails with Malformed unless 1 <= size <= kMaxSize.
  static Result<ActorId> fromBytes(ByteView bytes);
  // kDefaultSize bytes from libsodium's randombytes_buf.
  static ActorId random();

  ByteView bytes() const noexcept { return ByteView(bytes_.data(), size_); }
  std::string toHex() const { return portcullis::toHex(bytes()); }

  // The bytes past size_ are zero, so comparing whole arrays compares the bytes.
  friend bool operator==(const ActorId&, const ActorId&) = default;
  friend std::strong_ordering operator<=>(const ActorId& a, const ActorId& b) {
    const int c = std::memcmp(a.bytes_.data(), b.bytes_.data(), std::min(a.size_, b.size_));
    if (c != 0) return c < 0 ? std::strong_ordering::less : std::strong_ordering::greater;
    return a.size_ <=> b.size_;
  }

 private:
  ActorId() = default;
  // Held in place: every change envelope and decoded change carries its actor, and a copy
  // that allocates was one of the larger costs of a one-op commit and of receiving one.
  std::array<std::uint8_t, kMaxSize> bytes_{};
  std::uint8_t size_ = 0;
};

// The identity of a change: BLAKE2b-256 of its canonical encoding (or, for a sealing provider,
// whatever hash that provider defines over its envelopes; architecture §4).
class PORTCULLIS_EXPORT ChangeHash {
 public:
  static constexpr std::size_t kSize = 32;

  ChangeHash() = default;  // all zero; never the hash of a real change
  // Fails with Malformed unless bytes.size() == kSize.
  static Result<ChangeHash> fromBytes(ByteView bytes);
  // BLAKE2b-256 of `bytes`.
  static ChangeHash of(ByteView bytes);

  const std::array<std::uint8_t, kSize>& bytes() const noexcept { return bytes_; }
  std::string toHex() const { return portcullis::toHex(bytes_); }

  friend bool operator==(const ChangeHash&, const ChangeHash&) = default;
  friend std::strong_ordering operator<=>(const ChangeHash&, const ChangeHash&) = default;

 private:
  std::array<std::uint8_t, kSize> bytes_{};
};

}  // namespace portcullis

template <>
struct std::hash<portcullis::ChangeHash> {
  std::size_t operator()(const portcullis::ChangeHash& h) const noexcept {
    // The hash is already uniformly distributed; its first word is as good as any.
    std::size_t out = 0;
    std::memcpy(&out, h.bytes().data(), sizeof out);
    return out;
  }
};
