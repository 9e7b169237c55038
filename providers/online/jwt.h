// jwt.h — the `online` provider's check of an identity token: a compact JWS (RFC 7515) carrying a
// JWT (RFC 7519) that the application's identity provider signed, verified locally against
// public keys from a PEM or JWKS file. Only RS256, ES256 and EdDSA (Ed25519) are accepted, each
// only with a key of its own type; the claims checked are iss, aud, exp, nbf, iat and sub, plus
// an optional roles claim.
//
// Provider layer (providers/online). No I/O but JwtKeys::load. A JwtKeys is immutable once made:
// verifyJwt may be called with the same keys from any number of threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bounds.h"
#include "portcullis/result.h"

namespace portcullis::online {

// bounds.h gives the bounds shared with the rest of the provider: kMaxTokenBytes (longer tokens
// are refused, Malformed, before anything in them is decoded), kMaxUserIdBytes (`sub`),
// kMaxRoleBytes and kMaxRoles.

// A larger key file is refused (Config) without being parsed.
inline constexpr std::size_t kMaxKeyFileBytes = 1024 * 1024;
// RSA moduli outside this range are refused when keys are loaded.
inline constexpr unsigned kMinRsaBits = 2048;
inline constexpr unsigned kMaxRsaBits = 8192;
// The largest JwtPolicy::clockSkew: a larger one is a mistake (milliseconds for seconds, say).
inline constexpr std::chrono::seconds kMaxClockSkew{3600};

// What a token must say to be accepted, beyond a good signature.
struct JwtPolicy {
  std::string issuer;                  // `iss` must equal it (required, non-empty)
  std::string audience;                // must equal `aud` or appear in the `aud` array (required)
  std::chrono::seconds clockSkew{60};  // allowed for exp, nbf and iat; 0 to kMaxClockSkew
  std::string rolesClaim;              // top-level claim holding roles; empty: no roles are read
};

// Checks a policy as verifyJwt does before each token: Config when issuer or audience is empty or
// clockSkew is negative or above kMaxClockSkew. For the provider's create(), so that a bad
// policy stops start-up rather than denying every user.
Result<void> checkJwtPolicy(const JwtPolicy& policy);

// What an accepted token says.
// A token whose sub or roles break these bounds is Denied, not trimmed.
struct JwtClaims {
  std::string subject;             // `sub`: the user ID, 1..kMaxUserIdBytes of printable ASCII
  std::vector<std::string> roles;  // from JwtPolicy::rolesClaim: at most kMaxRoles, each
                                   // 1..kMaxRoleBytes of printable ASCII, in the token's order
  std::int64_t expiresAt = 0;      // `exp`, Unix seconds (a fraction rounded down)
};

// The public keys tokens may be signed with: RSA (kMinRsaBits to kMaxRsaBits) for RS256, EC
// P-256 for ES256, Ed25519 for EdDSA. Each key serves exactly the one algorithm of its type.
// Move-only; owns its OpenSSL handles. A moved-from JwtKeys holds no key and verifies nothing.
class JwtKeys {
 public:
  // The key file named `file`: PEM or JWKS, told apart by content (a JWKS starts with '{').
  // Config errors name the file and say what is wrong with which key (PEM block or JWKS entry,
  // counted from 1). Refused: a file over kMaxKeyFileBytes or unreadable, no usable key, a
  // private key anywhere in it, or a key of an unsupported type, curve or size.
  static Result<JwtKeys> load(const std::filesystem::path& file);
  // One or more "PUBLIC KEY" (SubjectPublicKeyInfo) blocks; text between blocks is ignored, any
  // other block (a private key, a certificate, PKCS#1 "RSA PUBLIC KEY") is an error. PEM keys have
  // no kid, so a token that names a kid never verifies against them.
  static Result<JwtKeys> fromPem(std::string_view pem);
  // {"keys": [...]} with kty RSA (n, e), EC with crv P-256 (x, y) or OKP with crv Ed25519 (x);
  // optional kid, alg (which must be the one algorithm of the key's type) and use. Entries whose
  // "use" is present and not "sig" are skipped, whatever their type: encryption keys published
  // beside signing keys are common and harmless. Every other entry must be a usable key.
  static Result<JwtKeys> fromJwks(std::string_view json);

  JwtKeys(JwtKeys&&) noexcept;
  JwtKeys& operator=(JwtKeys&&) noexcept;
  JwtKeys(const JwtKeys&) = delete;
  JwtKeys& operator=(const JwtKeys&) = delete;
  ~JwtKeys();

  // How many keys were loaded (skipped JWKS entries are not counted).
  std::size_t size() const;

  struct Impl;  // defined in jwt.cc: OpenSSL and libsodium stay out of this header

 private:
  explicit JwtKeys(std::unique_ptr<const Impl> impl);
  friend Result<JwtClaims> verifyJwt(std::string_view, const JwtKeys&, const JwtPolicy&,
                                     std::int64_t);
  std::unique_ptr<const Impl> impl_;
};

// Verifies a compact JWS `token` against `keys` and `policy` at `nowUnixSeconds`, and returns its
// claims. Errors:
//   * Malformed: the bytes are not a well-formed token: longer than kMaxTokenBytes, not three
//     segments of strict base64url (no padding, no '+' or '/'), a header or (once the signature
//     holds) a payload that is not a JSON object, or one that repeats a member read here (alg,
//     kid, typ, crit; iss, aud, sub, exp, nbf, iat and the roles claim);
//   * Denied: a well-formed token that must not be accepted: an algorithm other than RS256, ES256
//     and EdDSA, no key of the algorithm's type (or none with the header's kid), a bad signature,
//     a `crit` header, a `typ` other than JWT, or a claim that is missing, of the wrong type, out
//     of range or not what the policy asks for (expired, not yet valid, issued in the future,
//     another issuer or audience);
//   * Config: the policy fails checkJwtPolicy.
// The payload is parsed only after the signature holds. Messages say precisely why (they are
// meant for the identity service's log) and never contain the token or its signature; values
// taken from the token are quoted, escaped and cut short.
[[nodiscard]] Result<JwtClaims> verifyJwt(std::string_view token, const JwtKeys& keys,
                                          const JwtPolicy& policy, std::int64_t nowUnixSeconds);

}  // namespace portcullis::online
