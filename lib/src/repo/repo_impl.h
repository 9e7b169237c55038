// The Repo's internals: the document table, storage, finding, and the peer sessions that run the
// sync protocol (architecture §2, §5). Everything runs on the Repo's executor; nothing here locks.
//
// Ownership: Repo owns a shared_ptr<RepoImpl>; every spawned coroutine holds one too, so the
// RepoImpl lives until the last of them has finished. Repo's destructor calls stop(), which
// closes every session and cancels every timer so that they finish promptly.
#pragma once

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "portcullis/asio.h"
#include "portcullis/repo.h"
#include "crdt/op.h"
#include "detail/log.h"
#include "detail/random_pool.h"
#include "wire/sync_codec.h"

namespace portcullis::detail {

class RepoImpl;

// One document: an open Document, or, where this node holds no key for its sealed changes, the
// bare change graph that it stores and relays blind.
struct DocEntry {
  DocEntry(DocumentId id, std::weak_ptr<RepoImpl> repo, std::shared_ptr<const ChangeSealer> sealer,
           const DocumentOptions& options);

  const ChangeGraph& graph() const { return doc ? doc->graph() : *relayGraph; }
  // Received changes, parsed once: their envelopes (for the okToReceive hook and the graph) and,
  // for plain changes, their decoded ops.
  struct Received {
    std::vector<ChangeEnvelope> envelopes;
    std::vector<ChangeData> data;  // empty unless the changes are plain
  };
  // Storage of decoded ops that applied changes leave behind, for the next changes parsed: a
  // received change's ops (with their preds and keys) then reuse memory instead of each
  // allocating its own. One pool serves every document of a Repo, and it is bounded.
  class OpsPool {
   public:
    // Empty ops storage, recycled if there is any.
    std::vector<Op> take();
    void give(std::vector<Op> ops);

   private:
    static constexpr std::size_t kMaxVectors = 1024;  // a sync frame holds a few hundred changes
    static constexpr std::size_t kMaxOps = 64;        // larger vectors are not kept
    std::vector<std::vector<Op>> spare_;
  };
  // Parses a received payload into `out`, without applying it.
  Result<void> parse(Bytes payload, Received& out, OpsPool& pool) const;
  // Applies what `parse` produced, handing the decoded ops' storage back to `pool`.
  ApplyReport apply(Received received, OpsPool& pool);

  DocumentId id;
  std::weak_ptr<RepoImpl> repo;
  std::shared_ptr<const ChangeSealer> sealer;
  std::size_t maxChangeBytes;
  std::optional<Document> doc;            // exactly one of these two is set
  std::optional<ChangeGraph> relayGraph;

  // Storage: changes()[0, savedCount) are durable; the chunks written since the last snapshot.
  std::size_t savedCount = 0;
  std::vector<StorageKey> incrementalKeys;
  std::optional<StorageKey> snapshotKey;
  std::vector<ChangeHash> storedHeads;
  // find() calls waiting for changes a peer announced: woken when the document changes, a peer
  // refuses or a session goes.
  std::vector<std::weak_ptr<asio::steady_timer>> arrivalWaiters;

