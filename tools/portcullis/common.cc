// common.cc — helpers every subcommand uses (tool.h).

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <optional>

#include "portcullis/logging.h"
#include "portcullis/provider_registry.h"
#include "tcp_network.h"
#include "tool.h"

namespace portcullis::tool {

namespace {

namespace fs = std::filesystem;

// Set by meson for the tool's build tree (tools/portcullis/meson.build); empty elsewhere.
#ifndef PORTCULLIS_TOOL_BUILD_DIR
#define PORTCULLIS_TOOL_BUILD_DIR ""
#endif
#ifndef PORTCULLIS_BUILD_PLUGIN_DIRS
#define PORTCULLIS_BUILD_PLUGIN_DIRS ""
#endif
#ifndef PORTCULLIS_INSTALL_BIN_DIR
#define PORTCULLIS_INSTALL_BIN_DIR ""
#endif

std::vector<fs::path> splitFolders(std::string_view list) {
  std::vector<fs::path> out;
  while (!list.empty()) {
    const auto colon = list.find(':');
    if (colon != 0) out.emplace_back(std::string(list.substr(0, colon)));
    list = colon == std::string_view::npos ? std::string_view() : list.substr(colon + 1);
  }
  return out;
}

}  // namespace

void printError(std::string_view message) {
  std::fprintf(stderr, "portcullis: %.*s\n", static_cast<int>(message.size()), message.data());
}

int failWith(int exitCode, std::string_view message) {
  printError(message);
  return exitCode;
}

void setupLogging(const std::string& level, const std::string& fallback) {
  auto logger = spdlog::stderr_color_mt("portcullis");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(std::move(logger));
  const auto threshold = spdlog::level::from_str(level.empty() ? fallback : level);
  spdlog::set_level(threshold);
  // The library's lines go through the same logger, at the same level.
  static constexpr LogLevel kLibraryLevel[] = {LogLevel::Debug, LogLevel::Debug, LogLevel::Info,
                                               LogLevel::Warn,  LogLevel::Error, LogLevel::Error,
                                               LogLevel::Off};
  setLogLevel(kLibraryLevel[threshold]);
  setLogSink([](LogLevel at, std::string_view message) {
    static constexpr spdlog::level::level_enum kSpdlogLevel[] = {
        spdlog::level::debug, spdlog::level::info, spdlog::level::warn, spdlog::level::err,
        spdlog::level::off};
    spdlog::log(kSpdlogLevel[static_cast<int>(at)], "{}", message);
  });
}

Result<ConfigTable> loadNodeConfig(const std::string& path) {
  if (path.empty()) return ConfigTable();
  auto config = loadConfigFile(path);
  if (!config) return config;
  if (auto ok = config->expectKeys({"network", "storage", "auth"}); !ok) {
    return std::move(ok).error();
  }
  return config;
}

std::vector<fs::path> ownPluginFolders(const fs::path& executable) {
  const fs::path folder = executable.parent_path();
  std::error_code ec;
  const std::string_view buildDir = PORTCULLIS_TOOL_BUILD_DIR;
  if (!buildDir.empty() && fs::equivalent(folder, fs::path(buildDir), ec)) {
    return splitFolders(PORTCULLIS_BUILD_PLUGIN_DIRS);
  }
  // Installed, perhaps somewhere else than the prefix it was built for (a DESTDIR, a copied
  // tree): the plugins sit where they would relative to bin/.
  const std::string_view binDir = PORTCULLIS_INSTALL_BIN_DIR;
  if (binDir.empty() || folder.empty()) return {};
  const fs::path relative = installedPluginDir().lexically_relative(fs::path(binDir));
  if (relative.empty()) return {};
  return {(folder / relative).lexically_normal()};
}

std::vector<fs::path> toolPluginSearchPath() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return pluginSearchPath(ec ? std::vector<fs::path>() : ownPluginFolders(self));
}

Result<std::shared_ptr<AuthProvider>> providerFromConfig(const ConfigTable& config) {
  ProviderRegistry registry;
  if (auto ok = registerBuiltinProviders(registry); !ok) return std::move(ok).error();
  if (!config.file().empty() && !config.contains("auth")) {
    std::fprintf(stderr, "portcullis: note: %s has no [auth] table, so the 'open' provider "
                         "(development only: no authentication)\n",
                 config.file().c_str());
  }
  auto provider = registry.createFromConfig(config, toolPluginSearchPath());
  if (!provider) return std::move(provider).error();
  return std::shared_ptr<AuthProvider>(std::move(*provider));
}

std::string secondsText(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", seconds);
  return buf;
}

// ServerDial ----------------------------------------------------------------------------------

struct ServerDial::State {
  std::string address;
  std::optional<std::string> failure;  // the first failed dial before any connection
  bool connected = false;
};

ServerDial::ServerDial(std::string address) : state_(std::make_shared<State>()) {
  state_->address = std::move(address);
}

std::function<void(const TcpDialEvent&)> ServerDial::reporter(std::function<void()> wake) const {
  return [state = state_, wake = std::move(wake)](const TcpDialEvent& event) {
    switch (event.kind) {
      case TcpDialEvent::Kind::Connected:
        state->connected = true;
        break;
      case TcpDialEvent::Kind::Failed:
        if (!state->connected && !state->failure) state->failure = event.error;
        break;
      case TcpDialEvent::Kind::Closed:
        break;
    }
    if (wake) wake();
  };
}

bool ServerDial::failed() const { return state_->failure.has_value(); }

bool ServerDial::connected() const { return state_->connected; }

Error ServerDial::error(double timeoutSeconds) const {
  if (state_->failure) return Error(Errc::Disconnected, *state_->failure);
  if (state_->connected) {
    return Error(Errc::Disconnected,
                 "connected to " + state_->address + ", but the handshake did not complete "
                 "within " + secondsText(timeoutSeconds) + " (the server may run another auth "
                 "provider, or be too busy to answer)");
  }
  return Error(Errc::Disconnected, "cannot reach " + state_->address + " (no connection within " +
                                       secondsText(timeoutSeconds) + ")");
}

std::string describeHandshakeFailure(std::string_view provider, const Error& error) {
  std::string line = "handshake failed: " + error.message();
  if (error.code() != Errc::Disconnected) return line;  // it already says why
  // The server hung up without a reason, as a server must with a peer it does not trust. What
  // this client can check on its side:
  std::string causes;
  if (provider == "shared-key") {
    causes = "this config's network-key is not the server's, the key after ~shs: in the address "
             "is not the server's (serve prints the address to dial), or the server denies this "
             "device";
  } else if (provider == "document-id") {
    causes = "the key after ~shs: in the address is not the server's (serve prints the address "
             "to dial), or the server runs another auth provider";
  } else if (provider == "team") {
    causes = "the server does not know this device (not admitted yet, or removed), it does not "
             "host this team, or it runs another auth provider";
  } else if (provider == "online") {
    causes = "this device's certificate expired or was revoked (`portcullis whoami` shows it; "
             "`portcullis login` renews it), the peer is of another app-id or trusts other "
             "service-keys, the key after ~shs: in the address is not the server's, or the server "
             "runs another auth provider";
  } else if (provider == "open") {
    causes = "the server runs another auth provider than 'open'";
  } else {
    causes = "the server runs another auth provider or configuration, or it refuses this peer";
  }
  return line + " (the server closed the connection without a reason; likely: " + causes +
         "; the server's log says which)";
}

}  // namespace portcullis::tool
