// bench/team_bench.cc — the team provider's graph (providers/team) under load: loading and
// validating a team from its links, appending one link, evaluating contested histories, and the
// peak RSS of a load, each against the physical floor measured in the same run (bench/README.md,
// "team_bench").
//
// Every link is real: Ed25519 keys from fixed seeds, real consents, the real encoding
// (wire/link_codec.h). Key generation and signing are setup, never timed.
//
// Usage: team_bench [--figure all|load|append|contested|rss] [--n N[,N...]] [--reps R]
//        team_bench --rss-open DIR    (internal: open a state directory, print its peak RSS)
// stdout: one JSON line per figure; progress and cross-checks go to stderr.
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "json_line.h"
#include "link.h"
#include "portcullis/secret_handshake.h"
#include "state_dir.h"
#include "team_graph.h"
#include "wire/link_codec.h"

namespace {

using portcullis::Bytes;
using portcullis::ByteView;
using portcullis::DeviceKey;
using portcullis::team::Action;
using portcullis::team::InviteDevice;
using portcullis::team::AddMember;
using portcullis::team::DecodedLink;
using portcullis::team::Device;
using portcullis::team::EncKey;
using portcullis::team::Hash;
using portcullis::team::Key;
using portcullis::team::LinkBody;
using portcullis::team::NewDevice;
using portcullis::team::RemoveMember;
using portcullis::team::RemoveMemberRole;
using portcullis::team::Root;
using portcullis::team::Signature;
using portcullis::team::TeamGraph;
using portcullis::team::TeamStateDir;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kBaseTimestamp = 1'700'000'000'000;
// The message a link signature covers is this tag ‖ body (the team protocol §2.2).
constexpr std::string_view kLinkSigTag = "portcullis/team/v3/link-sig";
// check 1's small-order test multiplies each encKey by H256 of this tag (the team protocol §2.3).
constexpr std::size_t kFloorSamples = 2001;
constexpr int kAppends = 21;
constexpr std::size_t kAppendN = 10'000;
constexpr std::size_t kSettledRemovals = 100;
constexpr std::size_t kContestAdmins = 10;
constexpr std::size_t kContestRemovalsEach = 10;
constexpr std::size_t kContestMembers = 1'000;
constexpr std::size_t kStagedK = 100;
constexpr double kLoadTarget = 1.3;         // × the signature floor
constexpr double kAppendBudgetUs = 1000.0;  // + one verify
constexpr double kAppendRemovalsGoalUs = 10'000.0;
constexpr double kContestLimitMs = 1000.0;
constexpr double kRssTargetMiB = 64.0;

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "team_bench: FAILED: %s\n", message.c_str());
  std::exit(EXIT_FAILURE);
}

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

using portcullis::bench::JsonLine;

// ---------------------------------------------------------------------------------------------
// Keys and links

std::array<std::uint8_t, 32> seedOf(std::string_view tag, std::uint64_t i) {
  std::string input = "portcullis-bench/team/";
  input += tag;
  input += '/';
  input += std::to_string(i);
  std::array<std::uint8_t, 32> seed{};
  crypto_generichash(seed.data(), seed.size(), reinterpret_cast<const unsigned char*>(input.data()),
                     input.size(), nullptr, 0);
  return seed;
}

DeviceKey deviceKeyOf(std::string_view tag, std::uint64_t i) {
  const auto seed = seedOf(tag, i);
  auto key = DeviceKey::fromSeed(seed);
  if (!key) fail("DeviceKey::fromSeed refused a 32-byte seed");
  return std::move(key).value();
}

EncKey encKeyOf(std::string_view tag, std::uint64_t i) {
  std::string encTag = "enc/";
  encTag += tag;
  const auto seed = seedOf(encTag, i);
  EncKey pk{};
  std::array<std::uint8_t, crypto_box_SECRETKEYBYTES> sk{};
  crypto_box_seed_keypair(pk.data(), sk.data(), seed.data());
  sodium_memzero(sk.data(), sk.size());
  return pk;
}

Key idOf(const DeviceKey& key) { return key.publicKey().bytes(); }

