// The online provider's JWT verification (providers/online/jwt.h): each algorithm is accepted
// from PEM and from JWKS, with and without kid; every rule is refused with the Errc jwt.h gives
// it, with a message that names the reason and never holds the token or its signature; key files
// that are missing, too large, private, of the wrong type, curve or size, or not JSON are refused
// naming the file and the key.
//
// Keys are made here with OpenSSL (RSA, P-256) and from fixed seeds with libsodium (Ed25519), and
// tokens are signed here, so no vector depends on jwt.cc's own code.
#include "jwt.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "portcullis/types.h"

namespace portcullis::online {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::int64_t kNow = 1767225600;  // 2026-01-01T00:00:00Z
constexpr const char* kIssuer = "https://id.example.com/";
constexpr const char* kAudience = "portcullis-sync";
constexpr std::int64_t kSkew = 60;

JwtPolicy policy() {
  return JwtPolicy{.issuer = kIssuer,
                   .audience = kAudience,
                   .clockSkew = std::chrono::seconds(kSkew),
                   .rolesClaim = "roles"};
}

static_assert(!std::is_copy_constructible_v<JwtKeys>);
static_assert(std::is_nothrow_move_constructible_v<JwtKeys>);

// --- OpenSSL and libsodium on the test's side ----------------------------------------------------

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free_all(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
struct BnFree {
  void operator()(BIGNUM* b) const noexcept { BN_free(b); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const noexcept { ECDSA_SIG_free(s); }
};

void need(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test set-up: ") + what);
}

const unsigned char* bytesOf(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string b64url(std::string_view bytes, int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytesOf(bytes), bytes.size(), variant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string fromB64url(std::string_view text) {
  std::string out(text.size(), '\0');
  std::size_t size = 0;
  need(sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                         text.size(), nullptr, &size, nullptr,
                         sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0,
       "base64url");
  out.resize(size);
  return out;
}

Pkey generate(const char* type, const char* curve) {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve));
  need(key != nullptr, "key generation");
  return key;
}

Pkey generateRsa(unsigned bits) {
  Pkey key(EVP_RSA_gen(bits));
  need(key != nullptr, "RSA key generation");
  return key;
}

std::string pemOf(EVP_PKEY* key, bool privateKey = false) {
  const std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  need(bio != nullptr, "BIO_new");
  need((privateKey ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
                   : PEM_write_bio_PUBKEY(bio.get(), key)) == 1,
       "PEM_write_bio");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string derOf(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int size = i2d_PUBKEY(key, &der);
  need(size > 0, "i2d_PUBKEY");
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(size));
  OPENSSL_free(der);
  return out;
}

// A big-number parameter of a key, big-endian, left-padded to `pad` bytes when pad > 0.
std::string bnParam(EVP_PKEY* key, const char* name, int pad = 0) {
  BIGNUM* raw = nullptr;
  need(EVP_PKEY_get_bn_param(key, name, &raw) == 1, name);
  const std::unique_ptr<BIGNUM, BnFree> bn(raw);
  std::string out(static_cast<std::size_t>(pad > 0 ? pad : BN_num_bytes(bn.get())), '\0');
  need(BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()),
                    static_cast<int>(out.size())) > 0,
       "BN_bn2binpad");
  return out;
}

std::string digestSign(EVP_PKEY* key, std::string_view input) {
  const std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  need(ctx && EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1,
       "EVP_DigestSignInit");
  std::size_t size = 0;
  need(EVP_DigestSign(ctx.get(), nullptr, &size, bytesOf(input), input.size()) == 1,
       "EVP_DigestSign size");
  std::string out(size, '\0');
  need(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &size,
                      bytesOf(input), input.size()) == 1,
       "EVP_DigestSign");
  out.resize(size);
  return out;
}

// ES256 as JWS has it: OpenSSL's DER signature rewritten as R || S.
std::string es256Sign(EVP_PKEY* key, std::string_view input) {
  const std::string der = digestSign(key, input);
  const unsigned char* cursor = bytesOf(der);
  const std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(
      d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
  need(sig != nullptr, "d2i_ECDSA_SIG");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(64, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  need(BN_bn2binpad(r, bytes, 32) == 32 && BN_bn2binpad(s, bytes + 32, 32) == 32, "R || S");
  return out;
}

std::string hmac(const char* digest, std::string_view secret, std::string_view input) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  std::size_t size = 0;
  need(EVP_Q_mac(nullptr, "HMAC", nullptr, digest, nullptr, secret.data(), secret.size(),
                 bytesOf(input), input.size(), out.data(), out.size(), &size) != nullptr,
       "EVP_Q_mac");
  return std::string(reinterpret_cast<const char*>(out.data()), size);
}

struct Ed25519 {
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> pk{};
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> sk{};

  explicit Ed25519(unsigned char seedByte) {
    std::array<unsigned char, crypto_sign_SEEDBYTES> seed{};
    seed.fill(seedByte);
    crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
  }
  std::string publicBytes() const {
    return std::string(reinterpret_cast<const char*>(pk.data()), pk.size());
  }
  std::string sign(std::string_view input) const {
    std::string out(crypto_sign_BYTES, '\0');
    crypto_sign_detached(reinterpret_cast<unsigned char*>(out.data()), nullptr, bytesOf(input),
                         input.size(), sk.data());
    return out;
  }
  std::string pem() const {
    Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, pk.data(), pk.size()));
    need(key != nullptr, "EVP_PKEY_new_raw_public_key");
    return pemOf(key.get());
  }
};

// Made once: RSA key generation takes a while.
struct TestKeys {
  Pkey rsa = generateRsa(2048);
  Pkey otherRsa = generateRsa(2048);
  Pkey ec = generate("EC", "P-256");
  Pkey otherEc = generate("EC", "P-256");
  Ed25519 ed{0x11};
  Ed25519 otherEd{0x22};
  Pkey rsa1024 = generateRsa(1024);
  Pkey p384 = generate("EC", "P-384");
};

const TestKeys& testKeys() {
  static const TestKeys keys;
  return keys;
}

enum class Alg { Rs256, Es256, EdDsa };

std::string algName(Alg alg) {
  switch (alg) {
    case Alg::Rs256: return "RS256";
    case Alg::Es256: return "ES256";
    case Alg::EdDsa: return "EdDSA";
  }
  return "?";
}

void PrintTo(Alg alg, std::ostream* os) { *os << algName(alg); }

std::string kidOf(Alg alg) {
  switch (alg) {
    case Alg::Rs256: return "rsa-1";
    case Alg::Es256: return "ec-1";
    case Alg::EdDsa: return "ed-1";
  }
  return "?";
}

std::string sign(Alg alg, std::string_view input, bool otherKey = false) {
  const TestKeys& k = testKeys();
  switch (alg) {
    case Alg::Rs256: return digestSign((otherKey ? k.otherRsa : k.rsa).get(), input);
    case Alg::Es256: return es256Sign((otherKey ? k.otherEc : k.ec).get(), input);
    case Alg::EdDsa: return (otherKey ? k.otherEd : k.ed).sign(input);
  }
  return {};
}

