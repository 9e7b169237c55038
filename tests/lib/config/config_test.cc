// Tests for ConfigTable (lib/src/config) and ProviderRegistry (lib/src/registry): every error
// names the file, the line and the key, and nothing falls back silently.

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <optional>

#include "portcullis/config.h"
#include "portcullis/provider_registry.h"

namespace portcullis {
namespace {

ConfigTable parse(std::string_view text) {
  auto config = parseConfig(text, "/etc/node.toml");
  EXPECT_TRUE(config) << config.error().message();
  return *config;
}

std::string errorOf(const Error& e) {
  EXPECT_EQ(e.code(), Errc::Config);
  return e.message();
}

TEST(Config, TypedValuesAndAbsentKeys) {
  ConfigTable root = parse("[network]\nlisten = \"127.0.0.1:0\"\nconnect = [\"a:1\", \"b:2\"]\n"
                           "port = 7\nverbose = true\n");
  auto net = root.table("network");
  ASSERT_TRUE(net);
  EXPECT_EQ(net->name(), "network");
  EXPECT_EQ(*net->string("listen"), std::optional<std::string>("127.0.0.1:0"));
  EXPECT_EQ(*net->strings("connect"), (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(*net->integer("port"), std::optional<std::int64_t>(7));
  EXPECT_EQ(*net->boolean("verbose"), std::optional<bool>(true));
  EXPECT_EQ(*net->string("absent"), std::nullopt);
  EXPECT_TRUE(net->strings("absent")->empty());
  auto missing = root.table("storage");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->contains("path"));
  EXPECT_EQ(missing->name(), "storage");
}

TEST(Config, WrongTypeNamesFileLineAndKey) {
  ConfigTable root = parse("[network]\n\nlisten = 7420\nconnect = [\"a:1\", 2]\n");
  auto net = root.table("network");
  ASSERT_TRUE(net);
  EXPECT_EQ(errorOf(net->string("listen").error()),
            "/etc/node.toml:3: network.listen: expected a string, found an integer");
  EXPECT_EQ(errorOf(net->strings("connect").error()),
            "/etc/node.toml:4: network.connect: expected an array of strings, found an integer "
            "in it");
  EXPECT_EQ(errorOf(net->boolean("listen").error()),
            "/etc/node.toml:3: network.listen: expected true or false, found an integer");
  EXPECT_EQ(errorOf(net->integer("connect").error()),
            "/etc/node.toml:4: network.connect: expected an integer, found an array");
  EXPECT_EQ(errorOf(net->table("listen").error()),
            "/etc/node.toml:3: network.listen: expected a table, found an integer");
}

TEST(Config, UnknownKeyIsAnErrorAtItsLine) {
  ConfigTable root = parse("[storage]\npath = \"data\"\npaht = \"typo\"\n");
  auto storage = root.table("storage");
  ASSERT_TRUE(storage);
  auto ok = storage->expectKeys({"path"});
  ASSERT_FALSE(ok);
  EXPECT_EQ(errorOf(ok.error()),
            "/etc/node.toml:3: storage.paht: unknown key (expected one of: path)");
  EXPECT_TRUE(storage->expectKeys({"path", "paht"}));
}

TEST(Config, AnArrayElementsErrorNamesItsOwnLine) {
  ConfigTable root = parse("[network]\nconnect = [\n  \"a:1\",\n  \"localhost\",\n]\n");
  auto net = root.table("network");
  ASSERT_TRUE(net);
  EXPECT_EQ(errorOf(net->error("connect", 1, "'localhost' is not HOST:PORT")),
            "/etc/node.toml:4: network.connect[1]: 'localhost' is not HOST:PORT");
  EXPECT_EQ(errorOf(net->error("connect", 0, "x")), "/etc/node.toml:3: network.connect[0]: x");
  // No such element, or no such key: the array's line, else the table's.
  EXPECT_EQ(errorOf(net->error("connect", 7, "x")), "/etc/node.toml:2: network.connect[7]: x");
  EXPECT_EQ(errorOf(net->error("listen", 0, "x")), "/etc/node.toml:1: network.listen[0]: x");
}

TEST(Config, ErrorsAboutAKeyThatIsAbsentNameTheTableOrOnlyTheFile) {
  ConfigTable root = parse("# nothing yet\n[network]\n");
  EXPECT_EQ(errorOf(root.error("auth", "missing")), "/etc/node.toml: auth: missing");
  EXPECT_EQ(errorOf(root.table("network")->error("listen", "taken")),
            "/etc/node.toml:2: network.listen: taken");
  EXPECT_EQ(errorOf(ConfigTable().error("auth", "missing")), "(no config file): auth: missing");
}

TEST(Config, RequiredStringMissingNamesTheTable) {
  ConfigTable root = parse("\n[auth]\nother = 1\n");
  auto auth = root.table("auth");
  ASSERT_TRUE(auth);
  EXPECT_EQ(errorOf(auth->requiredString("provider").error()),
            "/etc/node.toml:2: auth.provider: missing (required)");
}

TEST(Config, RelativePathsAreTakenFromTheConfigFolder) {
  ConfigTable root = parse("[storage]\npath = \"./data\"\nabs = \"/var/lib/x\"\nempty = \"\"\n");
  auto storage = root.table("storage");
  ASSERT_TRUE(storage);
  EXPECT_EQ(**storage->path("path"), std::filesystem::path("/etc/data"));
  EXPECT_EQ(**storage->path("abs"), std::filesystem::path("/var/lib/x"));
  EXPECT_FALSE(storage->path("empty"));
}

TEST(Config, SyntaxErrorNamesFileAndLine) {
  auto config = parseConfig("[network]\nlisten = \"unterminated\n", "bad.toml");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code(), Errc::Config);
  EXPECT_EQ(config.error().message().rfind("bad.toml:2: ", 0), 0u) << config.error().message();
}

TEST(Config, MissingFileIsAConfigError) {
  auto config = loadConfigFile("/nonexistent/portcullis.toml");
  ASSERT_FALSE(config);
  EXPECT_EQ(errorOf(config.error()), "/nonexistent/portcullis.toml: no such file");
}

TEST(Config, LoadsAFile) {
  auto dir = std::filesystem::temp_directory_path() / ("config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "n.toml") << "[auth]\nprovider = \"open\"\n"; }
  auto config = loadConfigFile(dir / "n.toml");
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(**config->table("auth")->string("provider"), "open");
}

// The provider a config file names, from a registry holding the built-in providers.
Result<std::unique_ptr<AuthProvider>> providerFor(
    std::string_view toml, const std::vector<std::filesystem::path>& searchPath = {}) {
  ProviderRegistry registry;
  EXPECT_TRUE(registerBuiltinProviders(registry));
  return registry.createFromConfig(parse(toml), searchPath);
}

class NamedFactory final : public AuthProviderFactory {
 public:
  explicit NamedFactory(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  Result<std::unique_ptr<AuthProvider>> create(const ConfigTable& config) const override {
    return config.error("", "refused on purpose");
  }

 private:
  std::string name_;
};

TEST(ProviderRegistry, RejectsDuplicateAndBadNamesAndListsSorted) {
  ProviderRegistry registry;
  ASSERT_TRUE(registerBuiltinProviders(registry));
  ASSERT_TRUE(registry.add(std::make_unique<NamedFactory>("zeta")));
  ASSERT_TRUE(registry.add(std::make_unique<NamedFactory>("alpha")));
  auto dup = registry.add(std::make_unique<NamedFactory>("open"));
  ASSERT_FALSE(dup);
  EXPECT_EQ(errorOf(dup.error()), "auth provider 'open' is registered twice");
  EXPECT_FALSE(registry.add(std::make_unique<NamedFactory>("Bad_Name")));
  EXPECT_FALSE(registry.add(std::make_unique<NamedFactory>("../x")));
  EXPECT_EQ(registry.names(), (std::vector<std::string>{"alpha", "open", "zeta"}));
}

TEST(ProviderRegistry, OpenIsTheDefaultOnlyWithoutAnAuthTable) {
  ProviderRegistry registry;
  ASSERT_TRUE(registerBuiltinProviders(registry));
  auto provider = registry.createFromConfig(ConfigTable(), {});
  ASSERT_TRUE(provider) << provider.error().message();
  EXPECT_EQ((*provider)->name(), "open");

  auto noName = providerFor("[auth]\n");
  ASSERT_FALSE(noName);
  EXPECT_EQ(errorOf(noName.error()),
            "/etc/node.toml:1: auth.provider: missing (required: the auth provider's name, e.g. "
            "\"shared-key\", \"document-id\", \"team\", or \"open\" for development without "
            "authentication)");
}

TEST(ProviderRegistry, OpenTakesAPeerIdAndNothingElse) {
  auto provider = providerFor("[auth]\nprovider = \"open\"\n[auth.open]\npeer-id = \"alice\"\n");
  ASSERT_TRUE(provider) << provider.error().message();
  EXPECT_EQ((*provider)->localPeer(), PeerId::parse("alice").value());

  auto typo = providerFor("[auth]\nprovider = \"open\"\n[auth.open]\npeerid = \"alice\"\n");
  ASSERT_FALSE(typo);
  EXPECT_EQ(errorOf(typo.error()),
            "/etc/node.toml:4: auth.open.peerid: unknown key (expected one of: peer-id)");

  auto badId = providerFor("[auth]\nprovider = \"open\"\n[auth.open]\npeer-id = \"\"\n");
  ASSERT_FALSE(badId);
  EXPECT_EQ(badId.error().message().rfind("/etc/node.toml:4: auth.open.peer-id: ", 0), 0u)
      << badId.error().message();
}

TEST(ProviderRegistry, UnknownProviderStopsStartUpNamingEveryFolderAndHowToAddOne) {
  auto dir = std::filesystem::temp_directory_path() / "no-plugins-here";
  auto other = std::filesystem::temp_directory_path() / "no-plugins-there";
  auto provider = providerFor("[auth]\nprovider = \"nope\"\n", {dir, other});
  ASSERT_FALSE(provider);
  EXPECT_EQ(errorOf(provider.error()),
            "/etc/node.toml:2: auth.provider: unknown auth provider 'nope': no "
            "libportcullis-auth-nope.so in " + dir.string() + ", " + other.string() +
                " (built in: open); to add a folder, set PORTCULLIS_PLUGIN_PATH=DIR[:DIR...]");

  ProviderRegistry empty;
  auto none = empty.get("nope", {});
  ASSERT_FALSE(none);
  EXPECT_EQ(errorOf(none.error()),
            "unknown auth provider 'nope': no libportcullis-auth-nope.so in any folder (the "
            "plugin search path is empty) (built in: none); to add a folder, set "
            "PORTCULLIS_PLUGIN_PATH=DIR[:DIR...]");
}

// Sets $PORTCULLIS_PLUGIN_PATH for one scope (unset: nullptr), and restores it.
class PluginPathEnv {
 public:
  explicit PluginPathEnv(const char* value) {
    if (const char* old = std::getenv(kName)) old_ = old;
    if (value) {
      ::setenv(kName, value, 1);
    } else {
      ::unsetenv(kName);
    }
  }
  ~PluginPathEnv() {
    if (old_) {
      ::setenv(kName, old_->c_str(), 1);
    } else {
      ::unsetenv(kName);
    }
  }

