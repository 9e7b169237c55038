// bench/team_provider_bench.cc — the `team` auth provider on the wire (providers/team/
// team_provider.h), each figure next to its baseline or physical floor measured in the same run
// (bench/README.md, "team_provider_bench"):
//
//   team_provider.handshake_sync   two members with identical 1,000-member graphs: Repo dial to
//                                  both providers teamSyncedWith and both Repo sessions up; wall
//                                  time and bytes on the wire both ways (targets 5 ms, 2 KB)
//   team_provider.handshakes       handshakes/s of the team provider's authenticate() against the
//                                  shared-key provider's, same transport (target ratio 0.7)
//   team_provider.changes          the repo_bench `repo.changes` workload (repo_changes.h) under
//                                  `team` against `open` (target ratio 0.8)
//   team_provider.removal          teamAct(RemoveMember bob) at alice until the server's Repo
//                                  reports bob gone, against one round trip (target RTT + 5 ms)
//   team_provider.join             an invitee joins alice's 1,000-member team over the network
//                                  with a fresh code (§6.3), against one Argon2id run (reported)
//
// Every link is real: Ed25519 keys from fixed seeds, a real consent per addMember, the real
// encoding (wire/link_codec.h), in real state directories (TeamStateDir). Everything runs on one
// thread over the memory network (adapters/network/memory), both ends of every connection
// included. Building the team, the state directories and opening providers is setup, never timed.
//
// Usage: team_provider_bench [--figure all|handshake_sync|handshakes|changes|removal|join]
//                            [--reps R] [--dir DIR] [--delay-ms D] [--log]
// R (default 11): reps of handshake_sync; changes runs R/3 of each side, removal R/2.
// D: a one-way delay (ms) on the removal figure's links and its round trip (default 0).
// DIR (default $TMPDIR or /tmp) holds the state directories; a temporary folder is made in it and
// removed at the end. stdout: one JSON line per figure; progress and cross-checks go to stderr.
#include <fcntl.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "invitation.h"
#include "join.h"
#include "json_line.h"
#include "link.h"
#include "memory_network.h"
#include "portcullis/auth_provider.h"
#include "portcullis/config.h"
#include "portcullis/provider_registry.h"
#include "portcullis/repo.h"
#include "portcullis/secret_handshake.h"
#include "provider_handshakes.h"
#include "repo_changes.h"
#include "shared_key.h"
#include "state_dir.h"
#include "team_provider.h"
#include "wire/link_codec.h"

