// tests/fuzz/team_session_fuzz_support.h — what the session fuzz targets (team_change,
// team_handshake) share with the corpus generator: their fixed test keys and IDs, and the
// handshake target's input framing. The generator writes seeds with these same values, so the
// seeds reach the paths behind a signature or an AEAD tag.
//
// Test support only, for the fuzz targets, their replay tests and gen_corpus.cc. Call sodium_init
// before any of the functions. Single-threaded.
#pragma once

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "handshake.h"
#include "invitation.h"
#include "team_fuzz_support.h"

namespace portcullis::team::fuzz {

template <std::size_t N>
std::array<std::uint8_t, N> filledWith(std::uint8_t b) {
  std::array<std::uint8_t, N> a{};
  a.fill(b);
  return a;
}

// --- team_change --------------------------------------------------------------------------------

// The document every change is decoded for, and another one (a signature binds its docId).
inline DocId changeDoc() { return filledWith<16>(0xD0); }
inline DocId otherDoc() { return filledWith<16>(0xD1); }

// The actors whose bodies team_change re-signs: seeds of 32 copies of 0xC1 and of 0xC2.
inline const std::vector<TestSigner>& changeSigners() {
  static const std::vector<TestSigner> signers{signerFromSeed(filledWith<32>(0xC1)),
                                               signerFromSeed(filledWith<32>(0xC2))};
  return signers;
}

// --- team_handshake -----------------------------------------------------------------------------
//
// Input: flags (1 byte) ‖ four chunks, each a u32 little-endian length and its bytes (a chunk cut
// short by the input's end is what is left; a missing one is empty). The fuzzed peer is the
// initiator; it sends, each time the responder wants bytes and has read all it was given, the
// next chunk:
//   1. m1 as raw stream bytes (its u32 big-endian length included);
//   2. m3: with kSeal (and when the peer can: m1's E_I is handshakeKeys().ephemeralPk and
//      the responder sent m2) the chunk is Claim_I's plaintext, sealed as c3 under hk_I with ad h2,
//      and with kResign its first kSignaturePlaceholder is replaced by the initiator device's
//      signature over h2; else raw stream bytes;
//   3. the initiator's Status frame: with kSeal (as above) the plaintext Message, sealed under
//      tk_I, counter 0; else raw;
//   4. one session frame after the handshake: with kSeal the plaintext, sealed under tk_I,
//      counter 1; else raw.
enum HandshakeFlags : std::uint8_t {
  kLookupMask = 0x03,  // 0 honest lookups, 1 any tag or prefix names the team, 2 none, 3 two
  kJudgeShift = 2,     // 2 bits: the judge answers ok, proveAdmission, denied(removed),
  kJudgeMask = 0x0C,   //   denied(needMember)
  kSeal = 0x10,
  kResign = 0x20,
  kManyOffers = 0x40,  // invitationsFor gives kMaxOffers + 1 offers (else one)
  kReflect = 0x80,     // m1's E_I (when m1 is whole in chunk 1) becomes the responder's E_R
};
enum class Lookup : std::uint8_t { Honest = 0, Any = 1, None = 2, Two = 3 };

inline Hash handshakeTeam() { return filledWith<32>(0x7E); }
inline Hash otherHandshakeTeam() { return filledWith<32>(0x7F); }
inline std::array<std::uint8_t, 64> signaturePlaceholder() { return filledWith<64>(0xC5); }

struct HandshakeKeys {
  TestSigner initiator;  // the fuzzed peer's device
  TestSigner responder;  // the device under test
  EphemeralPublic ephemeralPk{};  // the fuzzed peer's E_I
  std::array<std::uint8_t, 32> ephemeralSk{};
};
inline const HandshakeKeys& handshakeKeys() {
  static const HandshakeKeys keys = [] {
    HandshakeKeys k;
    k.initiator = signerFromSeed(filledWith<32>(0xA1));
    k.responder = signerFromSeed(filledWith<32>(0xA2));
    const auto seed = filledWith<32>(0xE1);
    crypto_kx_seed_keypair(k.ephemeralPk.data(), k.ephemeralSk.data(), seed.data());
    return k;
  }();
  return keys;
}

inline TeamPrefix prefixOf(const Hash& teamId) {
  const std::string b = base58Encode(teamId);
  TeamPrefix p{};
  std::copy_n(b.begin(), std::min(b.size(), p.size()), p.begin());
  return p;
}

inline Bytes framedBigEndian(ByteView payload) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  Bytes out{static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
            static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  putBytes(out, payload);
  return out;
}

// m1 as the stream carries it, with handshakeKeys().ephemeralPk as E_I: mode 0 with `teamId`'s
// tag, mode 1 with its prefix.
inline Bytes streamM1(HandshakeMode mode, const Hash& teamId) {
  const auto& k = handshakeKeys();
  Bytes m1{'P', 'C', 'T', '3', static_cast<std::uint8_t>(mode)};
  if (mode == HandshakeMode::Member) {
    putBytes(m1, teamTag(teamId, k.ephemeralPk));
  } else {
    const TeamPrefix p = prefixOf(teamId);
    m1.insert(m1.end(), p.begin(), p.end());
  }
  putBytes(m1, k.ephemeralPk);
  return framedBigEndian(m1);
}

inline Bytes handshakeInput(std::uint8_t flags, const std::array<Bytes, 4>& chunks) {
  Bytes in{flags};
  for (const Bytes& c : chunks) {
    putU32(in, static_cast<std::uint32_t>(c.size()));
    putBytes(in, c);
  }
  return in;
}

}  // namespace portcullis::team::fuzz