 private:
  static constexpr const char* kName = "PORTCULLIS_PLUGIN_PATH";
  std::optional<std::string> old_;
};

TEST(PluginSearchPath, TheEnvironmentComesFirstThenTheProgramsFoldersThenTheInstalledOne) {
  PluginPathEnv env("/env/a::/env/b/");
  const auto path = pluginSearchPath({"/build/providers", "/build/providers/team"});
  EXPECT_EQ(path, (std::vector<std::filesystem::path>{"/env/a", "/env/b", "/build/providers",
                                                      "/build/providers/team",
                                                      installedPluginDir()}));
  EXPECT_FALSE(installedPluginDir().empty());
  EXPECT_TRUE(installedPluginDir().is_absolute());
}

TEST(PluginSearchPath, WithoutTheEnvironmentOrOwnFoldersOnlyTheInstalledOneIsLeft) {
  PluginPathEnv env(nullptr);
  EXPECT_EQ(defaultPluginSearchPath(), std::vector<std::filesystem::path>{installedPluginDir()});
  EXPECT_EQ(pluginSearchPath({""}), std::vector<std::filesystem::path>{installedPluginDir()});
}

TEST(PluginSearchPath, AFolderNamedTwiceIsLookedInOnceAtItsFirstPlace) {
  const std::string installed = installedPluginDir().string();
  PluginPathEnv env(("/x:" + installed + "/:/x/./").c_str());
  EXPECT_EQ(pluginSearchPath({"/x", "/y"}),
            (std::vector<std::filesystem::path>{"/x", installedPluginDir(), "/y"}));
}

TEST(ProviderRegistry, ANameThatIsNoProviderNameIsRefusedWithoutLookingForAFile) {
  ProviderRegistry registry;
  auto dir = std::filesystem::temp_directory_path() / ("names_test_" + std::to_string(::getpid()));
  // The file "../x" would name if names were not checked first: it exists, so a loader that
  // tried it would fail with "cannot load" instead.
  std::filesystem::create_directories(dir / "libportcullis-auth-..");
  { std::ofstream(dir / "libportcullis-auth-.." / "x.so") << "not an ELF file"; }
  auto factory = registry.get("../x", {dir});
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(factory);
  EXPECT_EQ(errorOf(factory.error()), "unknown auth provider '../x'");
}

TEST(ProviderRegistry, ATableForAnotherProviderIsRefused) {
  auto provider =
      providerFor("[auth]\nprovider = \"open\"\n[auth.shared-key]\nnetwork-key = \"x\"\n");
  ASSERT_FALSE(provider);
  EXPECT_EQ(errorOf(provider.error()),
            "/etc/node.toml:3: auth.shared-key: unknown key (expected one of: provider, open)");
}

TEST(ProviderRegistry, AFactoryRefusalStopsStartUp) {
  ProviderRegistry registry;
  ASSERT_TRUE(registry.add(std::make_unique<NamedFactory>("strict")));
  auto provider = registry.createFromConfig(parse("[auth]\nprovider = \"strict\"\n"), {});
  ASSERT_FALSE(provider);
  EXPECT_EQ(errorOf(provider.error()), "/etc/node.toml: auth.strict: refused on purpose");
}

TEST(ProviderRegistry, AFileThatIsNoPluginIsRefused) {
  auto dir = std::filesystem::temp_directory_path() / ("plugin_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "libportcullis-auth-junk.so") << "not an ELF file"; }
  ProviderRegistry registry;
  auto factory = registry.get("junk", {dir});
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(factory);
  EXPECT_NE(errorOf(factory.error()).find("libportcullis-auth-junk.so: cannot load: "),
            std::string::npos)
      << factory.error().message();
}

}  // namespace
}  // namespace portcullis