// A device that signs links: its member's userId, its key, and where its own chain stands.
struct Author {
  std::string userId;
  DeviceKey key;
  std::uint64_t seq = 0;  // the last deviceSeq it signed
  Hash head{};            // its last link
};

struct SignedLink {
  Hash hash{};
  Bytes message;  // the `Link` message, as a peer sends it and the links file stores it
};

SignedLink signAs(Author& author, std::vector<Hash> prev, Action action) {
  std::sort(prev.begin(), prev.end());
  LinkBody body;
  body.prev = std::move(prev);
  body.userId = author.userId;
  body.deviceId = idOf(author.key);
  body.deviceSeq = ++author.seq;
  body.timestamp = kBaseTimestamp + author.seq;
  body.action = std::move(action);
  const Bytes encoded = portcullis::team::encodeLinkBody(body);
  const Signature signature =
      portcullis::team::signLinkBody(encoded, author.key.secretKey().span());
  SignedLink out{portcullis::team::linkHash(encoded, signature),
                 portcullis::team::encodeLink(encoded, signature)};
  author.head = out.hash;
  return out;
}

// An addMember of `userId` with one device (keys from `tag`/`index`) that consents (§5.1).
AddMember addMemberAction(const Hash& teamId, const std::string& userId, std::string_view tag,
                          std::uint64_t index, bool admin) {
  const DeviceKey device = deviceKeyOf(tag, index);
  NewDevice nd;
  nd.deviceId = idOf(device);
  nd.encKey = encKeyOf(tag, index);
  nd.consent = portcullis::team::signBytes(
      portcullis::team::admissionTuple(teamId, Hash{}, nd.deviceId, nd.encKey, userId),
      device.secretKey().span());
  AddMember add;
  add.userId = userId;
  add.devices = {nd};
  if (admin) add.roles = std::vector<std::string>{"admin"};
  return add;
}

// A team's links in causal order, and its founder (who signs what is appended later).
struct History {
  Hash teamId{};
  std::vector<Bytes> links;
  Author founder;
  std::size_t verifies = 0;  // signatures a full load checks (link signatures + consents)
};

History foundTeam(std::optional<Key> recoveryKey = std::nullopt, std::string founderUser = "founder") {
  History h{{}, {}, Author{std::move(founderUser), deviceKeyOf("founder", 0)}, 0};
  Root root;
  root.teamName = "bench";
  root.founder = Device{idOf(h.founder.key), encKeyOf("founder", 0)};
  root.recoveryKey = recoveryKey;
  root.version = 3;
  SignedLink link = signAs(h.founder, {}, root);
  h.teamId = link.hash;
  h.links.push_back(std::move(link.message));
  h.verifies = 1;
  return h;
}

void founderAdds(History& h, const std::string& userId, std::string_view tag, std::uint64_t index,
                 bool admin) {
  SignedLink link = signAs(h.founder, {h.founder.head},
                           addMemberAction(h.teamId, userId, tag, index, admin));
  h.links.push_back(std::move(link.message));
  h.verifies += 2;
}

std::string memberName(std::size_t i) { return "m" + std::to_string(i); }

// The founder adds members m0 … m(n−1), one device each, in one chain.
History plainTeam(std::size_t n) {
  History h = foundTeam();
  h.links.reserve(n + 1 + kSettledRemovals);
  for (std::size_t i = 0; i < n; ++i) founderAdds(h, memberName(i), "member", i, false);
  return h;
}

