// service.cc — the online provider's identity service: login validators and certificate issuing.

#include "service.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>

#include "jwt.h"
#include "portcullis/logging.h"
#include "webhook.h"

namespace portcullis::online {

namespace {

constexpr std::int64_t kDefaultLifetime = 24 * 3600;
constexpr std::int64_t kMaxLifetime = 366 * 24 * 3600;

Error denied(std::string message) { return Error(Errc::Denied, std::move(message)); }

// A JWT verified here with the application's public keys (jwt.h).
class JwtValidator final : public LoginValidator {
 public:
  JwtValidator(std::filesystem::path keysFile, JwtKeys keys, JwtPolicy policy)
      : keysFile_(std::move(keysFile)), keys_(std::move(keys)), policy_(std::move(policy)) {}

  asio::awaitable<Result<Grant>> validate(std::string token, std::string,
                                          std::int64_t now) override {
    auto claims = verifyJwt(token, keys_, policy_, now);
    if (!claims) co_return std::move(claims).error();
    co_return Grant{.userId = std::move(claims->subject),
                    .roles = std::move(claims->roles),
                    .permissions = {},
                    .expiresAt = claims->expiresAt,
                    .clientInfo = std::nullopt};
  }

  // The keys are re-read all or nothing: a bad file keeps the old keys.
  Result<void> reload() override {
    auto keys = JwtKeys::load(keysFile_);
    if (!keys) return std::move(keys).error();
    keys_ = std::move(*keys);
    return {};
  }

 private:
  std::filesystem::path keysFile_;
  JwtKeys keys_;
  JwtPolicy policy_;
};

// The application's webhook decides (webhook.h). Its client is made on the first login, on the
// provider's executor.
class WebhookValidator final : public LoginValidator {
 public:
  WebhookValidator(std::string appId, std::string name, WebhookOptions options)
      : appId_(std::move(appId)), name_(std::move(name)), options_(std::move(options)) {}

  asio::awaitable<Result<Grant>> validate(std::string token, std::string peerKeyHex,
                                          std::int64_t now) override {
    if (!client_) {
      auto executor = co_await asio::this_coro::executor;
      auto client = WebhookClient::create(executor, options_);
      if (!client) co_return denied("webhook: " + client.error().message());
      client_ = std::move(*client);
    }
    LoginRequest request{.appId = appId_, .provider = name_, .token = std::move(token),
                         .peerKey = std::move(peerKeyHex)};
    auto answer = co_await client_->verify(std::move(request));
    if (!answer) co_return std::move(answer).error();
    if (!answer->authenticate) co_return denied("webhook: the application refused the token");
    co_return Grant{.userId = std::move(answer->userId),
                    .roles = std::move(answer->roles),
                    .permissions = std::move(answer->permissions),
                    .expiresAt = now + answer->expirationSeconds,
                    .clientInfo = answer->clientInfo.empty()
                                      ? std::nullopt
                                      : std::optional<std::string>(std::move(answer->clientInfo))};
  }

 private:
  std::string appId_;
  std::string name_;
  WebhookOptions options_;
  std::unique_ptr<WebhookClient> client_;
};

// Development only: one shared token lets anyone in with every permission. Tokens are compared
// by their BLAKE2b hashes in constant time, so neither length nor content leaks through timing.
class PlaygroundValidator final : public LoginValidator {
 public:
  explicit PlaygroundValidator(std::string_view token) : digest_(digestOf(token)) {}

  asio::awaitable<Result<Grant>> validate(std::string token, std::string peerKeyHex,
                                          std::int64_t now) override {
    const auto digest = digestOf(token);
    sodium_memzero(token.data(), token.size());
    if (sodium_memcmp(digest.data(), digest_.data(), digest.size()) != 0) {
      co_return denied("playground: not the playground token");
    }
    co_return Grant{.userId = "playground-" + peerKeyHex.substr(0, 16),
                    .roles = {"playground"},
                    .permissions = {.read = {"*"}, .write = {"*"}},
                    .expiresAt = now + kDefaultLifetime,
                    .clientInfo = std::nullopt};
  }

