// Fuzz target: batches of peer links arriving at a store (TeamGraph::addBatch, the team protocol
// §2.3, §4.8, §10).
//
// Input:
//   teamId (32 bytes)
//   flags (1 byte): bit 0 tight limits (bits 4–7 size the store cap), bit 1 the second batch
//     comes from a peer session (else from this device), bit 2 re-sign every link whose body
//     holds a key of the seeds below, bit 3 the order-independence copy arrives in reverse T order
//   split (1 byte): the first `split` links form the first batch, the store's existing history
//     (a golden vector's team); the rest form the second batch, the hostile one
//   n (1 byte), then min(n, 16) signer seeds of 32 bytes
//   links until the input ends: u32 little-endian length, then that many bytes (or what is left)
//
// Invariants, beyond "no crash, no leak, no hang, no unbounded memory":
//   * size() never exceeds maxStoredLinks, pendingCount() never exceeds maxPendingLinks (nor a
//     session's budget when one session delivered everything pending);
//   * every stored link passes decodeLink, with the stored hash: nothing checks 1–2 reject is
//     stored;
//   * with limits no input can reach: delivering all links again stores and drops nothing and
//     changes nothing (members, admins, removed, devices, servers, roles, invitations, invalid,
//     unbacked, heads, dropped, pending); with tight limits (discarded pending links may be sent
//     again, §10) nothing stored is lost;
//   * order independence and incremental = from scratch (§4.8): a fresh graph given the stored
//     links in one batch stores all of them, drops none, and ends in the same state.
#include <exception>
#include <map>
#include <tuple>

#include "team_fuzz_support.h"
#include "team_graph.h"