std::vector<DecodedLink> decodeAll(const History& h) {
  std::vector<DecodedLink> out;
  out.reserve(h.links.size());
  for (const Bytes& message : h.links) {
    auto decoded = portcullis::team::decodeLink(message, h.teamId);
    if (!decoded) fail("setup: decodeLink refused a link we signed: " + decoded.error().message());
    out.push_back(std::move(decoded).value());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Floors

// The median time of one crypto_sign_verify_detached, in µs: single calls on real link
// signatures (tag ‖ body, under the author's key), each timed alone.
double verifyFloorUs(const History& h, std::size_t samples) {
  struct Sample {
    Bytes message;
    Signature signature{};
    Key key{};
  };
  std::vector<Sample> pool;
  for (std::size_t i = 0; i < h.links.size() && pool.size() < 64; ++i) {
    auto decoded = portcullis::team::decodeLink(h.links[i], h.teamId);
    if (!decoded) fail("floor: decodeLink refused a link we signed");
    Sample s;
    s.message.assign(kLinkSigTag.begin(), kLinkSigTag.end());
    s.message.insert(s.message.end(), decoded->body.begin(), decoded->body.end());
    s.signature = decoded->signature;
    s.key = decoded->parsed.deviceId;
    pool.push_back(std::move(s));
  }
  std::vector<double> times;
  times.reserve(samples);
  int bad = 0;
  for (std::size_t i = 0; i < samples; ++i) {
    const Sample& s = pool[i % pool.size()];
    const auto start = Clock::now();
    bad += crypto_sign_verify_detached(s.signature.data(), s.message.data(), s.message.size(),
                                       s.key.data()) != 0;
    times.push_back(msSince(start) * 1000.0);
  }
  if (bad != 0) fail("floor: a link signature did not verify over tag ‖ body");
  return median(std::move(times));
}

// ---------------------------------------------------------------------------------------------
// State directories

struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "team_bench.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) fail("mkdtemp failed");
    path = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

// Writes `h` as the founder's state directory at `path` (one append, one fsync).
void writeStateDir(const History& h, const std::string& path) {
  auto dir = TeamStateDir::create(path, h.teamId, deviceKeyOf("founder", 0), h.founder.seq);
  if (!dir) fail("TeamStateDir::create: " + dir.error().message());
  if (auto r = dir->appendLinks(h.links); !r) fail("appendLinks: " + r.error().message());
}

void checkPlainTeam(const TeamGraph& g, std::size_t n, std::string_view what) {
  if (g.members().size() != n + 1 || g.devices().size() != n + 1 || !g.invalid().empty()) {
    fail(std::string(what) + ": expected " + std::to_string(n + 1) + " members and devices and " +
         "no invalid link, got " + std::to_string(g.members().size()) + " members, " +
         std::to_string(g.devices().size()) + " devices, " + std::to_string(g.invalid().size()) +
         " invalid");
  }
}

// ---------------------------------------------------------------------------------------------
// team.load*: load and fully validate a team

// Every signature a full load of `h` checks (link signatures over tag ‖ body, consents over their
// admission tuples), ready to verify back to back: the same work as the load's signature checks,
// timed next to it so that both see the same load on the machine.
struct SignatureCheck {
  Bytes message;
  Signature signature{};
  Key key{};
};

std::vector<SignatureCheck> signatureChecks(const History& h) {
  std::vector<SignatureCheck> out;
  out.reserve(h.verifies);
  for (const DecodedLink& d : decodeAll(h)) {
    SignatureCheck link;
    link.message.assign(kLinkSigTag.begin(), kLinkSigTag.end());
    link.message.insert(link.message.end(), d.body.begin(), d.body.end());
    link.signature = d.signature;
    link.key = d.parsed.deviceId;
    out.push_back(std::move(link));
    if (const auto* add = std::get_if<AddMember>(&d.parsed.action)) {
      for (const NewDevice& nd : add->devices) {
        out.push_back(SignatureCheck{
            portcullis::team::admissionTuple(h.teamId, Hash{}, nd.deviceId, nd.encKey, add->userId),
            nd.consent, nd.deviceId});
      }
    }
  }
  if (out.size() != h.verifies) fail("floor: the signature count does not match the history");
  return out;
}

double threadCpuMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Wall and CPU time of one timed step.
struct Timing {
  double wallMs = 0;
  double cpuMs = 0;
};

template <typename F>
Timing timed(F&& f) {
  const double cpu = threadCpuMs();
  const auto start = Clock::now();
  f();
  return {msSince(start), threadCpuMs() - cpu};
}

void loadFigure(std::size_t n, int reps) {
  const auto setupStart = Clock::now();
  History h = plainTeam(n);
  const std::vector<SignatureCheck> checks = signatureChecks(h);
  std::fprintf(stderr, "team_bench: n=%zu: %zu links signed in %.0f ms (setup)\n", n,
               h.links.size(), msSince(setupStart));
  const double verifyUs = verifyFloorUs(h, kFloorSamples);

  TempDir tmp;
  const std::string path = tmp.path + "/state";
  writeStateDir(h, path);

  std::vector<double> dirWall, dirCpu, memWall, memCpu, decodeWall, graphWall, blockWall, blockCpu;
  std::vector<double> blockRatioWall, blockRatioCpu;
  for (int r = 0; r < reps; ++r) {
    int bad = 0;
    const Timing block = timed([&] {
      for (const SignatureCheck& c : checks) {
        bad += crypto_sign_verify_detached(c.signature.data(), c.message.data(), c.message.size(),
                                           c.key.data()) != 0;
      }
    });
    if (bad != 0) fail("floor: a signature of the history did not verify");
    blockWall.push_back(block.wallMs);
    blockCpu.push_back(block.cpuMs);

    std::optional<portcullis::Result<TeamStateDir>> dir;
    const Timing open = timed([&] { dir.emplace(TeamStateDir::open(path)); });
    if (!*dir) fail("TeamStateDir::open: " + (*dir).error().message());
    checkPlainTeam((**dir).graph(), n, "load from the state directory");
    dir.reset();
    dirWall.push_back(open.wallMs);
    dirCpu.push_back(open.cpuMs);
    blockRatioWall.push_back(open.wallMs / block.wallMs);
    blockRatioCpu.push_back(open.cpuMs / block.cpuMs);

    std::optional<TeamGraph> g;
    const Timing mem = timed([&] {
      g.emplace(h.teamId);
      if (g->addBatch(h.links).stored.size() != h.links.size()) fail("addBatch stored too few");
    });
    checkPlainTeam(*g, n, "load from Link messages");
    g.reset();
    memWall.push_back(mem.wallMs);
    memCpu.push_back(mem.cpuMs);

    std::vector<DecodedLink> decoded;
    decodeWall.push_back(timed([&] { decoded = decodeAll(h); }).wallMs);
    graphWall.push_back(timed([&] {
                          g.emplace(h.teamId);
                          g->addDecoded(std::move(decoded));
                        }).wallMs);
    checkPlainTeam(*g, n, "addDecoded");
  }
  const double links = static_cast<double>(h.links.size());
  const double verifies = static_cast<double>(h.verifies);
  const double loadMs = median(dirWall);
  JsonLine()
      .str("bench", "team.verify").str("impl", "crypto_sign_verify_detached")
      .integer("n", static_cast<long long>(kFloorSamples)).num("value", verifyUs).str("unit", "us")
      .str("what", "median of single timed calls").print();
  JsonLine()
      .str("bench", "team.verify_block").str("impl", "crypto_sign_verify_detached")
      .integer("n", static_cast<long long>(verifies)).num("value", median(blockWall))
      .str("unit", "ms").num("cpu_ms", median(blockCpu))
      .str("what", "every signature of the load, back to back, next to each load").print();
  auto line = [&](const char* bench, const char* source, double ms, std::optional<double> cpu) {
    JsonLine l;
    l.str("bench", bench).str("impl", "portcullis").integer("n", static_cast<long long>(n))
        .num("value", ms).str("unit", "ms");
    if (cpu) l.num("cpu_ms", *cpu);
    l.str("source", source).integer("links", static_cast<long long>(links))
        .integer("verifies", static_cast<long long>(verifies)).integer("reps", reps)
        .print();
  };
  line("team.load", "state_dir", loadMs, median(dirCpu));
  line("team.load_memory", "link_messages", median(memWall), median(memCpu));
  line("team.load_decode", "decodeLink_only", median(decodeWall), std::nullopt);
  line("team.load_graph", "addDecoded_only", median(graphWall), std::nullopt);
  auto ratio = [&](const char* impl, double floorMs, bool target, double countScale) {
    const double value = loadMs / floorMs;
    JsonLine l;
    l.str("bench", "team.load").str("impl", impl).integer("n", static_cast<long long>(n))
        .num("value", value).str("unit", "x").num("floor_ms", floorMs);
    if (target) {
      l.num("target", kLoadTarget, 1).flag("met", value <= kLoadTarget)
          .num("same_rep_block_wall", median(blockRatioWall) * countScale)
          .num("same_rep_block_cpu", median(blockRatioCpu) * countScale);
    }
    l.print();
  };
  ratio("ratio portcullis/(links x verify)", links * verifyUs / 1000.0, true, verifies / links);
  ratio("ratio portcullis/(verifies x verify)", verifies * verifyUs / 1000.0, true, 1.0);
}

// ---------------------------------------------------------------------------------------------
// team.append*: append one link

// Appends kAppends fresh members, one addBatch each, to `g`; returns the median in µs.
double appendMedianUs(TeamGraph& g, History& h, std::size_t firstIndex) {
  std::vector<double> times;
  for (int i = 0; i < kAppends; ++i) {
    const std::size_t index = firstIndex + static_cast<std::size_t>(i);
    SignedLink link = signAs(h.founder, {h.founder.head},
                             addMemberAction(h.teamId, memberName(index), "member", index, false));
    const std::array<Bytes, 1> batch{std::move(link.message)};
    const auto start = Clock::now();
    const auto outcome = g.addBatch(batch);
    times.push_back(msSince(start) * 1000.0);
    if (outcome.stored.size() != 1 || g.state(link.hash) != portcullis::team::LinkState::Valid) {
      fail("append: the new member's link was not stored valid");
    }
  }
  return median(std::move(times));
}

void appendFigure() {
  const auto setupStart = Clock::now();
  History h = plainTeam(kAppendN);
  const double verifyUs = verifyFloorUs(h, kFloorSamples);
  std::vector<DecodedLink> decoded = decodeAll(h);
  std::fprintf(stderr, "team_bench: append: %zu links signed and decoded in %.0f ms (setup)\n",
               h.links.size(), msSince(setupStart));

  // The settled-removals team first (it needs the base links before any append): the founder
  // removes every 100th member after all the adds, in its own chain; nothing is concurrent.
  History r{h.teamId, {}, Author{h.founder.userId, deviceKeyOf("founder", 0), h.founder.seq,
                                 h.founder.head}, 0};
  std::vector<DecodedLink> withRemovals = decoded;
  for (std::size_t i = 0; i < kSettledRemovals; ++i) {
    SignedLink link = signAs(r.founder, {r.founder.head},
                             RemoveMember{memberName(i * (kAppendN / kSettledRemovals))});
    auto d = portcullis::team::decodeLink(link.message, h.teamId);
    if (!d) fail("setup: decodeLink refused a removal");
    withRemovals.push_back(std::move(d).value());
  }

  TeamGraph plain(h.teamId);
  plain.addDecoded(std::move(decoded));
  checkPlainTeam(plain, kAppendN, "append setup");
  const double plainUs = appendMedianUs(plain, h, kAppendN);

  // §6.2's speculative evaluation: where a member's device would stand if its addMember (signed
  // on top of the graph, not stored) were added; a copy of the whole graph, signatures not checked
  // again. The graph is left unchanged.
  std::vector<double> speculate;
  const std::size_t prover = kAppendN + 5000;
  const SignedLink proof = signAs(h.founder, {h.founder.head},
                                  addMemberAction(h.teamId, memberName(prover), "member", prover,
                                                  false));
  const std::array<Bytes, 1> proofBatch{proof.message};
  const auto proverKey = idOf(deviceKeyOf("member", prover));
  const std::size_t sizeBefore = plain.size();
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    const auto standing = plain.standingWith(proofBatch, proverKey);
    speculate.push_back(msSince(start));
    if (standing != TeamGraph::Standing::Member || plain.size() != sizeBefore) {
      fail("speculate: the proof did not make its device a member, or the graph changed");
    }
  }
  JsonLine()
      .str("bench", "team.speculate").str("impl", "portcullis")
      .integer("n", static_cast<long long>(kAppendN)).num("value", median(std::move(speculate)))
      .str("unit", "ms").integer("reps", 5).print();

  TeamGraph removed(h.teamId);
  removed.addDecoded(std::move(withRemovals));
  if (removed.members().size() != kAppendN + 1 - kSettledRemovals ||
      removed.removed().size() != kSettledRemovals || !removed.invalid().empty()) {
    fail("append setup: the settled removals did not all take effect");
  }
  const int removedPasses = removed.passes();
  const double removedUs = appendMedianUs(removed, r, kAppendN + 1000);

  const double target = kAppendBudgetUs + verifyUs;
  JsonLine()
      .str("bench", "team.append").str("impl", "portcullis")
      .integer("n", static_cast<long long>(kAppendN)).num("value", plainUs).str("unit", "us")
      .integer("appends", kAppends).integer("passes", plain.passes()).num("verify_us", verifyUs)
      .num("target_us", target).flag("met", plainUs <= target).print();
  JsonLine()
      .str("bench", "team.append_after_removals").str("impl", "portcullis")
      .integer("n", static_cast<long long>(kAppendN))
      .integer("removals", static_cast<long long>(kSettledRemovals)).num("value", removedUs)
      .str("unit", "us").integer("appends", kAppends).integer("passes", removed.passes())
      .integer("passes_before", removedPasses).num("target_us", kAppendRemovalsGoalUs)
      .flag("met", removedUs <= kAppendRemovalsGoalUs).print();
}

// ---------------------------------------------------------------------------------------------
// team.contested, team.staged_removals: contested histories

// Times a from-scratch evaluation of `decoded` (stored and evaluated by addDecoded; signatures
// were checked in setup) up to `reps` times, fewer when one run is slow. Returns the median and
// leaves the last graph in `last`.
double evaluateMs(const Hash& teamId, const std::vector<DecodedLink>& decoded, int reps,
                  std::optional<TeamGraph>& last) {
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    std::vector<DecodedLink> copy = decoded;
    last.emplace(teamId);
    const auto start = Clock::now();
    last->addDecoded(std::move(copy));
    times.push_back(msSince(start));
    if (times.back() > 5000.0) break;
  }
  return median(std::move(times));
}

