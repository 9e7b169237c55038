#include "wire/session_codec.h"

#include <algorithm>
#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <kj/array.h>
#include <kj/exception.h>
#include <sodium.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "session.capnp.h"
#include "wire/capnp_fields.h"
#include "wire/link_codec.h"

namespace portcullis::team {
namespace {

using wirecheck::alignedWords;
using wirecheck::kMaxDeviceSeq;
using wirecheck::kMaxUserIdBytes;
using wirecheck::readerOptions;
using wirecheck::toBytes;
using wirecheck::view;

// The schema's types live in the global namespace (session.capnp names none, like link.capnp);
// `wire` keeps them apart from session_messages.h's value types of the same names.
namespace wire {
using Claim = ::Claim;
using Offer = ::Offer;
using Status = ::Status;
using Proof = ::Proof;
using Need = ::Need;
using Heads = ::Heads;
using Vector = ::Vector;
using Entry = ::Entry;
using Want = ::Want;
using Links = ::Links;
using Message = ::Message;
using Link = ::Link;
using SealedChange = ::SealedChange;
using ChangeBody = ::ChangeBody;
using ChangePayload = ::ChangePayload;
}  // namespace wire

constexpr std::string_view kChangeSigTag = "portcullis/team/v3/change-sig";
constexpr std::string_view kChangeHashTag = "portcullis/team/v3/change";
constexpr std::uint16_t kLastKind = static_cast<std::uint16_t>(::Kind::INVITEE);
constexpr std::uint16_t kLastReason = static_cast<std::uint16_t>(::Reason::TOO_LARGE);
constexpr std::uint16_t kLastStatus = static_cast<std::uint16_t>(wire::Status::DENIED);
constexpr std::uint16_t kLastMessage = static_cast<std::uint16_t>(wire::Message::LINKS);

Error malformed(std::string_view unit, std::string_view what) {
  return Error(Errc::Malformed, "team " + std::string(unit) + ": " + std::string(what));
}


template <std::size_t N>
capnp::Data::Reader asData(const std::array<std::uint8_t, N>& a) {
  return capnp::Data::Reader(a.data(), N);
}
capnp::Data::Reader asData(ByteView b) { return capnp::Data::Reader(b.data(), b.size()); }
capnp::Text::Reader asText(const std::string& s) {
  return capnp::Text::Reader(s.data(), s.size());
}

// The field checks of wire/capnp_fields.h, plus the ones only these messages have.
class Checker : public wirecheck::FieldChecker {
 public:
  // Null reads as empty; non-null must have bytes.
  bool bytes(bool has, capnp::Data::Reader d, Bytes& out, std::string_view field) {
    out.clear();
    if (!has) return true;
    if (d.size() == 0) return fail(field, "empty");
    out.assign(d.begin(), d.end());
    return true;
  }

