// certificate.cc — the online provider's wire forms: signed certificates and revocation lists,
// hello, login answer and notice messages. The only code of the provider that touches Cap'n Proto.

#include "certificate.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <kj/array.h>
#include <kj/exception.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "online.capnp.h"

namespace portcullis::online {

namespace {

constexpr std::string_view kCertificateTag{"portcullis/online/v1/certificate\0", 33};
constexpr std::string_view kRevocationsTag{"portcullis/online/v1/revocations\0", 33};
constexpr std::string_view kNetworkKeyTag = "portcullis/online/v1/";
constexpr unsigned kNestingLimit = 8;

Error malformed(std::string_view what) { return Error(Errc::Malformed, std::string(what)); }

std::string_view view(capnp::Text::Reader t) { return std::string_view(t.begin(), t.size()); }
capnp::Text::Reader text(std::string_view s) { return capnp::Text::Reader(s.data(), s.size()); }
capnp::Data::Reader blob(ByteView b) { return capnp::Data::Reader(b.data(), b.size()); }

Bytes toBytes(kj::ArrayPtr<const capnp::word> words) {
  const auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

// Reads `bytes` as one segment (copied: capnp reads aligned words) with limits that keep a
// hostile message to a few passes over its own size, and hands the reader to `read`, which
// returns the decoded value or the first broken rule. kj::Exception (a pointer of the wrong
// kind) is Malformed too.
template <typename Root, typename Read>
auto readMessage(ByteView bytes, std::size_t maxBytes, std::string_view what, bool canonical,
                 Read&& read) -> decltype(read(std::declval<typename Root::Reader>())) {
  if (bytes.empty()) return malformed(fmt::format("{}: empty", what));
  if (bytes.size() > maxBytes) return malformed(fmt::format("{}: over {} bytes", what, maxBytes));
  if (bytes.size() % sizeof(capnp::word) != 0) {
    return malformed(fmt::format("{}: not whole words", what));
  }
  try {
    auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), bytes.data(), bytes.size());
    const kj::ArrayPtr<const capnp::word> segment = words.asPtr();
    capnp::ReaderOptions options;
    options.traversalLimitInWords = words.size() * 4 + 64;
    options.nestingLimit = kNestingLimit;
    capnp::SegmentArrayMessageReader message(kj::arrayPtr(&segment, 1), options);
    if (canonical && !message.isCanonical()) return malformed(fmt::format("{}: not canonical", what));
    return read(message.getRoot<Root>());
  } catch (const kj::Exception& e) {
    return malformed(fmt::format("{}: {}", what, e.getDescription().cStr()));
  }
}

template <typename Root>
Bytes canonicalBytes(capnp::MallocMessageBuilder& message) {
  return toBytes(capnp::canonicalize(message.getRoot<Root>().asReader()));
}

Result<std::string> readText(bool has, capnp::Text::Reader t, std::size_t max,
                             std::string_view field) {
  if (!has) return malformed(fmt::format("{}: missing", field));
  if (!printableText(view(t), max)) {
    return malformed(fmt::format("{}: not 1..{} bytes of printable ASCII", field, max));
  }
  return std::string(view(t));
}

Result<std::vector<std::string>> readTexts(bool has, capnp::List<capnp::Text>::Reader list,
                                           std::size_t maxEntries, std::size_t maxBytes,
                                           std::string_view field) {
  std::vector<std::string> out;
  if (!has) return out;
  if (list.size() == 0) return malformed(fmt::format("{}: empty list (null means none)", field));
  if (list.size() > maxEntries) return malformed(fmt::format("{}: too many entries", field));
  out.reserve(list.size());
  for (auto t : list) {
    if (!printableText(view(t), maxBytes)) {
      return malformed(fmt::format("{}: an entry is not 1..{} bytes of printable ASCII", field,
                                   maxBytes));
    }
    out.emplace_back(view(t));
  }
  return out;
}

template <typename ListBuilder>
void putTexts(ListBuilder init, const std::vector<std::string>& values) {
  if (values.empty()) return;
  auto list = init(static_cast<unsigned>(values.size()));
  for (unsigned i = 0; i < values.size(); ++i) list.set(i, text(values[i]));
}

std::string_view tagOf(SignedKind kind) {
  return kind == SignedKind::Certificate ? kCertificateTag : kRevocationsTag;
}

}  // namespace

Bytes signBody(ByteView body, SignedKind kind, const DeviceKey& signer) {
  const std::string_view tag = tagOf(kind);
  Bytes message(tag.begin(), tag.end());
  message.insert(message.end(), body.begin(), body.end());
  std::array<std::uint8_t, crypto_sign_BYTES> signature{};
  crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(),
                       signer.secretKey().data());
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<wire::Signed>();
  root.setBody(blob(body));
  root.setSigner(blob(signer.publicKey().bytes()));
  root.setSignature(blob(signature));
  return canonicalBytes<wire::Signed>(builder);
}

