// providers/team/team_channel.h — one authenticated team session carries two conversations: the
// Repo's document sync and the team's own messages (graph sync, live links: the team spec's §6.4
// and §6.5). Every frame on the AEAD channel starts with one tag byte, 0 for a Repo frame and 1
// for a team `Message`; anything else ends the session as malformed.
//
// A reader runs for the whole session and hands team messages to the provider as they arrive,
// also while the Repo is busy with a frame of its own: a change that waits for team links it
// declares (§8 rule 2) can then be released by links that arrive behind it on the same session.
// Repo frames wait for the Repo in a queue bounded in bytes (the reader pauses past it, which
// leaves the rest in the socket); the team handler is awaited before the next frame is read.
//
// Sends of both kinds share the AEAD channel one at a time, in the order they were asked for.
// Team messages are queued (bounded: past kMaxTeamOutBytes the session ends, a peer that does not
// read its links is not kept) and written by one writer.
//
// Layer: inside the team provider, between aead_channel.h and the Repo (which sees only the
// MessageChannel that makeTeamChannel returns). Runs on one executor, the Repo's.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "portcullis/asio.h"
#include "portcullis/auth_provider.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis::team {

inline constexpr std::uint8_t kRepoFrameTag = 0;
inline constexpr std::uint8_t kTeamFrameTag = 1;
// Repo frames read ahead of the Repo, in bytes (one frame is always taken).
inline constexpr std::size_t kMaxRepoReadAhead = 4u << 20;
// Team messages queued for sending.
inline constexpr std::size_t kMaxTeamOutBytes = 64u << 20;

// The provider's side of a session's channel.
class TeamSessionChannel {
 public:
  virtual ~TeamSessionChannel() = default;
  // Queues one team Message (its encoding). False when the session is closed or over its queue
  // bound (the session is then closed).
  virtual bool sendTeam(Bytes message) = 0;
  // Closes the session's channel and stream (the Repo's receive then fails). Idempotent.
  virtual void close(std::string reason) = 0;
  virtual bool closed() const = 0;
};

// Called with each team message, in order; the next frame is read once it returns. The session
// ends when the channel fails (`onEnd`, once, with the reason).
struct TeamChannelHandlers {
  std::function<asio::awaitable<void>(Bytes message)> onTeamMessage;
  std::function<void(const std::string& reason)> onEnd;
};

struct TeamChannelPair {
  std::unique_ptr<MessageChannel> repo;          // for the Repo's Session
  std::shared_ptr<TeamSessionChannel> provider;  // for the provider
};

// Wraps `inner` (the AEAD channel) and starts its reader on `executor`. The handlers are called
// on that executor until the session ends.
TeamChannelPair makeTeamChannel(asio::any_io_executor executor,
                                std::unique_ptr<MessageChannel> inner,
                                TeamChannelHandlers handlers);

}  // namespace portcullis::team