  // Null Text is absent; present Text is lo..hi bytes of clean UTF-8 (§2.3's rule).
  bool optionalText(bool has, capnp::Text::Reader t, std::size_t lo, std::size_t hi,
                    std::optional<std::string>& out, std::string_view field) {
    if (!has) {
      out.reset();
      return true;
    }
    const std::string_view s = view(t);
    if (!textAcceptable(s, lo, hi)) return fail(field, "bad text or length");
    out.emplace(s);
    return true;
  }
};

// Reads `bytes` as one segment of at most `maxBytes` and hands its root to `read`, which returns
// false with checker.failure() set. Every kj::Exception becomes Malformed here.
template <typename T, typename Read>
Result<void> readSegment(ByteView bytes, std::size_t maxBytes, bool canonical,
                         std::string_view unit, Checker& checker, Read&& read) {
  if (bytes.empty()) return malformed(unit, "empty");
  if (bytes.size() > maxBytes) return malformed(unit, "over the size limit");
  if (bytes.size() % sizeof(capnp::word) != 0) return malformed(unit, "not whole words");
  try {
    const auto words = alignedWords(bytes);
    const kj::ArrayPtr<const capnp::word> segment = words.asPtr();
    capnp::SegmentArrayMessageReader message(kj::arrayPtr(&segment, 1),
                                             readerOptions(words.size()));
    if (canonical) {
      if (!message.isCanonical()) return malformed(unit, "not canonical");
    } else {
      // Not canonical, but every word must be reached from the root: no trailing garbage or
      // holes (targetSize may count a shared word twice, never a word it does not reach).
      const auto reached = message.getRoot<capnp::AnyPointer>().targetSize().wordCount + 1;
      if (reached < words.size()) return malformed(unit, "words beyond the content");
    }
    if (!read(message.getRoot<T>())) return malformed(unit, checker.failure());
  } catch (const kj::Exception& e) {
    return malformed(unit, e.getDescription().cStr());
  }
  return {};
}

// --- Claim ---------------------------------------------------------------------------------------

bool readClaim(wire::Claim::Reader r, ClaimRole role, Claim& out, Checker& c) {
  if (!c.optionalFixed(r.hasTeamId(), r.getTeamId(), out.teamId, "teamId")) return false;
  const auto kind = static_cast<std::uint16_t>(r.getKind());
  out.kind = kind > kLastKind ? ClaimKind::Unknown : static_cast<ClaimKind>(kind);
  if (!c.fixed(r.hasDeviceId(), r.getDeviceId(), out.deviceId, "deviceId") ||
      !c.fixed(r.hasSignature(), r.getSignature(), out.signature, "signature")) {
    return false;
  }
  if (r.hasInvitations()) {
    const auto list = r.getInvitations();
    if (!c.list(list, kMaxOffers, capnp::ElementSize::INLINE_COMPOSITE, "invitations")) {
      return false;
    }
    std::vector<Offer> offers(list.size());
    for (unsigned i = 0; i < list.size(); ++i) {
      const auto e = list[i];
      if (!c.fixed(e.hasPkTag(), e.getPkTag(), offers[i].pkTag, "invitations.pkTag") ||
          !c.fixed(e.hasInvitation(), e.getInvitation(), offers[i].invitation,
                   "invitations.invitation")) {
        return false;
      }
    }
    out.invitations = std::move(offers);
  }
  if (!c.optionalFixed(r.hasInvitation(), r.getInvitation(), out.invitation, "invitation") ||
      !c.optionalFixed(r.hasEncKey(), r.getEncKey(), out.encKey, "encKey") ||
      !c.optionalText(r.hasUserId(), r.getUserId(), 1, kMaxUserIdBytes, out.userId, "userId") ||
      !c.optionalFixed(r.hasProof(), r.getProof(), out.proof, "proof") ||
      !c.optionalFixed(r.hasConsent(), r.getConsent(), out.consent, "consent") ||
      !c.optionalFixed(r.hasInviteSig(), r.getInviteSig(), out.inviteSig, "inviteSig")) {
    return false;
  }
  if (out.encKey && !encKeyAcceptable(*out.encKey)) {
    return c.fail("encKey", "not canonical or of small order");
  }

  const bool anyAdmission = out.invitation || out.encKey || out.userId || out.proof ||
                            out.consent || out.inviteSig;
  if (role == ClaimRole::Responder) {
    if (!out.teamId) return c.fail("teamId", "missing");
    if (anyAdmission) return c.fail("Claim_R", "carries an invitee's fields");
    return true;
  }
  if (out.teamId) return c.fail("Claim_I", "carries a teamId");
  if (out.invitations) return c.fail("Claim_I", "carries invitations");
  if (out.kind == ClaimKind::Invitee) {
    if (!out.invitation || !out.encKey || !out.proof || !out.consent || !out.inviteSig) {
      return c.fail("Claim_I", "an invitee's fields are missing");
    }
  } else if (out.kind != ClaimKind::Unknown && anyAdmission) {
    return c.fail("Claim_I", "a member or server carries an invitee's fields");
  }
  return true;
}

// --- Message -------------------------------------------------------------------------------------

// Each link as the canonical bytes of a standalone `Link` message, its envelope checked.
bool readLinks(bool has, capnp::List<wire::Link>::Reader l, std::size_t maxLinks,
               std::size_t maxBytes, std::vector<Bytes>& out, std::string_view field,
               Checker& c) {
  if (!has) return c.fail(field, "missing");
  if (!c.list(l, maxLinks, capnp::ElementSize::INLINE_COMPOSITE, field)) return false;
  out.clear();
  out.reserve(l.size());
  std::size_t total = 0;
  for (unsigned i = 0; i < l.size(); ++i) {
    Bytes link = toBytes(capnp::canonicalize(l[i]));
    total += link.size();
    if (total > maxBytes) return c.fail(field, "over the size limit");
    const auto parts = splitLink(link);
    if (!parts) return c.fail(field, parts.error().message());
    out.push_back(std::move(link));
  }
  return true;
}

bool readMessage(wire::Message::Reader r, std::size_t frameLimit, Message& out, Checker& c) {
  const auto which = static_cast<std::uint16_t>(r.which());
  if (which > kLastMessage) {
    out = UnknownMessage{which};
    return true;
  }
  switch (r.which()) {
    case wire::Message::STATUS: {
      if (!r.hasStatus()) return c.fail("status", "missing");
      const auto s = r.getStatus();
      Status v;
      const auto member = static_cast<std::uint16_t>(s.which());
      if (member > kLastStatus) {
        // A status of a later version: deciding nothing from it, fail closed.
        v.kind = Status::Kind::Denied;
        v.reason = Reason::Unknown;
      } else if (s.which() == wire::Status::OK) {
        v.kind = Status::Kind::Ok;
      } else if (s.which() == wire::Status::PROVE_ADMISSION) {
        v.kind = Status::Kind::ProveAdmission;
      } else {
        v.kind = Status::Kind::Denied;
        const auto reason = static_cast<std::uint16_t>(s.getDenied());
        v.reason = reason > kLastReason ? Reason::Unknown : static_cast<Reason>(reason);
      }
      out = v;
      return true;
    }
    case wire::Message::PROOF: {
      if (!r.hasProof()) return c.fail("proof", "missing");
      const auto p = r.getProof();
      Proof v;
      if (!readLinks(p.hasLinks(), p.getLinks(), kMaxProofLinks, kMaxProofBytes, v.links,
                     "proof.links", c)) {
        return false;
      }
      out = std::move(v);
      return true;
    }
    case wire::Message::NEED: {
      if (!r.hasNeed()) return c.fail("need", "missing");
      const auto n = r.getNeed();
      Need v;
      if (!c.hashes(n.hasHashes(), n.getHashes(), frameLimit, v.hashes, "need.hashes")) {
        return false;
      }
      out = std::move(v);
      return true;
    }
    case wire::Message::HEADS: {
      if (!r.hasHeads()) return c.fail("heads", "missing");
      const auto h = r.getHeads();
      Heads v;
      if (!c.hashes(h.hasHashes(), h.getHashes(), frameLimit, v.hashes, "heads.hashes")) {
        return false;
      }
      v.linkCount = h.getLinkCount();
      out = std::move(v);
      return true;
    }
    case wire::Message::VECTOR: {
      if (!r.hasVector()) return c.fail("vector", "missing");
      const auto vec = r.getVector();
      if (!vec.hasEntries()) return c.fail("vector.entries", "missing");
      const auto l = vec.getEntries();
      if (!c.list(l, frameLimit, capnp::ElementSize::INLINE_COMPOSITE, "vector.entries")) {
        return false;
      }
      Vector v;
      v.entries.resize(l.size());
      for (unsigned i = 0; i < l.size(); ++i) {
        const auto e = l[i];
        VectorEntry& entry = v.entries[i];
        if (!c.fixed(e.hasDeviceId(), e.getDeviceId(), entry.deviceId, "vector.deviceId")) {
          return false;
        }
        entry.deviceSeq = e.getDeviceSeq();
        if (entry.deviceSeq < 1 || entry.deviceSeq > kMaxDeviceSeq) {
          return c.fail("vector.deviceSeq", "not in 1 .. 2^32-1");
        }
        if (i > 0 && !(v.entries[i - 1].deviceId < entry.deviceId)) {
          return c.fail("vector.entries", "not strictly ascending");
        }
      }
      out = std::move(v);
      return true;
    }
    case wire::Message::WANT: {
      if (!r.hasWant()) return c.fail("want", "missing");
      const auto w = r.getWant();
      Want v;
      if (!c.hashes(w.hasHashes(), w.getHashes(), frameLimit, v.hashes, "want.hashes")) {
        return false;
      }
      out = std::move(v);
      return true;
    }
    case wire::Message::LINKS: {
      if (!r.hasLinks()) return c.fail("links", "missing");
      const auto l = r.getLinks();
      Links v;
      if (!readLinks(l.hasLinks(), l.getLinks(), frameLimit, frameLimit, v.links, "links.links",
                     c)) {
        return false;
      }
      out = std::move(v);
      return true;
    }
  }
  return c.fail("message", "unreachable member");
}

template <typename Init>
void putLinks(const std::vector<Bytes>& links, Init init) {
  if (links.empty()) return;
  auto list = init(static_cast<unsigned>(links.size()));
  for (unsigned i = 0; i < links.size(); ++i) {
    auto parts = splitLink(links[i]);
    if (!parts) {
      throw std::logic_error("encodeMessage: not a Link message: " + parts.error().message());
    }
    list[i].setBody(asData(ByteView(parts->body)));
    list[i].setSignature(asData(parts->signature));
  }
}

template <typename Init>
void putHashes(const std::vector<Hash>& hashes, Init init) {
  if (hashes.empty()) return;
  auto list = init(static_cast<unsigned>(hashes.size()));
  for (unsigned i = 0; i < hashes.size(); ++i) list.set(i, asData(hashes[i]));
}

// --- ChangeBody, ChangePayload -------------------------------------------------------------------

bool readChangeBody(wire::ChangeBody::Reader r, DecodedChangeBody& out, Checker& c) {
  ChangeBody& b = out.body;
  if (!c.fixed(r.hasActor(), r.getActor(), b.actor, "actor")) return false;
  b.seq = r.getSeq();
  b.startOp = r.getStartOp();
  b.opCount = r.getOpCount();
  if (!c.hashes(r.hasDeps(), r.getDeps(), ~std::size_t{0}, b.deps, "deps", true) ||
      !c.hashes(r.hasTeamHeads(), r.getTeamHeads(), kMaxTeamHeads, b.teamHeads, "teamHeads")) {
    return false;
  }
  std::optional<std::string> scope;
  if (!c.optionalText(r.hasScope(), r.getScope(), 1, kMaxScopeBytes, scope, "scope")) {
    return false;
  }
  if (!scope) return c.fail("scope", "missing");
  b.scope = std::move(*scope);
  if (!c.optionalFixed(r.hasGeneration(), r.getGeneration(), b.generation, "generation") ||
      !c.optionalFixed(r.hasNonce(), r.getNonce(), b.nonce, "nonce") ||
      !c.bytes(r.hasCiphertext(), r.getCiphertext(), b.ciphertext, "ciphertext")) {
    return false;
  }
  if (!r.hasCiphertext()) return c.fail("ciphertext", "missing");
  out.unknown = Checker::wider<wire::ChangeBody>(r);
  return true;
}

bool readChangePayload(wire::ChangePayload::Reader r, ChangePayload& out, Checker& c) {
  out.time = r.getTime();
  // A message is text for people, as the core's Document takes it: valid UTF-8 of any length
  // the frame allows, newlines and tabs included (a version-3 payload that failed to decode
  // would be applied as no-ops, §8, so nothing an author may write is refused here).
  if (r.hasMessage()) {
    const std::string_view m = view(r.getMessage());
    if (m.empty() || !utf8Valid(m)) return c.fail("message", "not valid UTF-8");
    out.message.assign(m);
  } else {
    out.message.clear();
  }
  return c.bytes(r.hasOps(), r.getOps(), out.ops, "ops");
}

Bytes concat(std::string_view tag, const DocId& docId, ByteView body) {
  // Sized up front and copied into: g++ 12 misreads three inserts after a reserve as an overflow.
  Bytes out(tag.size() + docId.size() + body.size());
  std::memcpy(out.data(), tag.data(), tag.size());
  std::memcpy(out.data() + tag.size(), docId.data(), docId.size());
  if (!body.empty()) std::memcpy(out.data() + tag.size() + docId.size(), body.data(), body.size());
  return out;
}

}  // namespace

Bytes encodeClaim(const Claim& claim) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::Claim>();
  if (claim.teamId) root.setTeamId(asData(*claim.teamId));
  root.setKind(static_cast<::Kind>(claim.kind));
  root.setDeviceId(asData(claim.deviceId));
  root.setSignature(asData(claim.signature));
  if (claim.invitations) {
    auto list = root.initInvitations(static_cast<unsigned>(claim.invitations->size()));
    for (unsigned i = 0; i < claim.invitations->size(); ++i) {
      list[i].setPkTag(asData((*claim.invitations)[i].pkTag));
      list[i].setInvitation(asData((*claim.invitations)[i].invitation));
    }
  }
  if (claim.invitation) root.setInvitation(asData(*claim.invitation));
  if (claim.encKey) root.setEncKey(asData(*claim.encKey));
  if (claim.userId) root.setUserId(asText(*claim.userId));
  if (claim.proof) root.setProof(asData(*claim.proof));
  if (claim.consent) root.setConsent(asData(*claim.consent));
  if (claim.inviteSig) root.setInviteSig(asData(*claim.inviteSig));
  return toBytes(capnp::canonicalize(root.asReader()));
}