Json rsaJwk(EVP_PKEY* key, const std::string& kid) {
  return {{"kty", "RSA"},
          {"kid", kid},
          {"use", "sig"},
          {"alg", "RS256"},
          {"n", b64url(bnParam(key, OSSL_PKEY_PARAM_RSA_N))},
          {"e", b64url(bnParam(key, OSSL_PKEY_PARAM_RSA_E))}};
}

Json ecJwk(EVP_PKEY* key, const std::string& kid, const char* crv = "P-256", int size = 32) {
  return {{"kty", "EC"},
          {"kid", kid},
          {"crv", crv},
          {"x", b64url(bnParam(key, OSSL_PKEY_PARAM_EC_PUB_X, size))},
          {"y", b64url(bnParam(key, OSSL_PKEY_PARAM_EC_PUB_Y, size))}};
}

Json edJwk(const Ed25519& key, const std::string& kid) {
  return {{"kty", "OKP"}, {"kid", kid}, {"crv", "Ed25519"}, {"x", b64url(key.publicBytes())}};
}

std::string allPem() {
  const TestKeys& k = testKeys();
  return "RSA, for RS256:\n" + pemOf(k.rsa.get()) + "P-256, for ES256:\n" + pemOf(k.ec.get()) +
         "Ed25519, for EdDSA:\n" + k.ed.pem();
}

std::string allJwks() {
  const TestKeys& k = testKeys();
  Json ec = ecJwk(k.ec.get(), kidOf(Alg::Es256));
  ec["alg"] = "ES256";
  return Json{
      {"keys", {rsaJwk(k.rsa.get(), kidOf(Alg::Rs256)), ec, edJwk(k.ed, kidOf(Alg::EdDsa))}}}
      .dump(2);
}

JwtKeys mustLoad(Result<JwtKeys> keys) {
  need(keys.has_value(), keys ? "" : keys.error().message().c_str());
  return std::move(keys).value();
}

const JwtKeys& pemKeys() {
  static const JwtKeys keys = mustLoad(JwtKeys::fromPem(allPem()));
  return keys;
}

const JwtKeys& jwksKeys() {
  static const JwtKeys keys = mustLoad(JwtKeys::fromJwks(allJwks()));
  return keys;
}

// --- tokens --------------------------------------------------------------------------------------

Json headerFor(Alg alg, std::optional<std::string> kid = std::nullopt) {
  Json header = {{"alg", algName(alg)}, {"typ", "JWT"}};
  if (kid) header["kid"] = *kid;
  return header;
}

Json claims() {
  return {{"iss", kIssuer},   {"aud", kAudience},  {"sub", "user-42"},
          {"iat", kNow - 10}, {"exp", kNow + 600}, {"roles", {"editor", "viewer"}}};
}

std::string signingInput(std::string_view headerText, std::string_view payloadText) {
  return b64url(headerText) + "." + b64url(payloadText);
}

// A token over the exact header and payload text given, signed by `alg`'s test key.
std::string rawToken(std::string_view headerText, std::string_view payloadText, Alg alg,
                     bool otherKey = false) {
  const std::string input = signingInput(headerText, payloadText);
  return input + "." + b64url(sign(alg, input, otherKey));
}

std::string token(const Json& header, const Json& payload, Alg alg, bool otherKey = false) {
  return rawToken(header.dump(), payload.dump(), alg, otherKey);
}

std::string edToken(const Json& payload) {
  return token(headerFor(Alg::EdDsa), payload, Alg::EdDsa);
}

Result<JwtClaims> check(std::string_view jwt, const JwtKeys& keys = pemKeys(),
                        std::int64_t now = kNow, const JwtPolicy& p = policy()) {
  return verifyJwt(jwt, keys, p, now);
}

testing::AssertionResult accepted(const Result<JwtClaims>& result) {
  if (result) return testing::AssertionSuccess();
  return testing::AssertionFailure()
         << "refused (" << errcName(result.error().code()) << "): " << result.error().message();
}

// Refused with `code` and a message that holds `why` but not the token or its signature.
testing::AssertionResult refused(const Result<JwtClaims>& result, Errc code, std::string_view why,
                                 std::string_view jwt) {
  if (result) return testing::AssertionFailure() << "accepted, subject " << result->subject;
  const Error& error = result.error();
  if (error.code() != code) {
    return testing::AssertionFailure() << "refused with " << errcName(error.code()) << ", not "
                                       << errcName(code) << ": " << error.message();
  }
  if (error.message().find(why) == std::string::npos) {
    return testing::AssertionFailure()
           << "the message does not say \"" << why << "\": " << error.message();
  }
  const auto dot = jwt.rfind('.');
  const std::string_view signature = dot == std::string_view::npos ? "" : jwt.substr(dot + 1);
  if ((jwt.size() >= 16 && error.message().find(jwt) != std::string::npos) ||
      (signature.size() >= 16 && error.message().find(signature) != std::string::npos)) {
    return testing::AssertionFailure() << "the message holds the token or its signature";
  }
  return testing::AssertionSuccess();
}

// Refused with Malformed or Denied, whichever: for inputs where either is right.
testing::AssertionResult refusedAtAll(const Result<JwtClaims>& result) {
  if (result) return testing::AssertionFailure() << "accepted, subject " << result->subject;
  const Errc code = result.error().code();
  if (code != Errc::Malformed && code != Errc::Denied) {
    return testing::AssertionFailure()
           << "refused with " << errcName(code) << ": " << result.error().message();
  }
  return testing::AssertionSuccess();
}

