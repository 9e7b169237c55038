// tcp_network.h — a NetworkAdapter over TCP (Boost.Asio coroutines): listens on configured
// addresses and dials configured peers, redialing with exponential backoff and jitter after a
// drop or a failed attempt.
//
// Layer: the bottom of the data path (architecture §2); what it yields is raw bytes, trusted by no
// one until the Repo's auth provider has run its handshake on them. Everything runs on the executor
// given at creation, which must be the Repo's.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/export.h"
#include "portcullis/network_adapter.h"
#include "portcullis/result.h"

namespace portcullis {

// What became of one attempt to dial a TcpNetworkOptions::connect address: for a server's logs,
// and for a client that would rather give up at once than wait for its deadline.
struct TcpDialEvent {
  enum class Kind : std::uint8_t {
    Failed,     // resolving the host or connecting failed (`error`); a redial follows
    Connected,  // a connection is up; its stream has gone to the sink
    Closed,     // a connection of this dial ended; a redial follows
  };
  Kind kind = Kind::Failed;
  std::string address;  // as configured
  // Failed: why, with the OS's words ("cannot connect to 127.0.0.1:7420: Connection refused",
  // "cannot resolve db.example: Host not found (authoritative)").
  std::string error;
  // Failed: the resolver's or the socket's error code (a timeout is asio::error::timed_out).
  boost::system::error_code code;
  // Failed attempts in a row, this one included (0 for Connected and Closed).
  unsigned failures = 0;
  // Failed and Closed: when the redial starts (zero once the adapter is stopped).
  std::chrono::milliseconds retryIn{0};
};

struct TcpNetworkOptions {
  std::vector<std::string> listen{};   // "HOST:PORT" (port 0: any free port; see listeningOn())
  // Addresses to dial and keep dialing: "HOST:PORT", or Scuttlebutt's multiserver form
  // "net:HOST:PORT~shs:KEY" (KEY the server's Ed25519 public key, base64 as SSB writes it or 64
  // hex digits) for a handshake that must know the acceptor's key. The stream of a dial reports
  // the address as written here in Stream::dialedAddress().
  std::vector<std::string> connect{};
  // Redial delays grow from min to max, doubling, each with up to 50% random jitter.
  std::chrono::milliseconds minBackoff{100};
  std::chrono::milliseconds maxBackoff{10'000};
  // A dial that has not connected by then counts as failed.
  std::chrono::milliseconds connectTimeout{5'000};
  // Told of every dial's outcome, on the adapter's executor; optional. Never called after stop().
  std::function<void(const TcpDialEvent&)> onDial{};
};

class PORTCULLIS_EXPORT TcpNetworkAdapter final : public NetworkAdapter {
 public:
  // Parses the addresses and binds every listener now, so that a bad address or a port in use
  // fails here (Errc::Config / Errc::Io) and port 0 is resolved before start().
  static Result<std::shared_ptr<TcpNetworkAdapter>> create(asio::any_io_executor executor,
                                                           TcpNetworkOptions options);
  ~TcpNetworkAdapter() override;

  void start(ConnectionSink sink) override;
  void stop() override;

  // Where the listeners are bound, in the order of options.listen.
  std::vector<asio::ip::tcp::endpoint> listeningOn() const;

  struct State;

 private:
  explicit TcpNetworkAdapter(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// Splits "HOST:PORT" ("[::1]:80" for IPv6); Errc::Config on anything else.
PORTCULLIS_EXPORT Result<std::pair<std::string, std::uint16_t>> parseHostPort(
    std::string_view address);

// The HOST:PORT to dial for a TcpNetworkOptions::connect address: the address itself, or the
// HOST:PORT of "net:HOST:PORT~shs:KEY" once KEY parses as a public key. Errc::Config on anything
// else (another multiserver transport or transform, several addresses joined by ';').
PORTCULLIS_EXPORT Result<std::pair<std::string, std::uint16_t>> parseDialAddress(
    std::string_view address);

}  // namespace portcullis