Result<Claim> decodeClaim(ByteView bytes, ClaimRole role) {
  const std::size_t limit =
      role == ClaimRole::Responder ? kMaxResponderClaimBytes : kMaxInitiatorClaimBytes;
  Claim out;
  Checker checker;
  auto r = readSegment<wire::Claim>(bytes, limit, true, "claim", checker,
                                    [&](wire::Claim::Reader root) {
                                      return readClaim(root, role, out, checker);
                                    });
  if (!r) return std::move(r).error();
  return out;
}

Bytes encodeMessage(const Message& message) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<wire::Message>();
  if (const auto* s = std::get_if<Status>(&message)) {
    auto b = root.initStatus();
    switch (s->kind) {
      case Status::Kind::Ok: b.setOk(); break;
      case Status::Kind::ProveAdmission: b.setProveAdmission(); break;
      case Status::Kind::Denied: b.setDenied(static_cast<::Reason>(s->reason)); break;
    }
  } else if (const auto* p = std::get_if<Proof>(&message)) {
    auto b = root.initProof();
    putLinks(p->links, [&](unsigned n) { return b.initLinks(n); });
  } else if (const auto* n = std::get_if<Need>(&message)) {
    auto b = root.initNeed();
    putHashes(n->hashes, [&](unsigned k) { return b.initHashes(k); });
  } else if (const auto* h = std::get_if<Heads>(&message)) {
    auto b = root.initHeads();
    putHashes(h->hashes, [&](unsigned k) { return b.initHashes(k); });
    b.setLinkCount(h->linkCount);
  } else if (const auto* v = std::get_if<Vector>(&message)) {
    auto b = root.initVector();
    if (!v->entries.empty()) {
      auto list = b.initEntries(static_cast<unsigned>(v->entries.size()));
      for (unsigned i = 0; i < v->entries.size(); ++i) {
        list[i].setDeviceId(asData(v->entries[i].deviceId));
        list[i].setDeviceSeq(v->entries[i].deviceSeq);
      }
    }
  } else if (const auto* w = std::get_if<Want>(&message)) {
    auto b = root.initWant();
    putHashes(w->hashes, [&](unsigned k) { return b.initHashes(k); });
  } else if (const auto* l = std::get_if<Links>(&message)) {
    auto b = root.initLinks();
    putLinks(l->links, [&](unsigned k) { return b.initLinks(k); });
  } else {
    // PORTCULLIS_REQUIRE's contract; providers see only portcullis/*.h, so it is spelled out.
    throw std::logic_error("encodeMessage: an UnknownMessage cannot be encoded by this version");
  }
  return toBytes(capnp::canonicalize(root.asReader()));
}

