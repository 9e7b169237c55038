// memory_network.h — an in-process NetworkAdapter for tests and embedding: connections are pairs
// of in-memory pipes. A test can delay, cut and record every byte of a connection.
//
// Everything here runs on one executor (the Repos' shared io_context); nothing is thread-safe.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/network_adapter.h"

namespace portcullis {

namespace memnet {
struct Pipe;
}  // namespace memnet

// One connection between two adapters: a pipe each way.
class MemoryLink {
 public:
  MemoryLink(std::shared_ptr<memnet::Pipe> toAcceptor, std::shared_ptr<memnet::Pipe> toDialer)
      : toAcceptor_(std::move(toAcceptor)), toDialer_(std::move(toDialer)) {}

  // Drops the connection abruptly: both ends see end of stream, bytes in flight are lost.
  void cut();
  // Bytes written from now on reach the other end this much later (both directions).
  void setDelay(std::chrono::milliseconds delay);
  // Every byte each side has written so far, in order.
  const std::vector<std::uint8_t>& bytesFromDialer() const;
  const std::vector<std::uint8_t>& bytesFromAcceptor() const;
  bool isOpen() const;

 private:
  std::shared_ptr<memnet::Pipe> toAcceptor_;
  std::shared_ptr<memnet::Pipe> toDialer_;
};

// One endpoint. Give it to a Repo in RepoOptions::network; connect it to others with connect().
class MemoryNetworkAdapter final : public NetworkAdapter {
 public:
  MemoryNetworkAdapter(asio::any_io_executor executor, std::string name)
      : executor_(std::move(executor)), name_(std::move(name)) {}

  void start(ConnectionSink sink) override;
  void stop() override;

  const std::string& name() const { return name_; }
  const asio::any_io_executor& executor() const { return executor_; }

  // Hands a stream to the Repo, or holds it until start().
  void deliver(std::unique_ptr<Stream> stream, Side side);

 private:
  asio::any_io_executor executor_;
  std::string name_;
  ConnectionSink sink_;
  bool stopped_ = false;
  std::vector<std::pair<std::unique_ptr<Stream>, Side>> held_;
};

struct MemoryLinkOptions {
  // Bytes a pipe holds that its reader has not read; a writer past that waits (backpressure).
  std::size_t maxBufferedBytes = 1u << 20;
  // Keep a copy of every byte for bytesFromDialer()/bytesFromAcceptor() (tests); off for
  // benchmarks, where the copy would be counted as the Repo's memory.
  bool record = true;
  // What the dialer's stream reports as Stream::dialedAddress() (e.g. "net:b:1~shs:KEY" for a
  // handshake that reads the acceptor's key from it); the acceptor's stream reports nothing.
  std::string dialedAddress{};
};

// Opens a connection from `dialer` to `acceptor`.
std::shared_ptr<MemoryLink> connect(MemoryNetworkAdapter& dialer, MemoryNetworkAdapter& acceptor,
                                    MemoryLinkOptions options = {});

}  // namespace portcullis