namespace {

// Opens a Signed of at most `maxBytes`: checks its shape, that the signer is trusted and that
// the signature over tag ‖ body verifies, and returns the body.
Result<Bytes> openSigned(ByteView bytes, std::size_t maxBytes, std::string_view tag,
                         std::span<const Ed25519Key> trusted, std::string_view what) {
  struct Parts {
    Bytes body;
    Ed25519Key signer{};
    std::array<std::uint8_t, crypto_sign_BYTES> signature{};
  };
  auto parts = readMessage<wire::Signed>(
      bytes, maxBytes, what, true, [&](wire::Signed::Reader r) -> Result<Parts> {
        Parts out;
        if (!r.hasBody() || r.getBody().size() == 0) return malformed(fmt::format("{}.body: missing", what));
        if (!r.hasSigner() || r.getSigner().size() != out.signer.size()) {
          return malformed(fmt::format("{}.signer: not a 32-byte key", what));
        }
        if (!r.hasSignature() || r.getSignature().size() != out.signature.size()) {
          return malformed(fmt::format("{}.signature: not 64 bytes", what));
        }
        out.body.assign(r.getBody().begin(), r.getBody().end());
        std::memcpy(out.signer.data(), r.getSigner().begin(), out.signer.size());
        std::memcpy(out.signature.data(), r.getSignature().begin(), out.signature.size());
        return out;
      });
  if (!parts) return std::move(parts).error();
  if (std::find(trusted.begin(), trusted.end(), parts->signer) == trusted.end()) {
    return Error(Errc::Denied, fmt::format("{}: signed by a key that is not a trusted identity "
                                           "service", what));
  }
  Bytes message(tag.begin(), tag.end());
  message.insert(message.end(), parts->body.begin(), parts->body.end());
  if (crypto_sign_verify_detached(parts->signature.data(), message.data(), message.size(),
                                  parts->signer.data()) != 0) {
    return Error(Errc::Denied, fmt::format("{}: the signature does not verify", what));
  }
  return std::move(parts->body);
}

Result<Bytes> readBlob(bool has, capnp::Data::Reader d, std::size_t max, std::string_view field) {
  if (!has || d.size() == 0) return malformed(fmt::format("{}: missing", field));
  if (d.size() > max) return malformed(fmt::format("{}: over {} bytes", field, max));
  return Bytes(d.begin(), d.end());
}

}  // namespace

bool printableText(std::string_view text, std::size_t max) {
  return !text.empty() && text.size() <= max &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7E; });
}

bool Revocations::revoked(std::uint64_t serial) const {
  return std::binary_search(serials.begin(), serials.end(), serial);
}

Bytes signCertificate(const Certificate& c, const DeviceKey& signer) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<wire::Certificate>();
  root.setVersion(kWireVersion);
  root.setAppId(text(c.appId));
  root.setPeerKey(blob(c.peerKey));
  root.setUserId(text(c.userId));
  putTexts([&](unsigned n) { return root.initRoles(n); }, c.roles);
  putTexts([&](unsigned n) { return root.initRead(n); }, c.permissions.read);
  putTexts([&](unsigned n) { return root.initWrite(n); }, c.permissions.write);
  root.setIssuedAt(c.issuedAt);
  root.setExpiresAt(c.expiresAt);
  root.setSerial(c.serial);
  return signBody(canonicalBytes<wire::Certificate>(builder), SignedKind::Certificate, signer);
}

Bytes signRevocations(const Revocations& r, const DeviceKey& signer) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<wire::Revocations>();
  root.setVersion(kWireVersion);
  root.setAppId(text(r.appId));
  root.setSequence(r.sequence);
  root.setIssuedAt(r.issuedAt);
  if (!r.serials.empty()) {
    auto list = root.initSerials(static_cast<unsigned>(r.serials.size()));
    for (unsigned i = 0; i < r.serials.size(); ++i) list.set(i, r.serials[i]);
  }
  return signBody(canonicalBytes<wire::Revocations>(builder), SignedKind::Revocations, signer);
}

