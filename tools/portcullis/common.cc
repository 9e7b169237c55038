// common.cc — helpers every subcommand uses (tool.h).

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "portcullis/provider_registry.h"
#include "tool.h"

namespace portcullis::tool {

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
  spdlog::set_level(spdlog::level::from_str(level.empty() ? fallback : level));
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

Result<std::shared_ptr<AuthProvider>> providerFromConfig(const ConfigTable& config) {
  ProviderRegistry registry;
  if (auto ok = registerBuiltinProviders(registry); !ok) return std::move(ok).error();
  auto provider = registry.createFromConfig(config, defaultPluginSearchPath());
  if (!provider) return std::move(provider).error();
  return std::shared_ptr<AuthProvider>(std::move(*provider));
}

}  // namespace portcullis::tool