namespace {

using namespace portcullis;
using portcullis::bench::Clock;
using portcullis::bench::msSince;
using team::Hash;
using team::Key;
using team::LinkBody;

constexpr std::size_t kMembers = 1'000;
constexpr std::uint64_t kBaseTimestamp = 1'700'000'000'000;
constexpr std::size_t kFloorSamples = 2001;
constexpr double kSyncTargetMs = 5.0;
constexpr double kSyncTargetBytes = 2000.0;  // 2 KB
constexpr double kHandshakeRatioTarget = 0.7;
constexpr double kChangesRatioTarget = 0.8;
constexpr double kRemovalSlackMs = 5.0;
constexpr std::size_t kHandshakeBlock = 100;  // handshakes per timed block, alternating providers
constexpr std::size_t kHandshakeRounds = 5;
const std::string kNetworkKeyHex(64, 'a');

// --delay-ms: the one-way delay of the removal figure's links and of its round trip.
std::chrono::milliseconds gLinkDelay{0};

// This run's folder of state directories (RunDir), removed by fail() too.
std::filesystem::path gRunDir;

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "team_provider_bench: FAILED: %s\n", message.c_str());
  if (!gRunDir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(gRunDir, ignored);
  }
  std::exit(EXIT_FAILURE);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double minOf(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double maxOf(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

using portcullis::bench::JsonLine;

// ---------------------------------------------------------------------------------------------
// The team: keys, links and state directories

std::array<std::uint8_t, 32> seedOf(std::string_view tag, std::uint64_t i) {
  const std::string input =
      "portcullis-bench/team-provider/" + std::string(tag) + "/" + std::to_string(i);
  std::array<std::uint8_t, 32> seed{};
  crypto_generichash(seed.data(), seed.size(), reinterpret_cast<const unsigned char*>(input.data()),
                     input.size(), nullptr, 0);
  return seed;
}

DeviceKey deviceKeyOf(std::string_view tag, std::uint64_t i) {
  auto key = DeviceKey::fromSeed(seedOf(tag, i));
  if (!key) fail("DeviceKey::fromSeed refused a 32-byte seed");
  return std::move(key).value();
}

team::EncKey encKeyOf(std::string_view tag, std::uint64_t i) {
  const auto seed = seedOf("enc/" + std::string(tag), i);
  team::EncKey pk{};
  std::array<std::uint8_t, crypto_box_SECRETKEYBYTES> sk{};
  crypto_box_seed_keypair(pk.data(), sk.data(), seed.data());
  sodium_memzero(sk.data(), sk.size());
  return pk;
}

Key idOf(const DeviceKey& key) { return key.publicKey().bytes(); }

// The devices of the team. alice founds it and signs every link: the server s, then members
// m0 … m999 (one device each). "bob" of the removal figure is m0.
struct Team {
  Hash teamId{};
  std::vector<Bytes> links;  // `Link` messages in causal order
  std::uint64_t founderSeq = 0;
  Hash founderHead{};
};

Bytes signAsFounder(Team& t, const DeviceKey& founder, team::Action action) {
  LinkBody body;
  if (t.founderSeq > 0) body.prev = {t.founderHead};
  body.userId = "alice";
  body.deviceId = idOf(founder);
  body.deviceSeq = ++t.founderSeq;
  body.timestamp = kBaseTimestamp + t.founderSeq;
  body.action = std::move(action);
  const Bytes encoded = team::encodeLinkBody(body);
  const team::Signature sig = team::signLinkBody(encoded, founder.secretKey().span());
  t.founderHead = team::linkHash(encoded, sig);
  return team::encodeLink(encoded, sig);
}

std::string memberName(std::size_t i) { return "m" + std::to_string(i); }

Team buildTeam() {
  Team t;
  const DeviceKey alice = deviceKeyOf("alice", 0);
  team::Root root;
  root.teamName = "bench";
  root.founder = team::Device{idOf(alice), encKeyOf("alice", 0)};
  root.version = 3;
  t.links.push_back(signAsFounder(t, alice, root));
  t.teamId = t.founderHead;
  const DeviceKey server = deviceKeyOf("server", 0);
  t.links.push_back(signAsFounder(t, alice, team::AddServer{idOf(server), encKeyOf("server", 0)}));
  for (std::size_t i = 0; i < kMembers; ++i) {
    const DeviceKey device = deviceKeyOf("member", i);
    const std::string user = memberName(i);
    team::NewDevice nd;
    nd.deviceId = idOf(device);
    nd.encKey = encKeyOf("member", i);
    nd.consent = team::signBytes(
        team::admissionTuple(t.teamId, Hash{}, nd.deviceId, nd.encKey, user),
        device.secretKey().span());
    team::AddMember add;
    add.userId = user;
    add.devices = {nd};
    t.links.push_back(signAsFounder(t, alice, add));
  }
  return t;
}

// A folder for this run's state directories, removed at exit.
struct RunDir {
  std::filesystem::path path;
  explicit RunDir(const std::string& parent) {
    std::string tmpl = (std::filesystem::path(parent) / "team-provider-bench-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) fail("mkdtemp in " + parent + ": " + std::strerror(errno));
    path = tmpl;
    gRunDir = path;
  }
  ~RunDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
    gRunDir.clear();
  }
};

// Who a state directory belongs to.
struct Device {
  std::string tag;
  std::uint64_t index = 0;
  std::uint64_t lastSignedSeq = 0;  // the founder's: every link
};
Device alice(const Team& t) { return {"alice", 0, t.founderSeq}; }
Device server() { return {"server", 0, 0}; }
Device member(std::size_t i) { return {"member", i, 0}; }

// A state directory of `who` holding every link of the team; its path. Closed again (unlocked)
// before it returns.
std::string makeStateDir(const RunDir& run, const Team& t, const Device& who,
                         const std::string& name) {
  const std::string path = (run.path / name).string();
  auto state = team::TeamStateDir::create(path, t.teamId, deviceKeyOf(who.tag, who.index),
                                          who.lastSignedSeq);
  if (!state) fail("TeamStateDir::create " + path + ": " + state.error().message());
  if (auto ok = state->appendLinks(t.links); !ok) fail("appendLinks: " + ok.error().message());
  return path;
}

std::shared_ptr<AuthProvider> teamProvider(const RunDir& run, const Team& t, const Device& who,
                                           const std::string& name) {
  auto provider = team::makeTeamProvider({.state = makeStateDir(run, t, who, name)});
  if (!provider) fail("makeTeamProvider: " + provider.error().message());
  return *provider;
}

// A shared-key provider for the device of `tag`, made from a config as `portcullis serve` makes
// it (the key file is written next to the state directories).
std::shared_ptr<AuthProvider> sharedKeyProvider(const RunDir& run, const std::string& tag) {
  return bench::sharedKeyProvider(run.path, tag, deviceKeyOf(tag, 0), kNetworkKeyHex,
                                  [](const std::string& m) { fail(m); });
}

// ---------------------------------------------------------------------------------------------
// Repos over the memory network, all on one io_context

struct Node {
  std::shared_ptr<MemoryNetworkAdapter> net;
  std::shared_ptr<AuthProvider> auth;
  std::unique_ptr<Repo> repo;
  PeerId id;
  std::function<void(const PeerId&, const std::string&)> onGone;  // set by a figure

  bool knows(const Node& other) const {
    auto peers = repo->peers();
    return std::find(peers.begin(), peers.end(), other.id) != peers.end();
  }
};

std::unique_ptr<Node> makeNode(asio::io_context& ctx, const std::string& name,
                               std::shared_ptr<AuthProvider> auth) {
  auto self = auth->localPeer();
  if (!self) fail("a provider without a local peer");
  auto n = std::make_unique<Node>(Node{std::make_shared<MemoryNetworkAdapter>(ctx.get_executor(), name),
                                       std::move(auth), nullptr, *self, {}});
  RepoOptions o;
  o.network = {n->net};
  o.auth = n->auth;
  Node* raw = n.get();
  o.events.peerGone = [raw](const PeerId& p, const std::string& reason) {
    if (raw->onGone) raw->onGone(p, reason);
  };
  o.events.peerRefused = [name](const std::string& remote, const Error& e) {
    std::fprintf(stderr, "  [%s] refused %s: %s\n", name.c_str(), remote.c_str(),
                 e.message().c_str());
  };
  n->repo = std::make_unique<Repo>(ctx.get_executor(), std::move(o));
  return n;
}

// Runs `ctx` one handler at a time until `done()`; fails after `limit`.
template <typename Pred>
void runUntil(asio::io_context& ctx, Pred done, const char* what,
              std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto end = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > end) fail(std::string("timed out waiting for ") + what);
    ctx.run_one_for(std::chrono::milliseconds(1));
    if (ctx.stopped()) ctx.restart();
  }
}

