// webhook.cc — the online provider's webhook client: the URL's checks, the POST over Beast (plain
// or TLS) under one deadline, the answer's checks, and the cache of answers.

#include "webhook.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <list>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "portcullis/asio.h"
#include "portcullis/logging.h"
// Asio's TLS and Beast after portcullis/asio.h, which must be the first to read Asio.
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace portcullis::online {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr const char* kUserAgent = "portcullis-online-webhook";

void wipe(std::string& s) noexcept {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
}

// Wipes a string that held the token when the scope ends, however it ends.
class WipeOnExit {
 public:
  explicit WipeOnExit(std::string& s) : s_(s) {}
  ~WipeOnExit() { wipe(s_); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  std::string& s_;
};

// --- the answer ----------------------------------------------------------------------------------

Error malformed(std::string_view field, std::string_view what) {
  return Error(Errc::Malformed, fmt::format("malformed webhook answer: {}: {}", field, what));
}

bool printableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// A user ID or a role: 1..maxBytes bytes of printable ASCII, as a certificate carries them. It is
// never quoted: a confused service might have put the token there.
Result<void> checkText(std::string_view text, std::string_view field, std::size_t maxBytes) {
  if (text.empty() || text.size() > maxBytes) {
    return malformed(field, fmt::format("{} bytes (1..{})", text.size(), maxBytes));
  }
  if (!printableAscii(text)) return malformed(field, "not printable ASCII");
  return {};
}

Result<std::string> textField(const Json& value, std::string_view field, std::size_t maxBytes) {
  if (!value.is_string()) return malformed(field, "not a string");
  const auto& text = value.get_ref<const std::string&>();
  if (auto ok = checkText(text, field, maxBytes); !ok) return ok.error();
  return text;
}

Result<std::vector<std::string>> stringList(const Json& value, std::string_view field,
                                            std::size_t maxEntries) {
  if (!value.is_array()) return malformed(field, "not an array");
  if (value.size() > maxEntries) {
    return malformed(field, fmt::format("{} entries (at most {})", value.size(), maxEntries));
  }
  std::vector<std::string> out;
  out.reserve(value.size());
  for (const Json& entry : value) {
    if (!entry.is_string()) return malformed(field, "an entry is not a string");
    out.push_back(entry.get<std::string>());
  }
  return out;
}

// The body as JSON. Refuses a key repeated in one object (parsers disagree on which one wins, and
// {"authenticate":false,"authenticate":true} must not mean whatever this one picks) and nesting
// deeper than kMaxAnswerDepth (dump() recurses).
Result<Json> parseJson(std::string_view body) {
  // keysAt[d]: the keys seen so far in the object open at depth d (the callback's depth counts
  // the containers around an event). An object's start clears its level, so no end event is
  // needed: nlohmann does not report the end of a container the callback discarded.
  std::vector<std::unordered_set<std::string>> keysAt(1);
  bool tooDeep = false;
  bool repeated = false;
  const Json::parser_callback_t callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    const auto level = static_cast<std::size_t>(depth);
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (level + 1 > kMaxAnswerDepth) {
          tooDeep = true;
          return false;  // discarded: nothing deeper is built
        }
        if (event == Json::parse_event_t::object_start) {
          keysAt.resize(std::max(keysAt.size(), level + 2));
          keysAt[level + 1].clear();
        }
        return true;
      case Json::parse_event_t::key: {
        if (level >= keysAt.size()) return true;  // inside a discarded container
        if (!keysAt[level].insert(parsed.get_ref<const std::string&>()).second) repeated = true;
        return true;
      }
      default:
        return true;
    }
  };
  Json parsed = Json::parse(body.begin(), body.end(), callback, /*allow_exceptions=*/false);
  if (tooDeep) {
    return Error(Errc::Malformed,
                 fmt::format("malformed webhook answer: nested deeper than {}", kMaxAnswerDepth));
  }
  if (parsed.is_discarded()) {
    return Error(
        Errc::Malformed,
        fmt::format("malformed webhook answer: {} bytes that are not one JSON value", body.size()));
  }
  if (repeated) {
    return Error(Errc::Malformed, "malformed webhook answer: an object has a key twice");
  }
  return parsed;
}

