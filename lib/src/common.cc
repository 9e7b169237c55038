// Small value types of the public headers: errors, hex, actor IDs, change hashes, object IDs.
#include <sodium.h>

#include "portcullis/document.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis {

std::string_view errcName(Errc code) noexcept {
  switch (code) {
    case Errc::Malformed: return "malformed";
    case Errc::NotFound: return "not found";
    case Errc::Io: return "i/o error";
    case Errc::Disconnected: return "disconnected";
    case Errc::Overloaded: return "overloaded";
    case Errc::Unsupported: return "unsupported";
    case Errc::Config: return "configuration error";
    case Errc::Denied: return "denied";
    case Errc::Conflict: return "conflict";
  }
  return "unknown error";
}

std::string toHex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

Result<ActorId> ActorId::fromBytes(ByteView bytes) {
  if (bytes.empty() || bytes.size() > kMaxSize) {
    return Error(Errc::Malformed, "an actor ID has 1 to 32 bytes, not " +
                                      std::to_string(bytes.size()));
  }
  ActorId actor;
  std::memcpy(actor.bytes_.data(), bytes.data(), bytes.size());
  actor.size_ = static_cast<std::uint8_t>(bytes.size());
  return actor;
}

ActorId ActorId::random() {
  ActorId actor;
  randombytes_buf(actor.bytes_.data(), kDefaultSize);
  actor.size_ = kDefaultSize;
  return actor;
}

Result<ChangeHash> ChangeHash::fromBytes(ByteView bytes) {
  if (bytes.size() != kSize) {
    return Error(Errc::Malformed, "a change hash has 32 bytes, not " +
                                      std::to_string(bytes.size()));
  }
  ChangeHash hash;
  std::copy(bytes.begin(), bytes.end(), hash.bytes_.begin());
  return hash;
}

ChangeHash ChangeHash::of(ByteView bytes) {
  ChangeHash hash;
  crypto_generichash(hash.bytes_.data(), kSize, bytes.data(), bytes.size(), nullptr, 0);
  return hash;
}

std::string ObjId::toString() const {
  if (isRoot()) return "root";
  return std::to_string(counter_) + "@" + toHex(actor_);
}

}  // namespace portcullis