// Splits a token at its dots (for tests that rebuild one).
std::vector<std::string> segmentsOf(const std::string& jwt) {
  std::vector<std::string> out(1);
  for (const char c : jwt) {
    if (c == '.') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

std::string joined(const std::vector<std::string>& segments) {
  std::string out;
  for (std::size_t i = 0; i < segments.size(); ++i) out += (i == 0 ? "" : ".") + segments[i];
  return out;
}

// A fresh folder under the temporary directory, removed with everything in it.
class TempFolder {
 public:
  TempFolder() {
    std::array<unsigned char, 8> random{};
    randombytes_buf(random.data(), random.size());
    path_ = fs::temp_directory_path() / ("portcullis-jwt-test-" + toHex(ByteView(random)));
    fs::create_directory(path_);
  }
  ~TempFolder() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;

  fs::path write(const std::string& name, std::string_view text) const {
    const fs::path file = path_ / name;
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    need(out.good(), "writing a temporary file");
    return file;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// --- each algorithm ------------------------------------------------------------------------------

class OnlineJwtAlgorithm : public testing::TestWithParam<Alg> {};

INSTANTIATE_TEST_SUITE_P(Each, OnlineJwtAlgorithm,
                         testing::Values(Alg::Rs256, Alg::Es256, Alg::EdDsa),
                         [](const testing::TestParamInfo<Alg>& info) {
                           return algName(info.param);
                         });

TEST_P(OnlineJwtAlgorithm, AcceptsATokenFromPemWithoutKid) {
  const auto result = check(token(headerFor(GetParam()), claims(), GetParam()));
  ASSERT_TRUE(accepted(result));
  EXPECT_EQ(result->subject, "user-42");
  EXPECT_EQ(result->roles, (std::vector<std::string>{"editor", "viewer"}));
  EXPECT_EQ(result->expiresAt, kNow + 600);
}

TEST_P(OnlineJwtAlgorithm, AcceptsATokenFromJwksWithItsKid) {
  const auto result =
      check(token(headerFor(GetParam(), kidOf(GetParam())), claims(), GetParam()), jwksKeys());
  ASSERT_TRUE(accepted(result));
  EXPECT_EQ(result->subject, "user-42");
}

TEST_P(OnlineJwtAlgorithm, AcceptsATokenFromJwksWithoutKid) {
  EXPECT_TRUE(accepted(check(token(headerFor(GetParam()), claims(), GetParam()), jwksKeys())));
}

TEST_P(OnlineJwtAlgorithm, AcceptsKeysLoadedFromFilesOfEitherFormat) {
  const TempFolder folder;
  const auto pem = JwtKeys::load(folder.write("keys.pem", allPem()));
  const auto jwks = JwtKeys::load(folder.write("keys.json", allJwks()));
  ASSERT_TRUE(pem) << pem.error().message();
  ASSERT_TRUE(jwks) << jwks.error().message();
  EXPECT_TRUE(accepted(check(token(headerFor(GetParam()), claims(), GetParam()), *pem)));
  EXPECT_TRUE(accepted(
      check(token(headerFor(GetParam(), kidOf(GetParam())), claims(), GetParam()), *jwks)));
}

TEST_P(OnlineJwtAlgorithm, RefusesAKidThatNoKeyHas) {
  // PEM keys have no kid: a token that names one never verifies against them.
  const std::string named = token(headerFor(GetParam(), kidOf(GetParam())), claims(), GetParam());
  EXPECT_TRUE(refused(check(named), Errc::Denied, "no key has kid", named));
  const std::string unknown = token(headerFor(GetParam(), "retired-2019"), claims(), GetParam());
  EXPECT_TRUE(refused(check(unknown, jwksKeys()), Errc::Denied, "no key has kid \"retired-2019\"",
                      unknown));
}

TEST_P(OnlineJwtAlgorithm, RefusesATokenSignedByAnotherKeyOfTheSameType) {
  const std::string jwt = token(headerFor(GetParam()), claims(), GetParam(), /*otherKey=*/true);
  EXPECT_TRUE(refused(check(jwt), Errc::Denied, "bad " + algName(GetParam()) + " signature", jwt));
  const std::string withKid =
      token(headerFor(GetParam(), kidOf(GetParam())), claims(), GetParam(), /*otherKey=*/true);
  EXPECT_TRUE(refused(check(withKid, jwksKeys()), Errc::Denied, "signature", withKid));
}

TEST_P(OnlineJwtAlgorithm, RefusesEverySignatureWithOneBitFlipped) {
  const std::vector<std::string> parts =
      segmentsOf(token(headerFor(GetParam()), claims(), GetParam()));
  const std::string signature = fromB64url(parts[2]);
  for (std::size_t bit = 0; bit < signature.size() * 8; ++bit) {
    std::string flipped = signature;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    const std::string jwt = parts[0] + "." + parts[1] + "." + b64url(flipped);
    ASSERT_TRUE(refused(check(jwt), Errc::Denied, "signature", jwt)) << "bit " << bit;
  }
}

TEST_P(OnlineJwtAlgorithm, RefusesATamperedPayloadOrHeader) {
  std::vector<std::string> parts = segmentsOf(token(headerFor(GetParam()), claims(), GetParam()));
  Json admin = claims();
  admin["sub"] = "admin";
  std::vector<std::string> payload = parts;
  payload[1] = b64url(admin.dump());
  EXPECT_TRUE(refused(check(joined(payload)), Errc::Denied, "bad", joined(payload)));
  Json header = headerFor(GetParam());
  header["x"] = 1;
  std::vector<std::string> headerChanged = parts;
  headerChanged[0] = b64url(header.dump());
  EXPECT_TRUE(refused(check(joined(headerChanged)), Errc::Denied, "bad", joined(headerChanged)));
}

TEST_P(OnlineJwtAlgorithm, RefusesEveryPrefixOfAValidToken) {
  const std::string jwt = token(headerFor(GetParam()), claims(), GetParam());
  ASSERT_TRUE(accepted(check(jwt)));
  for (std::size_t size = 0; size < jwt.size(); ++size) {
    ASSERT_TRUE(refusedAtAll(check(jwt.substr(0, size)))) << "prefix of " << size << " bytes";
  }
}

TEST_P(OnlineJwtAlgorithm, RefusesItsSignatureUnderEveryOtherAlgorithm) {
  // The signature stays; only the header's alg changes, to each allowed algorithm that needs
  // another type of key: the key decides, never the header.
  for (const Alg other : {Alg::Rs256, Alg::Es256, Alg::EdDsa}) {
    if (other == GetParam()) continue;
    SCOPED_TRACE(algName(other));
    const std::string signedInput = signingInput(headerFor(GetParam()).dump(), claims().dump());
    const std::string signature = b64url(sign(GetParam(), signedInput));
    const std::string relabelled =
        signingInput(headerFor(other).dump(), claims().dump()) + "." + signature;
    EXPECT_TRUE(refusedAtAll(check(relabelled)));
    EXPECT_TRUE(refusedAtAll(check(relabelled, jwksKeys())));
    // Named by kid: the key with that kid is of the wrong type.
    const std::string byKid =
        signingInput(headerFor(other, kidOf(GetParam())).dump(), claims().dump()) + "." + signature;
    EXPECT_TRUE(
        refused(check(byKid, jwksKeys()), Errc::Denied, "cannot verify " + algName(other), byKid));
    // Signed correctly but under the other alg's header, with that alg's kid pointing at a key
    // of the token's own type: still refused.
    const std::string resigned = token(headerFor(other, kidOf(GetParam())), claims(), GetParam());
    EXPECT_TRUE(refused(check(resigned, jwksKeys()), Errc::Denied, "cannot verify", resigned));
  }
}

TEST_P(OnlineJwtAlgorithm, RefusesAnExtraOrMissingSegment) {
  const std::string jwt = token(headerFor(GetParam()), claims(), GetParam());
  for (const std::string& bad :
       {jwt + ".e30", jwt + ".", "." + jwt, jwt.substr(0, jwt.rfind('.'))}) {
    EXPECT_TRUE(refused(check(bad), Errc::Malformed, "segments", bad));
  }
}

// --- dates ---------------------------------------------------------------------------------------

TEST(OnlineJwt, RefusesAnExpiredTokenAndHonoursTheSkewAtTheEdge) {
  Json payload = claims();
  payload["exp"] = kNow - kSkew;
  payload.erase("iat");
  const std::string jwt = edToken(payload);
  EXPECT_TRUE(accepted(check(jwt)));
  EXPECT_TRUE(refused(check(jwt, pemKeys(), kNow + 1), Errc::Denied, "expired", jwt));
  JwtPolicy strict = policy();
  strict.clockSkew = std::chrono::seconds(0);
  EXPECT_TRUE(accepted(check(jwt, pemKeys(), kNow - kSkew, strict)));
  EXPECT_TRUE(
      refused(check(jwt, pemKeys(), kNow - kSkew + 1, strict), Errc::Denied, "expired", jwt));
}

TEST(OnlineJwt, RefusesATokenNotYetValidAndHonoursTheSkewAtTheEdge) {
  Json payload = claims();
  payload["nbf"] = kNow + kSkew;
  const std::string jwt = edToken(payload);
  EXPECT_TRUE(accepted(check(jwt)));
  EXPECT_TRUE(refused(check(jwt, pemKeys(), kNow - 1), Errc::Denied, "not yet valid", jwt));
}

TEST(OnlineJwt, RefusesATokenIssuedInTheFutureBeyondTheSkew) {
  Json payload = claims();
  payload["iat"] = kNow + kSkew;
  const std::string jwt = edToken(payload);
  EXPECT_TRUE(accepted(check(jwt)));
  EXPECT_TRUE(refused(check(jwt, pemKeys(), kNow - 1), Errc::Denied, "issued in the future", jwt));
}

TEST(OnlineJwt, RoundsFractionalDatesTowardRefusal) {
  Json payload = claims();
  payload["exp"] = static_cast<double>(kNow - kSkew) + 0.5;  // counts as kNow - kSkew
  EXPECT_TRUE(accepted(check(edToken(payload))));
  EXPECT_EQ(check(edToken(payload))->expiresAt, kNow - kSkew);
  payload["exp"] = static_cast<double>(kNow - kSkew) - 0.5;  // counts as kNow - kSkew - 1
  EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "expired", edToken(payload)));
  payload = claims();
  payload["nbf"] = static_cast<double>(kNow + kSkew) - 0.5;  // counts as kNow + kSkew
  EXPECT_TRUE(accepted(check(edToken(payload))));
  payload["nbf"] = static_cast<double>(kNow + kSkew) + 0.5;  // counts as kNow + kSkew + 1
  EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "not yet valid", edToken(payload)));
}