 private:
  static std::array<std::uint8_t, 32> digestOf(std::string_view token) {
    std::array<std::uint8_t, 32> out{};
    crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(token.data()),
                       token.size(), nullptr, 0);
    return out;
  }
  std::array<std::uint8_t, 32> digest_;
};

Result<Permissions> permissionsOf(const ConfigTable& role) {
  if (auto ok = role.expectKeys({"read", "write"}); !ok) return ok.error();
  auto read = role.strings("read");
  if (!read) return std::move(read).error();
  auto write = role.strings("write");
  if (!write) return std::move(write).error();
  Permissions out{.read = std::move(*read), .write = std::move(*write)};
  if (auto ok = checkPermissions(out); !ok) {
    const bool inRead = ok.error().message().starts_with("read");
    return role.error(inRead ? "read" : "write", ok.error().message());
  }
  out.merge({});  // sorted, without repeats
  return out;
}

Result<std::string> readTokenFile(const ConfigTable& table, const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return table.error("token-file", fmt::format("cannot read {}", file.string()));
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.size() < 16) {
    return table.error("token-file", "the playground token must have at least 16 bytes");
  }
  return token;
}

Result<std::unique_ptr<LoginValidator>> validatorOf(const ConfigTable& table,
                                                    const std::string& appId,
                                                    const std::string& name) {
  auto type = table.requiredString("type");
  if (!type) return std::move(type).error();
  if (*type == "jwt") {
    if (auto ok = table.expectKeys({"type", "keys", "issuer", "audience", "clock-skew",
                                    "roles-claim"});
        !ok) {
      return ok.error();
    }
    auto keysFile = table.path("keys");
    if (!keysFile) return std::move(keysFile).error();
    if (!*keysFile) return table.error("keys", "missing (a PEM or JWKS file)");
    auto keys = JwtKeys::load(**keysFile);
    if (!keys) return table.error("keys", keys.error().message());
    auto issuer = table.requiredString("issuer");
    if (!issuer) return std::move(issuer).error();
    auto audience = table.requiredString("audience");
    if (!audience) return std::move(audience).error();
    auto skew = table.integer("clock-skew");
    if (!skew) return std::move(skew).error();
    if (skew->value_or(60) < 0 || skew->value_or(60) > 3600) {
      return table.error("clock-skew", "expected 0..3600 seconds");
    }
    auto rolesClaim = table.string("roles-claim");
    if (!rolesClaim) return std::move(rolesClaim).error();
    JwtPolicy policy{.issuer = std::move(*issuer),
                     .audience = std::move(*audience),
                     .clockSkew = std::chrono::seconds(skew->value_or(60)),
                     .rolesClaim = rolesClaim->value_or("")};
    if (auto ok = checkJwtPolicy(policy); !ok) return table.error("", ok.error().message());
    return std::unique_ptr<LoginValidator>(
        std::make_unique<JwtValidator>(**keysFile, std::move(*keys), std::move(policy)));
  }
  if (*type == "webhook") {
    if (auto ok = table.expectKeys({"type", "url", "timeout", "ca", "cache"}); !ok) {
      return ok.error();
    }
    auto url = table.requiredString("url");
    if (!url) return std::move(url).error();
    auto timeout = table.integer("timeout");
    if (!timeout) return std::move(timeout).error();
    if (timeout->value_or(5000) < 1 || timeout->value_or(5000) > 60'000) {
      return table.error("timeout", "expected 1..60000 milliseconds");
    }
    auto ca = table.path("ca");
    if (!ca) return std::move(ca).error();
    auto cache = table.integer("cache");
    if (!cache) return std::move(cache).error();
    if (cache->value_or(0) < 0 || cache->value_or(0) > 86'400) {
      return table.error("cache", "expected 0..86400 seconds");
    }
    WebhookOptions options{.url = std::move(*url),
                           .timeout = std::chrono::milliseconds(timeout->value_or(5000)),
                           .caFile = *ca,
                           .cacheTime = std::chrono::seconds(cache->value_or(0))};
    // The URL and the CA file are checked now, at start-up, not at the first login.
    asio::io_context probe;
    if (auto client = WebhookClient::create(probe.get_executor(), options); !client) {
      return table.error("url", client.error().message());
    }
    return std::unique_ptr<LoginValidator>(
        std::make_unique<WebhookValidator>(appId, name, std::move(options)));
  }
  if (*type == "playground") {
    if (auto ok = table.expectKeys({"type", "token-file"}); !ok) return ok.error();
    auto file = table.path("token-file");
    if (!file) return std::move(file).error();
    if (!*file) return table.error("token-file", "missing (a file holding the shared token)");
    auto token = readTokenFile(table, **file);
    if (!token) return std::move(token).error();
    portcullis::log(LogLevel::Warn,
                    fmt::format("auth provider 'online': login '{}' is a playground: anyone with "
                                "its one shared token may read and write every document. Not "
                                "for production.", name));
    auto validator = std::make_unique<PlaygroundValidator>(*token);
    sodium_memzero(token->data(), token->size());
    return std::unique_ptr<LoginValidator>(std::move(validator));
  }
  return table.error("type", "expected \"jwt\", \"webhook\" or \"playground\"");
}

}  // namespace

