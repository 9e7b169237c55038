// tests/fuzz/team_fuzz_support.h — what the team provider's fuzz targets share beyond
// fuzz_input.h: the test signing keys they re-sign fuzzed bodies with.
//
// Random bytes almost never carry a valid Ed25519 signature, so a mutated link would stop at
// check 2 and everything behind it (consents, checks 3–5, evaluation) would stay out of the
// fuzzer's reach. Each input therefore names the seeds of the keys its links are signed with;
// the targets re-sign a fuzzed body with the key whose public key it holds. The codec has no
// entry point for check 1 alone, and the harness parses nothing itself, so it cannot make a key
// appear in a body: only bodies that already name a seed's key (the seed corpus's, kept by the
// mutation) get a valid signature. Consents are not re-signed.
//
// Test support only, for the fuzz targets and their replay tests. Single-threaded.
#pragma once

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.h"
#include "link.h"
#include "portcullis/types.h"
#include "wire/link_codec.h"

namespace portcullis::team::fuzz {

using portcullis::fuzz::fail;
using portcullis::fuzz::putBytes;
using portcullis::fuzz::putU32;
using portcullis::fuzz::Reader;
using portcullis::fuzz::require;

// A test key pair from a 32-byte seed (the fuzz inputs carry seeds, never secret keys; the
// golden vectors' keys are seeded by H256("portcullis-test/key/" + name), tests/providers/team/
// vector_builder.h). Fixed, public test keys: no wiping.
struct TestSigner {
  Key publicKey{};
  std::array<std::uint8_t, 64> secretKey{};
};
inline TestSigner signerFromSeed(const std::array<std::uint8_t, 32>& seed) {
  TestSigner s;
  crypto_sign_seed_keypair(s.publicKey.data(), s.secretKey.data(), seed.data());
  return s;
}

// The signer whose public key comes first in `body`, if any. In a canonical LinkBody the
// targets of the root's pointers follow in field order (prev, userId, deviceId, action), and
// prev holds hashes, so the first test key a body holds is its deviceId unless userId's text
// happens to spell one.
inline const TestSigner* authorIn(ByteView body, std::span<const TestSigner> signers) {
  const TestSigner* best = nullptr;
  auto bestAt = body.end();
  for (const TestSigner& s : signers) {
    const auto at = std::search(body.begin(), body.end(), s.publicKey.begin(), s.publicKey.end());
    if (at < bestAt) {
      bestAt = at;
      best = &s;
    }
  }
  return best;
}

// The `Link` message the holder of `signer` would send for `body`.
inline Bytes resign(ByteView body, const TestSigner& signer) {
  return encodeLink(body, signLinkBody(body, signer.secretKey));
}

// decodeLink's verdict comes from check 1 (the body alone) unless it names the signature or a
// consent: those two are check 2 (link_codec.cc's messages, "team link: <field>: <rule>").
inline bool failedCheck2(const Error& e) {
  const std::string_view m = e.message();
  return m.starts_with("team link: signature:") || m.starts_with("team link: consent:");
}

}  // namespace portcullis::team::fuzz
