// tests/fuzz/fuzz_input.h — what every fuzz target (the core library's and the team provider's)
// shares: a reader for framed inputs, its writer side for the corpus generators, and the report of
// a broken invariant.
//
// Test support only, for the fuzz targets, their replay tests and the corpus generators.
// Single-threaded.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include "portcullis/types.h"

namespace portcullis::fuzz {

// Reads an input front to back. A field that runs past the end is absent (the try* forms), zero
// (byte, u16, u32, fixedOrZero) or what is left (take): a shorter input is just a smaller case,
// never an error.
class Reader {
 public:
  explicit Reader(ByteView in) : in_(in) {}

  template <std::size_t N>
  std::optional<std::array<std::uint8_t, N>> fixed() {
    if (in_.size() < N) return std::nullopt;
    std::array<std::uint8_t, N> out{};
    std::memcpy(out.data(), in_.data(), N);
    in_ = in_.subspan(N);
    return out;
  }
  template <std::size_t N>
  std::array<std::uint8_t, N> fixedOrZero() {
    std::array<std::uint8_t, N> out{};
    const ByteView got = take(N);
    std::copy(got.begin(), got.end(), out.begin());
    return out;
  }
  std::optional<std::uint8_t> tryByte() {
    const auto b = fixed<1>();
    if (!b) return std::nullopt;
    return (*b)[0];
  }
  std::optional<std::uint32_t> tryU32() {  // little endian
    const auto b = fixed<4>();
    if (!b) return std::nullopt;
    return littleU32(*b);
  }
  std::uint8_t byte() { return tryByte().value_or(0); }
  std::uint16_t u16() {  // little endian
    const auto b = fixedOrZero<2>();
    return static_cast<std::uint16_t>(b[0] | b[1] << 8);
  }
  std::uint32_t u32() { return littleU32(fixedOrZero<4>()); }
  // Up to n bytes: all that is left when fewer are.
  ByteView take(std::size_t n) {
    const ByteView out = in_.first(std::min(n, in_.size()));
    in_ = in_.subspan(out.size());
    return out;
  }
  ByteView rest() { return take(in_.size()); }
  bool empty() const noexcept { return in_.empty(); }
  std::size_t left() const noexcept { return in_.size(); }

 private:
  static std::uint32_t littleU32(const std::array<std::uint8_t, 4> &b) {
    return std::uint32_t{b[0]} | std::uint32_t{b[1]} << 8 | std::uint32_t{b[2]} << 16 |
           std::uint32_t{b[3]} << 24;
  }

  ByteView in_;
};

// The writer side of Reader, for the corpus generators.
inline void putU16(Bytes &out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}
inline void putU32(Bytes &out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void putBytes(Bytes &out, ByteView b) { out.insert(out.end(), b.begin(), b.end()); }

// Says which invariant broke, then aborts, which libFuzzer reports as a crash (with the input
// saved) and the replay test as a failed run.
[[noreturn]] inline void fail(const char *target, std::string_view what) {
  std::fprintf(stderr, "%s: invariant broken: %.*s\n", target, static_cast<int>(what.size()),
               what.data());
  std::abort();
}
inline void require(bool ok, const char *target, std::string_view what) {
  if (!ok) fail(target, what);
}

}  // namespace portcullis::fuzz
