// shs_bench — the secret handshake and box-stream (portcullis/secret_handshake.h), as the
// `shared-key` provider will run them. Prints one JSON line per figure (bench/README.md, "shs_bench"):
//   shs.handshake_crypto   both sides' state machines of one handshake, in a loop (handshakes/s)
//   shs.handshake_tcp      sequential handshakes over TCP loopback, client and server each on its
//                          own thread, as two processes would run them
//   shs.handshake_tcp_1thread  the same with both ends on one thread
//   secretbox.raw          crypto_secretbox_easy on 4 KiB buffers (MB/s, 1 MB = 10^6 bytes)
//   shs.boxstream_tcp      64 MiB in 4 KiB frames through box-stream channels over TCP loopback,
//                          sender and receiver each on its own thread (MB/s of frame payload)
//   shs.boxstream_tcp_1thread  the same with both ends on one thread
//
// Usage: shs_bench [--figure NAME] [--n N]   (every figure by default; --n scales the count)
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/secret_handshake.h"

namespace {

using namespace portcullis;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

void print(const char* bench, std::size_t n, double value, const char* unit) {
  std::printf(
      "{\"bench\":\"%s\",\"provider\":\"shared-key\",\"impl\":\"portcullis\",\"n\":%zu,"
      "\"value\":%.1f,\"unit\":\"%s\"}\n",
      bench, n, value, unit);
  std::fflush(stdout);
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "shs_bench: %s\n", message.c_str());
  std::exit(1);
}

// A TCP socket as a Stream (the TCP adapter's own stream is internal to it).
class SocketStream final : public Stream {
 public:
  explicit SocketStream(tcp::socket socket) : socket_(std::move(socket)) {
    socket_.set_option(tcp::no_delay(true));
  }
  asio::awaitable<Result<std::size_t>> readSome(std::span<std::uint8_t> buf) override {
    boost::system::error_code ec;
    const std::size_t n = co_await socket_.async_read_some(
        asio::buffer(buf.data(), buf.size()), asio::redirect_error(asio::use_awaitable, ec));
    if (ec || n == 0) co_return Error(Errc::Disconnected, "tcp: " + ec.message());
    co_return n;
  }
  asio::awaitable<Result<void>> write(ByteView bytes) override {
    boost::system::error_code ec;
    co_await asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Error(Errc::Disconnected, "tcp: " + ec.message());
    co_return Result<void>();
  }
  void close() override {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  std::string remoteAddress() const override { return "tcp"; }

 private:
  tcp::socket socket_;
};

struct Keys {
  NetworkKey network = *NetworkKey::parse("1KHLiKZvAvjbY1ziZEHMXawbCEIM6qwjCDm3VYRan/s=");
  DeviceKey client = DeviceKey::generate();
  DeviceKey server = DeviceKey::generate();
};

// (a) Every libsodium call of one handshake, both sides, including the ephemeral keys.
void handshakeCrypto(std::size_t n) {
  Keys k;
  const auto start = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    ShsClient client(k.network, k.client, k.server.publicKey());
    ShsServer server(k.network, k.server);
    if (!server.verifyClientHello(client.hello()) || !client.verifyServerHello(server.hello()) ||
        !server.verifyAuthenticate(client.authenticate())) {
      die("a handshake failed");
    }
    auto accepted = server.accept();
    if (!client.verifyAccept(accepted.message)) die("a handshake failed");
  }
  print("shs.handshake_crypto", n, static_cast<double>(n) / secondsSince(start), "handshakes/s");
}

asio::awaitable<void> serveHandshakes(tcp::acceptor& acceptor, const Keys& k, std::size_t n,
                                      std::size_t& served) {
  const ShsConfig config{k.network, k.server};
  const std::function<bool(const PublicKey&)> anyone = [](const PublicKey&) { return true; };
  for (std::size_t i = 0; i < n; ++i) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    SocketStream stream(std::move(socket));
    auto session = co_await shsServer(stream, config, anyone);
    if (!session) die("server: " + session.error().message());
    ++served;
  }
}

asio::awaitable<void> dialHandshakes(tcp::endpoint endpoint, const Keys& k, std::size_t n,
                                     std::size_t& dialed) {
  const ShsConfig config{k.network, k.client};
  auto executor = co_await asio::this_coro::executor;
  for (std::size_t i = 0; i < n; ++i) {
    tcp::socket socket(executor);
    co_await socket.async_connect(endpoint, asio::use_awaitable);
    SocketStream stream(std::move(socket));
    auto session = co_await shsClient(stream, config, k.server.publicKey());
    if (!session) die("client: " + session.error().message());
    ++dialed;
  }
}

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// (b) Sequential handshakes: connect, handshake both ends, close. The clock stops when both ends
// have finished every handshake.
void handshakeTcp(std::size_t n, bool twoThreads) {
  Keys k;
  asio::io_context serverCtx;
  asio::io_context clientCtx;
  asio::io_context& clientOn = twoThreads ? clientCtx : serverCtx;
  tcp::acceptor acceptor(serverCtx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::size_t served = 0;
  std::size_t dialed = 0;
  const auto start = Clock::now();
  asio::co_spawn(serverCtx, serveHandshakes(acceptor, k, n, served), rethrow);
  asio::co_spawn(clientOn, dialHandshakes(acceptor.local_endpoint(), k, n, dialed), rethrow);
  std::thread client;
  if (twoThreads) client = std::thread([&] { clientCtx.run(); });
  serverCtx.run();
  if (client.joinable()) client.join();
  const double seconds = secondsSince(start);
  if (served != n || dialed != n) die("not every handshake completed");
  print(twoThreads ? "shs.handshake_tcp" : "shs.handshake_tcp_1thread", n,
        static_cast<double>(n) / seconds, "handshakes/s");
}

// (c) The cipher alone.
void secretboxRaw(std::size_t n) {
  constexpr std::size_t kBuffer = 4096;
  std::vector<std::uint8_t> plain(kBuffer, 0x42);
  std::vector<std::uint8_t> boxed(kBuffer + crypto_secretbox_MACBYTES);
  std::uint8_t key[crypto_secretbox_KEYBYTES];
  std::uint8_t nonce[crypto_secretbox_NONCEBYTES] = {};
  randombytes_buf(key, sizeof key);
  const auto start = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    std::memcpy(nonce, &i, sizeof i);
    crypto_secretbox_easy(boxed.data(), plain.data(), plain.size(), nonce, key);
  }
  const double seconds = secondsSince(start);
  sodium_memzero(key, sizeof key);
  print("secretbox.raw", n * kBuffer, static_cast<double>(n * kBuffer) / seconds / 1e6, "MB/s");
}

