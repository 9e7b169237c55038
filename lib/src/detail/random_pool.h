// Random bytes for values that must be unique but are not secret: request IDs, which travel in
// the clear, and the actor IDs of documents, which every change names. randombytes_buf makes one
// system call per call; finding a thousand documents made two thousand of them. The pool draws
// a block at a time and hands it out in pieces. Never use it for keys or document IDs: those are
// secrets, and a pool keeps the next ones in memory before they are used. Unlike randombytes_buf
// it does not survive fork(): the two processes would draw the same bytes (a Repo, tied to its
// io_context and sockets, is not used across a fork anyway).
#pragma once

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>

namespace portcullis::detail {

class RandomPool {
 public:
  void fill(std::span<std::uint8_t> out) {
    while (!out.empty()) {
      if (used_ == block_.size()) {
        randombytes_buf(block_.data(), block_.size());
        used_ = 0;
      }
      const std::size_t n = std::min(out.size(), block_.size() - used_);
      std::memcpy(out.data(), block_.data() + used_, n);
      used_ += n;
      out = out.subspan(n);
    }
  }

 private:
  std::array<std::uint8_t, 1024> block_{};
  std::size_t used_ = block_.size();
};

}  // namespace portcullis::detail
