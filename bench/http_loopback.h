// bench/http_loopback.h — the HTTP ends of the online provider's webhook benchmarks: a loopback
// server that answers every request at once with one fixed JSON body, and the cheapest round trip
// a client can make to it (a new connection, one POST, the response read, nothing parsed beyond
// HTTP), which is the floor a webhook call is measured against.
//
// The server runs on a thread and an io_context of its own, as the application's server would be
// another process: a provider's single-threaded io_context that waits for an answer cannot also
// be the one that writes it. postRounds() runs on whatever executor awaits it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "portcullis/asio.h"
// Beast after portcullis/asio.h.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace portcullis::bench {

// A co_spawn completion handler for a benchmark's roots: an exception ends the run, with its
// message on stderr.
inline void exitOnException(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    std::fprintf(stderr, "bench: %s\n", x.what());
  } catch (...) {
    std::fprintf(stderr, "bench: an exception that is not a std::exception\n");
  }
  std::exit(EXIT_FAILURE);
}

namespace loopback {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Reads one request whole, answers 200 with `answer`, closes.
inline asio::awaitable<void> serveOne(tcp::socket socket,
                                      std::shared_ptr<const std::string> answer) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  boost::system::error_code ec;
  co_await http::async_read(stream, buffer, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  http::response<http::string_body> response(http::status::ok, 11);
  response.set(http::field::content_type, "application/json");
  response.keep_alive(false);
  response.body() = *answer;
  response.prepare_payload();
  co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

// Ends when the acceptor is closed; `acceptor` must outlive it (HttpLoopbackServer joins its
// thread before the acceptor goes).
inline asio::awaitable<void> acceptLoop(tcp::acceptor& acceptor,
                                        std::shared_ptr<const std::string> answer) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acceptor.get_executor(), serveOne(std::move(socket), answer), exitOnException);
  }
}

}  // namespace loopback

// Listens on 127.0.0.1 (port 0) from construction to destruction and answers every request with
// 200 and `answer` as application/json, on its own thread. Not copyable or movable.
class HttpLoopbackServer final {
 public:
  explicit HttpLoopbackServer(std::string answer)
      : acceptor_(ctx_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        endpoint_(acceptor_.local_endpoint()) {
    asio::co_spawn(ctx_,
                   loopback::acceptLoop(acceptor_,
                                      std::make_shared<const std::string>(std::move(answer))),
                   exitOnException);
    thread_ = std::thread([this] { ctx_.run(); });
  }
  // Stops accepting, lets the requests in flight finish and joins the thread.
  ~HttpLoopbackServer() {
    asio::post(ctx_, [this] { acceptor_.close(); });
    thread_.join();
  }
  HttpLoopbackServer(const HttpLoopbackServer&) = delete;
  HttpLoopbackServer& operator=(const HttpLoopbackServer&) = delete;

  const asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }
  // "http://127.0.0.1:PORT" followed by `path` (which starts with '/').
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(endpoint_.port()) + std::string(path);
  }

 private:
  asio::io_context ctx_;
  asio::ip::tcp::acceptor acceptor_;
  asio::ip::tcp::endpoint endpoint_;
  std::thread thread_;
};

// The JSON body a webhook login POSTs (providers/online/webhook.h, LoginRequest), keys in the
// order the client writes them; for values that need no JSON escaping.
inline std::string webhookLoginBody(std::string_view appId, std::string_view provider,
                                    std::string_view token, std::string_view peerKey) {
  std::string body = R"({"appId":")";
  body.append(appId).append(R"(","peerKey":")").append(peerKey);
  body.append(R"(","provider":")").append(provider).append(R"(","token":")").append(token);
  body.append("\"}");
  return body;
}

// `n` round trips to `endpoint`, one after another, each as a webhook call makes it: connect
// (TCP_NODELAY), POST `body` as JSON to `target`, read the whole response, close. Returns how
// many answers were not 200; a transport error throws (none is expected on loopback).
inline asio::awaitable<std::size_t> postRounds(asio::ip::tcp::endpoint endpoint,
                                               std::string target, std::string body,
                                               std::size_t n) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  auto executor = co_await asio::this_coro::executor;
  const std::string host = "127.0.0.1:" + std::to_string(endpoint.port());
  std::size_t notOk = 0;
  for (std::size_t i = 0; i < n; ++i) {
    beast::tcp_stream stream(executor);
    co_await stream.async_connect(endpoint, asio::use_awaitable);
    stream.socket().set_option(asio::ip::tcp::no_delay(true));
    http::request<http::string_body> request(http::verb::post, target, 11);
    request.set(http::field::host, host);
    request.set(http::field::content_type, "application/json");
    request.keep_alive(false);
    request.body() = body;
    request.prepare_payload();
    co_await http::async_write(stream, request, asio::use_awaitable);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    co_await http::async_read(stream, buffer, response, asio::use_awaitable);
    if (response.result() != http::status::ok) ++notOk;
  }
  co_return notOk;
}

}  // namespace portcullis::bench