Result<void> LoginValidator::reload() { return {}; }

Result<std::unique_ptr<IdentityService>> IdentityService::fromConfig(const ConfigTable& table,
                                                                     std::string appId) {
  if (auto ok = table.expectKeys({"signing-key", "lifetime", "roles", "login"}); !ok) {
    return ok.error();
  }
  auto keyFile = table.path("signing-key");
  if (!keyFile) return std::move(keyFile).error();
  if (!*keyFile) return table.error("signing-key", "missing (a key file made by keygen)");
  auto key = DeviceKey::load((*keyFile)->string());
  if (!key) return table.error("signing-key", key.error().message());
  auto lifetime = table.integer("lifetime");
  if (!lifetime) return std::move(lifetime).error();
  if (lifetime->value_or(kDefaultLifetime) < 60 ||
      lifetime->value_or(kDefaultLifetime) > kMaxLifetime) {
    return table.error("lifetime", "expected 60..31622400 seconds");
  }

  std::map<std::string, Permissions> roles;
  auto rolesTable = table.table("roles");
  if (!rolesTable) return std::move(rolesTable).error();
  for (const std::string& name : rolesTable->keys()) {
    if (!printableText(name, kMaxRoleBytes)) return rolesTable->error(name, "not a role name");
    auto role = rolesTable->table(name);
    if (!role) return std::move(role).error();
    auto permissions = permissionsOf(*role);
    if (!permissions) return std::move(permissions).error();
    roles.emplace(name, std::move(*permissions));
  }

  std::map<std::string, std::unique_ptr<LoginValidator>> validators;
  auto loginTable = table.table("login");
  if (!loginTable) return std::move(loginTable).error();
  for (const std::string& name : loginTable->keys()) {
    if (!printableText(name, kMaxProviderNameBytes)) {
      return loginTable->error(name, "not a login provider name");
    }
    auto entry = loginTable->table(name);
    if (!entry) return std::move(entry).error();
    auto validator = validatorOf(*entry, appId, name);
    if (!validator) return std::move(validator).error();
    validators.emplace(name, std::move(*validator));
  }
  if (validators.empty()) {
    return table.error("login", "no login provider: add a [..service.login.NAME] table");
  }
  return std::make_unique<IdentityService>(std::move(appId), std::move(*key),
                                           lifetime->value_or(kDefaultLifetime), std::move(roles),
                                           std::move(validators));
}

IdentityService::IdentityService(std::string appId, DeviceKey signingKey, std::int64_t maxLifetime,
                                 std::map<std::string, Permissions> roles,
                                 std::map<std::string, std::unique_ptr<LoginValidator>> validators)
    : appId_(std::move(appId)),
      signingKey_(std::move(signingKey)),
      maxLifetime_(maxLifetime),
      roles_(std::move(roles)),
      validators_(std::move(validators)) {}

