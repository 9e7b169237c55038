// Fuzz target: the online provider's JWT verification (providers/online/jwt.h): JwtKeys::fromPem
// and JwtKeys::fromJwks on fuzzed key-set text, and verifyJwt on a fuzzed token against two fixed
// key sets holding the same three public keys (RSA 2048, P-256, Ed25519): one from PEM, whose
// keys have no kid, and one from JWKS (kids "rsa", "p256", "ed").
//
// Input: flags (1 byte) ‖ n (u16 LE) ‖ n bytes of key-set text ‖ the token (the rest).
//   kResign (0x01): the token's signature segment is replaced, before verifying, by an EdDSA
//     signature of its header.payload made with the fixed Ed25519 key (whose seed is below), so
//     that mutated headers and claims get past the signature to the header and claim checks.
//   kNoSkew (0x02): the policy allows no clock skew and reads no roles claim.
// Every input is verified at the fixed time kNow.
//
// Invariants, beyond "no crash, no leak, no hang":
//   * key-set text either loads (at least one key) or fails with Errc::Config, through fromPem
//     and fromJwks alike; a set that loads verifies the token too, under the invariants below;
//   * verifyJwt refuses only with Malformed or Denied, and Malformed for a token longer than
//     kMaxTokenBytes; no message holds the token or its signature segment (when longer than the
//     64 bytes a message may quote of any one value from the token);
//   * an accepted token is three segments of the base64url alphabet; its subject is 1 to
//     kMaxUserIdBytes of printable ASCII, its roles at most kMaxRoles of 1 to kMaxRoleBytes of
//     printable ASCII, and expiresAt + skew >= now;
//   * an accepted token is refused once the first character of its signature changes;
//   * what the PEM set accepts, the JWKS set accepts with the same claims (a token the PEM set
//     accepts names no kid, and then both sets try the same keys);
//   * verifying the same token twice gives the same verdict.
//
// Seeds (corpus/jwt/seed-*) were made once, with the private keys of the fixed RSA and P-256 keys,
// which were then thrown away: valid tokens of each algorithm, with and without kid, and the
// refusals (alg none, HS256 keyed with the RSA public key, a kid of the wrong key type, expired,
// crit, a repeated claim, a huge exp), key-set texts (PEM, JWKS, a private key), and re-signed
// EdDSA claims (kResign) that reach the claim checks.
#include <sodium.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "jwt.h"

namespace portcullis::fuzz {
namespace {

using online::JwtClaims;
using online::JwtKeys;
using online::JwtPolicy;

constexpr const char* kTarget = "jwt_fuzz";
constexpr std::uint8_t kResign = 0x01;
constexpr std::uint8_t kNoSkew = 0x02;
constexpr std::int64_t kNow = 1767225600;  // 2026-01-01T00:00:00Z, as in the seeds

// The fixed Ed25519 key: crypto_sign_seed_keypair of 32 bytes of 0x5e. Its public key is the
// third PEM block below and the "ed" JWK.
constexpr std::uint8_t kEd25519SeedByte = 0x5e;

constexpr std::string_view kPem = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAld3Pi2qm19ae7yJEPZ9t
ZraozrsMUtrwLhp+nKIERTEGefgzhRyDdXtCWmIC2d1U/f9wh/RQuUq8JcZGPLW4
uS1zEYQbRd1hd5efS3Puwg2jWAH3kBO5K9+fWs9egb9HEaFEBtLsL6xUfcnoAEWI
vzj7Ykc5ucuXXO0xc6hWstwExmGNMrY79I07wJqW1omPbkv2LWh+r2+wMPNEIXhJ
8GhAoH83nb7qaY5QnGcA6HxUtkqF2Tb485pihdR4lZnnRvzd9mBdP69F1OFO2jsX
sJvDzY7GChn0GeJCyHtJTmyUa+uhjPdgRPlGdesVzIPTfXhxgYI/4Oo7abuaH99T
YQIDAQAB
-----END PUBLIC KEY-----
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBh180Q6Kp5OomAe3OH0pPkTqb6B9
CLWlr13osC8QAJdipkUZFGupUCo+MIdY7nKitbKS8FK1l9SrbRlLKt1toA==
-----END PUBLIC KEY-----
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAgUZkDwJJOvT7xU/jM4jnXcLJN64LdyfMKyr7G3UZmj4=
-----END PUBLIC KEY-----
)";

constexpr std::string_view kJwks =
    R"({"keys":[)"
    R"({"kty":"RSA","kid":"rsa","alg":"RS256","use":"sig","n":"ld3Pi2qm19ae7yJEPZ9tZraozrsMUtrwLh)"
    R"(p-nKIERTEGefgzhRyDdXtCWmIC2d1U_f9wh_RQuUq8JcZGPLW4uS1zEYQbRd1hd5efS3Puwg2jWAH3kBO5K9-fWs9e)"
    R"(gb9HEaFEBtLsL6xUfcnoAEWIvzj7Ykc5ucuXXO0xc6hWstwExmGNMrY79I07wJqW1omPbkv2LWh-r2-wMPNEIXhJ8Gh)"
    R"(AoH83nb7qaY5QnGcA6HxUtkqF2Tb485pihdR4lZnnRvzd9mBdP69F1OFO2jsXsJvDzY7GChn0GeJCyHtJTmyUa-uhjP)"
    R"(dgRPlGdesVzIPTfXhxgYI_4Oo7abuaH99TYQ","e":"AQAB"},)"
    R"({"kty":"EC","kid":"p256","alg":"ES256","crv":"P-256",)"
    R"("x":"Bh180Q6Kp5OomAe3OH0pPkTqb6B9CLWlr13osC8QAJc",)"
    R"("y":"YqZFGRRrqVAqPjCHWO5yorWykvBStZfUq20ZSyrdbaA"},)"
    R"({"kty":"OKP","kid":"ed","alg":"EdDSA","crv":"Ed25519",)"
    R"("x":"gUZkDwJJOvT7xU_jM4jnXcLJN64LdyfMKyr7G3UZmj4"}]})";

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

