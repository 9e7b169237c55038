// keygen.cc — `portcullis keygen --out FILE`: a new device identity (an Ed25519 key pair) in a
// file of mode 0600 that is never overwritten; prints the public key as 64 hex characters.

#include <nlohmann/json.hpp>

#include <cstdio>

#include "portcullis/secret_handshake.h"
#include "tool.h"

namespace portcullis::tool {

int runKeygen(const KeygenArgs& args) {
  setupLogging(args.logLevel, "error");
  DeviceKey key = DeviceKey::generate();
  auto saved = key.save(args.out);
  if (!saved) return failWith(kExitFailed, saved.error().message());
  if (args.json) {
    nlohmann::json out{{"public", key.publicKeyHex()}, {"id", key.publicKey().toSsbId()},
                       {"file", args.out}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("%s\n", key.publicKeyHex().c_str());
  }
  return kExitOk;
}

}  // namespace portcullis::tool