// --- the URL -------------------------------------------------------------------------------------

struct Url {
  bool tls = false;
  std::string host;        // without brackets: what is resolved, sent as SNI and checked
  bool literal = false;    // host is an IP address
  std::string port;        // decimal
  std::string hostHeader;  // as the Host header has it
  std::string target;      // path and query
  std::string where;       // host:port, for messages (never the path: it may hold a secret)
};

Error badUrl(std::string_view why) {
  // The URL itself is not quoted: its path or query may carry a secret of the application.
  return Error(Errc::Config, fmt::format("webhook: url {}", why));
}

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

bool hostNameCharacter(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

Result<Url> parseUrl(std::string_view text) {
  Url url;
  std::string_view rest;
  if (startsWithNoCase(text, "https://")) {
    url.tls = true;
    rest = text.substr(8);
  } else if (startsWithNoCase(text, "http://")) {
    rest = text.substr(7);
  } else {
    return badUrl("is not http://... or https://...");
  }
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b >= 0x7f)
      return badUrl("has a space, a control character or a non-ASCII byte");
  }
  if (rest.find('#') != std::string_view::npos) return badUrl("has a fragment (#...)");
  const std::size_t authorityEnd = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, authorityEnd);
  const std::string_view pathAndQuery =
      authorityEnd == std::string_view::npos ? std::string_view() : rest.substr(authorityEnd);
  if (authority.find('@') != std::string_view::npos) return badUrl("has userinfo (user@host)");
  if (authority.empty()) return badUrl("has no host");

  std::string_view host;
  std::optional<std::string_view> port;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return badUrl("has an IPv6 address without its ]");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return badUrl("has something other than :port after its host");
      port = after.substr(1);
    }
    boost::system::error_code ec;
    (void)asio::ip::make_address_v6(std::string(host), ec);
    if (ec) return badUrl("has an IPv6 host in brackets that is not an IPv6 address");
    url.literal = true;
  } else {
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (host.empty()) return badUrl("has no host");
    if (host.size() > 253 || !std::all_of(host.begin(), host.end(), hostNameCharacter)) {
      return badUrl("has a host that is neither a host name nor an IP address");
    }
    boost::system::error_code ec;
    (void)asio::ip::make_address_v4(std::string(host), ec);
    url.literal = !ec;
  }
  if (port) {
    unsigned value = 0;
    const bool digits =
        !port->empty() && port->size() <= 5 &&
        std::all_of(port->begin(), port->end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) {
      for (const char c : *port) value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (!digits || value == 0 || value > 65535) return badUrl("has a port that is not 1..65535");
    url.port = std::to_string(value);
  } else {
    url.port = url.tls ? "443" : "80";
  }
  url.host = std::string(host);
  const std::string bracketed = authority.front() == '[' ? "[" + url.host + "]" : url.host;
  url.hostHeader = port ? bracketed + ":" + url.port : bracketed;
  url.where = bracketed + ":" + url.port;
  if (pathAndQuery.empty()) {
    url.target = "/";
  } else if (pathAndQuery.front() == '?') {
    url.target = "/" + std::string(pathAndQuery);
  } else {
    url.target = std::string(pathAndQuery);
  }
  return url;
}

bool isLoopback(const Url& url) {
  if (url.host == "localhost") return true;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(url.host, ec);
  return !ec && address.is_loopback();
}

Result<std::unique_ptr<asio::ssl::context>> makeTlsContext(
    const std::optional<std::filesystem::path>& caFile) {
  auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  context->set_verify_mode(asio::ssl::verify_peer);
  boost::system::error_code ec;
  if (caFile) {
    std::error_code fsError;
    if (!std::filesystem::is_regular_file(*caFile, fsError)) {
      return Error(Errc::Config,
                   fmt::format("webhook: caFile {}: not a readable file", caFile->string()));
    }
    context->load_verify_file(caFile->string(), ec);
    if (ec) {
      return Error(Errc::Config, fmt::format("webhook: caFile {}: no PEM certificate loads ({})",
                                             caFile->string(), ec.message()));
    }
  } else {
    context->set_default_verify_paths(ec);
    if (ec) {
      return Error(Errc::Config,
                   fmt::format("webhook: cannot load the system's CA store: {}", ec.message()));
    }
  }
  return context;
}