void runFor(asio::io_context& ctx, std::chrono::milliseconds d) {
  const auto end = Clock::now() + d;
  while (Clock::now() < end) {
    ctx.run_one_for(std::chrono::milliseconds(1));
    if (ctx.stopped()) ctx.restart();
  }
}

// Destroys the nodes' Repos, then lets their coroutines end (which releases the providers' state
// directories).
void shutDown(asio::io_context& ctx, std::vector<std::unique_ptr<Node>>& nodes) {
  for (auto& n : nodes) n->repo.reset();
  runFor(ctx, std::chrono::milliseconds(20));
  nodes.clear();
  runFor(ctx, std::chrono::milliseconds(5));
}

// ---------------------------------------------------------------------------------------------
// Floors

// Median of single timed calls of `f`, in µs.
template <typename F>
double medianUs(F f, std::size_t samples = kFloorSamples) {
  std::vector<double> us;
  us.reserve(samples);
  for (std::size_t i = 0; i < samples; ++i) {
    const auto start = Clock::now();
    f();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return median(std::move(us));
}

struct CryptoFloor {
  double signUs = 0;    // crypto_sign_detached of a ~200-byte message
  double verifyUs = 0;  // crypto_sign_verify_detached of it
  double kxKeypairUs = 0;
  double kxSessionUs = 0;
};

CryptoFloor measureCrypto() {
  CryptoFloor f;
  const DeviceKey key = deviceKeyOf("floor", 0);
  std::array<std::uint8_t, 200> msg{};
  randombytes_buf(msg.data(), msg.size());
  std::array<std::uint8_t, 64> sig{};
  f.signUs = medianUs([&] {
    crypto_sign_detached(sig.data(), nullptr, msg.data(), msg.size(), key.secretKey().span().data());
  });
  f.verifyUs = medianUs([&] {
    if (crypto_sign_verify_detached(sig.data(), msg.data(), msg.size(),
                                    key.publicKey().bytes().data()) != 0) {
      fail("a floor signature did not verify");
    }
  });
  std::array<std::uint8_t, crypto_kx_PUBLICKEYBYTES> pk{}, pk2{};
  std::array<std::uint8_t, crypto_kx_SECRETKEYBYTES> sk{}, sk2{};
  crypto_kx_keypair(pk2.data(), sk2.data());
  f.kxKeypairUs = medianUs([&] { crypto_kx_keypair(pk.data(), sk.data()); });
  std::array<std::uint8_t, crypto_kx_SESSIONKEYBYTES> rx{}, tx{};
  f.kxSessionUs = medianUs([&] {
    if (crypto_kx_client_session_keys(rx.data(), tx.data(), pk.data(), sk.data(), pk2.data()) != 0) {
      fail("crypto_kx_client_session_keys");
    }
  });
  sodium_memzero(sk.data(), sk.size());
  sodium_memzero(sk2.data(), sk2.size());
  return f;
}

// The public-key operations of one team handshake, both sides (handshake.cc): per side one
// ephemeral key pair, one key exchange, one signature, one verification.
double teamHandshakeFloorUs(const CryptoFloor& f) {
  return 2 * (f.kxKeypairUs + f.kxSessionUs + f.signUs + f.verifyUs);
}

// A round trip of one byte over a memory link with gLinkDelay, raw streams (median of single
// trips, µs).
double memoryRttUs(asio::io_context& ctx) {
  const std::size_t samples = gLinkDelay.count() > 0 ? 21 : kFloorSamples;
  MemoryNetworkAdapter a(ctx.get_executor(), "rtt-a"), b(ctx.get_executor(), "rtt-b");
  std::unique_ptr<Stream> sa, sb;
  a.start([&](std::unique_ptr<Stream> s, Side) { sa = std::move(s); });
  b.start([&](std::unique_ptr<Stream> s, Side) { sb = std::move(s); });
  connect(a, b, {.maxBufferedBytes = 1u << 20, .record = false})->setDelay(gLinkDelay);
  if (!sa || !sb) fail("memory link: no streams");
  bool stop = false;
  auto echo = [](Stream& s, bool& stopFlag) -> asio::awaitable<void> {
    std::uint8_t byte = 0;
    while (!stopFlag) {
      auto n = co_await s.readSome(std::span(&byte, 1));
      if (!n) co_return;
      if (!co_await s.write(ByteView(&byte, 1))) co_return;
    }
  };
  asio::co_spawn(ctx, echo(*sb, stop), asio::detached);
  std::vector<double> us;
  std::size_t done = 0;
  auto ping = [&](Stream& s) -> asio::awaitable<void> {
    std::uint8_t byte = 7;
    for (std::size_t i = 0; i < samples; ++i) {
      const auto start = Clock::now();
      if (!co_await s.write(ByteView(&byte, 1))) co_return;
      if (!co_await s.readSome(std::span(&byte, 1))) co_return;
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
      ++done;
    }
  };
  asio::co_spawn(ctx, ping(*sa), asio::detached);
  runUntil(ctx, [&] { return done == samples; }, "the round trips");
  stop = true;
  sa->close();
  sb->close();
  runFor(ctx, std::chrono::milliseconds(2));
  return median(std::move(us));
}

// What appendLinks pays per batch: one write of a link-sized record and one fsync, in `dir`
// (median of 21, µs).
double fsyncAppendUs(const std::filesystem::path& dir) {
  const auto file = dir / "fsync-floor";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) fail("open " + file.string());
  std::array<std::uint8_t, 300> record{};
  const double us = medianUs(
      [&] {
        if (::write(fd, record.data(), record.size()) != static_cast<ssize_t>(record.size()) ||
            ::fsync(fd) != 0) {
          fail("write/fsync " + file.string());
        }
      },
      21);
  ::close(fd);
  std::filesystem::remove(file);
  return us;
}

