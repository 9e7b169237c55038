// service.h — the identity service of the `online` provider: it checks a device's login token
// with one of its validators (a JWT verified locally, the application's webhook, or the
// development playground's shared token) and signs the device's peer certificate.
//
// Its table in a deployment's config, under the provider's ([auth.online.service]):
//
//   signing-key = "service.key"   # required: the Ed25519 key that signs certificates (keygen);
//                                 # its public key goes into every peer's service-keys
//   lifetime    = 86400           # optional: the longest certificate it issues, in seconds
//   [auth.online.service.roles.NAME]        # a role's permissions: read = [...], write = [...]
//   [auth.online.service.login.NAME]        # a validator a device names when it logs in:
//   type = "jwt"        keys = "jwks.json" (or a PEM file), issuer, audience,
//                       clock-skew = 60, roles-claim = "roles"
//   type = "webhook"    url, timeout = 5000 (ms), ca = "ca.pem", cache = 0 (s)
//   type = "playground" token-file = "playground.token"   (development only: logs a warning)
//
// A certificate carries the roles the validator reported and the union of those roles'
// permissions with what the webhook granted. Runs on the provider's executor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "certificate.h"
#include "portcullis/asio.h"
#include "portcullis/config.h"
#include "portcullis/result.h"

namespace portcullis::online {

// What a validator found out about a token's holder.
struct Grant {
  std::string userId;
  std::vector<std::string> roles;
  Permissions permissions;                // beyond what the roles give
  std::int64_t expiresAt = 0;             // the token's or the answer's end (Unix seconds)
  std::optional<std::string> clientInfo;  // for the device only
};

class LoginValidator {
 public:
  virtual ~LoginValidator() = default;
  // Errc::Denied (with the reason, for the service's log) for a token that does not let its
  // holder in; never includes the token in a message.
  virtual asio::awaitable<Result<Grant>> validate(std::string token, std::string peerKeyHex,
                                                  std::int64_t now) = 0;
  // Re-reads what may change (a JWT validator's keys). Default: nothing.
  virtual Result<void> reload();
};

class IdentityService {
 public:
  // Reads the [auth.online.service] table. Errc::Config naming the file, line and key.
  static Result<std::unique_ptr<IdentityService>> fromConfig(const ConfigTable& table,
                                                             std::string appId);
  IdentityService(std::string appId, DeviceKey signingKey, std::int64_t maxLifetime,
                  std::map<std::string, Permissions> roles,
                  std::map<std::string, std::unique_ptr<LoginValidator>> validators);

  // Checks a device's login and answers it: a certificate for `peerKey`, or a refusal that tells
  // the device only what it may know (the log gets the details).
  asio::awaitable<LoginAnswer> login(Login request, Ed25519Key peerKey, std::int64_t now);

  // A certificate for this node itself (user "service", every document), for its peer sessions.
  Bytes issueOwn(const Ed25519Key& nodeKey, std::int64_t now) const;

  const DeviceKey& signingKey() const { return signingKey_; }
  Result<void> reload();

 private:
  // Malformed when the roles' and the grant's permissions together exceed a list's bound.
  Result<Bytes> issue(const Grant& grant, const Ed25519Key& peerKey, std::int64_t now) const;

  std::string appId_;
  DeviceKey signingKey_;
  std::int64_t maxLifetime_;
  std::map<std::string, Permissions> roles_;
  std::map<std::string, std::unique_ptr<LoginValidator>> validators_;
};

}  // namespace portcullis::online