  // Change reports (DocHandle::subscribe). Around each local change or applied batch:
  // watchChange() before, which notes the heads and starts recording paths if anyone listens;
  // reportChange() after, which stops recording and, if `changed`, tells every subscriber.
  std::optional<std::vector<ChangeHash>> watchChange();
  void reportChange(std::optional<std::vector<ChangeHash>> before, std::optional<PeerId> peer,
                    bool changed);
  // Held through a shared_ptr, so that a callback can unsubscribe itself while it runs.
  std::vector<std::pair<std::uint64_t, std::shared_ptr<const DocHandle::ChangeCallback>>>
      subscribers;
  std::uint64_t lastSubscriber = 0;
  // Changes made while the subscribers hear of an earlier one: reported after it, in order.
  std::deque<DocumentChange> unreported;
  bool reporting = false;
};

// A set of change hashes that keeps only the `limit` most recently inserted: what a peer can
// make us remember stays bounded, and the oldest is forgotten first. Nothing is allocated until
// the first insert: every (peer, document) pair has two, and almost all stay empty (an empty
// std::deque allocates; a server offering 1,000 documents to 1,000 peers held GiBs of them).
class RecentHashes {
 public:
  explicit RecentHashes(std::size_t limit) : limit_(limit) {}
  bool contains(const ChangeHash& h) const { return held_ && held_->set.contains(h); }
  // True if `h` was not held yet.
  bool insert(const ChangeHash& h) {
    if (!held_) held_ = std::make_unique<Held>();
    if (!held_->set.insert(h).second) return false;
    held_->order.push_back(h);
    if (held_->order.size() > limit_) {
      held_->set.erase(held_->order.front());
      held_->order.pop_front();
    }
    return true;
  }
  std::size_t size() const { return held_ ? held_->order.size() : 0; }
  std::vector<ChangeHash> sorted() const {
    if (!held_) return {};
    std::vector<ChangeHash> out(held_->order.begin(), held_->order.end());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  struct Held {
    std::unordered_set<ChangeHash> set;
    std::deque<ChangeHash> order;  // oldest first
  };
  std::size_t limit_;
  std::unique_ptr<Held> held_;
};

// What one session knows about one document on the other side.
struct PeerDocState {
  // Refused changes remembered as settled, per peer and document. A peer can make up changes
  // without end; past this many, the oldest are forgotten (a forgotten one is asked for again
  // only while it is still one of the peer's heads, and then refused again).
  static constexpr std::size_t kMaxRefusedSettled = 4096;
  // Changes of ours the peer reported refusing (Repo::peerRefused).
  static constexpr std::size_t kMaxRefusedByPeer = 1024;

  bool active = false;     // we sync this document with this peer
  bool queued = false;     // a sync item for it waits in the session's queue
  bool heardFrom = false;  // the peer has told us its heads
  std::vector<ChangeHash> theirHeads;
  std::vector<ChangeHash> shared;  // hashes both sides have (with their pasts)
  // When set, both sides have exactly the first *sharedPrefix changes added here, so what the
  // peer lacks is what came after them: no walk of the whole graph per frame. `shared` then
  // holds the heads of the first `sharedAt` of them, and catches up only when the prefix is
  // given up.
  std::optional<std::size_t> sharedPrefix = 0;
  std::size_t sharedAt = 0;
  std::vector<ChangeHash> lastSentHeads;
  std::vector<ChangeHash> lastSentStored;
  bool sentAny = false;
  std::vector<ChangeHash> theirStored;
  RecentHashes refused{kMaxRefusedSettled};  // settled: refused by okToReceive, not asked again
  RecentHashes refusedByPeer{kMaxRefusedByPeer};  // ours, refused by the peer's okToReceive
};

class PeerSession : public std::enable_shared_from_this<PeerSession> {
 public:
  PeerSession(asio::any_io_executor ex, PeerIdentity identity, std::unique_ptr<MessageChannel> ch,
              Side side, std::size_t maxQueuedBytes)
      : identity(std::move(identity)),
        channel(std::move(ch)),
        side(side),
        maxQueuedBytes(maxQueuedBytes),
        wake(ex) {}

  struct QueueItem {
    std::optional<DocumentId> doc;  // set: re-checked (okToSend, okToRequest for a request) as it leaves the queue
    bool syncDoc = false;           // build a sync message for `doc` from the state at dequeue
    bool isRequest = false;         // a request: dropping it counts as the peer declining
    bool last = false;              // close the session once it is sent
    Bytes frame;                    // unless syncDoc: this prebuilt frame
  };

  void enqueue(QueueItem item);
  void enqueueFrame(Bytes frame, std::optional<DocumentId> doc = std::nullopt) {
    enqueue({.doc = std::move(doc), .syncDoc = false, .isRequest = false, .last = false,
             .frame = std::move(frame)});
  }
  void markDirty(const DocumentId& doc);
  void close();