// ---------------------------------------------------------------------------------------------
// 1. Handshake + graph sync between two members with identical graphs

void figureHandshakeSync(const RunDir& run, const Team& t, const CryptoFloor& floor, int reps) {
  asio::io_context ctx;
  std::vector<std::unique_ptr<Node>> nodes;
  nodes.push_back(makeNode(ctx, "m1", teamProvider(run, t, member(1), "sync-m1")));
  nodes.push_back(makeNode(ctx, "m2", teamProvider(run, t, member(2), "sync-m2")));
  Node& a = *nodes[0];
  Node& b = *nodes[1];
  auto up = [&] {
    return a.knows(b) && b.knows(a) && team::teamSyncedWith(*a.auth, b.id) &&
           team::teamSyncedWith(*b.auth, a.id);
  };
  auto down = [&] {
    return !a.knows(b) && !b.knows(a) && !team::teamSyncedWith(*a.auth, b.id) &&
           !team::teamSyncedWith(*b.auth, a.id);
  };
  std::vector<double> ms;
  std::vector<double> bytesUp, bytesIdle;
  std::size_t fromDialer = 0, fromAcceptor = 0;
  for (int r = -1; r < reps; ++r) {  // r = -1: warm-up, not counted
    const auto start = Clock::now();
    auto link = connect(*a.net, *b.net);  // records every byte
    runUntil(ctx, up, "handshake + graph sync");
    const double elapsed = msSince(start);
    const std::size_t atUp = link->bytesFromDialer().size() + link->bytesFromAcceptor().size();
    runFor(ctx, std::chrono::milliseconds(20));  // anything either side still sends unasked
    fromDialer = link->bytesFromDialer().size();
    fromAcceptor = link->bytesFromAcceptor().size();
    if (r >= 0) {
      ms.push_back(elapsed);
      bytesUp.push_back(static_cast<double>(atUp));
      bytesIdle.push_back(static_cast<double>(fromDialer + fromAcceptor));
    }
    link->cut();
    runUntil(ctx, down, "the sessions to end");
  }
  std::fprintf(stderr, "handshake_sync: graphs of %zu links each; bytes dialer→acceptor %zu, "
                       "acceptor→dialer %zu after 20 ms idle\n",
               t.links.size(), fromDialer, fromAcceptor);
  const double value = median(ms);
  const double floorMs = teamHandshakeFloorUs(floor) / 1000.0;
  JsonLine("team_provider.handshake_sync")
      .str("impl", "portcullis")
      .integer("n", static_cast<long long>(kMembers))
      .integer("links", static_cast<long long>(t.links.size()))
      .num("value", value)
      .str("unit", "ms")
      .num("min", minOf(ms))
      .num("max", maxOf(ms))
      .integer("reps", reps)
      .num("target", kSyncTargetMs, 0)
      .flag("met", value <= kSyncTargetMs)
      .num("crypto_floor_ms", floorMs)
      .num("ratio_to_crypto_floor", value / floorMs, 2)
      .print();
  const double bytes = median(bytesIdle);
  JsonLine("team_provider.handshake_sync_bytes")
      .str("impl", "portcullis")
      .integer("n", static_cast<long long>(kMembers))
      .num("value", bytes, 0)
      .str("unit", "B")
      .num("at_synced", median(bytesUp), 0)
      .integer("dialer_to_acceptor", static_cast<long long>(fromDialer))
      .integer("acceptor_to_dialer", static_cast<long long>(fromAcceptor))
      .num("target", kSyncTargetBytes, 0)
      .flag("met", bytes <= kSyncTargetBytes)
      .print();
  shutDown(ctx, nodes);
}

// ---------------------------------------------------------------------------------------------
// 2. Handshakes/s: team against shared-key, providers called directly, same transport

using bench::ProviderPair;

double runHandshakes(asio::io_context& ctx, const ProviderPair& pair, std::size_t count) {
  return bench::runHandshakes(ctx, pair, count, [](const std::string& m) { fail(m); });
}

// Both sides' libsodium calls of one shs1 handshake (as shs_bench's shs.handshake_crypto).
double shsCryptoPerSecond(std::size_t n) {
  auto network = NetworkKey::parse(kNetworkKeyHex);
  if (!network) fail("network key");
  const DeviceKey c = deviceKeyOf("shs-floor-client", 0), s = deviceKeyOf("shs-floor-server", 0);
  const auto start = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    ShsClient client(*network, c, s.publicKey());
    ShsServer server(*network, s);
    if (!server.verifyClientHello(client.hello()) || !client.verifyServerHello(server.hello()) ||
        !server.verifyAuthenticate(client.authenticate())) {
      fail("an shs handshake failed");
    }
    auto accepted = server.accept();
    if (!client.verifyAccept(accepted.message)) fail("an shs handshake failed");
  }
  return static_cast<double>(n) / std::chrono::duration<double>(Clock::now() - start).count();
}

