// The secret handshake (shs1), its key types and box-stream; Scuttlebutt's shs1 specification is
// the wire spec, and every formula below names the section it comes from.
#include "portcullis/secret_handshake.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <nlohmann/json.hpp>

#include "detail/assert.h"
#include "portcullis/logging.h"
#include "portcullis/frame_length.h"

namespace portcullis {

void secureWipe(void* data, std::size_t size) noexcept { sodium_memzero(data, size); }

namespace {

using Key32 = SecretKey<32>;
constexpr std::size_t kTagBytes = crypto_auth_BYTES;           // 32: the hello HMAC
constexpr std::size_t kSignatureBytes = crypto_sign_BYTES;     // 64
constexpr std::size_t kMacBytes = crypto_secretbox_MACBYTES;   // 16
constexpr std::size_t kHeaderPlainBytes = 2 + kMacBytes;       // u16 length ‖ body tag
constexpr std::string_view kEd25519Suffix = ".ed25519";
constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

static_assert(kShsHelloBytes == kTagBytes + EphemeralKey::kSize);
static_assert(kShsAuthenticateBytes == kMacBytes + kSignatureBytes + PublicKey::kSize);
static_assert(kShsAcceptBytes == kMacBytes + kSignatureBytes);
static_assert(kBoxStreamHeaderBytes == kMacBytes + kHeaderPlainBytes);
static_assert(kBoxStreamNonceBytes == crypto_secretbox_NONCEBYTES);

// The handshake's boxes each use their key once, so the nonce is all zero (spec §2).
constexpr std::uint8_t kZeroNonce[crypto_secretbox_NONCEBYTES] = {};

// sha256 of the concatenation of `parts`; the hash state, which saw secrets, is wiped.
Key32 sha256(std::initializer_list<ByteView> parts) {
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  for (ByteView part : parts) crypto_hash_sha256_update(&state, part.data(), part.size());
  Key32 out;
  crypto_hash_sha256_final(&state, out.data());
  sodium_memzero(&state, sizeof state);
  return out;
}

// X25519; false for a low-order point (libsodium refuses an all-zero result).
[[nodiscard]] bool dh(Key32& out, const Key32& secret, const std::uint8_t* publicKey) {
  return crypto_scalarmult(out.data(), secret.data(), publicKey) == 0;
}

// The Curve25519 form of a long-term secret key.
Key32 curveSecret(const DeviceKey& key) {
  Key32 out;
  // Cannot fail: it hashes the seed and clamps.
  crypto_sign_ed25519_sk_to_curve25519(out.data(), key.secretKey().data());
  return out;
}

std::array<std::uint8_t, kTagBytes> helloTag(const NetworkKey& network,
                                             const std::array<std::uint8_t, 32>& ephemeral) {
  std::array<std::uint8_t, kTagBytes> tag{};
  crypto_auth(tag.data(), ephemeral.data(), ephemeral.size(), network.key().data());
  return tag;
}

std::array<std::uint8_t, kShsHelloBytes> helloMessage(const std::array<std::uint8_t, kTagBytes>& tag,
                                                      const std::array<std::uint8_t, 32>& ephemeral) {
  std::array<std::uint8_t, kShsHelloBytes> msg{};
  std::copy(tag.begin(), tag.end(), msg.begin());
  std::copy(ephemeral.begin(), ephemeral.end(), msg.begin() + kTagBytes);
  return msg;
}

// Checks a hello (message 1 or 2) and returns the sender's ephemeral public key.
Result<std::array<std::uint8_t, 32>> verifyHello(const NetworkKey& network, ByteView msg,
                                                 std::string_view which) {
  if (msg.size() != kShsHelloBytes) {
    return Error(Errc::Malformed, std::string(which) + " has " + std::to_string(msg.size()) +
                                      " bytes, not 64");
  }
  if (crypto_auth_verify(msg.data(), msg.data() + kTagBytes, EphemeralKey::kSize,
                         network.key().data()) != 0) {
    return Error(Errc::Denied, std::string(which) + " is not tagged with our network key");
  }
  std::array<std::uint8_t, 32> ephemeral{};
  std::copy(msg.begin() + kTagBytes, msg.end(), ephemeral.begin());
  return ephemeral;
}

// Session keys (spec §3): S = sha256(message-4 box key); the key towards a side is
// sha256(S ‖ that side's long-term key), its nonce the first 24 bytes of that side's hello tag.
ShsSession deriveSession(const Key32& acceptKey, const PublicKey& self, const PublicKey& remote,
                         const std::array<std::uint8_t, kTagBytes>& ownHelloTag,
                         const std::array<std::uint8_t, kTagBytes>& remoteHelloTag) {
  const Key32 s = sha256({acceptKey.span()});
  ShsNonce encryptNonce{};
  ShsNonce decryptNonce{};
  std::copy_n(remoteHelloTag.begin(), encryptNonce.size(), encryptNonce.begin());
  std::copy_n(ownHelloTag.begin(), decryptNonce.size(), decryptNonce.begin());
  return ShsSession{sha256({s.span(), remote.bytes()}), encryptNonce,
                    sha256({s.span(), self.bytes()}), decryptNonce, remote};
}

// Decodes exactly `out.size()` bytes of 64 hex digits or standard base64; false otherwise.
[[nodiscard]] bool decodeKeyText(std::string_view text, std::span<std::uint8_t> out) {
  std::size_t written = 0;
  const char* end = nullptr;
  if (text.size() == out.size() * 2 &&
      sodium_hex2bin(out.data(), out.size(), text.data(), text.size(), nullptr, &written, &end) ==
          0 &&
      end == text.data() + text.size() && written == out.size()) {
    return true;
  }
  if (text.size() == sodium_base64_ENCODED_LEN(out.size(), sodium_base64_VARIANT_ORIGINAL) - 1 &&
      sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &written, &end,
                        sodium_base64_VARIANT_ORIGINAL) == 0 &&
      end == text.data() + text.size() && written == out.size()) {
    return true;
  }
  sodium_memzero(out.data(), out.size());
  return false;
}

std::string toBase64(ByteView bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

void wipe(std::string& text) { sodium_memzero(text.data(), text.size()); }

void increment(ShsNonce& nonce) {
  // A 192-bit big-endian counter (spec §4): carry from the last byte towards the first.
  for (std::size_t i = nonce.size(); i-- > 0;) {
    if (++nonce[i] != 0) break;
  }
}

}  // namespace

// Keys ----------------------------------------------------------------------------------------

Result<PublicKey> PublicKey::fromBytes(ByteView bytes) {
  if (bytes.size() != kSize) {
    return Error(Errc::Malformed, "a public key has 32 bytes, not " + std::to_string(bytes.size()));
  }
  PublicKey key;
  if (crypto_sign_ed25519_pk_to_curve25519(key.curve_.data(), bytes.data()) != 0) {
    return Error(Errc::Malformed, "not a usable Ed25519 public key");
  }
  std::copy(bytes.begin(), bytes.end(), key.bytes_.begin());
  return key;
}

Result<PublicKey> PublicKey::parse(std::string_view text) {
  std::string_view body = text;
  if (body.starts_with('@')) body.remove_prefix(1);
  if (endsWith(body, kEd25519Suffix)) body.remove_suffix(kEd25519Suffix.size());
  std::array<std::uint8_t, kSize> bytes{};
  if (!decodeKeyText(body, bytes)) {
    return Error(Errc::Malformed,
                 "a public key is 64 hex digits or base64 (\"@<base64>.ed25519\"): '" +
                     std::string(text.substr(0, 100)) + "'");
  }
  return fromBytes(bytes);
}

std::string PublicKey::toSsbId() const {
  return "@" + toBase64(bytes_) + std::string(kEd25519Suffix);
}

Result<NetworkKey> NetworkKey::fromBytes(ByteView bytes) {
  if (bytes.size() != kSize) {
    return Error(Errc::Malformed,
                 "a network key has 32 bytes, not " + std::to_string(bytes.size()));
  }
  NetworkKey key;
  std::copy(bytes.begin(), bytes.end(), key.key_.data());
  return key;
}

Result<NetworkKey> NetworkKey::parse(std::string_view text) {
  NetworkKey key;
  if (!decodeKeyText(text, key.key_.span())) {
    return Error(Errc::Malformed, "a network key is 64 hex digits or 44 characters of base64");
  }
  return key;
}

DeviceKey DeviceKey::generate() {
  SecretKey<kSeedSize> seed;
  randombytes_buf(seed.data(), seed.size());
  return std::move(fromSeed(seed.span())).value();
}

Result<DeviceKey> DeviceKey::fromSeed(ByteView seed) {
  if (seed.size() != kSeedSize) {
    return Error(Errc::Malformed, "a device key seed has 32 bytes, not " +
                                      std::to_string(seed.size()));
  }
  std::array<std::uint8_t, PublicKey::kSize> pk{};
  SecretKey<kSecretKeySize> sk;
  crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
  auto publicKey = PublicKey::fromBytes(pk);
  // Every seed gives a point of the prime-order subgroup.
  PORTCULLIS_ASSERT(publicKey.has_value(), "crypto_sign_seed_keypair gave an unusable key");
  DeviceKey key(*publicKey);
  key.secretKey_ = std::move(sk);
  return key;
}

Result<DeviceKey> DeviceKey::load(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error(Errc::Io, "cannot open the key file " + path + ": " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return Error(Errc::Io, "cannot stat the key file " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return Error(Errc::Config, "the key file " + path + " is not a file");
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return Error(Errc::Config, "the key file " + path +
                                   " is accessible by group or others; chmod 600 it");
  }
  if (st.st_size > static_cast<off_t>(kMaxSecretFileBytes)) {
    return Error(Errc::Config, "the key file " + path + " is larger than 64 KiB");
  }

  std::string text;
  text.reserve(kMaxSecretFileBytes + 1);  // no reallocation leaves a copy behind
  char chunk[4096];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      wipe(text);
      return Error(Errc::Io, "cannot read the key file " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    if (text.size() + static_cast<std::size_t>(n) > kMaxSecretFileBytes) {
      wipe(text);
      sodium_memzero(chunk, sizeof chunk);
      return Error(Errc::Config, "the key file " + path + " is larger than 64 KiB");
    }
    text.append(chunk, static_cast<std::size_t>(n));
  }
  sodium_memzero(chunk, sizeof chunk);

  // ssb-keys writes comment lines starting with '#' around the JSON: blank them in place.
  for (std::size_t line = 0; line < text.size();) {
    std::size_t end = text.find('\n', line);
    if (end == std::string::npos) end = text.size();
    if (text[line] == '#') std::fill(text.begin() + line, text.begin() + end, ' ');
    line = end + 1;
  }
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  wipe(text);
  auto bad = [&](const std::string& why) {
    if (json.is_object() && json.contains("private") && json["private"].is_string()) {
      wipe(json["private"].get_ref<std::string&>());
    }
    return Error(Errc::Config, "the key file " + path + " " + why);
  };
  auto field = [&](const char* name) -> const std::string* {
    if (!json.is_object() || !json.contains(name) || !json[name].is_string()) return nullptr;
    return &json[name].get_ref<const std::string&>();
  };
  if (json.is_discarded() || !json.is_object()) return bad("is not a JSON object");
  const std::string* curve = field("curve");
  if (curve == nullptr || *curve != "ed25519") return bad("has no \"curve\": \"ed25519\"");
  const std::string* publicText = field("public");
  const std::string* privateText = field("private");
  if (publicText == nullptr || privateText == nullptr) {
    return bad("lacks \"public\" or \"private\"");
  }
  auto publicKey = PublicKey::parse(*publicText);
  if (!publicKey) return bad("has an invalid \"public\" key");
  std::string_view privateBody = *privateText;
  if (endsWith(privateBody, kEd25519Suffix)) privateBody.remove_suffix(kEd25519Suffix.size());
  SecretKey<kSecretKeySize> secret;
  if (!decodeKeyText(privateBody, secret.span())) {
    return bad("has a \"private\" key that is not 64 bytes of base64");
  }
  // The secret key is seed ‖ public key: rebuild it from the seed and compare both halves.
  auto rebuilt = fromSeed(secret.span().first<kSeedSize>());
  if (sodium_memcmp(rebuilt->secretKey().data(), secret.data(), kSecretKeySize) != 0 ||
      rebuilt->publicKey() != *publicKey) {
    return bad("holds a \"private\" and a \"public\" key that do not belong together");
  }
  if (const std::string* id = field("id"); id != nullptr && *id != publicKey->toSsbId()) {
    return bad("has an \"id\" that is not its public key");
  }
  wipe(json["private"].get_ref<std::string&>());
  return std::move(*rebuilt);
}

Result<DeviceKey> DeviceKey::loadOrCreate(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 || errno != ENOENT) return load(path);
  DeviceKey key = generate();
  if (auto saved = key.save(path); !saved) return saved.error();
  portcullis::log(LogLevel::Info, "made a new device key " + key.publicKeyHex() + " in " + path);
  return key;
}

Result<void> DeviceKey::save(const std::string& path) const {
  const std::string publicText = toBase64(publicKey_.bytes()) + std::string(kEd25519Suffix);
  std::string text;
  text.reserve(512);  // no reallocation leaves a copy of the secret behind
  text += "{\"curve\":\"ed25519\",\"public\":\"" + publicText + "\",\"private\":\"";
  std::array<char, sodium_base64_ENCODED_LEN(kSecretKeySize, sodium_base64_VARIANT_ORIGINAL)>
      privateText{};
  sodium_bin2base64(privateText.data(), privateText.size(), secretKey_.data(), kSecretKeySize,
                    sodium_base64_VARIANT_ORIGINAL);
  text.append(privateText.data());
  sodium_memzero(privateText.data(), privateText.size());
  text += std::string(kEd25519Suffix) + "\",\"id\":\"" + publicKey_.toSsbId() + "\"}\n";

  const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    wipe(text);
    return Error(Errc::Io, "cannot create the key file " + path + ": " + std::strerror(err) +
                               (err == EEXIST ? " (refusing to overwrite it)" : ""));
  }
  std::size_t done = 0;
  int err = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  wipe(text);
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(path.c_str());
    return Error(Errc::Io, "cannot write the key file " + path + ": " + std::strerror(err));
  }
  // The new directory entry is durable only once the directory is synced.
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd < 0 || ::fsync(dirFd) != 0) {
    err = errno;
    if (dirFd >= 0) ::close(dirFd);
    return Error(Errc::Io, "cannot sync the directory of the key file " + path + ": " +
                               std::strerror(err));
  }
  ::close(dirFd);
  return Result<void>();
}