// Asio's RFC 6125 check of the server's certificate against the host, which on a mismatch fails
// without saying so: this names the mismatch, so that the handshake's error says why.
class PeerNameCheck {
 public:
  PeerNameCheck(const std::string& host, bool literal) : check_(host), literal_(literal) {}
  bool operator()(bool preverified, asio::ssl::verify_context& ctx) const {
    const bool ok = check_(preverified, ctx);
    if (!ok && preverified) {
      X509_STORE_CTX_set_error(ctx.native_handle(), literal_ ? X509_V_ERR_IP_ADDRESS_MISMATCH
                                                             : X509_V_ERR_HOSTNAME_MISMATCH);
    }
    return ok;
  }

 private:
  asio::ssl::host_name_verification check_;
  bool literal_;
};

// --- the request ---------------------------------------------------------------------------------

bool validUtf8(std::string_view s) {
  static constexpr std::uint32_t kSmallest[] = {0, 0x80, 0x800, 0x10000};
  std::size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    std::size_t more = 0;
    std::uint32_t point = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xe0) == 0xc0) {
      more = 1;
      point = lead & 0x1f;
    } else if ((lead & 0xf0) == 0xe0) {
      more = 2;
      point = lead & 0x0f;
    } else if ((lead & 0xf8) == 0xf0) {
      more = 3;
      point = lead & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= more) return false;
    for (std::size_t k = 1; k <= more; ++k) {
      const auto next = static_cast<unsigned char>(s[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      point = point << 6 | (next & 0x3f);
    }
    if (point < kSmallest[more] || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) {
      return false;
    }
    i += more + 1;
  }
  return true;
}

// Why a login is not sent at all; nullopt when it may be.
std::optional<Error> checkRequest(const LoginRequest& request) {
  if (request.token.size() > kMaxTokenBytes) {
    return Error(Errc::Denied, fmt::format("webhook: the login's token has {} bytes (at most {})",
                                           request.token.size(), kMaxTokenBytes));
  }
  const std::pair<const char*, const std::string*> fields[] = {{"appId", &request.appId},
                                                               {"provider", &request.provider},
                                                               {"token", &request.token},
                                                               {"peerKey", &request.peerKey}};
  for (const auto& [name, value] : fields) {
    if (value != &request.token && value->size() > kMaxTokenBytes) {
      return Error(Errc::Denied, fmt::format("webhook: the login's {} is too long", name));
    }
    // A JSON string must be UTF-8; nlohmann would throw on anything else.
    if (!validUtf8(*value)) {
      return Error(Errc::Denied, fmt::format("webhook: the login's {} is not UTF-8", name));
    }
  }
  return std::nullopt;
}

std::string requestBody(const LoginRequest& request) {
  Json body = Json::object();
  body["appId"] = request.appId;
  body["provider"] = request.provider;
  body["token"] = request.token;
  body["peerKey"] = request.peerKey;
  std::string out = body.dump();
  wipe(body["token"].get_ref<std::string&>());
  return out;
}

// --- the cache -----------------------------------------------------------------------------------

using CacheKey = std::array<unsigned char, crypto_generichash_BYTES>;

struct CacheKeyHash {
  std::size_t operator()(const CacheKey& key) const noexcept {
    std::size_t h = 0;  // the key is a keyed hash already: any 8 of its bytes are uniform
    std::memcpy(&h, key.data(), sizeof h);
    return h;
  }
};

// Answers by a keyed BLAKE2b of the login (never the token itself), oldest out first. Each entry
// lives min(cacheTime, the answer's expirationSeconds).
class AnswerCache {
 public:
  AnswerCache(std::chrono::seconds time, std::size_t capacity) : time_(time), capacity_(capacity) {}

  bool enabled() const { return time_.count() > 0 && capacity_ > 0; }

  std::optional<WebhookAnswer> find(const CacheKey& key, Clock::time_point now) {
    const auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    Entry& entry = it->second;
    if (now >= entry.expires) {
      erase(it);
      return std::nullopt;
    }
    WebhookAnswer answer = entry.answer;
    if (answer.expirationSeconds > 0) {
      // What the service granted counts from its answer, not from this login: take the time in
      // the cache off, rounded up, so that a cached answer never outlives the original.
      const auto age = std::chrono::ceil<std::chrono::seconds>(now - entry.stored).count();
      if (age >= answer.expirationSeconds) {
        erase(it);
        return std::nullopt;
      }
      answer.expirationSeconds -= age;
    }
    return answer;
  }

