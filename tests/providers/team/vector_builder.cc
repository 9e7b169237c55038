// tests/providers/team/vector_builder.cc — symbolic golden vectors as real links; the rules
// mirror model.py's build() and expand() (see vector_builder.h).
#include "vector_builder.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <stdexcept>
#include <utility>

#include "wire/link_codec.h"

namespace portcullis::team::vectors {
namespace {

using nlohmann::json;

// An order-8 point of Curve25519 (libsodium's small-order blacklist): canonical, top bit clear,
// and crypto_scalarmult with it returns −1 for every scalar (the self-test checks this).
constexpr std::array<std::uint8_t, 32> kOrder8Point = {
    0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
    0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57};

constexpr std::string_view kX25519Prefix = "x25519:";

std::array<std::uint8_t, 32> h256(std::string_view text) {
  std::array<std::uint8_t, 32> out{};
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(text.data()),
                     text.size(), nullptr, 0);
  return out;
}

std::string str(std::string_view a, std::string_view b) {
  std::string s(a);
  s += b;
  return s;
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::invalid_argument(where + ": " + what);
}

// The act's keys that build()/expand() read for a known action; any other key stands for a
// field of a later version (model check1: "unknown").
const std::map<std::string, std::set<std::string>>& knownKeys() {
  static const std::map<std::string, std::set<std::string>> keys = {
      {"root", {"type", "team", "device", "enc", "recovery", "version", "teamKeys"}},
      {"addMember", {"type", "user", "devices", "roles", "lockboxes"}},
      {"inviteMember", {"type", "key", "maxUses", "expiresAt"}},
      {"inviteDevice", {"type", "key", "maxUses", "expiresAt"}},
      {"revokeInvitation", {"type", "key"}},
      {"admitMember", {"type", "key", "user", "device", "lockboxes"}},
      {"admitDevice", {"type", "key", "device", "lockboxes"}},
      {"addDevice", {"type", "user", "device", "lockboxes"}},
      {"removeDevice", {"type", "device"}},
      {"removeMember", {"type", "user"}},
      {"addMemberRole", {"type", "user", "role", "lockboxes"}},
      {"removeMemberRole", {"type", "user", "role", "lockboxes"}},
      {"setDocumentAccess", {"type", "doc", "principal", "level"}},
      {"addServer", {"type", "server", "enc"}},
      {"removeServer", {"type", "server"}},
      {"rotateKeys", {"type", "scope", "previous", "lockboxes"}},
  };
  return keys;
}

// Builds one vector; the state build() keeps between links.
class Builder {
 public:
  explicit Builder(const json& vector) : vector_(vector) {
    out_.name = vector.at("name").get<std::string>();
  }

  BuiltVector run() {
    const json& links = vector_.at("links");
    for (std::size_t n = 0; n < links.size(); ++n) addLink(links[n], n);
    return std::move(out_);
  }

 private:
  std::string where() const { return out_.name + "/" + id_; }

  const json& need(const json& obj, const char* field) const {
    if (!obj.is_object() || !obj.contains(field)) fail(where(), std::string("no ") + field);
    return obj.at(field);
  }
  std::string text(const json& obj, const char* field) const {
    const json& v = need(obj, field);
    if (!v.is_string()) fail(where(), std::string(field) + " is not a string");
    return v.get<std::string>();
  }

  const TestKeyPair& pair(const std::string& name) {
    auto it = pairs_.find(name);
    if (it == pairs_.end()) {
      it = pairs_.emplace(name, testKeyPair(name)).first;
      out_.keyOf[name] = it->second.publicKey;
      out_.nameOf[it->second.publicKey] = name;
    }
    return it->second;
  }
  Key key(const std::string& name) { return pair(name).publicKey; }

