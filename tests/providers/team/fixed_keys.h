// tests/providers/team/fixed_keys.h — keys and byte strings from fixed seeds, for the codec tests
// that build links and messages byte by byte (the golden-vector tests name keys instead:
// vector_builder.h). Test support; any thread once sodium_init has run.
#pragma once

#include <sodium.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "link.h"

namespace portcullis::team::fixedkeys {

struct SignKeys {
  Key pk{};
  std::array<std::uint8_t, 64> sk{};
};

// N copies of `b`.
template <std::size_t N>
std::array<std::uint8_t, N> filled(std::uint8_t b) {
  std::array<std::uint8_t, N> a{};
  a.fill(b);
  return a;
}

// The Ed25519 key pair whose seed is 32 copies of `seedByte`.
inline SignKeys signKeys(std::uint8_t seedByte) {
  const auto seed = filled<crypto_sign_SEEDBYTES>(seedByte);
  SignKeys k;
  crypto_sign_seed_keypair(k.pk.data(), k.sk.data(), seed.data());
  return k;
}

// The X25519 public key whose seed is 32 copies of `seedByte`.
inline EncKey encKey(std::uint8_t seedByte) {
  const auto seed = filled<crypto_box_SEEDBYTES>(seedByte);
  EncKey pk{};
  std::array<std::uint8_t, crypto_box_SECRETKEYBYTES> sk{};
  crypto_box_seed_keypair(pk.data(), sk.data(), seed.data());
  return pk;
}

}  // namespace portcullis::team::fixedkeys
