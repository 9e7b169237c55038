// Writes the seed corpora of the team fuzz targets from the golden vectors
// (tests/data/team-vectors.json built into real links by tests/providers/team/vector_builder.h):
//
//   OUT/team_link/seed-*   one link each, in team_link_fuzz's framing: the first link of the
//                          vectors for each distinct verdict of decodeLink (an action accepted,
//                          known or unknown, or a reason for a drop)
//   OUT/team_batch/seed-*  one vector each, in team_batch_fuzz's framing, the smallest vectors
//                          first, split and flagged in turn (fresh store, existing team plus a
//                          hostile batch, one new link, tight limits)
//   OUT/team_claim/seed-*  one Claim each: Claim_R and Claim_I of every kind, as the handshake
//                          sends them (keys, link hashes, offers and admission fields of a
//                          vector), and two with a data word beyond the schema
//   OUT/team_message/seed-*    one session Message each: every member, the links and hashes real
//                              ones of a vector
//   OUT/team_change/seed-*     sealed changes (version-3 and version-4 shape, by the keys
//                              team_change re-signs with and by a vector's key, one with a word
//                              beyond the schema), a bare ChangeBody and bare ChangePayloads
//   OUT/team_handshake/seed-*  team_handshake_fuzz's framing: both modes, every Status, the
//                              reject paths (reflection, bad signature, unknown kind, lookups)
//
// All are kept small (at most kMaxFiles files and kMaxBytes bytes per folder): the fuzzer grows
// them in a scratch copy. Existing seed-* files are replaced; other files (regression inputs)
// are left alone.
//
// Usage: team_fuzz_gen_corpus VECTORS_JSON OUT_DIR
#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <capnp/schema.h>

#include "invitation.h"
#include "session.capnp.h"
#include "team_fuzz_support.h"
#include "team_session_fuzz_support.h"
#include "vector_builder.h"
#include "wire/session_codec.h"

namespace {

namespace fs = std::filesystem;
using namespace portcullis;
using namespace portcullis::team;

constexpr std::size_t kMaxFiles = 96;
constexpr std::size_t kMaxBytes = 180 * 1024;
constexpr std::size_t kMaxLinkSeedBytes = 4096;   // team_link_fuzz runs with -max_len=8192
constexpr std::size_t kMaxBatchSeedBytes = 16384;  // team_batch_fuzz runs with -max_len=32768
constexpr std::size_t kMaxSigners = 16;            // team_batch_fuzz reads no more

// The seed of each signing key a vector uses, and the key pair it makes.
struct Signers {
  std::vector<std::array<std::uint8_t, 32>> seeds;
  std::vector<team::fuzz::TestSigner> keys;
};

Signers signersOf(const vectors::BuiltVector& v) {
  Signers s;
  for (const auto& [name, key] : v.keyOf) {
    const auto pair = vectors::testKeyPair(name);
    std::array<std::uint8_t, 32> seed{};
    std::copy_n(pair.secretKey.begin(), seed.size(), seed.begin());
    s.seeds.push_back(seed);
    s.keys.push_back(team::fuzz::signerFromSeed(seed));
  }
  return s;
}

// The index in `s` of the key that signed (or should have signed) `body`, if a test key did.
std::optional<std::size_t> authorIndex(const Signers& s, ByteView body) {
  const team::fuzz::TestSigner* k = team::fuzz::authorIn(body, s.keys);
  if (k == nullptr) return std::nullopt;
  return static_cast<std::size_t>(k - s.keys.data());
}

// decodeLink's verdict on the link, and the action it was built with: one seed per pair.
std::string verdict(const vectors::BuiltLink& l, const Hash& teamId) {
  const std::string built = l.value ? actionName(typeOf(l.value->action)) : "later-version";
  auto d = decodeLink(l.message, teamId);
  if (!d) return built + " " + d.error().message();
  return built + " accepted" + (d->unknown ? " unknown" : "");
}

std::string fileSafe(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
  }
  return s.substr(0, 60);
}

std::string numbered(std::size_t i) {
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "seed-%03zu-", i);
  return prefix;
}

void write(const fs::path& file, const Bytes& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

void clearSeeds(const fs::path& dir) {
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().starts_with("seed-")) fs::remove(e.path());
  }
}

