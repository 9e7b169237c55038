// portcullis/frame_length.h — the u32 big-endian length that message channels put before a frame
// (the plaintext framed channel before every frame, box-stream in its length message, a
// provider's own channel), and how a receiver makes room for the frame that length announces.
//
// Pure functions and constants; any thread.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "portcullis/types.h"

namespace portcullis {

inline constexpr std::size_t kFrameLengthBytes = 4;

inline std::array<std::uint8_t, kFrameLengthBytes> encodeFrameLength(std::uint32_t n) noexcept {
  return {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
          static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
}

inline std::size_t decodeFrameLength(std::span<const std::uint8_t, kFrameLengthBytes> b) noexcept {
  return std::size_t{b[0]} << 24 | std::size_t{b[1]} << 16 | std::size_t{b[2]} << 8 | b[3];
}

// A frame's buffer starts at this size (or the frame's, if smaller) and doubles as the body
// arrives, up to the announced length: a peer that announces a large frame and sends little of
// it holds memory for what it sent, not for what it announced. The Repo's sync frames (64 KiB of
// changes and their header, RepoOptions::syncBatchBytes) fit the first buffer.
inline constexpr std::size_t kFrameFirstChunk = 128 * 1024;

// Grows `frame` to hold at least `need` bytes, never past `total` (need <= total), doubling.
inline void growFrame(Bytes& frame, std::size_t need, std::size_t total) {
  if (frame.size() >= need) return;
  frame.resize(std::min(total, std::max({need, 2 * frame.size(), kFrameFirstChunk})));
}

}  // namespace portcullis
