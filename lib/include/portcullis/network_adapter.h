// portcullis/network_adapter.h — raw connections: the bottom layer of the data path (architecture
// §2).
//
// A NetworkAdapter listens and/or dials and hands every new connection to the Repo as a `Stream`:
// ordered, reliable bytes with no framing and no trust. The Repo passes each stream to its
// AuthProvider, which runs a handshake on it and turns it into a framed `MessageChannel`.
// Adapters: adapters/network/memory (in-process pipes, for tests) and adapters/network/tcp.
//
// Streams and adapters are used on the Repo's executor only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "portcullis/asio.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis {

// Which end of a connection we are. Handshakes that are not symmetric (SHS) need to know.
enum class Side : std::uint8_t { Dialer, Acceptor };

// One connection's bytes. Reads and writes may overlap each other, but there is at most one read
// and one write in flight at a time.
class Stream {
 public:
  virtual ~Stream() = default;
  // Reads between 1 and buf.size() bytes. Fails with Errc::Disconnected at end of stream or after
  // close(); never returns 0 bytes.
  virtual asio::awaitable<Result<std::size_t>> readSome(std::span<std::uint8_t> buf) = 0;
  // Writes all of `bytes` (or fails with Errc::Disconnected). Completes when the bytes are handed
  // to the transport, which may apply backpressure by completing late.
  virtual asio::awaitable<Result<void>> write(ByteView bytes) = 0;
  // Closes both directions now; pending and later reads and writes fail. Idempotent.
  virtual void close() = 0;
  // For logs: where the other end is ("127.0.0.1:4242", "memory:b").
  virtual std::string remoteAddress() const = 0;
  // For a stream the adapter dialed: the address it dialed, exactly as configured (with
  // anything the adapter does not use itself, such as the server key in Scuttlebutt's
  // "net:HOST:PORT~shs:KEY"), so that a handshake that must know the acceptor's key can read it.
  // Empty for accepted streams and by default.
  virtual std::string dialedAddress() const { return {}; }
};

// Receives each new connection. Called on the Repo's executor.
using ConnectionSink = std::function<void(std::unique_ptr<Stream>, Side)>;

class NetworkAdapter {
 public:
  virtual ~NetworkAdapter() = default;
  // Starts listening and dialing; every connection made from now on goes to `sink`. Called once,
  // by the Repo, on its executor. A dialing adapter redials (with backoff) after a drop.
  virtual void start(ConnectionSink sink) = 0;
  // Stops listening and dialing; established streams are closed by their owners. Idempotent.
  virtual void stop() = 0;
};

// A Stream that shares another: whoever keeps the other handle can close the stream while its
// owner reads or writes (a handshake's deadline watchdog; the Repo, which closes a stream it
// handed to a provider's handshake at the deadline), and tests frame a stream and still write
// raw bytes to it. Each call keeps the shared stream alive until it completes.
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

// Reads exactly buf.size() bytes (a helper for handshakes and framing).
PORTCULLIS_EXPORT asio::awaitable<Result<void>> readExactly(Stream& stream,
                                                            std::span<std::uint8_t> buf);

}  // namespace portcullis