  // model.py expand(): enc(d) — the link's "enc" (one stand-in, or one per device) or x25519:d.
  EncKey enc(const json& s, const std::string& device) const {
    std::string standIn = str(kX25519Prefix, device);
    if (s.contains("enc")) {
      const json& e = s.at("enc");
      if (e.is_object()) {
        if (e.contains(device)) standIn = e.at(device).get<std::string>();
      } else {
        standIn = e.get<std::string>();
      }
    }
    return encOf(standIn);
  }
  EncKey encOf(const std::string& standIn) const {
    try {
      return testEncKey(standIn);
    } catch (const std::invalid_argument& e) {
      fail(where(), e.what());
    }
  }

  Hash hashOfId(const std::string& id) const {
    const auto it = out_.hashOf.find(id);
    if (it == out_.hashOf.end()) fail(where(), "no earlier link " + id);
    return it->second;
  }

  Lockboxes lockboxes(const json& act) {
    if (!act.contains("lockboxes")) return std::nullopt;
    std::vector<Lockbox> list;
    for (const json& entry : act.at("lockboxes")) {
      const std::string recipient = text(entry, "recipient");
      Lockbox box;
      box.recipient = key(recipient);
      box.generation = testHash("generation");
      const std::string sealed = entry.contains("sealed") ? entry.at("sealed").dump() : "";
      const Hash seed = testHash("sealed/" + recipient + "/" + sealed);
      randombytes_buf_deterministic(box.sealed.data(), box.sealed.size(), seed.data());
      list.push_back(box);
    }
    std::sort(list.begin(), list.end(), [](const Lockbox& a, const Lockbox& b) {
      return std::tie(a.recipient, a.generation) < std::tie(b.recipient, b.generation);
    });
    return list;
  }

  Signature signWith(const std::string& signer, ByteView message) {
    return signBytes(message, pair(signer).secretKey);
  }

  // A device the link introduces, with its consent (§5.1) signed by consentBy or the device.
  NewDevice newDevice(const json& s, const std::string& device, const Hash& invitation,
                      const std::string& userId) {
    NewDevice d;
    d.deviceId = key(device);
    d.encKey = enc(s, device);
    const std::string signer = s.contains("consentBy") ? text(s, "consentBy") : device;
    d.consent = signWith(signer, admissionTuple(team_, invitation, d.deviceId, d.encKey, userId));
    return d;
  }

  KeyGeneration generation(const json& act, const std::string& scope) {
    KeyGeneration g;
    g.scope = scope;
    g.check = testHash("check/" + out_.name + "/" + id_);
    if (act.contains("previous")) g.previous = hashOfId(text(act, "previous"));
    g.lockboxes = lockboxes(act);
    return g;
  }

