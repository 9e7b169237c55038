// The `shared-key` plugin as a deployment loads it: by name, through ProviderRegistry, from the
// folder meson built libportcullis-auth-shared-key.so in (SHARED_KEY_PLUGIN_DIR); and the ABI
// fingerprint both sides compare.
#include <capnp/common.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "portcullis/config.h"
#include "portcullis/provider_registry.h"
#include "portcullis/secret_handshake.h"
#include "storage_test_support.h"

namespace portcullis {
namespace {

const std::filesystem::path kPluginDir = SHARED_KEY_PLUGIN_DIR;
const std::filesystem::path kPluginFile = kPluginDir / "libportcullis-auth-shared-key.so";

// A config file for the plugin with device key `seed` and `networkKey`; returns its path.
std::filesystem::path writeConfig(const test::TempDir& dir, const std::string& networkKey,
                                  std::string* deviceHex = nullptr) {
  auto key = DeviceKey::fromSeed(Bytes(DeviceKey::kSeedSize, 9));
  EXPECT_TRUE(key->save((dir.path() / "device.key").string()));
  if (deviceHex) *deviceHex = key->publicKeyHex();
  const auto file = dir.path() / "node.toml";
  std::ofstream(file) << "[auth]\nprovider = \"shared-key\"\n[auth.shared-key]\nnetwork-key = \""
                      << networkKey << "\"\nidentity = \"device.key\"\n";
  return file;
}

TEST(SharedKeyPlugin, TheRegistryLoadsItByNameAndMakesAProviderFromAConfig) {
  test::TempDir dir;
  std::string deviceHex;
  auto root = loadConfigFile(writeConfig(dir, std::string(64, '5'), &deviceHex));
  ASSERT_TRUE(root) << root.error().message();
  ProviderRegistry registry;
  ASSERT_TRUE(registerBuiltinProviders(registry));
  // The first folder has no plugin; the second is the build's.
  auto provider = registry.createFromConfig(*root, {dir.path(), kPluginDir});
  ASSERT_TRUE(provider) << provider.error().message();
  EXPECT_EQ((*provider)->name(), "shared-key");
  ASSERT_TRUE((*provider)->localPeer());
  EXPECT_EQ((*provider)->localPeer()->str(), deviceHex);
  EXPECT_EQ(registry.names(), (std::vector<std::string>{"open", "shared-key"}));
  // Registered now: found again without the search path.
  EXPECT_TRUE(registry.get("shared-key", {}));
}

TEST(SharedKeyPlugin, AConfigItRefusesStopsStartUpWithFileLineAndKey) {
  test::TempDir dir;
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

// The loader's reject paths, with plugins broken on purpose (tests/plugins/).
const std::filesystem::path kBadPluginDir = BAD_PLUGIN_DIR;

TEST(PluginLoader, ASharedObjectWithoutTheEntryPointIsRefused) {
  ProviderRegistry registry;
  auto factory = registry.get("no-entry", {kBadPluginDir});
  ASSERT_FALSE(factory);
  EXPECT_EQ(factory.error().code(), Errc::Config);
  EXPECT_EQ(factory.error().message(),
            (kBadPluginDir / "libportcullis-auth-no-entry.so").string() +
                ": not a portcullis provider plugin (no portcullis_provider_entry)");
  EXPECT_TRUE(registry.names().empty());
}

TEST(PluginLoader, APluginThatRegistersAnotherNameIsRefusedForTheNameAskedFor) {
  ProviderRegistry registry;
  auto factory = registry.get("misnamed", {kBadPluginDir});
  ASSERT_FALSE(factory);
  EXPECT_EQ(factory.error().message(),
            (kBadPluginDir / "libportcullis-auth-misnamed.so").string() +
                ": the plugin does not provide 'misnamed'");
}

TEST(PluginLoader, APluginWhoseNameIsTakenIsRefused) {
  ProviderRegistry registry;
  const auto file = kBadPluginDir / "libportcullis-auth-misnamed.so";
  ASSERT_TRUE(registry.loadPlugin(file));
  EXPECT_EQ(registry.names(), std::vector<std::string>{"other-name"});
  auto again = registry.loadPlugin(file);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message(),
            file.string() + ": provider 'other-name': the provider refused to register");
}

TEST(PluginLoader, AMissingFileIsRefusedWithTheLoadersReason) {
  ProviderRegistry registry;
  auto loaded = registry.loadPlugin(kBadPluginDir / "libportcullis-auth-absent.so");
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find(": cannot load: "), std::string::npos)
      << loaded.error().message();
}

TEST(PluginLoader, APluginBuiltByAnotherMinorOrPatchReleaseOfTheCompilerIsAccepted) {
  ProviderRegistry registry;
  auto factory = registry.get("same-major", {kBadPluginDir});
  ASSERT_TRUE(factory) << factory.error().message();
  EXPECT_EQ((*factory)->name(), "same-major");
}

TEST(PluginLoader, APluginBuiltByAnotherMajorVersionOfTheCompilerIsRefused) {
  ProviderRegistry registry;
  const auto file = kBadPluginDir / "libportcullis-auth-next-major.so";
  auto factory = registry.get("next-major", {kBadPluginDir});
  ASSERT_FALSE(factory);
  EXPECT_EQ(factory.error().code(), Errc::Config);
  const std::string next = std::string(PORTCULLIS_ABI_COMPILER_NAME " ") +
                           std::to_string(PORTCULLIS_ABI_COMPILER_MAJOR + 1) + "; ";
  EXPECT_EQ(factory.error().message().rfind(file.string() + ": ABI mismatch: the plugin was "
                                            "built for \"", 0), 0u)
      << factory.error().message();
  EXPECT_NE(factory.error().message().find(next), std::string::npos) << factory.error().message();
  EXPECT_NE(factory.error().message().find("this program is \"" PORTCULLIS_ABI_FINGERPRINT "\""),
            std::string::npos)
      << factory.error().message();
  EXPECT_TRUE(registry.names().empty());
}

TEST(ProviderAbi, TheFingerprintNamesReleaseCompilerMajorStdlibBoostAndCapnp) {
  const std::string fingerprint = PORTCULLIS_ABI_FINGERPRINT;
#if defined(__clang__)
  const std::string compiler = "clang++ " + std::to_string(__clang_major__);
#else
  const std::string compiler = "g++ " + std::to_string(__GNUC__);
#endif
  const std::string expected =
      "portcullis " PORTCULLIS_VERSION " abi 0.5; " + compiler + "; libstdc++ " +
      std::to_string(_GLIBCXX_RELEASE) + (_GLIBCXX_USE_CXX11_ABI ? " cxx11" : " pre-cxx11") +
      "; boost " BOOST_LIB_VERSION "; capnp " + std::to_string(CAPNP_VERSION_MAJOR) + "." +
      std::to_string(CAPNP_VERSION_MINOR) + "." + std::to_string(CAPNP_VERSION_MICRO);
  EXPECT_EQ(fingerprint, expected);  // 0.5: AuthProvider::advertisedAddress
  // Only the major version: the compiler's full version string is not in it.
  EXPECT_EQ(fingerprint.find(__VERSION__), std::string::npos) << fingerprint;
}

}  // namespace
}  // namespace portcullis