Result<Certificate> openCertificate(ByteView signedBytes, std::span<const Ed25519Key> trusted) {
  auto body = openSigned(signedBytes, kMaxCertificateBytes, kCertificateTag, trusted,
                         "certificate");
  if (!body) return std::move(body).error();
  return readMessage<wire::Certificate>(
      *body, kMaxCertificateBytes, "certificate", true,
      [](wire::Certificate::Reader r) -> Result<Certificate> {
        if (r.getVersion() != kWireVersion) {
          return Error(Errc::Unsupported,
                       fmt::format("certificate: version {} (this node reads {})",
                                   r.getVersion(), kWireVersion));
        }
        Certificate out;
        auto appId = readText(r.hasAppId(), r.getAppId(), kMaxAppIdBytes, "certificate.appId");
        if (!appId) return std::move(appId).error();
        out.appId = std::move(*appId);
        if (!r.hasPeerKey() || r.getPeerKey().size() != out.peerKey.size()) {
          return malformed("certificate.peerKey: not a 32-byte key");
        }
        std::memcpy(out.peerKey.data(), r.getPeerKey().begin(), out.peerKey.size());
        auto userId =
            readText(r.hasUserId(), r.getUserId(), kMaxUserIdBytes, "certificate.userId");
        if (!userId) return std::move(userId).error();
        out.userId = std::move(*userId);
        auto roles =
            readTexts(r.hasRoles(), r.getRoles(), kMaxRoles, kMaxRoleBytes, "certificate.roles");
        if (!roles) return std::move(roles).error();
        out.roles = std::move(*roles);
        auto read = readTexts(r.hasRead(), r.getRead(), kMaxPermissionEntries, kMaxUserIdBytes,
                              "certificate.read");
        if (!read) return std::move(read).error();
        auto write = readTexts(r.hasWrite(), r.getWrite(), kMaxPermissionEntries,
                               kMaxUserIdBytes, "certificate.write");
        if (!write) return std::move(write).error();
        out.permissions = Permissions{.read = std::move(*read), .write = std::move(*write)};
        if (auto ok = checkPermissions(out.permissions); !ok) {
          return malformed("certificate." + ok.error().message());
        }
        out.issuedAt = r.getIssuedAt();
        out.expiresAt = r.getExpiresAt();
        if (out.expiresAt <= out.issuedAt) {
          return malformed("certificate: expiresAt is not after issuedAt");
        }
        out.serial = r.getSerial();
        return out;
      });
}

Result<Revocations> openRevocations(ByteView signedBytes, std::span<const Ed25519Key> trusted) {
  auto body = openSigned(signedBytes, kMaxRevocationsBytes, kRevocationsTag, trusted,
                         "revocation list");
  if (!body) return std::move(body).error();
  return readMessage<wire::Revocations>(
      *body, kMaxRevocationsBytes, "revocation list", true,
      [](wire::Revocations::Reader r) -> Result<Revocations> {
        if (r.getVersion() != kWireVersion) {
          return Error(Errc::Unsupported, fmt::format("revocation list: version {}",
                                                      r.getVersion()));
        }
        Revocations out;
        auto appId = readText(r.hasAppId(), r.getAppId(), kMaxAppIdBytes, "revocations.appId");
        if (!appId) return std::move(appId).error();
        out.appId = std::move(*appId);
        out.sequence = r.getSequence();
        out.issuedAt = r.getIssuedAt();
        if (r.hasSerials()) {
          const auto serials = r.getSerials();
          if (serials.size() == 0) return malformed("revocations.serials: empty list");
          if (serials.size() > kMaxRevokedSerials) {
            return malformed("revocations.serials: too many entries");
          }
          out.serials.reserve(serials.size());
          for (std::uint64_t s : serials) {
            if (!out.serials.empty() && s <= out.serials.back()) {
              return malformed("revocations.serials: not strictly ascending");
            }
            out.serials.push_back(s);
          }
        }
        return out;
      });
}

Result<void> checkCertificate(const Certificate& c, std::string_view appId,
                              const Ed25519Key& peerKey, std::int64_t now, std::int64_t skew,
                              const Revocations* revocations) {
  auto denied = [](std::string message) { return Error(Errc::Denied, std::move(message)); };
  if (c.appId != appId) return denied("certificate: issued for another app");
  if (sodium_memcmp(c.peerKey.data(), peerKey.data(), peerKey.size()) != 0) {
    return denied("certificate: issued to another device key than the handshake proved");
  }
  if (now > c.expiresAt + skew) {
    return denied(fmt::format("certificate: expired {} s ago", now - c.expiresAt));
  }
  if (now + skew < c.issuedAt) return denied("certificate: issued in the future");
  if (revocations != nullptr && revocations->revoked(c.serial)) {
    return denied(fmt::format("certificate: serial {} is revoked", c.serial));
  }
  return {};
}

