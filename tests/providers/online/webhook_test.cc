// The online provider's webhook client against a real HTTP and HTTPS server on loopback (run on
// the test's own io_context, one thread): what it sends, each way a webhook can fail (every one
// Denied, with a reason and without the token), the cache, TLS verification against a CA the
// test makes with OpenSSL, and the checks of create() and parseWebhookAnswer().

#include "webhook.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/ids.h"
#include "time_scale.h"
// Asio's TLS and Beast after portcullis/asio.h.
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace portcullis::online {
namespace {

using namespace std::chrono_literals;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using portcullis::testing::scaledBound;

// Distinctive, so that a message quoting it is easy to catch.
const std::string kToken = "tok-S3CRET-5f1c9a7e2d4b";
const std::string kPeerKey = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";

LoginRequest login(std::string token = kToken, std::string peerKey = kPeerKey) {
  return LoginRequest{.appId = "app-7",
                      .provider = "acme-sso",
                      .token = std::move(token),
                      .peerKey = std::move(peerKey)};
}

const std::string kAllowBody =
    R"({"authenticate":true,"userID":"alice","expirationSeconds":3600,"roles":["reader"],)"
    R"("permissions":{"read":["*"],"write":[]},"clientInfo":{"plan":"pro","seats":3},)"
    R"("futureField":1})";

std::string response(int status, std::string_view reason, std::string_view body,
                     std::string_view extraHeaders = "") {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Connection: close\r\n{}\r\n{}",
      status, reason, body.size(), extraHeaders, body);
}

// A valid allowing answer padded past `bytes`.
std::string paddedAllow(std::size_t bytes) {
  return R"({"authenticate":true,"userId":"alice","expirationSeconds":60,"pad":")" +
         std::string(bytes, 'x') + "\"}";
}

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// What the server saw of one request.
struct Seen {
  http::verb method{};
  std::string path;
  std::string host;
  std::string contentType;
  Json body;  // discarded when not JSON
};

// An HTTP(S) server on 127.0.0.1, port 0, that answers by the request's path (see answer()).
// Runs on the test's io_context; must be destroyed before it.
class TestServer {
 public:
  explicit TestServer(asio::io_context& ctx, asio::ssl::context* tls = nullptr)
      : ctx_(ctx),
        tls_(tls),
        acceptor_(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(ctx_, acceptLoop(), rethrow);
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url(std::string_view path) const {
    return fmt::format("{}://127.0.0.1:{}{}", tls_ ? "https" : "http", port(), path);
  }
  const std::vector<Seen>& seen() const { return seen_; }
  std::size_t count(std::string_view path) const {
    return static_cast<std::size_t>(
        std::count_if(seen_.begin(), seen_.end(), [&](const Seen& s) { return s.path == path; }));
  }
  std::size_t failedHandshakes() const { return failedHandshakes_; }

 private:
  asio::awaitable<void> acceptLoop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      asio::co_spawn(ctx_, serve(std::move(socket)), rethrow);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    if (tls_ == nullptr) {
      co_await handle(socket);
      co_return;
    }
    asio::ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
    boost::system::error_code ec;
    co_await stream.async_handshake(asio::ssl::stream_base::server,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      ++failedHandshakes_;
      co_return;
    }
    co_await handle(stream);
  }

