// Joining over the network (§6.3, the invitee's side): handshake mode 1, then the graph.
#include "join.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "aead_channel.h"
#include "handshake.h"
#include "invitation.h"
#include "team_channel.h"
#include "team_graph.h"
#include "wire/link_codec.h"
#include "wire/session_codec.h"

namespace portcullis::team {

namespace {

// Reads team messages until the graph's heads are the responder's Heads, or the channel ends
// (closed at the deadline by the caller's watchdog).
asio::awaitable<Result<void>> receiveGraph(MessageChannel& channel, TeamGraph& graph) {
  std::optional<Heads> heads;
  while (!heads || graph.heads() != heads->hashes) {
    auto frame = co_await channel.receive();
    if (!frame) {
      co_return Error(frame.error().code(),
                      "the team's graph did not arrive whole: " + frame.error().message());
    }
    if (frame->empty() || (*frame)[0] > kTeamFrameTag) {
      co_return Error(Errc::Malformed, "a frame with an unknown tag");
    }
    if ((*frame)[0] == kRepoFrameTag) continue;  // the responder's document sync: not ours yet
    auto message = decodeMessage(ByteView(*frame).subspan(1), kDefaultMaxFrameBytes);
    if (!message) co_return std::move(message).error();
    if (auto* h = std::get_if<Heads>(&*message)) {
      heads = std::move(*h);
    } else if (auto* links = std::get_if<Links>(&*message)) {
      const BatchOutcome outcome = graph.addBatch(links->links);
      if (!outcome.dropped.empty()) {
        co_return Error(Errc::Malformed,
                        "the responder sent a link that fails the structural checks: " +
                            outcome.dropReasons.front());
      }
    }
  }
  co_return Result<void>();
}

}  // namespace

asio::awaitable<Result<JoinedTeam>> joinTeam(std::unique_ptr<Stream> stream, std::string code,
                                             const DeviceKey& newDevice, JoinOptions options) {
  auto parsed = parseInvitationCode(code);
  sodium_memzero(code.data(), code.size());
  if (!parsed) co_return std::move(parsed).error();
  TeamPrefix prefix{};
  std::copy_n(parsed->prefix().begin(), prefix.size(), prefix.begin());
  std::optional<ParsedCode> seed(std::move(*parsed));

  const Key deviceId = newDevice.publicKey().bytes();
  const EncKey encKey = newDevice.publicKey().curve25519();
  const std::string userId = options.userId;
  std::optional<Hash> invitation;

  InitiatorConfig config;
  config.identity = {deviceId, ClaimKind::Invitee, signerFor(newDevice)};
  config.mode = HandshakeMode::Invitee;
  config.prefix = prefix;
  config.deadline = options.deadline;
  config.inviteeCheck = [&](const Claim& responder, const Hash& h2) -> asio::awaitable<Result<Claim>> {
    const Hash teamId = *responder.teamId;
    // (No temporaries with destructors inside co_await: g++ 12 destroys them twice.)
    auto derive = deriveInvitationKeyAsync(std::move(*seed), teamId);
    auto key = co_await std::move(derive);
    seed.reset();
    if (!key) co_return std::move(key).error();
    const auto tag = invitationKeyTag(key->publicKey);
    const std::vector<Offer> offers = responder.invitations.value_or(std::vector<Offer>{});
    auto offer = std::find_if(offers.begin(), offers.end(),
                              [&](const Offer& o) { return o.pkTag == tag; });
    if (offer == offers.end()) {
      co_return Error(Errc::Denied,
                      "the device at the other end does not offer this invitation: it is used "
                      "up, revoked, expired or not this team's, or the code is mistyped");
    }
    invitation = offer->invitation;
    const AdmissionRequest request =
        makeAdmissionRequest(teamId, offer->invitation, *key, newDevice, encKey, userId);
    Claim claim;
    claim.invitation = offer->invitation;
    claim.encKey = encKey;
    if (!userId.empty()) claim.userId = userId;
    claim.proof = signInvitationProof(*key, h2, deviceId, encKey, userId);
    claim.consent = request.consent;
    claim.inviteSig = request.inviteSig;
    co_return claim;
  };
  auto handshake = runInitiator(std::move(stream), std::move(config));
  auto result = co_await std::move(handshake);
  if (!result) co_return std::move(result).error();
  if (!result->authorized()) {
    co_return Error(Errc::Denied, fmt::format("the team refused the admission: {}",
                                              reasonName(result->received.reason)));
  }

  // The graph, whole, within the deadline.
  auto channel = std::shared_ptr<MessageChannel>(makeAeadChannel(
      std::move(result->stream), result->takeKeys(), kDefaultMaxFrameBytes + 1));
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer watchdog(ex, options.deadline);
  watchdog.async_wait([channel](const boost::system::error_code& ec) {
    if (!ec) channel->close();
  });
  TeamGraph graph(result->teamId);
  auto received = co_await receiveGraph(*channel, graph);
  watchdog.cancel();
  channel->close();
  if (!received) co_return std::move(received).error();

  // §6.3: the root hashes to the team ID (the graph's own check), the graph holds the invitation
  // and this device's valid admission, and the responder's device is current.
  if (!graph.hasRoot()) co_return Error(Errc::Malformed, "the graph has no root for this team");
  if (!invitation || graph.state(*invitation) != LinkState::Valid) {
    co_return Error(Errc::Malformed, "the graph does not hold the invitation as valid");
  }
  auto member = graph.memberOfDevice(deviceId);
  if (!member) co_return Error(Errc::Malformed, "the graph does not hold this device's admission");
  if (graph.standing(result->peer.deviceId) != TeamGraph::Standing::Member) {
    co_return Error(Errc::Malformed, "the admitting device is not current in the graph it sent");
  }
  JoinedTeam joined{.teamId = result->teamId, .teamName = graph.teamName(), .links = {},
                    .userId = *member,
                    .responder = result->peer.deviceId};
  graph.forEachLink([&](const StoredLink& l) {
    joined.links.push_back(encodeLink(l.body, l.signature));
  });
  co_return joined;
}

}  // namespace portcullis::team