TEST(OnlineJwt, RefusesAMissingOrNonNumericExpiry) {
  Json payload = claims();
  payload.erase("exp");
  EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "no exp", edToken(payload)));
  for (const Json& bad : {Json(std::to_string(kNow + 600)), Json(true), Json(nullptr),
                          Json::array({kNow + 600}), Json::object()}) {
    SCOPED_TRACE(bad.dump());
    payload["exp"] = bad;
    EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "exp is a JSON", edToken(payload)));
  }
  payload = claims();
  payload["nbf"] = "soon";
  EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "nbf is a JSON", edToken(payload)));
  payload = claims();
  payload["iat"] = Json::array();
  EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "iat is a JSON", edToken(payload)));
}

TEST(OnlineJwt, RefusesHugeAndNonFiniteDatesWithoutOverflow) {
  // Written as raw JSON text: these numbers do not all survive a round trip through a json value.
  const std::string rest =
      std::string(R"("iss":")") + kIssuer + R"(","aud":")" + kAudience + R"(","sub":"user-42")";
  const std::string header = headerFor(Alg::EdDsa).dump();
  for (const char* exp : {"1e400", "-1e400"}) {
    SCOPED_TRACE(exp);
    const std::string jwt = rawToken(header, "{" + rest + ",\"exp\":" + exp + "}", Alg::EdDsa);
    EXPECT_TRUE(refused(check(jwt), Errc::Malformed, "not valid JSON", jwt));
  }
  for (const char* exp : {"1e300", "-1e300", "1e19", "9223372036854775807", "9223372036854775808",
                          "18446744073709551615", "18446744073709551616", "-9223372036854775808",
                          "253402300800", "-253402300800", "9.3e18", "-9.3e18"}) {
    SCOPED_TRACE(exp);
    const std::string jwt = rawToken(header, "{" + rest + ",\"exp\":" + exp + "}", Alg::EdDsa);
    EXPECT_TRUE(refused(check(jwt), Errc::Denied, "exp is out of range", jwt));
  }
  for (const char* claim : {"nbf", "iat"}) {
    for (const char* value : {"-9223372036854775808", "1e300", "18446744073709551615"}) {
      SCOPED_TRACE(std::string(claim) + " " + value);
      const std::string jwt = rawToken(header,
                                       "{" + rest + ",\"exp\":" + std::to_string(kNow + 600) +
                                           ",\"" + claim + "\":" + value + "}",
                                       Alg::EdDsa);
      EXPECT_TRUE(refused(check(jwt), Errc::Denied, "out of range", jwt));
    }
  }
  // The last date in range is accepted, and extreme clocks neither overflow nor accept.
  const std::string far = rawToken(header, "{" + rest + ",\"exp\":253402300799}", Alg::EdDsa);
  EXPECT_TRUE(accepted(check(far)));
  EXPECT_TRUE(refused(check(far, pemKeys(), INT64_MAX), Errc::Denied, "expired", far));
  EXPECT_TRUE(accepted(check(far, pemKeys(), INT64_MIN)));
  Json payload = claims();
  payload["nbf"] = kNow;
  EXPECT_TRUE(refused(check(edToken(payload), pemKeys(), INT64_MIN), Errc::Denied, "not yet valid",
                      edToken(payload)));
}

// --- issuer, audience, subject, roles ------------------------------------------------------------

TEST(OnlineJwt, RefusesTheWrongIssuer) {
  Json payload = claims();
  for (const Json& bad : {Json("https://id.example.com"), Json("https://evil.example/"), Json(""),
                          Json(5), Json::array({kIssuer})}) {
    SCOPED_TRACE(bad.dump());
    payload["iss"] = bad;
    EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "iss", edToken(payload)));
  }
  payload.erase("iss");
  EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "no iss", edToken(payload)));
}

TEST(OnlineJwt, RefusesTheWrongAudience) {
  Json payload = claims();
  for (const Json& bad :
       {Json("other-service"), Json(""), Json(7), Json::object(), Json::array(),
        Json::array({"other-service"}), Json::array({"other-service", 5, kAudience})}) {
    SCOPED_TRACE(bad.dump());
    payload["aud"] = bad;
    EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "aud", edToken(payload)));
  }
  payload.erase("aud");
  EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "no aud", edToken(payload)));
}

TEST(OnlineJwt, AcceptsAnAudienceArrayThatNamesThisService) {
  Json payload = claims();
  payload["aud"] = {"other-service", kAudience};
  EXPECT_TRUE(accepted(check(edToken(payload))));
  payload["aud"] = {kAudience};
  EXPECT_TRUE(accepted(check(edToken(payload))));
}

TEST(OnlineJwt, RefusesAMissingOrUnusableSubject) {
  Json payload = claims();
  payload.erase("sub");
  EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "no sub", edToken(payload)));
  for (const Json& bad : {Json(""), Json(42), Json(nullptr), Json(std::string(257, 'u')),
                          Json("user\n42"), Json("us\u00e9r"), Json("user\u007f")}) {
    SCOPED_TRACE(bad.dump());
    payload["sub"] = bad;
    EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "sub", edToken(payload)));
  }
  payload["sub"] = std::string(256, 'u');
  EXPECT_TRUE(accepted(check(edToken(payload))));
}