EphemeralKey EphemeralKey::generate() {
  EphemeralKey key;
  crypto_box_keypair(key.publicKey_.data(), key.secretKey_.data());
  return key;
}

Result<EphemeralKey> EphemeralKey::fromSecret(ByteView secret) {
  if (secret.size() != kSize) {
    return Error(Errc::Malformed, "an ephemeral secret key has 32 bytes, not " +
                                      std::to_string(secret.size()));
  }
  EphemeralKey key;
  std::copy(secret.begin(), secret.end(), key.secretKey_.data());
  crypto_scalarmult_base(key.publicKey_.data(), key.secretKey_.data());
  return key;
}

// The client ----------------------------------------------------------------------------------

struct ShsClient::State {
  enum class Step { Hello, Authenticate, Accept, Done };

  State(const NetworkKey& n, const DeviceKey& id, const PublicKey& s, EphemeralKey e)
      : network(&n), identity(&id), server(s), ephemeral(std::move(e)),
        ownTag(helloTag(n, ephemeral.publicKey())) {}

  const NetworkKey* network;
  const DeviceKey* identity;
  PublicKey server;
  EphemeralKey ephemeral;
  std::array<std::uint8_t, kTagBytes> ownTag;
  std::array<std::uint8_t, kTagBytes> serverTag{};
  std::array<std::uint8_t, 32> serverEphemeral{};
  Key32 ab, aB, Ab, abHash;
  bool haveAb = false;  // Ab, needed only for message 4, is computed by precompute()
  SecretKey<kSignatureBytes + PublicKey::kSize> authPlain;  // sig_A ‖ A
  Step step = Step::Hello;
};

