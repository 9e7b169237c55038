// provider_registry.cc — factories by name, plugins by dlopen, and the built-in `open` factory.

#include "portcullis/provider_registry.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "detail/log.h"

namespace portcullis {

namespace {

bool validProviderName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

class OpenFactory final : public AuthProviderFactory {
 public:
  std::string_view name() const override { return "open"; }

  Result<std::unique_ptr<AuthProvider>> create(const ConfigTable& config) const override {
    if (auto ok = config.expectKeys({"peer-id"}); !ok) return std::move(ok).error();
    auto claimed = config.string("peer-id");
    if (!claimed) return std::move(claimed).error();
    if (!*claimed) return makeOpenProvider(PeerId::random());
    auto peer = PeerId::parse(**claimed);
    if (!peer) return config.error("peer-id", peer.error().message());
    return makeOpenProvider(*peer);
  }
};

}  // namespace

ProviderRegistry::ProviderRegistry() = default;
ProviderRegistry::~ProviderRegistry() = default;

Result<void> ProviderRegistry::add(std::unique_ptr<AuthProviderFactory> factory) {
  std::string name(factory->name());
  if (!validProviderName(name)) {
    return Error(Errc::Config, fmt::format("auth provider name '{}' is not lower-case letters, "
                                           "digits and '-'", name));
  }
  if (factories_.contains(name)) {
    return Error(Errc::Config, fmt::format("auth provider '{}' is registered twice", name));
  }
  factories_.emplace(std::move(name), std::move(factory));
  return {};
}

std::vector<std::string> ProviderRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

Result<void> ProviderRegistry::loadPlugin(const std::filesystem::path& file) {
  // NODELETE: no factory, provider or vtable can outlive the code it points into.
  void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return Error(Errc::Config, fmt::format("{}: cannot load: {}", file.string(),
                                           why ? why : "unknown error"));
  }
  using EntryFn = const ProviderPluginEntry* (*)() noexcept;
  auto entryFn = reinterpret_cast<EntryFn>(::dlsym(handle, "portcullis_provider_entry"));
  ::dlclose(handle);  // NODELETE keeps it mapped; this only drops our reference.
  if (entryFn == nullptr) {
    return Error(Errc::Config, fmt::format("{}: not a portcullis provider plugin (no "
                                           "portcullis_provider_entry)", file.string()));
  }
  const ProviderPluginEntry* entry = entryFn();
  if (entry == nullptr || entry->abiFingerprint == nullptr || entry->name == nullptr ||
      entry->registerInto == nullptr) {
    return Error(Errc::Config, fmt::format("{}: the plugin's entry is incomplete", file.string()));
  }
  if (std::strcmp(entry->abiFingerprint, PORTCULLIS_ABI_FINGERPRINT) != 0) {
    return Error(Errc::Config,
                 fmt::format("{}: ABI mismatch: the plugin was built for \"{}\", this program is "
                             "\"{}\"; rebuild the plugin", file.string(), entry->abiFingerprint,
                             PORTCULLIS_ABI_FINGERPRINT));
  }
  if (const char* why = entry->registerInto(*this)) {
    return Error(Errc::Config, fmt::format("{}: provider '{}': {}", file.string(), entry->name,
                                           why));
  }
  return {};
}

Result<const AuthProviderFactory*> ProviderRegistry::get(
    std::string_view name, const std::vector<std::filesystem::path>& searchPath) {
  if (auto it = factories_.find(name); it != factories_.end()) return it->second.get();
  if (!validProviderName(name)) {
    return Error(Errc::Config, fmt::format("unknown auth provider '{}'", name));
  }
  std::string fileName = fmt::format("libportcullis-auth-{}.so", name);
  std::vector<std::string> looked;
  for (const auto& dir : searchPath) {
    std::filesystem::path file = dir / fileName;
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
      looked.push_back(dir.string());
      continue;
    }
    if (auto loaded = loadPlugin(file); !loaded) return std::move(loaded).error();
    if (auto it = factories_.find(name); it != factories_.end()) return it->second.get();
    return Error(Errc::Config, fmt::format("{}: the plugin does not provide '{}'", file.string(),
                                           name));
  }
  const std::vector<std::string> builtIn = names();
  return Error(Errc::Config,
               fmt::format("unknown auth provider '{}': no {} in {} (built in: {}); to add a "
                           "folder, set PORTCULLIS_PLUGIN_PATH=DIR[:DIR...]",
                           name, fileName,
                           looked.empty() ? std::string("any folder (the plugin search path is "
                                                        "empty)")
                                          : fmt::format("{}", fmt::join(looked, ", ")),
                           builtIn.empty() ? std::string("none")
                                           : fmt::format("{}", fmt::join(builtIn, ", "))));
}

Result<std::unique_ptr<AuthProvider>> ProviderRegistry::createFromConfig(
    const ConfigTable& config, const std::vector<std::filesystem::path>& searchPath) {
  auto auth = config.table("auth");
  if (!auth) return std::move(auth).error();
  auto name = auth->string("provider");
  if (!name) return std::move(name).error();
  if (!*name) {
    if (config.contains("auth")) {
      return auth->error("provider", "missing (required: the auth provider's name, e.g. "
                                     "\"shared-key\", \"document-id\", \"team\", or \"open\" "
                                     "for development without authentication)");
    }
    detail::logf(LogLevel::Warn, "no [auth] provider configured: using 'open'");
    *name = "open";
  }
  if (auto ok = auth->expectKeys({"provider", std::string_view(**name)}); !ok) {
    return std::move(ok).error();
  }
  auto factory = get(**name, searchPath);
  if (!factory) return auth->error("provider", factory.error().message());
  auto table = auth->table(**name);
  if (!table) return std::move(table).error();
  return (*factory)->create(*table);
}

std::filesystem::path installedPluginDir() { return PORTCULLIS_PLUGIN_DIR; }

std::vector<std::filesystem::path> pluginSearchPath(
    const std::vector<std::filesystem::path>& ownFolders) {
  std::vector<std::filesystem::path> path;
  auto add = [&path](std::filesystem::path dir) {
    dir = dir.lexically_normal();
    if (!dir.has_filename() && dir != dir.root_path()) dir = dir.parent_path();  // "a/" is "a"
    if (std::find(path.begin(), path.end(), dir) == path.end()) path.push_back(std::move(dir));
  };
  if (const char* env = std::getenv("PORTCULLIS_PLUGIN_PATH")) {
    std::string_view rest(env);
    while (!rest.empty()) {
      auto colon = rest.find(':');
      std::string_view dir = rest.substr(0, colon);
      if (!dir.empty()) add(std::string(dir));
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
  }
  for (const auto& dir : ownFolders) {
    if (!dir.empty()) add(dir);
  }
  add(installedPluginDir());
  return path;
}

std::vector<std::filesystem::path> defaultPluginSearchPath() { return pluginSearchPath({}); }

Result<void> registerBuiltinProviders(ProviderRegistry& registry) {
  return registry.add(std::make_unique<OpenFactory>());
}

}  // namespace portcullis
