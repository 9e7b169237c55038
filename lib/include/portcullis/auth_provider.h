// portcullis/auth_provider.h — the one small interface every auth provider implements, and the
// framed message channel a provider hands back after its handshake (architecture §2, §3, §7).
//
// Layer: between the network adapters and the Repo. The Repo gives each new `Stream` to
// `authenticate`; on success it talks to the peer only through the returned `MessageChannel`,
// and it asks an `okTo*` hook before every disclosure or acceptance. Every hook denies unless a
// provider overrides it: deny is the default, and a hook that throws counts as deny.
//
// Every method is called on the Repo's executor, one Repo per provider object.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/change_graph.h"
#include "portcullis/change_sealer.h"
#include "portcullis/export.h"
#include "portcullis/ids.h"
#include "portcullis/network_adapter.h"
#include "portcullis/result.h"
#include "portcullis/types.h"

namespace portcullis {

// The largest frame a channel accepts by default (architecture §5).
inline constexpr std::size_t kDefaultMaxFrameBytes = 16u << 20;

// Whole messages over a stream, after the handshake. A crypto provider's channel encrypts and
// authenticates every frame. At most one send and one receive in flight at a time.
class PORTCULLIS_EXPORT MessageChannel {
 public:
  virtual ~MessageChannel() = default;
  // Sends one frame. Fails with Errc::Disconnected once the channel is closed.
  virtual asio::awaitable<Result<void>> send(ByteView frame) = 0;
  // Sends `frames` in order, as many send() calls would, in as few stream writes as the channel
  // can manage (a backlog then costs fewer system calls). Fails as send() does; after a failure
  // it is unknown which of them went out. The default calls send() for each.
  virtual asio::awaitable<Result<void>> sendMany(std::span<const ByteView> frames);
  // The next frame. Fails with Errc::Disconnected at the end, Errc::Malformed on a frame that does
  // not authenticate and Errc::Overloaded on one larger than the channel's limit (checked before
  // anything is allocated). A channel's memory for a frame should follow the bytes that have
  // arrived, not the length the peer announced (the built-in channels start at 128 KiB and double).
  virtual asio::awaitable<Result<Bytes>> receive() = 0;
  // Closes the channel and its stream. Idempotent.
  virtual void close() = 0;
};

// A plaintext channel: each frame is a u32 big-endian length and that many bytes. For providers
// whose handshake yields no cipher (`open`) and for tests.
PORTCULLIS_EXPORT std::unique_ptr<MessageChannel> makeFramedChannel(
    std::unique_ptr<Stream> stream, std::size_t maxFrameBytes = kDefaultMaxFrameBytes);

// What authenticate() proved about the other side: who it is, not what it may do. Access is
// asked of the provider at each decision, because it changes while the session lives.
struct PeerIdentity {
  PeerId peer;
  std::string user;                // member or user name where the provider has one
  std::vector<std::string> roles;  // as the provider reported them at the handshake
  std::string provider;            // the name of the provider that vouched for it
};

// The outcome of a successful handshake.
struct Session {
  PeerIdentity identity;
  std::unique_ptr<MessageChannel> channel;
};

// Changes a peer sent for one document, parsed into envelopes but not yet applied.
struct ChangeBatch {
  std::span<const ChangeEnvelope> changes;
};

// How a provider talks back to its Repo. Given once, before any session, by `attach`. Every
// function must be called on the Repo's executor; each is a no-op after the Repo is gone.
struct RepoCallbacks {
  // Sends opaque bytes to the provider on the other end of `peer`'s session.
  std::function<void(const PeerId& peer, Bytes message)> sendProviderMessage;
  std::function<void(Bytes message)> broadcastProviderMessage;
  // The provider's answers for `peer` may have changed: the Repo asks the hooks again for every
  // document it syncs with `peer`, drops queued frames no longer allowed, and resumes where they
  // are allowed again.
  std::function<void(const PeerId& peer)> accessChanged;
  // `peer` is no longer authenticated: its session closes at once and nothing queued is sent.
  std::function<void(const PeerId& peer, std::string reason)> endSession;
};

class PORTCULLIS_EXPORT AuthProvider {
 public:
  virtual ~AuthProvider() = default;

