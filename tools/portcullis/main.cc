// main.cc — `portcullis`: the command-line tool (DESIGN §8). Parses arguments with CLI11 and
// hands each subcommand to its run function; every failure ends as one line on stderr and a
// non-zero exit code.

#include <CLI/CLI.hpp>
#include <sodium.h>

#include <cstdio>

#include "tool.h"

namespace {

using namespace portcullis::tool;

void addCommon(CLI::App* cmd, CommonArgs& args, bool withConfig) {
  if (withConfig) {
    cmd->add_option("--config", args.config, "The node's TOML config file ([network], "
                                              "[storage], [auth])");
  }
  cmd->add_flag("--json", args.json, "Print machine-readable JSON instead of text");
  cmd->add_option("--log-level", args.logLevel, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember(
          std::vector<std::string>(std::begin(kLogLevels), std::end(kLogLevels))));
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) {
    return failWith(kExitFailed, "libsodium failed to initialise");
  }
  CLI::App app{"portcullis: sync CRDT documents between peers, with pluggable authentication.\n"
               "Exit codes: 0 success, 1 failure (unreachable, refused, unavailable, I/O), "
               "2 bad arguments or config."};
  app.set_version_flag("--version", std::string(PORTCULLIS_VERSION));
  app.require_subcommand(1);

  ServeArgs serve;
  CLI::App* serveCmd = app.add_subcommand(
      "serve", "Run a sync server (an always-on peer) until SIGINT or SIGTERM, which flush "
               "storage and exit 0. SIGHUP reloads what the auth provider can reload.");
  addCommon(serveCmd, serve, false);
  serveCmd->add_option("--config", serve.config, "The server's TOML config file")->required();

  KeygenArgs keygen;
  CLI::App* keygenCmd = app.add_subcommand(
      "keygen", "Write a new device identity (an Ed25519 key pair) and print its public key");
  addCommon(keygenCmd, keygen, false);
  keygenCmd->add_option("--out", keygen.out, "The key file to create (mode 0600; never "
                                             "overwritten)")->required();

  DocArgs doc;
  CLI::App* docCmd = app.add_subcommand("doc", "Create, read, edit and watch documents on a server");
  docCmd->require_subcommand(1);
  struct Verb {
    const char* name;
    const char* help;
  };
  const Verb verbs[] = {
      {"new", "Create a document; print its URL once the server has stored it"},
      {"get", "Print a document as JSON"},
      {"set", "Set the value at a JSON Pointer (e.g. /todo/0/title) to VALUE, parsed as JSON; "
              "maps along the way are created. Returns once the server has stored it"},
      {"watch", "Print the document as one JSON line now and after every change, until "
                "interrupted"},
  };
  for (const Verb& v : verbs) {
    CLI::App* cmd = docCmd->add_subcommand(v.name, v.help);
    addCommon(cmd, doc, true);
    cmd->add_option("--connect", doc.connect,
                    "The server: HOST:PORT, or net:HOST:PORT~shs:KEY for the shared-key "
                    "provider")->required();
    cmd->add_option("--timeout", doc.timeoutSeconds,
                    "Seconds to wait for the server (connect, find, store)")
        ->capture_default_str()
        ->check(CLI::Range(0.1, 3600.0));
    if (std::string_view(v.name) != "new") {
      cmd->add_option("URL", doc.url, "The document's URL (portcullis:...)")->required();
    }
    if (std::string_view(v.name) == "set") {
      cmd->add_option("POINTER", doc.pointer, "A JSON Pointer (RFC 6901)")->required();
      cmd->add_option("VALUE", doc.value, "A JSON value: '\"milk\"', 42, '{\"a\":[1,2]}'")
          ->required();
    }
    cmd->callback([&doc, name = std::string(v.name)] { doc.verb = name; });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    return failWith(kExitUsage, std::string(e.what()) + " (see --help)");
  }

  if (serveCmd->parsed()) return runServe(serve);
  if (keygenCmd->parsed()) return runKeygen(keygen);
  return runDoc(doc);
}
