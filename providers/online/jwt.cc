// jwt.cc — the online provider's JWT verification: keys from PEM or JWKS through OpenSSL 3,
// RS256 and ES256 through EVP_DigestVerify, EdDSA through libsodium.

#include "jwt.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <system_error>
#include <utility>

namespace portcullis::online {

namespace {

using Json = nlohmann::json;

// --- OpenSSL ownership ---------------------------------------------------------------------------

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const noexcept { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Freer<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Freer<EVP_MD_CTX, EVP_MD_CTX_free>>;
using MdPtr = std::unique_ptr<EVP_MD, Freer<EVP_MD, EVP_MD_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Freer<BIGNUM, BN_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Freer<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamsPtr = std::unique_ptr<OSSL_PARAM, Freer<OSSL_PARAM, OSSL_PARAM_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Freer<ECDSA_SIG, ECDSA_SIG_free>>;
struct OpensslFree {
  void operator()(void* p) const noexcept { OPENSSL_free(p); }
};
struct FileClose {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

// Removes, when it goes, whatever OpenSSL queued on this thread's error stack since it was made:
// a refused token or key is an answer here, not an error for the next OpenSSL user to trip on.
class OpensslErrorScope {
 public:
  OpensslErrorScope() { ERR_set_mark(); }
  ~OpensslErrorScope() { ERR_pop_to_mark(); }
  OpensslErrorScope(const OpensslErrorScope&) = delete;
  OpensslErrorScope& operator=(const OpensslErrorScope&) = delete;
};

const unsigned char* bytesOf(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// --- algorithms ----------------------------------------------------------------------------------

// Each key serves exactly one algorithm, named after it.
enum class Alg : std::uint8_t { Rs256, Es256, EdDsa };

std::string_view algName(Alg alg) {
  switch (alg) {
    case Alg::Rs256: return "RS256";
    case Alg::Es256: return "ES256";
    case Alg::EdDsa: return "EdDSA";
  }
  return "?";
}

std::string_view keyTypeName(Alg alg) {
  switch (alg) {
    case Alg::Rs256: return "an RSA key";
    case Alg::Es256: return "a P-256 key";
    case Alg::EdDsa: return "an Ed25519 key";
  }
  return "?";
}

// Exact, case-sensitive names (RFC 7518 §3.1, RFC 8037 §3.1): "rs256" is not RS256.
std::optional<Alg> algFromName(std::string_view name) {
  if (name == "RS256") return Alg::Rs256;
  if (name == "ES256") return Alg::Es256;
  if (name == "EdDSA") return Alg::EdDsa;
  return std::nullopt;
}

constexpr std::size_t kEs256SignatureBytes = 64;  // R || S, 32 bytes each (RFC 7518 §3.4)
constexpr std::size_t kEs256CoordinateBytes = 32;
// The longest DER ECDSA-Sig-Value for P-256: SEQUENCE { INTEGER (33), INTEGER (33) }.
constexpr std::size_t kEs256MaxDerBytes = 72;
// An RSA public exponent beyond this is refused: verification time grows with its length.
constexpr int kMaxRsaExponentBits = 64;
// NumericDates (RFC 7519 §2) outside ±9999-12-31T23:59:59Z are refused, which keeps every sum
// and difference below far from overflow.
constexpr std::int64_t kMaxNumericDate = 253402300799;

// --- messages ------------------------------------------------------------------------------------

Error malformed(std::string what) { return Error(Errc::Malformed, "jwt: " + what); }
Error denied(std::string what) { return Error(Errc::Denied, "jwt: " + what); }

// A value from a token or key file as a log may show it: quoted, printable ASCII only, cut short.
std::string printable(std::string_view s) {
  constexpr std::size_t kShown = 64;
  std::string out = "\"";
  for (const char ch : s.substr(0, kShown)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  out += '"';
  if (s.size() > kShown) out += fmt::format(" (cut; {} bytes)", s.size());
  return out;
}

// User IDs and roles are printable ASCII (bounds.h): they end up in certificates and logs.
bool isPrintableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

bool equalsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// --- decoding ------------------------------------------------------------------------------------

// Each byte's value in the base64url alphabet (RFC 4648 §5), or -1.
constexpr std::array<std::int8_t, 256> kBase64UrlValues = [] {
  std::array<std::int8_t, 256> values{};
  values.fill(-1);
  for (int i = 0; i < 26; ++i) {
    values['A' + i] = static_cast<std::int8_t>(i);
    values['a' + i] = static_cast<std::int8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) values['0' + i] = static_cast<std::int8_t>(52 + i);
  values['-'] = 62;
  values['_'] = 63;
  return values;
}();

// Strict base64url as RFC 7515 §2 has it: the URL-safe alphabet only (no padding, white space,
// '+' or '/'), and the bits of the last character that carry no byte zero, so that each byte
// string has exactly one spelling. Written here rather than taken from libsodium: 1.0.18's
// sodium_base642bin reads every byte from 0x80 up as '_' (a second spelling of signatures), and
// its constant-time mapping, which public tokens do not need, cost about 70 instructions a
// character, a sixth of an RS256 verification.
std::optional<std::string> fromBase64Url(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;  // a lone last character holds no whole byte
  const auto value = [&](std::size_t i) {
    return static_cast<int>(kBase64UrlValues[static_cast<unsigned char>(text[i])]);
  };
  std::string out(text.size() * 6 / 8, '\0');
  std::size_t at = 0;
  std::size_t i = 0;
  // Four characters, three bytes at a time; one outside the alphabet (-1) makes the OR negative.
  for (; i + 4 <= text.size(); i += 4) {
    const int a = value(i), b = value(i + 1), c = value(i + 2), d = value(i + 3);
    if ((a | b | c | d) < 0) return std::nullopt;
    const auto group = static_cast<std::uint32_t>(a << 18 | b << 12 | c << 6 | d);
    out[at++] = static_cast<char>(group >> 16);
    out[at++] = static_cast<char>(group >> 8);
    out[at++] = static_cast<char>(group);
  }
  // Two or three characters left: one or two bytes, and 4 or 2 bits that must be zero.
  if (i < text.size()) {
    const bool three = text.size() - i == 3;
    const int a = value(i), b = value(i + 1), c = three ? value(i + 2) : 0;
    if ((a | b | c) < 0) return std::nullopt;
    const auto group = static_cast<std::uint32_t>(a << 18 | b << 12 | c << 6);
    if ((group & (three ? 0xffu : 0xffffu)) != 0) return std::nullopt;
    out[at++] = static_cast<char>(group >> 16);
    if (three) out[at++] = static_cast<char>(group >> 8);
  }
  return out;
}

// The members of a header that are read. No other member is kept.
constexpr std::array<std::string_view, 4> kHeaderMembers = {"alg", "kid", "typ", "crit"};
constexpr std::size_t kMaxReadMembers = 8;  // the most ReadMembers tracks (the claims need 7)

// nlohmann's SAX interface, building a JSON object of the top-level members named in `read` and
// nothing of the rest (which is parsed, to know the text is JSON, but not stored): a token's
// header and payload carry more than is read, and building all of it cost more than the JSON
// lexing. Every method returns whether to go on; none throws but for memory.
class ReadMembers final : public nlohmann::json_sax<Json> {
 public:
  explicit ReadMembers(std::span<const std::string_view> read)
      : read_(read.first(std::min(read.size(), kMaxReadMembers))) {}

  bool null() override { return put(Json(nullptr)); }
  bool boolean(bool value) override { return put(Json(value)); }
  bool number_integer(number_integer_t value) override { return put(Json(value)); }
  bool number_unsigned(number_unsigned_t value) override { return put(Json(value)); }
  bool number_float(number_float_t value, const string_t&) override { return put(Json(value)); }
  bool string(string_t& value) override { return put(Json(std::move(value))); }
  bool binary(binary_t&) override { return false; }  // JSON text has none
  bool start_object(std::size_t) override { return open(Json::value_t::object); }
  bool start_array(std::size_t) override { return open(Json::value_t::array); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

  bool key(string_t& key) override {
    if (skipping()) return true;
    if (depth_ == 1) {
      const auto it = std::find(read_.begin(), read_.end(), key);
      if (it == read_.end()) {
        skipNext_ = true;
        return true;
      }
      const auto index = static_cast<std::size_t>(it - read_.begin());
      if (seen_[index] && !repeated_) repeated_ = *it;
      seen_[index] = true;
    }
    key_ = std::move(key);
    return true;
  }

  // The JSON type of the top-level value, when it is not an object.
  const char* notAnObject() const { return notAnObject_; }
  std::optional<std::string_view> repeated() const { return repeated_; }
  Json take() { return std::move(root_); }

 private:
  bool skipping() const { return skipFrom_ != 0; }

  bool put(Json value) {
    if (skipping()) return true;
    if (skipNext_) {  // a scalar member not read
      skipNext_ = false;
      return true;
    }
    if (depth_ == 0) {
      notAnObject_ = value.type_name();
      return true;
    }
    Json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
    } else {
      parent[key_] = std::move(value);
    }
    return true;
  }

  bool open(Json::value_t type) {
    ++depth_;
    if (skipping()) return true;
    if (skipNext_) {  // a container member not read: skip to its end
      skipNext_ = false;
      skipFrom_ = depth_;
      return true;
    }
    if (depth_ == 1) {
      if (type != Json::value_t::object) {
        notAnObject_ = "array";
        skipFrom_ = depth_;
        return true;
      }
      root_ = Json::object();
      stack_.push_back(&root_);
      return true;
    }
    // Pointers into the parent stay valid: it gets no other element until this one is closed.
    Json& parent = *stack_.back();
    Json* child = nullptr;
    if (parent.is_array()) {
      parent.push_back(Json(type));
      child = &parent.back();
    } else {
      child = &(parent[key_] = Json(type));
    }
    stack_.push_back(child);
    return true;
  }

  bool close() {
    if (skipping()) {
      if (depth_ == skipFrom_) skipFrom_ = 0;
    } else {
      stack_.pop_back();
    }
    --depth_;
    return true;
  }

  std::span<const std::string_view> read_;
  std::array<bool, kMaxReadMembers> seen_{};
  std::optional<std::string_view> repeated_;
  const char* notAnObject_ = nullptr;
  Json root_;
  std::vector<Json*> stack_;  // the containers being built, innermost last
  std::string key_;           // the key of the next member of the innermost object
  std::size_t depth_ = 0;     // containers open, the top-level object being 1
  std::size_t skipFrom_ = 0;  // the depth of the container being skipped, 0 when none is
  bool skipNext_ = false;     // the next value belongs to a top-level member not read
};

// A JSON object's members named in `read` (see ReadMembers). A member of `read` that appears
// twice is refused: nlohmann would keep the last, as RFC 7515 §5.2 allows, but another reader of
// the same token (a gateway, a log) may take the first, and two verdicts on one token is how
// confusion attacks start. Repeats of members never read cannot change a verdict and are let be.
Result<Json> parseObject(std::string_view text, std::string_view what,
                         std::span<const std::string_view> read) {
  ReadMembers members(read);
  if (!Json::sax_parse(text.data(), text.data() + text.size(), &members)) {
    return malformed(fmt::format("the {} is not valid JSON", what));
  }
  if (members.notAnObject() != nullptr) {
    return malformed(
        fmt::format("the {} is a JSON {}, not an object", what, members.notAnObject()));
  }
  if (const auto repeated = members.repeated()) {
    return malformed(
        fmt::format("the {} has member {} more than once", what, printable(*repeated)));
  }
  return members.take();
}

}  // namespace

// --- keys ----------------------------------------------------------------------------------------

struct JwtKeys::Impl {
  struct Key {
    Alg alg = Alg::Rs256;
    std::optional<std::string> kid;
    PkeyPtr pkey;  // RSA and P-256
    std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> ed25519{};
  };
  std::vector<Key> keys;
  MdPtr sha256;  // fetched once, not on every verification
};

namespace {

using Key = JwtKeys::Impl::Key;

Error configError(std::string what) { return Error(Errc::Config, std::move(what)); }

bool passesPublicCheck(EVP_PKEY* pkey) {
  const PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  return ctx && EVP_PKEY_public_check(ctx.get()) == 1;
}

Result<Key> ed25519Key(std::string_view raw) {
  Key key;
  key.alg = Alg::EdDsa;
  if (raw.size() != key.ed25519.size()) {
    return configError(
        fmt::format("an Ed25519 key of {} bytes (not {})", raw.size(), key.ed25519.size()));
  }
  std::copy(raw.begin(), raw.end(), key.ed25519.begin());
  // Refuses non-canonical encodings, points off the curve and the small-order points that
  // would let one signature verify for many messages.
  if (crypto_core_ed25519_is_valid_point(key.ed25519.data()) != 1) {
    return configError(
        "the Ed25519 key is not a valid public key (not a point of the "
        "prime-order group)");
  }
  return key;
}

// Classifies a public key and checks that it fits its algorithm.
Result<Key> keyOf(PkeyPtr pkey) {
  EVP_PKEY* p = pkey.get();
  if (EVP_PKEY_is_a(p, "RSA")) {
    const int bits = EVP_PKEY_get_bits(p);
    if (bits < static_cast<int>(kMinRsaBits) || bits > static_cast<int>(kMaxRsaBits)) {
      return configError(fmt::format("an RSA key of {} bits (RS256 keys must have {} to {})", bits,
                                     kMinRsaBits, kMaxRsaBits));
    }
    BIGNUM* e = nullptr;
    if (EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
      return configError("the RSA key's exponent cannot be read");
    }
    const BnPtr exponent(e);
    if (BN_num_bits(exponent.get()) > kMaxRsaExponentBits) {
      return configError(
          fmt::format("the RSA key's exponent has more than {} bits", kMaxRsaExponentBits));
    }
    if (!passesPublicCheck(p)) {
      return configError("the RSA key fails OpenSSL's public key check (modulus or exponent)");
    }
    Key key;
    key.alg = Alg::Rs256;
    key.pkey = std::move(pkey);
    return key;
  }
  if (EVP_PKEY_is_a(p, "EC")) {
    std::array<char, 64> group{};
    std::size_t length = 0;
    if (EVP_PKEY_get_group_name(p, group.data(), group.size(), &length) != 1) {
      return configError("an EC key without a named curve (ES256 needs P-256)");
    }
    const std::string_view curve(group.data(), std::min(length, group.size()));
    if (curve != "prime256v1" && curve != "P-256") {
      return configError(fmt::format("an EC key on curve {} (ES256 needs P-256)", curve));
    }
    if (!passesPublicCheck(p)) {
      return configError("the P-256 key is not a valid public key (a point off the curve?)");
    }
    Key key;
    key.alg = Alg::Es256;
    key.pkey = std::move(pkey);
    return key;
  }
  if (EVP_PKEY_is_a(p, "ED25519")) {
    std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> raw{};
    std::size_t length = raw.size();
    if (EVP_PKEY_get_raw_public_key(p, raw.data(), &length) != 1 || length != raw.size()) {
      return configError("the Ed25519 key's bytes cannot be read");
    }
    return ed25519Key(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
  }
  const char* type = EVP_PKEY_get0_type_name(p);
  return configError(
      fmt::format("a key of type {} (only RSA, EC P-256 and Ed25519 keys are "
                  "supported)",
                  type != nullptr ? type : "unknown"));
}

Result<std::unique_ptr<JwtKeys::Impl>> emptyImpl() {
  auto impl = std::make_unique<JwtKeys::Impl>();
  impl->sha256.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  if (!impl->sha256) return configError("OpenSSL offers no SHA-256");
  return impl;
}

std::string pemHint(std::string_view block) {
  if (block == "RSA PUBLIC KEY") {
    return "; convert this PKCS#1 key with `openssl rsa -RSAPublicKey_in -pubout`";
  }
  if (block == "CERTIFICATE") return "; take its key with `openssl x509 -pubkey -noout`";
  return "";
}

Result<std::unique_ptr<JwtKeys::Impl>> parsePem(std::string_view pem) {
  auto impl = emptyImpl();
  if (!impl) return std::move(impl).error();
  const OpensslErrorScope errors;
  const BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return configError("out of memory");
  for (int block = 1;; ++block) {
    char* name = nullptr;
    char* headers = nullptr;
    unsigned char* data = nullptr;
    long length = 0;
    ERR_set_mark();
    const int read = PEM_read_bio(bio.get(), &name, &headers, &data, &length);
    const std::unique_ptr<char, OpensslFree> ownedName(name);
    const std::unique_ptr<char, OpensslFree> ownedHeaders(headers);
    const std::unique_ptr<unsigned char, OpensslFree> ownedData(data);
    if (read != 1) {
      const bool end = ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE;
      ERR_pop_to_mark();
      if (end) break;
      return configError(
          fmt::format("PEM block {} is not valid PEM (a BEGIN line without its "
                      "END line, or bad base64)",
                      block));
    }
    ERR_pop_to_mark();
    const std::string_view type(name);
    if (type.find("PRIVATE KEY") != std::string_view::npos) {
      return configError(fmt::format("PEM block {} is a private key ({}): give public keys only",
                                     block, printable(type)));
    }
    if (type != "PUBLIC KEY") {
      return configError(
          fmt::format("PEM block {} is {}: only \"PUBLIC KEY\" blocks are "
                      "read{}",
                      block, printable(type), pemHint(type)));
    }
    if (headers != nullptr && headers[0] != '\0') {
      return configError(fmt::format("PEM block {} has headers (is it encrypted?)", block));
    }
    const unsigned char* cursor = data;
    PkeyPtr pkey(d2i_PUBKEY(nullptr, &cursor, length));
    if (!pkey || cursor != data + length) {
      return configError(
          fmt::format("PEM block {} is not a valid SubjectPublicKeyInfo public key", block));
    }
    auto key = keyOf(std::move(pkey));
    if (!key) return configError(fmt::format("PEM block {}: {}", block, key.error().message()));
    (*impl)->keys.push_back(std::move(*key));
  }
  if ((*impl)->keys.empty()) return configError("no \"PUBLIC KEY\" PEM block");
  return impl;
}

// A base64url member of a JWK, of `size` bytes when that is not 0.
Result<std::string> jwkBytes(const Json& jwk, const char* member, std::size_t size = 0) {
  const auto it = jwk.find(member);
  if (it == jwk.end()) return configError(fmt::format("no \"{}\"", member));
  const auto* text = it->get_ptr<const std::string*>();
  if (text == nullptr) return configError(fmt::format("\"{}\" is not a string", member));
  auto bytes = fromBase64Url(*text);
  if (!bytes) {
    return configError(fmt::format("\"{}\" is not base64url (without padding)", member));
  }
  if (bytes->empty() || (size != 0 && bytes->size() != size)) {
    return configError(fmt::format("\"{}\" is {} bytes{}", member, bytes->size(),
                                   size != 0 ? fmt::format(", not {}", size) : ""));
  }
  return std::move(*bytes);
}

Result<PkeyPtr> pkeyFromParams(const char* type, const OSSL_PARAM_BLD* builder) {
  const ParamsPtr params(OSSL_PARAM_BLD_to_param(const_cast<OSSL_PARAM_BLD*>(builder)));
  const PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return configError(fmt::format("OpenSSL does not take it as an {} public key", type));
  }
  return PkeyPtr(pkey);
}

Result<Key> rsaJwk(const Json& jwk) {
  auto n = jwkBytes(jwk, "n");
  if (!n) return std::move(n).error();
  auto e = jwkBytes(jwk, "e");
  if (!e) return std::move(e).error();
  const BnPtr modulus(BN_bin2bn(bytesOf(*n), static_cast<int>(n->size()), nullptr));
  const BnPtr exponent(BN_bin2bn(bytesOf(*e), static_cast<int>(e->size()), nullptr));
  const ParamBldPtr builder(OSSL_PARAM_BLD_new());
  if (!modulus || !exponent || !builder ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) != 1) {
    return configError("out of memory");
  }
  auto pkey = pkeyFromParams("RSA", builder.get());
  if (!pkey) return std::move(pkey).error();
  return keyOf(std::move(*pkey));
}

Result<Key> ecJwk(const Json& jwk) {
  const auto crv = jwk.find("crv");
  const auto* curve = crv == jwk.end() ? nullptr : crv->get_ptr<const std::string*>();
  if (curve == nullptr) return configError("no \"crv\" string");
  if (*curve != "P-256") {
    return configError(fmt::format("an EC key on curve {} (ES256 needs P-256)", printable(*curve)));
  }
  auto x = jwkBytes(jwk, "x", kEs256CoordinateBytes);
  if (!x) return std::move(x).error();
  auto y = jwkBytes(jwk, "y", kEs256CoordinateBytes);
  if (!y) return std::move(y).error();
  std::array<unsigned char, 1 + 2 * kEs256CoordinateBytes> point{};
  point[0] = 0x04;  // uncompressed (SEC 1 §2.3.3)
  std::copy(x->begin(), x->end(), point.begin() + 1);
  std::copy(y->begin(), y->end(), point.begin() + 1 + kEs256CoordinateBytes);
  const ParamBldPtr builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return configError("out of memory");
  }
  auto pkey = pkeyFromParams("EC", builder.get());
  if (!pkey) return configError("x and y are not a point of P-256");
  return keyOf(std::move(*pkey));
}

Result<Key> okpJwk(const Json& jwk) {
  const auto crv = jwk.find("crv");
  const auto* curve = crv == jwk.end() ? nullptr : crv->get_ptr<const std::string*>();
  if (curve == nullptr) return configError("no \"crv\" string");
  if (*curve != "Ed25519") {
    return configError(
        fmt::format("an OKP key on curve {} (EdDSA needs Ed25519)", printable(*curve)));
  }
  auto x = jwkBytes(jwk, "x", crypto_sign_PUBLICKEYBYTES);
  if (!x) return std::move(x).error();
  return ed25519Key(*x);
}

Result<Key> keyOfType(const std::string& kty, const Json& jwk) {
  if (kty == "RSA") return rsaJwk(jwk);
  if (kty == "EC") return ecJwk(jwk);
  if (kty == "OKP") return okpJwk(jwk);
  return configError(fmt::format("kty {} (only RSA, EC and OKP are supported)", printable(kty)));
}

// Members only a private or secret JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2).
constexpr std::array<const char*, 8> kPrivateMembers = {"d",  "p",  "q",   "dp",
                                                        "dq", "qi", "oth", "k"};

// One entry of a JWKS: a key, nothing (skipped: not for signatures) or an error.
Result<std::optional<Key>> jwkEntry(const Json& jwk) {
  if (!jwk.is_object())
    return configError(fmt::format("a JSON {}, not an object", jwk.type_name()));
  std::optional<std::string> kid;
  if (const auto it = jwk.find("kid"); it != jwk.end()) {
    const auto* text = it->get_ptr<const std::string*>();
    if (text == nullptr) return configError("\"kid\" is not a string");
    kid = *text;
  }
  if (const auto it = jwk.find("use"); it != jwk.end()) {
    const auto* use = it->get_ptr<const std::string*>();
    if (use == nullptr) return configError("\"use\" is not a string");
    if (*use != "sig") return std::optional<Key>();
  }
  for (const char* member : kPrivateMembers) {
    if (jwk.contains(member)) {
      return configError(
          fmt::format("a private or secret key (it has \"{}\"): publish public "
                      "keys only",
                      member));
    }
  }
  const auto kty = jwk.find("kty");
  const auto* type = kty == jwk.end() ? nullptr : kty->get_ptr<const std::string*>();
  if (type == nullptr) return configError("no \"kty\" string");
  auto key = keyOfType(*type, jwk);
  if (!key) return std::move(key).error();
  if (const auto it = jwk.find("alg"); it != jwk.end()) {
    const auto* alg = it->get_ptr<const std::string*>();
    if (alg == nullptr) return configError("\"alg\" is not a string");
    if (*alg != algName(key->alg)) {
      return configError(fmt::format("alg {} does not fit {} (which serves {} only)",
                                     printable(*alg), keyTypeName(key->alg), algName(key->alg)));
    }
  }
  key->kid = std::move(kid);
  return std::optional<Key>(std::move(*key));
}

Result<std::unique_ptr<JwtKeys::Impl>> parseJwks(std::string_view text) {
  auto impl = emptyImpl();
  if (!impl) return std::move(impl).error();
  const Json doc = Json::parse(text.data(), text.data() + text.size(), nullptr,
                               /*allow_exceptions=*/false);
  if (doc.is_discarded()) return configError("not valid JSON");
  if (!doc.is_object()) {
    return configError(
        fmt::format("a JSON {}, not a JWKS object ({{\"keys\": [...]}})", doc.type_name()));
  }
  const auto list = doc.find("keys");
  if (list == doc.end() || !list->is_array()) {
    return configError("no \"keys\" array (a single JWK goes in {\"keys\": [...]})");
  }
  const OpensslErrorScope errors;
  std::size_t skipped = 0;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const Json& entry = (*list)[i];
    auto key = jwkEntry(entry);
    if (!key) {
      std::string where = fmt::format("key {}", i + 1);
      if (entry.is_object()) {
        const auto kid = entry.find("kid");
        if (kid != entry.end() && kid->is_string()) {
          where += fmt::format(" (kid {})", printable(kid->get_ref<const std::string&>()));
        }
      }
      return configError(fmt::format("{}: {}", where, key.error().message()));
    }
    if (*key) {
      (*impl)->keys.push_back(std::move(**key));
    } else {
      ++skipped;
    }
  }
  if ((*impl)->keys.empty()) {
    return configError(
        fmt::format("no usable key ({} entries, {} skipped because their "
                    "\"use\" is not \"sig\")",
                    list->size(), skipped));
  }
  return impl;
}

// Whether key-file text is a JWKS (else PEM is tried): its first character, after white space
// and a UTF-8 byte order mark, is '{'.
bool looksLikeJwks(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{';
}

Result<std::string> readKeyFile(const std::filesystem::path& file) {
  const auto fail = [&](std::string what) {
    return configError(fmt::format("JWT key file {}: {}", file.string(), what));
  };
  const std::unique_ptr<std::FILE, FileClose> f(std::fopen(file.c_str(), "rb"));
  if (!f) return fail("cannot open it: " + std::generic_category().message(errno));
  std::string text(kMaxKeyFileBytes + 1, '\0');
  const std::size_t size = std::fread(text.data(), 1, text.size(), f.get());
  if (std::ferror(f.get()) != 0) {
    return fail("cannot read it: " + std::generic_category().message(errno));
  }
  if (size > kMaxKeyFileBytes) {
    return fail(fmt::format("larger than {} bytes: not a key file", kMaxKeyFileBytes));
  }
  text.resize(size);
  return text;
}

Result<JwtKeys> tooLarge(std::size_t size) {
  return configError(
      fmt::format("JWT keys: {} bytes of text (at most {})", size, kMaxKeyFileBytes));
}

}  // namespace

JwtKeys::JwtKeys(std::unique_ptr<const Impl> impl) : impl_(std::move(impl)) {}
JwtKeys::JwtKeys(JwtKeys&&) noexcept = default;
JwtKeys& JwtKeys::operator=(JwtKeys&&) noexcept = default;
JwtKeys::~JwtKeys() = default;

std::size_t JwtKeys::size() const { return impl_ ? impl_->keys.size() : 0; }

Result<JwtKeys> JwtKeys::fromPem(std::string_view pem) {
  if (pem.size() > kMaxKeyFileBytes) return tooLarge(pem.size());
  auto impl = parsePem(pem);
  if (!impl) return configError("JWT keys (PEM): " + impl.error().message());
  return JwtKeys(std::move(*impl));
}

Result<JwtKeys> JwtKeys::fromJwks(std::string_view json) {
  if (json.size() > kMaxKeyFileBytes) return tooLarge(json.size());
  auto impl = parseJwks(json);
  if (!impl) return configError("JWT keys (JWKS): " + impl.error().message());
  return JwtKeys(std::move(*impl));
}

Result<JwtKeys> JwtKeys::load(const std::filesystem::path& file) {
  auto text = readKeyFile(file);
  if (!text) return std::move(text).error();
  const bool jwks = looksLikeJwks(*text);
  if (!jwks && text->find("-----BEGIN ") == std::string::npos) {
    return configError(
        fmt::format("JWT key file {}: neither a JWKS (which starts with '{{') nor "
                    "PEM (no \"-----BEGIN\" line)",
                    file.string()));
  }
  auto impl = jwks ? parseJwks(*text) : parsePem(*text);
  if (!impl) {
    return configError(fmt::format("JWT key file {} ({}): {}", file.string(), jwks ? "JWKS" : "PEM",
                                   impl.error().message()));
  }
  return JwtKeys(std::move(*impl));
}

// --- verification --------------------------------------------------------------------------------

namespace {

struct Segments {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signingInput;  // header '.' payload, as signed
};

Result<Segments> splitToken(std::string_view token) {
  const std::size_t first = token.find('.');
  const std::size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    const auto dots = static_cast<std::size_t>(std::count(token.begin(), token.end(), '.'));
    return malformed(
        fmt::format("{} segments (a compact JWS has 3: header.payload.signature)", dots + 1));
  }
  return Segments{.header = token.substr(0, first),
                  .payload = token.substr(first + 1, second - first - 1),
                  .signature = token.substr(second + 1),
                  .signingInput = token.substr(0, second)};
}

Result<std::string> decodeSegment(std::string_view segment, std::string_view what) {
  auto bytes = fromBase64Url(segment);
  if (!bytes) {
    return malformed(
        fmt::format("the {} segment is not strict base64url (no padding, no white "
                    "space, '-' and '_' in place of '+' and '/')",
                    what));
  }
  return std::move(*bytes);
}

struct Header {
  Alg alg = Alg::Rs256;
  std::optional<std::string> kid;
};

const std::string* stringMember(const Json& object, const char* name, const Json** found) {
  const auto it = object.find(name);
  *found = it == object.end() ? nullptr : &*it;
  return *found == nullptr ? nullptr : (*found)->get_ptr<const std::string*>();
}

Result<Header> checkHeader(const Json& header) {
  const Json* member = nullptr;
  const std::string* alg = stringMember(header, "alg", &member);
  if (member == nullptr) return denied("the header has no alg");
  if (alg == nullptr) {
    return denied(fmt::format("the header's alg is a JSON {}, not a string", member->type_name()));
  }
  const auto known = algFromName(*alg);
  if (!known) {
    return denied(
        fmt::format("alg {} is not allowed (only RS256, ES256 and EdDSA)", printable(*alg)));
  }
  // RFC 7515 §4.1.11: a recipient that does not understand every listed extension must refuse.
  // No extension is understood here, so any crit, even an empty one, is refused.
  if (header.contains("crit")) return denied("the header has crit (no extension is understood)");
  if (const std::string* typ = stringMember(header, "typ", &member); member != nullptr) {
    if (typ == nullptr) {
      return denied(fmt::format("the header's typ is a JSON {}, not \"JWT\"", member->type_name()));
    }
    if (!equalsIgnoringAsciiCase(*typ, "JWT")) {
      return denied(fmt::format("typ {} is not \"JWT\"", printable(*typ)));
    }
  }
  Header out{.alg = *known, .kid = std::nullopt};
  if (const std::string* kid = stringMember(header, "kid", &member); member != nullptr) {
    if (kid == nullptr) {
      return denied(
          fmt::format("the header's kid is a JSON {}, not a string", member->type_name()));
    }
    out.kid = *kid;
  }
  return out;
}

bool evpVerify(const EVP_MD* sha256, const Key& key, std::string_view signingInput,
               const unsigned char* signature, std::size_t signatureSize) {
  const MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  // For RS256 this is RSASSA-PKCS1-v1_5: OpenSSL's default padding for an "RSA" key, and the
  // only kind of RSA key loaded (an "RSA-PSS" key is refused). Setting it again costs a provider
  // parameter round trip on every token.
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, sha256, nullptr, key.pkey.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), signature, signatureSize, bytesOf(signingInput),
                          signingInput.size()) == 1;
}

// The DER ECDSA-Sig-Value OpenSSL verifies, from JWS's R || S.
struct DerSignature {
  std::array<unsigned char, kEs256MaxDerBytes> bytes{};
  std::size_t size = 0;
};

std::optional<DerSignature> es256Der(std::string_view rs) {
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BnPtr r(BN_bin2bn(bytesOf(rs), static_cast<int>(kEs256CoordinateBytes), nullptr));
  BnPtr s(BN_bin2bn(bytesOf(rs) + kEs256CoordinateBytes, static_cast<int>(kEs256CoordinateBytes),
                    nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return std::nullopt;
  (void)r.release();  // sig owns them now
  (void)s.release();
  const int size = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (size <= 0 || static_cast<std::size_t>(size) > kEs256MaxDerBytes) return std::nullopt;
  DerSignature der;
  unsigned char* cursor = der.bytes.data();
  if (i2d_ECDSA_SIG(sig.get(), &cursor) != size) return std::nullopt;
  der.size = static_cast<std::size_t>(size);
  return der;
}

bool verifyWith(const JwtKeys::Impl& keys, const Key& key, std::string_view signingInput,
                std::string_view signature, const std::optional<DerSignature>& der) {
  switch (key.alg) {
    case Alg::EdDsa:
      return signature.size() == crypto_sign_BYTES &&
             crypto_sign_verify_detached(bytesOf(signature), bytesOf(signingInput),
                                         signingInput.size(), key.ed25519.data()) == 0;
    case Alg::Es256:
      return der && evpVerify(keys.sha256.get(), key, signingInput, der->bytes.data(), der->size);
    case Alg::Rs256:
      // RSASSA-PKCS1-v1_5 signatures are exactly the modulus' length (RFC 8017 §8.2.2).
      return signature.size() == static_cast<std::size_t>(EVP_PKEY_get_size(key.pkey.get())) &&
             evpVerify(keys.sha256.get(), key, signingInput, bytesOf(signature), signature.size());
  }
  return false;
}

Result<void> verifySignature(const JwtKeys::Impl& keys, const Header& header,
                             std::string_view signingInput, std::string_view signature) {
  // The keys that may verify: the header's kid, when it has one, and the algorithm's key type
  // choose them. The key decides the algorithm: an RS256 header never meets an EC or Ed25519
  // key, and no key is ever an HMAC secret.
  const auto eligible = [&](const Key& key) {
    return (!header.kid || key.kid == header.kid) && key.alg == header.alg;
  };
  const auto candidates =
      static_cast<std::size_t>(std::count_if(keys.keys.begin(), keys.keys.end(), eligible));
  if (candidates == 0 && header.kid) {
    const auto named = std::find_if(keys.keys.begin(), keys.keys.end(),
                                    [&](const Key& key) { return key.kid == header.kid; });
    if (named == keys.keys.end()) {
      return denied(fmt::format("no key has kid {}", printable(*header.kid)));
    }
    return denied(fmt::format("the key with kid {} is {}, which cannot verify {}",
                              printable(*header.kid), keyTypeName(named->alg),
                              algName(header.alg)));
  }
  if (candidates == 0) {
    return denied(fmt::format("no key for {} ({} is needed; the token names no kid)",
                              algName(header.alg), keyTypeName(header.alg)));
  }
  if ((header.alg == Alg::Es256 && signature.size() != kEs256SignatureBytes) ||
      (header.alg == Alg::EdDsa && signature.size() != crypto_sign_BYTES)) {
    return denied(
        fmt::format("an {} signature is 64 bytes, not {}", algName(header.alg), signature.size()));
  }
  const OpensslErrorScope errors;
  std::optional<DerSignature> der;
  if (header.alg == Alg::Es256) {
    der = es256Der(signature);
    if (!der) return denied("the ES256 signature cannot be converted to DER");
  }
  for (const Key& key : keys.keys) {
    if (eligible(key) && verifyWith(keys, key, signingInput, signature, der)) return {};
  }
  return denied(fmt::format("bad {} signature (tried {} key{})", algName(header.alg), candidates,
                            candidates == 1 ? "" : "s"));
}

// How a fractional NumericDate is rounded: toward the side that accepts less.
enum class Round : std::uint8_t { Down, Up };

// A NumericDate claim: absent, or integral Unix seconds within ±kMaxNumericDate.
Result<std::optional<std::int64_t>> numericDate(const Json& claims, const char* name, Round round) {
  const auto it = claims.find(name);
  if (it == claims.end()) return std::optional<std::int64_t>();
  // Unsigned first: nlohmann's is_number_integer() is true for unsigned values as well.
  if (const auto* u = it->get_ptr<const Json::number_unsigned_t*>(); u != nullptr) {
    if (*u <= static_cast<std::uint64_t>(kMaxNumericDate)) {
      return std::optional<std::int64_t>(static_cast<std::int64_t>(*u));
    }
  } else if (const auto* i = it->get_ptr<const Json::number_integer_t*>(); i != nullptr) {
    if (*i >= -kMaxNumericDate && *i <= kMaxNumericDate) return std::optional<std::int64_t>(*i);
  } else if (const auto* f = it->get_ptr<const Json::number_float_t*>(); f != nullptr) {
    // Converted only once it is known to fit: a double beyond int64's range is UB to convert.
    const double whole = round == Round::Down ? std::floor(*f) : std::ceil(*f);
    const auto limit = static_cast<double>(kMaxNumericDate);
    if (std::isfinite(whole) && whole >= -limit && whole <= limit) {
      return std::optional<std::int64_t>(static_cast<std::int64_t>(whole));
    }
  } else {
    return denied(fmt::format("{} is a JSON {}, not a number", name, it->type_name()));
  }
  return denied(
      fmt::format("{} is out of range (a date in Unix seconds within ±{})", name, kMaxNumericDate));
}

Result<void> checkAudience(const Json& claims, const std::string& audience) {
  const auto aud = claims.find("aud");
  if (aud == claims.end()) return denied("no aud claim");
  if (const auto* one = aud->get_ptr<const std::string*>(); one != nullptr) {
    if (*one == audience) return {};
    return denied(fmt::format("aud {} is not this service's audience {}", printable(*one),
                              printable(audience)));
  }
  if (!aud->is_array()) {
    return denied(fmt::format("aud is a JSON {}, not a string or an array", aud->type_name()));
  }
  bool found = false;
  for (const Json& entry : *aud) {
    const auto* text = entry.get_ptr<const std::string*>();
    if (text == nullptr) {
      return denied(fmt::format("aud holds a JSON {}, not only strings", entry.type_name()));
    }
    found = found || *text == audience;
  }
  if (found) return {};
  return denied(fmt::format("aud (an array of {}) does not name this service's audience {}",
                            aud->size(), printable(audience)));
}

// `claim` is the roles claim's name, as the policy gives it.
Result<void> checkRole(std::string_view role, std::string_view claim) {
  if (role.empty()) return denied(fmt::format("{} holds an empty role", printable(claim)));
  if (role.size() > kMaxRoleBytes) {
    return denied(fmt::format("{} holds a role of {} bytes (at most {})", printable(claim),
                              role.size(), kMaxRoleBytes));
  }
  if (!isPrintableAscii(role)) {
    return denied(fmt::format("{} holds a role that is not printable ASCII", printable(claim)));
  }
  return {};
}

Result<std::vector<std::string>> rolesOf(const Json& claims, const std::string& claim) {
  std::vector<std::string> roles;
  if (claim.empty()) return roles;
  const auto it = claims.find(claim);
  if (it == claims.end()) return roles;
  if (const auto* one = it->get_ptr<const std::string*>(); one != nullptr) {
    if (auto ok = checkRole(*one, claim); !ok) return ok.error();
    roles.push_back(*one);
    return roles;
  }
  if (!it->is_array()) {
    return denied(fmt::format("the roles claim {} is a JSON {}, not a string or an array",
                              printable(claim), it->type_name()));
  }
  if (it->size() > kMaxRoles) {
    return denied(fmt::format("the roles claim {} holds {} roles (at most {})", printable(claim),
                              it->size(), kMaxRoles));
  }
  roles.reserve(it->size());
  for (const Json& entry : *it) {
    const auto* role = entry.get_ptr<const std::string*>();
    if (role == nullptr) {
      return denied(fmt::format("the roles claim {} holds a JSON {}, not only strings",
                                printable(claim), entry.type_name()));
    }
    if (auto ok = checkRole(*role, claim); !ok) return ok.error();
    roles.push_back(*role);
  }
  return roles;
}

Result<JwtClaims> checkClaims(const Json& claims, const JwtPolicy& policy, std::int64_t now) {
  const Json* member = nullptr;
  const std::string* iss = stringMember(claims, "iss", &member);
  if (member == nullptr) return denied("no iss claim");
  if (iss == nullptr)
    return denied(fmt::format("iss is a JSON {}, not a string", member->type_name()));
  if (*iss != policy.issuer) {
    return denied(fmt::format("iss {} is not the trusted issuer {}", printable(*iss),
                              printable(policy.issuer)));
  }
  if (auto ok = checkAudience(claims, policy.audience); !ok) return ok.error();

  // |dates| <= kMaxNumericDate and 0 <= skew <= kMaxClockSkew: no sum below overflows, and each
  // comparison is arranged so that `now`, which may be anything, is never added to.
  const std::int64_t skew = policy.clockSkew.count();
  auto exp = numericDate(claims, "exp", Round::Down);
  if (!exp) return std::move(exp).error();
  if (!*exp) return denied("no exp claim");
  const std::int64_t expiresAt = **exp;
  if (now > expiresAt + skew) {
    return denied(
        fmt::format("expired: exp {} is before now ({}) by more than the allowed "
                    "clock skew of {} s",
                    expiresAt, now, skew));
  }
  auto nbf = numericDate(claims, "nbf", Round::Up);
  if (!nbf) return std::move(nbf).error();
  if (*nbf && now < **nbf - skew) {
    return denied(
        fmt::format("not yet valid: nbf {} is after now ({}) by more than the allowed "
                    "clock skew of {} s",
                    **nbf, now, skew));
  }
  auto iat = numericDate(claims, "iat", Round::Up);
  if (!iat) return std::move(iat).error();
  if (*iat && now < **iat - skew) {
    return denied(
        fmt::format("issued in the future: iat {} is after now ({}) by more than the "
                    "allowed clock skew of {} s",
                    **iat, now, skew));
  }

  const std::string* sub = stringMember(claims, "sub", &member);
  if (member == nullptr) return denied("no sub claim");
  if (sub == nullptr)
    return denied(fmt::format("sub is a JSON {}, not a string", member->type_name()));
  if (sub->empty()) return denied("sub is empty");
  if (sub->size() > kMaxUserIdBytes) {
    return denied(fmt::format("sub is {} bytes (at most {})", sub->size(), kMaxUserIdBytes));
  }
  if (!isPrintableAscii(*sub)) return denied("sub is not printable ASCII");

  auto roles = rolesOf(claims, policy.rolesClaim);
  if (!roles) return std::move(roles).error();
  return JwtClaims{.subject = *sub, .roles = std::move(*roles), .expiresAt = expiresAt};
}

}  // namespace

Result<void> checkJwtPolicy(const JwtPolicy& policy) {
  if (policy.issuer.empty()) return configError("JWT policy: the issuer is empty");
  if (policy.audience.empty()) return configError("JWT policy: the audience is empty");
  if (policy.clockSkew < std::chrono::seconds(0) || policy.clockSkew > kMaxClockSkew) {
    return configError(fmt::format("JWT policy: a clock skew of {} s (0 to {} s)",
                                   policy.clockSkew.count(), kMaxClockSkew.count()));
  }
  return {};
}

Result<JwtClaims> verifyJwt(std::string_view token, const JwtKeys& keys, const JwtPolicy& policy,
                            std::int64_t nowUnixSeconds) {
  if (auto ok = checkJwtPolicy(policy); !ok) return ok.error();
  if (token.size() > kMaxTokenBytes) {
    return malformed(fmt::format("a token of {} bytes (at most {})", token.size(), kMaxTokenBytes));
  }
  auto segments = splitToken(token);
  if (!segments) return std::move(segments).error();
  auto headerText = decodeSegment(segments->header, "header");
  if (!headerText) return std::move(headerText).error();
  auto payloadText = decodeSegment(segments->payload, "payload");
  if (!payloadText) return std::move(payloadText).error();
  auto signature = decodeSegment(segments->signature, "signature");
  if (!signature) return std::move(signature).error();

  auto headerJson = parseObject(*headerText, "header", kHeaderMembers);
  if (!headerJson) return std::move(headerJson).error();
  auto header = checkHeader(*headerJson);
  if (!header) return std::move(header).error();
  if (!keys.impl_ || keys.impl_->keys.empty()) return denied("no keys to verify with");
  if (auto ok = verifySignature(*keys.impl_, *header, segments->signingInput, *signature); !ok) {
    return ok.error();
  }
  // Only now is the payload read: nothing unauthenticated reaches the JSON parser but the header.
  const std::array<std::string_view, 7> claimsRead = {
      "iss", "aud", "exp", "nbf", "iat", "sub", policy.rolesClaim};
  auto claims = parseObject(*payloadText, "payload",
                            std::span(claimsRead).first(policy.rolesClaim.empty() ? 6 : 7));
  if (!claims) return std::move(claims).error();
  return checkClaims(*claims, policy, nowUnixSeconds);
}

}  // namespace portcullis::online