  // The provider's name, as written in config files ("open", "shared-key").
  virtual std::string_view name() const = 0;

  // The PeerId this node authenticates as, where the provider fixes it (a device key, a claimed
  // name). A Repo without RepoOptions::peerId takes it from here. Default: none (random).
  virtual std::optional<PeerId> localPeer() const;
  // The CRDT actor of this node's own changes, where the provider fixes it (a device key that
  // signs them). A Repo without DocumentOptions::actor takes it from here. Default: none (a
  // random actor per document).
  virtual std::optional<ActorId> localActor() const;

  // Runs the handshake on a fresh stream. Returns the peer's Session, or an Error whose code is
  // Errc::Denied for a peer the provider refuses (the Repo then drops the stream). Must bound the
  // bytes it reads before success; the Repo bounds the time (it closes the stream at its
  // handshake deadline, which makes pending reads fail).
  virtual asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> stream,
                                                        Side side) = 0;

  // May we tell `peer` that `doc` exists, unasked? Default: no.
  virtual asio::awaitable<bool> okToAdvertise(const PeerIdentity& peer, const DocumentId& doc);
  // May we send `doc` or changes to it to `peer`, or a request that names it? Default: no.
  virtual asio::awaitable<bool> okToSend(const PeerIdentity& peer, const DocumentId& doc);
  // May we apply these changes to `doc`, received from `peer`? Default: no.
  virtual asio::awaitable<bool> okToReceive(const PeerIdentity& peer, const DocumentId& doc,
                                            const ChangeBatch& changes);

  // May we send `peer` a request for `doc`, which tells it the ID? Asked before every request
  // this Repo sends or forwards (and again as it leaves the queue). Default: okToSend.
  virtual asio::awaitable<bool> okToRequest(const PeerIdentity& peer, const DocumentId& doc);
  // This Repo created `doc` (Repo::create), before it is announced to anyone. Default: nothing.
  virtual void documentCreated(const DocumentId& doc);
  // Addresses this provider needs dialed (document-id's upstreams), in the network adapters'
  // form; the application adds them to its adapter's dial list. Default: none.
  virtual std::vector<std::string> dialAddresses() const;
  // The address a client dials to reach this node where it listens at `hostPort` (HOST:PORT),
  // in the network adapters' form: what a server prints for its clients. A provider whose dialer
  // must know this node's key in advance returns the form that carries it (the secret
  // handshake's "net:HOST:PORT~shs:KEY"). Default: `hostPort` as it is.
  virtual std::string advertisedAddress(std::string_view hostPort) const;
  // Whether this node's own provider state is in step with `peer`'s (the team provider: both hold
  // the same team links), so that what this node signs now reflects what the peer knows. A tool
  // that connects only to write waits for it (bounded). Default: true (nothing to be in step).
  virtual bool inStepWith(const PeerId& peer) const;
  // Provider messages from `peer` (e.g. new team links). Default: ignored.
  virtual asio::awaitable<void> onProviderMessage(const PeerIdentity& peer, Bytes message);

  // The sealer for `doc`'s changes, or null for plain changes (the default).
  virtual std::shared_ptr<const ChangeSealer> sealerFor(const DocumentId& doc);

  // Called once by the Repo, before any session. Default: the callbacks are not kept.
  virtual void attach(RepoCallbacks callbacks);

  // Re-reads what may change while the node runs (the shared-key deny-list), all or nothing: on
  // error the old state stays and the error says why. `portcullis serve` calls it on SIGHUP.
  // Default: nothing to reload (success).
  virtual Result<void> reload();
};

// The `open` provider, for development only: each side sends its claimed peer ID in plaintext
// (one length byte, then the ID) and every hook allows. Logs a warning when created.
PORTCULLIS_EXPORT std::unique_ptr<AuthProvider> makeOpenProvider(PeerId self);

}  // namespace portcullis