  PeerIdentity identity;
  std::unique_ptr<MessageChannel> channel;
  Side side;
  bool closed = false;
  std::deque<QueueItem> queue;
  std::size_t queuedBytes = 0;  // of the prebuilt frames in `queue`
  std::size_t maxQueuedBytes;
  std::string closeReason;      // why we closed it, if we did
  asio::steady_timer wake;
  std::unordered_map<DocumentId, PeerDocState> docs;
  std::size_t documentsCreated = 0;

  // Quotas: token buckets refilled once a second.
  std::chrono::steady_clock::time_point windowStart = std::chrono::steady_clock::now();
  std::size_t framesInWindow = 0;
  std::size_t bytesInWindow = 0;
};

// A find in progress, here or on behalf of peers that asked us.
struct PendingFind {
  explicit PendingFind(asio::any_io_executor ex) : signal(ex) {}
  std::uint64_t requestId = 0;
  std::uint8_t hops = 0;
  std::unordered_set<PeerId> asked;
  std::unordered_set<PeerId> declined;
  std::optional<PeerId> excluded;  // the peer whose request this forwards: never asked
  // Peers that asked us for it, with their request IDs: answered when it resolves.
  std::vector<std::pair<PeerId, std::uint64_t>> origins;
  std::size_t deciding = 0;  // askPeer calls still waiting for okToRequest
  bool done = false;
  bool found = false;
  asio::steady_timer signal;  // expires at the deadline; cancelled when done
};

class RepoImpl : public std::enable_shared_from_this<RepoImpl> {
 public:
  RepoImpl(asio::any_io_executor ex, RepoOptions options);
  void start();
  void stop();

  // --- documents (repo.cc) ---
  // A DocEntry for `id`, not yet in the table; its actor comes from `random` unless
  // options.document names one.
  std::shared_ptr<DocEntry> makeEntry(const DocumentId& id);
  std::shared_ptr<DocEntry> newEntry(const DocumentId& id);
  std::shared_ptr<DocEntry> findEntry(const DocumentId& id) const;
  // Memory, else storage. Null if neither has it; an Error if storage fails or holds garbage.
  asio::awaitable<Result<std::shared_ptr<DocEntry>>> loadEntry(DocumentId id);
  // After a local edit or applied remote changes: sync to active peers, save, report.
  void onDocumentChanged(const std::shared_ptr<DocEntry>& entry);
  DocHandle handle(std::shared_ptr<DocEntry> entry) const { return DocHandle(std::move(entry)); }
  void broadcastEphemeral(const DocumentId& id, Bytes data);

  // --- storage (repo.cc) ---
  void scheduleSave(const DocumentId& id);
  asio::awaitable<Result<void>> saveDirty();
  asio::awaitable<Result<void>> flush();

  // --- finding (repo.cc) ---
  asio::awaitable<Result<DocHandle>> find(DocumentId id);
  // Starts (or joins) a find for `id` among the peers, excluding `from`.
  // `origin`, if set, is a peer whose request this forwards (with its request ID): it is never
  // asked, and it gets the answer.
  std::shared_ptr<PendingFind> startFind(const DocumentId& id, std::uint64_t requestId,
                                         std::uint8_t hops,
                                         std::optional<std::pair<PeerId, std::uint64_t>> origin);
  // Sends a request for `id` to `session` if okToRequest allows it.
  void ask(const std::shared_ptr<PeerSession>& session, const DocumentId& id);
  asio::awaitable<void> askPeer(std::shared_ptr<PendingFind> pending,
                                std::shared_ptr<PeerSession> session, DocumentId id);
  void settleFind(const DocumentId& id, bool found);
  // Completes when `pending` is settled, settling it as unavailable at its deadline.
  asio::awaitable<void> awaitDeadline(std::shared_ptr<PendingFind> pending, DocumentId id);
  // Heads of `entry` that a peer has told us of and that have neither arrived nor been refused.
  std::vector<ChangeHash> announcedMissing(const DocEntry& entry) const;
  void wakeArrivalWaiters(DocEntry& entry);
  // Repo::whenPeerReady, and the wake-up of its waiters when a session opens or the Repo stops.
  asio::awaitable<Result<PeerId>> whenPeerReady(std::chrono::milliseconds limit,
                                                std::optional<PeerId> peer);
  void wakePeerWaiters();
  void checkFindExhausted(const DocumentId& id);

