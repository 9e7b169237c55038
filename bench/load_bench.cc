// The load and hostile-socket trials of bench/README.md ("load_bench"): one real `portcullis
// serve` (shared-key provider, fs storage in a temp dir) spawned by this process, and every
// client in this one process, on one io_context, speaking the protocol itself: TCP, the
// library's secret handshake and box-stream (what the shared-key provider runs), hello, then
// `sync` frames.
//   --trial peers    many authenticated sessions at once; each writes changes to its own document
//                    and to one shared document; then every change is looked for in the server's
//                    data directory, and every session must have received every shared change
//   --trial hostile  honest writers timed on an idle server, then again while slow, oversized,
//                    garbage and request-flooding sockets attack it; every bad socket must be
//                    closed by its deadline or limit and logged once
//   --short          the sizes of the meson test (tests/meson.build, suite `load`)
// Figures are JSON lines on stdout; progress and the seed go to stderr. It exits 1 when a change
// is lost, a session never sees the shared document converge, a bad socket outlives its bound or
// is not logged exactly once, or anything does not finish within its bound; a missed goal (RSS
// per session, the attack ratio) is printed, not a failure.
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench_process.h"
#include "fs_storage.h"
#include "json_line.h"
#include "portcullis/repo.h"
#include "portcullis/secret_handshake.h"
#include "tcp_network.h"
#include "wire/sync_codec.h"

namespace {

using namespace portcullis;
using namespace portcullis::bench;
using namespace std::chrono_literals;
using asio::ip::tcp;
namespace fs = std::filesystem;

// Bounds on every wait, so that a broken server fails the trial with a message instead of
// hanging it.
constexpr auto kRampBound = 120s;      // every session authenticated
constexpr auto kWorkloadBound = 300s;  // every change stored, every session converged
constexpr auto kSettle = 500ms;        // before a memory reading
constexpr int kRampWindow = 100;       // handshakes in flight at once during the ramp
constexpr double kIdleSessionGoalKiB = 100;
constexpr double kAttackRatioGoal = 2;
// The request flood stays at half the server's frame quota (PeerQuotas::framesPerSecond, 5,000),
// the worst case for the server: the session is not closed for it. (The server counts frames as
// it reads them, so at 4,000 a second the backlog of a stall went over the quota.)
constexpr int kRequestsPerSecond = 2'500;
// An oversized frame announces this many bytes (the server's limit is 16 MiB).
constexpr std::uint32_t kOversizedFrame = 1u << 30;
// A closing socket counts as closed by its deadline within this slack; one closed for a broken
// rule must close within it of the offence.
constexpr auto kCloseSlack = 2s;

struct PeersSizes {
  int sessions = 1'000;
  int ownChanges = 100;
  int sharedChanges = 10;
};

struct HostileSizes {
  int honest = 50;
  int changes = 100;
  int dribblers = 1'000;
  int oversized = 100;
  int garbage = 100;
  int randomIds = 100'000;
  int handshakeTimeoutMs = 10'000;
};

struct Args {
  std::string portcullis;
  std::string trial;
  bool isShort = false;
  std::uint64_t seed = 0;
  // The server's soft limit on open files at start; serve raises it to the hard limit itself.
  std::optional<rlim_t> serverFileLimit;
};

// --- the server --------------------------------------------------------------------------------

// `portcullis serve` with the shared-key provider and fs storage in `dir`.
struct Server {
  Server(const Args& args, const fs::path& dir, const std::string& networkKeyHex,
         int handshakeTimeoutMs)
      : dir(dir), log(dir / "serve.log"),
        child(command(args.portcullis, dir, networkKeyHex, handshakeTimeoutMs), log,
              args.serverFileLimit),
        ready(awaitReady(child, log, "portcullis serve")) {
    auto hostPort = parseHostPort(ready.address);
    if (!hostPort) fail(hostPort.error().message());
    endpoint = tcp::endpoint(asio::ip::make_address(hostPort->first), hostPort->second);
    auto key = PublicKey::parse(ready.peer.str());
    if (!key) fail("the server's peer is not a key: " + ready.peer.str());
    publicKey.emplace(*key);
  }

  static std::vector<std::string> command(const std::string& exe, const fs::path& dir,
                                          const std::string& networkKeyHex,
                                          int handshakeTimeoutMs) {
    const fs::path identity = dir / "server.key";
    if (auto saved = DeviceKey::generate().save(identity.string()); !saved) {
      fail("server key: " + saved.error().message());
    }
    const fs::path config = dir / "node.toml";
    std::ofstream out(config);
    out << "[network]\nlisten = \"127.0.0.1:0\"\nhandshake-timeout-ms = " << handshakeTimeoutMs
        << "\n[storage]\npath = \"data\"\n[auth]\nprovider = \"shared-key\"\n"
           "[auth.shared-key]\nnetwork-key = \"" << networkKeyHex << "\"\nidentity = \""
        << identity.string() << "\"\n";
    if (!out.flush()) fail("cannot write " + config.string());
    return {exe, "serve", "--config", config.string(), "--json"};
  }

  ProcMemory memory() const { return readProcMemory(child.pid()); }

  // Stops the server; one that does not exit 0 on SIGTERM fails the trial.
  void stop() {
    const std::string status = child.stop();
    if (status != "exit 0") fail("portcullis serve: " + status + " on SIGTERM; log:\n" + readFile(log));
  }