// With `victims`, each removed member also signs a device invitation from the same stale head,
// concurrent with its removal: 100 contests with a victim each, which rule A's side pass and a
// second pass settle (§4.5, §4.6).
void contestedFigure(int reps, bool victims) {
  // 10 admins, then 990 members, all by the founder; then each admin, from the same stale head
  // (the founder's last add), removes 10 distinct members in its own chain.
  History h = foundTeam();
  for (std::size_t j = 0; j < kContestAdmins; ++j) {
    founderAdds(h, "admin" + std::to_string(j), "admin", j, true);
  }
  for (std::size_t i = 0; i < kContestMembers - kContestAdmins; ++i) {
    founderAdds(h, memberName(i), "member", i, false);
  }
  const Hash stale = h.founder.head;
  std::vector<Author> admins;
  for (std::size_t j = 0; j < kContestAdmins; ++j) {
    admins.push_back(Author{"admin" + std::to_string(j), deviceKeyOf("admin", j), 0, stale});
  }
  for (std::size_t j = 0; j < kContestAdmins; ++j) {
    for (std::size_t r = 0; r < kContestRemovalsEach; ++r) {
      SignedLink link = signAs(admins[j], {admins[j].head},
                               RemoveMember{memberName(j * kContestRemovalsEach + r)});
      h.links.push_back(std::move(link.message));
      if (!victims) continue;
      const std::size_t i = j * kContestRemovalsEach + r;
      Author member{memberName(i), deviceKeyOf("member", i), 0, stale};
      InviteDevice invite;
      invite.publicKey = idOf(deviceKeyOf("invite", i));
      invite.maxUses = 1;
      h.links.push_back(signAs(member, {stale}, invite).message);
    }
  }
  const std::vector<DecodedLink> decoded = decodeAll(h);
  std::optional<TeamGraph> g;
  const double ms = evaluateMs(h.teamId, decoded, reps, g);
  const std::size_t removals = kContestAdmins * kContestRemovalsEach;
  if (g->members().size() != kContestMembers + 1 - removals ||
      g->removed().size() != removals || g->invalid().size() != (victims ? removals : 0)) {
    fail("contested: expected " + std::to_string(kContestMembers + 1 - removals) +
         " members and every removal valid, got " + std::to_string(g->members().size()) +
         " members, " + std::to_string(g->removed().size()) + " removed, " +
         std::to_string(g->invalid().size()) + " invalid");
  }
  JsonLine()
      .str("bench", victims ? "team.contested_victims" : "team.contested")
      .str("impl", "portcullis")
      .integer("n", static_cast<long long>(kContestMembers))
      .integer("links", static_cast<long long>(h.links.size()))
      .integer("removals", static_cast<long long>(removals)).num("value", ms).str("unit", "ms")
      .integer("passes", g->passes()).num("limit_ms", kContestLimitMs, 0)
      .flag("met", ms <= kContestLimitMs).print();
}

