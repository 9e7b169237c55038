// tests/fuzz/team_fuzz_support.h — what the team provider's fuzz targets share: a reader for
// their framed inputs, the test signing keys they re-sign fuzzed bodies with, and the failure
// report of a broken invariant.
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

#include "link.h"
#include "portcullis/types.h"
#include "wire/link_codec.h"

namespace portcullis::team::fuzz {

// Reads an input front to back. A field that runs past the end is absent: a shorter input is
// just a smaller case, never an error.
class Reader {
 public:
  explicit Reader(ByteView in) : in_(in) {}

  template <std::size_t N>
  std::optional<std::array<std::uint8_t, N>> fixed() {
    if (in_.size() < N) return std::nullopt;
    std::array<std::uint8_t, N> out{};
    std::memcpy(out.data(), in_.data(), N);
    in_ = in_.subspan(N);
    return out;
  }
  std::optional<std::uint8_t> byte() {
    auto b = fixed<1>();
    if (!b) return std::nullopt;
    return (*b)[0];
  }
  std::optional<std::uint32_t> u32() {  // little endian
    auto b = fixed<4>();
    if (!b) return std::nullopt;
    return std::uint32_t{(*b)[0]} | std::uint32_t{(*b)[1]} << 8 | std::uint32_t{(*b)[2]} << 16 |
           std::uint32_t{(*b)[3]} << 24;
  }
  // Up to n bytes: all that is left when fewer are.
  ByteView take(std::size_t n) {
    const ByteView out = in_.first(std::min(n, in_.size()));
    in_ = in_.subspan(out.size());
    return out;
  }
  ByteView rest() { return take(in_.size()); }
  bool empty() const noexcept { return in_.empty(); }

 private:
  ByteView in_;
};

// The writer side of Reader, for the corpus generator.
inline void putU32(Bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void putBytes(Bytes& out, ByteView b) { out.insert(out.end(), b.begin(), b.end()); }

// A broken invariant: says which, then aborts, which libFuzzer reports as a crash (with the
// input saved) and the replay test as a failed run.
[[noreturn]] inline void fail(const char* target, std::string_view what) {
  std::fprintf(stderr, "%s: invariant broken: %.*s\n", target, static_cast<int>(what.size()),
               what.data());
  std::abort();
}
inline void require(bool ok, const char* target, std::string_view what) {
  if (!ok) fail(target, what);
}

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
