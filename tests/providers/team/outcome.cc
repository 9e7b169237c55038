// tests/providers/team/outcome.cc — see outcome.h.
#include "outcome.h"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>

namespace portcullis::team::vectors {

using nlohmann::json;

namespace {

std::string levelName(Level l) {
  switch (l) {
    case Level::None: return "none";
    case Level::Read: return "read";
    case Level::Write: return "write";
  }
  return "level" + std::to_string(static_cast<int>(l));
}

DocId docOrFail(const std::string& name) {
  const auto d = testDocument(name);
  if (!d) throw std::invalid_argument("document " + name + " must be a single document here");
  return *d;
}

}  // namespace

// The id of a hash the graph reports. §2.2 keys every set, the dropped one included, by the
// link hash; a hash that is instead H256 of a link's `Link` message is named so, to say which
// link it is and that it is keyed otherwise than §2.2 says.
std::string idOf(const BuiltVector& bv, const Hash& h) {
  if (bv.idOf.count(h) != 0) return bv.idOf.at(h);
  for (const BuiltLink& l : bv.links) {
    Hash m{};
    crypto_generichash(m.data(), m.size(), l.message.data(), l.message.size(), nullptr, 0);
    if (m == h) return l.id + " (keyed by H256(message), not by its link hash)";
  }
  return bv.idFor(h);
}

json sortedStrings(std::vector<std::string> xs) {
  std::sort(xs.begin(), xs.end());
  return xs;
}
json ids(const BuiltVector& bv, const std::vector<Hash>& hs) {
  std::vector<std::string> out;
  for (const Hash& h : hs) out.push_back(idOf(bv, h));
  return sortedStrings(std::move(out));
}
json names(const BuiltVector& bv, const std::vector<Key>& ks) {
  std::vector<std::string> out;
  for (const Key& k : ks) out.push_back(bv.nameFor(k));
  return sortedStrings(std::move(out));
}

// model.py check(): the expected outcome, lists sorted, empty lists filled in.
json expectedOutcome(const json& vector) {
  const json& e = vector.at("expect");
  json exp;
  for (const char* k : {"members", "admins", "removed", "devices", "servers", "invalid", "dropped"}) {
    exp[k] = sortedStrings(e.value(k, std::vector<std::string>{}));
  }
  for (const char* k : {"access", "send", "changes", "unbacked"}) {
    if (e.contains(k)) exp[k] = e.at(k);
  }
  if (exp.contains("unbacked")) exp["unbacked"] = sortedStrings(exp["unbacked"].get<std::vector<std::string>>());
  return exp;
}

// model.py outcome(): what the graph says, in the vector's names.
json observedOutcome(const TeamGraph& g, const BuiltVector& bv, const json& exp) {
  json got;
  got["members"] = sortedStrings(g.members());
  got["admins"] = sortedStrings(g.admins());
  got["removed"] = sortedStrings(g.removed());
  got["devices"] = names(bv, g.devices());
  got["servers"] = names(bv, g.servers());
  got["invalid"] = ids(bv, g.invalid());
  got["dropped"] = ids(bv, g.dropped());
  if (exp.contains("access")) {
    got["access"] = json::array();
    for (const json& a : exp.at("access")) {
      const std::string who = a.at(0).get<std::string>();
      const std::string doc = a.at(1).get<std::string>();
      const Level l = who.rfind("server:", 0) == 0
                          ? g.serverAccess(testKey(who.substr(7)), testDocument(doc))
                          : g.memberAccess(who, testDocument(doc));
      got["access"].push_back(json::array({who, doc, levelName(l)}));
    }
  }
  if (exp.contains("send")) {
    got["send"] = json::array();
    for (const json& s : exp.at("send")) {
      const std::string peer = s.at(0).get<std::string>();
      const std::string doc = s.at(1).get<std::string>();
      const Key key = testKey(peer.rfind("server:", 0) == 0 ? peer.substr(7) : peer);
      got["send"].push_back(json::array({peer, doc, g.okToSend(key, docOrFail(doc))}));
    }
  }
  if (exp.contains("unbacked")) got["unbacked"] = ids(bv, g.unbacked());
  if (exp.contains("changes")) {
    got["changes"] = json::array();
    for (const json& c : exp.at("changes")) {  // [actor, doc, heads, (header,) valid]
      std::vector<Hash> heads;
      for (const json& h : c.at(2)) heads.push_back(bv.hash(h.get<std::string>()));
      const json header = c.size() == 5 ? c.at(3) : json::object();
      const std::string scope = header.value("scope", "team");
      std::optional<Hash> gen;
      if (header.contains("generation")) gen = bv.hash(header.at("generation").get<std::string>());
      const auto valid = g.changeValid(heads, testKey(c.at(0).get<std::string>()),
                                       docOrFail(c.at(1).get<std::string>()), scope, gen);
      json row = c;
      row.back() = valid ? json(*valid) : json("waits (a head is not stored)");
      got["changes"].push_back(row);
    }
  }
  return got;
}

// "field: expected X, got Y" for every field that differs; empty if none does.
std::string differences(const json& exp, const json& got) {
  std::string out;
  for (const auto& [k, v] : exp.items()) {
    if (!got.contains(k) || got.at(k) != v) {
      out += "    " + k + ": expected " + v.dump() + ", got " +
             (got.contains(k) ? got.at(k).dump() : "nothing") + "\n";
    }
  }
  return out;
}

}  // namespace portcullis::team::vectors
