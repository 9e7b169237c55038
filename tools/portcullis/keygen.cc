// keygen.cc — `portcullis keygen --out FILE`: a new device identity (an Ed25519 key pair) in a
// file of mode 0600 that is never overwritten; prints the public key as 64 hex characters.

#include <nlohmann/json.hpp>

#include <cstdio>

#include "portcullis/secret_handshake.h"
#include "tool.h"

namespace portcullis::tool {

int runKeygen(const KeygenArgs& args) {
  if (!setupLogging(args.logLevel, "error")) {
    printError("unknown --log-level '" + args.logLevel + "'");
    return kExitUsage;
  }
  DeviceKey key = DeviceKey::generate();
  if (auto saved = key.save(args.out); !saved) {
    printError(saved.error().message());
    return kExitFailed;
  }
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