  void insert(const CacheKey& key, const WebhookAnswer& answer, Clock::time_point now) {
    if (const auto it = entries_.find(key); it != entries_.end()) erase(it);
    while (entries_.size() >= capacity_ && !order_.empty()) erase(entries_.find(order_.front()));
    std::chrono::seconds life = time_;
    if (answer.expirationSeconds > 0) {
      life = std::min(life, std::chrono::seconds(answer.expirationSeconds));
    }
    order_.push_back(key);
    entries_.emplace(key, Entry{.answer = answer,
                                .stored = now,
                                .expires = now + life,
                                .age = std::prev(order_.end())});
  }

 private:
  struct Entry {
    WebhookAnswer answer;
    Clock::time_point stored;
    Clock::time_point expires;
    std::list<CacheKey>::iterator age;
  };
  using Map = std::unordered_map<CacheKey, Entry, CacheKeyHash>;

  void erase(Map::iterator it) {
    order_.erase(it->second.age);
    entries_.erase(it);
  }

  std::chrono::seconds time_;
  std::size_t capacity_;
  Map entries_;
  std::list<CacheKey> order_;  // oldest first
};

// A resolve in flight. getaddrinfo runs on Asio's resolver thread and cannot be interrupted, so
// the deadline is a race between its answer and a timer; a late answer lands here, which its
// handler keeps alive.
struct PendingResolve {
  explicit PendingResolve(const asio::any_io_executor& executor)
      : resolver(executor), timer(executor) {}
  tcp::resolver resolver;
  asio::steady_timer timer;
  bool done = false;
  boost::system::error_code error;
  std::vector<tcp::endpoint> endpoints;
};

}  // namespace

// --- parseWebhookAnswer --------------------------------------------------------------------------

Result<WebhookAnswer> parseWebhookAnswer(std::string_view body) {
  auto parsed = parseJson(body);
  if (!parsed) return std::move(parsed).error();
  const Json& root = *parsed;
  if (!root.is_object()) {
    return Error(Errc::Malformed, "malformed webhook answer: not a JSON object");
  }
  const auto field = [&root](const char* name) -> const Json* {
    const auto it = root.find(name);
    return it == root.end() ? nullptr : &*it;
  };
  WebhookAnswer answer;

  const Json* authenticate = field("authenticate");
  if (authenticate == nullptr) return malformed("authenticate", "missing");
  if (!authenticate->is_boolean()) return malformed("authenticate", "not true or false");
  answer.authenticate = authenticate->get<bool>();

  // "userID" is Ditto's spelling (and our README's); "userId" is accepted too, but not both.
  const Json* userId = field("userID");
  const char* userIdKey = "userID";
  if (const Json* other = field("userId")) {
    if (userId != nullptr) return malformed("userId", "given as both userID and userId");
    userId = other;
    userIdKey = "userId";
  }
  if (userId != nullptr) {
    auto text = textField(*userId, userIdKey, kMaxUserIdBytes);
    if (!text) return std::move(text).error();
    answer.userId = std::move(*text);
  } else if (answer.authenticate) {
    return malformed("userID", "missing (required when authenticate is true)");
  }

  if (const Json* expiration = field("expirationSeconds")) {
    if (!expiration->is_number_integer()) return malformed("expirationSeconds", "not an integer");
    std::int64_t seconds = 0;  // out of range unless set below
    if (expiration->is_number_unsigned()) {
      const auto value = expiration->get<std::uint64_t>();
      if (value <= static_cast<std::uint64_t>(kMaxExpirationSeconds)) {
        seconds = static_cast<std::int64_t>(value);
      }
    } else {
      seconds = expiration->get<std::int64_t>();
    }
    if (seconds < 1 || seconds > kMaxExpirationSeconds) {
      return malformed("expirationSeconds",
                       fmt::format("out of range (1..{}, 366 days)", kMaxExpirationSeconds));
    }
    answer.expirationSeconds = seconds;
  } else if (answer.authenticate) {
    return malformed("expirationSeconds", "missing (required when authenticate is true)");
  }

  if (const Json* roles = field("roles")) {
    auto list = stringList(*roles, "roles", kMaxRoles);
    if (!list) return std::move(list).error();
    for (std::size_t i = 0; i < list->size(); ++i) {
      if (auto ok = checkText((*list)[i], fmt::format("roles[{}]", i), kMaxRoleBytes); !ok) {
        return ok.error();
      }
    }
    answer.roles = std::move(*list);
  }

  if (const Json* permissions = field("permissions")) {
    if (!permissions->is_object()) return malformed("permissions", "not an object");
    for (const char* list : {"read", "write"}) {
      const auto it = permissions->find(list);
      if (it == permissions->end()) continue;
      auto entries = stringList(*it, fmt::format("permissions.{}", list), kMaxPermissionEntries);
      if (!entries) return std::move(entries).error();
      (std::string_view(list) == "read" ? answer.permissions.read : answer.permissions.write) =
          std::move(*entries);
    }
    if (auto ok = checkPermissions(answer.permissions); !ok) {
      return malformed("permissions", ok.error().message());
    }
  }

  if (const Json* clientInfo = field("clientInfo")) {
    std::string text = clientInfo->dump();
    if (text.size() > kMaxClientInfoBytes) {
      return malformed("clientInfo", fmt::format("{} bytes of JSON (at most {})", text.size(),
                                                 kMaxClientInfoBytes));
    }
    answer.clientInfo = std::move(text);
  }
  return answer;
}

