// team_net.cc — the `team` verbs that talk to a peer over TCP: `team join CODE --connect ADDRESS`
// (an invitee joins through a member device, §6.3) and `--connect ADDRESS` after a verb that
// signs a link (the link goes to that peer at once, by graph sync).
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "invitation.h"
#include "join.h"
#include "state_dir.h"
#include "tcp_network.h"
#include "team_graph.h"
#include "team_provider.h"
#include "tool.h"

namespace portcullis::tool {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::chrono::milliseconds timeoutOf(const TeamArgs& args) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(args.timeoutSeconds));
}

// Dials --connect; what becomes of the dial is reported to `dial` (a refused port or an unknown
// host fails at once, with the OS's error).
Result<std::shared_ptr<TcpNetworkAdapter>> dialer(asio::io_context& ctx, const TeamArgs& args,
                                                  const ServerDial& dial) {
  return TcpNetworkAdapter::create(
      ctx.get_executor(), TcpNetworkOptions{.listen = {}, .connect = {args.connect},
                                            .minBackoff = std::chrono::milliseconds(50),
                                            .maxBackoff = std::chrono::milliseconds(1'000),
                                            .connectTimeout = timeoutOf(args),
                                            .onDial = dial.reporter({})});
}

// A config a member device can use at once: this state directory, the peer it joined through.
std::string configText(const TeamArgs& args, const std::string& teamName) {
  return "# Made by `portcullis team join`: this device in team '" + teamName +
         "'.\n"
         "# portcullis doc get URL --config THIS_FILE --connect " +
         args.connect +
         "\n"
         "[network]\n"
         "connect = [" +
         nlohmann::json(args.connect).dump() +
         "]\n"
         "[auth]\n"
         "provider = \"team\"\n"
         "[auth.team]\n"
         "state = \".\"\n";
}

}  // namespace

int teamJoinOverNetwork(const TeamArgs& args) {
  std::string code = args.code;
  if (code == "-") std::getline(std::cin, code);
  if (auto parsed = team::parseInvitationCode(code); !parsed) {
    secureWipe(code.data(), code.size());
    return failWith(kExitUsage, "CODE: " + parsed.error().message());
  }
  std::error_code ec;
  if (fs::exists(fs::symlink_status(args.state, ec))) {
    secureWipe(code.data(), code.size());
    return failWith(kExitUsage, "--state " + args.state + ": exists; a new device joins into a "
                                "new state directory");
  }
  asio::io_context ctx;
  const ServerDial dial(args.connect);
  auto net = dialer(ctx, args, dial);
  if (!net) return failWith(kExitUsage, "--connect: " + net.error().message());
  DeviceKey device = DeviceKey::generate();
  std::optional<Result<team::JoinedTeam>> joined;
  bool dialed = false;
  (*net)->start([&](std::unique_ptr<Stream> stream, Side) {
    if (dialed) return;  // a redial after the join: not needed
    dialed = true;
    asio::co_spawn(
        ctx,
        [&, s = std::move(stream)]() mutable -> asio::awaitable<void> {
          // (No temporaries with destructors inside co_await: g++ 12 destroys them twice.)
          team::JoinOptions options{.userId = args.user, .deadline = timeoutOf(args)};
          auto join = team::joinTeam(std::move(s), std::move(code), device, std::move(options));
          joined = co_await std::move(join);
        },
        asio::detached);
  });
  // Argon2id runs on its own thread and does not count against the deadline.
  const auto dialDeadline = Clock::now() + timeoutOf(args);
  while (!joined && !dial.failed() && (dialed || Clock::now() < dialDeadline)) {
    ctx.run_for(std::chrono::milliseconds(20));
    if (ctx.stopped()) ctx.restart();
  }
  (*net)->stop();
  secureWipe(code.data(), code.size());
  if (!joined) return failWith(kExitFailed, dial.error(args.timeoutSeconds).message());
  if (!*joined) {
    return failWith(kExitFailed, "join: " + describeHandshakeFailure("team", joined->error()));
  }

  const team::JoinedTeam& team = **joined;
  auto dir = team::TeamStateDir::create(args.state, team.teamId, std::move(device), 0);
  if (!dir) return failWith(kExitFailed, dir.error().message());
  if (auto ok = dir->appendLinks(team.links); !ok) return failWith(kExitFailed, ok.error().message());
  const std::string config = (fs::path(args.state) / "config.toml").string();
  {
    std::ofstream out(config, std::ios::trunc);
    out << configText(args, team.teamName);
    if (!out) return failWith(kExitFailed, config + ": could not be written");
  }
  ::chmod(config.c_str(), 0600);
  const std::string deviceHex = dir->deviceKey().publicKeyHex();
  const nlohmann::json out{{"team", toHex(ByteView(team.teamId))},
                           {"name", team.teamName},
                           {"userId", team.userId},
                           {"device", deviceHex},
                           {"admittedBy", toHex(ByteView(team.responder))},
                           {"state", args.state},
                           {"config", config}};
  if (args.json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("joined team '%s' as %s (device %s), admitted by device %s\n"
                "state in %s; use --config %s\n",
                team.teamName.c_str(), team.userId.c_str(), deviceHex.c_str(),
                toHex(ByteView(team.responder)).substr(0, 8).c_str(), args.state.c_str(),
                config.c_str());
  }
  return kExitOk;
}

int teamPush(const TeamArgs& args) {
  asio::io_context ctx;
  const ServerDial dial(args.connect);
  auto net = dialer(ctx, args, dial);
  if (!net) return failWith(kExitUsage, "--connect: " + net.error().message());
  auto provider = team::makeTeamProvider({.state = args.state});
  if (!provider) return failWith(kExitFailed, provider.error().message());
  std::optional<PeerId> peer;
  std::optional<std::string> refusal;
  RepoOptions options;
  options.network = {*net};
  options.auth = *provider;
  options.handshakeTimeout = timeoutOf(args);
  options.events.peerAuthenticated = [&](const PeerIdentity& p) { peer = p.peer; };
  options.events.peerRefused = [&](const std::string&, const Error& e) {
    if (!peer) refusal = describeHandshakeFailure("team", e);
  };
  auto repo = std::make_unique<Repo>(ctx.get_executor(), std::move(options));
  const auto deadline = Clock::now() + timeoutOf(args);
  auto synced = [&] { return peer && team::teamSyncedWith(**provider, *peer); };
  while (!synced() && !refusal && !dial.failed() && Clock::now() < deadline) {
    ctx.run_for(std::chrono::milliseconds(10));
    if (ctx.stopped()) ctx.restart();
  }
  const bool done = synced();
  repo.reset();
  ctx.run_for(std::chrono::milliseconds(10));
  if (refusal) return failWith(kExitFailed, args.connect + ": " + *refusal);
  if (!done && !peer) {
    return failWith(kExitFailed, "the link is signed and kept here (it goes with the next sync), "
                                 "but " + dial.error(args.timeoutSeconds).message());
  }
  if (!done) {
    return failWith(kExitFailed, "the link is signed and kept here, but " + args.connect +
                                     " did not confirm having it in time; it goes with the next "
                                     "sync");
  }
  if (!args.json) std::printf("sent to %s\n", args.connect.c_str());
  return kExitOk;
}

}  // namespace portcullis::tool
