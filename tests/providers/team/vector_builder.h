// tests/providers/team/vector_builder.h — the team spec's symbolic golden vectors
// (tests/data/team-vectors.json, from the specification's vectors) as real links: real Ed25519
// keys, the real encoding (wire/link_codec.h), real signatures and hashes.
//
// buildVector mirrors the reference model's build() and expand() (model.py) rule
// for rule, so a vector's expected results apply to the links it returns:
//   * a name (device, invitation key, recovery key, server, a signer named by sig, consentBy or
//     inviteSigBy) is the Ed25519 key pair seeded by H256("portcullis-test/key/" + name);
//   * "x25519:NAME" is the X25519 public key of a seed from NAME; the model's LOW_ORDER stand-ins
//     ("x25519:0", "x25519:low-order") are small-order points;
//   * a document "docN" is the first 16 bytes of H256("portcullis-test/doc/" + name); "*" is null;
//   * prev names ids (the author device's seq − 1 link is implied unless noauto); seq defaults to
//     the device's next; ts to 1_700_000_000_000 + 1000·n;
//   * an action this version does not know, or a known one with extra keys, is encoded with the
//     test-only later-version schema (future_link.capnp, future_link.cc): the model's "unknown".
// Malformed acts (bad roles, NUL in a userId, 17 devices, ...) are encoded as written: the codec
// and the graph must drop them. H256 is libsodium's crypto_generichash (BLAKE2b-256).
//
// Test support only; pure functions of their input; any thread once sodium_init has run.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "link.h"
#include "portcullis/types.h"

namespace portcullis::team::vectors {

using SecretKey = std::array<std::uint8_t, 64>;  // libsodium's Ed25519 secret key (seed ‖ pk)

struct TestKeyPair {
  Key publicKey{};
  SecretKey secretKey{};
};

inline constexpr std::uint64_t kBaseTimestamp = 1'700'000'000'000;
inline constexpr std::uint16_t kFutureActionDiscriminant = 21;  // the later version's new action

// The key pair of a symbolic name ("a1", "i1", "rk", "s1").
[[nodiscard]] TestKeyPair testKeyPair(std::string_view name);
[[nodiscard]] Key testKey(std::string_view name);
// An encKey stand-in: "x25519:NAME", or one of the model's LOW_ORDER stand-ins. Throws
// std::invalid_argument on anything else.
[[nodiscard]] EncKey testEncKey(std::string_view standIn);
[[nodiscard]] bool isLowOrderStandIn(std::string_view standIn);
// A document name; "*" is the null document (every document).
[[nodiscard]] std::optional<DocId> testDocument(std::string_view name);
// 32 fixed bytes for `tag`: H256("portcullis-test/" + tag).
[[nodiscard]] Hash testHash(std::string_view tag);

// One link of a vector, in the file's order.
struct BuiltLink {
  std::string id;
  Hash hash{};                    // linkHash(body, signature)
  Bytes message;                  // the `Link` message {body, signature}: what a peer sends
  Bytes body;                     // the canonical LinkBody
  Signature signature{};
  std::optional<LinkBody> value;  // the body as values; nullopt for a later-version link
  bool laterVersion = false;      // the model's check1 "unknown": stored, invalid, never dropped
};

struct BuiltVector {
  std::string name;
  Hash teamId{};                  // the hash of the file's first root (all zero: no root)
  std::vector<BuiltLink> links;   // file order
  std::map<std::string, Hash> hashOf;   // id -> hash
  std::map<Hash, std::string> idOf;     // hash -> id
  std::map<std::string, Key> keyOf;     // every signing-key name the links use -> key
  std::map<Key, std::string> nameOf;    // key -> name

  // Every link's `Link` message, in file order.
  [[nodiscard]] std::vector<Bytes> messages() const;
  // The id of a hash, or "?" + hex for a hash no link of the vector has.
  [[nodiscard]] std::string idFor(const Hash& hash) const;
  // The name of a key, or "?" + hex.
  [[nodiscard]] std::string nameFor(const Key& key) const;
  // The hash of a link id. Throws std::out_of_range for an id the vector does not have.
  [[nodiscard]] const Hash& hash(const std::string& id) const;
};

// The links of one vector ({"name", "links", "expect"}). Throws std::invalid_argument when the
// vector is ill-formed where model.py's build() raises (e.g. a missing own prev, an unknown
// invitation), or asks for an encoding no schema can express.
[[nodiscard]] BuiltVector buildVector(const nlohmann::json& vector);

// --- future_link.cc: links of a later version ------------------------------------------------
// A canonical LinkBody whose envelope (prev, userId, deviceId, deviceSeq, timestamp) is
// `envelope`'s and whose action is union member 21 (`futureAction {name, payload}`), which this
// version does not know. `envelope.action` is ignored.
[[nodiscard]] Bytes encodeFutureActionBody(const LinkBody& envelope, std::string_view name,
                                           std::string_view payload);
// The canonical encoding of a known `body` plus a field of a later version holding `value`
// (≠ 0, so canonical form keeps it): KeyGeneration's for a rotateKeys, LinkBody's otherwise.
[[nodiscard]] Bytes encodeBodyWithFutureField(const LinkBody& body, std::uint64_t value);

}  // namespace portcullis::team::vectors
