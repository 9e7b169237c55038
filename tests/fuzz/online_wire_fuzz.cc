// Fuzz target: the online provider's wire forms (providers/online/certificate.h), every decoder a
// peer or an identity service feeds: the session's Hello, the LoginAnswer a device reads, the
// Notice that carries revocation lists, and the Signed certificates and revocation lists inside
// them, with their bodies.
//
// Input: one flags byte, then bytes B.
//   flags & 3 == 0: B is a message: decodeHello, decodeLoginAnswer and decodeNotice read it, and
//                   openCertificate and openRevocations read it as a Signed envelope;
//   flags & 3 == 1: B is a certificate body, signed here with the trusted key (so that fuzzed
//                   bodies get past the signature), then opened;
//   flags & 3 == 2: B is a revocation list body, signed the same way, then opened;
//   flags & 3 == 3: as 1, but signed with an untrusted key (must be Denied, never opened).
//
// Invariants, beyond "no crash, no leak, no hang":
//   * no decoder throws; errors are Malformed, Unsupported or (signatures) Denied only;
//   * an accepted message encodes and decodes again to an equal one;
//   * an accepted certificate keeps every bound (printable text, roles, permission entries,
//     expiresAt after issuedAt), re-signs and re-opens equal; a certificate body signed for a
//     revocation list never opens as a certificate, nor the other way round;
//   * an accepted revocation list has strictly ascending serials and re-signs and re-opens equal.
#include <sodium.h>

#include "certificate.h"
#include "core_fuzz_support.h"

namespace portcullis::fuzz {
namespace {

constexpr const char* kTarget = "online_wire_fuzz";

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

void checkError(const Error& e, std::string_view what) {
  check(e.code() == Errc::Malformed || e.code() == Errc::Unsupported ||
            e.code() == Errc::Denied,
        std::string(what) + ": an unexpected error code");
}

struct Keys {
  DeviceKey trusted = DeviceKey::fromSeed(Bytes(32, 0x11)).value();
  DeviceKey untrusted = DeviceKey::fromSeed(Bytes(32, 0x22)).value();
  std::vector<online::Ed25519Key> list{trusted.publicKey().bytes()};
};

const Keys& keys() {
  static const Keys k;
  return k;
}

void checkCertificate(const online::Certificate& c) {
  check(online::printableText(c.appId, online::kMaxAppIdBytes), "appId bound");
  check(online::printableText(c.userId, online::kMaxUserIdBytes), "userId bound");
  check(c.roles.size() <= online::kMaxRoles, "roles bound");
  for (const auto& r : c.roles) check(online::printableText(r, online::kMaxRoleBytes), "role");
  check(static_cast<bool>(online::checkPermissions(c.permissions)), "permissions");
  check(c.expiresAt > c.issuedAt, "expiresAt after issuedAt");
  auto again = online::openCertificate(online::signCertificate(c, keys().trusted), keys().list);
  check(again && *again == c, "a certificate re-signed opens equal");
}

void checkRevocations(const online::Revocations& r) {
  for (std::size_t i = 1; i < r.serials.size(); ++i) {
    check(r.serials[i - 1] < r.serials[i], "serials strictly ascending");
  }
  auto again = online::openRevocations(online::signRevocations(r, keys().trusted), keys().list);
  check(again && *again == r, "a revocation list re-signed opens equal");
}

void messages(ByteView b) {
  if (auto hello = online::decodeHello(b); hello) {
    auto again = online::decodeHello(online::encodeHello(*hello));
    check(again && again->body == hello->body && again->revocations == hello->revocations,
          "hello round trip");
  } else {
    checkError(hello.error(), "hello");
  }
  if (auto answer = online::decodeLoginAnswer(b); answer) {
    auto again = online::decodeLoginAnswer(online::encodeLoginAnswer(*answer));
    check(again && again->body == answer->body && again->clientInfo == answer->clientInfo,
          "login answer round trip");
  } else {
    checkError(answer.error(), "login answer");
  }
  if (auto notice = online::decodeNotice(b); notice) {
    auto again = online::decodeNotice(online::encodeNotice(*notice));
    check(again && again->revocations == notice->revocations, "notice round trip");
  } else {
    checkError(notice.error(), "notice");
  }
  if (auto c = online::openCertificate(b, keys().list); c) {
    checkCertificate(*c);
  } else {
    checkError(c.error(), "certificate");
  }
  if (auto r = online::openRevocations(b, keys().list); r) {
    checkRevocations(*r);
  } else {
    checkError(r.error(), "revocations");
  }
}

void run(ByteView input) {
  Reader in(input);
  const std::uint8_t flags = in.byte();
  const ByteView body = in.rest();
  switch (flags & 3) {
    case 0:
      messages(body);
      return;
    case 1: {
      const Bytes signed_ = online::signBody(body, online::SignedKind::Certificate, keys().trusted);
      check(!online::openRevocations(signed_, keys().list), "a certificate opened as revocations");
      if (auto c = online::openCertificate(signed_, keys().list); c) {
        checkCertificate(*c);
      } else {
        checkError(c.error(), "certificate body");
      }
      return;
    }
    case 2: {
      const Bytes signed_ = online::signBody(body, online::SignedKind::Revocations, keys().trusted);
      check(!online::openCertificate(signed_, keys().list), "revocations opened as a certificate");
      if (auto r = online::openRevocations(signed_, keys().list); r) {
        checkRevocations(*r);
      } else {
        checkError(r.error(), "revocations body");
      }
      return;
    }
    default: {
      const Bytes signed_ =
          online::signBody(body, online::SignedKind::Certificate, keys().untrusted);
      auto c = online::openCertificate(signed_, keys().list);
      check(!c, "a certificate of an untrusted signer opened");
      checkError(c.error(), "untrusted");
      return;
    }
  }
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("online_wire_fuzz", "sodium_init failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("online_wire_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
