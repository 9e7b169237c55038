// main.cc — `portcullis`: the command-line tool (architecture §10). Parses arguments with CLI11 and
// hands each subcommand to its run function; every failure ends as one line on stderr and a
// non-zero exit code.

#include <CLI/CLI.hpp>
#include <sodium.h>

#include <cstdint>
#include <cstdio>
#include <string_view>

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

  OnlineArgs online;
  CLI::App* loginCmd = app.add_subcommand(
      "login", "Log in at the app's identity service (the `online` provider) with a token from "
               "your identity provider; keeps the certificate where [auth.online] certificate "
               "says");
  addCommon(loginCmd, online, true);
  loginCmd->add_option("--service", online.service,
                       "The identity service's address, net:HOST:PORT~shs:KEY (what its "
                       "`serve` prints)")->required();
  loginCmd->add_option("--provider", online.provider,
                       "Which of the service's login providers checks the token")->required();
  loginCmd->add_option("--token", online.token,
                       "The token; @FILE reads it from FILE, - from stdin (a token on the command "
                       "line is visible to other users of this machine)")->required();
  loginCmd->add_option("--timeout", online.timeoutSeconds, "Seconds to wait (default 10)");
  loginCmd->callback([&online] { online.verb = "login"; });
  CLI::App* whoamiCmd = app.add_subcommand(
      "whoami", "Show this device's certificate (the `online` provider): user, roles, "
                "permissions, expiry; exit 1 when it is expired or not this device's");
  addCommon(whoamiCmd, online, true);
  whoamiCmd->callback([&online] { online.verb = "whoami"; });
  CLI::App* onlineCmd = app.add_subcommand("online", "Run an identity service of the `online` "
                                                     "provider");
  onlineCmd->require_subcommand(1);
  CLI::App* revokeCmd = onlineCmd->add_subcommand(
      "revoke", "Revoke certificates by serial: signs the service's next revocation list (send "
                "the running service SIGHUP to pass it on)");
  addCommon(revokeCmd, online, true);
  revokeCmd->add_option("--serial", online.serials, "A certificate serial (`whoami` shows it); "
                                                    "repeat for several")->required();
  revokeCmd->callback([&online] { online.verb = "revoke"; });

  TeamArgs team;
  CLI::App* teamCmd = app.add_subcommand(
      "team", "Run a team (the `team` auth provider) from this device's state directory, "
              "offline: found it, invite and admit members and devices, remove them, set roles, "
              "document access and servers, and carry the team's links between devices with "
              "export and import");
  teamCmd->require_subcommand(1);
  // Every team verb takes --state, --json and --log-level; `verb` is what runTeam dispatches on.
  auto teamVerb = [&team](CLI::App* parent, const char* name, std::string verb,
                          const char* help) {
    CLI::App* cmd = parent->add_subcommand(name, help);
    addCommon(cmd, team, false);
    cmd->add_option("--state", team.state, "This device's team state directory (what a node's "
                                           "[auth.team] state = DIR names)")
        ->capture_default_str();
    cmd->callback([&team, verb = std::move(verb)] { team.verb = verb; });
    return cmd;
  };
  // The verbs that sign a link may push it to a peer at once.
  auto pushes = [&team](CLI::App* cmd) {
    cmd->add_option("--connect", team.connect,
                    "Send the new link at once to the team's node at HOST:PORT (a server or a "
                    "member device), and wait until it has it");
    cmd->add_option("--timeout", team.timeoutSeconds,
                    "Seconds to wait for --connect (default 10)");
    return cmd;
  };
  auto teamGroup = [teamCmd](const char* name, const char* help) {
    CLI::App* cmd = teamCmd->add_subcommand(name, help);
    cmd->require_subcommand(1);
    return cmd;
  };
  {
    CLI::App* c = teamVerb(teamCmd, "init", "init",
                           "Found a team: a new device key and the team's root link, in a new "
                           "state directory; prints the team ID");
    c->add_option("--name", team.name, "The team's name (up to 128 bytes)")->required();
    c->add_option("--user", team.user, "Your userId, the founder's (1 to 64 bytes)")->required();
    c->add_option("--recovery-key", team.recoveryKey,
                  "An offline Ed25519 public key (64 hex digits) that may add and remove the "
                  "founder's devices; none by default");

    c = pushes(teamVerb(teamCmd, "invite", "invite",
                 "Invite a new member (admins) or, with --device, a new device of yours; prints "
                 "the invitation code once and stores it nowhere"));
    c->add_option("--max-uses", team.maxUses, "Admissions a member invitation allows (0: "
                                              "unlimited; default 1)")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{0xFFFFFFFF}));
    c->add_option("--expires", team.expires, "Lifetime, e.g. 30m, 12h, 7d, 1w (default: never); "
                                             "the admitting device checks it");
    c->add_flag("--device", team.device, "Invite a new device of your own (one use)");

    c = teamVerb(teamCmd, "join", "join",
                 "Join with an invitation code: over the network through a member device "
                 "(--connect), or offline from an export (--from), writing an admission request "
                 "for a member to admit");
    c->add_option("CODE", team.code, "The invitation code, or - to read it from stdin")
        ->required();
    c->add_option("--from", team.from, "A `team export` of the team (offline)");
    c->add_option("--connect", team.connect,
                  "Join over the network through the member device at HOST:PORT instead: "
                  "writes the state directory and its config.toml")
        ->excludes("--from");
    c->add_option("--user", team.user, "Your new userId (a member invitation; leave it out for "
                                       "a device invitation)");
    c->add_option("--request-out", team.requestOut, "Where to write the admission request "
                                                    "(default: <state>.request.json)");
    c->add_option("--timeout", team.timeoutSeconds,
                  "Seconds for --connect's handshake and graph (Argon2id not counted)");

    c = teamVerb(teamCmd, "host", "host",
                 "Host a team on a server: --state names the server's host folder (its device "
                 "key, made on first use, and one state directory per team); adds the team of "
                 "an export and prints the key a member adds with `team server add`");
    c->add_option("--from", team.from, "A `team export` of the team")->required();

    c = pushes(teamVerb(teamCmd, "admit", "admit",
                 "Check an admission request (signatures, the invitation, its expiry by this "
                 "device's clock) and sign the admission"));
    c->add_option("REQUEST_FILE", team.file, "The request `team join` wrote")->required();

    c = pushes(teamVerb(teamCmd, "remove", "remove", "Remove a member (an admin senior to them)"));
    c->add_option("USER", team.subject, "The member's userId")->required();
    pushes(teamVerb(teamCmd, "leave", "leave", "Leave the team (any member but the founder)"));

    CLI::App* g = teamGroup("device", "Manage devices");
    c = pushes(teamVerb(g, "remove", "device remove",
                 "Remove a device: one of yours, or (an admin senior to its member) anyone's"));
    c->add_option("DEVICE", team.subject, "The device key, 64 hex digits")->required();

    g = teamGroup("role", "Give and take members' roles");
    for (const char* verb : {"add", "remove"}) {
      c = pushes(teamVerb(g, verb, std::string("role ") + verb,
                          std::string_view(verb) == "add" ? "Give a member a role (admins)"
                                                          : "Take a role from a member (yourself, "
                                                            "or an admin senior to them)"));
      c->add_option("USER", team.subject, "The member's userId")->required();
      c->add_option("ROLE", team.role, "1 to 32 characters of a-z, 0-9, _ and - (admin is the "
                                       "admin role)")->required();
    }

    g = teamGroup("access", "Set and show document access (the team protocol §9)");
    c = pushes(teamVerb(g, "set", "access set", "Set a principal's access to one document, or to all "
                                         "of them (*); admins only"));
    c->add_option("DOC", team.subject, "A document ID (portcullis:...) or *")->required();
    c->add_option("PRINCIPAL", team.principal, "everyone, role:R, member:U or server:KEY")
        ->required();
    c->add_option("LEVEL", team.level, "read, write or none")->required();
    c = teamVerb(g, "show", "access show", "Show every member's and server's access level");
    c->add_option("DOC", team.subject, "A document ID (portcullis:...); default *");

    g = teamGroup("server", "Add and remove the team's servers");
    for (const char* verb : {"add", "remove"}) {
      c = pushes(teamVerb(g, verb, std::string("server ") + verb,
                          std::string_view(verb) == "add" ? "Add a server (admins)"
                                                          : "Remove a server (admins)"));
      c->add_option("KEY", team.subject, "The server's key, 64 hex digits (`serve` prints it)")
          ->required();
    }

    teamVerb(teamCmd, "members", "members", "List members: admin, roles, devices");
    c = teamVerb(teamCmd, "devices", "devices", "List your member's devices");
    c->add_flag("--all", team.all, "Every member's devices");
    teamVerb(teamCmd, "log", "log", "The team's history as people read it, oldest first, with "
                                    "each link's validity");
    teamVerb(teamCmd, "verify", "verify", "Re-read the state directory, check every signature, "
                                          "re-evaluate, and summarise");
    c = teamVerb(teamCmd, "export", "export", "Write every link to a new file, for `team "
                                              "import` or `team join --from`");
    c->add_option("FILE", team.file, "The file to create (never overwritten)")->required();
    c = teamVerb(teamCmd, "import", "import", "Add the links of a `team export` file");
    c->add_option("FILE", team.file, "The file to read")->required();
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
  if (teamCmd->parsed()) return runTeam(team);
  if (loginCmd->parsed() || whoamiCmd->parsed() || onlineCmd->parsed()) return runOnline(online);
  return runDoc(doc);
}
