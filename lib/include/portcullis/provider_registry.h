// portcullis/provider_registry.h — auth providers by name: registered directly or loaded as
// plugins (architecture §8).
//
// A deployment names its provider in its config file (`[auth] provider = "shared-key"`) and
// configures it in the provider's own table (`[auth.shared-key]`). The registry maps the name to
// a factory; a name it does not have is loaded from `libportcullis-auth-<name>.so` on the plugin
// search path. An unknown name, a failed load, an ABI mismatch or a config the factory refuses
// is an error that stops start-up: nothing ever falls back to "no auth".
//
// A ProviderRegistry is an object owned by main() or a test, never a global. Not thread-safe;
// fill it at start-up.
#pragma once

#include <boost/version.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/abi_config.h"
#include "portcullis/auth_provider.h"
#include "portcullis/config.h"
#include "portcullis/export.h"
#include "portcullis/result.h"

namespace portcullis {

// Makes providers of one kind from their config table.
class AuthProviderFactory {
 public:
  virtual ~AuthProviderFactory() = default;
  // The name written in config files: lower-case letters, digits and '-'.
  virtual std::string_view name() const = 0;
  // Checks `config` (the `[auth.<name>]` table, empty when the file has none) and makes the
  // provider. A config it cannot use is an Errc::Config error made with `config.error(...)`.
  virtual Result<std::unique_ptr<AuthProvider>> create(const ConfigTable& config) const = 0;
};

// What a plugin and the library it is loaded into must agree on, compiled into both and compared
// as strings before anything is registered: the portcullis release and its plugin ABI version;
// the compiler's family and major version (another minor or patch release of it builds the same
// ABI) and the C++ library's release and string ABI; Boost's version, since Asio's types cross
// the interface; and the Cap'n Proto release the library was built with (abi_config.h: public
// headers never include Cap'n Proto, so a plugin takes it from there).
#define PORTCULLIS_ABI_FINGERPRINT                                                          \
  "portcullis " PORTCULLIS_ABI_PROJECT_VERSION " abi " PORTCULLIS_ABI_VERSION "; "          \
  PORTCULLIS_ABI_COMPILER_NAME " " PORTCULLIS_ABI_STR(PORTCULLIS_ABI_COMPILER_MAJOR) "; "   \
  PORTCULLIS_ABI_STDLIB "; boost " BOOST_LIB_VERSION "; capnp " PORTCULLIS_ABI_CAPNP_VERSION
// Bumped whenever a type a plugin sees changes layout or meaning.
#define PORTCULLIS_ABI_VERSION "0.5"
#if defined(__clang__)
#define PORTCULLIS_ABI_COMPILER_NAME "clang++"
#define PORTCULLIS_ABI_COMPILER_MAJOR __clang_major__
#elif defined(__GNUC__)
#define PORTCULLIS_ABI_COMPILER_NAME "g++"
#define PORTCULLIS_ABI_COMPILER_MAJOR __GNUC__
#else
#error "portcullis and its plugins are built with g++ or clang++"
#endif
#if defined(_LIBCPP_VERSION)
#define PORTCULLIS_ABI_STDLIB "libc++ abi " PORTCULLIS_ABI_STR(_LIBCPP_ABI_VERSION)
#elif defined(__GLIBCXX__) && _GLIBCXX_USE_CXX11_ABI
#define PORTCULLIS_ABI_STDLIB "libstdc++ " PORTCULLIS_ABI_STR(_GLIBCXX_RELEASE) " cxx11"
#elif defined(__GLIBCXX__)
#define PORTCULLIS_ABI_STDLIB "libstdc++ " PORTCULLIS_ABI_STR(_GLIBCXX_RELEASE) " pre-cxx11"
#else
#error "portcullis and its plugins are built with libstdc++ or libc++"
#endif
#define PORTCULLIS_ABI_STR2(x) #x
#define PORTCULLIS_ABI_STR(x) PORTCULLIS_ABI_STR2(x)

class ProviderRegistry;

// What a plugin's one exported symbol, `portcullis_provider_entry`, returns.
struct ProviderPluginEntry {
  const char* abiFingerprint;
  const char* name;
  // Registers the plugin's factory. Returns null on success, else a static error text. Never
  // throws (PORTCULLIS_PROVIDER_PLUGIN catches everything).
  const char* (*registerInto)(ProviderRegistry& registry) noexcept;
};

class PORTCULLIS_EXPORT ProviderRegistry {
 public:
  ProviderRegistry();
  ~ProviderRegistry();
  ProviderRegistry(const ProviderRegistry&) = delete;
  ProviderRegistry& operator=(const ProviderRegistry&) = delete;

