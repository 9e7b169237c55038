// The plaintext framed channel and the read helper every handshake uses.

#include <algorithm>
#include <array>
#include <cstdint>

#include "portcullis/auth_provider.h"
#include "portcullis/network_adapter.h"

#include "portcullis/frame_length.h"

namespace portcullis {

asio::awaitable<Result<void>> readExactly(Stream& stream, std::span<std::uint8_t> buf) {
  while (!buf.empty()) {
    auto n = co_await stream.readSome(buf);
    if (!n) co_return std::move(n).error();
    buf = buf.subspan(*n);
  }
  co_return Result<void>();
}

namespace {

// Frames up to this size are copied behind their length prefix and written once.
constexpr std::size_t kCoalesceBytes = 4096;
// Reads shorter than this go through a buffer of this size.
constexpr std::size_t kReadAhead = 1024;

class FramedChannel final : public MessageChannel {
 public:
  FramedChannel(std::unique_ptr<Stream> stream, std::size_t maxFrameBytes)
      : stream_(std::move(stream)), maxFrameBytes_(maxFrameBytes) {}
  ~FramedChannel() override { stream_->close(); }

  asio::awaitable<Result<void>> send(ByteView frame) override {
    if (frame.size() > maxFrameBytes_) {
      co_return Error(Errc::Overloaded, "frame of " + std::to_string(frame.size()) +
                                            " bytes is over the limit");
    }
    const auto length = encodeFrameLength(static_cast<std::uint32_t>(frame.size()));
    if (frame.size() <= kCoalesceBytes) {
      // A small frame goes out with its length in one write: for most sync frames the second
      // write cost more than the copy (one more wake-up and read on the other side).
      pending_.assign(length.begin(), length.end());
      pending_.insert(pending_.end(), frame.begin(), frame.end());
      co_return co_await stream_->write(pending_);
    }
    // Two writes, with no copy of the frame: at most one send is in flight (the contract), so
    // nothing comes between the length and the body.
    auto sent = co_await stream_->write(length);
    if (!sent) co_return sent;
    co_return co_await stream_->write(frame);
  }

  asio::awaitable<Result<Bytes>> receive() override {
    std::array<std::uint8_t, kFrameLengthBytes> len;
    if (!takeAhead(len)) {
      auto got = co_await take(len);
      if (!got) co_return got.error();
    }
    const std::size_t n = decodeFrameLength(len);
    if (n > maxFrameBytes_) {
      co_return Error(Errc::Overloaded,
                      "peer announced a frame of " + std::to_string(n) + " bytes, over the limit");
    }
    Bytes frame;
    while (frame.size() < n) {
      const std::size_t filled = frame.size();
      growFrame(frame, filled + 1, n);  // room for at least one more byte
      const std::span<std::uint8_t> room = std::span(frame).subspan(filled);
      if (!takeAhead(room)) {
        auto got = co_await take(room);
        if (!got) co_return got.error();
      }
    }
    co_return frame;
  }

  void close() override { stream_->close(); }

 private:
  // Fills `out` from the bytes read ahead if they hold all of it.
  bool takeAhead(std::span<std::uint8_t> out) {
    if (aheadEnd_ - aheadStart_ < out.size()) return false;
    std::copy_n(ahead_.begin() + static_cast<std::ptrdiff_t>(aheadStart_), out.size(), out.begin());
    aheadStart_ += out.size();
    return true;
  }

  // Fills `out` from the bytes read ahead, then from the stream. Short reads go through the
  // read-ahead buffer, so one read usually brings a small frame and its length (a read per
  // frame instead of two); the rest of a large frame is read straight into it.
  asio::awaitable<Result<void>> take(std::span<std::uint8_t> out) {
    for (;;) {
      const std::size_t n = std::min(out.size(), aheadEnd_ - aheadStart_);
      std::copy_n(ahead_.begin() + static_cast<std::ptrdiff_t>(aheadStart_), n, out.begin());
      aheadStart_ += n;
      out = out.subspan(n);
      if (out.empty()) co_return Result<void>();
      if (out.size() >= kReadAhead) co_return co_await readExactly(*stream_, out);
      ahead_.resize(kReadAhead);
      auto got = co_await stream_->readSome(ahead_);
      if (!got) co_return got.error();
      aheadStart_ = 0;
      aheadEnd_ = *got;
    }
  }

  std::unique_ptr<Stream> stream_;
  std::size_t maxFrameBytes_;
  Bytes pending_;  // the coalesced write in flight; kept to reuse its capacity
  Bytes ahead_;    // allocated on the first receive; [aheadStart_, aheadEnd_) is unread
  std::size_t aheadStart_ = 0;
  std::size_t aheadEnd_ = 0;
};

}  // namespace

std::unique_ptr<MessageChannel> makeFramedChannel(std::unique_ptr<Stream> stream,
                                                  std::size_t maxFrameBytes) {
  // The length prefix is 32 bits.
  maxFrameBytes = std::min<std::size_t>(maxFrameBytes, UINT32_MAX);
  return std::make_unique<FramedChannel>(std::move(stream), maxFrameBytes);
}

}  // namespace portcullis
