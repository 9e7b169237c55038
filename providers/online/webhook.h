// webhook.h — the `online` provider's webhook client: the identity service validates a device's
// login token by POSTing it, as JSON, to the application's URL, and the application answers who
// the user is and what it may do (Ditto's "Online with Authentication" pattern).
//
// Layer: a part of the `online` auth provider (providers/online), built as a library of its own.
// It speaks HTTP/1.1 over TCP, or over TLS verified against the system's CA store or a CA file,
// one new connection per login, and fails closed: every failure is Errc::Denied.
//
// Threads: a WebhookClient belongs to one executor, which must be single-threaded (the provider
// runs on its Repo's io_context thread); verify() and requestsSent() are called there.
// parseWebhookAnswer() is a pure function, safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bounds.h"
#include "permissions.h"
#include "portcullis/asio.h"
#include "portcullis/result.h"

namespace portcullis::online {

// Bounds on an answer's fields beyond the provider's own (bounds.h: user IDs, roles, clientInfo,
// tokens), which the webhook applies too, so that whatever it grants fits in a certificate.
inline constexpr std::int64_t kMaxExpirationSeconds = 366 * 24 * 60 * 60;
// Nesting of arrays and objects in an answer (clientInfo's is the only one that may go deep).
inline constexpr std::size_t kMaxAnswerDepth = 32;
// The answer's status line and headers, together.
inline constexpr std::size_t kMaxAnswerHeaderBytes = 8 * 1024;

struct WebhookOptions {
  // http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH; HOST a name, an IPv4 address or an
  // IPv6 address in brackets. No userinfo, no fragment; PATH may carry a query and defaults to /.
  std::string url{};
  // The whole call: resolve, connect, TLS handshake, write and read. A slow server is cut here.
  std::chrono::milliseconds timeout{5000};
  // The answer's body; its headers are bounded by kMaxAnswerHeaderBytes.
  std::size_t maxAnswerBytes = 64 * 1024;
  // A PEM bundle of the CAs to trust for https, instead of the system store. Only for https.
  std::optional<std::filesystem::path> caFile{};
  // How long an answer is reused for an identical login; 0 sends every login.
  std::chrono::seconds cacheTime{0};
  // The most answers kept; the oldest goes first.
  std::size_t cacheEntries = 10000;
};

// What the webhook is asked. `token` is the device's secret: it is sent to the URL and nowhere
// else, never logged, and never kept (the cache holds a keyed hash of it).
struct LoginRequest {
  std::string appId{};
  std::string provider{};
  std::string token{};
  std::string peerKey{};  // the device's Ed25519 public key, hex
};

// The application's answer. Every field present is checked, whatever `authenticate` says.
struct WebhookAnswer {
  bool authenticate = false;
  // "userID" (Ditto's spelling) or "userId" in the JSON, not both. Required when authenticate
  // is true: 1..kMaxUserIdBytes bytes of printable ASCII.
  std::string userId{};
  // Required when authenticate is true: 1..kMaxExpirationSeconds.
  std::int64_t expirationSeconds = 0;
  // Optional: at most kMaxRoles, each 1..kMaxRoleBytes bytes of printable ASCII.
  std::vector<std::string> roles{};
  // Optional {"read": [...], "write": [...]}; each entry as checkPermissions() wants it.
  Permissions permissions{};
  // Optional: any JSON value, kept as its compact JSON text (at most kMaxClientInfoBytes), for
  // the device only; empty when absent.
  std::string clientInfo{};

  friend bool operator==(const WebhookAnswer&, const WebhookAnswer&) = default;
};

// Parses and checks an answer body: a JSON object (unknown keys ignored; a key given twice, or
// nesting deeper than kMaxAnswerDepth, refused). Errc::Malformed naming the field for anything
// wrong: not JSON, not an object, a wrong type, a required field missing, a value out of range.
// Messages never quote the body. {"authenticate": false} is a valid answer, and means deny.
[[nodiscard]] Result<WebhookAnswer> parseWebhookAnswer(std::string_view body);

// Posts logins to the application's webhook. Made by create(); owned by the provider.
class WebhookClient final {
 public:
  // Checks `options` once: Errc::Config for a URL that is not http(s)://host[:port]/path (or has
  // userinfo, a fragment or a bad port), a zero timeout or answer limit, a caFile with an http
  // URL, and a CA file that cannot be read or holds no certificate. For https the trust store is
  // loaded here, not per call. `executor` must be single-threaded.
  [[nodiscard]] static Result<std::unique_ptr<WebhookClient>> create(asio::any_io_executor executor,
                                                                     WebhookOptions options);
  ~WebhookClient();
  WebhookClient(const WebhookClient&) = delete;
  WebhookClient& operator=(const WebhookClient&) = delete;

  // POSTs {"appId", "provider", "token", "peerKey"} as JSON to the URL, HTTP/1.1 on a new
  // connection, and returns the parsed answer when the status is 2xx and the body passes
  // parseWebhookAnswer. The caller must still look at `authenticate`.
  //
  // Every failure is Errc::Denied, with a message that says why and never contains the token nor
  // anything the server sent: resolve or connect error (with the OS's message), timeout, TLS
  // verification failure, a non-2xx status (3xx: "redirect not followed"), headers or body over
  // their limit, a malformed answer. The whole call ends by options.timeout.
  //
  // With cacheTime > 0, a login identical to an earlier one (same appId, provider, token and
  // peerKey) within cacheTime gets that answer without a request; its expirationSeconds is
  // reduced by the time it spent in the cache, and it leaves the cache before it would reach 0.
  // Only answers that parsed are cached (allow and deny); transport errors are not.
  //
  // Runs on the client's executor; the client must outlive the awaitable.
  [[nodiscard]] asio::awaitable<Result<WebhookAnswer>> verify(LoginRequest request);

  // Requests actually sent (cache hits are not counted); for tests and logs.
  std::uint64_t requestsSent() const;

 private:
  struct Impl;
  explicit WebhookClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace portcullis::online