  // model.py expand() for a known action; invitation keys named by the latest invite link.
  Action expand(const json& s, const json& act, const std::string& type) {
    if (type == "root") {
      Root r;
      r.teamName = text(act, "team");
      const std::string device = text(act, "device");
      r.founder.deviceId = key(device);
      r.founder.encKey = act.contains("enc") ? encOf(text(act, "enc")) : enc(s, device);
      if (act.contains("recovery")) r.recoveryKey = key(text(act, "recovery"));
      r.version = act.contains("version") ? act.at("version").get<std::uint16_t>() : 3;
      if (act.contains("teamKeys")) {
        const json& tk = act.at("teamKeys");
        KeyGeneration g;
        if (tk.contains("scope")) {  // a well-formed one: scope and check
          g.scope = text(tk, "scope");
          g.check = testHash("check/" + out_.name + "/" + id_);
        }                            // {}: scope and check null (check 1 drops it, R41)
        r.teamKeys = g;
      }
      return r;
    }
    if (type == "addMember") {
      AddMember a;
      a.userId = text(act, "user");
      for (const json& d : need(act, "devices")) {
        a.devices.push_back(newDevice(s, d.get<std::string>(), Hash{}, a.userId));
      }
      std::stable_sort(a.devices.begin(), a.devices.end(),
                       [](const NewDevice& x, const NewDevice& y) { return x.deviceId < y.deviceId; });
      if (act.contains("roles")) {
        std::vector<std::string> roles = act.at("roles").get<std::vector<std::string>>();
        std::sort(roles.begin(), roles.end());
        a.roles = std::move(roles);
      }
      a.lockboxes = lockboxes(act);
      return a;
    }
    if (type == "inviteMember" || type == "inviteDevice") {
      Invite inv;
      inv.publicKey = key(text(act, "key"));
      inv.maxUses = act.contains("maxUses") ? act.at("maxUses").get<std::uint32_t>() : 1;
      inv.expiresAt = act.contains("expiresAt") ? act.at("expiresAt").get<std::uint64_t>() : 0;
      if (type == "inviteMember") return InviteMember{inv};
      return InviteDevice{inv};
    }
    if (type == "revokeInvitation" || type == "admitMember" || type == "admitDevice") {
      const std::string pk = text(act, "key");
      std::string invId;
      if (s.contains("invite")) {
        invId = text(s, "invite");
      } else {
        const auto it = invites_.find(pk);
        if (it == invites_.end()) fail(where(), "no invitation with key " + pk);
        invId = it->second;
      }
      const Hash invitation = hashOfId(invId);
      if (type == "revokeInvitation") return RevokeInvitation{invitation};
      const std::string device = text(act, "device");
      const std::string userId = type == "admitMember" ? text(act, "user") : std::string();
      NewDevice d = newDevice(s, device, invitation, userId);
      const std::string sigBy = s.contains("inviteSigBy") ? text(s, "inviteSigBy") : pk;
      const Signature inviteSig =
          signWith(sigBy, admissionTuple(team_, invitation, d.deviceId, d.encKey, userId));
      if (type == "admitMember") {
        AdmitMember a;
        a.invitation = invitation;
        a.userId = userId;
        a.device = d;
        a.inviteSig = inviteSig;
        a.lockboxes = lockboxes(act);
        return a;
      }
      AdmitDevice a;
      a.invitation = invitation;
      a.device = d;
      a.inviteSig = inviteSig;
      a.lockboxes = lockboxes(act);
      return a;
    }
    if (type == "addDevice") {
      AddDevice a;
      a.userId = text(act, "user");
      a.device = newDevice(s, text(act, "device"), Hash{}, a.userId);
      a.lockboxes = lockboxes(act);
      return a;
    }
    if (type == "removeDevice") return RemoveDevice{key(text(act, "device"))};
    if (type == "removeMember") return RemoveMember{text(act, "user")};
    if (type == "addMemberRole" || type == "removeMemberRole") {
      MemberRole m;
      m.userId = text(act, "user");
      m.role = text(act, "role");
      m.lockboxes = lockboxes(act);
      if (type == "addMemberRole") return AddMemberRole{m};
      return RemoveMemberRole{m};
    }
    if (type == "setDocumentAccess") {
      SetDocumentAccess a;
      a.document = testDocument(text(act, "doc"));
      const json& p = need(act, "principal");
      if (p.is_string() && p.get<std::string>() == "everyone") {
        a.principal.kind = Principal::Kind::Everyone;
      } else if (p.is_object() && p.size() == 1 && p.contains("role")) {
        a.principal.kind = Principal::Kind::Role;
        a.principal.name = text(p, "role");
      } else if (p.is_object() && p.size() == 1 && p.contains("member")) {
        a.principal.kind = Principal::Kind::Member;
        a.principal.name = text(p, "member");
      } else if (p.is_object() && p.size() == 1 && p.contains("server")) {
        a.principal.kind = Principal::Kind::Server;
        a.principal.server = key(text(p, "server"));
      } else {
        fail(where(), "principal " + p.dump() + " has no encoding");
      }
      const std::string level = text(act, "level");
      if (level == "none") {
        a.level = Level::None;
      } else if (level == "read") {
        a.level = Level::Read;
      } else if (level == "write") {
        a.level = Level::Write;
      } else {
        fail(where(), "level " + level + " has no encoding");
      }
      return a;
    }
    if (type == "addServer") {
      AddServer a;
      const std::string server = text(act, "server");
      a.serverId = key(server);
      a.encKey = act.contains("enc") ? encOf(text(act, "enc")) : enc(s, server);
      return a;
    }
    if (type == "removeServer") return RemoveServer{key(text(act, "server"))};
    if (type == "rotateKeys") return RotateKeys{generation(act, text(act, "scope"))};
    fail(where(), "unhandled action " + type);
  }

