// DocumentId and PeerId.
#include "portcullis/ids.h"

#include <sodium.h>

#include <algorithm>
#include <array>

namespace portcullis {
namespace {

constexpr std::string_view kDocPrefix = "portcullis:";
constexpr char kBase58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
constexpr std::size_t kChecksumSize = 4;
constexpr std::size_t kPayloadSize = DocumentId::kSize + kChecksumSize;

using Payload = std::array<std::uint8_t, kPayloadSize>;

std::array<std::uint8_t, kChecksumSize> checksum(ByteView bytes) {
  std::array<std::uint8_t, crypto_hash_sha256_BYTES> once{}, twice{};
  crypto_hash_sha256(once.data(), bytes.data(), bytes.size());
  crypto_hash_sha256(twice.data(), once.data(), once.size());
  std::array<std::uint8_t, kChecksumSize> out{};
  std::copy_n(twice.begin(), kChecksumSize, out.begin());
  return out;
}

// Base58 of a fixed-size big-endian number, leading zero bytes as '1's (Bitcoin's rule).
std::string base58(const Payload& in) {
  std::string digits;  // least significant first
  for (std::uint8_t byte : in) {
    unsigned carry = byte;
    for (char& d : digits) {
      carry += static_cast<unsigned>(d) << 8;
      d = static_cast<char>(carry % 58);
      carry /= 58;
    }
    while (carry > 0) {
      digits.push_back(static_cast<char>(carry % 58));
      carry /= 58;
    }
  }
  std::string out(static_cast<std::size_t>(std::find_if(in.begin(), in.end(), [](auto b) {
                                             return b != 0;
                                           }) - in.begin()),
                  '1');
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) out.push_back(kBase58[int(*it)]);
  return out;
}

Result<Payload> unbase58(std::string_view text) {
  // 20 bytes never need more than 28 digits; longer input is refused before any work.
  if (text.empty() || text.size() > 28) return Error(Errc::Malformed, "document ID has a wrong length");
  std::vector<std::uint8_t> bytes;  // least significant first
  for (char c : text) {
    const char* at = std::find(std::begin(kBase58), std::end(kBase58) - 1, c);
    if (at == std::end(kBase58) - 1) return Error(Errc::Malformed, "document ID is not base58");
    unsigned carry = static_cast<unsigned>(at - kBase58);
    for (std::uint8_t& b : bytes) {
      carry += static_cast<unsigned>(b) * 58;
      b = static_cast<std::uint8_t>(carry & 0xff);
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push_back(static_cast<std::uint8_t>(carry & 0xff));
      carry >>= 8;
    }
  }
  const auto ones = static_cast<std::size_t>(
      std::find_if(text.begin(), text.end(), [](char c) { return c != '1'; }) - text.begin());
  if (ones + bytes.size() != kPayloadSize) {
    return Error(Errc::Malformed, "document ID has a wrong length");
  }
  Payload out{};
  std::copy(bytes.rbegin(), bytes.rend(), out.begin() + static_cast<std::ptrdiff_t>(ones));
  return out;
}

}  // namespace

DocumentId DocumentId::random() {
  DocumentId id;
  randombytes_buf(id.bytes_.data(), id.bytes_.size());
  return id;
}

Result<DocumentId> DocumentId::fromBytes(ByteView bytes) {
  if (bytes.size() != kSize) {
    return Error(Errc::Malformed, "a document ID has 16 bytes, not " + std::to_string(bytes.size()));
  }
  DocumentId id;
  std::copy(bytes.begin(), bytes.end(), id.bytes_.begin());
  return id;
}

Result<DocumentId> DocumentId::parse(std::string_view text) {
  if (!text.starts_with(kDocPrefix)) {
    return Error(Errc::Malformed, "a document ID starts with \"portcullis:\"");
  }
  auto payload = unbase58(text.substr(kDocPrefix.size()));
  if (!payload) return std::move(payload).error();
  ByteView id(payload->data(), kSize);
  auto sum = checksum(id);
  if (sodium_memcmp(sum.data(), payload->data() + kSize, kChecksumSize) != 0) {
    return Error(Errc::Malformed, "document ID checksum does not match");
  }
  return fromBytes(id);
}

std::string DocumentId::toString() const {
  Payload payload{};
  std::copy(bytes_.begin(), bytes_.end(), payload.begin());
  auto sum = checksum(bytes_);
  std::copy(sum.begin(), sum.end(), payload.begin() + kSize);
  return std::string(kDocPrefix) + base58(payload);
}

std::string DocumentId::logName() const {
  std::array<std::uint8_t, 4> h{};
  crypto_generichash(h.data(), h.size(), bytes_.data(), bytes_.size(), nullptr, 0);
  return "doc#" + toHex(h);
}

Result<PeerId> PeerId::parse(std::string_view text) {
  if (text.empty() || text.size() > kMaxSize) {
    return Error(Errc::Malformed, "a peer ID has 1 to 128 characters");
  }
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7f; })) {
    return Error(Errc::Malformed, "a peer ID is printable ASCII without spaces");
  }
  return PeerId(std::string(text));
}

PeerId PeerId::random() {
  std::array<std::uint8_t, 16> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  return PeerId("peer-" + toHex(bytes));
}

}  // namespace portcullis
