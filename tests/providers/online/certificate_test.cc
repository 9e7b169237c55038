// The online provider's wire forms (providers/online/certificate.h): certificates and revocation
// lists open only when a trusted key signed exactly these bytes for their purpose; every field
// rule has its reject; messages round-trip and refuse truncation.
#include "certificate.h"

#include <gtest/gtest.h>
#include <sodium.h>

namespace portcullis::online {
namespace {

constexpr std::string_view kApp = "com.example.notes";

class OnlineCertificate : public ::testing::Test {
 protected:
  Certificate sample() const {
    return Certificate{.appId = std::string(kApp),
                       .peerKey = device.publicKey().bytes(),
                       .userId = "alice@example.com",
                       .roles = {"editor", "member"},
                       .permissions = {.read = {"*"}, .write = {DocumentId::random().toString()}},
                       .issuedAt = 1'800'000'000,
                       .expiresAt = 1'800'086'400,
                       .serial = 0x0123456789abcdefULL};
  }
  std::vector<Ed25519Key> trusted() const { return {service.publicKey().bytes()}; }

  DeviceKey service = DeviceKey::generate();
  DeviceKey device = DeviceKey::generate();
};

TEST_F(OnlineCertificate, SignedAndOpenedIsTheSame) {
  const Certificate c = sample();
  auto opened = openCertificate(signCertificate(c, service), trusted());
  ASSERT_TRUE(opened) << opened.error().message();
  EXPECT_EQ(*opened, c);
  // Deterministic: the same certificate signs to the same bytes (Ed25519, canonical capnp).
  EXPECT_EQ(signCertificate(c, service), signCertificate(c, service));
}

TEST_F(OnlineCertificate, AnUntrustedSignerIsDeniedEvenWithAValidSignature) {
  DeviceKey other = DeviceKey::generate();
  auto opened = openCertificate(signCertificate(sample(), other), trusted());
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code(), Errc::Denied);
  // A rotated list trusts both.
  std::vector<Ed25519Key> both = trusted();
  both.push_back(other.publicKey().bytes());
  EXPECT_TRUE(openCertificate(signCertificate(sample(), other), both));
}

TEST_F(OnlineCertificate, EveryTruncationAndEveryBitFlipIsRefused) {
  const Bytes good = signCertificate(sample(), service);
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(openCertificate(ByteView(good.data(), n), trusted())) << "prefix " << n;
  }
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; bit += 3) {
      Bytes bad = good;
      bad[i] ^= static_cast<std::uint8_t>(1u << bit);
      EXPECT_FALSE(openCertificate(bad, trusted())) << "byte " << i << " bit " << bit;
    }
  }
}

TEST_F(OnlineCertificate, ARevocationListIsNotACertificateNorTheOtherWayRound) {
  // Domain separation: the signature covers the purpose as well as the bytes.
  const Revocations list{.appId = std::string(kApp), .sequence = 1, .issuedAt = 1, .serials = {}};
  EXPECT_FALSE(openCertificate(signRevocations(list, service), trusted()));
  EXPECT_FALSE(openRevocations(signCertificate(sample(), service), trusted()));
  EXPECT_TRUE(openRevocations(signRevocations(list, service), trusted()));
}

TEST_F(OnlineCertificate, FieldRulesAreChecked) {
  auto refused = [&](Certificate c) {
    auto opened = openCertificate(signCertificate(c, service), trusted());
    return !opened && opened.error().code() == Errc::Malformed;
  };
  Certificate c = sample();
  c.userId = "";
  EXPECT_TRUE(refused(c));
  c = sample();
  c.userId = "tab\there";
  EXPECT_TRUE(refused(c));
  c = sample();
  c.userId = std::string(kMaxUserIdBytes + 1, 'u');
  EXPECT_TRUE(refused(c));
  c = sample();
  c.appId = "";
  EXPECT_TRUE(refused(c));
  c = sample();
  c.roles.assign(kMaxRoles + 1, "r");
  EXPECT_TRUE(refused(c));
  c = sample();
  c.permissions.read = {"not-a-document"};
  EXPECT_TRUE(refused(c));
  c = sample();
  c.expiresAt = c.issuedAt;
  EXPECT_TRUE(refused(c));
}