  void addLink(const json& s, std::size_t n) {
    id_ = text(s, "id");
    if (out_.hashOf.count(id_) != 0) fail(where(), "duplicate id");
    const std::string by = text(s, "by");
    const auto slash = by.find('/');
    if (slash == std::string::npos || by.find('/', slash + 1) != std::string::npos) {
      fail(where(), "by is not user/device: " + by);
    }
    const std::string user = by.substr(0, slash);
    const std::string dev = by.substr(slash + 1);
    const json& act = need(s, "act");
    const std::string type = text(act, "type");
    const bool raw = s.value("raw", false);

    // Unknown to this version: an action outside the 16, or a known one with extra keys.
    const auto known = knownKeys().find(type);
    const bool unknownAction = known == knownKeys().end();
    std::vector<std::string> extra;
    if (!unknownAction) {
      for (const auto& [k, v] : act.items()) {
        if (known->second.count(k) == 0) extra.push_back(k);
      }
    }
    if (raw && !unknownAction) {
      // expand() is the identity on such an act only if it has nothing to derive.
      static const std::set<std::string> derived = {"root",        "addMember",   "addDevice",
                                                    "admitMember", "admitDevice", "revokeInvitation",
                                                    "addServer"};
      if (derived.count(type) != 0 || (type == "rotateKeys" && act.contains("previous"))) {
        fail(where(), "a raw " + type + " cannot be encoded as written");
      }
    }

    // build(): prev ids, the device's own seq − 1 link unless noauto, seq, ts.
    std::vector<std::string> prevIds;
    if (s.contains("prev")) prevIds = s.at("prev").get<std::vector<std::string>>();
    auto& mine = mine_[dev];
    std::uint64_t nextSeq = 1;
    for (const auto& [q, i] : mine) nextSeq = std::max(nextSeq, q + 1);
    const std::uint64_t seq = s.contains("seq") ? s.at("seq").get<std::uint64_t>() : nextSeq;
    if (seq > 1 && !s.value("noauto", false)) {
      std::vector<std::string> own;
      for (const auto& [q, i] : mine) {
        if (q == seq - 1) own.push_back(i);
      }
      const bool named = std::any_of(own.begin(), own.end(), [&](const std::string& i) {
        return std::find(prevIds.begin(), prevIds.end(), i) != prevIds.end();
      });
      if (!named) {
        if (own.size() != 1) fail(where(), "say which own link is prev");
        prevIds.push_back(own.front());
      }
    }
    LinkBody body;
    std::set<Hash> prev;
    for (const std::string& p : prevIds) prev.insert(hashOfId(p));
    body.prev.assign(prev.begin(), prev.end());  // sorted bytewise, no duplicates
    body.userId = user;
    body.deviceId = key(dev);
    body.deviceSeq = seq;
    body.timestamp = s.contains("ts") ? s.at("ts").get<std::uint64_t>() : kBaseTimestamp + 1000 * n;

    BuiltLink link;
    link.id = id_;
    if (unknownAction) {
      body.action = UnknownAction{kFutureActionDiscriminant};
      link.body = encodeFutureActionBody(body, type, act.dump());
      link.laterVersion = true;
    } else {
      body.action = expand(s, act, type);
      if (extra.empty()) {
        link.body = encodeLinkBody(body);
        link.value = body;
      } else {
        const json& v = act.at(extra.front());
        const std::uint64_t value =
            v.is_number_unsigned() && v.get<std::uint64_t>() != 0 ? v.get<std::uint64_t>() : 1;
        link.body = encodeBodyWithFutureField(body, value);
        link.laterVersion = true;
      }
    }

    // Check 2's input: the author device's signature, a named signer's, or garbage.
    if (s.contains("sig") && s.at("sig") == "bad") {
      const Hash seed = testHash("bad-signature/" + out_.name + "/" + id_);
      randombytes_buf_deterministic(link.signature.data(), link.signature.size(), seed.data());
    } else {
      const std::string signer = s.contains("sig") ? text(s, "sig") : dev;
      link.signature = signLinkBody(link.body, pair(signer).secretKey);
    }
    link.hash = linkHash(link.body, link.signature);
    link.message = encodeLink(link.body, link.signature);

    out_.hashOf[id_] = link.hash;
    out_.idOf[link.hash] = id_;
    if (!unknownAction && (type == "inviteMember" || type == "inviteDevice")) {
      invites_[text(act, "key")] = id_;  // the latest invitation with this key
    }
    if (type == "root" && !haveTeam_) {
      team_ = link.hash;
      out_.teamId = link.hash;
      haveTeam_ = true;
    }
    mine.emplace_back(seq, id_);
    out_.links.push_back(std::move(link));
  }

