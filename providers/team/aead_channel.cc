// The team transport: XChaCha20-Poly1305 frames with one counter per key (team spec §6.1).
#include "aead_channel.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>

#include "portcullis/frame_length.h"

namespace portcullis::team {
namespace {

static_assert(kAeadKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kAeadNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kAeadFrameTagBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);

std::array<std::uint8_t, kAeadNonceBytes> nonceOf(std::uint64_t counter) {
  std::array<std::uint8_t, kAeadNonceBytes> n{};
  for (std::size_t i = 0; i < 8; ++i) n[i] = static_cast<std::uint8_t>(counter >> (8 * i));
  return n;
}

class AeadChannel final : public MessageChannel {
 public:
  AeadChannel(std::unique_ptr<Stream> stream, AeadChannelKeys keys, std::size_t maxFrameBytes)
      : stream_(std::move(stream)),
        send_(std::move(keys.send)),
        receive_(std::move(keys.receive)),
        maxFrameBytes_(maxFrameBytes) {}
  ~AeadChannel() override { stream_->close(); }

  asio::awaitable<Result<void>> send(ByteView frame) override {
    if (closed_) co_return Error(Errc::Disconnected, "the channel is closed");
    if (frame.size() > maxFrameBytes_) {
      co_return Error(Errc::Overloaded,
                      "frame of " + std::to_string(frame.size()) + " bytes is over the limit");
    }
    auto sealed = send_.seal(frame);
    if (!sealed) co_return std::move(sealed).error();
    const auto length = encodeFrameLength(static_cast<std::uint32_t>(sealed->size()));
    sealed->insert(sealed->begin(), length.begin(), length.end());
    co_return co_await stream_->write(*sealed);
  }

  asio::awaitable<Result<Bytes>> receive() override {
    if (failed_) co_return *failed_;
    std::array<std::uint8_t, kFrameLengthBytes> length{};
    auto got = co_await readExactly(*stream_, length);
    if (!got) co_return fail(got.error());
    const std::size_t n = decodeFrameLength(length);
    if (n < kAeadFrameTagBytes) {
      co_return fail(Error(Errc::Malformed, "a frame shorter than its tag"));
    }
    if (n - kAeadFrameTagBytes > maxFrameBytes_) {
      co_return fail(Error(Errc::Overloaded, "peer announced a frame of " + std::to_string(n) +
                                                 " bytes, over the limit"));
    }
    Bytes ciphertext;
    std::size_t filled = 0;
    while (filled < n) {
      growFrame(ciphertext, filled + 1, n);  // room for at least one more byte
      auto read = co_await stream_->readSome(std::span(ciphertext).subspan(filled));
      if (!read) co_return fail(std::move(read).error());
      filled += *read;
    }
    auto opened = receive_.open(ciphertext);
    if (!opened) co_return fail(std::move(opened).error());
    co_return std::move(*opened);
  }

  void close() override {
    closed_ = true;
    stream_->close();
  }

 private:
  Error fail(Error error) {
    failed_ = error;
    return error;
  }

  std::unique_ptr<Stream> stream_;
  AeadDirection send_;
  AeadDirection receive_;
  std::size_t maxFrameBytes_;
  bool closed_ = false;
  std::optional<Error> failed_;
};

}  // namespace

Result<Bytes> AeadDirection::seal(ByteView plain) {
  if (counter_ == kAeadLastCounter) {
    return Error(Errc::Overloaded, "the send counter is spent; the session must end");
  }
  const auto nonce = nonceOf(counter_);
  Bytes out(plain.size() + kAeadFrameTagBytes);
  unsigned long long outLen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &outLen, plain.data(), plain.size(),
                                             nullptr, 0, nullptr, nonce.data(), key_.data());
  ++counter_;
  return out;
}

Result<Bytes> AeadDirection::open(ByteView ciphertext) {
  if (counter_ == kAeadLastCounter) {
    return Error(Errc::Overloaded, "the receive counter is spent; the session must end");
  }
  if (ciphertext.size() < kAeadFrameTagBytes) {
    return Error(Errc::Malformed, "a frame shorter than its tag");
  }
  const auto nonce = nonceOf(counter_);
  Bytes out(ciphertext.size() - kAeadFrameTagBytes);
  unsigned long long outLen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &outLen, nullptr, ciphertext.data(),
                                                 ciphertext.size(), nullptr, 0, nonce.data(),
                                                 key_.data()) != 0) {
    return Error(Errc::Malformed, "a frame does not authenticate");
  }
  ++counter_;
  return out;
}

std::unique_ptr<MessageChannel> makeAeadChannel(std::unique_ptr<Stream> stream,
                                                AeadChannelKeys keys,
                                                std::size_t maxFrameBytes) {
  // The length prefix is 32 bits and counts the tag.
  maxFrameBytes = std::min<std::size_t>(maxFrameBytes, UINT32_MAX - kAeadFrameTagBytes);
  return std::make_unique<AeadChannel>(std::move(stream), std::move(keys), maxFrameBytes);
}

}  // namespace portcullis::team