// R11 (tests/data/team-vectors.json, "R11-admin-chain-k8") with k staged removals: mal, an admin,
// adds u0, x1, u1, …, xk, uk (all admins) in one chain; then, concurrently from that head, mal
// removes u0 (A0), each u_i demotes x_{i+1} (Z_i), and each x_i removes u_i on top of Z_{i−1}
// (A_i). Each kill enables the next removal: k+1 passes.
void stagedFigure(std::size_t k, int reps) {
  History h = foundTeam(idOf(deviceKeyOf("rk", 0)), "alice");
  founderAdds(h, "mal", "mal", 0, true);
  Author mal{"mal", deviceKeyOf("mal", 0), 0, h.founder.head};
  auto malAdds = [&](const std::string& user, std::uint64_t index) {
    SignedLink link =
        signAs(mal, {mal.head}, addMemberAction(h.teamId, user, "staged", index, true));
    h.links.push_back(std::move(link.message));
    return link.hash;
  };
  malAdds("u0", 0);
  for (std::size_t i = 1; i <= k; ++i) {
    malAdds("x" + std::to_string(i), 2 * i - 1);
    malAdds("u" + std::to_string(i), 2 * i);
  }
  const Hash top = mal.head;  // add-uk
  h.links.push_back(signAs(mal, {top}, RemoveMember{"u0"}).message);  // A0
  for (std::size_t i = 0; i < k; ++i) {
    Author u{"u" + std::to_string(i), deviceKeyOf("staged", 2 * i), 0, top};
    RemoveMemberRole z;
    z.userId = "x" + std::to_string(i + 1);
    z.role = "admin";
    const SignedLink zi = signAs(u, {top}, z);  // Z_i
    h.links.push_back(zi.message);
    Author x{"x" + std::to_string(i + 1), deviceKeyOf("staged", 2 * i + 1), 0, zi.hash};
    h.links.push_back(signAs(x, {zi.hash}, RemoveMember{"u" + std::to_string(i + 1)}).message);
  }
  const std::vector<DecodedLink> decoded = decodeAll(h);
  std::optional<TeamGraph> g;
  const double ms = evaluateMs(h.teamId, decoded, reps, g);

  // The vector's expectation, generalised: members alice, mal, x1…xk; u0…uk removed; the Z_i
  // invalid; k+1 passes.
  std::set<std::string> expected{"alice", "mal"};
  for (std::size_t i = 1; i <= k; ++i) expected.insert("x" + std::to_string(i));
  const auto members = g->members();
  const std::set<std::string> got(members.begin(), members.end());
  if (got != expected || g->removed().size() != k + 1 || g->invalid().size() != k) {
    fail("staged removals: the result differs from R11's, generalised (" +
         std::to_string(got.size()) + " members, " + std::to_string(g->removed().size()) +
         " removed, " + std::to_string(g->invalid().size()) + " invalid)");
  }
  JsonLine()
      .str("bench", "team.staged_removals").str("impl", "portcullis")
      .integer("n", static_cast<long long>(k)).integer("links", static_cast<long long>(h.links.size()))
      .num("value", ms).str("unit", "ms").integer("passes", g->passes())
      .integer("expected_passes", static_cast<long long>(k + 1)).num("limit_ms", kContestLimitMs, 0)
      .flag("met", ms <= kContestLimitMs).print();
}

