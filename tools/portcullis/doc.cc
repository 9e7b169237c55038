// doc.cc — `portcullis doc new|get|set|watch --connect ADDRESS`: a short-lived client peer
// (memory only, no listener) that authenticates to one server with the provider of --config
// ([auth]; `open` without a config) and works on one document.
//
// Every wait is bounded by --timeout: connecting and authenticating, finding the document, and
// the server's durable acknowledgement (storedHeads) of a change, which `new` and `set` wait for
// before they succeed; a server that refuses the change (its auth provider's okToReceive) says
// so, and they fail at once with "refused by the server". `watch` runs until SIGINT or SIGTERM.

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <set>

#include "json_edit.h"
#include "tcp_network.h"
#include "tool.h"

namespace portcullis::tool {

namespace {

using Clock = std::chrono::steady_clock;

// One client peer and what its events told it. Everything runs on ctx's one thread.
struct Client {
  asio::io_context ctx;
  asio::steady_timer wake{ctx};  // cancelled by every event, to re-check what we wait for
  std::string address;
  ServerDial dial{std::string()};  // fails the wait at once on a refused port or unknown host
  Clock::time_point deadline;
  std::optional<PeerId> server;
  std::optional<std::string> refusal;
  std::optional<DocumentId> watched;
  bool verbDone = false;  // a signal may stop the loop before; then only `watch` succeeded
  std::shared_ptr<AuthProvider> auth;
  std::unique_ptr<Repo> repo;

