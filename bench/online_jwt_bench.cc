// online_jwt_bench — the online provider's JWT verification (providers/online/jwt.h) against the
// bare signature check it wraps, on the same token in the same run. Prints one JSON line per
// figure (bench/json_line.h), three per algorithm (RS256 with a 2048-bit key, ES256, EdDSA):
//   online_jwt.verify  "impl":"portcullis"  verifyJwt() on a realistic token (an IdP's header with
//                      kid, ~450 bytes of claims with an aud array and roles) against a JWKS of
//                      four keys: verifications/s
//   online_jwt.verify  "impl":"bare"        the signature alone on the same signing input:
//                      EVP_DigestVerify with SHA-256 fetched once (RS256; ES256 with the DER form
//                      of the signature made once) or crypto_sign_verify_detached (EdDSA)
//   online_jwt.verify  "impl":"ratio portcullis/bare"  target >= 0.8, with "met"
// Each side runs for --seconds (default 1) per algorithm, in 10 rounds that alternate between the
// two sides so that load from other work on the machine falls on both alike. The rates are the
// medians of the rounds; the ratio is the median of the rounds' ratios.
//
// Usage: online_jwt_bench [--seconds S]
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "json_line.h"
#include "jwt.h"

namespace {

using namespace portcullis;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kNow = 1767225600;
constexpr int kRounds = 10;
constexpr double kTarget = 0.8;

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "online_jwt_bench: %s\n", message.c_str());
  std::exit(1);
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct MdFree {
  void operator()(EVP_MD* m) const noexcept { EVP_MD_free(m); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

const unsigned char* bytesOf(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string base64Url(std::string_view bytes) {
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytesOf(bytes), bytes.size(), kVariant);
  out.resize(out.size() - 1);
  return out;
}

std::string bnParam(EVP_PKEY* key, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) die(std::string("cannot read ") + name);
  std::string out(static_cast<std::size_t>(pad > 0 ? pad : BN_num_bytes(bn)), '\0');
  const int written =
      BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  if (written <= 0) die("BN_bn2binpad failed");
  return out;
}

std::string digestSign(EVP_PKEY* key, std::string_view input) {
  const std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, bytesOf(input), input.size()) != 1) {
    die("cannot sign");
  }
  std::string out(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &size, bytesOf(input),
                     input.size()) != 1) {
    die("cannot sign");
  }
  out.resize(size);
  return out;
}