  // Errc::Config for a duplicate or badly formed name.
  Result<void> add(std::unique_ptr<AuthProviderFactory> factory);
  // Registered names, sorted.
  std::vector<std::string> names() const;

  // The factory for `name`: a registered one, else the plugin `libportcullis-auth-<name>.so`
  // from the first folder of `searchPath` that has it. Errc::Config with a message naming the
  // provider, every folder it looked in and how to add one ($PORTCULLIS_PLUGIN_PATH); or the
  // loader's error; or the two ABI fingerprints. A plugin that is found but fails to load stops
  // the search: a later folder never stands in for it.
  Result<const AuthProviderFactory*> get(std::string_view name,
                                         const std::vector<std::filesystem::path>& searchPath);
  // Loads the plugin at `file` and registers what it holds (for tests and explicit paths).
  Result<void> loadPlugin(const std::filesystem::path& file);

  // `[auth] provider` of `config` made from its table `[auth.<name>]`, with `searchPath` for
  // plugins. A config without an [auth] table gets "open" (a client without a config; a server
  // refuses such a config before it gets here).
  Result<std::unique_ptr<AuthProvider>> createFromConfig(
      const ConfigTable& config, const std::vector<std::filesystem::path>& searchPath);

 private:
  std::map<std::string, std::unique_ptr<AuthProviderFactory>, std::less<>> factories_;
};

// The folder `meson install` puts plugins in: the last folder of every search path.
PORTCULLIS_EXPORT std::filesystem::path installedPluginDir();

// A program's plugin search path: the folders of $PORTCULLIS_PLUGIN_PATH (':'-separated; empty
// entries skipped), then `ownFolders` (the plugin folders that belong to the program itself: its
// build tree's when it runs uninstalled, or the install's found relative to the executable, as
// $ORIGIN finds libraries), then installedPluginDir(). A folder listed twice is kept once, first.
PORTCULLIS_EXPORT std::vector<std::filesystem::path> pluginSearchPath(
    const std::vector<std::filesystem::path>& ownFolders);

// pluginSearchPath({}): $PORTCULLIS_PLUGIN_PATH, then the installed plugin folder.
PORTCULLIS_EXPORT std::vector<std::filesystem::path> defaultPluginSearchPath();

// Registers the providers built into the library: `open`.
PORTCULLIS_EXPORT Result<void> registerBuiltinProviders(ProviderRegistry& registry);

}  // namespace portcullis

// Defines a plugin's entry point. Use once, in the plugin's shared module:
//   PORTCULLIS_PROVIDER_PLUGIN("shared-key", sharedkey::registerProvider)
// where `registerProvider(ProviderRegistry&)` returns Result<void>.
#define PORTCULLIS_PROVIDER_PLUGIN(NAME, REGISTER_FN)                                      \
  extern "C" __attribute__((visibility("default"))) const ::portcullis::ProviderPluginEntry* \
  portcullis_provider_entry() noexcept {                                                    \
    static const ::portcullis::ProviderPluginEntry entry{                                   \
        PORTCULLIS_ABI_FINGERPRINT, NAME,                                                   \
        [](::portcullis::ProviderRegistry& registry) noexcept -> const char* {              \
          try {                                                                             \
            return REGISTER_FN(registry) ? nullptr : "the provider refused to register";    \
          } catch (...) {                                                                   \
            return "the provider threw while registering";                                  \
          }                                                                                 \
        }};                                                                                 \
    return &entry;                                                                          \
  }