  template <typename Stream>
  asio::awaitable<void> handle(Stream& stream) {
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    boost::system::error_code ec;
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    const auto& request = parser.get();
    Seen seen{.method = request.method(),
              .path = std::string(request.target()),
              .host = std::string(request[http::field::host]),
              .contentType = std::string(request[http::field::content_type]),
              .body = Json::parse(request.body(), nullptr, false)};
    const std::string path = seen.path;
    seen_.push_back(std::move(seen));

    if (path == "/close") co_return;
    if (path == "/slow") {
      asio::steady_timer wait(ctx_, 10s);  // far past the client's timeout; ends with the test
      co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    const std::string reply = answer(path);
    co_await asio::async_write(stream, asio::buffer(reply),
                               asio::redirect_error(asio::use_awaitable, ec));
  }

  static std::string answer(const std::string& path) {
    if (path == "/allow" || path == "/slow") return response(200, "OK", kAllowBody);
    if (path == "/allow-short") {
      return response(200, "OK", R"({"authenticate":true,"userId":"bob","expirationSeconds":2})");
    }
    if (path == "/deny") return response(200, "OK", R"({"authenticate":false})");
    // The refusals quote the token back: none of it may reach the client's message.
    if (path == "/500")
      return response(500, "Internal Server Error", "{\"bad\":\"" + kToken + "\"}");
    if (path == "/garbage") return response(200, "OK", "<html>token " + kToken + "</html>");
    if (path == "/userid-token") {
      return response(
          200, "OK",
          R"({"authenticate":true,"expirationSeconds":60,"userId":")" + kToken + R"(\n"})");
    }
    if (path == "/wrongtypes") {
      return response(200, "OK", R"({"authenticate":true,"userId":42,"expirationSeconds":"3600"})");
    }
    if (path == "/oversized") return response(200, "OK", paddedAllow(64 * 1024 + 100));
    if (path == "/oversized-length") {
      return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
             "Content-Length: 99999999999\r\n\r\n{\"authenticate\":";
    }
    if (path == "/oversized-chunked") {
      std::string out =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          "Transfer-Encoding: chunked\r\n\r\n";
      for (int i = 0; i < 17; ++i) out += "1000\r\n" + std::string(4096, ' ') + "\r\n";
      return out + "0\r\n\r\n";
    }
    if (path == "/big-headers") {
      return response(200, "OK", kAllowBody, "X-Pad: " + std::string(9000, 'p') + "\r\n");
    }
    if (path == "/redirect") {
      return response(302, "Found", "", "Location: /allow?token=" + kToken + "\r\n");
    }
    return response(404, "Not Found", "");
  }

  asio::io_context& ctx_;
  asio::ssl::context* tls_;
  tcp::acceptor acceptor_;
  std::vector<Seen> seen_;
  std::size_t failedHandshakes_ = 0;
};

template <typename T>
asio::awaitable<void> into(asio::awaitable<T> task, std::shared_ptr<std::optional<T>> out) {
  T got = co_await std::move(task);
  out->emplace(std::move(got));
}

// Runs one verify() to its end (bounded) on `ctx`.
Result<WebhookAnswer> run(asio::io_context& ctx, WebhookClient& client, LoginRequest request,
                          std::chrono::milliseconds* took = nullptr) {
  auto out = std::make_shared<std::optional<Result<WebhookAnswer>>>();
  const auto start = Clock::now();
  asio::co_spawn(ctx, into(client.verify(std::move(request)), out), rethrow);
  const auto limit = start + 30s;
  while (!out->has_value() && Clock::now() < limit) {
    if (ctx.stopped()) ctx.restart();
    ctx.run_one_for(20ms);
  }
  if (took) *took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  if (!out->has_value()) return Error(Errc::Io, "the test's verify() did not complete in 30 s");
  return std::move(**out);
}

// Denied, saying `why`, and never quoting the token.
void expectDenied(const Result<WebhookAnswer>& result, std::string_view why) {
  ASSERT_FALSE(result.has_value()) << "expected a denial saying: " << why;
  EXPECT_EQ(result.error().code(), Errc::Denied) << result.error().message();
  EXPECT_NE(result.error().message().find(why), std::string::npos) << result.error().message();
  EXPECT_EQ(result.error().message().find(kToken), std::string::npos)
      << "the token is in: " << result.error().message();
  EXPECT_EQ(result.error().message().find("S3CRET"), std::string::npos);
}

class WebhookClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<WebhookClient> client(WebhookOptions options) {
    auto made = WebhookClient::create(ctx.get_executor(), std::move(options));
    EXPECT_TRUE(made.has_value()) << made.error().message();
    return made ? std::move(*made) : nullptr;
  }
  std::unique_ptr<WebhookClient> client(std::string_view path) {
    return client(WebhookOptions{.url = server.url(path)});
  }
  Result<WebhookAnswer> verifyAt(std::string_view path, LoginRequest request = login()) {
    auto c = client(path);
    if (!c) return Error(Errc::Config, "no client");
    return run(ctx, *c, std::move(request));
  }

  asio::io_context ctx;  // first: outlives the server and the clients
  TestServer server{ctx};
};

TEST_F(WebhookClientTest, PostsTheLoginAsJsonAndReturnsTheAllowingAnswer) {
  auto answer = verifyAt("/allow");
  ASSERT_TRUE(answer.has_value()) << answer.error().message();
  EXPECT_TRUE(answer->authenticate);
  EXPECT_EQ(answer->userId, "alice");
  EXPECT_EQ(answer->expirationSeconds, 3600);
  EXPECT_EQ(answer->roles, std::vector<std::string>{"reader"});
  EXPECT_EQ(answer->permissions.read, std::vector<std::string>{"*"});
  EXPECT_TRUE(answer->permissions.write.empty());
  EXPECT_EQ(answer->clientInfo, R"({"plan":"pro","seats":3})");

  ASSERT_EQ(server.seen().size(), 1u);
  const Seen& seen = server.seen().front();
  EXPECT_EQ(seen.method, http::verb::post);
  EXPECT_EQ(seen.path, "/allow");
  EXPECT_EQ(seen.host, fmt::format("127.0.0.1:{}", server.port()));
  EXPECT_EQ(seen.contentType, "application/json");
  const Json expected = {
      {"appId", "app-7"}, {"provider", "acme-sso"}, {"token", kToken}, {"peerKey", kPeerKey}};
  EXPECT_EQ(seen.body, expected);
}

TEST_F(WebhookClientTest, ReturnsADenyingAnswerAsAnAnswer) {
  auto answer = verifyAt("/deny");
  ASSERT_TRUE(answer.has_value()) << answer.error().message();
  EXPECT_FALSE(answer->authenticate);
  EXPECT_EQ(server.count("/deny"), 1u);
}

