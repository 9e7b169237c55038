// portcullis/repo.h — the Repo: documents, storage and peers, with the auth provider consulted at
// every decision (architecture §2, §3, §5). The top of the public API.
//
// A Repo runs on one executor (one io_context on one thread). Every method, and every
// DocHandle method, must be called on that executor; other threads `asio::post` to it. Event
// callbacks run on it too. Destroying the Repo closes every session and abandons unsaved work:
// call `shutdown()` first for a clean stop.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/auth_provider.h"
#include "portcullis/document.h"
#include "portcullis/export.h"
#include "portcullis/ids.h"
#include "portcullis/network_adapter.h"
#include "portcullis/result.h"
#include "portcullis/storage_adapter.h"

namespace portcullis {

namespace detail {
class RepoImpl;
struct DocEntry;
}  // namespace detail

// What a Repo reports. Every callback is optional.
struct RepoEvents {
  std::function<void(const PeerIdentity&)> peerAuthenticated;
  // A stream whose handshake failed or was refused; `remote` is the stream's remoteAddress().
  std::function<void(const std::string& remote, const Error&)> peerRefused;
  std::function<void(const PeerId&, const std::string& reason)> peerGone;
  // A document's state changed, by a local edit or by changes from a peer.
  std::function<void(const DocumentId&)> documentChanged;
  // `okToReceive` refused `count` changes from `peer`; they were dropped, not stored.
  std::function<void(const PeerId& peer, const DocumentId&, std::size_t count)> changesRefused;
  // The other way round: `peer` refused changes this Repo sent it (its okToReceive said no), so
  // it did not store them. `changes` are those it named that this Repo holds and had not heard
  // refused before (see Repo::peerRefused). The peer says nothing of why.
  std::function<void(const PeerId& peer, const DocumentId&, const std::vector<ChangeHash>& changes)>
      changesRefusedByPeer;
  // `peer` reported `heads` of a document as durably stored (its storedHeads moved on).
  std::function<void(const PeerId& peer, const DocumentId&, const std::vector<ChangeHash>& heads)>
      peerStored;
  // An ephemeral message for a document from a peer that passes okToSend for it.
  std::function<void(const DocumentId&, const PeerId& sender, const Bytes& data)> ephemeral;
};

// Bounds a Repo keeps against every peer (architecture §5). Over a quota the session closes.
struct PeerQuotas {
  std::size_t framesPerSecond = 5'000;
  std::size_t bytesPerSecond = 64u << 20;
  std::size_t documentsCreated = 10'000;  // new documents a peer may bring us per session
  std::size_t pendingChanges = 10'000;    // changes from the peer waiting for missing deps
  // Frames queued for the peer and not yet sent (a peer that does not read): past this, the
  // session closes rather than buffer without bound.
  std::size_t sendQueueBytes = 16u << 20;
};

struct RepoOptions {
  std::vector<std::shared_ptr<NetworkAdapter>> network;
  std::shared_ptr<StorageAdapter> storage;  // null: memory only
  std::shared_ptr<AuthProvider> auth;       // required; makeOpenProvider() for "no auth"
  std::optional<PeerId> peerId;             // unset: auth->localPeer(), else random
  RepoEvents events;
  std::size_t maxFrameBytes = kDefaultMaxFrameBytes;
  // Changes are sent in frames of about this size (and never more than maxFrameBytes), so a long
  // history streams instead of being copied whole, and the receiver applies one frame while the
  // next is on its way. (A run of bench/repo_bench: 1 MiB frames took 61 ms and 31 MiB peak,
  // 64 KiB frames 49 ms and 27 MiB.)
  std::size_t syncBatchBytes = 64u << 10;
  // A peer that has not finished its handshake and hello by then is dropped.
  std::chrono::milliseconds handshakeTimeout{10'000};
  // How long find() waits for peers before failing "unavailable".
  std::chrono::milliseconds findTimeout{10'000};
  // Changes are written to storage this long after the first unsaved one (flush() forces it).
  std::chrono::milliseconds saveDelay{100};
  PeerQuotas quotas;
  DocumentOptions document;
};

// What a change subscription reports (DocHandle::subscribe): one local change, or one batch of
// changes from a peer that applied.
struct DocumentChange {
  std::vector<ChangeHash> headsBefore;
  std::vector<ChangeHash> headsAfter;
  // Where the document changed, sorted and unique (see Path in document.h): a map op gives its
  // key's path, a list op its element's index in the new state (a deleted element: the index
  // where it was), a text op the text's path. Ops in an object that a concurrent change removed
  // give none. Empty for a document relayed blind (DocHandle::isOpen() false).
  std::vector<Path> paths;
  // The peer whose changes these were; nullopt for a local DocHandle::change.
  std::optional<PeerId> peer;
};

// Keeps a DocHandle::subscribe callback registered while it lives: destroying it (or reset())
// unsubscribes. Move-only. It does not keep the document or the Repo alive, and outliving them
// is fine. Executor: the Repo's, like the DocHandle it came from.
class PORTCULLIS_EXPORT ChangeSubscription {
 public:
  ChangeSubscription() = default;
  ChangeSubscription(ChangeSubscription&& other) noexcept;
  ChangeSubscription& operator=(ChangeSubscription&& other) noexcept;
  ChangeSubscription(const ChangeSubscription&) = delete;
  ChangeSubscription& operator=(const ChangeSubscription&) = delete;
  ~ChangeSubscription();

  // Unsubscribes now; the callback is not called again, even for a change being reported.
  void reset();
  explicit operator bool() const noexcept { return id_ != 0; }

 private:
  friend class DocHandle;
  ChangeSubscription(std::weak_ptr<detail::DocEntry> entry, std::uint64_t id)
      : entry_(std::move(entry)), id_(id) {}
  std::weak_ptr<detail::DocEntry> entry_;
  std::uint64_t id_ = 0;
};

// A document held by a Repo. Cheap to copy; it keeps the document in memory while it lives.
class PORTCULLIS_EXPORT DocHandle {
 public:
  using ChangeCallback = std::function<void(const DocumentChange&)>;

  const DocumentId& id() const;
  // False for a document whose changes this node cannot open (it relays them blind).
  bool isOpen() const;
  // The current state. Precondition: isOpen(). Valid until the next change to the document.
  const Document& doc() const;
  std::vector<ChangeHash> heads() const;
  std::string toJson() const;  // precondition: isOpen()

  // Runs `edit` in one transaction and commits it as one change, which is then synced and saved.
  // If `edit` fails, the transaction is rolled back and its error returned. Returns the new
  // change's hash, or nullopt if `edit` changed nothing. Precondition: isOpen().
  Result<std::optional<ChangeHash>> change(const std::function<Result<void>(Transaction&)>& edit,
                                           CommitOptions options = {});

  // Sends `data` to every connected peer syncing this document that passes okToSend.
  void broadcast(Bytes data);

  // Calls `callback` on the Repo's executor after each change to this document: a local
  // change() (before change() returns), or a frame of a peer's changes once they applied. The
  // callback may read the document, change it, subscribe and unsubscribe (itself included):
  // - a change it makes applies at once, and is reported after every callback has seen the
  //   current one, so each subscriber sees changes one at a time, in order, each one's
  //   headsBefore the previous one's headsAfter;
  // - a subscription made during a report gets the changes after it, a reset one no more.
  // The callback must not throw. The subscription ends when the returned object is destroyed.
  [[nodiscard]] ChangeSubscription subscribe(ChangeCallback callback);

 private:
  friend class detail::RepoImpl;
  explicit DocHandle(std::shared_ptr<detail::DocEntry> entry) : entry_(std::move(entry)) {}
  std::shared_ptr<detail::DocEntry> entry_;
};

class PORTCULLIS_EXPORT Repo {
 public:
  // Starts the network adapters. Precondition: options.auth is set.
  Repo(asio::any_io_executor executor, RepoOptions options);
  ~Repo();
  Repo(const Repo&) = delete;
  Repo& operator=(const Repo&) = delete;

  const PeerId& peerId() const;

  // A new, empty document with a random ID, offered to peers where okToAdvertise allows.
  DocHandle create();
  // The document if this Repo has it in memory; nothing is asked of storage or peers.
  std::optional<DocHandle> findLocal(const DocumentId& id) const;
  // The document from memory, else storage, else the peers that pass okToSend (including those
  // still authenticating). Fails with Errc::NotFound ("unavailable") when every peer that could
  // have it says no, when there is no one to ask, or at options.findTimeout.
  asio::awaitable<Result<DocHandle>> find(DocumentId id);
  // Forgets the document here: memory and storage. Peers keep their copies.
  asio::awaitable<Result<void>> remove(DocumentId id);
  // IDs of the documents in memory, ascending.
  std::vector<DocumentId> documents() const;
  // Peers with an open session, ascending.
  std::vector<PeerId> peers() const;
  // Waits until a peer has an open session (authenticated and past its hello): `peer` if given,
  // else any. Completes at once if there is one already. Errc::Disconnected if none is there by
  // `deadline` from now ("timed out"), if the Repo has no network adapter, or if it stops
  // meanwhile. Returns the peer. Executor: the Repo's; the Repo must outlive the awaitable.
  asio::awaitable<Result<PeerId>> whenPeerReady(std::chrono::milliseconds deadline,
                                                std::optional<PeerId> peer = std::nullopt);
  // The heads `peer` last reported as durably stored for `doc` (empty if none).
  std::vector<ChangeHash> peerStoredHeads(const PeerId& peer, const DocumentId& doc) const;
  // Changes of `doc` held here that `peer` reported refusing during its current session,
  // ascending (empty if none, or if there is no session). At most the 1024 most recently
  // reported are kept, whatever a peer sends.
  std::vector<ChangeHash> peerRefused(const PeerId& peer, const DocumentId& doc) const;

  // Writes every unsaved change to storage now; completes when all of it is durable.
  asio::awaitable<Result<void>> flush();
  // Flushes, says goodbye to every peer, closes sessions and stops the network adapters.
  asio::awaitable<Result<void>> shutdown();

 private:
  std::shared_ptr<detail::RepoImpl> impl_;
};

}  // namespace portcullis