ShsClient::ShsClient(const NetworkKey& networkKey, const DeviceKey& identity,
                     const PublicKey& server)
    : ShsClient(networkKey, identity, server, EphemeralKey::generate()) {}

ShsClient::ShsClient(const NetworkKey& networkKey, const DeviceKey& identity,
                     const PublicKey& server, EphemeralKey ephemeral)
    : state_(std::make_unique<State>(networkKey, identity, server, std::move(ephemeral))) {}

ShsClient::ShsClient(ShsClient&&) noexcept = default;
ShsClient& ShsClient::operator=(ShsClient&&) noexcept = default;
ShsClient::~ShsClient() = default;

std::array<std::uint8_t, kShsHelloBytes> ShsClient::hello() const {
  PORTCULLIS_REQUIRE(state_ != nullptr);
  return helloMessage(state_->ownTag, state_->ephemeral.publicKey());
}

Result<void> ShsClient::verifyServerHello(ByteView msg2) {
  PORTCULLIS_REQUIRE(state_ && state_->step == State::Step::Hello, "out of order");
  State& s = *state_;
  s.step = State::Step::Done;  // until it succeeds
  auto serverEphemeral = verifyHello(*s.network, msg2, "the server hello");
  if (!serverEphemeral) return std::move(serverEphemeral).error();
  // A low-order point fails the first; then it cannot fail the second, whose point is B's.
  if (!dh(s.ab, s.ephemeral.secretKey(), serverEphemeral->data()) ||
      !dh(s.aB, s.ephemeral.secretKey(), s.server.curve25519().data())) {
    return Error(Errc::Malformed, "the server's ephemeral key is a low-order point");
  }
  s.serverEphemeral = *serverEphemeral;
  s.abHash = sha256({s.ab.span()});
  std::copy_n(msg2.begin(), kTagBytes, s.serverTag.begin());
  s.step = State::Step::Authenticate;
  return Result<void>();
}

