// A portcullis node for the JS interop test (run_shared_key_interop, shared_key_interop.mjs): a
// Repo on TCP whose `shared-key` provider is the plugin, loaded by name from
// $PORTCULLIS_PLUGIN_PATH as `portcullis serve` loads it. It is the client against the JS server
// (the JS client meets the real `portcullis serve`):
//
//   shared_key_peer dial NETWORK_KEY WORK_DIR ADDRESS     dials net:HOST:PORT~shs:KEY
//
// It makes a fresh device key in WORK_DIR, writes its config there, creates one document, and
// prints one line per fact on stdout for the script to read (other lines are logs):
//   key <device public key hex>      doc <document ID bytes, hex>
//   authenticated <peer>   (the peer's hello frame was opened, decoded and names the peer the
//                           handshake proved)
//   refused <errc>: <why>
// It runs until killed, or exits 1 after 60 s. Bad arguments or config: exit 2.
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "portcullis/asio.h"
#include "portcullis/config.h"
#include "portcullis/provider_registry.h"
#include "portcullis/repo.h"
#include "portcullis/secret_handshake.h"
#include "tcp_network.h"

namespace {

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int fail(const std::string& why) {
  std::fprintf(stderr, "shared_key_peer: %s\n", why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace portcullis;
  if (sodium_init() < 0) return fail("sodium_init failed");
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "dial" || argc != 5) {
    return fail("usage: shared_key_peer dial NETWORK_KEY WORK_DIR ADDRESS");
  }
  const std::filesystem::path dir = argv[3];
  const DeviceKey device = DeviceKey::generate();
  if (auto saved = device.save((dir / "device.key").string()); !saved) {
    return fail(saved.error().message());
  }
  std::ofstream(dir / "node.toml") << "[auth]\nprovider = \"shared-key\"\n[auth.shared-key]\n"
                                   << "network-key = \"" << argv[2] << "\"\n"
                                   << "identity = \"device.key\"\n";
  auto root = loadConfigFile(dir / "node.toml");
  if (!root) return fail(root.error().message());
  ProviderRegistry registry;
  auto provider = registry.createFromConfig(*root, defaultPluginSearchPath());
  if (!provider) return fail(provider.error().message());

  asio::io_context ctx;
  auto tcp = TcpNetworkAdapter::create(ctx.get_executor(), {.connect = {argv[4]}});
  if (!tcp) return fail(tcp.error().message());
  say("key " + device.publicKeyHex());

  RepoOptions options;
  options.network = {*tcp};
  options.auth = std::shared_ptr<AuthProvider>(std::move(*provider));
  options.events.peerAuthenticated = [](const PeerIdentity& peer) {
    say("authenticated " + peer.peer.str());
  };
  options.events.peerRefused = [](const std::string&, const Error& e) {
    say("refused " + std::string(errcName(e.code())) + ": " + e.message());
  };
  Repo repo(ctx.get_executor(), std::move(options));
  DocHandle doc = repo.create();
  auto changed = doc.change([](Transaction& tx) {
    return tx.put(ObjId::root(), "greeting", ScalarValue(std::string("hello from portcullis")));
  });
  if (!changed) return fail(changed.error().message());
  say("doc " + toHex(doc.id().bytes()));

  int status = 0;
  asio::steady_timer limit(ctx, std::chrono::seconds(60));
  limit.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    say("timeout");
    status = 1;
    ctx.stop();
  });
  ctx.run();
  return status;
}