TEST(OnlineJwt, ReadsRolesFromAnArrayOrAString) {
  Json payload = claims();
  EXPECT_EQ(check(edToken(payload))->roles, (std::vector<std::string>{"editor", "viewer"}));
  payload["roles"] = "admin";
  EXPECT_EQ(check(edToken(payload))->roles, std::vector<std::string>{"admin"});
  payload.erase("roles");
  ASSERT_TRUE(accepted(check(edToken(payload))));
  EXPECT_TRUE(check(edToken(payload))->roles.empty());
  // With no roles claim configured, whatever the token holds there is not read.
  payload["roles"] = 5;
  JwtPolicy noRoles = policy();
  noRoles.rolesClaim.clear();
  ASSERT_TRUE(accepted(check(edToken(payload), pemKeys(), kNow, noRoles)));
  EXPECT_TRUE(check(edToken(payload), pemKeys(), kNow, noRoles)->roles.empty());
  // A namespaced claim, as Auth0 has them.
  payload = claims();
  payload["https://example.com/roles"] = {"ops"};
  JwtPolicy namespaced = policy();
  namespaced.rolesClaim = "https://example.com/roles";
  EXPECT_EQ(check(edToken(payload), pemKeys(), kNow, namespaced)->roles,
            std::vector<std::string>{"ops"});
}

TEST(OnlineJwt, RefusesRolesOfTheWrongTypeOrSize) {
  Json payload = claims();
  for (const Json& bad :
       {Json(5), Json(true), Json::object(), Json::array({1}), Json::array({"a", nullptr}),
        Json::array({""}), Json(""), Json::array({"a\tb"}), Json::array({"r\u00f4le"}),
        Json(std::string(kMaxRoleBytes + 1, 'r')),
        Json(std::vector<std::string>(kMaxRoles + 1, "r"))}) {
    SCOPED_TRACE(bad.dump().substr(0, 80));
    payload["roles"] = bad;
    EXPECT_TRUE(refused(check(edToken(payload)), Errc::Denied, "\"roles\"", edToken(payload)));
  }
  payload["roles"] = std::vector<std::string>(kMaxRoles, std::string(kMaxRoleBytes, 'r'));
  EXPECT_TRUE(accepted(check(edToken(payload))));
}

// --- the header ----------------------------------------------------------------------------------

TEST(OnlineJwt, RefusesAlgNoneWithAndWithoutASignature) {
  for (const char* none : {"none", "None", "NONE", "nOnE"}) {
    SCOPED_TRACE(none);
    const Json header = {{"alg", none}, {"typ", "JWT"}};
    const std::string unsignedToken = signingInput(header.dump(), claims().dump()) + ".";
    for (const JwtKeys* keys : {&pemKeys(), &jwksKeys()}) {
      EXPECT_TRUE(
          refused(check(unsignedToken, *keys), Errc::Denied, "is not allowed", unsignedToken));
      const std::string withSignature = token(header, claims(), Alg::EdDsa);
      EXPECT_TRUE(
          refused(check(withSignature, *keys), Errc::Denied, "is not allowed", withSignature));
    }
  }
}

TEST(OnlineJwt, RefusesHmacSignedWithThePublicKeyAsSecret) {
  // The classic confusion: an HS256 token whose secret is the RSA key the verifier trusts.
  const TestKeys& k = testKeys();
  const std::vector<std::string> secrets = {pemOf(k.rsa.get()), derOf(k.rsa.get()),
                                            pemOf(k.ec.get()),  k.ed.pem(),
                                            k.ed.publicBytes(), allJwks()};
  for (const auto& [alg, digest] :
       {std::pair{"HS256", "SHA256"}, std::pair{"HS384", "SHA384"}, std::pair{"HS512", "SHA512"}}) {
    for (const std::string& secret : secrets) {
      for (const bool withKid : {false, true}) {
        SCOPED_TRACE(std::string(alg) + (withKid ? " with kid" : ""));
        Json header = {{"alg", alg}, {"typ", "JWT"}};
        if (withKid) header["kid"] = "rsa-1";
        const std::string input = signingInput(header.dump(), claims().dump());
        const std::string jwt = input + "." + b64url(hmac(digest, secret, input));
        EXPECT_TRUE(refused(check(jwt), Errc::Denied, std::string("alg \"") + alg + "\"", jwt));
        EXPECT_TRUE(refused(check(jwt, jwksKeys()), Errc::Denied, "is not allowed", jwt));
      }
    }
  }
}

TEST(OnlineJwt, RefusesEveryOtherAlgorithm) {
  for (const Json& alg :
       {Json("PS256"), Json("PS384"), Json("RS384"), Json("RS512"), Json("ES384"), Json("ES512"),
        Json("ES256K"), Json("Ed25519"), Json("EdDSA "), Json("eddsa"), Json("rs256"),
        Json("RSA-OAEP"), Json("dir"), Json(""), Json(5), Json(nullptr), Json::array({"RS256"})}) {
    SCOPED_TRACE(alg.dump());
    const Json header = {{"alg", alg}, {"typ", "JWT"}};
    const std::string jwt = token(header, claims(), Alg::Rs256);
    EXPECT_TRUE(refused(check(jwt), Errc::Denied, "alg", jwt));
  }
  const std::string noAlg = token(Json{{"typ", "JWT"}}, claims(), Alg::EdDsa);
  EXPECT_TRUE(refused(check(noAlg), Errc::Denied, "no alg", noAlg));
}

TEST(OnlineJwt, RefusesAKidOfAKeyOfAnotherType) {
  const std::string jwt = token(headerFor(Alg::EdDsa, "rsa-1"), claims(), Alg::EdDsa);
  EXPECT_TRUE(refused(check(jwt, jwksKeys()), Errc::Denied,
                      "the key with kid \"rsa-1\" is an RSA key, which cannot verify EdDSA", jwt));
  Json numericKid = headerFor(Alg::EdDsa);
  numericKid["kid"] = 1;
  const std::string badKid = token(numericKid, claims(), Alg::EdDsa);
  EXPECT_TRUE(refused(check(badKid, jwksKeys()), Errc::Denied, "kid is a JSON", badKid));
}

TEST(OnlineJwt, RefusesACritHeader) {
  for (const Json& crit : {Json::array({"exp"}), Json::array(), Json("b64"), Json(nullptr)}) {
    SCOPED_TRACE(crit.dump());
    Json header = headerFor(Alg::EdDsa);
    header["crit"] = crit;
    const std::string jwt = token(header, claims(), Alg::EdDsa);
    EXPECT_TRUE(refused(check(jwt), Errc::Denied, "crit", jwt));
  }
}

TEST(OnlineJwt, AcceptsTypJwtInAnyCaseAndRefusesOtherTypes) {
  for (const char* typ : {"JWT", "jwt", "Jwt"}) {
    Json header = headerFor(Alg::EdDsa);
    header["typ"] = typ;
    EXPECT_TRUE(accepted(check(token(header, claims(), Alg::EdDsa)))) << typ;
  }
  Json header = headerFor(Alg::EdDsa);
  header.erase("typ");
  EXPECT_TRUE(accepted(check(token(header, claims(), Alg::EdDsa))));
  for (const Json& typ : {Json("at+jwt"), Json("JOSE"), Json("application/jwt"), Json(""), Json(1),
                          Json::array({"JWT"})}) {
    SCOPED_TRACE(typ.dump());
    header["typ"] = typ;
    const std::string jwt = token(header, claims(), Alg::EdDsa);
    EXPECT_TRUE(refused(check(jwt), Errc::Denied, "typ", jwt));
  }
}

// --- bytes that are not a token ------------------------------------------------------------------