std::array<std::uint8_t, kShsAuthenticateBytes> ShsClient::authenticate() {
  PORTCULLIS_REQUIRE(state_ && state_->step == State::Step::Authenticate, "out of order");
  State& s = *state_;
  // sig_A = sign(A.sk, N ‖ B ‖ sha256(ab)); the box key is sha256(N ‖ ab ‖ aB) (spec §2, msg 3).
  SecretKey<32 + PublicKey::kSize + 32> signedText;
  std::uint8_t* p = signedText.data();
  p = std::copy_n(s.network->key().data(), 32, p);
  p = std::copy(s.server.bytes().begin(), s.server.bytes().end(), p);
  std::copy_n(s.abHash.data(), 32, p);
  crypto_sign_detached(s.authPlain.data(), nullptr, signedText.data(), signedText.size(),
                       s.identity->secretKey().data());
  const auto& own = s.identity->publicKey().bytes();
  std::copy(own.begin(), own.end(), s.authPlain.data() + kSignatureBytes);
  const Key32 boxKey = sha256({s.network->key().span(), s.ab.span(), s.aB.span()});
  std::array<std::uint8_t, kShsAuthenticateBytes> msg3{};
  crypto_secretbox_easy(msg3.data(), s.authPlain.data(), s.authPlain.size(), kZeroNonce,
                        boxKey.data());
  s.step = State::Step::Accept;
  return msg3;
}

void ShsClient::precompute() {
  PORTCULLIS_REQUIRE(state_ && state_->step == State::Step::Accept, "out of order");
  State& s = *state_;
  if (s.haveAb) return;
  // b is not of low order (verifyServerHello checked ab), so this cannot fail.
  const bool ok = dh(s.Ab, curveSecret(*s.identity), s.serverEphemeral.data());
  PORTCULLIS_ASSERT(ok, "Ab failed after ab succeeded");
  s.haveAb = true;
}

Result<ShsSession> ShsClient::verifyAccept(ByteView msg4) {
  precompute();
  State& s = *state_;
  s.step = State::Step::Done;
  if (msg4.size() != kShsAcceptBytes) {
    return Error(Errc::Malformed,
                 "the server accept has " + std::to_string(msg4.size()) + " bytes, not 80");
  }
  const Key32 boxKey =
      sha256({s.network->key().span(), s.ab.span(), s.aB.span(), s.Ab.span()});
  std::array<std::uint8_t, kSignatureBytes> sigB{};
  if (crypto_secretbox_open_easy(sigB.data(), msg4.data(), msg4.size(), kZeroNonce,
                                 boxKey.data()) != 0) {
    return Error(Errc::Denied, "the server accept does not open: not the server we dialed");
  }
  // sig_B covers N ‖ sig_A ‖ A ‖ sha256(ab) (spec §2, msg 4).
  SecretKey<32 + kSignatureBytes + PublicKey::kSize + 32> signedText;
  std::uint8_t* p = std::copy_n(s.network->key().data(), 32, signedText.data());
  p = std::copy_n(s.authPlain.data(), s.authPlain.size(), p);
  std::copy_n(s.abHash.data(), 32, p);
  if (crypto_sign_verify_detached(sigB.data(), signedText.data(), signedText.size(),
                                  s.server.bytes().data()) != 0) {
    return Error(Errc::Denied, "the server's signature does not verify");
  }
  return deriveSession(boxKey, s.identity->publicKey(), s.server, s.ownTag, s.serverTag);
}

// The server ----------------------------------------------------------------------------------

struct ShsServer::State {
  // Hello: message 1 checked, message 2 may be sent and message 3 is awaited.
  enum class Step { ClientHello, Hello, Accept, Done };

  State(const NetworkKey& n, const DeviceKey& id, EphemeralKey e)
      : network(&n), identity(&id), ephemeral(std::move(e)),
        ownTag(helloTag(n, ephemeral.publicKey())) {}