  // --- sessions (sync/peer_session.cc) ---
  void accept(std::unique_ptr<Stream> stream, Side side);
  static asio::awaitable<void> runConnection(std::shared_ptr<RepoImpl> self,
                                             std::unique_ptr<Stream> stream, Side side);
  static asio::awaitable<void> runWriter(std::shared_ptr<RepoImpl> self,
                                         std::shared_ptr<PeerSession> session);
  asio::awaitable<void> startSyncing(std::shared_ptr<PeerSession> session);
  asio::awaitable<Result<void>> handleFrame(std::shared_ptr<PeerSession> session, Bytes frame);
  asio::awaitable<Result<void>> handleSync(std::shared_ptr<PeerSession> session, SyncMsg msg);
  asio::awaitable<void> handleEphemeral(std::shared_ptr<PeerSession> session, EphemeralMsg msg);
  void handleUnavailable(const std::shared_ptr<PeerSession>& session, const UnavailableMsg& msg);
  void handleRefused(const std::shared_ptr<PeerSession>& session, const RefusedMsg& msg);
  // The next sync frame for `id` to `session`, or nothing if the peer is up to date.
  std::optional<Bytes> buildSync(PeerSession& session, const DocumentId& id);
  bool registerSession(const std::shared_ptr<PeerSession>& session);
  void endSession(const PeerId& peer, const std::string& reason);
  // Closes a session and, if it is the peer's current one, forgets it and reports the peer gone.
  void dropSession(const std::shared_ptr<PeerSession>& session, const std::string& reason);
  asio::awaitable<void> recheckAccess(PeerId peer);
  asio::awaitable<void> announce(DocumentId id);
  std::shared_ptr<PeerSession> session(const PeerId& peer) const;

  // Hooks; a hook that throws counts as deny.
  asio::awaitable<bool> okToAdvertise(const PeerIdentity& peer, const DocumentId& doc);
  asio::awaitable<bool> okToSend(const PeerIdentity& peer, const DocumentId& doc);
  asio::awaitable<bool> okToRequest(const PeerIdentity& peer, const DocumentId& doc);
  // Offers `id` to `session` unasked, where okToAdvertise and okToSend both allow it.
  asio::awaitable<void> offer(std::shared_ptr<PeerSession> session, DocumentId id);
  asio::awaitable<bool> okToReceive(const PeerIdentity& peer, const DocumentId& doc,
                                    const ChangeBatch& batch);

  template <typename Awaitable>
  void spawn(Awaitable&& awaitable);

  asio::any_io_executor executor;
  RepoOptions options;
  PeerId self;
  bool stopped = false;
  RandomPool random;  // request IDs and actors

  std::unordered_map<DocumentId, std::shared_ptr<DocEntry>> documents;
  DocEntry::OpsPool opsPool;  // for every document's received changes
  std::unordered_map<PeerId, std::shared_ptr<PeerSession>> sessions;
  std::vector<std::weak_ptr<asio::steady_timer>> peerWaiters;  // whenPeerReady calls
  std::size_t authenticating = 0;
  std::vector<std::shared_ptr<Stream>> handshaking;  // closed by stop()

  std::unordered_map<DocumentId, std::shared_ptr<PendingFind>> finds;
  std::unordered_set<std::uint64_t> seenRequests;
  std::deque<std::uint64_t> seenRequestOrder;

  std::unordered_set<DocumentId> unsaved;
  bool saveTimerRunning = false;
  bool saving = false;
  asio::steady_timer saveTimer;
  asio::steady_timer saveDone;
};


template <typename Awaitable>
void RepoImpl::spawn(Awaitable&& awaitable) {
  // The root of a spawned task: a bug that escapes it is logged, and only that task ends.
  asio::co_spawn(executor, std::forward<Awaitable>(awaitable), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      detail::logf(LogLevel::Error, "repo: a task failed: {}", x.what());
    }
  });
}

}  // namespace portcullis::detail