TEST_F(WebhookClientTest, CutsASlowServerAtTheTimeout) {
  auto c = client(WebhookOptions{.url = server.url("/slow"), .timeout = 300ms});
  ASSERT_TRUE(c);
  std::chrono::milliseconds took{};
  auto answer = run(ctx, *c, login(), &took);
  expectDenied(answer, "timed out reading the answer");
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, scaledBound(300ms + 700ms)) << "the call ended long after its timeout";
  EXPECT_EQ(server.count("/slow"), 1u);
}

TEST_F(WebhookClientTest, DeniesOnAServerError) {
  expectDenied(verifyAt("/500"), "HTTP status 500");
}

TEST_F(WebhookClientTest, DeniesAnAnswerThatIsNotJson) {
  expectDenied(verifyAt("/garbage"), "not one JSON value");
}

TEST_F(WebhookClientTest, DeniesAnAnswerWithWrongTypes) {
  expectDenied(verifyAt("/wrongtypes"), "userId: not a string");
}

TEST_F(WebhookClientTest, NeverQuotesAnAnswerFieldThatHoldsTheToken) {
  expectDenied(verifyAt("/userid-token"), "userId: not printable ASCII");
}

TEST_F(WebhookClientTest, DeniesABodyOverTheLimit) {
  expectDenied(verifyAt("/oversized"), "body over the limit of 65536 bytes");
  expectDenied(verifyAt("/oversized-chunked"), "body over the limit of 65536 bytes");
}

TEST_F(WebhookClientTest, DeniesAHugeContentLengthWithoutWaitingForTheBody) {
  auto c = client(WebhookOptions{.url = server.url("/oversized-length"), .timeout = 5s});
  ASSERT_TRUE(c);
  std::chrono::milliseconds took{};
  expectDenied(run(ctx, *c, login(), &took), "body over the limit of 65536 bytes");
  EXPECT_LT(took, scaledBound(std::chrono::milliseconds(2s)));
}

TEST_F(WebhookClientTest, DeniesHeadersOverTheLimit) {
  expectDenied(verifyAt("/big-headers"), "headers over the limit of 8192 bytes");
}

TEST_F(WebhookClientTest, DoesNotFollowARedirect) {
  expectDenied(verifyAt("/redirect"), "HTTP status 302");
  expectDenied(verifyAt("/redirect"), "redirect not followed");
  EXPECT_EQ(server.count("/redirect"), 2u);
  EXPECT_EQ(server.count("/allow"), 0u) << "the redirect was followed";
}

TEST_F(WebhookClientTest, DeniesWhenTheServerClosesWithoutAnswering) {
  expectDenied(verifyAt("/close"), "closed the connection before a complete answer");
}

TEST_F(WebhookClientTest, DeniesAnUnknownPath) {
  expectDenied(verifyAt("/nowhere"), "HTTP status 404");
}