  const NetworkKey* network;
  const DeviceKey* identity;
  EphemeralKey ephemeral;
  std::array<std::uint8_t, kTagBytes> ownTag;
  std::array<std::uint8_t, kTagBytes> clientTag{};
  std::array<std::uint8_t, 32> clientEphemeral{};
  std::optional<PublicKey> client;
  Key32 ab, aB, Ab, abHash;
  bool haveHelloSecrets = false;  // ab and aB, computed by precompute()
  SecretKey<kSignatureBytes + PublicKey::kSize> authPlain;  // sig_A ‖ A
  Step step = Step::ClientHello;
};

ShsServer::ShsServer(const NetworkKey& networkKey, const DeviceKey& identity)
    : ShsServer(networkKey, identity, EphemeralKey::generate()) {}

ShsServer::ShsServer(const NetworkKey& networkKey, const DeviceKey& identity,
                     EphemeralKey ephemeral)
    : state_(std::make_unique<State>(networkKey, identity, std::move(ephemeral))) {}

ShsServer::ShsServer(ShsServer&&) noexcept = default;
ShsServer& ShsServer::operator=(ShsServer&&) noexcept = default;
ShsServer::~ShsServer() = default;

Result<void> ShsServer::verifyClientHello(ByteView msg1) {
  PORTCULLIS_REQUIRE(state_ && state_->step == State::Step::ClientHello, "out of order");
  State& s = *state_;
  s.step = State::Step::Done;
  auto clientEphemeral = verifyHello(*s.network, msg1, "the client hello");
  if (!clientEphemeral) return std::move(clientEphemeral).error();
  s.clientEphemeral = *clientEphemeral;
  std::copy_n(msg1.begin(), kTagBytes, s.clientTag.begin());
  s.step = State::Step::Hello;
  return Result<void>();
}

Result<void> ShsServer::precompute() {
  PORTCULLIS_REQUIRE(state_ && state_->step == State::Step::Hello, "out of order");
  State& s = *state_;
  if (s.haveHelloSecrets) return Result<void>();
  // A low-order point fails the first; then it cannot fail the second.
  if (!dh(s.ab, s.ephemeral.secretKey(), s.clientEphemeral.data()) ||
      !dh(s.aB, curveSecret(*s.identity), s.clientEphemeral.data())) {
    s.step = State::Step::Done;
    return Error(Errc::Malformed, "the client's ephemeral key is a low-order point");
  }
  s.abHash = sha256({s.ab.span()});
  s.haveHelloSecrets = true;
  return Result<void>();
}

std::array<std::uint8_t, kShsHelloBytes> ShsServer::hello() const {
  PORTCULLIS_REQUIRE(state_ && state_->step == State::Step::Hello, "out of order");
  return helloMessage(state_->ownTag, state_->ephemeral.publicKey());
}

Result<PublicKey> ShsServer::verifyAuthenticate(ByteView msg3) {
  auto secrets = precompute();
  if (!secrets) return std::move(secrets).error();
  State& s = *state_;
  s.step = State::Step::Done;
  if (msg3.size() != kShsAuthenticateBytes) {
    return Error(Errc::Malformed, "the client authenticate has " + std::to_string(msg3.size()) +
                                      " bytes, not 112");
  }
  const Key32 boxKey = sha256({s.network->key().span(), s.ab.span(), s.aB.span()});
  if (crypto_secretbox_open_easy(s.authPlain.data(), msg3.data(), msg3.size(), kZeroNonce,
                                 boxKey.data()) != 0) {
    return Error(Errc::Denied,
                 "the client authenticate does not open: the client does not know our key");
  }
  auto client = PublicKey::fromBytes(
      ByteView(s.authPlain.data() + kSignatureBytes, PublicKey::kSize));
  if (!client) return Error(Errc::Malformed, "the client's long-term key is not usable");
  SecretKey<32 + PublicKey::kSize + 32> signedText;
  std::uint8_t* p = std::copy_n(s.network->key().data(), 32, signedText.data());
  const auto& own = s.identity->publicKey().bytes();
  p = std::copy(own.begin(), own.end(), p);
  std::copy_n(s.abHash.data(), 32, p);
  if (crypto_sign_verify_detached(s.authPlain.data(), signedText.data(), signedText.size(),
                                  client->bytes().data()) != 0) {
    return Error(Errc::Denied, "the client's signature does not verify");
  }
  if (!dh(s.Ab, s.ephemeral.secretKey(), client->curve25519().data())) {
    return Error(Errc::Malformed, "the client's long-term key is a low-order point");
  }
  s.client = *client;
  s.step = State::Step::Accept;
  return *client;
}

ShsServer::Accept ShsServer::accept() {
  PORTCULLIS_REQUIRE(state_ && state_->step == State::Step::Accept, "out of order");
  State& s = *state_;
  s.step = State::Step::Done;
  // sig_B = sign(B.sk, N ‖ sig_A ‖ A ‖ sha256(ab)), boxed with sha256(N ‖ ab ‖ aB ‖ Ab).
  SecretKey<32 + kSignatureBytes + PublicKey::kSize + 32> signedText;
  std::uint8_t* p = std::copy_n(s.network->key().data(), 32, signedText.data());
  p = std::copy_n(s.authPlain.data(), s.authPlain.size(), p);
  std::copy_n(s.abHash.data(), 32, p);
  SecretKey<kSignatureBytes> sigB;
  crypto_sign_detached(sigB.data(), nullptr, signedText.data(), signedText.size(),
                       s.identity->secretKey().data());
  const Key32 boxKey =
      sha256({s.network->key().span(), s.ab.span(), s.aB.span(), s.Ab.span()});
  std::array<std::uint8_t, kShsAcceptBytes> msg4{};
  crypto_secretbox_easy(msg4.data(), sigB.data(), sigB.size(), kZeroNonce, boxKey.data());
  return Accept{msg4, deriveSession(boxKey, s.identity->publicKey(), *s.client, s.ownTag,
                                    s.clientTag)};
}