TEST(OnlineJwt, RefusesAnythingButStrictBase64url) {
  // A payload whose signature, in standard base64, has both '+' and '/': deterministic, since
  // Ed25519 signatures are.
  std::string jwt;
  for (int i = 0; jwt.empty(); ++i) {
    Json payload = claims();
    payload["n"] = i;
    const std::string candidate = edToken(payload);
    const std::string standard =
        b64url(fromB64url(segmentsOf(candidate)[2]), sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    if (standard.find('+') != std::string::npos && standard.find('/') != std::string::npos) {
      jwt = candidate;
    }
  }
  ASSERT_TRUE(accepted(check(jwt)));
  const std::vector<std::string> parts = segmentsOf(jwt);
  std::vector<std::string> bad;
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string bytes = fromB64url(parts[i]);
    for (const int variant : {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_URLSAFE,
                              sodium_base64_VARIANT_ORIGINAL_NO_PADDING}) {
      std::vector<std::string> copy = parts;
      copy[i] = b64url(bytes, variant);  // padded, or with '+' and '/'
      if (copy[i] != parts[i]) bad.push_back(joined(copy));
    }
    for (const char* junk : {" ", "\n", "=", "==", "*", "+", "\x80", "\xff", "\xdf"}) {
      std::vector<std::string> copy = parts;
      copy[i] += junk;
      bad.push_back(joined(copy));
      copy = parts;
      copy[i].insert(copy[i].size() / 2, junk);
      bad.push_back(joined(copy));
    }
  }
  // Non-canonical: the signature's last character carries 2 bits of data and 4 unused ones.
  std::vector<std::string> unusedBits = parts;
  ASSERT_EQ(unusedBits[2].size() % 4, 2u);
  // Canonically those are zero, so it is one of A, Q, g, w; the next character sets one of them.
  unusedBits[2].back() = static_cast<char>(unusedBits[2].back() + 1);
  bad.push_back(joined(unusedBits));
  ASSERT_GE(bad.size(), 40u);
  for (const std::string& b : bad) {
    EXPECT_TRUE(refused(check(b), Errc::Malformed, "base64url", b)) << b;
  }
}

TEST(OnlineJwt, AcceptsSegmentsOfEveryLength) {
  // Payloads of 3k, 3k + 1 and 3k + 2 bytes: every way a base64url segment can end.
  for (std::size_t pad = 0; pad < 6; ++pad) {
    Json payload = claims();
    payload["pad"] = std::string(pad, 'p');
    EXPECT_TRUE(accepted(check(edToken(payload)))) << pad;
    EXPECT_TRUE(accepted(
        check(token(headerFor(Alg::Rs256, kidOf(Alg::Rs256)), payload, Alg::Rs256), jwksKeys())))
        << pad;
  }
}

TEST(OnlineJwt, RefusesBytesFrom0x80UpInPlaceOfBase64urlCharacters) {
  // libsodium 1.0.18 decodes each of them as '_': without a check of its own, the verifier would
  // accept 128 spellings of one signature.
  const std::string jwt = edToken(claims());
  const std::size_t at = jwt.size() - 10;
  for (int c = 0x80; c <= 0xff; ++c) {
    std::string changed = jwt;
    changed[at] = static_cast<char>(c);
    ASSERT_TRUE(refused(check(changed), Errc::Malformed, "base64url", changed)) << c;
  }
}

TEST(OnlineJwt, RefusesAHeaderOrPayloadThatIsNotAJsonObject) {
  const std::string header = headerFor(Alg::EdDsa).dump();
  for (const char* payload :
       {"[]", "\"claims\"", "1", "null", "", "{", "{\"sub\":}", "{} x", "{\"sub\":\"\xff\"}"}) {
    SCOPED_TRACE(payload);
    const std::string jwt = rawToken(header, payload, Alg::EdDsa);
    EXPECT_TRUE(refused(check(jwt), Errc::Malformed, "the payload", jwt));
  }
  for (const char* bad : {"[\"EdDSA\"]", "", "{\"alg\":\"EdDSA\"", "\"EdDSA\""}) {
    SCOPED_TRACE(bad);
    const std::string jwt = rawToken(bad, claims().dump(), Alg::EdDsa);
    EXPECT_TRUE(refused(check(jwt), Errc::Malformed, "the header", jwt));
  }
}

TEST(OnlineJwt, RefusesARepeatedMember) {
  const std::string payload = claims().dump();
  const std::string twoSubjects = payload.substr(0, payload.size() - 1) + R"(,"sub":"admin"})";
  const std::string jwt = rawToken(headerFor(Alg::EdDsa).dump(), twoSubjects, Alg::EdDsa);
  EXPECT_TRUE(refused(check(jwt), Errc::Malformed, "member \"sub\" more than once", jwt));
  const std::string twoAlgs = rawToken(R"({"alg":"EdDSA","alg":"none"})", payload, Alg::EdDsa);
  EXPECT_TRUE(refused(check(twoAlgs), Errc::Malformed, "member \"alg\" more than once", twoAlgs));
  Json roles = claims();
  const std::string text = roles.dump();
  const std::string twoRoles = text.substr(0, text.size() - 1) + R"(,"roles":["admin"]})";
  const std::string jwt2 = rawToken(headerFor(Alg::EdDsa).dump(), twoRoles, Alg::EdDsa);
  EXPECT_TRUE(refused(check(jwt2), Errc::Malformed, "member \"roles\" more than once", jwt2));
  // Members that are not read, and anything below the top level, may repeat: they cannot
  // change a verdict.
  const std::string twoAzps = payload.substr(0, payload.size() - 1) + R"(,"azp":"a","azp":"b"})";
  EXPECT_TRUE(accepted(check(rawToken(headerFor(Alg::EdDsa).dump(), twoAzps, Alg::EdDsa))));
  const std::string nested = payload.substr(0, payload.size() - 1) + R"(,"x":{"a":1,"a":2}})";
  EXPECT_TRUE(accepted(check(rawToken(headerFor(Alg::EdDsa).dump(), nested, Alg::EdDsa))));
}

TEST(OnlineJwt, RefusesATokenLongerThan16KiB) {
  bool sawLargest = false;
  bool sawTooLong = false;
  for (std::size_t pad = 11950; pad < 12150; ++pad) {
    Json payload = claims();
    payload["pad"] = std::string(pad, 'p');
    const std::string jwt = edToken(payload);
    if (jwt.size() <= kMaxTokenBytes) {
      ASSERT_TRUE(accepted(check(jwt))) << jwt.size() << " bytes";
      sawLargest = sawLargest || jwt.size() > kMaxTokenBytes - 4;
    } else {
      ASSERT_TRUE(refused(check(jwt), Errc::Malformed, "bytes (at most 16384)", jwt));
      sawTooLong = true;
    }
  }
  EXPECT_TRUE(sawLargest && sawTooLong);
  const std::string huge(1 << 20, 'a');
  EXPECT_TRUE(refused(check(huge), Errc::Malformed, "1048576 bytes", huge));
}

TEST(OnlineJwt, SurvivesDeeplyNestedJson) {
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  const std::string payload = claims().dump();
  const std::string jwt =
      rawToken(headerFor(Alg::EdDsa).dump(),
               payload.substr(0, payload.size() - 1) + ",\"x\":" + deep + "}", Alg::EdDsa);
  ASSERT_LE(jwt.size(), kMaxTokenBytes);
  EXPECT_TRUE(accepted(check(jwt)));
  const std::string header = R"({"alg":"EdDSA","x":)" + deep + "}";
  EXPECT_TRUE(accepted(check(rawToken(header, payload, Alg::EdDsa))));
  const std::string unclosed = rawToken(std::string(9000, '['), payload, Alg::EdDsa);
  EXPECT_TRUE(refused(check(unclosed), Errc::Malformed, "not valid JSON", unclosed));
}

