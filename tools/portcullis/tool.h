// tool.h — what the `portcullis` subcommands share: arguments, exit codes, output, and a node
// (an io_context, a TCP network, a provider from the config and a Repo).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/config.h"
#include "portcullis/repo.h"
#include "portcullis/result.h"

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

int runServe(const ServeArgs& args);
int runKeygen(const KeygenArgs& args);
int runDoc(const DocArgs& args);
int runTeam(const TeamArgs& args);

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

// The provider chosen by the config's [auth] table (plugins from the default search path).
Result<std::shared_ptr<AuthProvider>> providerFromConfig(const ConfigTable& config);

}  // namespace portcullis::tool