// Over a stream -------------------------------------------------------------------------------

asio::awaitable<Result<ShsSession>> shsClient(Stream& stream, const ShsConfig& config,
                                              const PublicKey& server) {
  ShsClient client(config.networkKey, config.identity, server);
  const auto msg1 = client.hello();
  auto done = co_await stream.write(msg1);
  if (!done) co_return done.error();
  std::array<std::uint8_t, kShsHelloBytes> msg2{};
  done = co_await readExactly(stream, msg2);
  if (!done) co_return done.error();
  auto verified = client.verifyServerHello(msg2);
  if (!verified) co_return verified.error();
  const auto msg3 = client.authenticate();
  done = co_await stream.write(msg3);
  if (!done) co_return done.error();
  client.precompute();  // while the server checks message 3
  std::array<std::uint8_t, kShsAcceptBytes> msg4{};
  done = co_await readExactly(stream, msg4);
  if (!done) co_return done.error();
  co_return client.verifyAccept(msg4);
}

asio::awaitable<Result<ShsSession>> shsServer(Stream& stream, const ShsConfig& config,
                                              std::function<bool(const PublicKey&)> authorize) {
  ShsServer server(config.networkKey, config.identity);
  std::array<std::uint8_t, kShsHelloBytes> msg1{};
  auto done = co_await readExactly(stream, msg1);
  if (!done) co_return done.error();
  auto verified = server.verifyClientHello(msg1);
  if (!verified) co_return verified.error();
  const auto msg2 = server.hello();
  done = co_await stream.write(msg2);
  if (!done) co_return done.error();
  verified = server.precompute();  // while the client works on message 3
  if (!verified) co_return verified.error();
  std::array<std::uint8_t, kShsAuthenticateBytes> msg3{};
  done = co_await readExactly(stream, msg3);
  if (!done) co_return done.error();
  auto client = server.verifyAuthenticate(msg3);
  if (!client) co_return std::move(client).error();
  if (!authorize(*client)) {
    co_return Error(Errc::Denied, "client " + client->toHex() + " is not authorized");
  }
  auto accepted = server.accept();
  done = co_await stream.write(accepted.message);
  if (!done) co_return done.error();
  co_return std::move(accepted.session);
}

Result<PublicKey> shsServerKeyOf(std::string_view dialedAddress) {
  constexpr std::string_view kTransform = "~shs:";
  constexpr std::size_t kQuoteBytes = 200;  // how much of the address an error quotes
  const auto at = dialedAddress.rfind(kTransform);
  if (at == std::string_view::npos) {
    return Error(Errc::Config, "the dialed address '" +
                                   std::string(dialedAddress.substr(0, kQuoteBytes)) +
                                   "' carries no server key; dial net:HOST:PORT~shs:KEY (the "
                                   "server's public key)");
  }
  auto key = PublicKey::parse(dialedAddress.substr(at + kTransform.size()));
  if (!key) {
    return Error(Errc::Config, "the server key of the dialed address: " + key.error().message());
  }
  return key;
}

asio::awaitable<Result<ShsSession>> shsHandshake(Stream& stream, Side side,
                                                 const ShsConfig& config,
                                                 std::function<bool(const PublicKey&)> authorize) {
  if (side == Side::Acceptor) co_return co_await shsServer(stream, config, std::move(authorize));
  auto server = shsServerKeyOf(stream.dialedAddress());
  if (!server) co_return std::move(server).error();
  if (!authorize(*server)) {
    co_return Error(Errc::Denied, "server " + server->toHex() + " is not authorized");
  }
  co_return co_await shsClient(stream, config, *server);
}

// Box-stream ----------------------------------------------------------------------------------

BoxStreamEncoder::BoxStreamEncoder(SecretKey<32> key, const ShsNonce& nonce)
    : key_(std::move(key)), nonce_(nonce) {}

void BoxStreamEncoder::encode(ByteView message, std::span<std::uint8_t> out) {
  PORTCULLIS_REQUIRE(!ended_, "a message after the goodbye");
  PORTCULLIS_REQUIRE(!message.empty() && message.size() <= kBoxStreamMaxBodyBytes,
                     "a box-stream message of {} bytes", message.size());
  PORTCULLIS_REQUIRE(out.size() >= wireSize(message.size()));
  // Body first, under nonce n+1: its tag goes into the header, boxed under n (spec §4).
  std::uint8_t header[kHeaderPlainBytes];
  header[0] = static_cast<std::uint8_t>(message.size() >> 8);
  header[1] = static_cast<std::uint8_t>(message.size());
  ShsNonce bodyNonce = nonce_;
  increment(bodyNonce);
  crypto_secretbox_detached(out.data() + kBoxStreamHeaderBytes, header + 2, message.data(),
                            message.size(), bodyNonce.data(), key_.data());
  crypto_secretbox_easy(out.data(), header, sizeof header, nonce_.data(), key_.data());
  nonce_ = bodyNonce;
  increment(nonce_);
}