Result<Message> decodeMessage(ByteView bytes, std::size_t frameLimit) {
  Message out;
  Checker checker;
  auto r = readSegment<wire::Message>(bytes, frameLimit, false, "message", checker,
                                      [&](wire::Message::Reader root) {
                                        return readMessage(root, frameLimit, out, checker);
                                      });
  if (!r) return std::move(r).error();
  return out;
}

Bytes encodeChangeBody(const ChangeBody& body) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::ChangeBody>();
  root.setActor(asData(body.actor));
  root.setSeq(body.seq);
  root.setStartOp(body.startOp);
  root.setOpCount(body.opCount);
  putHashes(body.deps, [&](unsigned n) { return root.initDeps(n); });
  putHashes(body.teamHeads, [&](unsigned n) { return root.initTeamHeads(n); });
  if (!body.scope.empty()) root.setScope(asText(body.scope));
  if (body.generation) root.setGeneration(asData(*body.generation));
  if (body.nonce) root.setNonce(asData(*body.nonce));
  if (!body.ciphertext.empty()) root.setCiphertext(asData(ByteView(body.ciphertext)));
  return toBytes(capnp::canonicalize(root.asReader()));
}

Result<DecodedChangeBody> decodeChangeBody(ByteView bytes, std::size_t maxBytes) {
  DecodedChangeBody out;
  Checker checker;
  auto r = readSegment<wire::ChangeBody>(bytes, maxBytes, true, "change body", checker,
                                         [&](wire::ChangeBody::Reader root) {
                                           return readChangeBody(root, out, checker);
                                         });
  if (!r) return std::move(r).error();
  // Bits this version does not read (beside opCount in its data word, say) are a later
  // version's fields too, as for links: a body that does not re-encode to itself is unknown.
  if (!out.unknown && encodeChangeBody(out.body) != Bytes(bytes.begin(), bytes.end())) {
    out.unknown = true;
  }
  return out;
}

