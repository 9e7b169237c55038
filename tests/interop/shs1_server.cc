// The server side of the shs1-test suite's stdin/stdout contract (its README):
//   shs1_server NETWORK_KEY_HEX SERVER_SECRET_KEY_HEX SERVER_PUBLIC_KEY_HEX
// reads message 1 (64 bytes), writes message 2, reads message 3 (112 bytes), then writes message 4
// followed by its session keys: encrypt key, encrypt nonce, decrypt key, decrypt nonce (192 bytes
// in all). Each message is one write(2), since the suite takes each chunk of output for one
// message. On bad input it exits with status 1 and writes nothing more; bad arguments give 2.
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string_view>

#include "portcullis/secret_handshake.h"
#include "shs1_io.h"

int main(int argc, char** argv) {
  using namespace portcullis;
  if (sodium_init() < 0) return 2;
  if (argc != 4) {
    std::fputs("usage: shs1_server NETWORK_KEY_HEX SERVER_SECRET_KEY_HEX SERVER_PUBLIC_KEY_HEX\n",
                stderr);
    return 2;
  }
  auto network = NetworkKey::parse(argv[1]);
  SecretKey<DeviceKey::kSecretKeySize> secret;
  if (!network || !shs1io::fromHex(argv[2], secret.span())) return 2;
  auto identity = DeviceKey::fromSeed(secret.span().first<DeviceKey::kSeedSize>());
  if (!identity || identity->publicKeyHex() != std::string_view(argv[3])) return 2;

  ShsServer server(*network, *identity);
  std::array<std::uint8_t, kShsHelloBytes> msg1{};
  if (!shs1io::readAll(msg1) || !server.verifyClientHello(msg1)) return 1;
  if (!shs1io::writeOnce(server.hello())) return 1;
  std::array<std::uint8_t, kShsAuthenticateBytes> msg3{};
  if (!shs1io::readAll(msg3) || !server.verifyAuthenticate(msg3)) return 1;
  auto accepted = server.accept();
  SecretKey<kShsAcceptBytes + 2 * (32 + kBoxStreamNonceBytes)> out;
  shs1io::Writer(out.span())
      .put(accepted.message)
      .put(accepted.session.encryptKey.span())
      .put(accepted.session.encryptNonce)
      .put(accepted.session.decryptKey.span())
      .put(accepted.session.decryptNonce);
  return shs1io::writeOnce(out.span()) ? 0 : 1;
}