void figureHandshakes(const RunDir& run, const Team& t, const CryptoFloor& floor) {
  asio::io_context ctx;
  const ProviderPair teamPair{teamProvider(run, t, member(3), "hs-m3"),
                              teamProvider(run, t, member(4), "hs-m4"), ""};
  const ProviderPair shsPair{sharedKeyProvider(run, "shs-client"),
                             sharedKeyProvider(run, "shs-server"),
                             "net:hs-a:1~shs:" + deviceKeyOf("shs-server", 0).publicKeyHex()};
  runHandshakes(ctx, teamPair, 20);  // warm-up
  runHandshakes(ctx, shsPair, 20);
  double teamS = 0, shsS = 0;
  std::vector<double> ratios;  // per round, for the spread
  for (std::size_t r = 0; r < kHandshakeRounds; ++r) {
    const double ts = runHandshakes(ctx, teamPair, kHandshakeBlock);
    const double ss = runHandshakes(ctx, shsPair, kHandshakeBlock);
    teamS += ts;
    shsS += ss;
    ratios.push_back(ss / ts);
  }
  const std::size_t n = kHandshakeBlock * kHandshakeRounds;
  const double teamRate = static_cast<double>(n) / teamS;
  const double shsRate = static_cast<double>(n) / shsS;
  const double teamFloorRate = 1e6 / teamHandshakeFloorUs(floor);
  const double shsCryptoRate = shsCryptoPerSecond(n);
  JsonLine("team_provider.handshakes")
      .str("provider", "team")
      .integer("n", static_cast<long long>(n))
      .num("value", teamRate, 1)
      .str("unit", "handshakes/s")
      .num("crypto_floor", teamFloorRate, 1)
      .num("ratio_to_crypto_floor", teamRate / teamFloorRate, 2)
      .print();
  JsonLine("team_provider.handshakes")
      .str("provider", "shared-key")
      .integer("n", static_cast<long long>(n))
      .num("value", shsRate, 1)
      .str("unit", "handshakes/s")
      .num("crypto_floor", shsCryptoRate, 1)
      .num("ratio_to_crypto_floor", shsRate / shsCryptoRate, 2)
      .print();
  const double ratio = teamRate / shsRate;
  JsonLine("team_provider.handshakes")
      .str("impl", "ratio team/shared-key")
      .num("value", ratio, 2)
      .str("unit", "x")
      .num("min_round", minOf(ratios), 2)
      .num("max_round", maxOf(ratios), 2)
      .num("target", kHandshakeRatioTarget, 1)
      .flag("met", ratio >= kHandshakeRatioTarget)
      .print();
}

// ---------------------------------------------------------------------------------------------
// 3. The repo.changes workload under `team` against `open`

// Calls of a node's change sealers: each parse verifies one signature, each seal makes one.
struct SealerCalls {
  std::size_t parses = 0;
  std::size_t seals = 0;
};

// Passes everything to the sealer it wraps, counting.
class CountingSealer final : public ChangeSealer {
 public:
  CountingSealer(std::shared_ptr<const ChangeSealer> inner, std::shared_ptr<SealerCalls> calls)
      : inner_(std::move(inner)), calls_(std::move(calls)) {}
  Result<ChangeEnvelope> parse(Bytes payload) const override {
    ++calls_->parses;
    return inner_->parse(std::move(payload));
  }
  bool canOpen() const override { return inner_->canOpen(); }
  Result<ChangeEnvelope> seal(const ChangeEnvelope& plain) const override {
    ++calls_->seals;
    return inner_->seal(plain);
  }
  Result<Bytes> open(const ChangeEnvelope& sealed) const override { return inner_->open(sealed); }

 private:
  std::shared_ptr<const ChangeSealer> inner_;
  std::shared_ptr<SealerCalls> calls_;
};

// Passes every call to the provider it wraps; wraps its sealers in CountingSealer.
class CountingProvider final : public AuthProvider {
 public:
  explicit CountingProvider(std::shared_ptr<AuthProvider> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return inner_->name(); }
  std::optional<PeerId> localPeer() const override { return inner_->localPeer(); }
  std::optional<ActorId> localActor() const override { return inner_->localActor(); }
  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> s, Side side) override {
    auto inner = inner_;
    co_return co_await inner->authenticate(std::move(s), side);
  }
  asio::awaitable<bool> okToAdvertise(const PeerIdentity& p, const DocumentId& d) override {
    auto inner = inner_;
    co_return co_await inner->okToAdvertise(p, d);
  }
  asio::awaitable<bool> okToSend(const PeerIdentity& p, const DocumentId& d) override {
    auto inner = inner_;
    co_return co_await inner->okToSend(p, d);
  }
  asio::awaitable<bool> okToReceive(const PeerIdentity& p, const DocumentId& d,
                                    const ChangeBatch& c) override {
    auto inner = inner_;
    co_return co_await inner->okToReceive(p, d, c);
  }
  asio::awaitable<bool> okToRequest(const PeerIdentity& p, const DocumentId& d) override {
    auto inner = inner_;
    co_return co_await inner->okToRequest(p, d);
  }
  void documentCreated(const DocumentId& d) override { inner_->documentCreated(d); }
  std::vector<std::string> dialAddresses() const override { return inner_->dialAddresses(); }
  asio::awaitable<void> onProviderMessage(const PeerIdentity& p, Bytes m) override {
    auto inner = inner_;
    co_await inner->onProviderMessage(p, std::move(m));
  }
  std::shared_ptr<const ChangeSealer> sealerFor(const DocumentId& d) override {
    auto sealer = inner_->sealerFor(d);
    if (!sealer) return sealer;
    return std::make_shared<CountingSealer>(std::move(sealer), calls);
  }
  void attach(RepoCallbacks c) override { inner_->attach(std::move(c)); }
  Result<void> reload() override { return inner_->reload(); }

  std::shared_ptr<SealerCalls> calls = std::make_shared<SealerCalls>();

 private:
  std::shared_ptr<AuthProvider> inner_;
};