TEST_F(WebhookClientTest, FailsFastOnARefusedPort) {
  std::uint16_t port = 0;
  {
    tcp::acceptor closed(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = closed.local_endpoint().port();
  }
  auto c =
      client(WebhookOptions{.url = fmt::format("http://127.0.0.1:{}/allow", port), .timeout = 5s});
  ASSERT_TRUE(c);
  std::chrono::milliseconds took{};
  auto answer = run(ctx, *c, login(), &took);
  expectDenied(answer, "cannot connect to 127.0.0.1");
  expectDenied(answer, "refused");
  EXPECT_LT(took, scaledBound(std::chrono::milliseconds(1s)));
}

TEST_F(WebhookClientTest, FailsOnAnUnresolvableHost) {
  auto c = client(WebhookOptions{.url = "http://nonexistent.invalid/allow", .timeout = 3s});
  ASSERT_TRUE(c);
  auto answer = run(ctx, *c, login());
  ASSERT_FALSE(answer.has_value());
  // Without DNS the lookup may time out rather than fail; either way it is denied.
  const std::string& message = answer.error().message();
  EXPECT_EQ(answer.error().code(), Errc::Denied);
  EXPECT_TRUE(message.find("cannot resolve nonexistent.invalid") != std::string::npos ||
              message.find("timed out resolving") != std::string::npos)
      << message;
  EXPECT_EQ(message.find(kToken), std::string::npos);
  EXPECT_EQ(c->requestsSent(), 1u);
}

TEST_F(WebhookClientTest, DeniesALoginThatIsNotUtf8WithoutSendingIt) {
  auto c = client("/allow");
  ASSERT_TRUE(c);
  expectDenied(run(ctx, *c, login("tok\xff\xfe")), "token is not UTF-8");
  EXPECT_EQ(c->requestsSent(), 0u);
  EXPECT_TRUE(server.seen().empty());
}

// --- the cache -----------------------------------------------------------------------------------

TEST_F(WebhookClientTest, SendsAnIdenticalLoginWithinTheCacheTimeOnce) {
  auto c = client(WebhookOptions{.url = server.url("/allow"), .cacheTime = 60s});
  ASSERT_TRUE(c);
  auto first = run(ctx, *c, login());
  auto second = run(ctx, *c, login());
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_EQ(c->requestsSent(), 1u);
  EXPECT_EQ(server.count("/allow"), 1u);
  EXPECT_EQ(second->userId, first->userId);
  EXPECT_EQ(second->clientInfo, first->clientInfo);
  // Time in the cache comes off what the service granted (rounded up).
  EXPECT_LE(second->expirationSeconds, first->expirationSeconds);
  EXPECT_GE(second->expirationSeconds, first->expirationSeconds - 1);

  ASSERT_TRUE(run(ctx, *c, login("another-token")).has_value());
  EXPECT_EQ(c->requestsSent(), 2u);
  ASSERT_TRUE(run(ctx, *c, login(kToken, std::string(64, 'b'))).has_value());
  EXPECT_EQ(c->requestsSent(), 3u);
  LoginRequest otherProvider = login();
  otherProvider.provider = "other-sso";
  ASSERT_TRUE(run(ctx, *c, otherProvider).has_value());
  EXPECT_EQ(c->requestsSent(), 4u);
  ASSERT_TRUE(run(ctx, *c, login()).has_value());
  EXPECT_EQ(c->requestsSent(), 4u);
  EXPECT_EQ(server.count("/allow"), 4u);
}

TEST_F(WebhookClientTest, SendsEveryLoginWithoutACache) {
  auto c = client(WebhookOptions{.url = server.url("/allow"), .cacheTime = 0s});
  ASSERT_TRUE(c);
  ASSERT_TRUE(run(ctx, *c, login()).has_value());
  ASSERT_TRUE(run(ctx, *c, login()).has_value());
  EXPECT_EQ(c->requestsSent(), 2u);
  EXPECT_EQ(server.count("/allow"), 2u);
}

TEST_F(WebhookClientTest, CachesADenialButNotAFailure) {
  auto deny = client(WebhookOptions{.url = server.url("/deny"), .cacheTime = 60s});
  ASSERT_TRUE(deny);
  ASSERT_TRUE(run(ctx, *deny, login()).has_value());
  auto again = run(ctx, *deny, login());
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->authenticate);
  EXPECT_EQ(deny->requestsSent(), 1u);

  auto failing = client(WebhookOptions{.url = server.url("/500"), .cacheTime = 60s});
  ASSERT_TRUE(failing);
  expectDenied(run(ctx, *failing, login()), "HTTP status 500");
  expectDenied(run(ctx, *failing, login()), "HTTP status 500");
  EXPECT_EQ(failing->requestsSent(), 2u);
  EXPECT_EQ(server.count("/500"), 2u);

  auto malformed = client(WebhookOptions{.url = server.url("/wrongtypes"), .cacheTime = 60s});
  ASSERT_TRUE(malformed);
  expectDenied(run(ctx, *malformed, login()), "userId");
  expectDenied(run(ctx, *malformed, login()), "userId");
  EXPECT_EQ(malformed->requestsSent(), 2u);
}

TEST_F(WebhookClientTest, KeepsAnAnswerNoLongerThanItsExpiration) {
  // The answer grants 2 s; the cache would keep it for 60.
  auto c = client(WebhookOptions{.url = server.url("/allow-short"), .cacheTime = 60s});
  ASSERT_TRUE(c);
  auto first = run(ctx, *c, login());
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->expirationSeconds, 2);
  auto cached = run(ctx, *c, login());
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(c->requestsSent(), 1u);
  EXPECT_EQ(cached->expirationSeconds, 1);
  std::this_thread::sleep_for(1100ms);  // past 1 s in the cache: under a second would be left
  ASSERT_TRUE(run(ctx, *c, login()).has_value());
  EXPECT_EQ(c->requestsSent(), 2u);
}

TEST_F(WebhookClientTest, EvictsTheOldestAnswerWhenTheCacheIsFull) {
  auto c = client(WebhookOptions{.url = server.url("/allow"), .cacheTime = 60s, .cacheEntries = 2});
  ASSERT_TRUE(c);
  for (const char* token : {"token-a", "token-b", "token-c"}) {
    ASSERT_TRUE(run(ctx, *c, login(token)).has_value());
  }
  EXPECT_EQ(c->requestsSent(), 3u);
  ASSERT_TRUE(run(ctx, *c, login("token-c")).has_value());
  EXPECT_EQ(c->requestsSent(), 3u);
  ASSERT_TRUE(run(ctx, *c, login("token-a")).has_value());  // evicted by token-c
  EXPECT_EQ(c->requestsSent(), 4u);
}

// --- HTTPS ---------------------------------------------------------------------------------------

struct Pkey {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{EVP_EC_gen("P-256"), &EVP_PKEY_free};
};
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

void addExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
  ASSERT_NE(extension, nullptr) << value;
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
}

// A certificate for `key` named `cn`: a CA's (self-signed when issuer is null) or a server's with
// the subjectAltName `san`.
X509Ptr certificate(const char* cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuerKey,
                    const char* san) {
  static long serial = 1;
  X509Ptr cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (san == nullptr) {
    addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    addExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    addExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  } else {
    addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    addExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    addExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    addExtension(cert.get(), signer, NID_subject_alt_name, san);
    addExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  }
  EXPECT_GT(X509_sign(cert.get(), issuerKey, EVP_sha256()), 0);
  return cert;
}

