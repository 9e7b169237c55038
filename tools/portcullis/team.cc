// team.cc — `portcullis team ...`: the offline verbs of the team provider (the team spec's
// §1–§5, §9) on one device's state directory (--state DIR, what a node's
// `[auth.team] state = DIR` names).
//
// Every verb that signs a link does it the same way (signAndAppend): reserve the next deviceSeq
// (durable first), sign on top of the graph's heads, add the link to the graph, and append it
// to the links file only if the graph holds it valid. A refused link is never appended, so no
// peer sees it and the reserved deviceSeq is used again by the next link (reserveNextSeq's doc).
// Links travel between devices as files: `team export` and `team import`, or `team join
// --from`; the network comes later.
//
// Invitation codes are secrets shown once: `team invite` prints the code and keeps it nowhere,
// `team join` reads it from the command line or stdin ("-") and wipes its copies. Argon2id (about
// 0.1 s and 64 MiB) runs on the main thread: this is a tool, not an event loop.

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>
#include <variant>

#include "invitation.h"
#include "portcullis/ids.h"
#include "portcullis/secret_handshake.h"
#include "state_dir.h"
#include "team_graph.h"
#include "tool.h"
#include "wire/link_codec.h"

namespace portcullis::tool {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using team::Hash;
using team::Key;
using team::TeamGraph;
using team::TeamStateDir;

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

// A verb's outcome on failure: the exit code and the one line saying why.
struct Failure {
  int exitCode;
  std::string message;
};

int fail(const Failure& f) { return failWith(f.exitCode, f.message); }
Failure usage(std::string message) { return {kExitUsage, std::move(message)}; }
Failure failed(std::string message) { return {kExitFailed, std::move(message)}; }

std::uint64_t nowMs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// "2024-05-01T12:00:00Z" for a time in ms since 1970.
std::string isoTime(std::uint64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string hex(ByteView bytes) { return toHex(bytes); }

// "1 link", "3 links"; "1 pass", "2 passes".
std::string count(std::size_t n, std::string_view noun, std::string_view plural = "") {
  if (n == 1) return "1 " + std::string(noun);
  return std::to_string(n) + " " + (plural.empty() ? std::string(noun) + "s" : std::string(plural));
}
// The first 8 hex digits: enough to tell keys and links apart in human output.
std::string shortHex(ByteView bytes) { return toHex(bytes).substr(0, 8); }

// Exactly 2N hex digits (either case), else nullopt.
template <std::size_t N>
std::optional<std::array<std::uint8_t, N>> fromHex(std::string_view text) {
  if (text.size() != 2 * N) return std::nullopt;
  std::array<std::uint8_t, N> out{};
  std::size_t length = 0;
  if (sodium_hex2bin(out.data(), N, text.data(), text.size(), nullptr, &length, nullptr) != 0 ||
      length != N) {
    return std::nullopt;
  }
  return out;
}

// A device's or server's X25519 key for lockboxes (version 4): its Ed25519 public key converted
// with crypto_sign_ed25519_pk_to_curve25519, which PublicKey computed when it checked the key. The
// device derives the matching secret from its own Ed25519 secret key, so no second key pair has
// to be stored.
team::EncKey encKeyOf(const PublicKey& key) { return key.curve25519(); }

// An Ed25519 public key given as 64 hex digits, which must be a usable point.
std::optional<PublicKey> publicKeyFromHex(std::string_view text) {
  auto bytes = fromHex<32>(text);
  if (!bytes) return std::nullopt;
  auto key = PublicKey::fromBytes(*bytes);
  if (!key) return std::nullopt;
  return *key;
}

std::optional<Failure> checkUserId(std::string_view what, std::string_view userId) {
  if (!team::textAcceptable(userId, 1, 64)) {
    return usage(std::string(what) + ": a userId is 1 to 64 bytes of UTF-8 without control "
                                     "characters");
  }
  return std::nullopt;
}

std::string levelName(team::Level level) {
  switch (level) {
    case team::Level::None: return "none";
    case team::Level::Read: return "read";
    case team::Level::Write: return "write";
  }
  return "?";
}

std::string principalText(const team::Principal& p) {
  switch (p.kind) {
    case team::Principal::Kind::Everyone: return "everyone";
    case team::Principal::Kind::Role: return "role:" + p.name;
    case team::Principal::Kind::Member: return "member:" + p.name;
    case team::Principal::Kind::Server: return "server:" + hex(p.server);
  }
  return "?";
}

std::string documentText(const std::optional<team::DocId>& doc) {
  if (!doc) return "*";
  return DocumentId::fromBytes(*doc).value().toString();
}

// Writes `text` to a new file (mode 0600, never replacing one), durably.
Result<void> writeNewFile(const std::string& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    return Error(e == EEXIST ? Errc::Conflict : Errc::Io,
                 path + (e == EEXIST ? ": exists; refusing to overwrite it"
                                     : ": cannot create (" + std::string(std::strerror(e)) + ")"));
  }
  std::size_t done = 0;
  bool ok = true;
  while (ok && done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int e = errno;
  ::close(fd);
  if (!ok) return Error(Errc::Io, path + ": cannot write (" + std::string(std::strerror(e)) + ")");
  return {};
}

// Reads a small file whole (at most `limit` bytes).
Result<std::string> readSmallFile(const std::string& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Errc::Io, path + ": cannot open (" + std::strerror(errno) + ")");
  std::string text(limit + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return Error(Errc::Io, path + ": cannot read");
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > limit) {
    return Error(Errc::Malformed, path + ": larger than " + std::to_string(limit) + " bytes");
  }
  return text;
}

void emit(const TeamArgs& args, const json& out, const std::string& text) {
  if (args.json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::fputs(text.c_str(), stdout);
  }
  std::fflush(stdout);
}

// --- the state directory ---------------------------------------------------------------------

// Opens --state. A missing directory is a bad argument (exit 2); any other failure (damage, a
// lock held by another process, modes) exits 1 with the library's message, which names the file.
std::variant<TeamStateDir, Failure> openState(const TeamArgs& args) {
  std::error_code ec;
  if (!fs::is_directory(args.state, ec)) {
    return usage("--state " + args.state + ": no team state directory there (make one with "
                 "`portcullis team init` or `portcullis team join`)");
  }
  auto dir = TeamStateDir::open(args.state);
  if (!dir) return failed(dir.error().message());
  return std::move(*dir);
}

// A new state directory must not exist yet, or be empty; its parent must exist.
std::optional<Failure> checkNewState(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(path, ec);
  if (fs::exists(status)) {
    if (!fs::is_directory(status) || !fs::is_empty(path, ec)) {
      return failed("--state " + path + ": exists and is not an empty directory; refusing to "
                    "replace a team state");
    }
    return std::nullopt;
  }
  const fs::path parent = fs::absolute(path, ec).parent_path();
  if (!fs::is_directory(parent, ec)) {
    return usage("--state " + path + ": the folder " + parent.string() + " does not exist");
  }
  return std::nullopt;
}

// The userId this device signs as: the member whose current device it is.
std::variant<std::string, Failure> myUserId(const TeamStateDir& dir) {
  const Key me = dir.deviceKey().publicKey().bytes();
  if (auto user = dir.graph().memberOfDevice(me)) return *user;
  std::string why = "this device (" + shortHex(me) + ") is not a current device of a member of "
                    "this team";
  if (dir.graph().lastSeqOf(me) == 0) {
    why += " yet (after `team join`, import the links that admit it: `team import FILE`)";
  } else {
    why += " any more (it or its member was removed)";
  }
  return failed(why);
}

// Signs `action` as this device (member `userId`), adds it to the graph, and appends it only if
// the graph holds it valid. Returns the new link's hash. A refusal names the graph's reason.
std::variant<Hash, Failure> signAndAppend(TeamStateDir& dir, const std::string& userId,
                                          team::Action action) {
  const team::ActionType type = team::typeOf(action);
  auto message = dir.signNext(userId, std::move(action), nowMs());
  if (!message) return failed(message.error().message());
  auto parts = team::splitLink(*message);
  if (!parts) return failed(parts.error().message());
  const Hash hash = team::linkHash(parts->body, parts->signature);
  const std::vector<Bytes> batch{std::move(*message)};
  const team::BatchOutcome outcome = dir.graph().addBatch(batch);
  const std::string what = team::actionName(type);
  if (!outcome.dropped.empty()) {
    return failed("refused, nothing appended: the " + what + " link is malformed (" +
                  outcome.dropReasons.front() + ")");
  }
  if (dir.graph().state(hash) != team::LinkState::Valid) {
    return failed("refused, nothing appended: the team would hold this " + what +
                  " link invalid: " + dir.graph().whyInvalid(hash));
  }
  if (auto appended = dir.appendLinks(batch); !appended) return failed(appended.error().message());
  return hash;
}

// The links `graph` stored from a batch, as `Link` messages in the order it stored them.
std::vector<Bytes> storedMessages(const TeamGraph& graph, const std::vector<Hash>& stored) {
  std::vector<Bytes> out;
  out.reserve(stored.size());
  for (const Hash& h : stored) {
    auto link = graph.find(h);
    if (!link) throw std::logic_error("team: a link the graph just stored is not found");
    out.push_back(team::encodeLink(link->body, link->signature));
  }
  return out;
}

// --- init ----------------------------------------------------------------------------------------

int teamInit(const TeamArgs& args) {
  if (!team::textAcceptable(args.name, 0, 128)) {
    return fail(usage("--name: a team name is up to 128 bytes of UTF-8 without control "
                      "characters"));
  }
  if (auto bad = checkUserId("--user", args.user)) return fail(*bad);
  std::optional<Key> recovery;
  if (!args.recoveryKey.empty()) {
    auto key = publicKeyFromHex(args.recoveryKey);
    if (!key) return fail(usage("--recovery-key: expected an Ed25519 public key, 64 hex digits"));
    recovery = key->bytes();
  }
  if (auto bad = checkNewState(args.state)) return fail(*bad);

  DeviceKey key = DeviceKey::generate();
  const Key me = key.publicKey().bytes();
  team::Root root;
  root.teamName = args.name;
  root.founder = team::Device{me, encKeyOf(key.publicKey())};
  root.recoveryKey = recovery;
  root.version = 3;
  team::LinkBody body;
  body.userId = args.user;
  body.deviceId = me;
  body.deviceSeq = 1;
  body.timestamp = nowMs();
  body.action = std::move(root);
  const Bytes encoded = team::encodeLinkBody(body);
  const team::Signature signature = team::signLinkBody(encoded, key.secretKey().span());
  const Hash teamId = team::linkHash(encoded, signature);
  const std::vector<Bytes> batch{team::encodeLink(encoded, signature)};
  {
    TeamGraph check(teamId);
    (void)check.addBatch(batch);
    if (!check.hasRoot()) return fail(failed("the new root is refused: " + check.rootProblem()));
  }
  // The root is signed with deviceSeq 1 before the team ID (its hash) exists: create() records
  // that it was used.
  auto dir = TeamStateDir::create(args.state, teamId, std::move(key), /*lastSignedSeq=*/1);
  if (!dir) return fail(failed(dir.error().message()));
  (void)dir->graph().addBatch(batch);
  if (auto appended = dir->appendLinks(batch); !appended) {
    return fail(failed(appended.error().message()));
  }
  const json out{{"team", hex(teamId)}, {"name", args.name}, {"user", args.user},
                 {"device", hex(me)}, {"state", args.state}};
  emit(args, out,
       "founded team \"" + args.name + "\" in " + args.state + "\n" + "team ID: " + hex(teamId) +
           "\n" + "this device (" + args.user + "): " + hex(me) + "\n");
  return kExitOk;
}

// --- invite --------------------------------------------------------------------------------------

int teamInvite(const TeamArgs& args) {
  std::uint64_t lifetime = 0;
  if (!args.expires.empty()) {
    auto ms = team::parseDurationMs(args.expires);
    if (!ms) return fail(usage("--expires: " + ms.error().message()));
    lifetime = *ms;
  }
  if (args.device && args.maxUses >= 0 && args.maxUses != 1) {
    return fail(usage("--max-uses: a device invitation admits exactly one device"));
  }
  auto opened = openState(args);
  if (auto* f = std::get_if<Failure>(&opened)) return fail(*f);
  TeamStateDir& dir = std::get<TeamStateDir>(opened);
  auto user = myUserId(dir);
  if (auto* f = std::get_if<Failure>(&user)) return fail(*f);
  const std::string& me = std::get<std::string>(user);
  if (!args.device) {
    const auto admins = dir.graph().admins();
    if (std::find(admins.begin(), admins.end(), me) == admins.end()) {
      // The graph would refuse it (§3: inviteMember is admin-only); say so without signing.
      return fail(failed("refused, nothing appended: " + me + " is not an admin, and only admins "
                         "may invite members (a member may invite its own devices: --device)"));
    }
  }

  const Hash teamId = dir.teamId();
  team::InvitationCode code = team::generateInvitationCode(teamId);
  auto parsed = team::parseInvitationCode(code.text());
  if (!parsed) throw std::logic_error("team: a generated invitation code does not parse");
  auto key = team::deriveInvitationKey(*parsed, teamId);
  if (!key) return fail(failed("invitation key: " + key.error().message()));
  team::Invite invite;
  invite.publicKey = key->publicKey;
  invite.maxUses = args.device ? 1 : static_cast<std::uint32_t>(args.maxUses < 0 ? 1 : args.maxUses);
  invite.expiresAt = lifetime == 0 ? 0 : nowMs() + lifetime;
  team::Action action;
  if (args.device) {
    action = team::InviteDevice{invite};
  } else {
    action = team::InviteMember{invite};
  }
  auto signedLink = signAndAppend(dir, me, std::move(action));
  if (auto* f = std::get_if<Failure>(&signedLink)) return fail(*f);
  const Hash invitation = std::get<Hash>(signedLink);

  // The code's only appearance: stdout, once. Every copy made for printing is wiped.
  const std::string kind = args.device ? "device" : "member";
  const std::string uses = invite.maxUses == 0 ? "unlimited uses"
                           : invite.maxUses == 1 ? "1 use"
                                                 : std::to_string(invite.maxUses) + " uses";
  const std::string expiry = invite.expiresAt == 0 ? "never expires"
                                                   : "expires " + isoTime(invite.expiresAt);
  std::string text;
  if (args.json) {
    json out{{"code", std::string(code.text())}, {"invitation", hex(invitation)},
             {"kind", kind}, {"maxUses", invite.maxUses}, {"expiresAt", invite.expiresAt},
             {"inviter", me}};
    text = out.dump() + "\n";
    std::string& inJson = out["code"].get_ref<std::string&>();
    secureWipe(inJson.data(), inJson.size());
  } else {
    text = std::string(code.text()) + "\n" + "invitation " + shortHex(invitation) + " for a " +
           kind + " of the team, " + uses + ", " + expiry + ".\n" +
           "The code is shown only now: give it to the invitee over a channel you trust. They "
           "run `portcullis team join CODE --from EXPORT ...` with an export of the team.\n";
  }
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
  secureWipe(text.data(), text.size());
  return kExitOk;
}

// --- join ----------------------------------------------------------------------------------------

// Reads CODE, or a line of stdin for "-" (keeping the code out of the process list and shell
// history). The caller wipes the result.
std::string readCode(const std::string& arg) {
  if (arg != "-") return arg;
  std::string line;
  std::getline(std::cin, line);
  return line;
}

int teamJoin(const TeamArgs& args) {
  if (!args.user.empty()) {
    if (auto bad = checkUserId("--user", args.user)) return fail(*bad);
  }
  std::string codeText = readCode(args.code);
  auto code = team::parseInvitationCode(codeText);
  secureWipe(codeText.data(), codeText.size());
  if (!code) return fail(usage("CODE: " + code.error().message()));
  if (auto bad = checkNewState(args.state)) return fail(*bad);
  const std::string requestPath =
      args.requestOut.empty() ? fs::path(args.state).lexically_normal().string() + ".request.json"
                              : args.requestOut;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(requestPath, ec))) {
    return fail(failed("--request-out " + requestPath + ": exists; refusing to overwrite it"));
  }

  auto imported = TeamStateDir::importFile(args.from);
  if (!imported) return fail(failed("--from " + imported.error().message()));
  const Hash* teamId = &imported->teamId;
  if (!team::prefixMatches(*code, *teamId)) {
    return fail(failed("CODE is not an invitation to the team in " + args.from +
                       " (its prefix names another team)"));
  }
  TeamGraph graph(*teamId);
  const team::BatchOutcome outcome = graph.addBatch(imported->links);
  if (!graph.hasRoot()) return fail(failed(args.from + ": " + graph.rootProblem()));
  if (!outcome.dropped.empty()) {
    return fail(failed(args.from + ": " + std::to_string(outcome.dropped.size()) +
                       " links are malformed (" + outcome.dropReasons.front() + ")"));
  }

  auto key = team::deriveInvitationKey(*code, *teamId);
  if (!key) return fail(failed("invitation key: " + key.error().message()));
  const auto tag = team::invitationKeyTag(key->publicKey);
  std::optional<team::InvitationInfo> found;
  for (team::InvitationInfo& info : graph.invitations()) {
    if (info.open && team::invitationKeyTag(info.publicKey) == tag) {
      found = std::move(info);
      break;
    }
  }
  // One answer for a wrong code and a spent invitation: the code's holder learns nothing more.
  if (!found) {
    return fail(failed("the code matches no open invitation of the team in " + args.from +
                       " (mistyped, revoked, used up, or a newer export is needed)"));
  }
  std::string userId;
  if (found->device) {
    if (!args.user.empty() && args.user != found->inviter) {
      return fail(failed("this code invites another device of " + found->inviter +
                         ", not a new member: leave out --user"));
    }
  } else {
    if (args.user.empty()) {
      return fail(usage("--user NAME: required to join through a member invitation"));
    }
    const auto members = graph.members();
    const auto removed = graph.removed();
    if (std::find(members.begin(), members.end(), args.user) != members.end() ||
        std::find(removed.begin(), removed.end(), args.user) != removed.end()) {
      return fail(failed("--user " + args.user + ": that userId is or was a member of this team; "
                         "a member invitation admits a new userId only"));
    }
    userId = args.user;
  }

  DeviceKey device = DeviceKey::generate();
  const Key deviceId = device.publicKey().bytes();
  const team::EncKey encKey = encKeyOf(device.publicKey());
  const team::AdmissionRequest request =
      team::makeAdmissionRequest(*teamId, found->hash, *key, device, encKey, userId);

  auto dir = TeamStateDir::create(args.state, *teamId, std::move(device), /*lastSignedSeq=*/0);
  if (!dir) return fail(failed(dir.error().message()));
  const team::BatchOutcome again = dir->graph().addBatch(imported->links);
  const std::vector<Bytes> stored = storedMessages(dir->graph(), again.stored);
  if (auto appended = dir->appendLinks(stored); !appended) {
    return fail(failed(appended.error().message()));
  }
  const json file{{"team", hex(*teamId)},        {"invitation", hex(request.invitation)},
                  {"deviceId", hex(request.deviceId)}, {"encKey", hex(request.encKey)},
                  {"userId", request.userId},    {"consent", hex(request.consent)},
                  {"inviteSig", hex(request.inviteSig)}};
  if (auto written = writeNewFile(requestPath, file.dump(2) + "\n"); !written) {
    return fail(failed("--request-out " + written.error().message()));
  }
  const std::string who = found->device ? "a new device of " + found->inviter : userId;
  const json out{{"team", hex(*teamId)},      {"state", args.state},
                 {"device", hex(deviceId)},    {"userId", request.userId},
                 {"kind", found->device ? "device" : "member"},
                 {"invitation", hex(found->hash)}, {"request", requestPath}};
  emit(args, out,
       "joined team " + shortHex(*teamId) + " as " + who + " in " + args.state + "\n" +
           "this device: " + hex(deviceId) + "\n" + "admission request: " + requestPath +
           "\nA member runs `portcullis team admit " + requestPath +
           "`, then exports the team for you to `portcullis team import`.\n");
  return kExitOk;
}