bool versionThreeShape(const ChangeBody& body) {
  return body.scope == "team" && !body.generation && !body.nonce;
}

Bytes encodeChangePayload(const ChangePayload& payload) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::ChangePayload>();
  root.setTime(payload.time);
  if (!payload.message.empty()) root.setMessage(asText(payload.message));
  if (!payload.ops.empty()) root.setOps(asData(ByteView(payload.ops)));
  return toBytes(capnp::canonicalize(root.asReader()));
}

Result<ChangePayload> decodeChangePayload(ByteView bytes, std::size_t maxBytes) {
  ChangePayload out;
  Checker checker;
  auto r = readSegment<wire::ChangePayload>(bytes, maxBytes, true, "change payload", checker,
                                            [&](wire::ChangePayload::Reader root) {
                                              return readChangePayload(root, out, checker);
                                            });
  if (!r) return std::move(r).error();
  // A null root reads as an empty payload, which is written as an empty struct: one payload,
  // one encoding (the fuzz target found the second).
  if (bytes.size() >= 8 && std::all_of(bytes.begin(), bytes.begin() + 8,
                                       [](std::uint8_t b) { return b == 0; })) {
    return Error(Errc::Malformed, "change payload: a null root");
  }
  return out;
}

Bytes encodeSealedChange(ByteView body, const Signature& signature) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::SealedChange>();
  root.setBody(asData(body));
  root.setSignature(asData(signature));
  return toBytes(capnp::canonicalize(root.asReader()));
}

