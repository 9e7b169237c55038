// The Transport benchmark of bench/README.md ("tcp_bench"): portcullis over TCP loopback between
// two processes. This process is A; B is a real `portcullis serve` (fs storage in a temp dir)
// spawned by this one, or, for the one figure without storage, this executable in its
// memory-peer mode. Each figure runs against a fresh B and prints one JSON line on stdout:
//   --figure changes  10,000 single-key commits at A, until B's durable acknowledgement covers the
//                     last (tcp.changes_stored), and until a memory-only B has applied it
//                     (tcp.changes_applied)
//   --figure find     a fresh A finds 1,000 documents that only B has (tcp.find)
//   --figure rss      B's memory with 1,000 idle, authenticated peers (tcp.rss_per_peer)
// Every wait is bounded; children get SIGTERM, then SIGKILL, and temp dirs are removed.
#include <signal.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench_process.h"
#include "portcullis/repo.h"
#include "tcp_network.h"
#include "wire/sync_codec.h"

namespace {

using namespace portcullis;
using namespace portcullis::bench;
using namespace std::chrono_literals;
using asio::ip::tcp;
namespace fs = std::filesystem;

constexpr int kChanges = 10'000;
constexpr int kDocuments = 1'000;
constexpr int kIdlePeers = 1'000;
constexpr double kRssTargetKiB = 100;
// Bounds on every wait, so that a broken build fails with a message instead of hanging.
constexpr auto kConnectBound = 15s;   // A's session with B
constexpr auto kWorkloadBound = 120s; // one figure's workload
constexpr int kDialConcurrency = 64;  // raw connections in flight at once (rss figure)

// `portcullis serve` with the open provider and fs storage in `dir`, in a fresh process.
struct Server {
  Server(const std::string& exe, const fs::path& dir, int handshakeTimeoutMs)
      : log(dir / "serve.log"), child(command(exe, dir, handshakeTimeoutMs), log),
        ready(awaitReady(child, log, "portcullis serve", 15s)) {}

  static std::vector<std::string> command(const std::string& exe, const fs::path& dir,
                                          int handshakeTimeoutMs) {
    const fs::path config = dir / "node.toml";
    std::ofstream out(config);
    out << "[network]\nlisten = \"127.0.0.1:0\"\nhandshake-timeout-ms = " << handshakeTimeoutMs
        << "\n[storage]\npath = \"data\"\n[auth]\nprovider = \"open\"\n[auth.open]\n"
           "peer-id = \"bench-server\"\n";
    if (!out.flush()) fail("cannot write " + config.string());
    return {exe, "serve", "--config", config.string(), "--json"};
  }

  // Stops the server; a server that does not exit 0 on SIGTERM fails the figure.
  void stop() {
    const std::string status = child.stop();
    if (status != "exit 0") fail("portcullis serve: " + status + " on SIGTERM; log:\n" + readFile(log));
  }

  fs::path log;
  Child child;
  Ready ready;
};

// A: a Repo without storage that dials B over TCP, run on this thread.
struct Client {
  asio::io_context ctx;
  std::shared_ptr<TcpNetworkAdapter> net;
  std::unique_ptr<Repo> repo;
  std::function<void(const DocumentId&, const std::vector<ChangeHash>&)> onStored;

  Client(const std::string& address, const char* name) {
    auto made = TcpNetworkAdapter::create(ctx.get_executor(), TcpNetworkOptions{.connect = {address}});
    if (!made) fail("tcp: " + made.error().message());
    net = *made;
    RepoOptions o;
    o.network = {net};
    o.peerId = *PeerId::parse(name);
    o.auth = makeOpenProvider(*o.peerId);
    o.events.peerStored = [this](const PeerId&, const DocumentId& doc,
                                 const std::vector<ChangeHash>& heads) {
      if (onStored) onStored(doc, heads);
    };
    repo = std::make_unique<Repo>(ctx.get_executor(), std::move(o));
  }
  ~Client() { repo.reset(); }