TEST(OnlineJwt, RefusesRandomMutationsOfValidTokens) {
  // Any change to a token's text changes what its signature covers or the signature itself.
  const auto base = static_cast<std::uint32_t>(testing::UnitTest::GetInstance()->random_seed());
  for (std::uint32_t seed = base; seed < base + 4; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (--gtest_random_seed with --gtest_shuffle)");
    std::mt19937 rng(seed);
    for (const Alg alg : {Alg::Es256, Alg::EdDsa}) {
      const std::string jwt = token(headerFor(alg), claims(), alg);
      for (int step = 0; step < 300; ++step) {
        std::string mutated = jwt;
        const std::size_t at = rng() % mutated.size();
        switch (rng() % 3) {
          case 0: mutated[at] = static_cast<char>(rng() % 256); break;
          case 1: mutated.erase(at, 1 + rng() % 4); break;
          default: mutated.insert(at, 1, static_cast<char>(rng() % 256)); break;
        }
        if (mutated == jwt) continue;
        ASSERT_TRUE(refusedAtAll(check(mutated))) << "step " << step << "\n"
                                                  << jwt << "\n"
                                                  << mutated;
      }
    }
  }
}

TEST(OnlineJwt, ChecksThePolicy) {
  const std::string jwt = edToken(claims());
  JwtPolicy p = policy();
  p.issuer.clear();
  EXPECT_EQ(checkJwtPolicy(p).error().code(), Errc::Config);
  EXPECT_TRUE(refused(check(jwt, pemKeys(), kNow, p), Errc::Config, "issuer", jwt));
  p = policy();
  p.audience.clear();
  EXPECT_TRUE(refused(check(jwt, pemKeys(), kNow, p), Errc::Config, "audience", jwt));
  for (const auto skew : {std::chrono::seconds(-1), kMaxClockSkew + std::chrono::seconds(1)}) {
    p = policy();
    p.clockSkew = skew;
    EXPECT_TRUE(refused(check(jwt, pemKeys(), kNow, p), Errc::Config, "clock skew", jwt));
  }
  p = policy();
  p.clockSkew = kMaxClockSkew;
  EXPECT_TRUE(checkJwtPolicy(p));
}

TEST(OnlineJwt, AMovedKeySetStillVerifies) {
  JwtKeys keys = mustLoad(JwtKeys::fromPem(testKeys().ed.pem()));
  JwtKeys moved = std::move(keys);
  EXPECT_EQ(moved.size(), 1u);
  EXPECT_TRUE(accepted(check(edToken(claims()), moved)));
}

// --- key files -----------------------------------------------------------------------------------

testing::AssertionResult configError(const Result<JwtKeys>& keys,
                                     std::initializer_list<std::string_view> words) {
  if (keys) return testing::AssertionFailure() << "loaded " << keys->size() << " keys";
  if (keys.error().code() != Errc::Config) {
    return testing::AssertionFailure()
           << errcName(keys.error().code()) << ": " << keys.error().message();
  }
  for (const std::string_view word : words) {
    if (keys.error().message().find(word) == std::string::npos) {
      return testing::AssertionFailure()
             << "the message does not say \"" << word << "\": " << keys.error().message();
    }
  }
  return testing::AssertionSuccess();
}

TEST(OnlineJwtKeys, LoadsEveryPemBlockAndEveryJwksEntry) {
  EXPECT_EQ(pemKeys().size(), 3u);
  EXPECT_EQ(jwksKeys().size(), 3u);
  const TestKeys& k = testKeys();
  // alg and use are optional.
  Json bare = rsaJwk(k.rsa.get(), "r");
  bare.erase("alg");
  bare.erase("use");
  const auto keys = JwtKeys::fromJwks(Json{{"keys", {bare}}}.dump());
  ASSERT_TRUE(keys) << keys.error().message();
  EXPECT_TRUE(accepted(check(token(headerFor(Alg::Rs256), claims(), Alg::Rs256), *keys)));
}

TEST(OnlineJwtKeys, TellsTheFormatByContent) {
  const TempFolder folder;
  const auto jwks = JwtKeys::load(folder.write("keys.pem", "\xEF\xBB\xBF \n" + allJwks()));
  ASSERT_TRUE(jwks) << jwks.error().message();
  EXPECT_EQ(jwks->size(), 3u);
  const auto pem = JwtKeys::load(folder.write("keys.json", allPem()));
  ASSERT_TRUE(pem) << pem.error().message();
  EXPECT_EQ(pem->size(), 3u);
  const fs::path neither = folder.write("keys.txt", "hello");
  EXPECT_TRUE(configError(JwtKeys::load(neither), {neither.string(), "neither"}));
}

TEST(OnlineJwtKeys, SkipsJwksEntriesNotForSigning) {
  const TestKeys& k = testKeys();
  Json enc = rsaJwk(k.otherRsa.get(), "enc-1");
  enc["use"] = "enc";
  enc.erase("alg");
  const Json secret = {{"kty", "oct"}, {"use", "enc"}, {"k", "c2VjcmV0"}};
  const auto keys = JwtKeys::fromJwks(Json{{"keys", {enc, secret, edJwk(k.ed, "ed-1")}}}.dump());
  ASSERT_TRUE(keys) << keys.error().message();
  EXPECT_EQ(keys->size(), 1u);
  EXPECT_TRUE(configError(JwtKeys::fromJwks(Json{{"keys", {enc, secret}}}.dump()),
                          {"no usable key", "2 skipped"}));
}

TEST(OnlineJwtKeys, RefusesAFileWithNoKeys) {
  EXPECT_TRUE(configError(JwtKeys::fromPem(""), {"no \"PUBLIC KEY\""}));
  EXPECT_TRUE(configError(JwtKeys::fromPem("just some text\n"), {"no \"PUBLIC KEY\""}));
  EXPECT_TRUE(configError(JwtKeys::fromJwks(R"({"keys":[]})"), {"no usable key"}));
  const TempFolder folder;
  const fs::path empty = folder.write("empty.pem", "");
  EXPECT_TRUE(configError(JwtKeys::load(empty), {empty.string()}));
  const fs::path none = folder.write("none.json", R"({"keys":[]})");
  EXPECT_TRUE(configError(JwtKeys::load(none), {none.string(), "no usable key"}));
}

