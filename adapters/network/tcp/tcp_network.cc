#include "tcp_network.h"

#include <algorithm>
#include <charconv>
#include <random>

#include "portcullis/secret_handshake.h"

namespace portcullis {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// Holds the socket by shared_ptr so that a read or write still pending when the stream is closed
// and destroyed completes on a live object (with an error).
class TcpStream final : public Stream {
 public:
  TcpStream(std::shared_ptr<tcp::socket> socket, std::shared_ptr<asio::steady_timer> onClose,
            std::string dialed = {})
      : socket_(std::move(socket)), onClose_(std::move(onClose)), dialed_(std::move(dialed)) {
    boost::system::error_code ec;
    auto peer = socket_->remote_endpoint(ec);
    remote_ = ec ? "tcp:?" : peer.address().to_string() + ":" + std::to_string(peer.port());
  }
  ~TcpStream() override { close(); }

  asio::awaitable<Result<std::size_t>> readSome(std::span<std::uint8_t> buf) override {
    auto socket = socket_;
    boost::system::error_code ec;
    const std::size_t n = co_await socket->async_read_some(
        asio::buffer(buf.data(), buf.size()), asio::redirect_error(asio::use_awaitable, ec));
    if (ec || n == 0) co_return Error(Errc::Disconnected, "tcp: " + (ec ? ec.message() : "closed"));
    co_return n;
  }

