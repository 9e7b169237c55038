#include "memory_network.h"

#include <algorithm>

namespace portcullis {
namespace memnet {

using Clock = std::chrono::steady_clock;

// One direction of a connection. Waiters sleep on a timer that is cancelled to wake them; each
// waiter re-checks its condition, so a wake-up before the wait is never lost (one thread).
struct Pipe {
  Pipe(const asio::any_io_executor& ex, const MemoryLinkOptions& options)
      : readable(ex), writable(ex), maxBuffered(options.maxBufferedBytes), record(options.record) {}

  struct Chunk {
    Clock::time_point readyAt;
    std::vector<std::uint8_t> bytes;
    std::size_t offset = 0;
  };
  std::deque<Chunk> chunks;
  std::size_t buffered = 0;
  bool closed = false;
  std::chrono::milliseconds delay{0};
  std::vector<std::uint8_t> recorded;
  asio::steady_timer readable;
  asio::steady_timer writable;
  std::size_t maxBuffered;
  bool record;

  void close() {
    closed = true;
    chunks.clear();
    buffered = 0;
    readable.cancel();
    writable.cancel();
  }
};

asio::awaitable<void> sleepOn(asio::steady_timer& timer, Clock::time_point until) {
  timer.expires_at(until);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

class PipeStream final : public Stream {
 public:
  PipeStream(std::shared_ptr<Pipe> in, std::shared_ptr<Pipe> out, std::string remote,
             std::string dialed = {})
      : in_(std::move(in)),
        out_(std::move(out)),
        remote_(std::move(remote)),
        dialed_(std::move(dialed)) {}
  ~PipeStream() override { close(); }

  asio::awaitable<Result<std::size_t>> readSome(std::span<std::uint8_t> buf) override {
    // Holds the pipe: the stream may be closed and destroyed by another coroutine meanwhile.
    std::shared_ptr<Pipe> in = in_;
    for (;;) {
      if (in->closed) co_return Error(Errc::Disconnected, "memory pipe closed");
      if (!in->chunks.empty() && in->chunks.front().readyAt <= Clock::now()) break;
      co_await sleepOn(in->readable, in->chunks.empty() ? Clock::time_point::max()
                                                        : in->chunks.front().readyAt);
    }
    auto& chunk = in->chunks.front();
    const std::size_t n = std::min(buf.size(), chunk.bytes.size() - chunk.offset);
    std::copy_n(chunk.bytes.begin() + static_cast<std::ptrdiff_t>(chunk.offset), n, buf.begin());
    chunk.offset += n;
    in->buffered -= n;
    if (chunk.offset == chunk.bytes.size()) in->chunks.pop_front();
    in->writable.cancel();
    co_return n;
  }

  asio::awaitable<Result<void>> write(ByteView bytes) override {
    std::shared_ptr<Pipe> out = out_;
    while (!out->closed && out->buffered >= out->maxBuffered) {
      co_await sleepOn(out->writable, Clock::time_point::max());
    }
    if (out->closed) co_return Error(Errc::Disconnected, "memory pipe closed");
    if (out->record) out->recorded.insert(out->recorded.end(), bytes.begin(), bytes.end());
    out->chunks.push_back({Clock::now() + out->delay, {bytes.begin(), bytes.end()}, 0});
    out->buffered += bytes.size();
    out->readable.cancel();
    co_return Result<void>();
  }

  void close() override {
    in_->close();
    out_->close();
  }

  std::string remoteAddress() const override { return remote_; }
  std::string dialedAddress() const override { return dialed_; }

 private:
  std::shared_ptr<Pipe> in_;
  std::shared_ptr<Pipe> out_;
  std::string remote_;
  std::string dialed_;
};

}  // namespace memnet

void MemoryLink::cut() {
  toAcceptor_->close();
  toDialer_->close();
}

void MemoryLink::setDelay(std::chrono::milliseconds delay) {
  toAcceptor_->delay = delay;
  toDialer_->delay = delay;
}

const std::vector<std::uint8_t>& MemoryLink::bytesFromDialer() const { return toAcceptor_->recorded; }
const std::vector<std::uint8_t>& MemoryLink::bytesFromAcceptor() const { return toDialer_->recorded; }
bool MemoryLink::isOpen() const { return !toAcceptor_->closed && !toDialer_->closed; }

void MemoryNetworkAdapter::start(ConnectionSink sink) {
  sink_ = std::move(sink);
  for (auto& [stream, side] : held_) sink_(std::move(stream), side);
  held_.clear();
}

void MemoryNetworkAdapter::stop() {
  stopped_ = true;
  sink_ = nullptr;
  held_.clear();
}

void MemoryNetworkAdapter::deliver(std::unique_ptr<Stream> stream, Side side) {
  if (stopped_) return;  // the stream closes as it is destroyed
  if (sink_) {
    sink_(std::move(stream), side);
  } else {
    held_.emplace_back(std::move(stream), side);
  }
}

std::shared_ptr<MemoryLink> connect(MemoryNetworkAdapter& dialer, MemoryNetworkAdapter& acceptor,
                                    MemoryLinkOptions options) {
  auto toAcceptor = std::make_shared<memnet::Pipe>(dialer.executor(), options);
  auto toDialer = std::make_shared<memnet::Pipe>(acceptor.executor(), options);
  dialer.deliver(std::make_unique<memnet::PipeStream>(toDialer, toAcceptor,
                                                      "memory:" + acceptor.name(),
                                                      options.dialedAddress),
                 Side::Dialer);
  acceptor.deliver(std::make_unique<memnet::PipeStream>(toAcceptor, toDialer,
                                                        "memory:" + dialer.name()),
                   Side::Acceptor);
  return std::make_shared<MemoryLink>(std::move(toAcceptor), std::move(toDialer));
}

}  // namespace portcullis
