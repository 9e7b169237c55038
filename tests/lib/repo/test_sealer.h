// A ChangeSealer for tests: signs (Ed25519) and encrypts (XChaCha20-Poly1305) change payloads
// with fixed test keys, so that a relay holding only the public key validates and relays changes
// it cannot read. Wire form, all integers little-endian:
//   "TSC1" | actor len (1) | actor | seq (8) | startOp (8) | opCount (8) | dep count (2) |
//   deps (32 each) | nonce (24) | ciphertext of the plain change, header as associated data |
//   signature (64) over everything before it.
// The hash is BLAKE2b-256 of the whole payload.
#pragma once

#include <sodium.h>

#include <array>
#include <cstring>
#include <optional>

#include "portcullis/change_sealer.h"

namespace portcullis::testing {

class TestSealer final : public ChangeSealer {
 public:
  // withSecrets: a member that can seal and open; otherwise a relay that can only parse.
  explicit TestSealer(bool withSecrets, std::uint8_t keySeed = 7) {
    std::array<std::uint8_t, crypto_sign_SEEDBYTES> seed{};
    seed.fill(keySeed);
    std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> sk{};
    crypto_sign_seed_keypair(publicKey_.data(), sk.data(), seed.data());
    if (withSecrets) {
      signKey_ = sk;
      std::array<std::uint8_t, crypto_aead_xchacha20poly1305_ietf_KEYBYTES> key{};
      key.fill(static_cast<std::uint8_t>(keySeed + 1));
      aeadKey_ = key;
    }
    sodium_memzero(sk.data(), sk.size());
  }

  ~TestSealer() override {
    if (signKey_) sodium_memzero(signKey_->data(), signKey_->size());
    if (aeadKey_) sodium_memzero(aeadKey_->data(), aeadKey_->size());
  }
  TestSealer(const TestSealer&) = delete;
  TestSealer& operator=(const TestSealer&) = delete;

  Result<ChangeEnvelope> parse(Bytes payload) const override {
    Reader r{payload};
    if (!r.expect("TSC1")) return bad("magic");
    const std::size_t actorLen = r.u8();
    auto actor = ActorId::fromBytes(r.take(actorLen));
    if (!actor || !r.ok) return bad("actor");
    ChangeEnvelope env{.hash = {}, .actor = *actor, .seq = r.u64(), .startOp = r.u64(),
                       .opCount = r.u64(), .deps = {}, .payload = {}};
    const std::size_t deps = r.u16();
    for (std::size_t i = 0; i < deps && r.ok; ++i) {
      auto h = ChangeHash::fromBytes(r.take(ChangeHash::kSize));
      if (!h) return bad("dep");
      env.deps.push_back(*h);
    }
    r.take(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    if (!r.ok || payload.size() < r.at + crypto_aead_xchacha20poly1305_ietf_ABYTES +
                                      crypto_sign_BYTES) {
      return bad("truncated");
    }
    const std::size_t signedLen = payload.size() - crypto_sign_BYTES;
    if (crypto_sign_verify_detached(payload.data() + signedLen, payload.data(), signedLen,
                                    publicKey_.data()) != 0) {
      return Error(Errc::Denied, "test sealer: bad signature");
    }
    env.hash = ChangeHash::of(payload);
    env.payload = std::move(payload);
    return env;
  }

  bool canOpen() const override { return aeadKey_.has_value(); }

  Result<ChangeEnvelope> seal(const ChangeEnvelope& plain) const override {
    if (!signKey_) return Error(Errc::Denied, "test sealer: no secret key");
    Bytes out{'T', 'S', 'C', '1', static_cast<std::uint8_t>(plain.actor.bytes().size())};
    out.insert(out.end(), plain.actor.bytes().begin(), plain.actor.bytes().end());
    for (std::uint64_t v : {plain.seq, plain.startOp, plain.opCount}) put(out, v, 8);
    put(out, plain.deps.size(), 2);
    for (const ChangeHash& d : plain.deps) out.insert(out.end(), d.bytes().begin(), d.bytes().end());
    const std::size_t headerLen = out.size();
    std::array<std::uint8_t, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES> nonce{};
    randombytes_buf(nonce.data(), nonce.size());
    out.insert(out.end(), nonce.begin(), nonce.end());
    const std::size_t at = out.size();
    out.resize(at + plain.payload.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + at, &clen, plain.payload.data(),
                                               plain.payload.size(), out.data(), headerLen,
                                               nullptr, nonce.data(), aeadKey_->data());
    const std::size_t signedLen = out.size();
    out.resize(signedLen + crypto_sign_BYTES);
    crypto_sign_detached(out.data() + signedLen, nullptr, out.data(), signedLen, signKey_->data());
    return parse(std::move(out));
  }

  Result<Bytes> open(const ChangeEnvelope& sealed) const override {
    if (!aeadKey_) return Error(Errc::NotFound, "test sealer: no key for this document");
    const Bytes& p = sealed.payload;
    const std::size_t headerLen = 5 + sealed.actor.bytes().size() + 26 + 32 * sealed.deps.size();
    const std::size_t at = headerLen + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    const std::size_t clen = p.size() - crypto_sign_BYTES - at;
    Bytes plain(clen - crypto_aead_xchacha20poly1305_ietf_ABYTES);
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain.data(), &plen, nullptr, p.data() + at,
                                                   clen, p.data(), headerLen,
                                                   p.data() + headerLen, aeadKey_->data()) != 0) {
      return Error(Errc::Malformed, "test sealer: the payload does not decrypt");
    }
    return plain;
  }

 private:
  static Error bad(const char* what) {
    return Error(Errc::Malformed, std::string("test sealer: bad ") + what);
  }
  static void put(Bytes& out, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  struct Reader {
    const Bytes& b;
    std::size_t at = 0;
    bool ok = true;
    ByteView take(std::size_t n) {
      if (!ok || b.size() - at < n) {
        ok = false;
        return {};
      }
      ByteView out(b.data() + at, n);
      at += n;
      return out;
    }
    bool expect(const char* magic) {
      ByteView m = take(std::strlen(magic));
      return ok && std::memcmp(m.data(), magic, m.size()) == 0;
    }
    std::uint64_t num(std::size_t n) {
      ByteView v = take(n);
      std::uint64_t out = 0;
      for (std::size_t i = 0; ok && i < n; ++i) out |= std::uint64_t{v[i]} << (8 * i);
      return out;
    }
    std::uint8_t u8() { return static_cast<std::uint8_t>(num(1)); }
    std::uint16_t u16() { return static_cast<std::uint16_t>(num(2)); }
    std::uint64_t u64() { return num(8); }
  };

  std::array<std::uint8_t, crypto_sign_PUBLICKEYBYTES> publicKey_{};
  std::optional<std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES>> signKey_;
  std::optional<std::array<std::uint8_t, crypto_aead_xchacha20poly1305_ietf_KEYBYTES>> aeadKey_;
};

}  // namespace portcullis::testing
