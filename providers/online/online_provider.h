// online_provider.h — the `online` provider's parts for programs that link it directly (tests, the
// `portcullis` tool): the provider made from options, the device side of a login, and the
// certificate file.
//
// On the wire (schema/online.capnp): the secret handshake under the app's network key (the
// dialer pins the acceptor's key from its address), then box-stream. The dialer's first frame is
// a Hello: with a certificate it starts a peer session, and the acceptor answers with its own;
// with a login it asks an identity service for a certificate, which answers and hangs up. Each
// side accepts the other's certificate only if a trusted service key signed it for this app and
// for the key the handshake proved, it has not expired (with the clock skew) and it is not
// revoked. A hello may carry the sender's newest revocation list; later lists travel as provider
// messages and end the sessions of the devices they revoke.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "certificate.h"
#include "portcullis/auth_provider.h"
#include "portcullis/config.h"
#include "portcullis/network_adapter.h"
#include "service.h"

namespace portcullis::online {

struct OnlineOptions {
  std::string appId;
  std::shared_ptr<const DeviceKey> identity;
  std::vector<Ed25519Key> serviceKeys;
  // This node's Signed certificate; ignored on an identity service, which issues its own.
  Bytes certificate;
  // Where `certificate` came from: reload() reads it again (after `portcullis login`).
  std::optional<std::filesystem::path> certificateFile;
  std::int64_t clockSkew = 60;
  std::optional<std::filesystem::path> revocationsFile;
  std::unique_ptr<IdentityService> service;
  // Unix seconds. Default: the system clock.
  std::function<std::int64_t()> clock;
  // Called once when 80 % of this node's certificate's lifetime has passed (Ditto's
  // authenticationExpiringSoon): time to log in again. A log line says so as well.
  std::function<void(const Certificate&)> expiringSoon;
};

// What every node's [auth.online] table says, the identity service's sub-table aside: for the
// provider's factory and for the tool's `login` and `whoami`, which run before there is a
// certificate. Errc::Config naming the file, line and key; the identity key file is created
// (mode 0600) when it does not exist.
struct OnlineSettings {
  std::string appId;
  std::shared_ptr<const DeviceKey> identity;
  std::vector<Ed25519Key> serviceKeys;
  std::optional<std::filesystem::path> certificateFile;
  std::int64_t clockSkew = 60;
  std::optional<std::filesystem::path> revocationsFile;
};
Result<OnlineSettings> readSettings(const ConfigTable& table);

// Errc::Config when the options do not fit together: no service key, no certificate and no
// service, a certificate that is not for this app and key, not signed by a service key, or
// expired; a revocations file that does not open.
Result<std::unique_ptr<AuthProvider>> makeOnlineProvider(OnlineOptions options);

// The system clock in Unix seconds: what certificates' times are measured in.
std::int64_t unixNow();

// What a login brought back.
struct LoginResult {
  Bytes certificate;  // Signed, for `identity`'s key
  Certificate parsed;
  std::optional<std::string> clientInfo;
};

// Logs in at the identity service at the other end of `stream` (a dialed stream whose address
// pins the service's key): the secret handshake under `appId`'s network key, then the login.
// Errc::Denied with the service's reason when it refuses, or when the certificate it sends is not
// signed by one of `serviceKeys` or not for this key and app.
asio::awaitable<Result<LoginResult>> login(std::unique_ptr<Stream> stream, std::string appId,
                                           std::shared_ptr<const DeviceKey> identity,
                                           std::vector<Ed25519Key> serviceKeys,
                                           std::string provider, std::string token);

// The certificate file: written atomically, mode 0600, fsync'd (it is a bearer of access until it
// expires); read back with a size bound.
Result<void> saveCertificate(const std::filesystem::path& file, ByteView certificate);
Result<Bytes> loadCertificate(const std::filesystem::path& file);

// The certificate an online provider holds for this node (for `portcullis whoami`), or nullopt
// when `provider` is not an online provider.
std::optional<Certificate> ownCertificate(const AuthProvider& provider);

}  // namespace portcullis::online