template <typename Write>
std::string pemOf(Write write) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  EXPECT_EQ(write(bio.get()), 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}
std::string pem(X509* cert) {
  return pemOf([cert](BIO* b) { return PEM_write_bio_X509(b, cert); });
}
std::string pem(EVP_PKEY* key) {
  return pemOf([key](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

class WebhookClientTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "portcullis-webhook-test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir = pattern;
    X509Ptr ca =
        certificate("portcullis test CA", caKey.key.get(), nullptr, caKey.key.get(), nullptr);
    X509Ptr other =
        certificate("another CA", otherKey.key.get(), nullptr, otherKey.key.get(), nullptr);
    X509Ptr leaf = certificate("127.0.0.1", serverKey.key.get(), ca.get(), caKey.key.get(),
                               "IP:127.0.0.1,DNS:localhost");
    X509Ptr misnamed =
        certificate("other.test", serverKey.key.get(), ca.get(), caKey.key.get(), "DNS:other.test");
    std::ofstream(dir / "ca.pem") << pem(ca.get());
    std::ofstream(dir / "other-ca.pem") << pem(other.get());
    serverPem = pem(leaf.get());
    misnamedPem = pem(misnamed.get());
    keyPem = pem(serverKey.key.get());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  // A TLS server context presenting `certPem`.
  std::unique_ptr<asio::ssl::context> serverTls(const std::string& certPem) const {
    auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls->use_certificate_chain(asio::buffer(certPem));
    tls->use_private_key(asio::buffer(keyPem), asio::ssl::context::pem);
    return tls;
  }

  Result<WebhookAnswer> verifyWith(const TestServer& server, std::optional<fs::path> caFile,
                                   std::string url = "") {
    auto made = WebhookClient::create(
        ctx.get_executor(),
        WebhookOptions{.url = url.empty() ? server.url("/allow") : url, .caFile = caFile});
    if (!made) return std::move(made).error();
    return run(ctx, **made, login());
  }

  Pkey caKey, otherKey, serverKey;
  fs::path dir;
  std::string serverPem, misnamedPem, keyPem;
  asio::io_context ctx;
};

TEST_F(WebhookClientTlsTest, VerifiesTheServerAgainstTheConfiguredCa) {
  auto tls = serverTls(serverPem);
  TestServer server(ctx, tls.get());
  auto byAddress = verifyWith(server, dir / "ca.pem");
  ASSERT_TRUE(byAddress.has_value()) << byAddress.error().message();
  EXPECT_EQ(byAddress->userId, "alice");
  // By name: SNI and the DNS name in the certificate.
  auto byName =
      verifyWith(server, dir / "ca.pem", fmt::format("https://localhost:{}/allow", server.port()));
  ASSERT_TRUE(byName.has_value()) << byName.error().message();
  EXPECT_EQ(server.count("/allow"), 2u);
  ASSERT_EQ(server.seen().size(), 2u);
  EXPECT_EQ(server.seen()[0].body.value("token", ""), kToken);
}

TEST_F(WebhookClientTlsTest, RefusesAServerTheSystemStoreDoesNotKnow) {
  auto tls = serverTls(serverPem);
  TestServer server(ctx, tls.get());
  expectDenied(verifyWith(server, std::nullopt), "certificate verify failed");
  EXPECT_TRUE(server.seen().empty()) << "the login was sent to an unverified server";
}

TEST_F(WebhookClientTlsTest, RefusesAServerSignedByAnotherCa) {
  auto tls = serverTls(serverPem);
  TestServer server(ctx, tls.get());
  expectDenied(verifyWith(server, dir / "other-ca.pem"), "certificate verify failed");
  EXPECT_TRUE(server.seen().empty());
}

TEST_F(WebhookClientTlsTest, RefusesACertificateForAnotherName) {
  auto tls = serverTls(misnamedPem);
  TestServer server(ctx, tls.get());
  expectDenied(verifyWith(server, dir / "ca.pem"), "IP address mismatch");
  expectDenied(
      verifyWith(server, dir / "ca.pem", fmt::format("https://localhost:{}/allow", server.port())),
      "hostname mismatch");
  EXPECT_TRUE(server.seen().empty());
}

TEST_F(WebhookClientTlsTest, CutsASilentServerAtTheTimeoutOfTheHandshake) {
  // Accepts the connection and never says a word.
  tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::optional<tcp::socket> held;
  acceptor.async_accept([&](const boost::system::error_code& ec, tcp::socket socket) {
    if (!ec) held.emplace(std::move(socket));
  });
  auto made = WebhookClient::create(
      ctx.get_executor(), WebhookOptions{.url = fmt::format("https://127.0.0.1:{}/allow",
                                                            acceptor.local_endpoint().port()),
                                         .timeout = 300ms,
                                         .caFile = dir / "ca.pem"});
  ASSERT_TRUE(made.has_value()) << made.error().message();
  std::chrono::milliseconds took{};
  expectDenied(run(ctx, **made, login(), &took), "timed out in the TLS handshake");
  EXPECT_TRUE(held.has_value());
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, scaledBound(300ms + 700ms));
}

TEST_F(WebhookClientTlsTest, RefusesACaFileThatDoesNotLoad) {
  std::ofstream(dir / "garbage.pem") << "-----BEGIN CERTIFICATE-----\nnot base64\n";
  std::ofstream(dir / "empty.pem");
  std::ofstream(dir / "key-only.pem") << keyPem;
  for (const char* name : {"missing.pem", "garbage.pem", "empty.pem", "key-only.pem"}) {
    auto made = WebhookClient::create(
        ctx.get_executor(), WebhookOptions{.url = "https://127.0.0.1:1/x", .caFile = dir / name});
    ASSERT_FALSE(made.has_value()) << name;
    EXPECT_EQ(made.error().code(), Errc::Config) << name;
    EXPECT_NE(made.error().message().find(name), std::string::npos) << made.error().message();
  }
  auto plain = WebhookClient::create(
      ctx.get_executor(), WebhookOptions{.url = "http://127.0.0.1:1/x", .caFile = dir / "ca.pem"});
  ASSERT_FALSE(plain.has_value());
  EXPECT_EQ(plain.error().code(), Errc::Config);
}

// --- create() ------------------------------------------------------------------------------------

TEST(WebhookClientCreate, RejectsUrlsThatAreNotHttpHostPortPath) {
  asio::io_context ctx;
  const char* bad[] = {
      "",
      "ftp://example.com/hook",
      "example.com/hook",
      "http://",
      "http:///hook",
      "https://:443/hook",
      "http://user:pw@example.com/hook",
      "http://user@example.com/hook",
      "http://example.com:0/hook",
      "http://example.com:65536/hook",
      "http://example.com:80a/hook",
      "http://example.com:/hook",
      "http://example.com:123456/hook",
      "http://example.com:-1/hook",
      "http://example.com/hook#fragment",
      "http://exa mple.com/hook",
      "http://example.com/ho\r\nok",
      "http://[::1/hook",
      "http://[nothex]/hook",
      "http://[::1]x/hook",
      "http://exa%mple.com/hook",
  };
  for (const char* url : bad) {
    auto made = WebhookClient::create(ctx.get_executor(), WebhookOptions{.url = url});
    ASSERT_FALSE(made.has_value()) << "accepted: " << url;
    EXPECT_EQ(made.error().code(), Errc::Config) << url;
    EXPECT_EQ(made.error().message().find("pw@"), std::string::npos) << made.error().message();
  }
}

TEST(WebhookClientCreate, AcceptsHttpAndHttpsUrls) {
  asio::io_context ctx;
  for (const char* url :
       {"http://127.0.0.1:8080/hook", "https://example.com", "http://[::1]:9/a/b?c=d",
        "HTTPS://Example.COM:8443/x", "http://host_1/"}) {
    auto made = WebhookClient::create(ctx.get_executor(), WebhookOptions{.url = url});
    EXPECT_TRUE(made.has_value()) << url << ": " << made.error().message();
  }
}

TEST(WebhookClientCreate, RejectsAZeroTimeoutOrAnswerLimit) {
  asio::io_context ctx;
  auto noTime = WebhookClient::create(ctx.get_executor(),
                                      WebhookOptions{.url = "http://127.0.0.1/", .timeout = 0ms});
  ASSERT_FALSE(noTime.has_value());
  EXPECT_EQ(noTime.error().code(), Errc::Config);
  auto noRoom = WebhookClient::create(
      ctx.get_executor(), WebhookOptions{.url = "http://127.0.0.1/", .maxAnswerBytes = 0});
  ASSERT_FALSE(noRoom.has_value());
  EXPECT_EQ(noRoom.error().code(), Errc::Config);
}

// --- parseWebhookAnswer --------------------------------------------------------------------------

// The answer `json` fails, naming `field`.
void expectMalformed(std::string_view json, std::string_view field) {
  auto answer = parseWebhookAnswer(json);
  ASSERT_FALSE(answer.has_value()) << "accepted: " << json;
  EXPECT_EQ(answer.error().code(), Errc::Malformed);
  EXPECT_NE(answer.error().message().find(field), std::string::npos)
      << json << " -> " << answer.error().message();
}

std::string allowWith(std::string_view extra) {
  return fmt::format(R"({{"authenticate":true,"userId":"u","expirationSeconds":60{}}})", extra);
}

TEST(ParseWebhookAnswer, ReadsEveryField) {
  const std::string doc = DocumentId::random().toString();
  auto answer = parseWebhookAnswer(
      fmt::format(R"({{"authenticate":true,"userId":"alice@example.com","expirationSeconds":86400,)"
                  R"("roles":["a","b"],"permissions":{{"read":["*"],"write":["{}"]}},)"
                  R"("clientInfo":{{"b":[1, 2.5],"a":"x"}},"unknown":{{"ignored":true}}}})",
                  doc));
  ASSERT_TRUE(answer.has_value()) << answer.error().message();
  EXPECT_TRUE(answer->authenticate);
  EXPECT_EQ(answer->userId, "alice@example.com");
  EXPECT_EQ(answer->expirationSeconds, 86400);
  EXPECT_EQ(answer->roles, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(answer->permissions.read, std::vector<std::string>{"*"});
  EXPECT_EQ(answer->permissions.write, std::vector<std::string>{doc});
  EXPECT_EQ(answer->clientInfo, R"({"a":"x","b":[1,2.5]})");
}

TEST(ParseWebhookAnswer, TakesADenialWithNothingElse) {
  auto answer = parseWebhookAnswer(R"( {"authenticate": false} )");
  ASSERT_TRUE(answer.has_value()) << answer.error().message();
  EXPECT_EQ(*answer, WebhookAnswer{});
}

TEST(ParseWebhookAnswer, RefusesWhatIsNotAJsonObject) {
  expectMalformed("", "not one JSON value");
  expectMalformed("{\"authenticate\":true", "not one JSON value");
  expectMalformed("{\"authenticate\":false} trailing", "not one JSON value");
  expectMalformed("{\"authenticate\":false,}", "not one JSON value");
  expectMalformed("\"\xff\"", "not one JSON value");
  expectMalformed("[]", "not a JSON object");
  expectMalformed("true", "not a JSON object");
}

TEST(ParseWebhookAnswer, RefusesARepeatedKeyAndDeepNesting) {
  expectMalformed(
      R"({"authenticate":false,"authenticate":true,"userId":"u","expirationSeconds":1})",
      "key twice");
  expectMalformed(allowWith(R"(,"clientInfo":{"a":1,"a":2})"), "key twice");
  // Keys may repeat in different objects.
  EXPECT_TRUE(parseWebhookAnswer(allowWith(R"(,"clientInfo":{"x":{"a":1},"y":{"a":1}})")));
  const std::string deep = std::string(kMaxAnswerDepth, '[') + std::string(kMaxAnswerDepth, ']');
  expectMalformed(allowWith(",\"clientInfo\":" + deep), "nested deeper");
  const std::string fits =
      std::string(kMaxAnswerDepth - 1, '[') + std::string(kMaxAnswerDepth - 1, ']');
  EXPECT_TRUE(parseWebhookAnswer(allowWith(",\"clientInfo\":" + fits)));
  expectMalformed(std::string(100000, '['), "");
}

TEST(ParseWebhookAnswer, NeedsABooleanAuthenticate) {
  expectMalformed("{}", "authenticate: missing");
  expectMalformed(R"({"authenticate":"true"})", "authenticate: not true or false");
  expectMalformed(R"({"authenticate":1})", "authenticate: not true or false");
  expectMalformed(R"({"authenticate":null})", "authenticate: not true or false");
}

TEST(ParseWebhookAnswer, ChecksTheUserId) {
  expectMalformed(R"({"authenticate":true,"expirationSeconds":60})", "userID: missing");
  // Ditto's spelling, userID, or userId; not both.
  auto ditto =
      parseWebhookAnswer(R"({"authenticate":true,"userID":"alice","expirationSeconds":60})");
  ASSERT_TRUE(ditto.has_value());
  EXPECT_EQ(ditto->userId, "alice");
  expectMalformed(R"({"authenticate":true,"userID":"a","userId":"a","expirationSeconds":60})",
                  "given as both userID and userId");
  expectMalformed(R"({"authenticate":true,"userID":1,"expirationSeconds":60})",
                  "userID: not a string");
  expectMalformed(R"({"authenticate":true,"userId":"","expirationSeconds":60})", "userId: 0 bytes");
  expectMalformed(R"({"authenticate":true,"userId":7,"expirationSeconds":60})",
                  "userId: not a string");
  expectMalformed(R"({"authenticate":true,"userId":"a\u0000b","expirationSeconds":60})",
                  "userId: not printable ASCII");
  expectMalformed(R"({"authenticate":true,"userId":"a\tb","expirationSeconds":60})",
                  "userId: not printable ASCII");
  const std::string longest(kMaxUserIdBytes, 'u');
  EXPECT_TRUE(parseWebhookAnswer(
      fmt::format(R"({{"authenticate":true,"userId":"{}","expirationSeconds":60}})", longest)));
  expectMalformed(
      fmt::format(R"({{"authenticate":true,"userId":"{}u","expirationSeconds":60}})", longest),
      "userId: 257 bytes");
  // As a certificate carries it: printable ASCII.
  expectMalformed(R"({"authenticate":true,"userId":"Zoë","expirationSeconds":60})",
                  "userId: not printable ASCII");
  EXPECT_TRUE(parseWebhookAnswer(
      R"({"authenticate":true,"userId":"Zoe Smith <zoe@example.com>","expirationSeconds":60})"));
  // Checked on a denial too, though not required there.
  expectMalformed(R"({"authenticate":false,"userId":5})", "userId: not a string");
}

TEST(ParseWebhookAnswer, ChecksTheExpiration) {
  const auto with = [](std::string_view value) {
    return fmt::format(R"({{"authenticate":true,"userId":"u","expirationSeconds":{}}})", value);
  };
  expectMalformed(R"({"authenticate":true,"userId":"u"})", "expirationSeconds: missing");
  expectMalformed(with("0"), "expirationSeconds: out of range");
  expectMalformed(with("-5"), "expirationSeconds: out of range");
  expectMalformed(with(std::to_string(kMaxExpirationSeconds + 1)),
                  "expirationSeconds: out of range");
  expectMalformed(with("18446744073709551615"), "expirationSeconds: out of range");
  expectMalformed(with("60.5"), "expirationSeconds: not an integer");
  expectMalformed(with("60.0"), "expirationSeconds: not an integer");
  expectMalformed(with("\"60\""), "expirationSeconds: not an integer");
  auto longest = parseWebhookAnswer(with(std::to_string(kMaxExpirationSeconds)));
  ASSERT_TRUE(longest.has_value());
  EXPECT_EQ(longest->expirationSeconds, 366 * 86400);
  EXPECT_TRUE(parseWebhookAnswer(with("1")));
}

TEST(ParseWebhookAnswer, ChecksTheRoles) {
  expectMalformed(allowWith(R"(,"roles":"admin")"), "roles: not an array");
  expectMalformed(allowWith(R"(,"roles":["a",1])"), "roles: an entry is not a string");
  expectMalformed(allowWith(R"(,"roles":[""])"), "roles[0]: 0 bytes");
  expectMalformed(allowWith(R"(,"roles":["ok","a\nb"])"), "roles[1]: not printable ASCII");
  expectMalformed(allowWith(fmt::format(R"(,"roles":["{}"])", std::string(kMaxRoleBytes + 1, 'r'))),
                  "roles[0]: 129 bytes");
  EXPECT_TRUE(parseWebhookAnswer(
      allowWith(fmt::format(R"(,"roles":["{}"])", std::string(kMaxRoleBytes, 'r')))));
  std::vector<std::string> roles;
  for (std::size_t i = 0; i < kMaxRoles; ++i) roles.push_back("r" + std::to_string(i));
  auto most = parseWebhookAnswer(allowWith(",\"roles\":" + Json(roles).dump()));
  ASSERT_TRUE(most.has_value());
  EXPECT_EQ(most->roles, roles);
  roles.push_back("one-more");
  expectMalformed(allowWith(",\"roles\":" + Json(roles).dump()), "roles: 65 entries");
  EXPECT_TRUE(parseWebhookAnswer(allowWith(R"(,"roles":[])")));
}

TEST(ParseWebhookAnswer, ChecksThePermissions) {
  expectMalformed(allowWith(R"(,"permissions":["*"])"), "permissions: not an object");
  expectMalformed(allowWith(R"(,"permissions":{"read":"*"})"), "permissions.read: not an array");
  expectMalformed(allowWith(R"(,"permissions":{"write":[3]})"),
                  "permissions.write: an entry is not a string");
  expectMalformed(allowWith(R"(,"permissions":{"read":["not-a-document"]})"), "permissions: read:");
  expectMalformed(allowWith(R"(,"permissions":{"write":["portcullis:nope"]})"),
                  "permissions: write:");
  auto any = parseWebhookAnswer(allowWith(R"(,"permissions":{"write":["*"],"other":1})"));
  ASSERT_TRUE(any.has_value());
  EXPECT_TRUE(any->permissions.mayWrite(DocumentId::random()));
  auto empty = parseWebhookAnswer(allowWith(R"(,"permissions":{})"));
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->permissions, Permissions{});
}

TEST(ParseWebhookAnswer, KeepsClientInfoAsCompactJson) {
  auto text = parseWebhookAnswer(allowWith(R"(,"clientInfo":"hello")"));
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(text->clientInfo, "\"hello\"");
  auto null = parseWebhookAnswer(allowWith(R"(,"clientInfo":null)"));
  ASSERT_TRUE(null.has_value());
  EXPECT_EQ(null->clientInfo, "null");
  auto absent = parseWebhookAnswer(allowWith(""));
  ASSERT_TRUE(absent.has_value());
  EXPECT_EQ(absent->clientInfo, "");
  const std::string most(kMaxClientInfoBytes - 2, 'c');  // plus its two quotes
  EXPECT_TRUE(parseWebhookAnswer(allowWith(",\"clientInfo\":\"" + most + "\"")));
  expectMalformed(allowWith(",\"clientInfo\":\"" + most + "c\""), "clientInfo: 4097 bytes");
}

TEST(ParseWebhookAnswer, NeverQuotesTheBody) {
  for (const std::string& body :
       {"not json " + kToken, R"({"authenticate":true,"userId":")" + kToken + R"(\u0001"})",
        R"({"authenticate":true,"userId":"u","expirationSeconds":")" + kToken + "\"}",
        allowWith(R"(,"roles":[")" + kToken + R"(\n"])"),
        allowWith(R"(,"permissions":{"read":[")" + kToken + "\"]}")}) {
    auto answer = parseWebhookAnswer(body);
    ASSERT_FALSE(answer.has_value()) << body;
    EXPECT_EQ(answer.error().message().find("S3CRET"), std::string::npos)
        << answer.error().message();
  }
}

}  // namespace
}  // namespace portcullis::online