constexpr std::size_t kFrameBytes = 4096;

asio::awaitable<void> sendFrames(std::unique_ptr<Stream> stream, const Keys& k,
                                 std::size_t frames) {
  const ShsConfig config{k.network, k.client};
  auto session = co_await shsClient(*stream, config, k.server.publicKey());
  if (!session) die("client: " + session.error().message());
  auto channel = makeBoxStreamChannel(std::move(stream), std::move(*session));
  // Handed to the channel 16 at a time, as the Repo's writer hands over a backlog.
  constexpr std::size_t kBatch = 16;
  const Bytes frame(kFrameBytes, 0x5a);
  const std::vector<ByteView> batch(kBatch, ByteView(frame));
  for (std::size_t i = 0; i < frames; i += kBatch) {
    const std::size_t n = std::min(kBatch, frames - i);
    auto sent = co_await channel->sendMany(std::span(batch).first(n));
    if (!sent) die("send: " + sent.error().message());
  }
  // Wait for the receiver's one-byte acknowledgement before closing.
  auto ack = co_await channel->receive();
  if (!ack) die("ack: " + ack.error().message());
}

asio::awaitable<void> receiveFrames(tcp::acceptor& acceptor, const Keys& k, std::size_t frames,
                                    std::optional<Clock::time_point>& started,
                                    double& seconds) {
  tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
  auto stream = std::make_unique<SocketStream>(std::move(socket));
  const ShsConfig config{k.network, k.server};
  const std::function<bool(const PublicKey&)> anyone = [](const PublicKey&) { return true; };
  auto session = co_await shsServer(*stream, config, anyone);
  if (!session) die("server: " + session.error().message());
  auto channel = makeBoxStreamChannel(std::move(stream), std::move(*session));
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < frames; ++i) {
    auto got = co_await channel->receive();
    if (!got) die("receive: " + got.error().message());
    if (i == 0) started = Clock::now();
    bytes += got->size();
  }
  seconds = secondsSince(*started);
  if (bytes != frames * kFrameBytes) die("lost bytes");
  const Bytes ack{1};
  auto sent = co_await channel->send(ack);
  if (!sent) die("ack: " + sent.error().message());
}

// (d) Frames through box-stream channels over TCP, after one handshake. The clock starts when the
// first frame arrives (so the handshake is not counted) and stops at the last one.
void boxStreamTcp(std::size_t frames, bool twoThreads) {
  Keys k;
  asio::io_context receiverCtx;
  asio::io_context senderCtx;
  asio::io_context& senderOn = twoThreads ? senderCtx : receiverCtx;
  tcp::acceptor acceptor(receiverCtx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket socket(senderOn);
  socket.connect(acceptor.local_endpoint());
  std::optional<Clock::time_point> started;
  double seconds = 0;
  asio::co_spawn(receiverCtx, receiveFrames(acceptor, k, frames, started, seconds), rethrow);
  asio::co_spawn(senderOn,
                 sendFrames(std::make_unique<SocketStream>(std::move(socket)), k, frames),
                 rethrow);
  std::thread sender;
  if (twoThreads) sender = std::thread([&] { senderCtx.run(); });
  receiverCtx.run();
  if (sender.joinable()) sender.join();
  // The first frame is not timed: count the others.
  const double bytes = static_cast<double>((frames - 1) * kFrameBytes);
  print(twoThreads ? "shs.boxstream_tcp" : "shs.boxstream_tcp_1thread", frames * kFrameBytes,
        bytes / seconds / 1e6, "MB/s");
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) die("sodium_init failed");
  std::string figure = "all";
  double scale = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--figure" && i + 1 < argc) {
      figure = argv[++i];
    } else if (arg == "--n" && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else {
      die("usage: shs_bench [--figure handshake_crypto|handshake_tcp|handshake_tcp_1thread|"
          "secretbox|boxstream|boxstream_1thread] [--n SCALE]");
    }
  }
  auto count = [&](std::size_t n) { return std::max<std::size_t>(2, n * scale); };
  const std::vector<std::pair<std::string, std::function<void()>>> figures = {
      {"handshake_crypto", [&] { handshakeCrypto(count(2000)); }},
      {"handshake_tcp", [&] { handshakeTcp(count(2000), true); }},
      {"handshake_tcp_1thread", [&] { handshakeTcp(count(2000), false); }},
      {"secretbox", [&] { secretboxRaw(count(200000)); }},
      {"boxstream", [&] { boxStreamTcp(count(16384), true); }},
      {"boxstream_1thread", [&] { boxStreamTcp(count(16384), false); }},
  };
  bool ran = false;
  for (const auto& [name, run] : figures) {
    if (figure != "all" && figure != name) continue;
    run();
    ran = true;
  }
  if (!ran) die("unknown figure '" + figure + "'");
  return 0;
}
