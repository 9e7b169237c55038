// A Stream that shares another: the Repo keeps the handle so it can close a stream it has handed
// to a provider's handshake (at the deadline); tests use it to frame a stream and still write raw
// bytes to it.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "portcullis/network_adapter.h"

namespace portcullis::detail {

class SharedStream final : public Stream {
 public:
  explicit SharedStream(std::shared_ptr<Stream> inner) : inner_(std::move(inner)) {}
  asio::awaitable<Result<std::size_t>> readSome(std::span<std::uint8_t> buf) override {
    auto inner = inner_;  // the stream may be destroyed while the read is pending
    co_return co_await inner->readSome(buf);
  }
  asio::awaitable<Result<void>> write(ByteView bytes) override {
    auto inner = inner_;
    co_return co_await inner->write(bytes);
  }
  void close() override { inner_->close(); }
  std::string remoteAddress() const override { return inner_->remoteAddress(); }
  std::string dialedAddress() const override { return inner_->dialedAddress(); }

 private:
  std::shared_ptr<Stream> inner_;
};

}  // namespace portcullis::detail