// DER ECDSA-Sig-Value to JWS's R || S.
std::string rawEcdsa(const std::string& der) {
  const unsigned char* cursor = bytesOf(der);
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size()));
  if (sig == nullptr) die("d2i_ECDSA_SIG failed");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  std::string out(64, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  const bool ok = BN_bn2binpad(r, bytes, 32) == 32 && BN_bn2binpad(s, bytes + 32, 32) == 32;
  ECDSA_SIG_free(sig);
  if (!ok) die("R || S");
  return out;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// Calls `once` in batches until `seconds` have passed; returns calls per second.
double rate(const std::function<void()>& once, double seconds) {
  constexpr int kBatch = 16;
  std::size_t calls = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    for (int i = 0; i < kBatch; ++i) once();
    calls += kBatch;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return static_cast<double>(calls) / elapsed;
}

struct Case {
  std::string alg;
  std::string token;
  std::function<bool()> bare;  // the signature alone, on the token's own signing input
};

void measure(const Case& c, const online::JwtKeys& keys, const online::JwtPolicy& policy,
             double seconds) {
  const auto jwt = [&] {
    if (!online::verifyJwt(c.token, keys, policy, kNow)) die(c.alg + ": verifyJwt refused");
  };
  const auto bare = [&] {
    if (!c.bare()) die(c.alg + ": the bare verification failed");
  };
  jwt();  // a failure shows before any timing
  bare();
  std::vector<double> ours;
  std::vector<double> theirs;
  std::vector<double> ratios;
  const double slice = seconds / kRounds;
  for (int round = 0; round < kRounds; ++round) {
    // Alternate which side goes first, so that neither always follows the other.
    const bool oursFirst = round % 2 == 0;
    const double a = rate(oursFirst ? std::function<void()>(jwt) : bare, slice);
    const double b = rate(oursFirst ? std::function<void()>(bare) : jwt, slice);
    ours.push_back(oursFirst ? a : b);
    theirs.push_back(oursFirst ? b : a);
    ratios.push_back(ours.back() / theirs.back());
  }
  const double ratio = median(ratios);
  bench::JsonLine("online_jwt.verify")
      .str("alg", c.alg)
      .str("impl", "portcullis")
      .integer("token_bytes", static_cast<long long>(c.token.size()))
      .num("value", median(ours), 0)
      .str("unit", "verifications/s")
      .print();
  bench::JsonLine("online_jwt.verify")
      .str("alg", c.alg)
      .str("impl", "bare")
      .num("value", median(theirs), 0)
      .str("unit", "verifications/s")
      .print();
  bench::JsonLine("online_jwt.verify")
      .str("alg", c.alg)
      .str("impl", "ratio portcullis/bare")
      .num("value", ratio, 3)
      .str("unit", "x")
      .num("target", kTarget, 1)
      .flag("met", ratio >= kTarget)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) die("sodium_init failed");
  double seconds = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      die("usage: online_jwt_bench [--seconds S]");
    }
  }
  if (!(seconds > 0)) die("--seconds must be positive");

  const Pkey rsa(EVP_RSA_gen(2048));
  const Pkey otherRsa(EVP_RSA_gen(2048));  // a rotated-out key, as IdPs publish them
  const Pkey ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!rsa || !otherRsa || !ec) die("key generation failed");
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> edPublic{};
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> edSecret{};
  crypto_sign_keypair(edPublic.data(), edSecret.data());

  const auto rsaJwk = [&](EVP_PKEY* key, const char* kid) {
    return std::string(R"({"kty":"RSA","use":"sig","alg":"RS256","kid":")") + kid + R"(","n":")" +
           base64Url(bnParam(key, OSSL_PKEY_PARAM_RSA_N)) + R"(","e":")" +
           base64Url(bnParam(key, OSSL_PKEY_PARAM_RSA_E)) + R"("})";
  };
  const std::string jwks =
      R"({"keys":[)" + rsaJwk(otherRsa.get(), "2024-rsa") + "," + rsaJwk(rsa.get(), "2025-rsa") +
      R"(,{"kty":"EC","use":"sig","alg":"ES256","kid":"2025-ec","crv":"P-256","x":")" +
      base64Url(bnParam(ec.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32)) + R"(","y":")" +
      base64Url(bnParam(ec.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32)) +
      R"("},{"kty":"OKP","use":"sig","alg":"EdDSA","kid":"2025-ed","crv":"Ed25519","x":")" +
      base64Url(std::string_view(reinterpret_cast<const char*>(edPublic.data()), edPublic.size())) +
      R"("}]})";
  auto keys = online::JwtKeys::fromJwks(jwks);
  if (!keys) die(keys.error().message());
  const online::JwtPolicy policy{.issuer = "https://tenant.example-idp.com/",
                                 .audience = "portcullis-sync",
                                 .clockSkew = std::chrono::seconds(60),
                                 .rolesClaim = "https://example.com/roles"};
  // Claims as an IdP issues them for an API: more than the verifier reads.
  const std::string claims =
      R"({"https://example.com/roles":["editor","viewer"],"https://example.com/email":)"
      R"("ada.lovelace@example.com","iss":"https://tenant.example-idp.com/",)"
      R"("sub":"auth0|64f1c2a7e4b0d91a2c3e5f70","aud":["portcullis-sync",)"
      R"("https://tenant.example-idp.com/userinfo"],"iat":)" +
      std::to_string(kNow - 120) + R"(,"exp":)" + std::to_string(kNow + 86280) +
      R"(,"azp":"Xk2mP9qL4rT7vW1yZ3bC5dF8gH0jK6nQ","scope":"openid profile email offline_access",)"
      R"("permissions":["documents:read","documents:write"]})";
  const auto signingInput = [&](const char* alg, const char* kid) {
    return base64Url(std::string(R"({"alg":")") + alg + R"(","typ":"JWT","kid":")" + kid +
                     R"("})") +
           "." + base64Url(claims);
  };

  // The bare side as a careful caller would write it: SHA-256 fetched once, a fresh context per
  // verification (verifyJwt does the same).
  const std::unique_ptr<EVP_MD, MdFree> sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  if (!sha256) die("OpenSSL offers no SHA-256");
  const auto evpVerify = [&sha256](EVP_PKEY* key, const std::string& input,
                                   const std::string& signature) {
    const std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, sha256.get(), nullptr, key) == 1 &&
           EVP_DigestVerify(ctx.get(), bytesOf(signature), signature.size(), bytesOf(input),
                            input.size()) == 1;
  };

  const std::string rsInput = signingInput("RS256", "2025-rsa");
  const std::string rsSignature = digestSign(rsa.get(), rsInput);
  const std::string esInput = signingInput("ES256", "2025-ec");
  const std::string esDer = digestSign(ec.get(), esInput);
  const std::string edInput = signingInput("EdDSA", "2025-ed");
  std::string edSignature(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(edSignature.data()), nullptr,
                       bytesOf(edInput), edInput.size(), edSecret.data());
  sodium_memzero(edSecret.data(), edSecret.size());

  const std::vector<Case> cases = {
      {"RS256", rsInput + "." + base64Url(rsSignature),
       [&] { return evpVerify(rsa.get(), rsInput, rsSignature); }},
      {"ES256", esInput + "." + base64Url(rawEcdsa(esDer)),
       [&] { return evpVerify(ec.get(), esInput, esDer); }},
      {"EdDSA", edInput + "." + base64Url(edSignature),
       [&] {
         return crypto_sign_verify_detached(bytesOf(edSignature), bytesOf(edInput), edInput.size(),
                                            edPublic.data()) == 0;
       }},
  };
  for (const Case& c : cases) measure(c, *keys, policy, seconds);
  return 0;
}