asio::awaitable<LoginAnswer> IdentityService::login(Login request, Ed25519Key peerKey,
                                                    std::int64_t now) {
  const std::string peerHex = toHex(peerKey);
  auto it = validators_.find(request.provider);
  if (it == validators_.end()) {
    portcullis::log(LogLevel::Info,
                    fmt::format("online: login of device {} refused: no login provider '{}'",
                                peerHex, request.provider));
    co_return LoginAnswer{.body = fmt::format("no login provider named '{}'", request.provider),
                          .clientInfo = std::nullopt};
  }
  std::string token(request.token.begin(), request.token.end());
  sodium_memzero(request.token.data(), request.token.size());
  auto validated = co_await it->second->validate(std::move(token), peerHex, now);
  if (!validated) {
    portcullis::log(LogLevel::Info, fmt::format("online: login of device {} with '{}' refused: {}",
                                                peerHex, request.provider,
                                                validated.error().message()));
    co_return LoginAnswer{.body = fmt::format("login provider '{}' did not accept the token",
                                              request.provider),
                          .clientInfo = std::nullopt};
  }
  if (!printableText(validated->userId, kMaxUserIdBytes) || validated->expiresAt <= now) {
    portcullis::log(LogLevel::Info,
                    fmt::format("online: login of device {} with '{}' refused: {}", peerHex,
                                request.provider,
                                validated->expiresAt <= now ? "the grant has already ended"
                                                            : "the user ID is not printable"));
    co_return LoginAnswer{.body = fmt::format("login provider '{}' did not accept the token",
                                              request.provider),
                          .clientInfo = std::nullopt};
  }
  auto certificate = issue(*validated, peerKey, now);
  if (!certificate) {
    portcullis::log(LogLevel::Info, fmt::format("online: login of device {} with '{}' refused: {}",
                                                peerHex, request.provider,
                                                certificate.error().message()));
    co_return LoginAnswer{.body = "the certificate would carry more permissions than one may hold",
                          .clientInfo = std::nullopt};
  }
  portcullis::log(LogLevel::Info, fmt::format("online: device {} logged in as '{}' with '{}'",
                                              peerHex, validated->userId, request.provider));
  co_return LoginAnswer{.body = std::move(*certificate),
                        .clientInfo = std::move(validated->clientInfo)};
}

Result<Bytes> IdentityService::issue(const Grant& grant, const Ed25519Key& peerKey,
                                     std::int64_t now) const {
  Certificate c;
  c.appId = appId_;
  c.peerKey = peerKey;
  c.userId = grant.userId;
  for (const std::string& role : grant.roles) {
    if (c.roles.size() == kMaxRoles) break;
    if (!printableText(role, kMaxRoleBytes)) continue;
    c.roles.push_back(role);
    if (auto it = roles_.find(role); it != roles_.end()) c.permissions.merge(it->second);
  }
  c.permissions.merge(grant.permissions);
  if (auto ok = checkPermissions(c.permissions); !ok) return ok.error();
  c.issuedAt = now;
  c.expiresAt = std::min(grant.expiresAt, now + maxLifetime_);
  randombytes_buf(&c.serial, sizeof c.serial);
  return signCertificate(c, signingKey_);
}

Bytes IdentityService::issueOwn(const Ed25519Key& nodeKey, std::int64_t now) const {
  return issue(Grant{.userId = "service",
                     .roles = {},
                     .permissions = {.read = {"*"}, .write = {"*"}},
                     .expiresAt = now + maxLifetime_,
                     .clientInfo = std::nullopt},
               nodeKey, now)
      .value();  // two entries: within every bound
}

// Each validator reloads all or nothing; the first that fails stops the reload there.
Result<void> IdentityService::reload() {
  for (auto& [name, validator] : validators_) {
    if (auto ok = validator->reload(); !ok) {
      return Error(ok.error().code(), fmt::format("login '{}': {}", name, ok.error().message()));
    }
  }
  return {};
}

}  // namespace portcullis::online