// ---------------------------------------------------------------------------------------------
// team.peak_rss: the peak RSS of a load, in a fresh process

// "VmHWM:   1234 kB" → MiB.
double statusMiB(std::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) != 0) continue;
    const auto digits = line.find_first_of("0123456789");
    if (digits == std::string::npos) break;
    return std::strtod(line.c_str() + digits, nullptr) / 1024.0;
  }
  fail("no " + std::string(field) + " in /proc/self/status");
}

int rssOpen(const std::string& path) {
  const double before = statusMiB("VmRSS:");
  auto dir = TeamStateDir::open(path);
  if (!dir) fail("TeamStateDir::open: " + dir.error().message());
  const double peak = statusMiB("VmHWM:");
  std::printf("%zu %.3f %.3f\n", dir->graph().members().size(), before, peak);
  return EXIT_SUCCESS;
}

std::string selfExe() {
  std::array<char, 4096> buf{};
  const ssize_t len = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (len <= 0) fail("readlink /proc/self/exe failed");
  return std::string(buf.data(), static_cast<std::size_t>(len));
}

void rssFigure() {
  History h = plainTeam(kAppendN);
  TempDir tmp;
  const std::string path = tmp.path + "/state";
  writeStateDir(h, path);
  h.links.clear();
  h.links.shrink_to_fit();
  const std::string command = "'" + selfExe() + "' --rss-open '" + path + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) fail("popen failed");
  std::size_t members = 0;
  double before = 0;
  double peak = 0;
  const int got = std::fscanf(pipe, "%zu %lf %lf", &members, &before, &peak);
  const int status = ::pclose(pipe);
  if (got != 3 || status != 0) fail("the --rss-open child failed");
  if (members != kAppendN + 1) fail("the --rss-open child loaded the wrong team");
  JsonLine()
      .str("bench", "team.peak_rss").str("impl", "portcullis")
      .integer("n", static_cast<long long>(kAppendN)).num("value", peak).str("unit", "MiB")
      .num("rss_before_open_mib", before).num("target", kRssTargetMiB, 0)
      .flag("met", peak <= kRssTargetMiB).print();
}

