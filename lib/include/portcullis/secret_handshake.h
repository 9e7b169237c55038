// portcullis/secret_handshake.h — Secure Scuttlebutt's secret handshake ("shs1") and box-stream,
// wire-compatible with the JS reference (secret-handshake 1.1.21, pull-box-stream 1.0.13;
// Scuttlebutt's shs1 specification is the wire spec), plus the device identity both sides prove.
//
// Layer: a building block for auth providers (`shared-key`, `document-id`), which may include only
// portcullis/*.h. The pieces, from the bottom:
//   - key types: `SecretKey<N>` (move-only, wiped), `PublicKey`, `NetworkKey`, `DeviceKey`;
//   - `ShsClient` / `ShsServer`: pure state machines for the four handshake messages, no I/O;
//   - `shsClient` / `shsServer`: the same over a `Stream`, for a provider's `authenticate`;
//   - `BoxStreamEncoder` / `BoxStreamDecoder`: pure box-stream packets (spec §4);
//   - `makeBoxStreamChannel`: the `MessageChannel` that carries portcullis frames in box-stream.
//
// Everything that reads peer bytes returns a `Result`: Errc::Denied when the peer does not prove
// what it must (another network key, a wrong server key, a bad signature, refused by the caller),
// Errc::Malformed when its bytes cannot be a valid message (wrong size, a low-order point). Nothing
// throws on peer input; calling a state machine out of order is a bug and throws.
//
// The pure types may be used on any thread, one object per thread at a time. The coroutines and
// the channel run on the executor of their stream.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "portcullis/asio.h"
#include "portcullis/auth_provider.h"
#include "portcullis/export.h"
#include "portcullis/network_adapter.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis {

// Overwrites `size` bytes at `data` with zeros in a way the compiler may not elide
// (sodium_memzero).
PORTCULLIS_EXPORT void secureWipe(void* data, std::size_t size) noexcept;

// Fixed-size key material. Move-only; a moved-from key and every destroyed key are wiped. It has no
// formatter and no comparison: compare secrets only through a crypto_*_verify call.
template <std::size_t N>
class SecretKey {
 public:
  static constexpr std::size_t kSize = N;

  SecretKey() = default;  // all zero
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;
  SecretKey(SecretKey&& other) noexcept : bytes_(other.bytes_) { other.wipe(); }
  SecretKey& operator=(SecretKey&& other) noexcept {
    if (this != &other) {
      bytes_ = other.bytes_;
      other.wipe();
    }
    return *this;
  }
  ~SecretKey() { wipe(); }

  std::uint8_t* data() noexcept { return bytes_.data(); }
  const std::uint8_t* data() const noexcept { return bytes_.data(); }
  static constexpr std::size_t size() noexcept { return N; }
  std::span<std::uint8_t, N> span() noexcept { return bytes_; }
  std::span<const std::uint8_t, N> span() const noexcept { return bytes_; }

 private:
  void wipe() noexcept { secureWipe(bytes_.data(), N); }
  std::array<std::uint8_t, N> bytes_{};
};

// An Ed25519 public key (a device's identity). Always a valid point of the prime-order subgroup
// that converts to Curve25519, so the handshake can use it without further checks. Not secret.
class PORTCULLIS_EXPORT PublicKey {
 public:
  static constexpr std::size_t kSize = 32;

  // Fails with Malformed unless `bytes` is 32 bytes and a usable Ed25519 point (not of small
  // order; crypto_sign_ed25519_pk_to_curve25519 accepts it).
  static Result<PublicKey> fromBytes(ByteView bytes);
  // Parses 64 hex digits, or Scuttlebutt's base64 form with or without the "@" prefix and the
  // ".ed25519" suffix ("@<base64>.ed25519"). Malformed on anything else.
  static Result<PublicKey> parse(std::string_view text);

  const std::array<std::uint8_t, kSize>& bytes() const noexcept { return bytes_; }
  // The key's X25519 (Curve25519) form, for the handshake's Diffie-Hellman steps. Computed once,
  // when the key was checked: the conversion costs as much as a scalar multiplication.
  const std::array<std::uint8_t, kSize>& curve25519() const noexcept { return curve_; }
  std::string toHex() const { return portcullis::toHex(bytes_); }
  // "@<base64>.ed25519", Scuttlebutt's feed ID.
  std::string toSsbId() const;

  friend bool operator==(const PublicKey&, const PublicKey&) = default;
  friend std::strong_ordering operator<=>(const PublicKey&, const PublicKey&) = default;

 private:
  PublicKey() = default;
  std::array<std::uint8_t, kSize> bytes_{};
  std::array<std::uint8_t, kSize> curve_{};  // a function of bytes_, so comparisons agree
};