void linkCorpus(const std::vector<vectors::BuiltVector>& all, const fs::path& dir) {
  clearSeeds(dir);
  std::set<std::string> seen;
  std::size_t files = 0;
  std::size_t bytes = 0;
  for (const auto& v : all) {
    const Signers s = signersOf(v);
    for (const auto& l : v.links) {
      if (l.message.size() > kMaxLinkSeedBytes) continue;
      const std::string why = verdict(l, v.teamId);
      if (seen.contains(why)) continue;
      Bytes in;
      team::fuzz::putBytes(in, v.teamId);
      const auto author = authorIndex(s, l.body);
      const std::array<std::uint8_t, 32> none{};
      team::fuzz::putBytes(in, author ? s.seeds[*author] : none);
      team::fuzz::putBytes(in, l.message);
      if (files + 1 > kMaxFiles || bytes + in.size() > kMaxBytes) return;
      seen.insert(why);
      write(dir / (numbered(files) + fileSafe(why + "-" + v.name + "-" + l.id)), in);
      ++files;
      bytes += in.size();
    }
  }
}

Bytes batchInput(const vectors::BuiltVector& v, std::size_t turn) {
  const Signers s = signersOf(v);
  // The authors' seeds, most frequent first, as many as the target reads.
  std::map<std::size_t, std::size_t> uses;
  for (const auto& l : v.links) {
    if (auto a = authorIndex(s, l.body)) ++uses[*a];
  }
  std::vector<std::pair<std::size_t, std::size_t>> order(uses.begin(), uses.end());
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (order.size() > kMaxSigners) order.resize(kMaxSigners);

  const std::size_t n = v.links.size();
  std::uint8_t flags = 4;  // re-sign
  std::size_t split = 0;
  switch (turn % 4) {
    case 0: split = 0; flags |= (turn % 8 == 0) ? 8 : 0; break;   // a fresh store
    case 1: split = n / 2; flags |= 2; break;                      // a team, then a peer's half
    case 2: split = n > 0 ? n - 1 : 0; flags |= 2; break;          // a team, then one new link
    default:                                                       // tight limits: cap ≈ n / 2
      split = n / 2;
      flags |= 1 | static_cast<std::uint8_t>(std::min<std::size_t>(15, n / 8) << 4);
      break;
  }
  Bytes in;
  team::fuzz::putBytes(in, v.teamId);
  in.push_back(flags);
  in.push_back(static_cast<std::uint8_t>(std::min<std::size_t>(split, 255)));
  in.push_back(static_cast<std::uint8_t>(order.size()));
  for (const auto& [index, count] : order) team::fuzz::putBytes(in, s.seeds[index]);
  for (const auto& l : v.links) {
    team::fuzz::putU32(in, static_cast<std::uint32_t>(l.message.size()));
    team::fuzz::putBytes(in, l.message);
  }
  return in;
}

void batchCorpus(const std::vector<vectors::BuiltVector>& all, const fs::path& dir) {
  clearSeeds(dir);
  std::vector<std::pair<Bytes, std::string>> inputs;
  for (std::size_t i = 0; i < all.size(); ++i) {
    Bytes in = batchInput(all[i], i);
    if (in.size() <= kMaxBatchSeedBytes) inputs.emplace_back(std::move(in), all[i].name);
  }
  std::stable_sort(inputs.begin(), inputs.end(),
                   [](const auto& a, const auto& b) { return a.first.size() < b.first.size(); });
  std::size_t files = 0;
  std::size_t bytes = 0;
  for (const auto& [in, name] : inputs) {
    if (files + 1 > kMaxFiles || bytes + in.size() > kMaxBytes) break;
    write(dir / (numbered(files) + fileSafe(name)), in);
    ++files;
    bytes += in.size();
  }
}

// --- the session targets ------------------------------------------------------------------------

// session.capnp.h's types are global and share these names: the values are spelled tm::.
namespace tm = portcullis::team;

