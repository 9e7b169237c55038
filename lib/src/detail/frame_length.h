// The u32 big-endian length that both message channels put before a frame: the plaintext framed
// channel before every frame, box-stream in its length message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace portcullis::detail {

inline constexpr std::size_t kFrameLengthBytes = 4;

inline std::array<std::uint8_t, kFrameLengthBytes> encodeFrameLength(std::uint32_t n) noexcept {
  return {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
          static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
}

inline std::size_t decodeFrameLength(std::span<const std::uint8_t, kFrameLengthBytes> b) noexcept {
  return std::size_t{b[0]} << 24 | std::size_t{b[1]} << 16 | std::size_t{b[2]} << 8 | b[3];
}

}  // namespace portcullis::detail