// --- admit ---------------------------------------------------------------------------------------

std::variant<team::AdmissionRequest, Failure> readRequest(const std::string& path,
                                                          const Hash& teamId) {
  auto text = readSmallFile(path, 64 * 1024);
  if (!text) return failed(text.error().message());
  const json in = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!in.is_object()) return failed(path + ": not an admission request (expected a JSON object)");
  auto field = [&](const char* name) -> std::optional<std::string> {
    auto it = in.find(name);
    if (it == in.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto bad = [&](const char* name, const char* expected) {
    return failed(path + ": not an admission request (" + name + ": expected " + expected + ")");
  };
  team::AdmissionRequest r;
  auto requestTeam = fromHex<32>(field("team").value_or(""));
  if (!requestTeam) return bad("team", "64 hex digits");
  if (*requestTeam != teamId) {
    return failed(path + ": the request is for team " + shortHex(*requestTeam) +
                  ", this state directory's team is " + shortHex(teamId));
  }
  auto invitation = fromHex<32>(field("invitation").value_or(""));
  if (!invitation) return bad("invitation", "64 hex digits");
  auto deviceId = fromHex<32>(field("deviceId").value_or(""));
  if (!deviceId) return bad("deviceId", "64 hex digits");
  auto encKey = fromHex<32>(field("encKey").value_or(""));
  if (!encKey) return bad("encKey", "64 hex digits");
  auto userId = field("userId");
  if (!userId) return bad("userId", "a string");
  auto consent = fromHex<64>(field("consent").value_or(""));
  if (!consent) return bad("consent", "128 hex digits");
  auto inviteSig = fromHex<64>(field("inviteSig").value_or(""));
  if (!inviteSig) return bad("inviteSig", "128 hex digits");
  r.invitation = *invitation;
  r.deviceId = *deviceId;
  r.encKey = *encKey;
  r.userId = *userId;
  r.consent = *consent;
  r.inviteSig = *inviteSig;
  return r;
}

int teamAdmit(const TeamArgs& args) {
  auto opened = openState(args);
  if (auto* f = std::get_if<Failure>(&opened)) return fail(*f);
  TeamStateDir& dir = std::get<TeamStateDir>(opened);
  auto user = myUserId(dir);
  if (auto* f = std::get_if<Failure>(&user)) return fail(*f);
  const Hash teamId = dir.teamId();
  auto read = readRequest(args.file, teamId);
  if (auto* f = std::get_if<Failure>(&read)) return fail(*f);
  const team::AdmissionRequest& request = std::get<team::AdmissionRequest>(read);

  std::optional<team::InvitationInfo> info;
  for (team::InvitationInfo& i : dir.graph().invitations()) {
    if (i.hash == request.invitation) info = std::move(i);
  }
  const std::string inv = "invitation " + shortHex(request.invitation);
  if (!info) {
    return fail(failed(inv + " is not a valid invitation in this state directory's links "
                             "(import the team's latest links?)"));
  }
  if (!team::verifyAdmissionRequest(teamId, request, info->publicKey)) {
    return fail(failed(args.file + ": the request's signatures do not verify (altered, or not "
                                   "made with this invitation's code)"));
  }
  if (info->device != request.userId.empty()) {
    return fail(failed(args.file + (info->device ? ": a device invitation's request names no "
                                                   "userId"
                                                 : ": a member invitation's request needs a "
                                                   "userId")));
  }
  if (!info->device && !team::textAcceptable(request.userId, 1, 64)) {
    return fail(failed(args.file + ": the userId is not 1 to 64 bytes of UTF-8 without control "
                                   "characters"));
  }
  if (!team::encKeyAcceptable(request.encKey)) {
    return fail(failed(args.file + ": the encKey is not a usable X25519 key"));
  }
  if (!info->open) {
    return fail(failed(inv + " is no longer open (revoked, used up, or its inviter is no longer "
                             "current)"));
  }
  // §5.1: only the admitting device checks expiry, against its own clock.
  if (team::invitationExpired(info->expiresAt, nowMs())) {
    return fail(failed(inv + " expired at " + isoTime(info->expiresAt) +
                       " (this device's clock); the inviter can make a new one"));
  }

  const team::NewDevice device{request.deviceId, request.encKey, request.consent};
  team::Action action;
  if (info->device) {
    action = team::AdmitDevice{request.invitation, device, request.inviteSig, std::nullopt};
  } else {
    action = team::AdmitMember{request.invitation, request.userId, device, request.inviteSig,
                               std::nullopt};
  }
  auto signedLink = signAndAppend(dir, std::get<std::string>(user), std::move(action));
  if (auto* f = std::get_if<Failure>(&signedLink)) return fail(*f);
  const Hash link = std::get<Hash>(signedLink);
  const std::string member = info->device ? info->inviter : request.userId;
  const json out{{"link", hex(link)}, {"kind", info->device ? "device" : "member"},
                 {"userId", member}, {"device", hex(request.deviceId)},
                 {"invitation", hex(request.invitation)}};
  emit(args, out,
       (info->device ? "admitted a new device of " + member : "admitted " + member) +
           " (device " + shortHex(request.deviceId) + ") through " + inv + "\n" +
           "Export the team (`portcullis team export FILE`) and give the file to the new "
           "device, which imports it.\n");
  return kExitOk;
}

// --- the other signing verbs ---------------------------------------------------------------------

// What a signing verb signs, checked before the state directory is opened; or why not.
using Planned = std::variant<team::Action, Failure>;

std::variant<std::pair<std::optional<team::DocId>, team::Principal>, Failure> parseAccessTarget(
    const TeamArgs& args) {
  std::optional<team::DocId> doc;
  if (args.subject != "*") {
    auto id = DocumentId::parse(args.subject);
    if (!id) return usage("DOC: " + id.error().message() + " (a portcullis:... document ID, or *)");
    doc = id->bytes();
  }
  team::Principal p;
  const std::string& text = args.principal;
  auto after = [&](std::string_view prefix) { return text.substr(prefix.size()); };
  if (text == "everyone") {
    p.kind = team::Principal::Kind::Everyone;
  } else if (text.starts_with("role:")) {
    p.kind = team::Principal::Kind::Role;
    p.name = after("role:");
    if (!team::roleAcceptable(p.name)) {
      return usage("PRINCIPAL: role:R needs a role of 1 to 32 characters of a-z, 0-9, _ and -");
    }
  } else if (text.starts_with("member:")) {
    p.kind = team::Principal::Kind::Member;
    p.name = after("member:");
    if (auto bad = checkUserId("PRINCIPAL member:U", p.name)) return *bad;
  } else if (text.starts_with("server:")) {
    p.kind = team::Principal::Kind::Server;
    auto key = fromHex<32>(after("server:"));
    if (!key) return usage("PRINCIPAL: server:KEY needs the server's key, 64 hex digits");
    p.server = *key;
  } else {
    return usage("PRINCIPAL: expected everyone, role:R, member:U or server:KEY");
  }
  return std::pair{doc, p};
}

Planned planAction(const TeamArgs& args) {
  const std::string& v = args.verb;
  if (v == "remove") {
    if (auto bad = checkUserId("USER", args.subject)) return *bad;
    return team::RemoveMember{args.subject};
  }
  if (v == "device remove") {
    auto key = fromHex<32>(args.subject);
    if (!key) return usage("DEVICE: expected a device key, 64 hex digits");
    return team::RemoveDevice{*key};
  }
  if (v == "role add" || v == "role remove") {
    if (auto bad = checkUserId("USER", args.subject)) return *bad;
    if (!team::roleAcceptable(args.role)) {
      return usage("ROLE: 1 to 32 characters of a-z, 0-9, _ and -");
    }
    team::MemberRole role{args.subject, args.role, std::nullopt};
    if (v == "role add") return team::AddMemberRole{role};
    return team::RemoveMemberRole{role};
  }
  if (v == "access set") {
    auto target = parseAccessTarget(args);
    if (auto* f = std::get_if<Failure>(&target)) return *f;
    auto& [doc, principal] = std::get<0>(target);
    team::SetDocumentAccess access;
    access.document = doc;
    access.principal = principal;
    if (args.level == "none") {
      access.level = team::Level::None;
    } else if (args.level == "read") {
      access.level = team::Level::Read;
    } else if (args.level == "write") {
      access.level = team::Level::Write;
    } else {
      return usage("LEVEL: expected read, write or none");
    }
    return access;
  }
  if (v == "server add") {
    auto key = publicKeyFromHex(args.subject);
    if (!key) return usage("KEY: expected a server's Ed25519 public key, 64 hex digits");
    return team::AddServer{key->bytes(), encKeyOf(*key)};
  }
  if (v == "server remove") {
    auto key = fromHex<32>(args.subject);
    if (!key) return usage("KEY: expected a server key, 64 hex digits");
    return team::RemoveServer{*key};
  }
  if (v != "leave") throw std::logic_error("team: unknown verb " + v);
  return team::RemoveMember{};  // the userId is this device's member's, known once opened
}

// Facts the graph's generic refusal would hide: the target of the action is not there, or is the
// founder, whom nobody removes (§3).
std::optional<Failure> checkTarget(const TeamGraph& graph, const team::Action& action) {
  auto isMember = [&](const std::string& u) {
    const auto members = graph.members();
    return std::find(members.begin(), members.end(), u) != members.end();
  };
  auto notMember = [](const std::string& u) {
    return failed(u + " is not a current member of this team (see `portcullis team members`)");
  };
  return std::visit(
      Overloaded{
          [&](const team::RemoveMember& a) -> std::optional<Failure> {
            if (!isMember(a.userId)) return notMember(a.userId);
            if (a.userId == graph.founder()) {
              return failed("refused, nothing appended: " + a.userId + " founded the team, and "
                            "the founder can neither leave nor be removed");
            }
            return std::nullopt;
          },
          [&](const team::MemberRole& a) -> std::optional<Failure> {
            if (!isMember(a.userId)) return notMember(a.userId);
            return std::nullopt;
          },
          [&](const team::RemoveDevice& a) -> std::optional<Failure> {
            if (!graph.memberOfDevice(a.deviceId)) {
              return failed("device " + shortHex(a.deviceId) + " is not a current device of a "
                            "member (see `portcullis team devices --all`)");
            }
            return std::nullopt;
          },
          [&](const team::RemoveServer& a) -> std::optional<Failure> {
            const auto servers = graph.servers();
            if (std::find(servers.begin(), servers.end(), a.serverId) == servers.end()) {
              return failed("server " + shortHex(a.serverId) + " is not a current server of "
                                                               "this team");
            }
            return std::nullopt;
          },
          [](const auto&) -> std::optional<Failure> { return std::nullopt; },
      },
      action);
}

int teamSign(const TeamArgs& args) {
  Planned planned = planAction(args);
  if (auto* f = std::get_if<Failure>(&planned)) return fail(*f);
  team::Action action = std::move(std::get<team::Action>(planned));
  auto opened = openState(args);
  if (auto* f = std::get_if<Failure>(&opened)) return fail(*f);
  TeamStateDir& dir = std::get<TeamStateDir>(opened);
  auto user = myUserId(dir);
  if (auto* f = std::get_if<Failure>(&user)) return fail(*f);
  const std::string& me = std::get<std::string>(user);
  if (args.verb == "leave") action = team::RemoveMember{me};
  if (auto bad = checkTarget(dir.graph(), action)) return fail(*bad);
  const team::ActionType type = team::typeOf(action);
  auto signedLink = signAndAppend(dir, me, std::move(action));
  if (auto* f = std::get_if<Failure>(&signedLink)) return fail(*f);
  const Hash link = std::get<Hash>(signedLink);
  const json out{{"link", hex(link)}, {"action", team::actionName(type)}, {"author", me}};
  emit(args, out,
       "signed " + std::string(team::actionName(type)) + " (link " + shortHex(link) + ")\n");
  return kExitOk;
}

// --- reading verbs -------------------------------------------------------------------------------

json keysJson(const std::vector<Key>& keys) {
  json out = json::array();
  for (const Key& k : keys) out.push_back(hex(k));
  return out;
}

std::string joined(const std::vector<std::string>& items, const char* empty) {
  if (items.empty()) return empty;
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

int teamMembers(const TeamArgs& args) {
  auto opened = openState(args);
  if (auto* f = std::get_if<Failure>(&opened)) return fail(*f);
  const TeamStateDir& dir = std::get<TeamStateDir>(opened);
  const TeamGraph& graph = dir.graph();
  const Key self = dir.deviceKey().publicKey().bytes();
  const auto admins = graph.admins();
  json members = json::array();
  std::string text = "team \"" + graph.teamName() + "\" (" + shortHex(dir.teamId()) + ")\n";
  for (const std::string& u : graph.members()) {
    const bool admin = std::find(admins.begin(), admins.end(), u) != admins.end();
    const auto devices = graph.devicesOf(u);
    std::vector<std::string> shown;
    for (const Key& d : devices) shown.push_back(shortHex(d) + (d == self ? " (this device)" : ""));
    members.push_back({{"userId", u}, {"admin", admin}, {"roles", graph.roles(u)},
                       {"devices", keysJson(devices)}});
    text += "  " + u + (admin ? " (admin)" : "") + "  roles: " + joined(graph.roles(u), "-") +
            "  devices: " + joined(shown, "-") + "\n";
  }
  std::vector<std::string> servers;
  for (const Key& s : graph.servers()) servers.push_back(shortHex(s));
  if (!servers.empty()) text += "servers: " + joined(servers, "-") + "\n";
  if (!graph.removed().empty()) text += "removed: " + joined(graph.removed(), "-") + "\n";
  const json out{{"team", hex(dir.teamId())}, {"name", graph.teamName()}, {"members", members},
                 {"removed", graph.removed()}, {"servers", keysJson(graph.servers())}};
  emit(args, out, text);
  return kExitOk;
}

int teamDevices(const TeamArgs& args) {
  auto opened = openState(args);
  if (auto* f = std::get_if<Failure>(&opened)) return fail(*f);
  const TeamStateDir& dir = std::get<TeamStateDir>(opened);
  const TeamGraph& graph = dir.graph();
  const Key self = dir.deviceKey().publicKey().bytes();
  std::vector<Key> devices;
  if (args.all) {
    devices = graph.devices();
  } else {
    auto user = myUserId(dir);
    if (auto* f = std::get_if<Failure>(&user)) return fail(*f);
    devices = graph.devicesOf(std::get<std::string>(user));
  }
  json list = json::array();
  std::string text;
  for (const Key& d : devices) {
    const std::string member = graph.memberOfDevice(d).value_or("");
    list.push_back({{"deviceId", hex(d)}, {"member", member}, {"self", d == self}});
    text += hex(d) + "  " + member + (d == self ? "  (this device)" : "") + "\n";
  }
  emit(args, json{{"devices", list}}, text);
  return kExitOk;
}

int teamAccessShow(const TeamArgs& args) {
  std::optional<team::DocId> doc;
  if (!args.subject.empty() && args.subject != "*") {
    auto id = DocumentId::parse(args.subject);
    if (!id) return fail(usage("DOC: " + id.error().message() + " (a portcullis:... ID, or *)"));
    doc = id->bytes();
  }
  auto opened = openState(args);
  if (auto* f = std::get_if<Failure>(&opened)) return fail(*f);
  const TeamGraph& graph = std::get<TeamStateDir>(opened).graph();
  json members = json::object();
  json servers = json::object();
  std::string text = "access to " + documentText(doc) + ":\n";
  for (const std::string& u : graph.members()) {
    members[u] = levelName(graph.memberAccess(u, doc));
    text += "  " + u + ": " + levelName(graph.memberAccess(u, doc)) + "\n";
  }
  for (const Key& s : graph.servers()) {
    servers[hex(s)] = levelName(graph.serverAccess(s, doc));
    text += "  server " + shortHex(s) + ": " + levelName(graph.serverAccess(s, doc)) + "\n";
  }
  emit(args, json{{"document", documentText(doc)}, {"members", members}, {"servers", servers}},
       text);
  return kExitOk;
}

// One link as people read it: "alice added bob (devices 1a2b3c4d)".
std::string describe(const team::LinkBody& body, const Hash& hash,
                     const std::map<Hash, std::string>& inviters) {
  const std::string& who = body.userId;
  auto devices = [](const std::vector<team::NewDevice>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds) out.push_back(shortHex(d.deviceId));
    return joined(out, "none");
  };
  auto invite = [&](const team::Invite& i, const char* kind) {
    const std::string uses = i.maxUses == 0 ? "unlimited uses"
                             : i.maxUses == 1 ? "1 use"
                                              : std::to_string(i.maxUses) + " uses";
    return who + " invited " + kind + " (invitation " + shortHex(hash) + ", " + uses + ", " +
           (i.expiresAt == 0 ? "never expires" : "expires " + isoTime(i.expiresAt)) + ")";
  };
  return std::visit(
      Overloaded{
          [&](const team::Root& r) {
            return who + " founded the team \"" + r.teamName + "\" (device " +
                   shortHex(r.founder.deviceId) +
                   (r.recoveryKey ? ", recovery key " + shortHex(*r.recoveryKey) : "") + ")";
          },
          [&](const team::AddMember& a) {
            return who + " added " + a.userId + " (devices " + devices(a.devices) +
                   (a.roles ? ", roles " + joined(*a.roles, "") : "") + ")";
          },
          [&](const team::InviteMember& i) { return invite(i, "a new member"); },
          [&](const team::InviteDevice& i) { return invite(i, "a new device of theirs"); },
          [&](const team::RevokeInvitation& r) {
            return who + " revoked invitation " + shortHex(r.invitation);
          },
          [&](const team::AdmitMember& a) {
            return who + " admitted " + a.userId + " (device " + shortHex(a.device.deviceId) +
                   ") through invitation " + shortHex(a.invitation);
          },
          [&](const team::AdmitDevice& a) {
            auto it = inviters.find(a.invitation);
            const std::string owner = it == inviters.end() ? "its inviter" : it->second;
            return who + " admitted a new device of " + owner + " (device " +
                   shortHex(a.device.deviceId) + ") through invitation " + shortHex(a.invitation);
          },
          [&](const team::AddDevice& a) {
            return who + " added device " + shortHex(a.device.deviceId) + " to " + a.userId;
          },
          [&](const team::RemoveDevice& r) { return who + " removed device " + shortHex(r.deviceId); },
          [&](const team::RemoveMember& r) {
            return r.userId == who ? who + " left the team" : who + " removed " + r.userId;
          },
          [&](const team::AddMemberRole& r) {
            return who + " gave " + r.userId + " the role " + r.role;
          },
          [&](const team::RemoveMemberRole& r) {
            return who + " took the role " + r.role + " from " + r.userId;
          },
          [&](const team::SetDocumentAccess& a) {
            return who + " set access to " + documentText(a.document) + " for " +
                   principalText(a.principal) + " to " + levelName(a.level);
          },
          [&](const team::AddServer& s) { return who + " added server " + shortHex(s.serverId); },
          [&](const team::RemoveServer& s) {
            return who + " removed server " + shortHex(s.serverId);
          },
          [&](const team::RotateKeys& r) {
            return who + " rotated the keys of " + r.generation.scope;
          },
          [&](const team::UnknownAction& u) {
            return who + " signed an action of a later version (#" +
                   std::to_string(u.discriminant) + ")";
          },
      },
      body.action);
}

int teamLog(const TeamArgs& args) {
  auto opened = openState(args);
  if (auto* f = std::get_if<Failure>(&opened)) return fail(*f);
  const TeamStateDir& dir = std::get<TeamStateDir>(opened);
  const TeamGraph& graph = dir.graph();
  std::map<Hash, std::string> inviters;  // invitation link → its author's userId
  json links = json::array();
  std::string text;
  std::size_t n = 0;
  graph.forEachLink([&](const team::StoredLink& link) {
    ++n;
    const std::string reason = link.valid ? "" : graph.whyInvalid(link.hash);
    json entry{{"hash", hex(link.hash)}, {"valid", link.valid}, {"reason", reason}};
    std::string sentence;
    auto decoded = team::decodeLink(link.body, link.signature, dir.teamId());
    if (decoded) {
      const team::LinkBody& body = decoded->parsed;
      const team::ActionType type = team::typeOf(body.action);
      if (type == team::ActionType::InviteDevice || type == team::ActionType::InviteMember) {
        inviters[link.hash] = body.userId;
      }
      sentence = describe(body, link.hash, inviters);
      entry["author"] = body.userId;
      entry["device"] = hex(body.deviceId);
      entry["deviceSeq"] = body.deviceSeq;
      entry["timestamp"] = body.timestamp;
      entry["action"] = decoded->unknown ? "unknown" : team::actionName(type);
    } else {  // stored links passed these checks once; say so rather than hide the link
      sentence = "(cannot decode: " + decoded.error().message() + ")";
    }
    entry["text"] = sentence;
    links.push_back(std::move(entry));
    text += std::to_string(n) + ". " + shortHex(link.hash) + "  " + sentence +
            (link.valid ? " — valid" : " — INVALID: " + reason) + "\n";
  });
  emit(args, json{{"team", hex(dir.teamId())}, {"links", links}}, text);
  return kExitOk;
}

int teamVerify(const TeamArgs& args) {
  std::error_code ec;
  if (!fs::is_directory(args.state, ec)) return fail(std::get<Failure>(openState(args)));
  // open() re-reads the links file, checks every record's checksum and every signature, and
  // evaluates the whole graph again: nothing is taken from a cache.
  auto dir = TeamStateDir::open(args.state);
  if (!dir) return fail(failed("team state " + args.state + " is damaged: " + dir.error().message()));
  const TeamGraph& graph = dir->graph();
  const Key me = dir->deviceKey().publicKey().bytes();
  if (graph.lastSeqOf(me) > dir->persistedSeq()) {
    return fail(failed("team state " + args.state + " is damaged: this device signed deviceSeq " +
                       std::to_string(graph.lastSeqOf(me)) + " but device.seq remembers " +
                       std::to_string(dir->persistedSeq()) +
                       " (restored from a backup?); do not sign with it, join again as a new "
                       "device"));
  }
  const std::size_t invalid = graph.invalid().size();
  const json out{{"team", hex(dir->teamId())},
                 {"name", graph.teamName()},
                 {"links", graph.size()},
                 {"valid", graph.size() - invalid},
                 {"invalid", invalid},
                 {"members", graph.members().size()},
                 {"devices", graph.devices().size()},
                 {"servers", graph.servers().size()},
                 {"passes", graph.passes()},
                 {"discardedTailBytes", dir->discardedTailBytes()}};
  std::string text = "team \"" + graph.teamName() + "\" " + hex(dir->teamId()) + ": " +
                     count(graph.size(), "link") + " (" +
                     std::to_string(graph.size() - invalid) + " valid, " +
                     std::to_string(invalid) + " invalid), " +
                     count(graph.members().size(), "member") + ", " +
                     count(graph.devices().size(), "device") + ", " +
                     count(graph.servers().size(), "server") + "; evaluated in " +
                     count(static_cast<std::size_t>(graph.passes()), "pass", "passes") +
                     "; every signature checks\n";
  if (dir->discardedTailBytes() > 0) {
    text += "note: a cut last record (" + std::to_string(dir->discardedTailBytes()) +
            " bytes, an interrupted append) was discarded\n";
  }
  emit(args, out, text);
  return kExitOk;
}

int teamExport(const TeamArgs& args) {
  auto opened = openState(args);
  if (auto* f = std::get_if<Failure>(&opened)) return fail(*f);
  const TeamStateDir& dir = std::get<TeamStateDir>(opened);
  if (auto written = TeamStateDir::exportLinks(dir.graph(), args.file); !written) {
    return fail(failed(written.error().message()));
  }
  emit(args, json{{"file", args.file}, {"links", dir.graph().size()}, {"team", hex(dir.teamId())}},
       "exported " + count(dir.graph().size(), "link") + " to " + args.file + "\n");
  return kExitOk;
}

int teamImport(const TeamArgs& args) {
  auto opened = openState(args);
  if (auto* f = std::get_if<Failure>(&opened)) return fail(*f);
  TeamStateDir& dir = std::get<TeamStateDir>(opened);
  auto links = TeamStateDir::importFile(args.file, dir.teamId());
  if (!links) return fail(failed("refused, nothing imported: " + links.error().message()));
  const team::BatchOutcome outcome = dir.graph().addBatch(*links);
  const std::vector<Bytes> stored = storedMessages(dir.graph(), outcome.stored);
  if (auto appended = dir.appendLinks(stored); !appended) {
    return fail(failed(appended.error().message()));
  }
  json dropped = json::array();
  for (std::size_t i = 0; i < outcome.dropped.size(); ++i) {
    dropped.push_back({{"hash", hex(outcome.dropped[i])}, {"reason", outcome.dropReasons[i]}});
  }
  const json out{{"file", args.file},       {"read", links->size()},
                 {"stored", outcome.stored.size()}, {"duplicates", outcome.duplicates},
                 {"pending", outcome.pending}, {"dropped", dropped}};
  std::string text = "imported " + args.file + ": " + count(outcome.stored.size(), "new link") +
                     " stored, " + std::to_string(outcome.duplicates) + " already here, " +
                     std::to_string(outcome.pending) + " waiting for links the file lacks, " +
                     std::to_string(outcome.dropped.size()) + " dropped\n";
  for (std::size_t i = 0; i < outcome.dropped.size(); ++i) {
    text += "  dropped " + shortHex(outcome.dropped[i]) + ": " + outcome.dropReasons[i] + "\n";
  }
  emit(args, out, text);
  if (!outcome.dropped.empty()) {
    return fail(failed(std::to_string(outcome.dropped.size()) + " links of " + args.file +
                       " were dropped (first: " + outcome.dropReasons.front() + ")"));
  }
  return kExitOk;
}

// A server's host folder: its device key (made on first use) and one team state directory per
// team it hosts, named by the team ID. The server is a server of a team once a member adds its
// key (`team server add`).
int teamHost(const TeamArgs& args) {
  const fs::path host(args.state);
  const std::string keyFile = (host / "device.key").string();
  std::error_code ec;
  if (!fs::exists(host, ec)) {
    if (auto bad = checkNewState(args.state)) return fail(*bad);
    if (!fs::create_directory(host, ec) || ec) {
      return fail(failed("--state " + args.state + ": " + ec.message()));
    }
    fs::permissions(host, fs::perms::owner_all, ec);
    if (auto saved = DeviceKey::generate().save(keyFile); !saved) {
      return fail(failed(saved.error().message()));
    }
  } else if (!fs::exists(keyFile, ec)) {
    return fail(failed("--state " + args.state + ": exists and is not a host folder (no "
                       "device.key)"));
  }
  auto imported = TeamStateDir::importFile(args.from);
  if (!imported) return fail(failed("--from " + imported.error().message()));
  TeamGraph graph(imported->teamId);
  const team::BatchOutcome outcome = graph.addBatch(imported->links);
  if (!outcome.dropped.empty() || !graph.hasRoot()) {
    return fail(failed("--from " + args.from + ": not a whole team (" +
                       (graph.hasRoot() ? outcome.dropReasons.front() : graph.rootProblem()) +
                       ")"));
  }
  const std::string teamDir = (host / hex(imported->teamId)).string();
  if (fs::exists(teamDir, ec)) {
    return fail(failed(args.state + " already hosts team " + shortHex(imported->teamId) +
                       " (import newer links with `team import --state " + teamDir + "`)"));
  }
  auto key = DeviceKey::load(keyFile);
  if (!key) return fail(failed(key.error().message()));
  auto dir = TeamStateDir::create(teamDir, imported->teamId, std::move(*key), 0);
  if (!dir) return fail(failed(dir.error().message()));
  if (auto appended = dir->appendLinks(storedMessages(graph, outcome.stored)); !appended) {
    return fail(failed(appended.error().message()));
  }
  const std::string serverKey = dir->deviceKey().publicKeyHex();
  const bool added =
      graph.standing(Key(dir->deviceKey().publicKey().bytes())) == TeamGraph::Standing::Server;
  const json out{{"team", hex(imported->teamId)}, {"name", graph.teamName()},
                 {"server", serverKey}, {"state", teamDir}, {"links", graph.size()}};
  emit(args, out,
       "hosting team '" + graph.teamName() + "' in " + teamDir + " (" +
           count(graph.size(), "link") + ")\nserver key: " + serverKey + "\n" +
           (added ? std::string()
                  : "a member adds it with: portcullis team server add " + serverKey +
                        " [--connect ADDRESS]\n") +
           "serve every hosted team with [auth] provider = \"team\" and [auth.team] state = \"" +
           args.state + "\"\n");
  return kExitOk;
}

}  // namespace

int runTeam(const TeamArgs& args) {
  setupLogging(args.logLevel, "error");
  const std::string& v = args.verb;
  if (v == "init") return teamInit(args);
  if (v == "join") {
    if (args.connect.empty() && args.from.empty()) {
      return failWith(kExitUsage, "join: --connect ADDRESS (over the network) or --from EXPORT "
                                  "(offline) is required");
    }
    return args.connect.empty() ? teamJoin(args) : teamJoinOverNetwork(args);
  }
  if (v == "host") return teamHost(args);
  if (v == "members") return teamMembers(args);
  if (v == "devices") return teamDevices(args);
  if (v == "log") return teamLog(args);
  if (v == "verify") return teamVerify(args);
  if (v == "export") return teamExport(args);
  if (v == "import") return teamImport(args);
  if (v == "access show") return teamAccessShow(args);
  // The verbs that sign a link; with --connect the link goes to that peer at once.
  const int signedLink = v == "invite" ? teamInvite(args)
                         : v == "admit" ? teamAdmit(args)
                                        : teamSign(args);
  if (signedLink != kExitOk || args.connect.empty()) return signedLink;
  return teamPush(args);
}

}  // namespace portcullis::tool
