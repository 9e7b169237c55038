// Blocking stdin/stdout helpers shared by the two shs1-test adapters.
#pragma once

#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <span>

namespace shs1io {

// Reads exactly buf.size() bytes from stdin; false at end of input or on an error.
inline bool readAll(std::span<std::uint8_t> buf) {
  while (!buf.empty()) {
    const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf = buf.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

// Writes `bytes` to stdout in one write(2): a pipe delivers up to PIPE_BUF (4096) bytes at once,
// and the suite reads each chunk as one message.
inline bool writeOnce(std::span<const std::uint8_t> bytes) {
  ssize_t n;
  do {
    n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(bytes.size());
}

// Exactly out.size() bytes from 2 * out.size() hex digits.
inline bool fromHex(const char* text, std::span<std::uint8_t> out) {
  std::size_t written = 0;
  const char* end = nullptr;
  return std::strlen(text) == 2 * out.size() &&
         sodium_hex2bin(out.data(), out.size(), text, 2 * out.size(), nullptr, &written, &end) ==
             0 &&
         written == out.size() && *end == '\0';
}

// Appends pieces to a fixed buffer.
class Writer {
 public:
  explicit Writer(std::span<std::uint8_t> out) : out_(out) {}
  Writer& put(std::span<const std::uint8_t> piece) {
    std::copy(piece.begin(), piece.end(), out_.begin() + static_cast<std::ptrdiff_t>(used_));
    used_ += piece.size();
    return *this;
  }

 private:
  std::span<std::uint8_t> out_;
  std::size_t used_ = 0;
};

}  // namespace shs1io