// ---------------------------------------------------------------------------------------------

std::vector<std::size_t> parseList(std::string_view text) {
  std::vector<std::size_t> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    std::size_t value = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (ec != std::errc() || end != item.data() + item.size() || value == 0 || value > 200'000) {
      fail("--n wants positive integers separated by commas");
    }
    out.push_back(value);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) fail("sodium_init failed");
  std::string figure = "all";
  std::vector<std::size_t> ns{1'000, 10'000};
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) fail(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--figure") {
      figure = value();
    } else if (arg == "--n") {
      ns = parseList(value());
    } else if (arg == "--reps") {
      const std::string_view v = value();
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), reps);
      if (ec != std::errc() || end != v.data() + v.size() || reps < 1 || reps > 100) {
        fail("--reps wants 1..100");
      }
    } else if (arg == "--rss-open") {
      return rssOpen(std::string(value()));
    } else {
      fail("unknown argument '" + std::string(arg) + "' (see the comment atop bench/team_bench.cc)");
    }
  }
  const bool all = figure == "all";
  if (!all && figure != "load" && figure != "append" && figure != "contested" &&
      figure != "rss") {
    fail("--figure wants all, load, append, contested or rss");
  }
  const auto start = Clock::now();
  if (all || figure == "load") {
    for (std::size_t n : ns) loadFigure(n, reps);
  }
  if (all || figure == "append") appendFigure();
  if (all || figure == "contested") {
    contestedFigure(reps, false);
    contestedFigure(reps, true);
    stagedFigure(kStagedK, reps);
  }
  if (all || figure == "rss") rssFigure();
  std::fprintf(stderr, "team_bench: done in %.1f s\n", msSince(start) / 1000.0);
  return EXIT_SUCCESS;
}