  const json& vector_;
  BuiltVector out_;
  std::string id_;
  Hash team_{};  // zero until the first root (model: None)
  bool haveTeam_ = false;
  std::map<std::string, TestKeyPair> pairs_;
  std::map<std::string, std::vector<std::pair<std::uint64_t, std::string>>> mine_;
  std::map<std::string, std::string> invites_;
};

}  // namespace

TestKeyPair testKeyPair(std::string_view name) {
  const auto seed = h256(str("portcullis-test/key/", name));
  TestKeyPair kp;
  crypto_sign_seed_keypair(kp.publicKey.data(), kp.secretKey.data(), seed.data());
  return kp;
}

Key testKey(std::string_view name) { return testKeyPair(name).publicKey; }

bool isLowOrderStandIn(std::string_view standIn) {
  return standIn == "x25519:0" || standIn == "x25519:low-order";
}

EncKey testEncKey(std::string_view standIn) {
  if (standIn == "x25519:0") return EncKey{};  // the point 0: small order
  if (standIn == "x25519:low-order") return kOrder8Point;
  if (standIn.size() <= kX25519Prefix.size() || standIn.substr(0, kX25519Prefix.size()) != kX25519Prefix) {
    throw std::invalid_argument("not an x25519 stand-in: " + std::string(standIn));
  }
  const auto seed = h256(str("portcullis-test/enc/", standIn.substr(kX25519Prefix.size())));
  EncKey pk{};
  crypto_scalarmult_base(pk.data(), seed.data());
  return pk;
}

std::optional<DocId> testDocument(std::string_view name) {
  if (name == "*") return std::nullopt;
  const auto h = h256(str("portcullis-test/doc/", name));
  DocId d{};
  std::memcpy(d.data(), h.data(), d.size());
  return d;
}

Hash testHash(std::string_view tag) { return h256(str("portcullis-test/", tag)); }

std::vector<Bytes> BuiltVector::messages() const {
  std::vector<Bytes> out;
  out.reserve(links.size());
  for (const BuiltLink& l : links) out.push_back(l.message);
  return out;
}

std::string BuiltVector::idFor(const Hash& h) const {
  const auto it = idOf.find(h);
  return it != idOf.end() ? it->second : "?" + toHex(h);
}

std::string BuiltVector::nameFor(const Key& k) const {
  const auto it = nameOf.find(k);
  return it != nameOf.end() ? it->second : "?" + toHex(k);
}

const Hash& BuiltVector::hash(const std::string& id) const {
  const auto it = hashOf.find(id);
  if (it == hashOf.end()) throw std::out_of_range(name + ": no link " + id);
  return it->second;
}

BuiltVector buildVector(const nlohmann::json& vector) { return Builder(vector).run(); }

}  // namespace portcullis::team::vectors