JwtKeys mustLoad(Result<JwtKeys> keys, const char* which) {
  if (!keys) fail(kTarget, std::string(which) + " does not load: " + keys.error().message());
  return std::move(keys).value();
}

struct Setup {
  JwtKeys pem = mustLoad(JwtKeys::fromPem(kPem), "the fixed PEM");
  JwtKeys jwks = mustLoad(JwtKeys::fromJwks(kJwks), "the fixed JWKS");
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> edSecret{};

  Setup() {
    std::array<unsigned char, crypto_sign_SEEDBYTES> seed{};
    seed.fill(kEd25519SeedByte);
    std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> pk{};
    crypto_sign_seed_keypair(pk.data(), edSecret.data(), seed.data());
    check(pem.size() == 3 && jwks.size() == 3, "the fixed key sets do not hold three keys");
  }
};

Setup& setup() {
  static Setup s;
  return s;
}

std::string base64Url(const unsigned char* bytes, std::size_t size) {
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(size, kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes, size, kVariant);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// The token with its signature segment replaced by an EdDSA signature of everything before the
// last dot, made with the fixed Ed25519 key. A token without a dot is left as it is.
std::string resigned(std::string_view token) {
  const auto dot = token.rfind('.');
  if (dot == std::string_view::npos) return std::string(token);
  const std::string_view input = token.substr(0, dot);
  std::array<unsigned char, crypto_sign_BYTES> signature{};
  crypto_sign_detached(signature.data(), nullptr,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                       setup().edSecret.data());
  return std::string(token.substr(0, dot + 1)) + base64Url(signature.data(), signature.size());
}

bool printableAscii(std::string_view s) {
  for (const char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

bool base64UrlOrDot(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

bool sameClaims(const JwtClaims& a, const JwtClaims& b) {
  return a.subject == b.subject && a.roles == b.roles && a.expiresAt == b.expiresAt;
}

// Verifies `token` with `keys` and checks every invariant on the verdict; returns it.
Result<JwtClaims> verify(std::string_view token, const JwtKeys& keys, const JwtPolicy& policy) {
  auto result = online::verifyJwt(token, keys, policy, kNow);
  auto again = online::verifyJwt(token, keys, policy, kNow);
  check(result.has_value() == again.has_value(), "two verifications of one token disagree");
  if (!result) {
    const Error& error = result.error();
    check(error.code() == Errc::Malformed || error.code() == Errc::Denied,
          "refused with another Errc than Malformed or Denied");
    check(error.code() == again.error().code(), "two refusals of one token disagree");
    const auto dot = token.rfind('.');
    const std::string_view signature = dot == std::string_view::npos ? "" : token.substr(dot + 1);
    // A message quotes at most 64 bytes of any one value from the token (its alg, kid, iss...),
    // which may be anything, the signature's text included; more than that it must not hold.
    check(token.size() <= 64 || error.message().find(token) == std::string::npos,
          "a message holds the token");
    check(signature.size() <= 64 || error.message().find(signature) == std::string::npos,
          "a message holds the signature");
    return result;
  }
  check(sameClaims(*result, *again), "two verifications of one token give different claims");
  check(token.size() <= online::kMaxTokenBytes, "a token over kMaxTokenBytes was accepted");
  std::size_t dots = 0;
  for (const char c : token) {
    check(base64UrlOrDot(c), "an accepted token holds a character outside base64url");
    dots += c == '.' ? 1 : 0;
  }
  check(dots == 2, "an accepted token does not have three segments");
  const JwtClaims& claims = *result;
  check(!claims.subject.empty() && claims.subject.size() <= online::kMaxUserIdBytes &&
            printableAscii(claims.subject),
        "an accepted subject is empty, too long or not printable ASCII");
  check(claims.expiresAt + policy.clockSkew.count() >= kNow, "an expired token was accepted");
  check(claims.roles.size() <= online::kMaxRoles, "too many roles accepted");
  for (const std::string& role : claims.roles) {
    check(!role.empty() && role.size() <= online::kMaxRoleBytes && printableAscii(role),
          "a role is empty, too long or not printable ASCII");
  }
  if (policy.rolesClaim.empty()) check(claims.roles.empty(), "roles read with no roles claim");
  // The signature is checked: any change to its first character gets the token refused.
  std::string changed(token);
  const std::size_t first = changed.rfind('.') + 1;
  check(first < changed.size(), "a token with an empty signature was accepted");
  changed[first] = changed[first] == 'A' ? 'B' : 'A';
  check(!online::verifyJwt(changed, keys, policy, kNow), "a changed signature was accepted");
  return result;
}

void run(ByteView input) {
  Setup& s = setup();
  Reader reader(input);
  const std::uint8_t flags = reader.byte();
  const std::uint16_t keyBytes = reader.u16();
  const ByteView keyText = reader.take(keyBytes);
  const ByteView rest = reader.rest();
  const std::string_view text(reinterpret_cast<const char*>(keyText.data()), keyText.size());
  std::string token(reinterpret_cast<const char*>(rest.data()), rest.size());
  if ((flags & kResign) != 0) token = resigned(token);

  JwtPolicy policy{.issuer = "https://id.example.com/",
                   .audience = "portcullis-sync",
                   .clockSkew = std::chrono::seconds(60),
                   .rolesClaim = "roles"};
  if ((flags & kNoSkew) != 0) {
    policy.clockSkew = std::chrono::seconds(0);
    policy.rolesClaim.clear();
  }

  const auto fromPem = verify(token, s.pem, policy);
  const auto fromJwks = verify(token, s.jwks, policy);
  if (fromPem) {
    check(fromJwks.has_value(), "the PEM set accepts a token the JWKS set refuses");
    check(sameClaims(*fromPem, *fromJwks), "the PEM and JWKS sets give different claims");
  }
  if (token.size() > online::kMaxTokenBytes) {
    check(!fromPem && fromPem.error().code() == Errc::Malformed,
          "a token over kMaxTokenBytes is not refused as Malformed");
  }

  if (keyText.empty()) return;
  for (const bool jwks : {false, true}) {
    auto keys = jwks ? JwtKeys::fromJwks(text) : JwtKeys::fromPem(text);
    if (!keys) {
      check(keys.error().code() == Errc::Config, "a key set failed with another Errc than Config");
      continue;
    }
    check(keys->size() > 0, "a key set loaded with no key");
    (void)verify(token, *keys, policy);
  }
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("jwt_fuzz", "sodium_init failed");
  (void)portcullis::fuzz::setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Nothing here may throw on hostile bytes: an exception is a broken invariant.
  try {
    portcullis::fuzz::run(portcullis::ByteView(data, size));
  } catch (const std::exception& e) {
    portcullis::fuzz::fail("jwt_fuzz", std::string("threw: ") + e.what());
  } catch (...) {
    portcullis::fuzz::fail("jwt_fuzz", "threw a non-standard exception");
  }
  return 0;
}