struct ChangesRep {
  double ms = 0;      // the workload's figure
  double loopMs = 0;  // A's commit loop alone (team: sealing, i.e. signing, included)
  SealerCalls atA, atB;
};

ChangesRep changesRun(const RunDir& run, const Team& t, bool withTeam, int rep) {
  asio::io_context ctx;
  std::vector<std::unique_ptr<Node>> nodes;
  std::shared_ptr<CountingProvider> countA, countB;
  if (withTeam) {
    const std::string suffix = "-" + std::to_string(rep);
    countA = std::make_shared<CountingProvider>(
        teamProvider(run, t, member(5), "changes-m5" + suffix));
    countB = std::make_shared<CountingProvider>(
        teamProvider(run, t, member(6), "changes-m6" + suffix));
    nodes.push_back(makeNode(ctx, "a", countA));
    nodes.push_back(makeNode(ctx, "b", countB));
  } else {
    nodes.push_back(makeNode(ctx, "a", makeOpenProvider(*PeerId::parse("a"))));
    nodes.push_back(makeNode(ctx, "b", makeOpenProvider(*PeerId::parse("b"))));
  }
  // As repo_bench: B dials A, nothing recorded.
  connect(*nodes[1]->net, *nodes[0]->net, {.maxBufferedBytes = 1u << 20, .record = false});
  std::fprintf(stderr, "  [%s] ", withTeam ? "team" : "open");
  ChangesRep out;
  // Counted from the start of the workload: the setup's single change (k = -1) is in them.
  out.ms = bench::makeChanges(ctx, *nodes[0]->repo, *nodes[1]->repo, &out.loopMs);
  if (countA) out.atA = *countA->calls;
  if (countB) out.atB = *countB->calls;
  shutDown(ctx, nodes);
  return out;
}

void figureChanges(const RunDir& run, const Team& t, const CryptoFloor& floor, int reps) {
  std::vector<double> teamMs, openMs, ratios, teamLoop, openLoop;
  std::vector<double> parsesA, parsesB, sealsA;
  changesRun(run, t, false, -1);  // warm-up
  for (int r = 0; r < reps; ++r) {
    const ChangesRep o = changesRun(run, t, false, r);
    const ChangesRep m = changesRun(run, t, true, r);
    openMs.push_back(o.ms);
    openLoop.push_back(o.loopMs);
    teamMs.push_back(m.ms);
    teamLoop.push_back(m.loopMs);
    ratios.push_back(o.ms / m.ms);
    parsesA.push_back(static_cast<double>(m.atA.parses));
    parsesB.push_back(static_cast<double>(m.atB.parses));
    sealsA.push_back(static_cast<double>(m.atA.seals));
  }
  const double teamMedian = median(teamMs), open = median(openMs);
  // Each change is signed once by A and verified once by B, on this one thread.
  const double sigFloorMs = bench::kChanges * (floor.signUs + floor.verifyUs) / 1000.0;
  const double verifyOnlyMs = bench::kChanges * std::max(floor.signUs, floor.verifyUs) / 1000.0;
  for (bool isTeam : {true, false}) {
    const std::vector<double>& ms = isTeam ? teamMs : openMs;
    const double v = median(ms);
    JsonLine line("team_provider.changes");
    line.str("provider", isTeam ? "team" : "open")
        .integer("n", bench::kChanges)
        .num("value", v)
        .str("unit", "ms")
        .num("min", minOf(ms))
        .num("max", maxOf(ms))
        .num("changes_per_s", bench::kChanges / (v / 1000.0), 0)
        .num("commit_loop_ms", median(isTeam ? teamLoop : openLoop));
    if (isTeam) {
      // Sealer calls during the workload (each parse verifies a signature): B parses every change
      // it receives; A parses what comes back to it.
      line.num("seals_at_a", median(sealsA), 0)
          .num("parses_at_b", median(parsesB), 0)
          .num("parses_at_a", median(parsesA), 0)
          .num("verifies_per_change", (median(parsesA) + median(parsesB)) / median(sealsA), 2);
    }
    line.print();
  }
  const double ratio = open / teamMedian;
  JsonLine("team_provider.changes")
      .str("impl", "ratio team/open throughput")
      .num("value", ratio, 3)
      .str("unit", "x")
      .num("min_rep", minOf(ratios), 3)
      .num("max_rep", maxOf(ratios), 3)
      .num("target", kChangesRatioTarget, 1)
      .flag("met", ratio >= kChangesRatioTarget)
      .num("sign_verify_floor_ms", sigFloorMs)
      .num("best_ratio_one_thread", open / (open + sigFloorMs), 3)
      .num("best_ratio_two_hosts", open / (open + verifyOnlyMs), 3)
      .num("team_over_open_plus_floor", teamMedian / (open + sigFloorMs), 2)
      .print();
}