Bytes encodeHello(const Hello& hello) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<wire::Hello>();
  if (const auto* certificate = std::get_if<Bytes>(&hello.body)) {
    root.setCertificate(blob(*certificate));
  } else {
    const auto& login = std::get<Login>(hello.body);
    auto l = root.initLogin();
    l.setProvider(text(login.provider));
    l.setToken(blob(login.token));
  }
  if (hello.revocations) root.setRevocations(blob(*hello.revocations));
  return canonicalBytes<wire::Hello>(builder);
}

Result<Hello> decodeHello(ByteView bytes) {
  return readMessage<wire::Hello>(
      bytes, kMaxHelloBytes, "hello", false, [](wire::Hello::Reader r) -> Result<Hello> {
        Hello out;
        switch (r.which()) {
          case wire::Hello::CERTIFICATE: {
            auto certificate = readBlob(r.hasCertificate(), r.getCertificate(),
                                        kMaxCertificateBytes, "hello.certificate");
            if (!certificate) return std::move(certificate).error();
            out.body = std::move(*certificate);
            break;
          }
          case wire::Hello::LOGIN: {
            const auto l = r.getLogin();
            auto provider = readText(l.hasProvider(), l.getProvider(), kMaxProviderNameBytes,
                                     "hello.login.provider");
            if (!provider) return std::move(provider).error();
            auto token =
                readBlob(l.hasToken(), l.getToken(), kMaxTokenBytes, "hello.login.token");
            if (!token) return std::move(token).error();
            out.body = Login{.provider = std::move(*provider), .token = std::move(*token)};
            break;
          }
          default:
            return Error(Errc::Unsupported, "hello: a kind this node does not know");
        }
        if (r.hasRevocations()) {
          auto revocations = readBlob(true, r.getRevocations(), kMaxRevocationsBytes,
                                      "hello.revocations");
          if (!revocations) return std::move(revocations).error();
          out.revocations = std::move(*revocations);
        }
        return out;
      });
}

Bytes encodeLoginAnswer(const LoginAnswer& answer) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<wire::LoginAnswer>();
  if (const auto* certificate = std::get_if<Bytes>(&answer.body)) {
    root.setCertificate(blob(*certificate));
  } else {
    root.setRefused(text(std::get<std::string>(answer.body)));
  }
  if (answer.clientInfo) root.setClientInfo(text(*answer.clientInfo));
  return canonicalBytes<wire::LoginAnswer>(builder);
}

Result<LoginAnswer> decodeLoginAnswer(ByteView bytes) {
  return readMessage<wire::LoginAnswer>(
      bytes, kMaxCertificateBytes + kMaxClientInfoBytes + 1024, "login answer", false,
      [](wire::LoginAnswer::Reader r) -> Result<LoginAnswer> {
        LoginAnswer out;
        switch (r.which()) {
          case wire::LoginAnswer::CERTIFICATE: {
            auto certificate = readBlob(r.hasCertificate(), r.getCertificate(),
                                        kMaxCertificateBytes, "answer.certificate");
            if (!certificate) return std::move(certificate).error();
            out.body = std::move(*certificate);
            break;
          }
          case wire::LoginAnswer::REFUSED: {
            auto why = readText(r.hasRefused(), r.getRefused(), 1024, "answer.refused");
            if (!why) return std::move(why).error();
            out.body = std::move(*why);
            break;
          }
          default:
            return Error(Errc::Unsupported, "login answer: a kind this node does not know");
        }
        if (r.hasClientInfo()) {
          const std::string_view info = view(r.getClientInfo());
          if (info.size() > kMaxClientInfoBytes) {
            return malformed("answer.clientInfo: over 4 KiB");
          }
          out.clientInfo = std::string(info);
        }
        return out;
      });
}

Bytes encodeNotice(const Notice& notice) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<wire::Notice>();
  root.setRevocations(blob(notice.revocations));
  return canonicalBytes<wire::Notice>(builder);
}

Result<Notice> decodeNotice(ByteView bytes) {
  return readMessage<wire::Notice>(
      bytes, kMaxRevocationsBytes + 1024, "notice", false,
      [](wire::Notice::Reader r) -> Result<Notice> {
        auto revocations = readBlob(r.hasRevocations(), r.getRevocations(),
                                    kMaxRevocationsBytes, "notice.revocations");
        if (!revocations) return std::move(revocations).error();
        return Notice{.revocations = std::move(*revocations)};
      });
}

NetworkKey networkKeyOf(std::string_view appId) {
  std::array<std::uint8_t, NetworkKey::kSize> key{};
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, key.size());
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(kNetworkKeyTag.data()),
                            kNetworkKeyTag.size());
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(appId.data()),
                            appId.size());
  crypto_generichash_final(&state, key.data(), key.size());
  return NetworkKey::fromBytes(key).value();  // 32 bytes: cannot fail
}

}  // namespace portcullis::online
