// portcullis/ids.h — the identifiers the Repo deals in: document IDs and peer IDs.
//
// Plain values; safe to copy between threads.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "portcullis/export.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis {

// A document's identity: 16 random bytes. Its text form is "portcullis:" followed by the
// base58check encoding of the bytes (Bitcoin's alphabet, a 4-byte double-SHA-256 checksum), as
// automerge-repo writes its URLs. Under the `document-id` provider the ID is a bearer secret:
// `logName()` gives a short hash that is safe to log; never log `toString()`.
class PORTCULLIS_EXPORT DocumentId {
 public:
  static constexpr std::size_t kSize = 16;

  // randombytes_buf.
  static DocumentId random();
  // Fails with Malformed unless bytes.size() == kSize.
  static Result<DocumentId> fromBytes(ByteView bytes);
  // Parses the text form; fails with Malformed on a wrong prefix, alphabet, length or checksum.
  static Result<DocumentId> parse(std::string_view text);

  const std::array<std::uint8_t, kSize>& bytes() const noexcept { return bytes_; }
  std::string toString() const;
  // The first 8 hex digits of BLAKE2b(bytes): enough to tell documents apart in a log, useless
  // for finding one.
  std::string logName() const;

  friend bool operator==(const DocumentId&, const DocumentId&) = default;
  friend std::strong_ordering operator<=>(const DocumentId&, const DocumentId&) = default;

 private:
  std::array<std::uint8_t, kSize> bytes_{};
};

// Who a peer is, as its auth provider proved it: the hex Ed25519 public key for the crypto
// providers, a claimed name for `open`. 1 to 128 printable ASCII bytes, so it is safe to log.
class PORTCULLIS_EXPORT PeerId {
 public:
  static constexpr std::size_t kMaxSize = 128;

  // Fails with Malformed on an empty, over-long or non-printable value.
  static Result<PeerId> parse(std::string_view text);
  // A random 16-byte name in hex, prefixed "peer-", for repos that are not given one.
  static PeerId random();

  const std::string& str() const noexcept { return value_; }

  friend bool operator==(const PeerId&, const PeerId&) = default;
  friend std::strong_ordering operator<=>(const PeerId& a, const PeerId& b) {
    return a.value_ <=> b.value_;
  }

 private:
  explicit PeerId(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

}  // namespace portcullis

template <>
struct std::hash<portcullis::DocumentId> {
  std::size_t operator()(const portcullis::DocumentId& id) const noexcept {
    // Random bytes: the first word is as good as any.
    std::size_t out = 0;
    std::memcpy(&out, id.bytes().data(), sizeof out);
    return out;
  }
};

template <>
struct std::hash<portcullis::PeerId> {
  std::size_t operator()(const portcullis::PeerId& id) const noexcept {
    return std::hash<std::string>()(id.str());
  }
};