TEST_F(OnlineCertificate, CheckedAgainstAppKeyTimeAndRevocations) {
  const Certificate c = sample();
  const Ed25519Key key = device.publicKey().bytes();
  const std::int64_t mid = c.issuedAt + 100;
  EXPECT_TRUE(checkCertificate(c, kApp, key, mid, 0, nullptr));
  EXPECT_FALSE(checkCertificate(c, "com.other", key, mid, 0, nullptr));
  Ed25519Key other = key;
  other[0] ^= 1;
  EXPECT_FALSE(checkCertificate(c, kApp, other, mid, 0, nullptr));
  // Expiry, with and without skew, at both edges.
  EXPECT_TRUE(checkCertificate(c, kApp, key, c.expiresAt, 0, nullptr));
  EXPECT_FALSE(checkCertificate(c, kApp, key, c.expiresAt + 1, 0, nullptr));
  EXPECT_TRUE(checkCertificate(c, kApp, key, c.expiresAt + 60, 60, nullptr));
  EXPECT_FALSE(checkCertificate(c, kApp, key, c.expiresAt + 61, 60, nullptr));
  EXPECT_FALSE(checkCertificate(c, kApp, key, c.issuedAt - 1, 0, nullptr));
  EXPECT_TRUE(checkCertificate(c, kApp, key, c.issuedAt - 60, 60, nullptr));
  const Revocations list{.appId = std::string(kApp), .sequence = 3, .issuedAt = mid,
                         .serials = {1, c.serial, c.serial + 1}};
  auto revoked = checkCertificate(c, kApp, key, mid, 0, &list);
  ASSERT_FALSE(revoked);
  EXPECT_NE(revoked.error().message().find("revoked"), std::string::npos);
  const Revocations others{.appId = std::string(kApp), .sequence = 4, .issuedAt = mid,
                           .serials = {1, 2}};
  EXPECT_TRUE(checkCertificate(c, kApp, key, mid, 0, &others));
}

TEST_F(OnlineCertificate, RevocationSerialsMustBeStrictlyAscending) {
  Revocations list{.appId = std::string(kApp), .sequence = 2, .issuedAt = 5, .serials = {3, 9}};
  auto opened = openRevocations(signRevocations(list, service), trusted());
  ASSERT_TRUE(opened) << opened.error().message();
  EXPECT_EQ(*opened, list);
  list.serials = {9, 3};
  EXPECT_FALSE(openRevocations(signRevocations(list, service), trusted()));
  list.serials = {3, 3};
  EXPECT_FALSE(openRevocations(signRevocations(list, service), trusted()));
}

TEST_F(OnlineCertificate, MessagesRoundTripAndRefuseTruncation) {
  const Bytes cert = signCertificate(sample(), service);
  const Hello peer{.body = cert, .revocations = Bytes(40, 1)};
  const Hello login{.body = Login{.provider = "corp", .token = Bytes(100, 'x')},
                    .revocations = std::nullopt};
  for (const Hello& hello : {peer, login}) {
    const Bytes bytes = encodeHello(hello);
    auto back = decodeHello(bytes);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(back->body, hello.body);
    EXPECT_EQ(back->revocations, hello.revocations);
    for (std::size_t n = 0; n < bytes.size(); n += 8) {
      EXPECT_FALSE(decodeHello(ByteView(bytes.data(), n))) << "prefix " << n;
    }
  }
  const LoginAnswer issued{.body = cert, .clientInfo = "{\"plan\":\"pro\"}"};
  const LoginAnswer refused{.body = std::string("no"), .clientInfo = std::nullopt};
  for (const LoginAnswer& answer : {issued, refused}) {
    auto back = decodeLoginAnswer(encodeLoginAnswer(answer));
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(back->body, answer.body);
    EXPECT_EQ(back->clientInfo, answer.clientInfo);
  }
  auto notice = decodeNotice(encodeNotice({.revocations = Bytes(16, 2)}));
  ASSERT_TRUE(notice);
  EXPECT_EQ(notice->revocations, Bytes(16, 2));
}

TEST_F(OnlineCertificate, MessageBoundsAreEnforced) {
  const Hello big{.body = Login{.provider = "corp", .token = Bytes(kMaxTokenBytes + 1, 'x')},
                  .revocations = std::nullopt};
  EXPECT_FALSE(decodeHello(encodeHello(big)));
  const Hello badName{.body = Login{.provider = "has space\n", .token = Bytes(1, 'x')},
                      .revocations = std::nullopt};
  EXPECT_FALSE(decodeHello(encodeHello(badName)));
  const Hello empty{.body = Bytes{}, .revocations = std::nullopt};
  EXPECT_FALSE(decodeHello(encodeHello(empty)));
  EXPECT_FALSE(decodeHello(Bytes(kMaxHelloBytes + 8, 0)));
}

TEST_F(OnlineCertificate, TheNetworkKeyDependsOnTheApp) {
  EXPECT_FALSE(sodium_memcmp(networkKeyOf("a").key().data(), networkKeyOf("a").key().data(), 32));
  EXPECT_TRUE(sodium_memcmp(networkKeyOf("a").key().data(), networkKeyOf("b").key().data(), 32));
}

}  // namespace
}  // namespace portcullis::online