// --- WebhookClient -------------------------------------------------------------------------------

struct WebhookClient::Impl {
  Impl(asio::any_io_executor executor, WebhookOptions options, Url url,
       std::unique_ptr<asio::ssl::context> tls)
      : executor(std::move(executor)),
        options(std::move(options)),
        url(std::move(url)),
        tls(std::move(tls)),
        cache(this->options.cacheTime, this->options.cacheEntries) {
    crypto_generichash_keygen(hashKey.data());
  }
  ~Impl() { sodium_memzero(hashKey.data(), hashKey.size()); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  CacheKey keyOf(const LoginRequest& request) const;
  Error denied(std::string_view why) const {
    return Error(Errc::Denied, "webhook: " + std::string(why));
  }
  Error timedOut(std::string_view step) const {
    return denied(fmt::format("no answer from {} within the timeout of {} ms (timed out {})",
                              url.where, options.timeout.count(), step));
  }
  Error readFailure(const boost::system::error_code& ec) const;

  asio::awaitable<Result<std::vector<tcp::endpoint>>> resolve(Clock::time_point deadline);
  asio::awaitable<Result<void>> connect(beast::tcp_stream& stream, Clock::time_point deadline);
  asio::awaitable<Result<std::string>> post(std::string body, Clock::time_point deadline);
  template <typename Stream>
  asio::awaitable<Result<std::string>> exchange(Stream& stream, std::string body);

  asio::any_io_executor executor;
  WebhookOptions options;
  Url url;
  std::unique_ptr<asio::ssl::context> tls;  // for https only
  std::array<unsigned char, crypto_generichash_KEYBYTES> hashKey{};
  AnswerCache cache;
  std::uint64_t sent = 0;
};

CacheKey WebhookClient::Impl::keyOf(const LoginRequest& request) const {
  crypto_generichash_state state;
  CacheKey key{};
  crypto_generichash_init(&state, hashKey.data(), hashKey.size(), key.size());
  // Each field after its length, so that no two logins hash the same bytes.
  for (const std::string* field :
       {&request.appId, &request.provider, &request.token, &request.peerKey}) {
    std::array<unsigned char, 8> length{};
    for (std::size_t i = 0; i < length.size(); ++i) {
      length[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(field->size()) >> (8 * i));
    }
    crypto_generichash_update(&state, length.data(), length.size());
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(field->data()),
                              field->size());
  }
  crypto_generichash_final(&state, key.data(), key.size());
  sodium_memzero(&state, sizeof state);
  return key;
}