  fs::path dir;
  fs::path log;
  Child child;
  Ready ready;
  tcp::endpoint endpoint;
  std::optional<PublicKey> publicKey;
};

// --- connections -------------------------------------------------------------------------------

// A connected socket as a Stream, for the handshake and the box-stream channel. Holds the socket
// by shared_ptr so that an operation still pending when the stream goes completes on a live one.
class SocketStream final : public Stream {
 public:
  explicit SocketStream(std::shared_ptr<tcp::socket> socket) : socket_(std::move(socket)) {}
  ~SocketStream() override { close(); }

  asio::awaitable<Result<std::size_t>> readSome(std::span<std::uint8_t> buf) override {
    auto socket = socket_;
    boost::system::error_code ec;
    const std::size_t n = co_await socket->async_read_some(
        asio::buffer(buf.data(), buf.size()), asio::redirect_error(asio::use_awaitable, ec));
    if (ec || n == 0) co_return Error(Errc::Disconnected, "closed");
    co_return n;
  }
  asio::awaitable<Result<void>> write(ByteView bytes) override {
    auto socket = socket_;
    boost::system::error_code ec;
    co_await asio::async_write(*socket, asio::buffer(bytes.data(), bytes.size()),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Error(Errc::Disconnected, ec.message());
    co_return Result<void>();
  }
  void close() override {
    boost::system::error_code ignored;
    socket_->close(ignored);
  }
  std::string remoteAddress() const override { return "server"; }
  std::string dialedAddress() const override { return {}; }

 private:
  std::shared_ptr<tcp::socket> socket_;
};

// A socket connected to `to`, with the port the server sees it come from (its log names it).
struct Connected {
  std::shared_ptr<tcp::socket> socket;
  std::uint16_t localPort = 0;
};

asio::awaitable<Result<Connected>> connectTo(tcp::endpoint to) {
  auto executor = co_await asio::this_coro::executor;
  auto socket = std::make_shared<tcp::socket>(executor);
  boost::system::error_code ec;
  co_await socket->async_connect(to, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Error(Errc::Io, "connect: " + ec.message());
  socket->set_option(tcp::no_delay(true), ec);
  const auto local = socket->local_endpoint(ec);
  co_return Connected{.socket = socket, .localPort = ec ? std::uint16_t{0} : local.port()};
}

// Reads until the server closes the socket; returns when it did.
asio::awaitable<Clock::time_point> awaitClose(std::shared_ptr<tcp::socket> socket) {
  std::array<std::uint8_t, 4096> sink{};
  for (;;) {
    boost::system::error_code ec;
    co_await socket->async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Clock::now();
  }
}

Bytes helloFrame(const PeerId& self) {
  return detail::encodeMessage(detail::HelloMsg{.protocolVersion = detail::kProtocolVersion,
                                                .peerId = self, .storageId = {},
                                                .isEphemeral = true});
}

// One simulated device: its key, and its peer ID as the server will know it.
struct Device {
  explicit Device(std::mt19937_64& rng) : key(seeded(rng)), peer(*PeerId::parse(key.publicKeyHex())) {}
  static DeviceKey seeded(std::mt19937_64& rng) {
    std::array<std::uint8_t, DeviceKey::kSeedSize> seed{};
    for (auto& b : seed) b = static_cast<std::uint8_t>(rng());
    return *DeviceKey::fromSeed(seed);
  }
  DeviceKey key;
  PeerId peer;
};

// The client's handshake with the server (shared-key's: shs1), then the hello both ways over
// box-stream. The session ends when the channel is destroyed.
asio::awaitable<Result<std::unique_ptr<MessageChannel>>> authenticate(const Server& server,
                                                                      const NetworkKey& networkKey,
                                                                      const Device& device) {
  auto connected = co_await connectTo(server.endpoint);
  if (!connected) co_return std::move(connected).error();
  auto stream = std::make_unique<SocketStream>(connected->socket);
  const ShsConfig config{.networkKey = networkKey, .identity = device.key};
  auto shs = co_await shsClient(*stream, config, *server.publicKey);
  if (!shs) co_return Error(shs.error().code(), "handshake: " + shs.error().message());
  std::unique_ptr<MessageChannel> channel = makeBoxStreamChannel(std::move(stream), std::move(*shs));
  const Bytes hello = helloFrame(device.peer);
  auto sent = co_await channel->send(hello);
  if (!sent) co_return std::move(sent).error();
  auto theirs = co_await channel->receive();
  if (!theirs) co_return std::move(theirs).error();
  auto decoded = detail::decodeMessage(*theirs);
  const auto* h = decoded ? std::get_if<detail::HelloMsg>(&*decoded) : nullptr;
  if (!h || h->peerId != server.ready.peer) co_return Error(Errc::Malformed, "no hello from the server");
  co_return std::move(channel);
}

// --- honest writers ----------------------------------------------------------------------------

// Changes made outside any Repo, as a device would bring them: each puts `key` to its index.
struct Edits {
  std::vector<Bytes> payloads;
  std::vector<ChangeHash> hashes;
};

Edits makeEdits(std::mt19937_64& rng, const std::string& key, int count) {
  std::array<std::uint8_t, ActorId::kDefaultSize> actor{};
  for (auto& b : actor) b = static_cast<std::uint8_t>(rng());
  DocumentOptions options;
  options.actor = *ActorId::fromBytes(actor);
  Document doc(std::move(options));
  Edits out;
  for (int i = 0; i < count; ++i) {
    Transaction tx = doc.transaction();
    if (!tx.put(ObjId::root(), key, ScalarValue(static_cast<std::int64_t>(i)))) fail("put failed");
    const std::optional<ChangeHash> hash = tx.commit();
    if (!hash) fail("commit made nothing");
    out.hashes.push_back(*hash);
    out.payloads.push_back(*doc.getChange(*hash));
  }
  return out;
}

DocumentId randomDocument(std::mt19937_64& rng) {
  std::array<std::uint8_t, DocumentId::kSize> bytes{};
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
  return *DocumentId::fromBytes(bytes);
}

bool contains(const std::vector<ChangeHash>& v, const ChangeHash& h) {
  return std::find(v.begin(), v.end(), h) != v.end();
}

// The document every writer of a trial also writes to, and which of its changes each writer has
// received from the server.
struct SharedDoc {
  DocumentId id;
  std::unordered_map<ChangeHash, std::size_t> index;  // every writer's changes to it
};

// A device that writes its edits, one change per `sync` frame as a person's edits go out, and
// reads what the server sends: storedHeads for its documents, the shared document's changes.
// Documents the server offers it are ignored (the protocol's "not interested": no answer).
struct Writer {
  Writer(std::mt19937_64& rng, int ownChanges, int sharedChanges, std::size_t number)
      : device(rng), own(randomDocument(rng)), ownEdits(makeEdits(rng, "k", ownChanges)),
        sharedEdits(makeEdits(rng, "w" + std::to_string(number), sharedChanges)) {}

  bool stored() const {
    return ownStored && (sharedEdits.hashes.empty() || sharedStored);
  }

  Device device;
  DocumentId own;
  Edits ownEdits;
  Edits sharedEdits;
  std::unique_ptr<MessageChannel> channel;
  bool ownStored = false;
  bool sharedStored = false;
  std::vector<bool> sharedSeen;
  std::size_t sharedSeenCount = 0;
  bool closing = false;
  std::string error;
};

asio::awaitable<void> readFrames(Writer& w, const SharedDoc* shared) {
  while (!w.closing) {
    auto frame = co_await w.channel->receive();
    if (!frame) {
      if (!w.closing) w.error = "session closed: " + frame.error().message();
      co_return;
    }
    auto decoded = detail::decodeMessage(*frame);
    if (!decoded) {
      w.error = "a malformed frame from the server: " + decoded.error().message();
      co_return;
    }
    const auto* sync = std::get_if<detail::SyncMsg>(&*decoded);
    if (!sync) continue;
    if (sync->doc == w.own) {
      if (contains(sync->storedHeads, w.ownEdits.hashes.back())) w.ownStored = true;
    } else if (shared && sync->doc == shared->id) {
      for (const Bytes& payload : sync->changes) {
        auto it = shared->index.find(ChangeHash::of(payload));
        if (it != shared->index.end() && !w.sharedSeen[it->second]) {
          w.sharedSeen[it->second] = true;
          ++w.sharedSeenCount;
        }
      }
      if (contains(sync->storedHeads, w.sharedEdits.hashes.back())) w.sharedStored = true;
    }
  }
}

asio::awaitable<Result<void>> sendEdits(MessageChannel& channel, DocumentId doc, const Edits& edits) {
  for (std::size_t i = 0; i < edits.payloads.size(); ++i) {
    detail::SyncMsg msg;
    msg.doc = doc;
    msg.heads = {edits.hashes[i]};
    msg.changes = {edits.payloads[i]};
    const Bytes frame = detail::encodeMessage(msg);
    auto sent = co_await channel.send(frame);
    if (!sent) co_return sent;
  }
  co_return Result<void>();
}

// Sends the writer's own edits, then its edits to the shared document.
asio::awaitable<void> write(Writer& w, const SharedDoc* shared) {
  auto sent = co_await sendEdits(*w.channel, w.own, w.ownEdits);
  if (sent && shared && !w.sharedEdits.payloads.empty()) {
    sent = co_await sendEdits(*w.channel, shared->id, w.sharedEdits);
  }
  if (!sent) w.error = "writing: " + sent.error().message();
}

// Runs `ctx` until `done()`, failing after `bound`; `what` says what was waited for, as it
// stands at the bound.
void runUntil(asio::io_context& ctx, const std::function<bool()>& done, Clock::duration bound,
              const std::function<std::string()>& what) {
  const auto deadline = Clock::now() + bound;
  while (!done()) {
    if (Clock::now() > deadline) fail(what() + ": not done within the bound");
    if (ctx.stopped()) ctx.restart();
    ctx.run_one_for(5ms);
  }
}

void runUntil(asio::io_context& ctx, const std::function<bool()>& done, Clock::duration bound,
              const std::string& what) {
  runUntil(ctx, done, bound, [&] { return what; });
}

void spawn(asio::io_context& ctx, asio::awaitable<void> task, std::string& error) {
  asio::co_spawn(ctx, std::move(task), [&error](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      error = x.what();
    }
  });
}

// A group of writers: authenticated kRampWindow at a time, then writing all at once.
struct Writers {
  std::vector<std::unique_ptr<Writer>> all;
  std::size_t next = 0;
  std::size_t authenticated = 0;
  std::string error;

