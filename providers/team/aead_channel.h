// providers/team/aead_channel.h — the team provider's transport after the handshake (team spec
// §6.1): every frame is u32 big-endian length ‖ crypto_aead_xchacha20poly1305_ietf ciphertext
// under the sender's transport key, nonce = u64le(counter) ‖ 16 zero bytes, ad empty, one counter
// per key from 0 (the handshake's Status frame is counter 0).
//
// Layer: inside the team provider, between handshake.h (which derives the keys) and the Repo
// (which sees only the MessageChannel). Pure helpers may run on any thread; the channel runs on
// its stream's executor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "portcullis/auth_provider.h"
#include "portcullis/network_adapter.h"
#include "portcullis/result.h"
#include "portcullis/secret_handshake.h"
#include "portcullis/types.h"

namespace portcullis::team {

inline constexpr std::size_t kAeadKeyBytes = 32;
inline constexpr std::size_t kAeadNonceBytes = 24;
inline constexpr std::size_t kAeadFrameTagBytes = 16;
// A counter that reached this value is spent: the direction refuses to seal or open again.
inline constexpr std::uint64_t kAeadLastCounter = UINT64_MAX;

// One direction's key and next counter. Move-only; the key is wiped.
class AeadDirection {
 public:
  AeadDirection(SecretKey<kAeadKeyBytes> key, std::uint64_t counter)
      : key_(std::move(key)), counter_(counter) {}

  // The ciphertext of `plain` under the next counter (then spent). Overloaded once the counter
  // reaches kAeadLastCounter; the key is never used with a nonce twice.
  [[nodiscard]] Result<Bytes> seal(ByteView plain);
  // Opens `ciphertext` under the next counter, which is spent only when it authenticates.
  // Malformed when it does not (tampered, replayed, reordered, another key), Overloaded once the
  // counter is spent.
  [[nodiscard]] Result<Bytes> open(ByteView ciphertext);

  std::uint64_t counter() const noexcept { return counter_; }

 private:
  SecretKey<kAeadKeyBytes> key_;
  std::uint64_t counter_;
};

// The channel's two directions: `send` under the own transport key (tk_self), `receive` under the
// peer's (tk_peer), each with the next counter (1 after the handshake's Status frames).
struct AeadChannelKeys {
  AeadDirection send;
  AeadDirection receive;
};

// A MessageChannel over `stream` (owned; closed with the channel). send() fails with Overloaded
// for a frame over `maxFrameBytes` (plaintext); receive() refuses an announced ciphertext length
// over maxFrameBytes + 16 with Overloaded before allocating, grows its buffer with the bytes that
// arrive (128 KiB first, or the frame if smaller, doubling), and answers Malformed for a frame
// that does not authenticate; the caller then closes. Any receive failure is final.
[[nodiscard]] std::unique_ptr<MessageChannel> makeAeadChannel(
    std::unique_ptr<Stream> stream, AeadChannelKeys keys,
    std::size_t maxFrameBytes = kDefaultMaxFrameBytes);

}  // namespace portcullis::team