TEST(OnlineJwtKeys, RefusesAPrivateKey) {
  const TestKeys& k = testKeys();
  EXPECT_TRUE(configError(JwtKeys::fromPem(pemOf(k.ec.get(), /*privateKey=*/true)),
                          {"PEM block 1 is a private key"}));
  EXPECT_TRUE(configError(JwtKeys::fromPem(pemOf(k.ec.get()) + pemOf(k.rsa.get(), true)),
                          {"PEM block 2 is a private key"}));
  Json withD = edJwk(k.ed, "ed-1");
  withD["d"] = b64url(std::string(32, '\x01'));
  EXPECT_TRUE(configError(JwtKeys::fromJwks(Json{{"keys", {withD}}}.dump()),
                          {"key 1 (kid \"ed-1\")", "private", "\"d\""}));
  const Json oct = {{"kty", "oct"}, {"k", "c2VjcmV0"}, {"alg", "HS256"}};
  EXPECT_TRUE(configError(JwtKeys::fromJwks(Json{{"keys", {edJwk(k.ed, "a"), oct}}}.dump()),
                          {"key 2", "secret"}));
  const TempFolder folder;
  const fs::path file = folder.write("private.pem", pemOf(k.rsa.get(), true));
  EXPECT_TRUE(configError(JwtKeys::load(file), {file.string(), "private key"}));
}

TEST(OnlineJwtKeys, RefusesAnRsaKeyOf1024Bits) {
  const TestKeys& k = testKeys();
  EXPECT_TRUE(configError(JwtKeys::fromPem(pemOf(k.rsa1024.get())), {"PEM block 1", "1024 bits"}));
  EXPECT_TRUE(
      configError(JwtKeys::fromJwks(Json{{"keys", {rsaJwk(k.rsa1024.get(), "small")}}}.dump()),
                  {"key 1 (kid \"small\")", "1024 bits"}));
}

TEST(OnlineJwtKeys, RefusesAP384Key) {
  const TestKeys& k = testKeys();
  EXPECT_TRUE(configError(JwtKeys::fromPem(allPem() + pemOf(k.p384.get())),
                          {"PEM block 4", "secp384r1", "P-256"}));
  EXPECT_TRUE(configError(
      JwtKeys::fromJwks(Json{{"keys", {ecJwk(k.p384.get(), "p384", "P-384", 48)}}}.dump()),
      {"key 1", "\"P-384\"", "P-256"}));
}

TEST(OnlineJwtKeys, RefusesUnsupportedOrBrokenKeys) {
  const TestKeys& k = testKeys();
  const Pkey x25519 = generate("X25519", nullptr);
  EXPECT_TRUE(configError(JwtKeys::fromPem(pemOf(x25519.get())), {"PEM block 1", "X25519"}));
  const Json x25519Jwk = {{"kty", "OKP"}, {"crv", "X25519"}, {"x", b64url(std::string(32, 'x'))}};
  Json wrongAlg = rsaJwk(k.rsa.get(), "r");
  wrongAlg["alg"] = "PS256";
  Json ecAsRs = ecJwk(k.ec.get(), "e");
  ecAsRs["alg"] = "RS256";
  Json shortX = ecJwk(k.ec.get(), "e");
  shortX["x"] = b64url(std::string(31, '\x01'));
  Json offCurve = ecJwk(k.ec.get(), "e");
  offCurve["y"] = b64url(std::string(32, '\x01'));
  Json paddedN = rsaJwk(k.rsa.get(), "r");
  paddedN["n"] = paddedN["n"].get<std::string>() + "==";
  Json noE = rsaJwk(k.rsa.get(), "r");
  noE.erase("e");
  // The identity point: small order, so one signature would verify for any message.
  std::string identity(32, '\0');
  identity[0] = 1;
  Json smallOrder = edJwk(k.ed, "s");
  smallOrder["x"] = b64url(identity);
  const std::vector<std::pair<Json, std::string_view>> cases = {
      {Json{{"kty", "oct"}}, "kty \"oct\""},
      {Json{{"kid", "x"}}, "no \"kty\""},
      {x25519Jwk, "X25519"},
      {wrongAlg, "alg \"PS256\" does not fit an RSA key"},
      {ecAsRs, "alg \"RS256\" does not fit a P-256 key"},
      {shortX, "\"x\" is 31 bytes, not 32"},
      {offCurve, "not a point of P-256"},
      {paddedN, "\"n\" is not base64url"},
      {noE, "no \"e\""},
      {smallOrder, "not a valid public key"},
      {Json("a string"), "not an object"},
  };
  for (const auto& [jwk, why] : cases) {
    SCOPED_TRACE(jwk.dump());
    EXPECT_TRUE(configError(JwtKeys::fromJwks(Json{{"keys", {edJwk(k.ed, "fine"), jwk}}}.dump()),
                            {"key 2", why}));
  }
}

TEST(OnlineJwtKeys, RefusesPemBlocksThatAreNotPublicKeys) {
  const std::string der = b64url(derOf(testKeys().ec.get()), sodium_base64_VARIANT_ORIGINAL);
  const auto block = [&](const std::string& name, const std::string& body) {
    return "-----BEGIN " + name + "-----\n" + body + "\n-----END " + name + "-----\n";
  };
  EXPECT_TRUE(configError(JwtKeys::fromPem(block("CERTIFICATE", der)),
                          {"\"CERTIFICATE\"", "openssl x509 -pubkey"}));
  EXPECT_TRUE(configError(JwtKeys::fromPem(block("RSA PUBLIC KEY", der)),
                          {"\"RSA PUBLIC KEY\"", "-RSAPublicKey_in"}));
  EXPECT_TRUE(configError(JwtKeys::fromPem(block("PUBLIC KEY", "!!!!")), {"not valid PEM"}));
  EXPECT_TRUE(configError(
      JwtKeys::fromPem(block("PUBLIC KEY", b64url("not DER", sodium_base64_VARIANT_ORIGINAL))),
      {"not a valid SubjectPublicKeyInfo"}));
  EXPECT_TRUE(configError(JwtKeys::fromPem("-----BEGIN PUBLIC KEY-----\n" + der + "\n"),
                          {"not valid PEM"}));
}

TEST(OnlineJwtKeys, RefusesMalformedJson) {
  for (const char* bad :
       {R"({"keys": [)", R"({"keys": 5})", "{}", R"({"keys": [}])", "{\"keys\":[1,]}"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(configError(JwtKeys::fromJwks(bad), {"JWKS"}));
  }
  EXPECT_TRUE(configError(JwtKeys::fromJwks("[]"), {"a JSON array, not a JWKS"}));
  const TempFolder folder;
  const fs::path file = folder.write("broken.json", R"({"keys": [)");
  EXPECT_TRUE(configError(JwtKeys::load(file), {file.string(), "not valid JSON"}));
}

TEST(OnlineJwtKeys, RefusesAFileThatCannotBeReadNamingIt) {
  const TempFolder folder;
  const fs::path missing = folder.path() / "missing.pem";
  EXPECT_TRUE(configError(JwtKeys::load(missing), {missing.string(), "No such file"}));
  EXPECT_TRUE(configError(JwtKeys::load(folder.path()), {folder.path().string(), "cannot read"}));
}

TEST(OnlineJwtKeys, RefusesAFileOverOneMiB) {
  const TempFolder folder;
  std::string text = allPem();
  text += std::string(kMaxKeyFileBytes + 1 - text.size(), '\n');
  const fs::path file = folder.write("large.pem", text);
  EXPECT_TRUE(configError(JwtKeys::load(file), {file.string(), "larger than 1048576 bytes"}));
  text.pop_back();
  EXPECT_TRUE(JwtKeys::load(folder.write("largest.pem", text)));
  EXPECT_TRUE(configError(JwtKeys::fromJwks(std::string(kMaxKeyFileBytes + 1, ' ')), {"at most"}));
}

}  // namespace
}  // namespace portcullis::online