Error WebhookClient::Impl::readFailure(const boost::system::error_code& ec) const {
  if (ec == beast::error::timeout) return timedOut("reading the answer");
  if (ec == http::error::body_limit) {
    return denied(fmt::format("the answer from {} has a body over the limit of {} bytes", url.where,
                              options.maxAnswerBytes));
  }
  if (ec == http::error::header_limit) {
    return denied(fmt::format("the answer from {} has headers over the limit of {} bytes",
                              url.where, kMaxAnswerHeaderBytes));
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    return denied(fmt::format("{} closed the connection before a complete answer", url.where));
  }
  // Beast's parse errors are fixed phrases ("bad status", ...): nothing the server sent.
  return denied(fmt::format("reading the answer from {} failed: {}", url.where, ec.message()));
}

asio::awaitable<Result<std::vector<tcp::endpoint>>> WebhookClient::Impl::resolve(
    Clock::time_point deadline) {
  const auto port = static_cast<std::uint16_t>(std::stoul(url.port));
  if (url.literal) {
    co_return std::vector<tcp::endpoint>{tcp::endpoint(asio::ip::make_address(url.host), port)};
  }
  auto pending = std::make_shared<PendingResolve>(executor);
  pending->timer.expires_at(deadline);
  pending->resolver.async_resolve(
      url.host, url.port,
      [pending](const boost::system::error_code& ec, const tcp::resolver::results_type& found) {
        pending->done = true;
        pending->error = ec;
        for (const auto& entry : found) pending->endpoints.push_back(entry.endpoint());
        pending->timer.cancel();
      });
  boost::system::error_code ignored;  // cancelled when the answer came first
  co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  if (!pending->done) {
    pending->resolver.cancel();
    co_return timedOut("resolving the host");
  }
  if (pending->error) {
    co_return denied(fmt::format("cannot resolve {}: {}", url.host, pending->error.message()));
  }
  if (pending->endpoints.empty()) co_return denied(fmt::format("{} has no address", url.host));
  co_return std::move(pending->endpoints);
}

asio::awaitable<Result<void>> WebhookClient::Impl::connect(beast::tcp_stream& stream,
                                                           Clock::time_point deadline) {
  auto resolving = resolve(deadline);
  Result<std::vector<tcp::endpoint>> endpoints = co_await std::move(resolving);
  if (!endpoints) co_return std::move(endpoints).error();
  // One deadline for every later step: Beast fails an operation started after it at once.
  stream.expires_at(deadline);
  boost::system::error_code ec;
  co_await stream.async_connect(*endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec == beast::error::timeout) co_return timedOut("connecting");
  if (ec) co_return denied(fmt::format("cannot connect to {}: {}", url.where, ec.message()));
  stream.socket().set_option(tcp::no_delay(true), ec);  // best effort
  co_return Result<void>();
}

template <typename Stream>
asio::awaitable<Result<std::string>> WebhookClient::Impl::exchange(Stream& stream,
                                                                   std::string body) {
  http::request<http::string_body> request(http::verb::post, url.target, 11);
  const WipeOnExit wipeBody(request.body());
  request.set(http::field::host, url.hostHeader);
  request.set(http::field::user_agent, kUserAgent);
  request.set(http::field::content_type, "application/json");
  request.set(http::field::accept, "application/json");
  request.keep_alive(false);
  request.body() = std::move(body);
  request.prepare_payload();
  boost::system::error_code ec;
  co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec == beast::error::timeout) co_return timedOut("sending the login");
  if (ec) {
    co_return denied(fmt::format("sending the login to {} failed: {}", url.where, ec.message()));
  }

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(kMaxAnswerHeaderBytes));
  parser.body_limit(options.maxAnswerBytes);
  co_await http::async_read_header(stream, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return readFailure(ec);
  // The status decides before the body is read: a refusal's body is not ours to wait for.
  const unsigned status = parser.get().result_int();
  if (status >= 300 && status < 400) {
    co_return denied(
        fmt::format("HTTP status {} from {}: redirect not followed", status, url.where));
  }
  if (status < 200 || status >= 300) {
    co_return denied(fmt::format("HTTP status {} from {}", status, url.where));
  }
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return readFailure(ec);
  co_return std::move(parser.get().body());
}

