// The `shared-key` plugin as a deployment loads it: by name, through ProviderRegistry, from the
// folder meson built libportcullis-auth-shared-key.so in (SHARED_KEY_PLUGIN_DIR); and the ABI
// fingerprint both sides compare.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>

#include "portcullis/config.h"
#include "portcullis/provider_registry.h"
#include "portcullis/secret_handshake.h"

namespace portcullis {
namespace {

const std::filesystem::path kPluginDir = SHARED_KEY_PLUGIN_DIR;
const std::filesystem::path kPluginFile = kPluginDir / "libportcullis-auth-shared-key.so";

struct TempDir {
  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("shared_key_plugin_test_" + std::to_string(::getpid()) + "_" +
            std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path path;
};

// A config file for the plugin with device key `seed` and `networkKey`; returns its path.
std::filesystem::path writeConfig(const TempDir& dir, const std::string& networkKey,
                                  std::string* deviceHex = nullptr) {
  auto key = DeviceKey::fromSeed(Bytes(DeviceKey::kSeedSize, 9));
  EXPECT_TRUE(key->save((dir.path / "device.key").string()));
  if (deviceHex) *deviceHex = key->publicKeyHex();
  const auto file = dir.path / "node.toml";
  std::ofstream(file) << "[auth]\nprovider = \"shared-key\"\n[auth.shared-key]\nnetwork-key = \""
                      << networkKey << "\"\nidentity = \"device.key\"\n";
  return file;
}

TEST(SharedKeyPlugin, TheRegistryLoadsItByNameAndMakesAProviderFromAConfig) {
  TempDir dir;
  std::string deviceHex;
  auto root = loadConfigFile(writeConfig(dir, std::string(64, '5'), &deviceHex));
  ASSERT_TRUE(root) << root.error().message();
  ProviderRegistry registry;
  ASSERT_TRUE(registerBuiltinProviders(registry));
  // The first folder has no plugin; the second is the build's.
  auto provider = registry.createFromConfig(*root, {dir.path, kPluginDir});
  ASSERT_TRUE(provider) << provider.error().message();
  EXPECT_EQ((*provider)->name(), "shared-key");
  ASSERT_TRUE((*provider)->localPeer());
  EXPECT_EQ((*provider)->localPeer()->str(), deviceHex);
  EXPECT_EQ(registry.names(), (std::vector<std::string>{"open", "shared-key"}));
  // Registered now: found again without the search path.
  EXPECT_TRUE(registry.get("shared-key", {}));
}

TEST(SharedKeyPlugin, AConfigItRefusesStopsStartUpWithFileLineAndKey) {
  TempDir dir;
  const auto file = writeConfig(dir, "not-a-key");
  auto root = loadConfigFile(file);
  ASSERT_TRUE(root) << root.error().message();
  ProviderRegistry registry;
  auto provider = registry.createFromConfig(*root, {kPluginDir});
  ASSERT_FALSE(provider);
  EXPECT_EQ(provider.error().code(), Errc::Config);
  EXPECT_EQ(provider.error().message().rfind(file.string() + ":4: auth.shared-key.network-key: ",
                                             0), 0u)
      << provider.error().message();
}

TEST(SharedKeyPlugin, AnUnknownNameFailsClosedEvenWithThePluginFolderOnThePath) {
  ProviderRegistry registry;
  auto factory = registry.get("shared-keys", {kPluginDir});
  ASSERT_FALSE(factory);
  EXPECT_EQ(factory.error().code(), Errc::Config);
  EXPECT_TRUE(registry.names().empty());
}

TEST(SharedKeyPlugin, ItExportsOnlyItsEntryWithTheNameAndOurFingerprint) {
  void* handle = ::dlopen(kPluginFile.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  ASSERT_NE(handle, nullptr) << ::dlerror();
  using EntryFn = const ProviderPluginEntry* (*)() noexcept;
  auto entryFn = reinterpret_cast<EntryFn>(::dlsym(handle, "portcullis_provider_entry"));
  ASSERT_NE(entryFn, nullptr);
  const ProviderPluginEntry* entry = entryFn();
  EXPECT_STREQ(entry->name, "shared-key");
  EXPECT_STREQ(entry->abiFingerprint, PORTCULLIS_ABI_FINGERPRINT);
  // The static library's registerProvider is linked in, hidden.
  EXPECT_EQ(::dlsym(handle, "_ZN10portcullis9sharedkey16registerProviderERNS_16ProviderRegistryE"),
            nullptr);
  ::dlclose(handle);
}

TEST(ProviderAbi, TheFingerprintNamesTheAbiVersionCompilerBoostAndCapnp) {
  const std::string fingerprint = PORTCULLIS_ABI_FINGERPRINT;
  EXPECT_TRUE(std::regex_match(
      fingerprint, std::regex(R"(portcullis [0-9]+\.[0-9]+; g\+\+ [0-9]+\.[0-9]+\.[0-9]+[^;]*; )"
                              R"(boost [0-9]+_[0-9]+; capnp [0-9]+\.[0-9]+\.[0-9]+)")))
      << fingerprint;
  EXPECT_EQ(fingerprint.rfind("portcullis " PORTCULLIS_ABI_VERSION "; g++ " __VERSION__ "; ", 0), 0u)
      << fingerprint;
  EXPECT_NE(fingerprint.find("; boost " BOOST_LIB_VERSION "; "), std::string::npos) << fingerprint;
  const std::string capnp = "; capnp " + std::to_string(CAPNP_VERSION_MAJOR) + "." +
                            std::to_string(CAPNP_VERSION_MINOR) + "." +
                            std::to_string(CAPNP_VERSION_MICRO);
  EXPECT_TRUE(fingerprint.ends_with(capnp)) << fingerprint;
  EXPECT_EQ(std::string(PORTCULLIS_ABI_VERSION), "0.1");
}

}  // namespace
}  // namespace portcullis
