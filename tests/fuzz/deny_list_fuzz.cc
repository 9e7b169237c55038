// Fuzz target: the shared-key provider's deny-list file (providers/shared_key: the `deny` entry of
// the `[auth.shared-key]` table in the deployment's TOML file), as the running provider reads it
// again on SIGHUP (AuthProvider::reload).
//
// Set-up, once: a temporary folder with a device key file (0600) and a config file; the provider
// is made from it through ProviderRegistry::createFromConfig (deny-list {P1, P2}). Each input
// first restores that file and reloads it (which must succeed), then writes the input as the
// config file and reloads again.
//
// Input: the config file's bytes (TOML, at most kMaxBytes: longer inputs are skipped).
//
// Invariants, beyond "no crash, no leak, no hang":
//   * reload never throws; it fails only with Errc::Config, naming the file;
//   * it is all or nothing: after a failed reload the provider refuses exactly the devices of the
//     old list (P1 and P2, not P3, nor any key the input names), at every hook;
//   * after a successful one it refuses exactly the devices the file's `deny` names (each entry a
//     public key as PublicKey::parse reads it: every key named is refused, and P1, P2 and P3 are
//     refused exactly when named), at every hook; a file whose table has keys other than
//     network-key, identity and deny, or a deny entry that is not a key, never reloads.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "core_fuzz_support.h"
#include "portcullis/config.h"
#include "portcullis/provider_registry.h"
#include "shared_key.h"

namespace portcullis::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTarget = "deny_list_fuzz";
constexpr std::size_t kMaxBytes = 64u << 10;

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

// Device keys the probes ask about: P1 and P2 are on the set-up's list, P3 is not.
std::string probeHex(std::uint8_t fill) { return toHex(identityOf(fill).pk); }

struct Setup {
  fs::path dir;
  fs::path config;
  std::string good;
  std::unique_ptr<AuthProvider> provider;
  std::vector<std::string> probes;  // P1, P2, P3 as hex

  Setup() {
    std::string pattern = (fs::temp_directory_path() / "portcullis-deny-fuzz.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) fail(kTarget, "mkdtemp failed");
    dir = pattern;
    config = dir / "node.toml";
    if (!deviceKeyOf(shsKeys().server).save((dir / "device.key").string())) {
      fail(kTarget, "cannot write the device key");
    }
    probes = {probeHex(0xD1), probeHex(0xD2), probeHex(0xD3)};
    // P2 in Scuttlebutt's form: the entries may take either.
    good = "[auth]\nprovider = \"shared-key\"\n[auth.shared-key]\nnetwork-key = \"" +
           toHex(shsKeys().network) + "\"\nidentity = \"device.key\"\ndeny = [\"" + probes[0] +
           "\", \"" + PublicKey::fromBytes(identityOf(0xD2).pk)->toSsbId() + "\"]\n";
    std::ofstream(config, std::ios::binary | std::ios::trunc) << good;
    auto root = loadConfigFile(config);
    if (!root) fail(kTarget, "the set-up config does not parse: " + root.error().message());
    ProviderRegistry registry;
    if (!sharedkey::registerProvider(registry)) fail(kTarget, "cannot register shared-key");
    auto made = registry.createFromConfig(*root, {});
    if (!made) fail(kTarget, "cannot make the provider: " + made.error().message());
    provider = std::move(*made);
  }
  ~Setup() {
    provider.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  Setup(const Setup&) = delete;
  Setup& operator=(const Setup&) = delete;
};

Setup& setup() {
  static Setup s;
  return s;
}

void writeFile(const fs::path& path, ByteView bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  check(out.good(), "cannot write the config file");
}

// Whether the provider refuses the device `hex`, asked at every hook, which must agree.
bool refuses(AuthProvider& provider, const std::string& hex) {
  asio::io_context ctx;
  const PeerIdentity peer{
      .peer = *PeerId::parse(hex), .user = {}, .roles = {}, .provider = "shared-key"};
  const DocumentId doc = *DocumentId::fromBytes(Bytes(DocumentId::kSize, 0x0D));
  const auto send = runToEnd(ctx, provider.okToSend(peer, doc));
  const auto advertise = runToEnd(ctx, provider.okToAdvertise(peer, doc));
  const auto receive = runToEnd(ctx, provider.okToReceive(peer, doc, ChangeBatch{}));
  check(send && advertise && receive, "a hook did not complete");
  check(*send == *advertise && *send == *receive, "the hooks disagree about one device");
  return !*send;
}

// The keys an input's `deny` names, as the spec of the file reads them: nullopt when the file is
// not a config the provider may reload.
std::optional<std::set<std::string>> denyListOf(std::string_view text, const fs::path& file) {
  auto root = parseConfig(text, file);
  if (!root) return std::nullopt;
  auto auth = root->table("auth");
  if (!auth) return std::nullopt;
  auto table = auth->table("shared-key");
  if (!table) return std::nullopt;
  if (!table->expectKeys({"network-key", "identity", "deny"})) return std::nullopt;
  auto entries = table->strings("deny");
  if (!entries) return std::nullopt;
  std::set<std::string> out;
  for (const std::string& e : *entries) {
    auto key = PublicKey::parse(e);
    if (!key) return std::nullopt;
    out.insert(key->toHex());
  }
  return out;
}

void run(ByteView input) {
  if (input.size() > kMaxBytes) return;
  Setup& s = setup();
  AuthProvider& provider = *s.provider;
  writeFile(s.config, viewOf(s.good));
  auto restored = provider.reload();
  check(restored.has_value(), "the set-up's file no longer reloads");
  check(refuses(provider, s.probes[0]) && refuses(provider, s.probes[1]) &&
            !refuses(provider, s.probes[2]),
        "the set-up's deny-list is not in force");

  writeFile(s.config, input);
  auto reloaded = provider.reload();
  const auto model = denyListOf(charsOf(input), s.config);
  if (!reloaded) {
    check(reloaded.error().code() == Errc::Config, "reload failed with another Errc than Config");
    check(reloaded.error().message().find(s.config.string()) != std::string::npos,
          "a failed reload's message does not name the file");
    check(refuses(provider, s.probes[0]) && refuses(provider, s.probes[1]) &&
              !refuses(provider, s.probes[2]),
          "a failed reload changed the deny-list");
    if (model) {
      for (const std::string& hex : *model) {
        check(refuses(provider, hex) == (hex == s.probes[0] || hex == s.probes[1]),
              "a failed reload denies a device the old list does not name");
      }
    }
    return;
  }
  check(model.has_value(), "reload accepted a file whose deny-list does not read");
  for (const std::string& hex : *model)
    check(refuses(provider, hex), "a named device is not refused");
  for (const std::string& hex : s.probes) {
    check(refuses(provider, hex) == model->contains(hex),
          "a device is refused that the new deny-list does not name, or the other way round");
  }
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("deny_list_fuzz", "sodium_init failed");
  spdlog::set_level(spdlog::level::off);  // every reload logs a line
  portcullis::fuzz::guarded("deny_list_fuzz", [] { (void)portcullis::fuzz::setup(); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("deny_list_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