  std::string firstError() const {
    if (!error.empty()) return error;
    for (const auto& w : all) {
      if (!w->error.empty()) return w->device.peer.str() + ": " + w->error;
    }
    return {};
  }
  void check(const char* phase) const {
    if (auto e = firstError(); !e.empty()) fail(std::string(phase) + ": " + e);
  }
  bool allStored() const {
    return std::all_of(all.begin(), all.end(), [](const auto& w) { return w->stored(); });
  }
  void close() {
    for (auto& w : all) {
      w->closing = true;
      if (w->channel) w->channel->close();
    }
  }
};

asio::awaitable<void> authenticateNext(Writers& ws, const Server& server, const NetworkKey& key,
                                       const SharedDoc* shared, asio::io_context& ctx) {
  while (ws.next < ws.all.size() && ws.error.empty()) {
    Writer& w = *ws.all[ws.next++];
    auto channel = co_await authenticate(server, key, w.device);
    if (!channel) {
      ws.error = "authenticating " + w.device.peer.str() + ": " + channel.error().message();
      co_return;
    }
    w.channel = std::move(*channel);
    if (shared) {
      // Its own changes count as seen: the server does not send a peer back what it sent.
      w.sharedSeen.assign(shared->index.size(), false);
      for (const ChangeHash& h : w.sharedEdits.hashes) w.sharedSeen[shared->index.at(h)] = true;
      w.sharedSeenCount = w.sharedEdits.hashes.size();
    }
    spawn(ctx, readFrames(w, shared), ws.error);
    ++ws.authenticated;
  }
}

void authenticateAll(Writers& ws, const Server& server, const NetworkKey& key,
                     const SharedDoc* shared, asio::io_context& ctx) {
  for (int i = 0; i < kRampWindow; ++i) spawn(ctx, authenticateNext(ws, server, key, shared, ctx), ws.error);
  runUntil(ctx, [&] { return ws.authenticated == ws.all.size() || !ws.firstError().empty(); },
           kRampBound, "authenticating " + std::to_string(ws.all.size()) + " sessions");
  ws.check("ramp");
}

void writeAll(Writers& ws, const SharedDoc* shared, asio::io_context& ctx) {
  for (auto& w : ws.all) spawn(ctx, write(*w, shared), ws.error);
  runUntil(ctx, [&] { return ws.allStored() || !ws.firstError().empty(); }, kWorkloadBound,
           "every change stored");
  ws.check("writing");
}

// --- verification from the server's data directory ---------------------------------------------

asio::awaitable<void> findThen(Repo& repo, DocumentId id, std::function<void(Result<DocHandle>)> done) {
  done(co_await repo.find(id));
}

// Opens the stopped server's data directory with the fs storage and counts the changes of
// `expected` (document → hashes) it does not hold. `check` may look at each found document.
std::size_t countLost(const fs::path& data,
                      const std::vector<std::pair<DocumentId, const Edits*>>& expected,
                      const std::function<void(const DocumentId&, const Document&)>& check) {
  auto store = FsStorageAdapter::open(data);
  if (!store) fail("opening the server's data: " + store.error().message());
  asio::io_context ctx;
  RepoOptions options;
  options.storage = std::shared_ptr<StorageAdapter>(std::move(*store));
  options.auth = makeOpenProvider(*PeerId::parse("load-verifier"));
  Repo repo(ctx.get_executor(), std::move(options));
  std::size_t lost = 0;
  std::size_t done = 0;
  std::unordered_map<DocumentId, std::vector<const Edits*>> byDoc;
  for (const auto& [id, edits] : expected) byDoc[id].push_back(edits);
  for (const auto& [id, list] : byDoc) {
    asio::co_spawn(ctx, findThen(repo, id, [&, id = id, list = list](Result<DocHandle> h) {
                     ++done;
                     for (const Edits* edits : list) {
                       for (const ChangeHash& hash : edits->hashes) {
                         if (!h || !h->doc().graph().contains(hash)) ++lost;
                       }
                     }
                     if (h) check(id, h->doc());
                   }),
                   asio::detached);
  }
  runUntil(ctx, [&] { return done == byDoc.size(); }, kWorkloadBound, "reading the stored documents");
  return lost;
}

std::int64_t readInt(const Document& doc, const std::string& key) {
  auto v = doc.get(ObjId::root(), key);
  const auto* i = v ? std::get_if<std::int64_t>(&*v) : nullptr;
  return i ? *i : -1;
}

std::string randomHex(std::mt19937_64& rng, std::size_t bytes) {
  Bytes b(bytes);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return toHex(b);
}

// What each trial starts from: the seeded generator, a network key and a fresh server.
struct Setup {
  Setup(const Args& args, int handshakeTimeoutMs)
      : rng(args.seed), networkKeyHex(randomHex(rng, 32)),
        networkKey(*NetworkKey::parse(networkKeyHex)), dir("load_bench"),
        server(args, dir.path(), networkKeyHex, handshakeTimeoutMs) {}
  std::mt19937_64 rng;
  std::string networkKeyHex;
  NetworkKey networkKey;
  TempDir dir;
  Server server;
};

// --- trial 1: many peers -----------------------------------------------------------------------

void peersTrial(const Args& args, const PeersSizes& sizes) {
  Setup setup(args, 60'000);
  std::mt19937_64& rng = setup.rng;
  const NetworkKey& networkKey = setup.networkKey;
  Server& server = setup.server;

  SharedDoc shared{.id = randomDocument(rng), .index = {}};
  Writers ws;
  for (int i = 0; i < sizes.sessions; ++i) {
    ws.all.push_back(std::make_unique<Writer>(rng, sizes.ownChanges, sizes.sharedChanges,
                                              static_cast<std::size_t>(i)));
    for (const ChangeHash& h : ws.all.back()->sharedEdits.hashes) {
      shared.index.emplace(h, shared.index.size());
    }
  }
  std::this_thread::sleep_for(kSettle);
  const ProcMemory before = server.memory();

  asio::io_context ctx;
  const auto rampStart = Clock::now();
  authenticateAll(ws, server, networkKey, &shared, ctx);
  const double rampS = secondsSince(rampStart);
  // Idle: the server has logged every session (it logs once it holds the session).
  const std::string marker = "authenticated by 'shared-key'";
  runUntil(ctx, [&] { return countOccurrences(readFile(server.log), marker) >= ws.all.size(); },
           kRampBound, "the server logging every session");
  const auto idleUntil = Clock::now() + kSettle;
  runUntil(ctx, [&] { return Clock::now() >= idleUntil; }, kSettle + 1s, "settling");
  ws.check("idle");
  const ProcMemory idle = server.memory();

  const auto writeStart = Clock::now();
  writeAll(ws, &shared, ctx);
  const double storedS = secondsSince(writeStart);
  auto leastSeen = [&] {
    std::size_t least = shared.index.size();
    for (const auto& w : ws.all) least = std::min(least, w->sharedSeenCount);
    return least;
  };
  runUntil(ctx, [&] { return leastSeen() == shared.index.size() || !ws.firstError().empty(); },
           kWorkloadBound, [&] {
             return "every session receiving every change to the shared document (one has " +
                    std::to_string(leastSeen()) + " of " + std::to_string(shared.index.size()) +
                    ")";
           });
  ws.check("converging");
  const double convergedS = secondsSince(writeStart);
  const ProcMemory after = server.memory();
  server.stop();
  ws.close();
  ctx.run_for(100ms);

  std::vector<std::pair<DocumentId, const Edits*>> expected;
  for (const auto& w : ws.all) {
    expected.emplace_back(w->own, &w->ownEdits);
    expected.emplace_back(shared.id, &w->sharedEdits);
  }
  std::size_t wrongValues = 0;
  const std::size_t lost = countLost(server.dir / "data", expected,
                                     [&](const DocumentId& id, const Document& doc) {
    if (id == shared.id) {
      for (std::size_t i = 0; i < ws.all.size(); ++i) {
        if (readInt(doc, "w" + std::to_string(i)) != sizes.sharedChanges - 1) ++wrongValues;
      }
    } else if (readInt(doc, "k") != sizes.ownChanges - 1) {
      ++wrongValues;
    }
  });

  const auto n = static_cast<long long>(ws.all.size());
  const long long changes = n * (sizes.ownChanges + sizes.sharedChanges);
  const double perSession = (static_cast<double>(idle.rssKiB) - static_cast<double>(before.rssKiB)) / static_cast<double>(n);
  std::fprintf(stderr,
               "peers: %lld sessions in %.2f s; server VmRSS %ld KiB with none, %ld KiB idle, "
               "%ld KiB after; VmHWM %ld KiB; %lld changes stored in %.2f s, converged after "
               "%.2f s; lost %zu, wrong values %zu\n",
               n, rampS, before.rssKiB, idle.rssKiB, after.rssKiB, after.hwmKiB, changes, storedS,
               convergedS, lost, wrongValues);
  JsonLine("load.handshakes").integer("n", n).num("value", static_cast<double>(n) / rampS, 1)
      .str("unit", "handshakes/s").integer("in_flight", kRampWindow)
      .str("until", "TCP connect, shs1 handshake and hello both ways, for every session").print();
  JsonLine("load.rss_per_idle_session").integer("n", n).num("value", perSession, 1).str("unit", "KiB")
      .integer("rss_none_kib", before.rssKiB).integer("rss_idle_kib", idle.rssKiB)
      .num("target", kIdleSessionGoalKiB, 0).flag("met", perSession <= kIdleSessionGoalKiB).print();
  JsonLine("load.changes").integer("n", changes).num("value", static_cast<double>(changes) / storedS, 1)
      .str("unit", "changes/s").num("ms", storedS * 1e3, 1)
      .str("until", "the server's storedHeads cover every session's last change to each document")
      .print();
  JsonLine("load.converged").integer("n", static_cast<long long>(shared.index.size()))
      .num("value", convergedS * 1e3, 1).str("unit", "ms")
      .str("until", "every session has received every change to the shared document").print();
  JsonLine("load.peak_rss").integer("n", n).num("value", static_cast<double>(after.hwmKiB) / 1024, 1).str("unit", "MiB")
      .print();
  JsonLine("load.lost").integer("n", changes).integer("value", static_cast<long long>(lost))
      .integer("wrong_values", static_cast<long long>(wrongValues)).print();
  if (lost != 0 || wrongValues != 0) {
    fail("peers: " + std::to_string(lost) + " changes lost, " + std::to_string(wrongValues) +
         " documents with a wrong value");
  }
}

// --- trial 2: hostile sockets ------------------------------------------------------------------

// A bad socket: when it connected (or committed its offence) and when the server closed it.
struct BadSocket {
  const char* kind = "";
  std::uint16_t localPort = 0;    // the server logs dribblers by address
  std::optional<PeerId> peer;     // and authenticated ones by peer
  Clock::time_point offence{};    // connected (dribbler), or sent the bad bytes
  std::optional<Clock::time_point> closedAt;
  std::string error;
};

// Connects and writes one random byte a second until the server closes the socket.
asio::awaitable<void> dribble(const Server& server, BadSocket& bad, std::uint8_t seed) {
  auto connected = co_await connectTo(server.endpoint);
  if (!connected) {
    bad.error = connected.error().message();
    co_return;
  }
  bad.localPort = connected->localPort;
  bad.offence = Clock::now();
  auto executor = co_await asio::this_coro::executor;
  auto socket = connected->socket;
  asio::co_spawn(executor, awaitClose(socket), [&bad, socket](std::exception_ptr, Clock::time_point at) {
    bad.closedAt = at;
    boost::system::error_code ignored;
    socket->close(ignored);
  });
  asio::steady_timer tick(executor);
  std::uint8_t byte = seed;
  while (!bad.closedAt) {
    boost::system::error_code ec;
    co_await asio::async_write(*socket, asio::buffer(&byte, 1), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    byte = static_cast<std::uint8_t>(byte * 31 + 7);
    tick.expires_after(1s);
    co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

// Completes the handshake and the hello, then sends `offence` as raw box-stream bytes: a length
// message announcing kOversizedFrame, or bytes that are no box-stream at all.
asio::awaitable<void> misbehave(const Server& server, const NetworkKey& networkKey,
                                const Device& device, BadSocket& bad, Bytes garbage) {
  auto connected = co_await connectTo(server.endpoint);
  if (!connected) {
    bad.error = connected.error().message();
    co_return;
  }
  bad.localPort = connected->localPort;
  SocketStream stream(connected->socket);
  const ShsConfig config{.networkKey = networkKey, .identity = device.key};
  auto shs = co_await shsClient(stream, config, *server.publicKey);
  if (!shs) {
    bad.error = "handshake: " + shs.error().message();
    co_return;
  }
  BoxStreamEncoder encoder(std::move(shs->encryptKey), shs->encryptNonce);
  const Bytes hello = helloFrame(device.peer);
  Bytes out(BoxStreamEncoder::wireSize(hello.size()));
  encoder.encode(hello, out);
  if (garbage.empty()) {
    const std::array<std::uint8_t, 4> length = {
        static_cast<std::uint8_t>(kOversizedFrame >> 24), static_cast<std::uint8_t>(kOversizedFrame >> 16),
        static_cast<std::uint8_t>(kOversizedFrame >> 8), static_cast<std::uint8_t>(kOversizedFrame)};
    const std::size_t at = out.size();
    out.resize(at + BoxStreamEncoder::wireSize(length.size()));
    encoder.encode(length, std::span(out).subspan(at));
  } else {
    out.insert(out.end(), garbage.begin(), garbage.end());
  }
  bad.offence = Clock::now();
  auto written = co_await stream.write(out);
  if (!written) {
    bad.error = "writing: " + written.error().message();
    co_return;
  }
  bad.closedAt = co_await awaitClose(connected->socket);
}

// One authenticated peer asking for `count` random documents, kRequestsPerSecond at most.
struct Flood {
  std::unique_ptr<MessageChannel> channel;
  int sent = 0;
  int answered = 0;
  bool closed = false;
  std::string closeReason;
};

asio::awaitable<void> readAnswers(Flood& flood) {
  for (;;) {
    auto frame = co_await flood.channel->receive();
    if (!frame) {
      flood.closed = true;
      flood.closeReason = frame.error().message();
      co_return;
    }
    auto decoded = detail::decodeMessage(*frame);
    if (decoded && std::holds_alternative<detail::UnavailableMsg>(*decoded)) ++flood.answered;
  }
}

asio::awaitable<void> request(Flood& flood, std::vector<DocumentId> ids) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer pace(executor);
  const auto start = Clock::now();
  constexpr int kBurst = kRequestsPerSecond / 10;
  for (std::size_t i = 0; i < ids.size() && !flood.closed; ++i) {
    detail::SyncMsg msg;
    msg.doc = ids[i];
    msg.isRequest = true;
    msg.requestId = i + 1;
    const Bytes frame = detail::encodeMessage(msg);
    auto sent = co_await flood.channel->send(frame);
    if (!sent) co_return;
    ++flood.sent;
    if (flood.sent % kBurst == 0) {
      pace.expires_at(start + std::chrono::milliseconds(1000LL * flood.sent / kRequestsPerSecond));
      boost::system::error_code ec;
      co_await pace.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
}

// The flooder: authenticates, then requests `ids` while reading the answers.
asio::awaitable<void> flood(Flood& state, const Server& server, const NetworkKey& key,
                            const Device& device, std::vector<DocumentId> ids,
                            asio::io_context& ctx, std::string& error) {
  auto channel = co_await authenticate(server, key, device);
  if (!channel) {
    error = "the flooder: " + channel.error().message();
    co_return;
  }
  state.channel = std::move(*channel);
  spawn(ctx, readAnswers(state), error);
  co_await request(state, std::move(ids));
}

std::vector<std::unique_ptr<Writer>> makeWriters(std::mt19937_64& rng, int count, int changes,
                                                 std::size_t first) {
  std::vector<std::unique_ptr<Writer>> out;
  for (int i = 0; i < count; ++i) {
    out.push_back(std::make_unique<Writer>(rng, changes, 0, first + static_cast<std::size_t>(i)));
  }
  return out;
}

// Connects, authenticates and writes `ws` until every change is stored; returns the seconds.
double timeHonest(Writers& ws, const Server& server, const NetworkKey& key, asio::io_context& ctx) {
  const auto start = Clock::now();
  authenticateAll(ws, server, key, nullptr, ctx);
  writeAll(ws, nullptr, ctx);
  return secondsSince(start);
}

void hostileTrial(const Args& args, const HostileSizes& sizes) {
  Setup setup(args, sizes.handshakeTimeoutMs);
  std::mt19937_64& rng = setup.rng;
  const NetworkKey& networkKey = setup.networkKey;
  Server& server = setup.server;
  asio::io_context ctx;

  // Honest writers on an idle server, then a fresh group of the same size under attack.
  Writers idleGroup;
  idleGroup.all = makeWriters(rng, sizes.honest, sizes.changes, 0);
  const double idleS = timeHonest(idleGroup, server, networkKey, ctx);
  idleGroup.close();
  const ProcMemory beforeAttack = server.memory();

  std::vector<BadSocket> bad;
  bad.reserve(static_cast<std::size_t>(sizes.dribblers + sizes.oversized + sizes.garbage));
  std::string spawnError;
  for (int i = 0; i < sizes.dribblers; ++i) {
    bad.push_back(BadSocket{.kind = "dribbler", .localPort = 0, .peer = std::nullopt,
                            .offence = {}, .closedAt = std::nullopt, .error = {}});
    spawn(ctx, dribble(server, bad.back(), static_cast<std::uint8_t>(rng())), spawnError);
  }
  std::vector<std::unique_ptr<Device>> badDevices;
  for (int i = 0; i < sizes.oversized + sizes.garbage; ++i) {
    const bool oversized = i < sizes.oversized;
    badDevices.push_back(std::make_unique<Device>(rng));
    bad.push_back(BadSocket{.kind = oversized ? "oversized" : "garbage", .localPort = 0,
                            .peer = badDevices.back()->peer, .offence = {},
                            .closedAt = std::nullopt, .error = {}});
    Bytes garbage;
    if (!oversized) {
      garbage.resize(1024);
      for (auto& b : garbage) b = static_cast<std::uint8_t>(rng());
    }
    spawn(ctx, misbehave(server, networkKey, *badDevices.back(), bad.back(), std::move(garbage)),
          spawnError);
  }
  Flood floodState;
  const Device flooder(rng);
  std::vector<DocumentId> ids;
  for (int i = 0; i < sizes.randomIds; ++i) ids.push_back(randomDocument(rng));
  spawn(ctx, flood(floodState, server, networkKey, flooder, std::move(ids), ctx, spawnError),
        spawnError);
  // The attack is under way once every dribbler holds a connection.
  runUntil(ctx, [&] {
    return std::all_of(bad.begin(), bad.end(), [](const BadSocket& b) {
      return b.localPort != 0 || !b.error.empty();
    });
  }, kRampBound, "opening the bad sockets");

  Writers attackGroup;
  attackGroup.all = makeWriters(rng, sizes.honest, sizes.changes, static_cast<std::size_t>(sizes.honest));
  const double attackS = timeHonest(attackGroup, server, networkKey, ctx);
  attackGroup.close();

  const auto hsDeadline = std::chrono::milliseconds(sizes.handshakeTimeoutMs);
  runUntil(ctx, [&] {
    const bool socketsDone = std::all_of(bad.begin(), bad.end(), [](const BadSocket& b) {
      return b.closedAt.has_value() || !b.error.empty();
    });
    const bool floodDone = floodState.closed || floodState.answered == sizes.randomIds;
    return (socketsDone && floodDone) || !spawnError.empty();
  }, kWorkloadBound, "the bad sockets closing and the flood being answered");
  if (!spawnError.empty()) fail("hostile: " + spawnError);
  const bool floodCut = floodState.closed;  // before the server stops, which closes it anyway
  const ProcMemory after = server.memory();
  server.stop();
  if (floodState.channel) floodState.channel->close();
  ctx.run_for(100ms);

  // Every bad socket: closed within its bound, and named by exactly one line of the log.
  const std::string log = readFile(server.log);
  int late = 0, unlogged = 0, failed = 0;
  double slowestDribblerS = 0;
  double slowestOffenceS = 0;
  for (const BadSocket& b : bad) {
    if (!b.error.empty()) {
      ++failed;
      std::fprintf(stderr, "hostile: a %s socket failed before its offence: %s\n", b.kind, b.error.c_str());
      continue;
    }
    const double s = std::chrono::duration<double>(*b.closedAt - b.offence).count();
    const bool dribbler = !b.peer;
    const auto bound = dribbler ? hsDeadline + kCloseSlack : kCloseSlack;
    if (*b.closedAt - b.offence > bound) ++late;
    (dribbler ? slowestDribblerS : slowestOffenceS) =
        std::max(dribbler ? slowestDribblerS : slowestOffenceS, s);
    const std::string name = dribbler ? "refused 127.0.0.1:" + std::to_string(b.localPort) + ":"
                                      : b.peer->str() + " gone: ";
    if (countOccurrences(log, name) != 1) ++unlogged;
  }
  std::vector<std::pair<DocumentId, const Edits*>> expected;
  for (const Writers* g : {&idleGroup, &attackGroup}) {
    for (const auto& w : g->all) expected.emplace_back(w->own, &w->ownEdits);
  }
  const std::size_t lost = countLost(server.dir / "data", expected, [](const DocumentId&, const Document&) {});

  // What the server said of the flooder's session, if it ended it.
  std::string floodEnd;
  if (const auto at = log.find(flooder.peer.str() + " gone: "); at != std::string::npos) {
    floodEnd = log.substr(at, log.find('\n', at) - at);
  }
  const auto honestChanges = static_cast<long long>(sizes.honest) * sizes.changes;
  const double ratio = attackS / idleS;
  std::fprintf(stderr,
               "hostile: honest writers took %.2f s idle, %.2f s under attack; %zu bad sockets, "
               "%d late, %d not logged once, %d failed; slowest dribbler closed after %.2f s, "
               "slowest offender %.3f s after its offence; flood: %d sent, %d answered%s%s%s; "
               "server VmRSS %ld KiB before the attack, VmHWM %ld KiB\n",
               idleS, attackS, bad.size(), late, unlogged, failed, slowestDribblerS, slowestOffenceS,
               floodState.sent, floodState.answered, floodCut ? ", closed: " : "",
               floodCut ? floodState.closeReason.c_str() : "",
               floodEnd.empty() ? "" : ("; server: " + floodEnd).c_str(), beforeAttack.rssKiB, after.hwmKiB);
  JsonLine("hostile.honest_idle").integer("n", honestChanges).num("value", idleS * 1e3, 1).str("unit", "ms")
      .integer("writers", sizes.honest).print();
  JsonLine("hostile.honest_attacked").integer("n", honestChanges).num("value", attackS * 1e3, 1)
      .str("unit", "ms").integer("writers", sizes.honest).print();
  JsonLine("hostile.ratio").num("value", ratio, 2).str("unit", "x").num("target", kAttackRatioGoal, 0)
      .flag("met", ratio <= kAttackRatioGoal).print();
  JsonLine("hostile.peak_rss").num("value", static_cast<double>(after.hwmKiB) / 1024, 1).str("unit", "MiB")
      .num("before_attack", static_cast<double>(beforeAttack.rssKiB) / 1024, 1).print();
  JsonLine("hostile.bad_sockets").integer("n", static_cast<long long>(bad.size()))
      .integer("dribblers", sizes.dribblers).integer("oversized", sizes.oversized)
      .integer("garbage", sizes.garbage).integer("late", late).integer("not_logged_once", unlogged)
      .integer("failed", failed).num("slowest_dribbler_s", slowestDribblerS, 2)
      .num("slowest_offender_s", slowestOffenceS, 3)
      .integer("handshake_timeout_ms", sizes.handshakeTimeoutMs).print();
  JsonLine("hostile.requests").integer("n", sizes.randomIds).integer("sent", floodState.sent)
      .integer("answered", floodState.answered).flag("session_closed", floodCut).print();
  JsonLine("hostile.lost").integer("n", 2 * honestChanges).integer("value", static_cast<long long>(lost))
      .print();
  if (lost != 0 || late != 0 || unlogged != 0 || failed != 0) {
    fail("hostile: " + std::to_string(lost) + " changes lost, " + std::to_string(late) +
         " bad sockets open past their bound, " + std::to_string(unlogged) +
         " not logged exactly once, " + std::to_string(failed) + " failed");
  }
}

constexpr const char* kUsage =
    "usage: load_bench --portcullis PATH [--trial peers|hostile] [--short] [--seed N]\n"
    "                  [--server-nofile N]\n"
    "  PATH: the built `portcullis` tool (build/tools/portcullis/portcullis)\n"
    "  N: the server's soft RLIMIT_NOFILE when it starts (it must raise it to serve the trial)\n"
    "  without --trial both trials run, each against a fresh server process\n";

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  spdlog::set_level(spdlog::level::err);
  ::signal(SIGPIPE, SIG_IGN);
  Args args;
  args.seed = std::random_device{}();
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--portcullis") == 0 && i + 1 < argc) {
      args.portcullis = argv[++i];
    } else if (std::strcmp(argv[i], "--trial") == 0 && i + 1 < argc) {
      args.trial = argv[++i];
    } else if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      args.seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--server-nofile") == 0 && i + 1 < argc) {
      args.serverFileLimit = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--short") == 0) {
      args.isShort = true;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "load_bench: unknown argument '%s'\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (args.portcullis.empty() ||
      !(args.trial.empty() || args.trial == "peers" || args.trial == "hostile")) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (::access(args.portcullis.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "load_bench: '%s' is not an executable\n", args.portcullis.c_str());
    return 2;
  }
  args.portcullis = fs::absolute(args.portcullis).string();
  std::fprintf(stderr, "load_bench: seed %llu\n", static_cast<unsigned long long>(args.seed));
  raiseFileLimit("load_bench");
  PeersSizes peers;
  HostileSizes hostile;
  if (args.isShort) {
    peers = PeersSizes{.sessions = 100, .ownChanges = 20, .sharedChanges = 5};
    hostile = HostileSizes{.honest = 10, .changes = 20, .dribblers = 100, .oversized = 20,
                           .garbage = 20, .randomIds = 2'000, .handshakeTimeoutMs = 2'000};
  }
  try {
    if (args.trial.empty() || args.trial == "peers") peersTrial(args, peers);
    if (args.trial.empty() || args.trial == "hostile") hostileTrial(args, hostile);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "load_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