// The 32-byte network key ("app key", SSB's caps.shs): only peers that hold the same one can
// complete a handshake. For the `shared-key` provider it is the shared secret.
class PORTCULLIS_EXPORT NetworkKey {
 public:
  static constexpr std::size_t kSize = 32;

  // Fails with Malformed unless `bytes` has 32 bytes.
  static Result<NetworkKey> fromBytes(ByteView bytes);
  // Parses 64 hex digits or standard base64 (44 characters with padding). Malformed otherwise;
  // the message never contains the text.
  static Result<NetworkKey> parse(std::string_view text);

  const SecretKey<kSize>& key() const noexcept { return key_; }

 private:
  NetworkKey() = default;
  SecretKey<kSize> key_;
};

// A device's long-term Ed25519 key pair. Move-only; the secret half is wiped on destruction.
class PORTCULLIS_EXPORT DeviceKey {
 public:
  static constexpr std::size_t kSeedSize = 32;
  static constexpr std::size_t kSecretKeySize = 64;  // libsodium's form: seed ‖ public key

  // A fresh key pair from libsodium's random generator.
  static DeviceKey generate();
  // The key pair of a 32-byte seed (crypto_sign_seed_keypair); Malformed on another size.
  static Result<DeviceKey> fromSeed(ByteView seed);
  // Reads Scuttlebutt's secret file: a JSON object {"curve":"ed25519","public":"<b64>.ed25519",
  // "private":"<b64 of the 64-byte secret key>.ed25519","id":"@<b64>.ed25519"}, where lines that
  // start with '#' (ssb-keys' warning comment) are ignored. Fails with Errc::Io when the file
  // cannot be read, and Errc::Config when it is readable by group or others, larger than 64 KiB,
  // not such an object, or when its halves do not belong together. Messages name the file, never
  // the key.
  static Result<DeviceKey> load(const std::string& path);

  // Writes the secret file at `path`, created with mode 0600 (O_CREAT | O_EXCL), fsynced, and so
  // is its directory. Refuses (Errc::Io) to replace an existing file.
  Result<void> save(const std::string& path) const;
  // load() when `path` exists, else generate() and save() there, with a log line naming the file
  // (an install's key made on first use). Errors as load() and save() give them.
  static Result<DeviceKey> loadOrCreate(const std::string& path);

  const PublicKey& publicKey() const noexcept { return publicKey_; }
  std::string publicKeyHex() const { return publicKey_.toHex(); }
  // The 64-byte secret key, for signing with libsodium. Never log or copy it.
  const SecretKey<kSecretKeySize>& secretKey() const noexcept { return secretKey_; }

 private:
  explicit DeviceKey(PublicKey publicKey) : publicKey_(publicKey) {}
  PublicKey publicKey_;
  SecretKey<kSecretKeySize> secretKey_;
};

// A Curve25519 key pair used for one handshake only.
class PORTCULLIS_EXPORT EphemeralKey {
 public:
  static constexpr std::size_t kSize = 32;

  // crypto_box_keypair.
  static EphemeralKey generate();
  // The key pair of a given secret scalar (crypto_scalarmult_base), for known-answer tests.
  // Malformed unless `secret` has 32 bytes.
  static Result<EphemeralKey> fromSecret(ByteView secret);

  const std::array<std::uint8_t, kSize>& publicKey() const noexcept { return publicKey_; }
  const SecretKey<kSize>& secretKey() const noexcept { return secretKey_; }

 private:
  EphemeralKey() = default;
  std::array<std::uint8_t, kSize> publicKey_{};
  SecretKey<kSize> secretKey_;
};

inline constexpr std::size_t kShsHelloBytes = 64;         // messages 1 and 2
inline constexpr std::size_t kShsAuthenticateBytes = 112;  // message 3
inline constexpr std::size_t kShsAcceptBytes = 80;         // message 4
inline constexpr std::size_t kBoxStreamNonceBytes = 24;

using ShsNonce = std::array<std::uint8_t, kBoxStreamNonceBytes>;

// What a completed handshake yields: one box-stream key and starting nonce per direction, and the
// long-term key the other side proved it holds.
struct ShsSession {
  SecretKey<32> encryptKey;
  ShsNonce encryptNonce;
  SecretKey<32> decryptKey;
  ShsNonce decryptNonce;
  PublicKey remotePublicKey;
};