void BoxStreamEncoder::goodbye(std::span<std::uint8_t, kBoxStreamHeaderBytes> out) {
  PORTCULLIS_REQUIRE(!ended_, "a second goodbye");
  const std::uint8_t zeros[kHeaderPlainBytes] = {};
  crypto_secretbox_easy(out.data(), zeros, sizeof zeros, nonce_.data(), key_.data());
  ended_ = true;
}

BoxStreamDecoder::BoxStreamDecoder(SecretKey<32> key, const ShsNonce& nonce)
    : key_(std::move(key)), nonce_(nonce) {}

Result<std::optional<std::size_t>> BoxStreamDecoder::decodeHeader(
    std::span<const std::uint8_t, kBoxStreamHeaderBytes> header) {
  PORTCULLIS_REQUIRE(!finished_ && bodyBytes_ == 0, "out of order");
  finished_ = true;  // until it succeeds
  std::uint8_t plain[kHeaderPlainBytes];
  if (crypto_secretbox_open_easy(plain, header.data(), header.size(), nonce_.data(),
                                 key_.data()) != 0) {
    return Error(Errc::Malformed, "a box-stream header does not open");
  }
  if (sodium_is_zero(plain, sizeof plain)) return std::optional<std::size_t>();
  const std::size_t length = std::size_t{plain[0]} << 8 | plain[1];
  if (length == 0 || length > kBoxStreamMaxBodyBytes) {
    return Error(Errc::Malformed,
                 "a box-stream header announces " + std::to_string(length) + " bytes");
  }
  std::copy(plain + 2, plain + sizeof plain, bodyTag_.begin());
  increment(nonce_);
  bodyBytes_ = length;
  finished_ = false;
  return std::optional<std::size_t>(length);
}

Result<void> BoxStreamDecoder::decodeBody(ByteView ciphertext, std::span<std::uint8_t> out) {
  PORTCULLIS_REQUIRE(!finished_ && bodyBytes_ != 0, "out of order");
  PORTCULLIS_REQUIRE(ciphertext.size() == bodyBytes_ && out.size() == bodyBytes_);
  if (crypto_secretbox_open_detached(out.data(), ciphertext.data(), bodyTag_.data(),
                                     ciphertext.size(), nonce_.data(), key_.data()) != 0) {
    finished_ = true;
    return Error(Errc::Malformed, "a box-stream body does not open");
  }
  increment(nonce_);
  bodyBytes_ = 0;
  return Result<void>();
}

namespace {

// Framing (architecture §7): a frame that fits one packet is that packet. Any other frame (empty,
// over 4,096 bytes, or of exactly 4 bytes) is a 4-byte packet holding its u32 big-endian length,
// then its bytes cut into packets of 4,096 and a last shorter one. So a 4-byte packet always starts
// a cut frame, and every frame that fits one packet costs exactly one.
constexpr std::size_t kLengthBytes = kFrameLengthBytes;
constexpr std::size_t kPacketWireBytes = kBoxStreamHeaderBytes + kBoxStreamMaxBodyBytes;
// Packets per stream write at most, and the largest receive buffer: 16 packets, about 64 KiB.
// Both are sized to the traffic: an idle session holds one packet's buffer, not 128 KiB (a
// server with 1,000 idle sessions held 142 KiB each).
constexpr std::size_t kBatchPackets = 16;
constexpr std::size_t kReadBufferBytes = kBatchPackets * kPacketWireBytes;

bool fitsOnePacket(std::size_t frameBytes) {
  return frameBytes != 0 && frameBytes != kLengthBytes && frameBytes <= kBoxStreamMaxBodyBytes;
}

class BoxStreamChannel final : public MessageChannel {
 public:
  BoxStreamChannel(std::unique_ptr<Stream> stream, ShsSession session, std::size_t maxFrameBytes)
      : stream_(std::move(stream)),
        encoder_(std::move(session.encryptKey), session.encryptNonce),
        decoder_(std::move(session.decryptKey), session.decryptNonce),
        maxFrameBytes_(maxFrameBytes),
        in_(kPacketWireBytes) {}
  ~BoxStreamChannel() override { stream_->close(); }

  asio::awaitable<Result<void>> send(ByteView frame) override {
    co_return co_await sendMany(std::span<const ByteView>(&frame, 1));
  }

  // The frames' messages, encrypted into a buffer of at most kBatchPackets packets, written
  // whenever it cannot take the next step (a length message and a packet), then once at the end.
  // The buffer lives for this call only.
  asio::awaitable<Result<void>> sendMany(std::span<const ByteView> frames) override {
    if (closed_) co_return Error(Errc::Disconnected, "the channel is closed");
    std::size_t wireBytes = 0;
    for (const ByteView frame : frames) {
      if (frame.size() > maxFrameBytes_) {
        co_return Error(Errc::Overloaded, "frame of " + std::to_string(frame.size()) +
                                              " bytes is over the limit");
      }
      const std::size_t packets =
          (frame.size() + kBoxStreamMaxBodyBytes - 1) / kBoxStreamMaxBodyBytes;
      wireBytes += frame.size() + packets * kBoxStreamHeaderBytes +
                   (fitsOnePacket(frame.size()) ? 0 : BoxStreamEncoder::wireSize(kLengthBytes));
    }
    constexpr std::size_t kStepBytes =
        BoxStreamEncoder::wireSize(kLengthBytes) + kPacketWireBytes;
    Bytes out(std::min(wireBytes, kBatchPackets * kPacketWireBytes));
    std::size_t used = 0;
    for (const ByteView frame : frames) {
      const auto length = encodeFrameLength(static_cast<std::uint32_t>(frame.size()));
      bool lengthDue = !fitsOnePacket(frame.size());
      for (std::size_t offset = 0; lengthDue || offset < frame.size();) {
        // Smaller than a step only when it holds everything, and then it never fills.
        if (out.size() - used < kStepBytes && out.size() >= kStepBytes) {
          auto written = co_await stream_->write(ByteView(out.data(), used));
          if (!written) co_return written;
          used = 0;
        }
        if (lengthDue) {
          encoder_.encode(length, std::span(out).subspan(used));
          used += BoxStreamEncoder::wireSize(kLengthBytes);
          lengthDue = false;
        }
        if (offset < frame.size()) {
          const std::size_t piece = std::min(frame.size() - offset, kBoxStreamMaxBodyBytes);
          encoder_.encode(frame.subspan(offset, piece), std::span(out).subspan(used));
          used += BoxStreamEncoder::wireSize(piece);
          offset += piece;
        }
      }
    }
    co_return co_await stream_->write(ByteView(out.data(), used));
  }

