// providers/team/change_sealer.cc — version-3 signed changes as the core's sealed changes (team
// spec §8).
#include "change_sealer.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "wire/session_codec.h"

namespace portcullis::team {
namespace {

constexpr std::string_view kScope = "team";

ChangeHash changeHashOf(const Hash& h) { return ChangeHash::fromBytes(h).value(); }
Hash hashOf(const ChangeHash& h) { return h.bytes(); }

std::uint64_t nowMillis() {
  const auto since = std::chrono::system_clock::now().time_since_epoch();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since).count();
  return ms < 0 ? 0 : static_cast<std::uint64_t>(ms);
}

// §8: 1..64 link hashes, strictly ascending.
Result<void> checkTeamHeads(const std::vector<Hash>& heads) {
  if (heads.empty() || heads.size() > kMaxTeamHeads) {
    return Error(Errc::Malformed, "team change: " + std::to_string(heads.size()) +
                                      " team heads to declare, not 1 to 64");
  }
  if (std::adjacent_find(heads.begin(), heads.end(), std::greater_equal<>()) != heads.end()) {
    return Error(Errc::Malformed, "team change: the team heads are not strictly ascending");
  }
  return {};
}

// The body of an envelope parse or seal produced, decoded again without verifying it.
Result<ChangeBody> bodyOf(const ChangeEnvelope& sealed, std::size_t maxBytes) {
  auto parts = decodeSealedChange(sealed.payload, maxBytes);
  if (!parts) return std::move(parts).error();
  auto body = decodeChangeBody(parts->body, maxBytes);
  if (!body) return std::move(body).error();
  return std::move(body->body);
}

}  // namespace

TeamChangeSealer::TeamChangeSealer(const DocId& docId, std::shared_ptr<const DeviceKey> author,
                                   std::function<std::vector<Hash>()> teamHeads,
                                   std::size_t maxChangeBytes)
    : docId_(docId),
      author_(std::move(author)),
      teamHeads_(std::move(teamHeads)),
      maxChangeBytes_(maxChangeBytes) {}

Result<ChangeEnvelope> TeamChangeSealer::parse(Bytes payload) const {
  auto change = decodeChange(docId_, payload, maxChangeBytes_);
  if (!change) return std::move(change).error();
  const ChangeBody& body = change->parsed;
  if (!versionThreeShape(body)) {
    return Error(Errc::Denied,
                 "team change: not a version-3 change (scope \"team\", no generation nor nonce)");
  }
  if (change->unknown) {
    return Error(Errc::Unsupported,
                 "team change: the body has fields of a later version; it is never applied");
  }
  ChangeEnvelope env{.hash = changeHashOf(change->hash),
                     .actor = ActorId::fromBytes(body.actor).value(),
                     .seq = body.seq,
                     .startOp = body.startOp,
                     .opCount = body.opCount,
                     .deps = {},
                     .payload = std::move(payload)};
  env.deps.reserve(body.deps.size());
  for (const Hash& d : body.deps) env.deps.push_back(changeHashOf(d));
  return env;
}

Result<ChangeEnvelope> TeamChangeSealer::seal(const ChangeEnvelope& plain) const {
  if (!author_) return Error(Errc::Denied, "team change: this node has no device key to sign with");
  const Key& deviceId = author_->publicKey().bytes();
  if (!std::ranges::equal(plain.actor.bytes(), deviceId)) {
    return Error(Errc::Denied, "team change: the change's actor is not this device");
  }
  if (plain.opCount > std::numeric_limits<std::uint32_t>::max()) {
    return Error(Errc::Overloaded, "team change: more ops than one change may count");
  }
  std::vector<Hash> heads = teamHeads_();
  if (auto ok = checkTeamHeads(heads); !ok) return ok.error();

  ChangeBody body{.actor = deviceId,
                  .seq = plain.seq,
                  .startOp = plain.startOp,
                  .opCount = static_cast<std::uint32_t>(plain.opCount),
                  .deps = {},
                  .teamHeads = std::move(heads),
                  .scope = std::string(kScope),
                  .generation = std::nullopt,
                  .nonce = std::nullopt,
                  .ciphertext = encodeChangePayload(
                      ChangePayload{.time = nowMillis(), .message = {}, .ops = plain.payload})};
  body.deps.reserve(plain.deps.size());
  for (const ChangeHash& d : plain.deps) body.deps.push_back(hashOf(d));
  const Bytes bodyBytes = encodeChangeBody(body);
  const Signature signature = signChange(docId_, bodyBytes, author_->secretKey().span());

  ChangeEnvelope env{.hash = changeHashOf(changeHash(bodyBytes, signature)),
                     .actor = plain.actor,
                     .seq = plain.seq,
                     .startOp = plain.startOp,
                     .opCount = plain.opCount,
                     .deps = plain.deps,
                     .payload = encodeSealedChange(bodyBytes, signature)};
  return env;
}

Result<Bytes> TeamChangeSealer::open(const ChangeEnvelope& sealed) const {
  auto body = bodyOf(sealed, maxChangeBytes_);
  if (!body) return std::move(body).error();
  auto payload = decodeChangePayload(body->ciphertext, maxChangeBytes_);
  if (!payload) return std::move(payload).error();
  if (payload->ops.empty()) return Error(Errc::Malformed, "team change: the payload has no ops");
  return std::move(payload->ops);
}

Result<SealedChangeHeader> TeamChangeSealer::header(const ChangeEnvelope& sealed) {
  // parse or seal bounded the payload already.
  auto body = bodyOf(sealed, sealed.payload.size());
  if (!body) return std::move(body).error();
  return SealedChangeHeader{.actor = body->actor, .teamHeads = std::move(body->teamHeads)};
}

}  // namespace portcullis::team