// The client's side of the handshake (spec §2, §3), without I/O. Call, in order: hello(),
// verifyServerHello(), authenticate(), [precompute()], verifyAccept(); the first failure ends the
// handshake (hang up without writing). `networkKey` and `identity` must outlive the object. Move-only; every
// intermediate secret is wiped on destruction.
class PORTCULLIS_EXPORT ShsClient {
 public:
  // With a fresh ephemeral key.
  ShsClient(const NetworkKey& networkKey, const DeviceKey& identity, const PublicKey& server);
  // With the given ephemeral key (known-answer tests).
  ShsClient(const NetworkKey& networkKey, const DeviceKey& identity, const PublicKey& server,
            EphemeralKey ephemeral);
  ShsClient(ShsClient&&) noexcept;
  ShsClient& operator=(ShsClient&&) noexcept;
  ~ShsClient();

  // Message 1: hmac(N, a.pk) ‖ a.pk.
  std::array<std::uint8_t, kShsHelloBytes> hello() const;
  // Checks message 2. Denied: another network key; Malformed: wrong size or a low-order point.
  [[nodiscard]] Result<void> verifyServerHello(ByteView msg2);
  // Message 3, after verifyServerHello succeeded.
  std::array<std::uint8_t, kShsAuthenticateBytes> authenticate();
  // Optional, after authenticate(): the key agreement only message 4 needs, so that it runs while
  // message 3 is in flight and the server checks it. verifyAccept() does it otherwise.
  void precompute();
  // Checks message 4 and derives the session. Denied when the server did not prove it holds the
  // server key (or refused us: the server then hangs up instead); Malformed on a wrong size.
  [[nodiscard]] Result<ShsSession> verifyAccept(ByteView msg4);

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// The server's side of the handshake, without I/O. Call, in order: verifyClientHello(), hello(),
// [precompute()], verifyAuthenticate(), then (if the returned key is authorized) accept(). `networkKey` and
// `identity` must outlive the object. Move-only; secrets are wiped on destruction.
class PORTCULLIS_EXPORT ShsServer {
 public:
  ShsServer(const NetworkKey& networkKey, const DeviceKey& identity);
  ShsServer(const NetworkKey& networkKey, const DeviceKey& identity, EphemeralKey ephemeral);
  ShsServer(ShsServer&&) noexcept;
  ShsServer& operator=(ShsServer&&) noexcept;
  ~ShsServer();

  // Checks message 1's size and network key tag: Denied for another network key, Malformed for a
  // wrong size. Cheap, so message 2 can go out at once.
  [[nodiscard]] Result<void> verifyClientHello(ByteView msg1);
  // Message 2, after verifyClientHello succeeded.
  std::array<std::uint8_t, kShsHelloBytes> hello() const;
  // Optional, after hello(): the key agreement message 3 needs, so that it runs while message 2 is
  // in flight and the client works. Malformed when the client's ephemeral key is a low-order
  // point. verifyAuthenticate() does it otherwise (and fails the same way).
  [[nodiscard]] Result<void> precompute();
  // Checks message 3 and returns the client's long-term key, for the caller to authorize. Denied
  // when it does not open (wrong server key, another network key, a replay from another session)
  // or the signature does not verify; Malformed on a wrong size or an unusable client key.
  [[nodiscard]] Result<PublicKey> verifyAuthenticate(ByteView msg3);

  struct Accept {
    std::array<std::uint8_t, kShsAcceptBytes> message;  // message 4
    ShsSession session;
  };
  // Message 4 and the session, after verifyAuthenticate succeeded.
  Accept accept();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// Both keys of a handshake over a stream. References: must outlive the awaitable.
struct ShsConfig {
  const NetworkKey& networkKey;
  const DeviceKey& identity;
};

// Runs the client's handshake on `stream` (which must outlive the awaitable) with a server that
// must prove it holds `server`'s key. Reads exactly 64 then 80 bytes and nothing past them. Errors
// as for ShsClient, plus Errc::Disconnected when the stream ends or fails (a server that refuses
// us just hangs up, so a refusal arrives as Disconnected after message 3). Sets no timer: the
// caller bounds the time by closing the stream.
PORTCULLIS_EXPORT asio::awaitable<Result<ShsSession>> shsClient(Stream& stream,
                                                                const ShsConfig& config,
                                                                const PublicKey& server);

// Runs the server's handshake on `stream`. `authorize` is called once, with the client's proven
// long-term key, before message 4; false gives Errc::Denied and nothing more is written. Errors as
// for ShsServer, plus Errc::Disconnected. Sets no timer (see shsClient).
PORTCULLIS_EXPORT asio::awaitable<Result<ShsSession>> shsServer(
    Stream& stream, const ShsConfig& config, std::function<bool(const PublicKey&)> authorize);

// The acceptor's key in a dial address of Scuttlebutt's multiserver form,
// "net:HOST:PORT~shs:KEY" (KEY base64 or hex). Errc::Config when there is none or it is no key.
PORTCULLIS_EXPORT Result<PublicKey> shsServerKeyOf(std::string_view dialedAddress);

// Either side's handshake on a stream from a NetworkAdapter, for a provider's authenticate(): a
// dialer pins the key of `stream.dialedAddress()` and goes on only if `authorize` accepts that
// key; an acceptor asks `authorize` about the client's proven key before message 4. A refusal is
// Errc::Denied; other errors as for shsClient and shsServer.
PORTCULLIS_EXPORT asio::awaitable<Result<ShsSession>> shsHandshake(
    Stream& stream, Side side, const ShsConfig& config,
    std::function<bool(const PublicKey&)> authorize);

inline constexpr std::size_t kBoxStreamHeaderBytes = 34;
inline constexpr std::size_t kBoxStreamMaxBodyBytes = 4096;

// One direction's sender (spec §4): each message becomes a 34-byte header box and the body's
// ciphertext. Move-only; the key is wiped.
class PORTCULLIS_EXPORT BoxStreamEncoder {
 public:
  BoxStreamEncoder(SecretKey<32> key, const ShsNonce& nonce);