  asio::awaitable<Result<void>> write(ByteView bytes) override {
    auto socket = socket_;
    boost::system::error_code ec;
    co_await asio::async_write(*socket, asio::buffer(bytes.data(), bytes.size()),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Error(Errc::Disconnected, "tcp: " + ec.message());
    co_return Result<void>();
  }

  void close() override {
    boost::system::error_code ignored;
    socket_->shutdown(tcp::socket::shutdown_both, ignored);
    socket_->close(ignored);
    if (onClose_) onClose_->cancel();  // wakes the dialer that made this connection
  }

  std::string remoteAddress() const override { return remote_; }
  std::string dialedAddress() const override { return dialed_; }

 private:
  std::shared_ptr<tcp::socket> socket_;
  std::shared_ptr<asio::steady_timer> onClose_;
  std::string remote_;
  std::string dialed_;
};

constexpr const char* kHostPortExample = " (e.g. 127.0.0.1:7420 or [::1]:7420)";

asio::awaitable<void> sleepOn(asio::steady_timer& timer, Clock::duration d) {
  timer.expires_after(d);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace

struct TcpNetworkAdapter::State : std::enable_shared_from_this<State> {
  struct Dial {
    std::string address;  // as configured, for Stream::dialedAddress()
    std::string host;
    std::uint16_t port = 0;
    std::shared_ptr<asio::steady_timer> wait;    // backoff, or a connection's lifetime
    std::shared_ptr<tcp::socket> connecting;
  };

  asio::any_io_executor executor;
  TcpNetworkOptions options;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::shared_ptr<Dial>> dials;
  ConnectionSink sink;
  bool stopped = false;
  std::minstd_rand jitter{std::random_device{}()};

  void spawn(asio::awaitable<void> task) {
    // Expected failures come back as error codes; anything thrown is a bug, and it surfaces
    // from the io_context's run().
    asio::co_spawn(executor, std::move(task), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  }

  void report(const TcpDialEvent& event) {
    if (!stopped && options.onDial) options.onDial(event);
  }

  static TcpDialEvent dialEvent(TcpDialEvent::Kind kind, const Dial& dial) {
    TcpDialEvent event;
    event.kind = kind;
    event.address = dial.address;
    return event;
  }

  static asio::awaitable<void> acceptLoop(std::shared_ptr<State> self, std::size_t index);
  static asio::awaitable<void> dialLoop(std::shared_ptr<State> self, std::shared_ptr<Dial> dial);
};

asio::awaitable<void> TcpNetworkAdapter::State::acceptLoop(std::shared_ptr<State> self,
                                                           std::size_t index) {
  tcp::acceptor& acceptor = *self->acceptors[index];
  asio::steady_timer pause(self->executor);
  while (!self->stopped) {
    auto socket = std::make_shared<tcp::socket>(self->executor);
    boost::system::error_code ec;
    co_await acceptor.async_accept(*socket, asio::redirect_error(asio::use_awaitable, ec));
    if (self->stopped || ec == asio::error::operation_aborted) break;
    if (ec) {
      // Out of file descriptors and the like: try again shortly rather than spin.
      co_await sleepOn(pause, std::chrono::milliseconds(50));
      continue;
    }
    socket->set_option(tcp::no_delay(true), ec);
    if (self->sink) self->sink(std::make_unique<TcpStream>(socket, nullptr), Side::Acceptor);
  }
}

asio::awaitable<void> TcpNetworkAdapter::State::dialLoop(std::shared_ptr<State> self,
                                                         std::shared_ptr<Dial> dial) {
  auto backoff = self->options.minBackoff;
  unsigned failures = 0;  // in a row
  tcp::resolver resolver(self->executor);
  // (No temporaries with destructors inside co_await expressions: g++ 12 destroys them twice.)
  const std::string port = std::to_string(dial->port);
  const std::string hostPort = (dial->host.find(':') == std::string::npos
                                    ? dial->host
                                    : "[" + dial->host + "]") + ":" + port;
  while (!self->stopped) {
    boost::system::error_code ec;
    std::string failure;
    auto endpoints = co_await resolver.async_resolve(
        dial->host, port, asio::redirect_error(asio::use_awaitable, ec));
    if (self->stopped) break;
    if (ec) {
      failure = "cannot resolve " + dial->host + ": " + ec.message();
    } else {
      dial->connecting = std::make_shared<tcp::socket>(self->executor);
      // The deadline closes the socket, which fails the connect.
      auto timedOut = std::make_shared<bool>(false);
      auto deadline = std::make_shared<asio::steady_timer>(self->executor,
                                                           self->options.connectTimeout);
      deadline->async_wait([socket = dial->connecting, timedOut](boost::system::error_code waitEc) {
        if (!waitEc) {
          *timedOut = true;
          boost::system::error_code ignored;
          socket->close(ignored);
        }
      });
      co_await asio::async_connect(*dial->connecting, endpoints,
                                   asio::redirect_error(asio::use_awaitable, ec));
      deadline->cancel();
      auto socket = std::move(dial->connecting);
      if (self->stopped || !self->sink) break;
      if (*timedOut) {
        ec = asio::error::timed_out;
        failure = "cannot connect to " + hostPort + ": no answer within " +
                  std::to_string(self->options.connectTimeout.count()) + " ms";
      } else if (ec) {
        failure = "cannot connect to " + hostPort + ": " + ec.message();
      } else {
        boost::system::error_code ignored;
        socket->set_option(tcp::no_delay(true), ignored);
        backoff = self->options.minBackoff;
        failures = 0;
        // Lives as long as the connection: the stream cancels it when it closes.
        dial->wait = std::make_shared<asio::steady_timer>(self->executor, Clock::time_point::max());
        self->report(dialEvent(TcpDialEvent::Kind::Connected, *dial));
        if (self->stopped || !self->sink) break;
        self->sink(std::make_unique<TcpStream>(socket, dial->wait, dial->address), Side::Dialer);
        boost::system::error_code waitEc;
        co_await dial->wait->async_wait(asio::redirect_error(asio::use_awaitable, waitEc));
      }
    }
    if (self->stopped) break;
    std::uniform_int_distribution<long> spread(0, backoff.count() / 2);
    const auto delay = backoff + std::chrono::milliseconds(spread(self->jitter));
    if (failure.empty()) {
      TcpDialEvent closed = dialEvent(TcpDialEvent::Kind::Closed, *dial);
      closed.retryIn = delay;
      self->report(closed);
    } else {
      TcpDialEvent failed = dialEvent(TcpDialEvent::Kind::Failed, *dial);
      failed.error = std::move(failure);
      failed.code = ec;
      failed.failures = ++failures;
      failed.retryIn = delay;
      self->report(failed);
    }
    if (self->stopped) break;  // the report may have stopped the adapter
    dial->wait = std::make_shared<asio::steady_timer>(self->executor);
    co_await sleepOn(*dial->wait, delay);
    backoff = std::min(backoff * 2, self->options.maxBackoff);
  }
}

Result<std::pair<std::string, std::uint16_t>> parseHostPort(std::string_view address) {
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size()) {
    return Error(Errc::Config, "'" + std::string(address) + "' is not HOST:PORT" + kHostPortExample);
  }
  std::string_view host = address.substr(0, colon);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string_view portText = address.substr(colon + 1);
  unsigned port = 0;
  auto [end, err] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (err != std::errc() || end != portText.data() + portText.size() || port > 65535 ||
      host.empty()) {
    return Error(Errc::Config, "'" + std::string(address) + "' is not HOST:PORT" + kHostPortExample);
  }
  return std::make_pair(std::string(host), static_cast<std::uint16_t>(port));
}

Result<std::pair<std::string, std::uint16_t>> parseDialAddress(std::string_view address) {
  constexpr std::string_view kNet = "net:";
  constexpr std::string_view kShs = "~shs:";
  if (!address.starts_with(kNet)) return parseHostPort(address);
  const auto transform = address.find(kShs);
  const auto bad = [&](std::string_view why) {
    return Error(Errc::Config, "'" + std::string(address) + "' is not net:HOST:PORT~shs:KEY (" +
                                   std::string(why) + ")");
  };
  if (address.find(';') != std::string_view::npos) return bad("one address only");
  if (transform == std::string_view::npos) return bad("no ~shs:KEY");
  if (auto key = PublicKey::parse(address.substr(transform + kShs.size())); !key) {
    return bad("KEY: " + key.error().message());
  }
  auto hostPort = parseHostPort(address.substr(kNet.size(), transform - kNet.size()));
  if (!hostPort) return bad("HOST:PORT");
  return hostPort;
}

Result<std::shared_ptr<TcpNetworkAdapter>> TcpNetworkAdapter::create(asio::any_io_executor executor,
                                                                     TcpNetworkOptions options) {
  if (options.minBackoff.count() <= 0 || options.maxBackoff < options.minBackoff) {
    return Error(Errc::Config, "tcp: backoff must be positive, min <= max");
  }
  auto state = std::make_shared<State>();
  state->executor = executor;
  for (const std::string& address : options.listen) {
    auto hostPort = parseHostPort(address);
    if (!hostPort) return std::move(hostPort).error();
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(hostPort->first, ec);
    if (ec) {
      return Error(Errc::Config, "'" + address + "' is not an IP address and port (listen on "
                                 "e.g. 127.0.0.1:7420, or 0.0.0.0:7420 for every interface)");
    }
    auto acceptor = std::make_unique<tcp::acceptor>(executor);
    const tcp::endpoint endpoint(ip, hostPort->second);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Error(Errc::Io, "cannot listen on " + address + ": " + ec.message());
    state->acceptors.push_back(std::move(acceptor));
  }
  for (const std::string& address : options.connect) {
    auto hostPort = parseDialAddress(address);
    if (!hostPort) return std::move(hostPort).error();
    auto dial = std::make_shared<State::Dial>();
    dial->address = address;
    dial->host = hostPort->first;
    dial->port = hostPort->second;
    state->dials.push_back(std::move(dial));
  }
  state->options = std::move(options);
  return std::shared_ptr<TcpNetworkAdapter>(new TcpNetworkAdapter(std::move(state)));
}

TcpNetworkAdapter::~TcpNetworkAdapter() { stop(); }

void TcpNetworkAdapter::start(ConnectionSink sink) {
  state_->sink = std::move(sink);
  for (std::size_t i = 0; i < state_->acceptors.size(); ++i) {
    state_->spawn(State::acceptLoop(state_, i));
  }
  for (auto& dial : state_->dials) state_->spawn(State::dialLoop(state_, dial));
}

void TcpNetworkAdapter::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  state_->sink = nullptr;
  boost::system::error_code ignored;
  for (auto& acceptor : state_->acceptors) acceptor->close(ignored);
  for (auto& dial : state_->dials) {
    if (dial->wait) dial->wait->cancel();
    if (dial->connecting) dial->connecting->close(ignored);
  }
}

std::vector<tcp::endpoint> TcpNetworkAdapter::listeningOn() const {
  std::vector<tcp::endpoint> out;
  for (const auto& acceptor : state_->acceptors) {
    boost::system::error_code ec;
    out.push_back(acceptor->local_endpoint(ec));
  }
  return out;
}

}  // namespace portcullis
