// tool.h — what the `portcullis` subcommands share: arguments, exit codes, output, and a node
// (an io_context, a TCP network, a provider from the config and a Repo).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/config.h"
#include "portcullis/repo.h"
#include "portcullis/result.h"

namespace portcullis {
struct TcpDialEvent;
}  // namespace portcullis

namespace portcullis::tool {

// Exit codes, as `--help` lists them.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // unreachable, refused, unavailable, storage failed
inline constexpr int kExitUsage = 2;   // bad arguments or config: nothing was started

struct CommonArgs {
  std::string config;  // empty: none
  bool json = false;
  std::string logLevel;  // empty: the command's default
};

struct ServeArgs : CommonArgs {};

struct KeygenArgs : CommonArgs {
  std::string out;
};

struct DocArgs : CommonArgs {
  std::string verb;  // new, get, set, watch
  std::string connect;
  double timeoutSeconds = 10;
  std::string url;
  std::string pointer;
  std::string value;
};

// `portcullis team VERB`: the team provider's offline verbs (team.cc). The positional
// arguments of the verbs share fields: `subject` is USER, DEVICE, KEY or DOC; `file` is FILE or
// REQUEST_FILE.
struct TeamArgs : CommonArgs {
  std::string verb;                 // "init", "invite", ..., "role add", "access set", ...
  std::string state = "team-state";  // --state: the state directory, as [auth.team] state names
  std::string name;                 // init --name
  std::string user;                 // init, join --user
  std::string recoveryKey;          // init --recovery-key (hex)
  std::int64_t maxUses = -1;        // invite --max-uses; -1: not given (1)
  std::string expires;              // invite --expires DURATION; empty: never
  bool device = false;              // invite --device
  std::string code;                 // join CODE ("-": read from stdin)
  std::string from;                 // join --from
  std::string requestOut;           // join --request-out; empty: <state>.request.json
  bool all = false;                 // devices --all
  std::string subject;
  std::string role;
  std::string principal;
  std::string level;
  std::string file;
  std::string connect;              // --connect ADDRESS: join over the network, or push the link
  double timeoutSeconds = 10;       // --timeout for --connect
};

// `portcullis login`, `whoami` and `online revoke`: the online provider's verbs (online.cc).
struct OnlineArgs : CommonArgs {
  std::string verb;                   // "login", "whoami", "revoke"
  std::string service;                // login --service ADDRESS
  std::string provider;               // login --provider NAME
  std::string token;                  // login --token TOKEN, @FILE or -
  double timeoutSeconds = 10;         // login --timeout
  std::vector<std::uint64_t> serials;  // revoke --serial
};

int runServe(const ServeArgs& args);
int runKeygen(const KeygenArgs& args);
int runDoc(const DocArgs& args);
int runTeam(const TeamArgs& args);
int runOnline(const OnlineArgs& args);

// team_net.cc: `team join CODE --connect ADDRESS`, and a signing verb's `--connect ADDRESS` (run
// after the verb, once its state directory is closed).
int teamJoinOverNetwork(const TeamArgs& args);
int teamPush(const TeamArgs& args);

// Prints "portcullis: <message>" on stderr: the one clear line of a failed command.
void printError(std::string_view message);
// printError(message), then `exitCode` to return from the command.
int failWith(int exitCode, std::string_view message);

// The names --log-level takes.
inline constexpr const char* kLogLevels[] = {"trace", "debug", "info", "warn", "error", "off"};

// Sets the default logger (stderr) to `level` (one of kLogLevels), or `fallback` when empty.
void setupLogging(const std::string& level, const std::string& fallback);

// The config of --config, or an empty one (no file) when `path` is empty. The root may hold only
// the tables [network], [storage] and [auth].
Result<ConfigTable> loadNodeConfig(const std::string& path);

// The plugin folders that belong to the program at `executable`: the build tree's provider
// folders when it is the tool of this build tree (run uninstalled), else the installed plugin
// folder taken relative to the executable's folder, as $ORIGIN would be (a relocated install).
std::vector<std::filesystem::path> ownPluginFolders(const std::filesystem::path& executable);

// The tool's plugin search path: $PORTCULLIS_PLUGIN_PATH, then ownPluginFolders() of the running
// executable, then the installed plugin folder.
std::vector<std::filesystem::path> toolPluginSearchPath();

// The provider chosen by the config's [auth] table (plugins from toolPluginSearchPath()). A
// config file without an [auth] table gets `open`, and a note on stderr says so.
Result<std::shared_ptr<AuthProvider>> providerFromConfig(const ConfigTable& config);

// A client's dial of its one server (`doc`, `team ... --connect`), fed by the TCP adapter's
// TcpNetworkOptions::onDial: a refused port or a host that does not resolve ends the wait at
// once with the OS's error, and at the deadline "unreachable" is told apart from "connected,
// but the handshake did not complete". Copies share one state; use on the client's executor.
class ServerDial {
 public:
  explicit ServerDial(std::string address);

  // For TcpNetworkOptions::onDial; `wake` runs after every report (to end the client's wait).
  std::function<void(const TcpDialEvent&)> reporter(std::function<void()> wake) const;
  // A dial failed before any connection was made: waiting longer will not help.
  bool failed() const;
  // A connection was made (its handshake may not have completed).
  bool connected() const;
  // Why there is no session after waiting `timeoutSeconds`: the dial's error when failed(), else
  // what the deadline cut short. Errc::Disconnected.
  Error error(double timeoutSeconds) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// The one line for a handshake with the server that failed with `error`, e.g. "handshake
// failed: shared-key: tcp: End of file (...)". When the server ended the connection without a
// reason (Errc::Disconnected), it adds the causes that are likely for `provider`, from what this
// client knows: the server tells an unauthenticated peer nothing.
std::string describeHandshakeFailure(std::string_view provider, const Error& error);

// "1 s", "0.5 s": a --timeout as the tool's messages write it.
std::string secondsText(double seconds);

}  // namespace portcullis::tool