Result<SealedChangeParts> decodeSealedChange(ByteView bytes, std::size_t maxBytes) {
  SealedChangeParts out;
  Checker c;
  auto r = readSegment<wire::SealedChange>(
      bytes, maxBytes, false, "sealed change", c, [&](wire::SealedChange::Reader root) {
        return c.bytes(root.hasBody(), root.getBody(), out.body, "body") &&
               (root.hasBody() || c.fail("body", "missing")) &&
               c.fixed(root.hasSignature(), root.getSignature(), out.signature, "signature");
      });
  if (!r) return std::move(r).error();
  return out;
}

Signature signChange(const DocId& docId, ByteView body,
                     std::span<const std::uint8_t, 64> secretKey) {
  return signBytes(concat(kChangeSigTag, docId, body), secretKey);
}

bool verifyChange(const DocId& docId, ByteView body, const Signature& signature,
                  const Key& actor) {
  return verifyBytes(concat(kChangeSigTag, docId, body), signature, actor);
}

Hash changeHash(ByteView body, const Signature& signature) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, crypto_generichash_BYTES);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(kChangeHashTag.data()),
                            kChangeHashTag.size());
  crypto_generichash_update(&state, body.data(), body.size());
  crypto_generichash_update(&state, signature.data(), signature.size());
  Hash out{};
  crypto_generichash_final(&state, out.data(), out.size());
  return out;
}

Result<DecodedChange> decodeChange(const DocId& docId, ByteView sealedChange,
                                   std::size_t maxBytes) {
  auto parts = decodeSealedChange(sealedChange, maxBytes);
  if (!parts) return std::move(parts).error();
  auto body = decodeChangeBody(parts->body, maxBytes);
  if (!body) return std::move(body).error();
  if (!verifyChange(docId, parts->body, parts->signature, body->body.actor)) {
    return malformed("change", "signature: does not verify under actor");
  }
  DecodedChange out;
  out.hash = changeHash(parts->body, parts->signature);
  out.body = std::move(parts->body);
  out.signature = parts->signature;
  out.parsed = std::move(body->body);
  out.unknown = body->unknown;
  return out;
}

}  // namespace portcullis::team