  // The wire size of a message of `bodyBytes` bytes.
  static constexpr std::size_t wireSize(std::size_t bodyBytes) {
    return kBoxStreamHeaderBytes + bodyBytes;
  }
  // Writes header ‖ ciphertext of `message` (1 to 4096 bytes, else a bug: throws) to the first
  // wireSize(message.size()) bytes of `out`, which must be that large. `out` may not overlap
  // `message`.
  void encode(ByteView message, std::span<std::uint8_t> out);
  // Writes the 34-byte goodbye that ends this direction. No message may follow.
  void goodbye(std::span<std::uint8_t, kBoxStreamHeaderBytes> out);

 private:
  SecretKey<32> key_;
  ShsNonce nonce_;
  bool ended_ = false;
};

// One direction's receiver. Call decodeHeader() on each 34-byte header; when it announces a body,
// read that many bytes and call decodeBody() before the next header. After any error or the
// goodbye the decoder is finished: further calls are bugs (they throw).
class PORTCULLIS_EXPORT BoxStreamDecoder {
 public:
  BoxStreamDecoder(SecretKey<32> key, const ShsNonce& nonce);

  // The announced body length (1 to 4096), or std::nullopt for the goodbye. Malformed when the
  // header does not open, or announces 0 or more than 4096 bytes (no honest sender does).
  [[nodiscard]] Result<std::optional<std::size_t>> decodeHeader(
      std::span<const std::uint8_t, kBoxStreamHeaderBytes> header);
  // Opens the body announced by the last header: `ciphertext` and `out` have exactly that size and
  // may be the same memory. Malformed when it does not open.
  [[nodiscard]] Result<void> decodeBody(ByteView ciphertext, std::span<std::uint8_t> out);

  bool finished() const noexcept { return finished_; }

 private:
  SecretKey<32> key_;
  ShsNonce nonce_;
  std::array<std::uint8_t, 16> bodyTag_{};
  std::size_t bodyBytes_ = 0;  // announced by the last header, not yet opened
  bool finished_ = false;
};

// The encrypted sibling of makeFramedChannel: a MessageChannel over box-stream with the session's
// keys. A frame of 1 to 4096 bytes, other than 4, travels as one box-stream message. Any other
// frame (empty, of 4 bytes, or larger than a message) travels as a 4-byte message holding its u32
// big-endian length, then the frame cut into messages of 4096 bytes and a last shorter one. So a
// message of 4 bytes always announces a length, and no frame that fits a message pays for two.
// receive() fails with:
//   - Errc::Overloaded when a peer announces a frame over `maxFrameBytes` (checked before anything
//     is allocated for it; under the limit, the frame's buffer grows as its messages arrive);
//   - Errc::Malformed when a header or body does not open, a length message announces a frame that
//     fits one message, a message runs past the end of the announced frame, or the goodbye cuts a
//     frame in half;
//   - Errc::Disconnected after the peer's goodbye, and also when the stream ends without one,
//     anywhere: a frame cut short is never delivered, so a truncation can only look like a hang-up
//     (which any man in the middle can cause anyway).
// close() writes nothing (no goodbye: a Stream has no write that cannot wait, and close() must end
// the stream at once even when the peer does not read) and closes the stream. The channel owns
// `stream`. At most one send and one receive in flight (MessageChannel's contract).
PORTCULLIS_EXPORT std::unique_ptr<MessageChannel> makeBoxStreamChannel(
    std::unique_ptr<Stream> stream, ShsSession session,
    std::size_t maxFrameBytes = kDefaultMaxFrameBytes);

}  // namespace portcullis