  // Runs the loop until `done()`; fails with `what` after `bound`.
  void runUntil(const std::function<bool()>& done, Clock::duration bound, const std::string& what) {
    const auto deadline = Clock::now() + bound;
    while (!done()) {
      if (Clock::now() > deadline) fail(what + ": not done within the bound");
      if (ctx.stopped()) ctx.restart();
      ctx.run_one_for(5ms);
    }
  }
  void runFor(Clock::duration d) {
    const auto until = Clock::now() + d;
    runUntil([&] { return Clock::now() >= until; }, d + 1s, "idle");
  }
  void awaitPeer(const PeerId& peer) {
    runUntil([&] { return !repo->peers().empty() && repo->peers().front() == peer; },
             kConnectBound, "the session with " + peer.str());
  }
};

std::int64_t readInt(const DocHandle& h, const char* key) {
  if (!h.isOpen()) return -2;
  auto v = h.doc().get(ObjId::root(), key);
  auto* i = v ? std::get_if<std::int64_t>(&*v) : nullptr;
  return i ? *i : -2;
}

ChangeHash putInt(DocHandle& h, const char* key, std::int64_t value) {
  auto made = h.change([&](Transaction& tx) { return tx.put(ObjId::root(), key, ScalarValue(value)); });
  if (!made || !*made) fail("a local change failed");
  return **made;
}

bool contains(const std::vector<ChangeHash>& v, const ChangeHash& h) {
  return std::find(v.begin(), v.end(), h) != v.end();
}

void print(const char* bench, int n, double value, const char* unit, nlohmann::ordered_json extra) {
  nlohmann::ordered_json line;
  line["bench"] = bench;
  line["provider"] = "open";
  line["n"] = n;
  line["value"] = std::round(value * 1000) / 1000;
  line["unit"] = unit;
  for (auto& [k, v] : extra.items()) line[k] = v;
  std::printf("%s\n", line.dump().c_str());
  std::fflush(stdout);
}

struct Args {
  std::string portcullis;
  std::string self;  // this executable, for the memory peer
  std::string figure;
};

// --- changes -----------------------------------------------------------------------------------

// (1a) kChanges commits at A in one synchronous loop, each its own change; timed until the
// serve's storedHeads acknowledgement (after its fs write and fsync) covers the last one.
void changesStored(const Args& args) {
  TempDir dir("tcp_bench");
  Server server(args.portcullis, dir.path(), 10'000);
  std::optional<ChangeHash> waitingFor;
  std::optional<Clock::time_point> storedAt;
  {
    Client a(server.ready.address, "bench-writer");
    a.onStored = [&](const DocumentId&, const std::vector<ChangeHash>& heads) {
      if (waitingFor && !storedAt && contains(heads, *waitingFor)) storedAt = Clock::now();
    };
    a.awaitPeer(server.ready.peer);
    DocHandle doc = a.repo->create();
    waitingFor = putInt(doc, "k", -1);
    a.runUntil([&] { return storedAt.has_value(); }, kWorkloadBound, "B storing the first change");
    a.runFor(200ms);

    storedAt.reset();
    waitingFor.reset();
    const auto start = Clock::now();
    ChangeHash last{};
    for (int i = 0; i < kChanges; ++i) last = putInt(doc, "k", i);
    const double loopS = secondsSince(start);
    waitingFor = last;
    a.runUntil([&] { return storedAt.has_value(); }, kWorkloadBound,
               "B's storedHeads covering the last change");
    const double s = std::chrono::duration<double>(*storedAt - start).count();
    std::fprintf(stderr, "changes_stored: %d commits in %.1f ms, B stored the last after %.1f ms\n",
                 kChanges, loopS * 1e3, s * 1e3);
    print("tcp.changes_stored", kChanges, kChanges / s, "changes/s",
          {{"ms", std::round(s * 1e6) / 1e3},
           {"until", "B (portcullis serve, fs storage) acknowledges the last change as durably "
                     "stored: includes B's save delay (RepoOptions::saveDelay, 100 ms by default) "
                     "and its fsyncs"}});
  }
  server.stop();
}

std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// (1b) The same loop, timed until a memory-only B (this executable in --memory-peer mode) has
// applied the last change. B stamps the moment with its own steady_clock, which on Linux is
// CLOCK_MONOTONIC, one clock for every process, so the pipe back to A adds no time.
void changesApplied(const Args& args) {
  TempDir dir("tcp_bench");
  const fs::path log = dir.path() / "memory-peer.log";
  Child peer({args.self, "--memory-peer", std::to_string(kChanges - 1)}, log);
  const Ready ready = awaitReady(peer, log, "the memory peer");
  // B's lines: {"k":K,"t_ns":T} when it first shows k == -1 and k == kChanges - 1.
  auto seen = [&](std::int64_t k, std::int64_t& tNs) {
    while (auto line = peer.tryReadLine()) {
      auto j = nlohmann::json::parse(*line);
      if (j.at("k").get<std::int64_t>() == k) {
        tNs = j.at("t_ns").get<std::int64_t>();
        return true;
      }
    }
    return false;
  };
  {
    Client a(ready.address, "bench-writer");
    a.awaitPeer(ready.peer);
    DocHandle doc = a.repo->create();
    putInt(doc, "k", -1);
    std::int64_t tNs = 0;
    a.runUntil([&] { return seen(-1, tNs); }, kWorkloadBound, "B applying the first change");
    a.runFor(200ms);

    const std::int64_t startNs = nowNs();
    const auto start = Clock::now();
    for (int i = 0; i < kChanges; ++i) putInt(doc, "k", i);
    const double loopS = secondsSince(start);
    a.runUntil([&] { return seen(kChanges - 1, tNs); }, kWorkloadBound,
               "B applying the last change");
    const double s = static_cast<double>(tNs - startNs) / 1e9;
    std::fprintf(stderr, "changes_applied: %d commits in %.1f ms, B applied the last after %.1f ms\n",
                 kChanges, loopS * 1e3, s * 1e3);
    print("tcp.changes_applied", kChanges, kChanges / s, "changes/s",
          {{"ms", std::round(s * 1e6) / 1e3},
           {"until", "B (memory only, no storage) has applied the last change"}});
  }
  const std::string status = peer.stop();
  if (status != "exit 0") fail("the memory peer: " + status + "; log:\n" + readFile(log));
}

// The memory peer: a Repo without storage listening on 127.0.0.1:0, printing a ready line like
// `portcullis serve --json`, then {"k":K,"t_ns":T} the first time a document shows k == -1 and
// k == `last`. Exits 0 on SIGTERM.
asio::awaitable<void> stopOnSignal(asio::signal_set& signals, asio::io_context& ctx) {
  boost::system::error_code ec;
  co_await signals.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  ctx.stop();
}

int runMemoryPeer(std::int64_t last) {
  asio::io_context ctx;
  auto net = TcpNetworkAdapter::create(ctx.get_executor(),
                                       TcpNetworkOptions{.listen = {"127.0.0.1:0"}});
  if (!net) {
    std::fprintf(stderr, "memory peer: %s\n", net.error().message().c_str());
    return 1;
  }
  std::unique_ptr<Repo> repo;
  std::set<std::int64_t> reported;
  RepoOptions o;
  o.network = {*net};
  o.peerId = *PeerId::parse("bench-memory-peer");
  o.auth = makeOpenProvider(*o.peerId);
  o.events.documentChanged = [&](const DocumentId& id) {
    auto h = repo->findLocal(id);
    if (!h) return;
    const std::int64_t k = readInt(*h, "k");
    if ((k == -1 || k == last) && reported.insert(k).second) {
      std::printf("{\"k\":%lld,\"t_ns\":%lld}\n", static_cast<long long>(k),
                  static_cast<long long>(nowNs()));
      std::fflush(stdout);
    }
  };
  repo = std::make_unique<Repo>(ctx.get_executor(), std::move(o));
  const auto ep = (*net)->listeningOn().front();
  std::printf("{\"listening\":[\"%s:%u\"],\"peer\":\"%s\",\"provider\":\"open\"}\n",
              ep.address().to_string().c_str(), static_cast<unsigned>(ep.port()),
              repo->peerId().str().c_str());
  std::fflush(stdout);
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  asio::co_spawn(ctx, stopOnSignal(signals, ctx), asio::detached);
  ctx.run();
  repo.reset();
  return 0;
}

// --- find --------------------------------------------------------------------------------------

// Runs repo.find(id) and hands its result to `done` (co_spawn's own handler would need a
// default-constructible result).
asio::awaitable<void> findThen(Repo& repo, DocumentId id,
                               std::function<void(Result<DocHandle>)> done) {
  done(co_await repo.find(id));
}

// (2) B holds kDocuments documents {n: i} in its storage; a fresh A, never advertised to, starts
// every find at once and waits for all of them.
void findDocuments(const Args& args) {
  TempDir dir("tcp_bench");
  std::vector<DocumentId> ids;
  {
    // Seeding, untimed: a first server process receives the documents from a seeding Repo and
    // acknowledges each as stored.
    Server seedServer(args.portcullis, dir.path(), 10'000);
    std::unordered_map<DocumentId, ChangeHash> waiting;
    {
      Client seed(seedServer.ready.address, "bench-seed");
      seed.awaitPeer(seedServer.ready.peer);
      seed.onStored = [&](const DocumentId& doc, const std::vector<ChangeHash>& heads) {
        if (auto it = waiting.find(doc); it != waiting.end() && contains(heads, it->second)) {
          waiting.erase(it);
        }
      };
      for (int i = 0; i < kDocuments; ++i) {
        DocHandle h = seed.repo->create();
        waiting.emplace(h.id(), putInt(h, "n", i));
        ids.push_back(h.id());
      }
      seed.runUntil([&] { return waiting.empty(); }, kWorkloadBound,
                    "B storing the seeded documents");
    }
    seedServer.stop();
  }
  // A fresh server process over the same storage: the documents are on disk only, so nothing is
  // advertised to the finder when it connects; each find is a request that B answers from disk.
  Server server(args.portcullis, dir.path(), 10'000);
  {
    Client a(server.ready.address, "bench-finder");
    a.awaitPeer(server.ready.peer);
    int found = 0, correct = 0;
    const auto start = Clock::now();
    for (int i = 0; i < kDocuments; ++i) {
      asio::co_spawn(a.ctx,
                     findThen(*a.repo, ids[static_cast<std::size_t>(i)],
                              [&found, &correct, i](Result<DocHandle> h) {
                                ++found;
                                if (h && readInt(*h, "n") == i) ++correct;
                              }),
                     asio::detached);
    }
    a.runUntil([&] { return found == kDocuments; }, kWorkloadBound, "the finds");
    const double s = secondsSince(start);
    std::fprintf(stderr, "find: %d of %d documents found with the right value in %.1f ms\n",
                 correct, kDocuments, s * 1e3);
    if (correct != kDocuments) fail("find: documents missing or wrong");
    print("tcp.find", kDocuments, kDocuments / s, "docs/s",
          {{"ms", std::round(s * 1e6) / 1e3},
           {"until", "every find resolved with the document's value; B (portcullis serve) loads "
                     "each from its fs storage"}});
  }
  server.stop();
}

// --- rss ---------------------------------------------------------------------------------------

// Raw peers that speak the open handshake and hello by hand, then stay idle and connected.
struct RawPeers {
  RawPeers(tcp::endpoint server, PeerId serverPeer)
      : server(std::move(server)), serverPeer(std::move(serverPeer)) {}
  asio::io_context ctx;
  tcp::endpoint server;
  PeerId serverPeer;
  int next = 0;
  int done = 0;
  std::string error;
  std::vector<std::unique_ptr<tcp::socket>> sockets;
};

// One worker: dials peers one after another until all are taken. Fails into p.error.
asio::awaitable<void> dialIdlePeers(RawPeers& p) {
  while (p.next < kIdlePeers && p.error.empty()) {
    const int i = p.next++;
    char name[32];
    std::snprintf(name, sizeof name, "bench-idle-%04d", i);
    const std::string id = name;
    auto socket = std::make_unique<tcp::socket>(p.ctx);
    boost::system::error_code ec;
    co_await socket->async_connect(p.server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      p.error = "connect: " + ec.message();
      co_return;
    }
    socket->set_option(tcp::no_delay(true), ec);
    // The open handshake: one length byte and the claimed PeerId, each way.
    Bytes claim(1 + id.size());
    claim[0] = static_cast<std::uint8_t>(id.size());
    std::copy(id.begin(), id.end(), claim.begin() + 1);
    co_await asio::async_write(*socket, asio::buffer(claim),
                               asio::redirect_error(asio::use_awaitable, ec));
    std::uint8_t len = 0;
    if (!ec) {
      co_await asio::async_read(*socket, asio::buffer(&len, 1),
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    std::string theirs(len, '\0');
    if (!ec) {
      co_await asio::async_read(*socket, asio::buffer(theirs),
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec || theirs != p.serverPeer.str()) {
      p.error = "open handshake with peer " + id + ": " + (ec ? ec.message() : "wrong peer id");
      co_return;
    }
    // Hello both ways, as u32 BE length + capnp frames.
    const Bytes hello = detail::encodeMessage(detail::HelloMsg{
        .protocolVersion = detail::kProtocolVersion, .peerId = *PeerId::parse(id),
        .storageId = {}, .isEphemeral = true});
    Bytes frame(4 + hello.size());
    const auto n = static_cast<std::uint32_t>(hello.size());
    frame[0] = static_cast<std::uint8_t>(n >> 24);
    frame[1] = static_cast<std::uint8_t>(n >> 16);
    frame[2] = static_cast<std::uint8_t>(n >> 8);
    frame[3] = static_cast<std::uint8_t>(n);
    std::copy(hello.begin(), hello.end(), frame.begin() + 4);
    co_await asio::async_write(*socket, asio::buffer(frame),
                               asio::redirect_error(asio::use_awaitable, ec));
    std::uint8_t lenBytes[4] = {};
    if (!ec) {
      co_await asio::async_read(*socket, asio::buffer(lenBytes),
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    const std::size_t bodySize = std::size_t{lenBytes[0]} << 24 | std::size_t{lenBytes[1]} << 16 |
                                 std::size_t{lenBytes[2]} << 8 | lenBytes[3];
    if (!ec && bodySize > 4096) {
      p.error = "the server's hello is " + std::to_string(bodySize) + " bytes";
      co_return;
    }
    Bytes body(ec ? 0 : bodySize);
    if (!ec) {
      co_await asio::async_read(*socket, asio::buffer(body),
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      p.error = "hello with peer " + id + ": " + ec.message();
      co_return;
    }
    auto decoded = detail::decodeMessage(body);
    const auto* h = decoded ? std::get_if<detail::HelloMsg>(&*decoded) : nullptr;
    if (!h || h->peerId != p.serverPeer) {
      p.error = "the server's first frame to " + id + " is not its hello";
      co_return;
    }
    p.sockets.push_back(std::move(socket));
    ++p.done;
  }
}

// (3) B's VmRSS/VmHWM before and after kIdlePeers peers complete the open handshake and the
// hello exchange and stay connected, idle.
void idlePeersRss(const Args& args) {
  TempDir dir("tcp_bench");
  // The handshake deadline must not close the peers while they connect.
  Server server(args.portcullis, dir.path(), 600'000);
  std::this_thread::sleep_for(300ms);  // let start-up settle
  const ProcMemory before = readProcMemory(server.child.pid());

  auto hostPort = parseHostPort(server.ready.address);
  if (!hostPort) fail(hostPort.error().message());
  RawPeers p(tcp::endpoint(asio::ip::make_address(hostPort->first), hostPort->second),
             server.ready.peer);
  const auto start = Clock::now();
  for (int w = 0; w < kDialConcurrency; ++w) {
    asio::co_spawn(p.ctx, dialIdlePeers(p), [&p](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        p.error = ex.what();
      }
    });
  }
  const auto deadline = start + kWorkloadBound;
  while (p.done < kIdlePeers && p.error.empty()) {
    if (Clock::now() > deadline) fail("rss: peers not connected within the bound");
    if (p.ctx.stopped()) break;
    p.ctx.run_one_for(10ms);
  }
  if (!p.error.empty()) fail("rss: " + p.error);
  if (p.done != kIdlePeers) fail("rss: only " + std::to_string(p.done) + " peers connected");
  const double connectS = secondsSince(start);

  // The server logs "<peer> authenticated by 'open'" once it has our hello and holds a session.
  const std::string marker = "authenticated by 'open'";
  std::size_t sessions = 0;
  while ((sessions = countOccurrences(readFile(server.log), marker)) < kIdlePeers) {
    if (Clock::now() > deadline) {
      fail("rss: the server logged " + std::to_string(sessions) + " sessions, not " +
           std::to_string(kIdlePeers));
    }
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(300ms);
  const ProcMemory after = readProcMemory(server.child.pid());
  const std::size_t gone = countOccurrences(readFile(server.log), " gone: ");
  if (gone != 0) fail("rss: the server dropped " + std::to_string(gone) + " sessions");

  const double perPeerPeak = static_cast<double>(after.hwmKiB - before.rssKiB) / kIdlePeers;
  const double perPeerNow = static_cast<double>(after.rssKiB - before.rssKiB) / kIdlePeers;
  std::fprintf(stderr,
               "rss: %d sessions in %.2f s; server VmRSS %ld KiB before, %ld KiB after, VmHWM "
               "%ld KiB\n",
               kIdlePeers, connectS, before.rssKiB, after.rssKiB, after.hwmKiB);
  print("tcp.rss_per_peer", kIdlePeers, perPeerPeak, "KiB",
        {{"peak_rss_kib", after.hwmKiB},
         {"rss_before_kib", before.rssKiB},
         {"rss_after_kib", after.rssKiB},
         {"rss_after_per_peer_kib", std::round(perPeerNow * 1000) / 1000},
         {"target", kRssTargetKiB},
         {"met", perPeerPeak <= kRssTargetKiB},
         {"until", "(server VmHWM with every peer connected - VmRSS before) / peers; each peer "
                   "finished the open handshake and hello and the server logged its session"}});
  for (auto& s : p.sockets) {
    boost::system::error_code ignored;
    s->close(ignored);
  }
  server.stop();
}

constexpr const char* kUsage =
    "usage: tcp_bench --portcullis PATH [--figure changes|find|rss]\n"
    "  PATH: the built `portcullis` tool (build/tools/portcullis/portcullis)\n"
    "  without --figure, every figure runs, each against a fresh server process\n";

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  spdlog::set_level(spdlog::level::err);
  ::signal(SIGPIPE, SIG_IGN);
  Args args;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--portcullis") == 0 && i + 1 < argc) {
      args.portcullis = argv[++i];
    } else if (std::strcmp(argv[i], "--figure") == 0 && i + 1 < argc) {
      args.figure = argv[++i];
    } else if (std::strcmp(argv[i], "--memory-peer") == 0 && i + 1 < argc) {
      return runMemoryPeer(std::atoll(argv[++i]));
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "tcp_bench: unknown argument '%s'\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (args.portcullis.empty() ||
      !(args.figure.empty() || args.figure == "changes" || args.figure == "find" ||
        args.figure == "rss")) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (::access(args.portcullis.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "tcp_bench: '%s' is not an executable\n", args.portcullis.c_str());
    return 2;
  }
  args.portcullis = fs::absolute(args.portcullis).string();
  args.self = fs::read_symlink("/proc/self/exe").string();
  raiseFileLimit("tcp_bench");
  try {
    const bool all = args.figure.empty();
    if (all || args.figure == "changes") {
      changesStored(args);
      changesApplied(args);
    }
    if (all || args.figure == "find") findDocuments(args);
    if (all || args.figure == "rss") idlePeersRss(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tcp_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