  // Waits until `done()` or the deadline; false at the deadline.
  asio::awaitable<bool> waitFor(const std::function<bool()>& done) {
    while (!done()) {
      if (Clock::now() >= deadline) co_return false;
      wake.expires_at(deadline);
      boost::system::error_code ec;
      co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return true;
  }
  void notify() { wake.cancel(); }
};

// The document `url` names. An automerge-repo URL gets an answer of its own: it is well formed
// there, but portcullis documents are not automerge documents (README "Not automerge").
Result<DocumentId> parseDocumentUrl(std::string_view url) {
  if (url.starts_with("automerge:")) {
    return Error(Errc::Malformed,
                 "URL: automerge: URLs are not accepted: portcullis has its own document format "
                 "and sync protocol, so it cannot fetch or edit an automerge-repo document; its "
                 "URLs start with \"portcullis:\" (as `doc new` prints them)");
  }
  auto id = DocumentId::parse(url);
  if (!id) return Error(Errc::Malformed, "URL: " + id.error().message());
  return id;
}

asio::awaitable<Result<void>> connect(Client& c, double timeoutSeconds) {
  co_await c.waitFor(
      [&] { return c.server.has_value() || c.refusal.has_value() || c.dial.failed(); });
  if (c.server) co_return Result<void>();
  if (c.refusal) co_return Error(Errc::Denied, c.address + ": " + *c.refusal);
  // Refused or unresolvable at once, else unreachable or stuck in the handshake at the deadline.
  co_return c.dial.error(timeoutSeconds);
}

// Whether the server's durable heads cover every head in `mine`.
bool covers(const DocHandle& handle, const std::vector<ChangeHash>& stored,
            const std::vector<ChangeHash>& mine) {
  std::set<ChangeHash> storedSet(stored.begin(), stored.end());
  bool direct = true;
  for (const ChangeHash& h : mine) direct = direct && storedSet.contains(h);
  if (direct) return true;
  const ChangeGraph& graph = handle.doc().graph();
  for (const ChangeHash& h : stored) {
    if (!graph.contains(h)) return false;  // not here yet: their changes are on their way
  }
  std::set<ChangeHash> after;
  for (const ChangeEnvelope* e : graph.changesSince(stored)) after.insert(e->hash);
  for (const ChangeHash& h : mine) {
    if (after.contains(h)) return false;
  }
  return true;
}

asio::awaitable<Result<void>> awaitStored(Client& c, const DocHandle& handle) {
  const std::vector<ChangeHash> mine = handle.heads();
  // The server names only changes it refused and does not hold, and this client's changes to the
  // document are all it could send: any of them refused means the change will never be stored.
  bool refused = false;
  bool ok = co_await c.waitFor([&] {
    if (!c.server) return false;
    refused = !c.repo->peerRefused(*c.server, handle.id()).empty();
    return refused || covers(handle, c.repo->peerStoredHeads(*c.server, handle.id()), mine);
  });
  if (refused) {
    co_return Error(Errc::Denied, "refused by the server at " + c.address + ": it does not "
                                  "accept this client's changes to the document");
  }
  if (!ok) {
    co_return Error(Errc::Disconnected, "the server at " + c.address + " did not confirm storing "
                                        "the change in time");
  }
  co_return Result<void>();
}

nlohmann::json hashesJson(const std::vector<ChangeHash>& heads) {
  nlohmann::json out = nlohmann::json::array();
  for (const ChangeHash& h : heads) out.push_back(h.toHex());
  return out;
}

void printDocument(const DocHandle& handle, bool pretty) {
  std::string text = handle.toJson();
  if (pretty) text = nlohmann::json::parse(text).dump(2);
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
}

// Before writing, the provider's own state catches up with the server's (the team provider:
// the team's links), so that the change declares what the server knows (a member whose access
// just changed is judged by the new access). Bounded by the deadline; then it writes anyway and
// the server judges.
asio::awaitable<void> awaitInStep(Client& c) {
  asio::steady_timer poll(c.ctx);
  while (!c.auth->inStepWith(*c.server) && Clock::now() < c.deadline) {
    poll.expires_after(std::chrono::milliseconds(5));
    boost::system::error_code ec;
    co_await poll.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<Result<void>> runVerb(Client& c, const DocArgs& args,
                                      const nlohmann::json* value) {
  auto connected = co_await connect(c, args.timeoutSeconds);
  if (!connected) co_return connected;
  if (args.verb == "new" || args.verb == "set") co_await awaitInStep(c);

  if (args.verb == "new") {
    DocHandle handle = c.repo->create();
    auto made = handle.change([](Transaction&) { return Result<void>(); },
                              CommitOptions{.message = "created", .time = {}, .allowEmpty = true});
    if (!made) co_return made.error();
    auto stored = co_await awaitStored(c, handle);
    if (!stored) co_return stored;
    const std::string url = handle.id().toString();
    if (args.json) {
      std::printf("%s\n", nlohmann::json{{"url", url}}.dump().c_str());
    } else {
      std::printf("%s\n", url.c_str());
    }
    co_return Result<void>();
  }

  auto id = parseDocumentUrl(args.url);
  if (!id) co_return std::move(id).error();
  auto found = co_await c.repo->find(*id);
  if (!found) {
    if (found.error().code() == Errc::NotFound) {
      co_return Error(Errc::NotFound, args.url + " is unavailable at " + c.address);
    }
    co_return found.error();
  }
  DocHandle handle = *found;
  if (!handle.isOpen()) co_return Error(Errc::Denied, "this node cannot open " + args.url);

  if (args.verb == "get") {
    printDocument(handle, !args.json);
  } else if (args.verb == "set") {
    auto changed = handle.change([&](Transaction& tx) {
      return setAtPointer(tx, handle.doc(), args.pointer, *value);
    });
    if (!changed) co_return changed.error();  // it names the part of the pointer that failed
    auto stored = co_await awaitStored(c, handle);
    if (!stored) co_return stored;
    if (args.json) {
      nlohmann::json out{{"url", args.url}, {"heads", hashesJson(handle.heads())}};
      std::printf("%s\n", out.dump().c_str());
    }
  } else {  // watch: the document now, then after every change, until a signal.
    printDocument(handle, false);
    c.watched = *id;
    c.deadline = Clock::time_point::max();
    co_await c.waitFor([] { return false; });
  }
  co_return Result<void>();
}

asio::awaitable<void> runAndStop(Client& c, const DocArgs& args, const nlohmann::json* value,
                                 Result<void>& out) {
  out = co_await runVerb(c, args, value);
  c.verbDone = true;
  auto bye = co_await c.repo->shutdown();
  if (out && !bye) out = std::move(bye).error();
  c.ctx.stop();
}

asio::awaitable<void> stopOnSignal(asio::signal_set& signals, Client& c) {
  boost::system::error_code ec;
  co_await signals.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  auto bye = co_await c.repo->shutdown();
  (void)bye;  // leaving anyway; the server notices the closed connection
  c.ctx.stop();
}

}  // namespace

int runDoc(const DocArgs& args) {
  setupLogging(args.logLevel, "error");
  // Check what can be checked before any connection.
  if (args.verb != "new") {
    if (auto id = parseDocumentUrl(args.url); !id) {
      return failWith(kExitUsage, id.error().message());
    }
  }
  nlohmann::json value;
  if (args.verb == "set") {
    value = nlohmann::json::parse(args.value, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) {
      return failWith(kExitUsage, "VALUE is not JSON: " + args.value +
                                      " (a string needs quotes: '\"milk\"')");
    }
    auto pointer = parseJsonPointer(args.pointer);
    if (!pointer) return failWith(kExitUsage, "POINTER: " + pointer.error().message());
    if (pointer->empty()) {
      return failWith(kExitUsage, "POINTER: must name a key below the root, e.g. /title");
    }
  }
  Client c;
  c.address = args.connect;
  c.dial = ServerDial(args.connect);
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(args.timeoutSeconds));
  c.deadline = Clock::now() + timeout;
  auto net = TcpNetworkAdapter::create(
      c.ctx.get_executor(),
      TcpNetworkOptions{.listen = {}, .connect = {args.connect},
                        .minBackoff = std::chrono::milliseconds(50),
                        .maxBackoff = std::chrono::milliseconds(1'000),
                        .connectTimeout = timeout,
                        .onDial = c.dial.reporter([&c] { c.notify(); })});
  if (!net) return failWith(kExitUsage, "--connect: " + net.error().message());
  auto config = loadNodeConfig(args.config);
  if (!config) return failWith(kExitUsage, config.error().message());
  auto provider = providerFromConfig(*config);
  if (!provider) return failWith(kExitUsage, provider.error().message());
  if (args.config.empty()) {
    std::fprintf(stderr, "portcullis: note: no --config, so the 'open' provider (development "
                         "only: no authentication)\n");
  }

  c.auth = *provider;
  RepoOptions options;
  options.network = {*net};
  options.auth = *provider;
  options.handshakeTimeout = timeout;
  options.findTimeout = timeout;
  options.events.peerAuthenticated = [&c](const PeerIdentity& p) {
    if (!c.server) c.server = p.peer;
    c.notify();
  };
  options.events.peerRefused = [&c](const std::string&, const Error& e) {
    if (!c.server) c.refusal = describeHandshakeFailure(c.auth->name(), e);
    c.notify();
  };
  options.events.peerStored = [&c](const PeerId&, const DocumentId&,
                                   const std::vector<ChangeHash>&) { c.notify(); };
  options.events.changesRefusedByPeer = [&c](const PeerId&, const DocumentId&,
                                             const std::vector<ChangeHash>&) { c.notify(); };
  options.events.documentChanged = [&c](const DocumentId& id) {
    if (c.watched == id) {
      if (auto handle = c.repo->findLocal(id)) printDocument(*handle, false);
    }
    c.notify();
  };
  c.repo = std::make_unique<Repo>(c.ctx.get_executor(), std::move(options));

  Result<void> outcome = Result<void>();
  asio::signal_set signals(c.ctx, SIGINT, SIGTERM);
  asio::co_spawn(c.ctx, stopOnSignal(signals, c), asio::detached);
  asio::co_spawn(c.ctx, runAndStop(c, args, &value, outcome), asio::detached);
  c.ctx.run();
  c.repo.reset();
  // Exit 0 from `new` or `set` means the server stored the change: a signal that came first is a
  // failure, never a silent success.
  if (!c.verbDone && args.verb != "watch") {
    return failWith(kExitFailed, "interrupted by a signal before " + args.verb + " completed");
  }
  if (!outcome) return failWith(kExitFailed, outcome.error().message());
  return kExitOk;
}

}  // namespace portcullis::tool