namespace portcullis::team::fuzz {
namespace {

constexpr const char* kTarget = "team_batch_fuzz";
constexpr std::size_t kMaxSigners = 16;
constexpr SessionId kPeer = 7;

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

struct Input {
  Hash teamId{};
  std::uint8_t flags = 0;
  std::size_t split = 0;
  std::vector<TestSigner> signers;
  std::vector<Bytes> links;
};

std::optional<Input> parse(ByteView bytes) {
  Reader in(bytes);
  Input out;
  const auto teamId = in.fixed<32>();
  const auto flags = in.tryByte();
  const auto split = in.tryByte();
  const auto n = in.tryByte();
  if (!teamId || !flags || !split || !n) return std::nullopt;
  out.teamId = *teamId;
  out.flags = *flags;
  out.split = *split;
  for (std::size_t i = 0; i < std::min<std::size_t>(*n, kMaxSigners); ++i) {
    const auto seed = in.fixed<32>();
    if (!seed) return std::nullopt;
    out.signers.push_back(signerFromSeed(*seed));
  }
  while (!in.empty()) {
    const auto len = in.tryU32();
    if (!len) break;
    const ByteView link = in.take(*len);
    out.links.emplace_back(link.begin(), link.end());
  }
  return out;
}

GraphLimits limitsFor(std::uint8_t flags) {
  GraphLimits l;
  if (flags & 1) {
    l.maxStoredLinks = 8 + 4 * std::size_t{static_cast<unsigned>(flags >> 4)};
    l.maxPendingLinks = 4;
    l.maxPendingBytes = 4096;
    l.maxPendingLinksPerSession = 2;
    l.maxPendingBytesPerSession = 2048;
  } else {
    // Beyond what any input within -max_len can reach: nothing pending is ever discarded, so
    // redelivery must change nothing at all.
    l.maxStoredLinks = 1u << 30;
    l.maxPendingLinks = 1u << 30;
    l.maxPendingBytes = std::size_t{1} << 40;
    l.maxPendingLinksPerSession = 1u << 30;
    l.maxPendingBytesPerSession = std::size_t{1} << 40;
  }
  return l;
}

// Everything observable that §4.8 makes a function of the stored set.
struct Snapshot {
  bool hasRoot = false;
  std::string teamName;
  std::optional<Key> recoveryKey;
  std::vector<std::string> members, admins, removed;
  std::vector<Key> devices, servers;
  std::map<std::string, std::vector<std::string>> roles;
  std::vector<std::tuple<Hash, std::size_t, bool, bool>> invitations;  // hash, uses, revoked, open
  std::vector<Hash> invalid, unbacked, heads;
  std::vector<std::pair<Hash, std::string>> whyInvalid;
  std::size_t size = 0;
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

Snapshot snapshot(const TeamGraph& g) {
  Snapshot s;
  s.hasRoot = g.hasRoot();
  s.teamName = g.teamName();
  s.recoveryKey = g.recoveryKey();
  s.members = g.members();
  s.admins = g.admins();
  s.removed = g.removed();
  s.devices = g.devices();
  s.servers = g.servers();
  for (const std::string& m : s.members) s.roles[m] = g.roles(m);
  for (const InvitationInfo& i : g.invitations()) {
    s.invitations.emplace_back(i.hash, i.uses, i.revoked, i.open);
  }
  s.invalid = g.invalid();
  s.unbacked = g.unbacked();
  std::sort(s.unbacked.begin(), s.unbacked.end());
  s.heads = g.heads();
  std::sort(s.heads.begin(), s.heads.end());
  for (const Hash& h : s.invalid) s.whyInvalid.emplace_back(h, g.whyInvalid(h));
  s.size = g.size();
  return s;
}

// The store's own bookkeeping of what it refused or holds back, which a fresh store lacks.
struct Backlog {
  std::vector<Hash> dropped;
  std::size_t pending = 0;
  friend bool operator==(const Backlog&, const Backlog&) = default;
};

Backlog backlog(const TeamGraph& g) {
  Backlog b{g.dropped(), g.pendingCount()};
  std::sort(b.dropped.begin(), b.dropped.end());
  return b;
}

void checkBounds(const TeamGraph& g, const GraphLimits& l, bool oneSession) {
  check(g.size() <= l.maxStoredLinks, "more links stored than maxStoredLinks");
  check(g.pendingCount() <= l.maxPendingLinks, "more links pending than maxPendingLinks");
  if (oneSession) {
    check(g.pendingCount() <= l.maxPendingLinksPerSession,
          "more links pending from one session than its budget");
  }
}

// Every stored link passes checks 1–2 as stored; returns them as `Link` messages in T order.
std::vector<Bytes> storedLinks(const TeamGraph& g) {
  std::vector<Bytes> out;
  g.forEachLink([&](const StoredLink& l) {
    auto d = decodeLink(l.body, l.signature, g.teamId());
    check(d.has_value(), "a stored link fails decodeLink");
    check(d->hash == l.hash, "a stored link's hash is not its computed hash");
    check(d->unknown == l.unknown, "a stored link's unknown flag differs from decodeLink's");
    out.push_back(encodeLink(l.body, l.signature));
  });
  check(out.size() == g.size(), "forEachLink and size() disagree");
  return out;
}

void run(ByteView bytes) {
  auto input = parse(bytes);
  if (!input) return;
  if (input->flags & 4) {
    for (Bytes& link : input->links) {
      auto parts = splitLink(link);
      if (!parts) continue;
      if (const TestSigner* s = authorIn(parts->body, input->signers)) link = resign(parts->body, *s);
    }
  }
  const bool tight = input->flags & 1;
  const bool fromPeer = input->flags & 2;
  const GraphLimits limits = limitsFor(input->flags);
  const std::size_t split = std::min(input->split, input->links.size());
  const std::span<const Bytes> all(input->links);
  const SessionId hostile = fromPeer ? kPeer : kLocalSession;

  TeamGraph g(input->teamId, limits);
  (void)g.addBatch(all.first(split));  // the store's own history, e.g. from its state directory
  checkBounds(g, limits, false);
  (void)g.addBatch(all.subspan(split), hostile);
  checkBounds(g, limits, false);

  const std::vector<Bytes> stored = storedLinks(g);
  const Snapshot before = snapshot(g);
  const Backlog backlogBefore = backlog(g);

  // Redelivery: everything again, as one batch from the hostile sender.
  const BatchOutcome again = g.addBatch(all, hostile);
  checkBounds(g, limits, false);
  if (!tight) {
    check(again.stored.empty(), "a redelivered link was stored");
    check(again.dropped.empty(), "a redelivered link was dropped (and its sender charged) again");
    check(snapshot(g) == before, "redelivery changed the state");
    check(backlog(g) == backlogBefore, "redelivery changed the dropped or pending links");
  } else {
    for (const Bytes& link : stored) {
      const auto d = decodeLink(link, g.teamId());
      check(d && g.find(d->hash).has_value(), "a stored link was lost");
    }
  }
  const std::vector<Bytes> storedAfter = storedLinks(g);
  const Snapshot after = snapshot(g);

  // Order independence: the stored set alone, in one batch, to a store that never saw the rest.
  // Tight limits would discard pending links of a reversed delivery, so those go in T order.
  std::vector<Bytes> copy = storedAfter;
  if ((input->flags & 8) && !tight) std::reverse(copy.begin(), copy.end());
  TeamGraph fresh(input->teamId, limits);
  const BatchOutcome once = fresh.addBatch(copy, fromPeer ? kPeer : kLocalSession);
  checkBounds(fresh, limits, fromPeer);
  check(once.dropped.empty(), "a fresh store drops a link another store holds");
  check(once.stored.size() == storedAfter.size() && fresh.size() == g.size(),
        "a fresh store does not store every link another store holds");
  check(snapshot(fresh) == after,
        "the state differs from a fresh store's given the same links in one batch");
}

}  // namespace
}  // namespace portcullis::team::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::team::fuzz::fail("team_batch_fuzz", "sodium_init failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    portcullis::team::fuzz::run(portcullis::ByteView(data, size));
  } catch (const std::exception& e) {
    portcullis::team::fuzz::fail("team_batch_fuzz", std::string("threw: ") + e.what());
  } catch (...) {
    portcullis::team::fuzz::fail("team_batch_fuzz", "threw a non-standard exception");
  }
  return 0;
}