asio::awaitable<Result<std::string>> WebhookClient::Impl::post(std::string body,
                                                               Clock::time_point deadline) {
  WipeOnExit wipeBody(body);
  if (!tls) {
    beast::tcp_stream stream(executor);
    auto connecting = connect(stream, deadline);
    Result<void> connected = co_await std::move(connecting);
    if (!connected) co_return connected.error();
    auto exchanging = exchange(stream, std::move(body));
    co_return co_await std::move(exchanging);
  }

  beast::ssl_stream<beast::tcp_stream> stream(executor, *tls);
  auto connecting = connect(beast::get_lowest_layer(stream), deadline);
  Result<void> connected = co_await std::move(connecting);
  if (!connected) co_return connected.error();
  // SNI carries host names only (RFC 6066); the certificate is checked against either.
  if (!url.literal && SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()) != 1) {
    co_return denied("cannot set the TLS server name");
  }
  stream.set_verify_mode(asio::ssl::verify_peer);
  stream.set_verify_callback(PeerNameCheck(url.host, url.literal));
  boost::system::error_code ec;
  co_await stream.async_handshake(asio::ssl::stream_base::client,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec == beast::error::timeout) co_return timedOut("in the TLS handshake");
  if (ec) {
    // OpenSSL's reason for a refused certificate says more than the handshake's error.
    const long verified = SSL_get_verify_result(stream.native_handle());
    const std::string why =
        verified != X509_V_OK
            ? fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(verified))
            : ec.message();
    co_return denied(fmt::format("TLS handshake with {} failed ({})", url.where, why));
  }
  auto exchanging = exchange(stream, std::move(body));
  co_return co_await std::move(exchanging);
}

WebhookClient::WebhookClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebhookClient::~WebhookClient() = default;

Result<std::unique_ptr<WebhookClient>> WebhookClient::create(asio::any_io_executor executor,
                                                             WebhookOptions options) {
  auto url = parseUrl(options.url);
  if (!url) return std::move(url).error();
  if (options.timeout.count() <= 0) {
    return Error(Errc::Config, "webhook: the timeout must be more than 0 ms");
  }
  if (options.maxAnswerBytes == 0) {
    return Error(Errc::Config, "webhook: the answer limit must be more than 0 bytes");
  }
  if (options.cacheTime.count() < 0) {
    return Error(Errc::Config, "webhook: the cache time must not be negative");
  }
  if (options.caFile && !url->tls) {
    return Error(Errc::Config, "webhook: caFile is set but the url is plain http://");
  }
  std::unique_ptr<asio::ssl::context> tls;
  if (url->tls) {
    auto made = makeTlsContext(options.caFile);
    if (!made) return std::move(made).error();
    tls = std::move(*made);
  } else if (!isLoopback(*url)) {
    portcullis::log(LogLevel::Warn,
                    fmt::format("webhook: the url is plain http to {}: login tokens cross the "
                                "network unencrypted",
                                url->where));
  }
  return std::unique_ptr<WebhookClient>(new WebhookClient(std::make_unique<Impl>(
      std::move(executor), std::move(options), std::move(*url), std::move(tls))));
}

asio::awaitable<Result<WebhookAnswer>> WebhookClient::verify(LoginRequest request) {
  const WipeOnExit wipeToken(request.token);
  if (auto refused = checkRequest(request)) co_return std::move(*refused);
  Impl& impl = *impl_;  // owned by the client, which outlives the call
  std::optional<CacheKey> key;
  if (impl.cache.enabled()) {
    key = impl.keyOf(request);
    if (auto hit = impl.cache.find(*key, Clock::now())) co_return std::move(*hit);
  }
  std::string body = requestBody(request);
  ++impl.sent;
  const Clock::time_point deadline = Clock::now() + impl.options.timeout;
  auto posting = impl.post(std::move(body), deadline);
  Result<std::string> answerBody = co_await std::move(posting);
  if (!answerBody) co_return std::move(answerBody).error();
  auto answer = parseWebhookAnswer(*answerBody);
  if (!answer) {
    co_return impl.denied(fmt::format("{} (from {})", answer.error().message(), impl.url.where));
  }
  if (key) impl.cache.insert(*key, *answer, Clock::now());
  co_return std::move(answer);
}

std::uint64_t WebhookClient::requestsSent() const { return impl_->sent; }

}  // namespace portcullis::online
