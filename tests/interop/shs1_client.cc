// The client side of the shs1-test suite's stdin/stdout contract (its README):
//   shs1_client NETWORK_KEY_HEX SERVER_PUBLIC_KEY_HEX
// with a fresh long-term key: writes message 1, reads message 2 (64 bytes), writes message 3,
// reads message 4 (80 bytes), then writes its session keys: encrypt key, encrypt nonce, decrypt
// key, decrypt nonce (112 bytes). Each message is one write(2). On bad input it exits with status 1
// and writes nothing more; bad arguments give 2.
#include <sodium.h>

#include <array>
#include <cstdio>

#include "portcullis/secret_handshake.h"
#include "shs1_io.h"

int main(int argc, char** argv) {
  using namespace portcullis;
  if (sodium_init() < 0) return 2;
  if (argc != 3) {
    std::fputs("usage: shs1_client NETWORK_KEY_HEX SERVER_PUBLIC_KEY_HEX\n", stderr);
    return 2;
  }
  auto network = NetworkKey::parse(argv[1]);
  auto server = PublicKey::parse(argv[2]);
  if (!network || !server) return 2;
  const DeviceKey identity = DeviceKey::generate();

  ShsClient client(*network, identity, *server);
  if (!shs1io::writeOnce(client.hello())) return 1;
  std::array<std::uint8_t, kShsHelloBytes> msg2{};
  if (!shs1io::readAll(msg2) || !client.verifyServerHello(msg2)) return 1;
  if (!shs1io::writeOnce(client.authenticate())) return 1;
  std::array<std::uint8_t, kShsAcceptBytes> msg4{};
  if (!shs1io::readAll(msg4)) return 1;
  auto session = client.verifyAccept(msg4);
  if (!session) return 1;
  SecretKey<2 * (32 + kBoxStreamNonceBytes)> out;
  shs1io::Writer(out.span())
      .put(session->encryptKey.span())
      .put(session->encryptNonce)
      .put(session->decryptKey.span())
      .put(session->decryptNonce);
  return shs1io::writeOnce(out.span()) ? 0 : 1;
}