  asio::awaitable<Result<Bytes>> receive() override {
    if (failed_) co_return *failed_;
    auto first = co_await nextHeader();
    if (!first) co_return fail(std::move(first).error());
    if (!*first) co_return fail(Error(Errc::Disconnected, "the peer said goodbye"));
    if (**first != kLengthBytes) {
      Bytes frame(**first);
      auto opened = co_await openBody(frame);
      if (!opened) co_return fail(std::move(opened).error());
      co_return frame;
    }
    std::array<std::uint8_t, kLengthBytes> length;
    auto opened = co_await openBody(length);
    if (!opened) co_return fail(std::move(opened).error());
    const std::size_t n = decodeFrameLength(length);
    if (fitsOnePacket(n)) {
      co_return fail(Error(Errc::Malformed, "a length packet for a frame of " +
                                                std::to_string(n) + " bytes, which fits one"));
    }
    if (n > maxFrameBytes_) {
      co_return fail(Error(Errc::Overloaded, "peer announced a frame of " + std::to_string(n) +
                                                 " bytes, over the limit"));
    }
    Bytes frame;
    for (std::size_t filled = 0; filled < n;) {
      auto header = co_await nextHeader();
      if (!header) co_return fail(std::move(header).error());
      if (!*header) co_return fail(Error(Errc::Malformed, "a goodbye in the middle of a frame"));
      if (**header > n - filled) {
        co_return fail(Error(Errc::Malformed, "a packet runs past the end of its frame"));
      }
      growFrame(frame, filled + **header, n);
      opened = co_await openBody(std::span(frame).subspan(filled, **header));
      if (!opened) co_return fail(std::move(opened).error());
      filled += **header;
    }
    co_return frame;
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

  // Makes at least `bytes` wire bytes available in in_[inBegin_, inEnd_).
  asio::awaitable<Result<void>> fill(std::size_t bytes) {
    if (inEnd_ - inBegin_ >= bytes) co_return Result<void>();
    if (in_.size() - inBegin_ < bytes) {
      std::copy(in_.begin() + inBegin_, in_.begin() + inEnd_, in_.begin());
      inEnd_ -= inBegin_;
      inBegin_ = 0;
    }
    while (inEnd_ - inBegin_ < bytes) {
      auto got = co_await stream_->readSome(std::span(in_).subspan(inEnd_));
      if (!got) co_return std::move(got).error();
      inEnd_ += *got;
      // A read that filled the buffer: the peer sends in bulk, so read more at a time.
      if (inEnd_ == in_.size() && in_.size() < kReadBufferBytes) {
        in_.resize(std::min(2 * in_.size(), kReadBufferBytes));
      }
    }
    co_return Result<void>();
  }

  // Reads and opens the next packet's header: std::nullopt for the goodbye, else the length of
  // the body, which openBody() must open next.
  asio::awaitable<Result<std::optional<std::size_t>>> nextHeader() {
    auto ready = co_await fill(kBoxStreamHeaderBytes);
    if (!ready) co_return ready.error();
    auto header = decoder_.decodeHeader(
        std::span<const std::uint8_t, kBoxStreamHeaderBytes>(in_.data() + inBegin_,
                                                             kBoxStreamHeaderBytes));
    if (header) inBegin_ += kBoxStreamHeaderBytes;
    co_return header;
  }

  // Reads the body the last header announced, of exactly `out.size()` bytes, and opens it there.
  asio::awaitable<Result<void>> openBody(std::span<std::uint8_t> out) {
    auto ready = co_await fill(out.size());
    if (!ready) co_return ready.error();
    auto opened = decoder_.decodeBody(ByteView(in_.data() + inBegin_, out.size()), out);
    if (opened) inBegin_ += out.size();
    co_return opened;
  }

  std::unique_ptr<Stream> stream_;
  BoxStreamEncoder encoder_;
  BoxStreamDecoder decoder_;
  std::size_t maxFrameBytes_;
  bool closed_ = false;
  std::optional<Error> failed_;
  // Receiving: wire bytes read but not yet opened.
  std::vector<std::uint8_t> in_;
  std::size_t inBegin_ = 0;
  std::size_t inEnd_ = 0;
};

}  // namespace

std::unique_ptr<MessageChannel> makeBoxStreamChannel(std::unique_ptr<Stream> stream,
                                                     ShsSession session,
                                                     std::size_t maxFrameBytes) {
  // The length prefix is 32 bits.
  maxFrameBytes = std::min<std::size_t>(maxFrameBytes, UINT32_MAX);
  return std::make_unique<BoxStreamChannel>(std::move(stream), std::move(session),
                                            maxFrameBytes);
}

}  // namespace portcullis