// Writes `seeds` (name, bytes) as seed-NNN-name, within the folder's bounds.
void writeSeeds(const fs::path& dir, const std::vector<std::pair<std::string, Bytes>>& seeds) {
  clearSeeds(dir);
  std::size_t files = 0;
  std::size_t bytes = 0;
  for (const auto& [name, in] : seeds) {
    if (files + 1 > kMaxFiles || bytes + in.size() > kMaxBytes) break;
    write(dir / (numbered(files) + fileSafe(name)), in);
    ++files;
    bytes += in.size();
  }
}

// The canonical bytes of a struct `T` with one non-zero data word beyond its schema's (a later
// version's field): the root's data section is padded to the schema's size and grown by a word.
// Its pointers and their targets move by the same amount, so their offsets stay right.
template <typename T>
Bytes widened(const Bytes& canonical) {
  std::uint64_t root = 0;
  std::memcpy(&root, canonical.data(), sizeof root);
  if ((root & 0xFFFF'FFFFu) != 0) throw std::runtime_error("widened: root is not at offset 0");
  const std::size_t dataWords = (root >> 32) & 0xFFFF;
  const std::size_t schemaWords =
      capnp::Schema::from<T>().getProto().getStruct().getDataWordCount();
  const std::size_t add = schemaWords > dataWords ? schemaWords - dataWords + 1 : 1;
  Bytes out(canonical.begin(), canonical.begin() + 8 * (1 + dataWords));
  out.resize(out.size() + 8 * add, 0);
  out[out.size() - 8] = 0x2A;  // the new field's value: non-zero, so canonical form keeps it
  out.insert(out.end(), canonical.begin() + 8 * (1 + dataWords), canonical.end());
  root = (root & ~(std::uint64_t{0xFFFF} << 32)) | (std::uint64_t(dataWords + add) << 32);
  std::memcpy(out.data(), &root, sizeof root);
  return out;
}

// The vector the session seeds take their links, keys and hashes from: 02-add-invite-admit (a
// root, an invitation and an admission), or the first with an admission.
const vectors::BuiltVector& sessionVector(const std::vector<vectors::BuiltVector>& all) {
  const vectors::BuiltVector* first = nullptr;
  for (const auto& v : all) {
    if (v.name == "02-add-invite-admit") return v;
    for (const auto& l : v.links) {
      if (!first && l.value && std::holds_alternative<tm::AdmitMember>(l.value->action)) first = &v;
    }
  }
  if (!first) throw std::runtime_error("no vector admits a member");
  return *first;
}

std::vector<Hash> sortedHashes(const vectors::BuiltVector& v, std::size_t n) {
  std::vector<Hash> out;
  for (const auto& l : v.links) {
    if (out.size() < n) out.push_back(l.hash);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The admission fields of the vector's first admitMember (or made-up ones if it has none) as an
// invitee's Claim_I carries them.
tm::Claim admissionClaim(const vectors::BuiltVector& v) {
  tm::Claim c;
  c.kind = ClaimKind::Invitee;
  for (const auto& l : v.links) {
    if (!l.value) continue;
    if (const auto* a = std::get_if<tm::AdmitMember>(&l.value->action)) {
      c.invitation = a->invitation;
      c.encKey = a->device.encKey;
      c.userId = a->userId;
      c.consent = a->device.consent;
      c.inviteSig = a->inviteSig;
      c.proof = l.signature;
      return c;
    }
  }
  c.invitation = vectors::testHash("invitation");
  c.encKey = vectors::testEncKey("x25519:alice");
  c.userId = "alice";
  c.proof = team::fuzz::filledWith<64>(0x41);
  c.consent = team::fuzz::filledWith<64>(0x42);
  c.inviteSig = team::fuzz::filledWith<64>(0x43);
  return c;
}

std::vector<tm::Offer> offersOf(const vectors::BuiltVector& v, std::size_t n) {
  std::vector<tm::Offer> out;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& l = v.links[i % v.links.size()];
    tm::Offer o;
    const auto tag = invitationKeyTag(l.value ? l.value->deviceId : Key{});
    std::copy(tag.begin(), tag.end(), o.pkTag.begin());
    o.pkTag[0] ^= static_cast<std::uint8_t>(i);
    o.invitation = l.hash;
    out.push_back(o);
  }
  return out;
}

Signature signedOver(std::string_view label, std::string_view transcript,
                     const vectors::TestKeyPair& k) {
  Bytes m(label.begin(), label.end());
  team::fuzz::putBytes(m, vectors::testHash(transcript));
  Signature s{};
  crypto_sign_detached(s.data(), nullptr, m.data(), m.size(), k.secretKey.data());
  return s;
}

void claimCorpus(const vectors::BuiltVector& v, const fs::path& dir) {
  const auto responder = vectors::testKeyPair(v.keyOf.begin()->first);
  const auto initiator = vectors::testKeyPair(std::prev(v.keyOf.end())->first);
  tm::Claim r;
  r.teamId = v.teamId;
  r.kind = ClaimKind::Member;
  r.deviceId = responder.publicKey;
  r.signature = signedOver("portcullis/team/v3/responder", "h1", responder);
  tm::Claim rServer = r;
  rServer.kind = ClaimKind::Server;
  tm::Claim rOffers = r;
  rOffers.invitations = offersOf(v, 2);
  tm::Claim rMany = r;
  rMany.invitations = offersOf(v, kMaxOffers);

  tm::Claim i;
  i.kind = ClaimKind::Member;
  i.deviceId = initiator.publicKey;
  i.signature = signedOver("portcullis/team/v3/initiator", "h2", initiator);
  tm::Claim iServer = i;
  iServer.kind = ClaimKind::Server;
  tm::Claim iInvitee = admissionClaim(v);
  iInvitee.deviceId = i.deviceId;
  iInvitee.signature = i.signature;
  tm::Claim iDevice = iInvitee;  // an invitation to a device of one's own: no userId
  iDevice.userId.reset();
  tm::Claim iUnknown = i;
  iUnknown.kind = ClaimKind::Unknown;

  writeSeeds(dir, {
      {"claim-r-member", encodeClaim(r)},
      {"claim-r-server", encodeClaim(rServer)},
      {"claim-r-two-offers", encodeClaim(rOffers)},
      {"claim-r-80-offers", encodeClaim(rMany)},
      {"claim-i-member", encodeClaim(i)},
      {"claim-i-server", encodeClaim(iServer)},
      {"claim-i-invitee-member", encodeClaim(iInvitee)},
      {"claim-i-invitee-device", encodeClaim(iDevice)},
      {"claim-i-unknown-kind", encodeClaim(iUnknown)},
      {"claim-r-later-field", widened<::Claim>(encodeClaim(rOffers))},
      {"claim-i-later-field", widened<::Claim>(encodeClaim(iInvitee))},
  });
}

Bytes status(tm::Status::Kind kind, tm::Reason reason) {
  return encodeMessage(tm::Status{kind, reason});
}

void messageCorpus(const vectors::BuiltVector& v, const fs::path& dir) {
  std::vector<Bytes> links;
  for (const auto& l : v.links) links.push_back(l.message);
  std::vector<Bytes> proof(links.begin(), links.begin() + std::min<std::size_t>(3, links.size()));
  tm::Vector vec;
  for (const auto& [name, key] : v.keyOf) {
    vec.entries.push_back(tm::VectorEntry{key, vec.entries.size() + 1});
  }
  std::sort(vec.entries.begin(), vec.entries.end(),
            [](const auto& a, const auto& b) { return a.deviceId < b.deviceId; });
  vec.entries.back().deviceSeq = 0xFFFF'FFFFu;
  const tm::Heads heads{sortedHashes(v, 2), v.links.size()};
  writeSeeds(dir, {
      {"status-ok", status(tm::Status::Kind::Ok, tm::Reason::Unknown)},
      {"status-prove-admission", status(tm::Status::Kind::ProveAdmission, tm::Reason::Unknown)},
      {"status-denied-removed", status(tm::Status::Kind::Denied, tm::Reason::Removed)},
      {"status-denied-too-large", status(tm::Status::Kind::Denied, tm::Reason::TooLarge)},
      {"status-denied-unknown", status(tm::Status::Kind::Denied, tm::Reason::Unknown)},
      {"proof", encodeMessage(tm::Proof{proof})},
      {"need", encodeMessage(tm::Need{sortedHashes(v, 3)})},
      {"heads", encodeMessage(heads)},
      {"vector", encodeMessage(vec)},
      {"want", encodeMessage(tm::Want{sortedHashes(v, 2)})},
      {"links", encodeMessage(tm::Links{links})},
      {"heads-later-field", widened<::Message>(encodeMessage(heads))},
  });
}

Bytes sealedBy(const DocId& doc, const Bytes& body, const std::array<std::uint8_t, 64>& sk) {
  return encodeSealedChange(body, signChange(doc, body, sk));
}

void changeCorpus(const vectors::BuiltVector& v, const fs::path& dir) {
  const auto& signers = team::fuzz::changeSigners();
  const DocId doc = team::fuzz::changeDoc();
  const tm::ChangePayload payload{vectors::kBaseTimestamp, "first edit", Bytes{1, 2, 3, 4, 5, 6}};
  tm::ChangeBody first;
  first.actor = signers[0].publicKey;
  first.seq = 1;
  first.startOp = 1;
  first.opCount = 6;
  first.teamHeads = sortedHashes(v, 1);
  first.scope = "team";
  first.ciphertext = encodeChangePayload(payload);
  const Bytes firstBody = encodeChangeBody(first);
  const Signature firstSig = signChange(doc, firstBody, signers[0].secretKey);

  tm::ChangeBody second = first;  // by the other signer, after the first
  second.actor = signers[1].publicKey;
  second.seq = 1;
  second.startOp = 7;
  second.opCount = 2;
  second.deps = {changeHash(firstBody, firstSig)};
  second.teamHeads = sortedHashes(v, 3);
  second.ciphertext =
      encodeChangePayload(tm::ChangePayload{vectors::kBaseTimestamp + 1, "", Bytes{9, 9}});

  tm::ChangeBody v4 = first;  // version 4's shape: a role's scope, sealed under a generation
  v4.seq = 2;
  v4.deps = {changeHash(firstBody, firstSig)};
  v4.scope = "role:admin";
  v4.generation = vectors::testHash("generation");
  v4.nonce = team::fuzz::filledWith<24>(0x4E);
  v4.ciphertext = Bytes(48, 0xC7);

  // A vector's device writes one too: a real signature the target cannot re-make.
  const auto outsider = vectors::testKeyPair(v.keyOf.begin()->first);
  tm::ChangeBody theirs = first;
  theirs.actor = outsider.publicKey;
  const Bytes theirsBody = encodeChangeBody(theirs);

  const Bytes laterBody = widened<::ChangeBody>(encodeChangeBody(second));
  writeSeeds(dir, {
      {"sealed-v3-first", encodeSealedChange(firstBody, firstSig)},
      {"sealed-v3-with-deps", sealedBy(doc, encodeChangeBody(second), signers[1].secretKey)},
      {"sealed-v4-shape", sealedBy(doc, encodeChangeBody(v4), signers[0].secretKey)},
      {"sealed-vector-key", sealedBy(doc, theirsBody, outsider.secretKey)},
      {"sealed-later-field", sealedBy(doc, laterBody, signers[1].secretKey)},
      {"body-v3", firstBody},
      {"payload", encodeChangePayload(payload)},
      {"payload-ops-only", encodeChangePayload(tm::ChangePayload{0, "", Bytes{7}})},
      {"payload-later-field", widened<::ChangePayload>(encodeChangePayload(payload))},
  });
}

void handshakeCorpus(const vectors::BuiltVector& v, const fs::path& dir) {
  using namespace team::fuzz;
  const auto& keys = handshakeKeys();
  const Hash team = handshakeTeam();
  const Bytes m1Member = streamM1(HandshakeMode::Member, team);
  const Bytes m1Invitee = streamM1(HandshakeMode::Invitee, team);

  tm::Claim member;
  member.kind = ClaimKind::Member;
  member.deviceId = keys.initiator.publicKey;
  member.signature = signaturePlaceholder();
  tm::Claim server = member;
  server.kind = ClaimKind::Server;
  tm::Claim invitee = admissionClaim(v);
  invitee.deviceId = member.deviceId;
  invitee.signature = member.signature;
  tm::Claim unknown = member;
  unknown.kind = ClaimKind::Unknown;
  tm::Claim reflecting = member;
  reflecting.deviceId = keys.responder.publicKey;
  tm::Claim withTeam = member;  // a Claim_R's teamId: no Claim_I
  withTeam.teamId = team;

  const Bytes ok = encodeMessage(tm::Status{tm::Status::Kind::Ok, tm::Reason::Unknown});
  const Bytes removed = encodeMessage(tm::Status{tm::Status::Kind::Denied, tm::Reason::Removed});
  const Bytes heads = encodeMessage(tm::Heads{sortedHashes(v, 2), v.links.size()});
  std::vector<Bytes> proofLinks;
  for (const auto& l : v.links) {
    if (proofLinks.size() < 3) proofLinks.push_back(l.message);
  }
  const Bytes proof = encodeMessage(tm::Proof{proofLinks});

  const std::uint8_t sealed = kSeal | kResign;
  const auto judge = [](int answer) { return static_cast<std::uint8_t>(answer << kJudgeShift); };
  const auto lookup = [](Lookup l) { return static_cast<std::uint8_t>(l); };
  // An m3 the peer did not seal: a well-framed c3 of the right size that cannot authenticate.
  const Bytes rawM3 = framedBigEndian(Bytes(encodeClaim(member).size() + kAeadFrameTagBytes, 0x3C));
  writeSeeds(dir, {
      {"member-ok", handshakeInput(sealed, {m1Member, encodeClaim(member), ok, heads})},
      {"invitee-ok-80-offers",
       handshakeInput(sealed | kManyOffers, {m1Invitee, encodeClaim(invitee), ok, proof})},
      {"member-prove-admission",
       handshakeInput(sealed | judge(1), {m1Member, encodeClaim(member), ok, proof})},
      {"member-judge-denies",
       handshakeInput(sealed | judge(2), {m1Member, encodeClaim(member), ok, {}})},
      {"member-peer-denies", handshakeInput(sealed, {m1Member, encodeClaim(member), removed, {}})},
      {"server-any-tag",
       handshakeInput(sealed | lookup(Lookup::Any), {m1Member, encodeClaim(server), ok, heads})},
      {"invitee-in-mode-0", handshakeInput(sealed, {m1Member, encodeClaim(invitee), ok, {}})},
      {"member-in-mode-1", handshakeInput(sealed, {m1Invitee, encodeClaim(member), ok, {}})},
      {"unknown-kind", handshakeInput(sealed, {m1Member, encodeClaim(unknown), ok, {}})},
      {"bad-signature", handshakeInput(kSeal, {m1Member, encodeClaim(member), ok, {}})},
      {"reflected-device", handshakeInput(sealed, {m1Member, encodeClaim(reflecting), ok, {}})},
      {"reflected-ephemeral",
       handshakeInput(sealed | kReflect | lookup(Lookup::Any),
                      {m1Member, encodeClaim(member), ok, {}})},
      {"claim-r-in-m3", handshakeInput(sealed, {m1Member, encodeClaim(withTeam), ok, {}})},
      {"status-not-a-status", handshakeInput(sealed, {m1Member, encodeClaim(member), heads, {}})},
      {"prefix-names-two",
       handshakeInput(sealed | lookup(Lookup::Two), {m1Invitee, encodeClaim(invitee), ok, {}})},
      {"tag-names-none",
       handshakeInput(sealed | lookup(Lookup::None), {m1Member, encodeClaim(member), ok, {}})},
      {"unsealed-m3", handshakeInput(0, {m1Member, rawM3, ok, {}})},
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s VECTORS_JSON OUT_DIR\n", argv[0]);
    return 1;
  }
  try {
    std::ifstream file(argv[1]);
    const auto json = nlohmann::json::parse(file);
    std::vector<vectors::BuiltVector> all;
    for (const auto& v : json.at("vectors")) all.push_back(vectors::buildVector(v));
    linkCorpus(all, fs::path(argv[2]) / "team_link");
    batchCorpus(all, fs::path(argv[2]) / "team_batch");
    const auto& session = sessionVector(all);
    claimCorpus(session, fs::path(argv[2]) / "team_claim");
    messageCorpus(session, fs::path(argv[2]) / "team_message");
    changeCorpus(session, fs::path(argv[2]) / "team_change");
    handshakeCorpus(session, fs::path(argv[2]) / "team_handshake");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