// ---------------------------------------------------------------------------------------------
// 4. Removal to disconnect

struct RemovalRep {
  double actMs = 0;   // teamAct at alice (sign, store, fsync, queue)
  double goneMs = 0;  // from teamAct's return to the server's peerGone for bob
};

RemovalRep removalRun(const RunDir& run, const Team& t, int rep) {
  asio::io_context ctx;
  const std::string suffix = "-" + std::to_string(rep);
  std::vector<std::unique_ptr<Node>> nodes;
  nodes.push_back(makeNode(ctx, "alice", teamProvider(run, t, alice(t), "rm-alice" + suffix)));
  nodes.push_back(makeNode(ctx, "s", teamProvider(run, t, server(), "rm-server" + suffix)));
  nodes.push_back(makeNode(ctx, "bob", teamProvider(run, t, member(0), "rm-bob" + suffix)));
  Node& a = *nodes[0];
  Node& s = *nodes[1];
  Node& b = *nodes[2];
  std::optional<Clock::time_point> goneAt;
  std::string reason;
  s.onGone = [&](const PeerId& p, const std::string& why) {
    if (p == b.id && !goneAt) {
      goneAt = Clock::now();
      reason = why;
    }
  };
  auto toAlice = connect(*a.net, *s.net, {.maxBufferedBytes = 1u << 20, .record = false});
  auto toBob = connect(*b.net, *s.net, {.maxBufferedBytes = 1u << 20, .record = false});
  runUntil(ctx, [&] {
    return a.knows(s) && s.knows(a) && b.knows(s) && s.knows(b) &&
           team::teamSyncedWith(*s.auth, a.id) && team::teamSyncedWith(*s.auth, b.id) &&
           team::teamSyncedWith(*a.auth, s.id) && team::teamSyncedWith(*b.auth, s.id);
  }, "alice, bob and the server to connect");
  toAlice->setDelay(gLinkDelay);  // from now on: connected, as over a network
  toBob->setDelay(gLinkDelay);
  runFor(ctx, std::chrono::milliseconds(20) + 2 * gLinkDelay);
  const auto start = Clock::now();
  auto removed = team::teamAct(*a.auth, team::RemoveMember{.userId = memberName(0)});
  const auto acted = Clock::now();
  if (!removed) fail("teamAct(RemoveMember bob): " + removed.error().message());
  runUntil(ctx, [&] { return goneAt.has_value(); }, "the server to end bob's session");
  runUntil(ctx, [&] { return !b.knows(s); }, "bob to see the server gone");
  if (!s.knows(a)) fail("the removal ended alice's session with the server too");
  if (rep == 0) std::fprintf(stderr, "removal: the server's reason: %s\n", reason.c_str());
  RemovalRep out{std::chrono::duration<double, std::milli>(acted - start).count(),
                 std::chrono::duration<double, std::milli>(*goneAt - acted).count()};
  shutDown(ctx, nodes);
  return out;
}

void figureRemoval(const RunDir& run, const Team& t, const CryptoFloor& floor, int reps) {
  std::vector<double> gone, act;
  removalRun(run, t, -1);  // warm-up
  for (int r = 0; r < reps; ++r) {
    const RemovalRep rep = removalRun(run, t, r);
    gone.push_back(rep.goneMs);
    act.push_back(rep.actMs);
  }
  asio::io_context ctx;
  const double rttMs = memoryRttUs(ctx) / 1000.0;
  const double fsyncMs = fsyncAppendUs(run.path) / 1000.0;
  const double value = median(gone);
  const double target = rttMs + kRemovalSlackMs;
  JsonLine("team_provider.removal")
      .str("impl", "portcullis")
      .integer("n", static_cast<long long>(kMembers))
      .num("value", value)
      .str("unit", "ms")
      .num("min", minOf(gone))
      .num("max", maxOf(gone))
      .integer("reps", reps)
      .integer("link_delay_ms", gLinkDelay.count())
      .num("rtt_ms", rttMs, 4)
      .num("target", target, 4)
      .flag("met", value <= target)
      .num("team_act_ms", median(act))
      .num("fsync_append_ms", fsyncMs)
      .num("verify_ms", floor.verifyUs / 1000.0, 4)
      .num("server_floor_ms", fsyncMs + floor.verifyUs / 1000.0)
      .print();
}

// ---------------------------------------------------------------------------------------------
// 5. Invitee join end to end (§6.3)

asio::awaitable<void> joinInto(std::unique_ptr<Stream> stream, std::string code,
                               const DeviceKey& device, std::optional<Result<team::JoinedTeam>>& out) {
  // (No temporaries with destructors inside co_await: g++ 12 destroys them twice.)
  auto joining = team::joinTeam(std::move(stream), std::move(code), device,
                                {.userId = "newcomer", .deadline = std::chrono::seconds(10)});
  out.emplace(co_await std::move(joining));
}

