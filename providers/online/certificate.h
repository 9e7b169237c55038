// certificate.h — the `online` provider's signed objects and messages on the wire
// (schema/online.capnp): peer certificates, revocation lists, and the hello, login and notice
// messages of its sessions.
//
// Decoders take peer bytes: they are strict (canonical signed bodies, exact key and signature
// sizes, printable text, bounded lists and blobs), never throw on any input, and fail with
// Errc::Malformed naming the field. A signature that does not verify, or a signer that is not
// trusted, is Errc::Denied. Encoders write canonical Cap'n Proto. Pure functions; any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "bounds.h"
#include "permissions.h"
#include "portcullis/result.h"
#include "portcullis/secret_handshake.h"
#include "portcullis/types.h"

namespace portcullis::online {

inline constexpr std::uint16_t kWireVersion = 1;
// An app ID: 1..256 bytes of printable ASCII (user IDs and roles: bounds.h).
inline constexpr std::size_t kMaxAppIdBytes = 256;
// A signed certificate (two lists of kMaxPermissionEntries document IDs fit with room to spare).
inline constexpr std::size_t kMaxCertificateBytes = 256u << 10;
// A revocation list: at most 65,536 serials.
inline constexpr std::size_t kMaxRevokedSerials = 1u << 16;
inline constexpr std::size_t kMaxRevocationsBytes = 8 * kMaxRevokedSerials + 4096;
inline constexpr std::size_t kMaxProviderNameBytes = 64;
// A hello carries a certificate and a revocation list; a login answer a certificate.
inline constexpr std::size_t kMaxHelloBytes = kMaxCertificateBytes + kMaxRevocationsBytes + 4096;

using Ed25519Key = std::array<std::uint8_t, 32>;

// What an identity service vouches for: this key belongs to this user of this app, with these
// roles and permissions, from issuedAt to expiresAt (Unix seconds).
struct Certificate {
  std::string appId;
  Ed25519Key peerKey{};
  std::string userId;
  std::vector<std::string> roles;
  Permissions permissions;
  std::int64_t issuedAt = 0;
  std::int64_t expiresAt = 0;
  std::uint64_t serial = 0;

  friend bool operator==(const Certificate&, const Certificate&) = default;
};

// The serials an identity service has revoked, replacing every list of a lower sequence.
struct Revocations {
  std::string appId;
  std::uint64_t sequence = 0;
  std::int64_t issuedAt = 0;
  std::vector<std::uint64_t> serials;  // strictly ascending

  bool revoked(std::uint64_t serial) const;
  friend bool operator==(const Revocations&, const Revocations&) = default;
};

// The Signed encoding of `certificate` under `signer` (the identity service's key). Does not
// check the certificate: tests sign bad ones this way.
Bytes signCertificate(const Certificate& certificate, const DeviceKey& signer);
Bytes signRevocations(const Revocations& revocations, const DeviceKey& signer);
// The Signed encoding of any `body` for `kind`'s purpose: what the two above wrap, for tests and
// fuzz targets that sign bodies the encoders would never write.
enum class SignedKind : std::uint8_t { Certificate, Revocations };
Bytes signBody(ByteView body, SignedKind kind, const DeviceKey& signer);

// Opens a Signed certificate: Malformed for bytes that are not one (or whose body breaks a field
// rule), Denied when its signer is not in `trusted` or its signature does not verify. Says
// nothing about the app, the holder or the time: the caller checks those (checkCertificate).
Result<Certificate> openCertificate(ByteView signedBytes, std::span<const Ed25519Key> trusted);
Result<Revocations> openRevocations(ByteView signedBytes, std::span<const Ed25519Key> trusted);

// Why an opened certificate is not acceptable from the peer whose handshake proved `peerKey`, at
// `now` (Unix seconds) with `skew` seconds of clock difference allowed, under `revocations`: a
// Denied error saying which rule it breaks, or success.
Result<void> checkCertificate(const Certificate& certificate, std::string_view appId,
                              const Ed25519Key& peerKey, std::int64_t now, std::int64_t skew,
                              const Revocations* revocations);

// The messages of a session.
struct Login {
  std::string provider;
  Bytes token;
  friend bool operator==(const Login&, const Login&) = default;
};
struct Hello {
  std::variant<Bytes, Login> body;  // a Signed certificate, or a login
  std::optional<Bytes> revocations;        // a Signed revocation list
};
struct LoginAnswer {
  std::variant<Bytes, std::string> body;  // a Signed certificate, or why the login was refused
  std::optional<std::string> clientInfo;
};
struct Notice {
  Bytes revocations;  // a Signed revocation list
};

Bytes encodeHello(const Hello& hello);
Result<Hello> decodeHello(ByteView bytes);
Bytes encodeLoginAnswer(const LoginAnswer& answer);
Result<LoginAnswer> decodeLoginAnswer(ByteView bytes);
Bytes encodeNotice(const Notice& notice);
Result<Notice> decodeNotice(ByteView bytes);

// The secret handshake's network key of an app: BLAKE2b-256("portcullis/online/v1/" ‖ appId).
// Public, like document-id's: it separates apps, it does not keep anyone out.
NetworkKey networkKeyOf(std::string_view appId);

// Printable ASCII of 1..max bytes: what app IDs, user IDs and roles must be.
bool printableText(std::string_view text, std::size_t max);

}  // namespace portcullis::online