// alice's node holds the team and posts a one-use member invitation; from a fresh memory link to
// it, until joinTeam returns the whole graph with the newcomer admitted: the mode-1 handshake,
// Argon2id (interactive limits) on joinTeam's worker, the admission and the graph's transfer.
// `argon2id_ms` is one deriveInvitationKey of the same code, timed when alice's key is made.
void figureJoin(const RunDir& run, const Team& t, int reps) {
  std::vector<double> joins, argon;
  for (int r = -1; r < reps; ++r) {  // r = -1: warm-up
    asio::io_context ctx;
    std::vector<std::unique_ptr<Node>> nodes;
    nodes.push_back(makeNode(ctx, "alice",
                             teamProvider(run, t, alice(t), "join-alice-" + std::to_string(r + 1))));
    Node& a = *nodes[0];
    const team::InvitationCode code = team::generateInvitationCode(t.teamId);
    const std::string text(code.text());
    auto parsed = team::parseInvitationCode(text);
    if (!parsed) fail("the fresh code does not parse");
    const auto derive = Clock::now();
    auto key = team::deriveInvitationKey(*parsed, t.teamId);
    const double argonMs = msSince(derive);
    if (!key) fail("deriveInvitationKey: " + key.error().message());
    auto posted = team::teamAct(*a.auth, team::InviteMember{{key->publicKey, 1, 0}});
    if (!posted) fail("teamAct(InviteMember): " + posted.error().message());

    MemoryNetworkAdapter invitee(ctx.get_executor(), "invitee");
    std::unique_ptr<Stream> stream;
    invitee.start([&](std::unique_ptr<Stream> s, Side side) {
      if (side == Side::Dialer) stream = std::move(s);
    });
    const DeviceKey device = DeviceKey::generate();
    std::optional<Result<team::JoinedTeam>> joined;
    const auto start = Clock::now();
    connect(invitee, *a.net, {.maxBufferedBytes = 1u << 20, .record = false});
    runUntil(ctx, [&] { return stream != nullptr; }, "the invitee's stream");
    asio::co_spawn(ctx, joinInto(std::move(stream), text, device, joined), asio::detached);
    runUntil(ctx, [&] { return joined.has_value(); }, "the join", std::chrono::seconds(60));
    const double ms = msSince(start);
    if (!*joined) fail("joinTeam: " + joined->error().message());
    if ((*joined)->links.size() != t.links.size() + 2 || (*joined)->userId != "newcomer") {
      fail("the joined graph does not hold the team, the invitation and the admission");
    }
    invitee.stop();
    shutDown(ctx, nodes);
    if (r < 0) continue;
    joins.push_back(ms);
    argon.push_back(argonMs);
  }
  const double value = median(joins);
  const double argonMs = median(argon);
  JsonLine("team_provider.join")
      .integer("members", kMembers)
      .num("value", value)
      .str("unit", "ms")
      .num("argon2id_ms", argonMs)
      .num("beyond_argon2id_ms", value - argonMs)
      .integer("reps", reps)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  spdlog::set_level(spdlog::level::err);
  std::string figure = "all";
  int reps = 11;
  std::string parent;
  if (const char* tmp = std::getenv("TMPDIR"); tmp && *tmp) parent = tmp;
  if (parent.empty()) parent = "/tmp";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--figure" && i + 1 < argc) {
      figure = argv[++i];
    } else if (arg == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--dir" && i + 1 < argc) {
      parent = argv[++i];
    } else if (arg == "--delay-ms" && i + 1 < argc) {
      gLinkDelay = std::chrono::milliseconds(std::max(0, std::atoi(argv[++i])));
    } else if (arg == "--log") {  // the library's log (info and up) on stderr
      spdlog::set_level(spdlog::level::info);
    } else {
      std::fprintf(stderr,
                   "usage: team_provider_bench [--figure all|handshake_sync|handshakes|changes|"
                   "removal|join] [--reps R] [--dir DIR] [--delay-ms D] [--log]\n");
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
  const bool all = figure == "all";
  if (!all && figure != "handshake_sync" && figure != "handshakes" && figure != "changes" &&
      figure != "removal" && figure != "join") {
    std::fprintf(stderr, "team_provider_bench: unknown figure '%s'\n", figure.c_str());
    return 2;
  }
  try {
    auto setup = Clock::now();
    const Team t = buildTeam();
    RunDir run(parent);
    std::fprintf(stderr, "setup: %zu links signed in %.0f ms; state directories in %s\n",
                 t.links.size(), msSince(setup), run.path.c_str());
    const CryptoFloor floor = measureCrypto();
    JsonLine("team_provider.floor")
        .num("sign_us", floor.signUs, 2)
        .num("verify_us", floor.verifyUs, 2)
        .num("kx_keypair_us", floor.kxKeypairUs, 2)
        .num("kx_session_us", floor.kxSessionUs, 2)
        .num("team_handshake_crypto_us", teamHandshakeFloorUs(floor), 2)
        .print();
    if (all || figure == "handshake_sync") figureHandshakeSync(run, t, floor, reps);
    if (all || figure == "handshakes") figureHandshakes(run, t, floor);
    if (all || figure == "changes") figureChanges(run, t, floor, std::max(1, reps / 3));
    if (all || figure == "removal") figureRemoval(run, t, floor, std::max(1, reps / 2));
    if (all || figure == "join") figureJoin(run, t, std::max(1, reps / 4));
  } catch (const std::exception& e) {
    fail(e.what());
  }
  return 0;
}
