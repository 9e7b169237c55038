// Repo and DocHandle: the document table, storage and finding. The sessions and the sync protocol
// are in sync/peer_session.cc.
#include "portcullis/repo.h"

#include <algorithm>

#include "crdt/document_access.h"
#include "detail/assert.h"
#include "detail/log.h"
#include "repo/repo_impl.h"
#include "wire/change_codec.h"

namespace portcullis {
namespace detail {
namespace {

std::string storageName(const DocumentId& id) { return toHex(id.bytes()); }

std::string hashName(ByteView bytes) { return ChangeHash::of(bytes).toHex(); }

std::string headsName(std::span<const ChangeHash> heads) {
  Bytes all;
  for (const ChangeHash& h : heads) all.insert(all.end(), h.bytes().begin(), h.bytes().end());
  return hashName(all);
}

// Past this many incremental chunks, a document is rewritten as one snapshot.
constexpr std::size_t kCompactAfterChunks = 32;
// Request IDs remembered to drop requests that loop back.
constexpr std::size_t kSeenRequests = 4096;

}  // namespace

// --- DocEntry ------------------------------------------------------------------------------------

DocEntry::DocEntry(DocumentId id, std::weak_ptr<RepoImpl> repo,
                   std::shared_ptr<const ChangeSealer> sealer, const DocumentOptions& options)
    : id(id),
      repo(std::move(repo)),
      sealer(std::move(sealer)),
      maxChangeBytes(options.maxChangeBytes) {
  if (!this->sealer || this->sealer->canOpen()) {
    DocumentOptions withSealer = options;
    withSealer.sealer = this->sealer;
    doc.emplace(std::move(withSealer));
  } else {
    relayGraph.emplace(options.graph);
  }
}

std::vector<Op> DocEntry::OpsPool::take() {
  if (spare_.empty()) return {};
  std::vector<Op> ops = std::move(spare_.back());
  spare_.pop_back();
  return ops;
}

void DocEntry::OpsPool::give(std::vector<Op> ops) {
  if (spare_.size() < kMaxVectors && ops.capacity() <= kMaxOps) spare_.push_back(std::move(ops));
}

Result<void> DocEntry::parse(Bytes payload, Received& out, OpsPool& pool) const {
  if (payload.size() > maxChangeBytes) {
    return Error(Errc::Malformed, "change of " + std::to_string(payload.size()) +
                                      " bytes is over the limit");
  }
  if (sealer) {
    auto env = sealer->parse(std::move(payload));
    if (!env) return std::move(env).error();
    out.envelopes.push_back(std::move(*env));
    return {};
  }
  std::vector<Op> ops = pool.take();
  auto parsed = parseChange(std::move(payload), maxChangeBytes, &ops);
  if (!parsed) return std::move(parsed).error();
  out.envelopes.push_back(std::move(parsed->envelope));
  out.data.push_back(std::move(parsed->data));
  return {};
}

ApplyReport DocEntry::apply(Received received, OpsPool& pool) {
  if (doc && !sealer) {
    ApplyReport report = DocumentAccess::applyParsed(*doc, std::move(received.envelopes), received.data);
    for (ChangeData& d : received.data) pool.give(std::move(d.ops));
    return report;
  }
  if (doc) {
    // Sealed: parse() checked each envelope already; the document opens each change once.
    return DocumentAccess::applySealed(*doc, std::move(received.envelopes));
  }
  ApplyReport report;
  for (ChangeEnvelope& e : received.envelopes) {
    std::vector<const ChangeEnvelope*> applied;
    auto outcome = relayGraph->add(std::move(e), &applied, &report.rejected);
    if (!outcome) {
      report.rejected.push_back(std::move(outcome).error());
    } else if (*outcome == AddOutcome::Duplicate) {
      ++report.duplicates;
    }
    report.applied += applied.size();
  }
  report.queued = relayGraph->pendingCount();
  return report;
}

std::optional<std::vector<ChangeHash>> DocEntry::watchChange() {
  if (subscribers.empty()) return std::nullopt;
  if (doc) DocumentAccess::recordPaths(*doc);
  return graph().heads();
}

void DocEntry::reportChange(std::optional<std::vector<ChangeHash>> before,
                            std::optional<PeerId> peer, bool changed) {
  if (!before) return;
  std::vector<Path> paths;
  if (doc) paths = DocumentAccess::takeChangedPaths(*doc);
  if (!changed) return;
  unreported.push_back(DocumentChange{.headsBefore = std::move(*before),
                                      .headsAfter = graph().heads(),
                                      .paths = std::move(paths),
                                      .peer = std::move(peer)});
  if (reporting) return;  // a change made by a callback: the report under way delivers it next
  reporting = true;
  // A callback that throws (a bug) leaves the entry able to report again.
  struct Reset {
    DocEntry& entry;
    ~Reset() {
      entry.reporting = false;
      entry.unreported.clear();
    }
  } reset{*this};
  while (!unreported.empty()) {
    const DocumentChange change = std::move(unreported.front());
    unreported.pop_front();
    std::vector<std::uint64_t> ids;
    ids.reserve(subscribers.size());
    for (const auto& [id, callback] : subscribers) ids.push_back(id);
    // Looked up again before each call: an earlier callback may have unsubscribed it.
    for (std::uint64_t id : ids) {
      auto it = std::find_if(subscribers.begin(), subscribers.end(),
                             [&](const auto& s) { return s.first == id; });
      if (it == subscribers.end()) continue;
      const std::shared_ptr<const DocHandle::ChangeCallback> callback = it->second;
      (*callback)(change);
    }
  }
}

// --- RepoImpl: documents -----------------------------------------------------------------------

RepoImpl::RepoImpl(asio::any_io_executor ex, RepoOptions opts)
    : executor(ex),
      options(std::move(opts)),
      self(options.peerId ? *options.peerId
                          : options.auth ? options.auth->localPeer().value_or(PeerId::random())
                                         : PeerId::random()),
      saveTimer(ex),
      saveDone(ex) {
  PORTCULLIS_REQUIRE(options.auth != nullptr, "a Repo needs an auth provider");
}

std::shared_ptr<DocEntry> RepoImpl::makeEntry(const DocumentId& id) {
  DocumentOptions documentOptions = options.document;
  if (!documentOptions.actor) documentOptions.actor = options.auth->localActor();
  if (!documentOptions.actor) {
    std::array<std::uint8_t, ActorId::kDefaultSize> actor;
    random.fill(actor);
    documentOptions.actor = *ActorId::fromBytes(actor);
  }
  return std::make_shared<DocEntry>(id, weak_from_this(), options.auth->sealerFor(id),
                                    documentOptions);
}

std::shared_ptr<DocEntry> RepoImpl::newEntry(const DocumentId& id) {
  auto entry = makeEntry(id);
  documents[id] = entry;
  return entry;
}

std::shared_ptr<DocEntry> RepoImpl::findEntry(const DocumentId& id) const {
  auto it = documents.find(id);
  return it == documents.end() ? nullptr : it->second;
}

asio::awaitable<Result<std::shared_ptr<DocEntry>>> RepoImpl::loadEntry(DocumentId id) {
  if (auto entry = findEntry(id)) co_return entry;
  if (!options.storage) co_return std::shared_ptr<DocEntry>();
  auto self = shared_from_this();
  StorageKey prefix{storageName(id)};
  auto chunks = co_await options.storage->loadRange(std::move(prefix));
  if (!chunks) co_return std::move(chunks).error();
  // Another task may have loaded or received it meanwhile.
  if (auto entry = findEntry(id)) co_return entry;
  if (chunks->empty()) co_return std::shared_ptr<DocEntry>();
  auto entry = makeEntry(id);
  for (StorageChunk& chunk : *chunks) {
    auto payloads = parseSnapshot(chunk.data, options.document.maxSnapshotBytes);
    if (!payloads) {
      co_return Error(Errc::Io, "stored chunk of " + id.logName() +
                                    " does not load: " + payloads.error().message());
    }
    DocEntry::Received received;
    for (Bytes& p : *payloads) {
      auto parsed = entry->parse(std::move(p), received, opsPool);
      if (!parsed) {
        co_return Error(Errc::Io, "stored change of " + id.logName() +
                                      " does not load: " + parsed.error().message());
      }
    }
    entry->apply(std::move(received), opsPool);
    if (chunk.key.size() == 3 && chunk.key[1] == "snapshot") {
      entry->snapshotKey = chunk.key;
    } else {
      entry->incrementalKeys.push_back(chunk.key);
    }
  }
  entry->savedCount = entry->graph().size();
  entry->storedHeads = entry->graph().heads();
  documents[id] = entry;
  co_return entry;
}

void RepoImpl::onDocumentChanged(const std::shared_ptr<DocEntry>& entry) {
  for (auto& [peer, s] : sessions) {
    auto it = s->docs.find(entry->id);
    if (it != s->docs.end() && it->second.active) s->markDirty(entry->id);
  }
  scheduleSave(entry->id);
  wakeArrivalWaiters(*entry);
  if (options.events.documentChanged) options.events.documentChanged(entry->id);
}

void RepoImpl::broadcastEphemeral(const DocumentId& id, Bytes data) {
  Bytes frame = encodeMessage(EphemeralMsg{.doc = id, .sender = self, .data = std::move(data)});
  for (auto& [peer, s] : sessions) {
    auto it = s->docs.find(id);
    if (it != s->docs.end() && it->second.active) s->enqueueFrame(frame, id);
  }
}

// --- RepoImpl: storage -------------------------------------------------------------------------

void RepoImpl::scheduleSave(const DocumentId& id) {
  if (!options.storage || stopped) return;
  unsaved.insert(id);
  if (saveTimerRunning) return;
  saveTimerRunning = true;
  saveTimer.expires_after(options.saveDelay);
  spawn([](std::shared_ptr<RepoImpl> self) -> asio::awaitable<void> {
    boost::system::error_code ec;
    co_await self->saveTimer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    self->saveTimerRunning = false;
    if (self->stopped) co_return;
    auto saved = co_await self->saveDirty();
    if (!saved) detail::logf(LogLevel::Error, "repo: saving failed: {}", saved.error().message());
  }(shared_from_this()));
}

asio::awaitable<Result<void>> RepoImpl::saveDirty() {
  auto self = shared_from_this();
  // One writer at a time; a caller that finds one running waits for it and then writes what is
  // still unsaved, so flush() covers everything changed before it was called.
  while (saving) {
    saveDone.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await saveDone.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  saving = true;
  Result<void> outcome;
  while (!unsaved.empty() && outcome) {
    const DocumentId id = *unsaved.begin();
    unsaved.erase(unsaved.begin());
    auto entry = findEntry(id);
    if (!entry) continue;
    const ChangeGraph& graph = entry->graph();
    const std::size_t total = graph.size();
    if (total == entry->savedCount) continue;
    const std::vector<ChangeHash> heads = graph.heads();
    const std::string name = storageName(id);
    if (entry->incrementalKeys.size() >= kCompactAfterChunks) {
      // Compaction: the snapshot is durable before the chunks it replaces are removed, so a
      // crash in between leaves duplicates, which load as one.
      Bytes data = encodeSnapshot(graph);
      StorageKey key{name, "snapshot", headsName(heads)};
      outcome = co_await options.storage->save(key, std::move(data));
      for (std::size_t i = 0; outcome && i < entry->incrementalKeys.size(); ++i) {
        outcome = co_await options.storage->remove(entry->incrementalKeys[i]);
      }
      if (outcome && entry->snapshotKey && *entry->snapshotKey != key) {
        outcome = co_await options.storage->remove(*entry->snapshotKey);
      }
      if (outcome) {
        entry->incrementalKeys.clear();
        entry->snapshotKey = key;
      }
    } else {
      auto all = graph.changes();
      std::vector<const ChangeEnvelope*> fresh(all.begin() + static_cast<std::ptrdiff_t>(entry->savedCount),
                                               all.end());
      Bytes data = encodeSnapshot(fresh);
      StorageKey key{name, "incremental", hashName(data)};
      outcome = co_await options.storage->save(key, std::move(data));
      if (outcome) entry->incrementalKeys.push_back(std::move(key));
    }
    if (!outcome) {
      unsaved.insert(id);
      break;
    }
    entry->savedCount = total;
    entry->storedHeads = heads;
    for (auto& [peer, s] : sessions) {
      auto it = s->docs.find(id);
      if (it != s->docs.end() && it->second.active) s->markDirty(id);
    }
  }
  saving = false;
  saveDone.cancel();
  co_return outcome;
}

asio::awaitable<Result<void>> RepoImpl::flush() {
  if (!options.storage) co_return Result<void>();
  auto self = shared_from_this();
  co_return co_await saveDirty();
}

// --- RepoImpl: finding -------------------------------------------------------------------------

asio::awaitable<void> RepoImpl::awaitDeadline(std::shared_ptr<PendingFind> pending, DocumentId id) {
  auto self = shared_from_this();
  while (!pending->done) {
    boost::system::error_code ec;
    co_await pending->signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && !pending->done) settleFind(id, false);  // the deadline passed
  }
}

asio::awaitable<Result<DocHandle>> RepoImpl::find(DocumentId id) {
  auto self = shared_from_this();
  auto loaded = co_await loadEntry(id);
  if (!loaded) co_return std::move(loaded).error();
  if (auto entry = *loaded) {
    // Changes a peer has announced but not yet sent (all of them, for a document it has just
    // offered us) are waited for, until the deadline, so that find() does not return what a
    // peer has already told us is out of date. Later announcements are not waited for.
    std::vector<ChangeHash> awaited = announcedMissing(*entry);
    const auto deadline = std::chrono::steady_clock::now() + options.findTimeout;
    while (!awaited.empty() && std::chrono::steady_clock::now() < deadline) {
      auto woken = std::make_shared<asio::steady_timer>(executor, deadline);
      entry->arrivalWaiters.push_back(woken);
      boost::system::error_code ec;
      co_await woken->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      const std::vector<ChangeHash> missing = announcedMissing(*entry);
      std::erase_if(awaited, [&](const ChangeHash& h) {
        return std::find(missing.begin(), missing.end(), h) == missing.end();
      });
    }
    co_return handle(entry);
  }
  std::uint64_t requestId = 0;
  random.fill(std::span(reinterpret_cast<std::uint8_t*>(&requestId), sizeof requestId));
  auto pending = startFind(id, requestId, 0, std::nullopt);
  co_await awaitDeadline(pending, id);
  if (pending->found) {
    if (auto entry = findEntry(id)) co_return handle(entry);
  }
  co_return Error(Errc::NotFound, "unavailable: no peer has " + id.logName() + " for us");
}

std::shared_ptr<PendingFind> RepoImpl::startFind(
    const DocumentId& id, std::uint64_t requestId, std::uint8_t hops,
    std::optional<std::pair<PeerId, std::uint64_t>> origin) {
  if (auto it = finds.find(id); it != finds.end()) {
    if (origin) it->second->origins.push_back(std::move(*origin));
    return it->second;
  }
  auto pending = std::make_shared<PendingFind>(executor);
  pending->requestId = requestId;
  pending->hops = hops;
  if (origin) {
    pending->excluded = origin->first;
    pending->origins.push_back(std::move(*origin));
  }
  pending->signal.expires_after(options.findTimeout);
  finds[id] = pending;
  if (seenRequests.insert(requestId).second) {
    seenRequestOrder.push_back(requestId);
    if (seenRequestOrder.size() > kSeenRequests) {
      seenRequests.erase(seenRequestOrder.front());
      seenRequestOrder.pop_front();
    }
  }
  for (auto& [peer, s] : sessions) {
    if (pending->excluded != peer) ask(s, id);
  }
  // A find on a peer's behalf needs its own watch on the deadline; a local find() waits on it
  // itself (and keeps waiting if peers' requests join).
  if (!pending->origins.empty()) spawn(awaitDeadline(pending, id));
  checkFindExhausted(id);
  return pending;
}

void RepoImpl::ask(const std::shared_ptr<PeerSession>& session, const DocumentId& id) {
  auto it = finds.find(id);
  if (it == finds.end()) return;
  // Counted now, so the find does not count as exhausted before the hook has answered.
  ++it->second->deciding;
  spawn(askPeer(it->second, session, id));
}

asio::awaitable<void> RepoImpl::askPeer(std::shared_ptr<PendingFind> pending,
                                        std::shared_ptr<PeerSession> session, DocumentId id) {
  auto self = shared_from_this();
  bool allowed = false;
  if (!session->closed) allowed = co_await okToRequest(session->identity, id);
  --pending->deciding;
  if (allowed && !pending->done && !session->closed) {
    pending->asked.insert(session->identity.peer);
    SyncMsg request{.doc = id, .heads = {}, .need = {}, .have = {}, .changes = {},
                    .storedHeads = {}, .requestId = pending->requestId,
                    .hops = pending->hops, .isRequest = true};
    session->enqueue({.doc = id, .syncDoc = false, .isRequest = true, .last = false,
                      .frame = encodeMessage(request)});
  }
  checkFindExhausted(id);
}

std::vector<ChangeHash> RepoImpl::announcedMissing(const DocEntry& entry) const {
  std::vector<ChangeHash> out;
  const ChangeGraph& graph = entry.graph();
  for (const auto& [peer, s] : sessions) {
    auto it = s->docs.find(entry.id);
    if (it == s->docs.end() || !it->second.heardFrom) continue;
    for (const ChangeHash& h : it->second.theirHeads) {
      if (!graph.contains(h) && !it->second.refused.contains(h)) out.push_back(h);
    }
  }
  return out;
}

void RepoImpl::wakeArrivalWaiters(DocEntry& entry) {
  for (auto& waiter : entry.arrivalWaiters) {
    if (auto timer = waiter.lock()) timer->cancel();
  }
  entry.arrivalWaiters.clear();
}

asio::awaitable<Result<PeerId>> RepoImpl::whenPeerReady(std::chrono::milliseconds limit,
                                                        std::optional<PeerId> peer) {
  auto self = shared_from_this();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    if (peer && sessions.contains(*peer)) co_return *peer;
    if (!peer && !sessions.empty()) {
      co_return std::min_element(sessions.begin(), sessions.end(),
                                 [](const auto& a, const auto& b) { return a.first < b.first; })
          ->first;
    }
    if (stopped) co_return Error(Errc::Disconnected, "the repo has stopped");
    if (options.network.empty()) {
      co_return Error(Errc::Disconnected, "the repo has no network adapter");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      co_return Error(Errc::Disconnected,
                      "timed out: no peer" + (peer ? " " + peer->str() : std::string()) +
                          " ready within " + std::to_string(limit.count()) + " ms");
    }
    std::erase_if(peerWaiters, [](const auto& w) { return w.expired(); });
    auto woken = std::make_shared<asio::steady_timer>(executor, deadline);
    peerWaiters.push_back(woken);
    boost::system::error_code ec;
    co_await woken->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void RepoImpl::wakePeerWaiters() {
  for (auto& waiter : peerWaiters) {
    if (auto timer = waiter.lock()) timer->cancel();
  }
  peerWaiters.clear();
}

void RepoImpl::checkFindExhausted(const DocumentId& id) {
  auto it = finds.find(id);
  if (it == finds.end()) return;
  const PendingFind& pf = *it->second;
  if (pf.done || pf.deciding > 0 || authenticating > 0) return;
  for (const PeerId& peer : pf.asked) {
    if (!pf.declined.contains(peer) && sessions.contains(peer)) return;
  }
  settleFind(id, false);
}

void RepoImpl::settleFind(const DocumentId& id, bool found) {
  auto it = finds.find(id);
  if (it == finds.end()) return;
  auto pending = it->second;
  finds.erase(it);
  pending->done = true;
  pending->found = found;
  pending->signal.cancel();
  for (const auto& [peer, requestId] : pending->origins) {
    auto s = session(peer);
    if (!s) continue;
    if (found) {
      s->docs[id].active = true;
      s->markDirty(id);
    } else {
      s->enqueueFrame(encodeMessage(UnavailableMsg{.doc = id, .requestId = requestId}));
    }
  }
}

}  // namespace detail

// --- DocHandle -------------------------------------------------------------------------------------

const DocumentId& DocHandle::id() const { return entry_->id; }
bool DocHandle::isOpen() const { return entry_->doc.has_value(); }

const Document& DocHandle::doc() const {
  PORTCULLIS_REQUIRE(entry_->doc, "document {} is relayed blind here", entry_->id.logName());
  return *entry_->doc;
}

std::vector<ChangeHash> DocHandle::heads() const { return entry_->graph().heads(); }
std::string DocHandle::toJson() const { return doc().toJson(); }

Result<std::optional<ChangeHash>> DocHandle::change(
    const std::function<Result<void>(Transaction&)>& edit, CommitOptions options) {
  PORTCULLIS_REQUIRE(entry_->doc, "document {} is relayed blind here", entry_->id.logName());
  auto before = entry_->watchChange();
  auto tx = entry_->doc->transaction();
  auto edited = edit(tx);
  if (!edited) {
    tx.rollback();
    entry_->reportChange(std::move(before), std::nullopt, false);
    return edited.error();
  }
  auto hash = tx.commit(std::move(options));
  if (hash) {
    if (auto repo = entry_->repo.lock()) repo->onDocumentChanged(entry_);
  }
  // Held: a callback may drop the last other handle to the entry.
  auto entry = entry_;
  entry->reportChange(std::move(before), std::nullopt, hash.has_value());
  return hash;
}

ChangeSubscription DocHandle::subscribe(ChangeCallback callback) {
  PORTCULLIS_REQUIRE(callback != nullptr, "a subscription needs a callback");
  const std::uint64_t id = ++entry_->lastSubscriber;
  entry_->subscribers.emplace_back(id, std::make_shared<const ChangeCallback>(std::move(callback)));
  return ChangeSubscription(entry_, id);
}

// --- ChangeSubscription ------------------------------------------------------------------------

ChangeSubscription::ChangeSubscription(ChangeSubscription&& other) noexcept
    : entry_(std::move(other.entry_)), id_(std::exchange(other.id_, 0)) {}

ChangeSubscription& ChangeSubscription::operator=(ChangeSubscription&& other) noexcept {
  if (this != &other) {
    reset();
    entry_ = std::move(other.entry_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

ChangeSubscription::~ChangeSubscription() { reset(); }

void ChangeSubscription::reset() {
  if (auto entry = entry_.lock()) {
    std::erase_if(entry->subscribers, [&](const auto& s) { return s.first == id_; });
  }
  entry_.reset();
  id_ = 0;
}

void DocHandle::broadcast(Bytes data) {
  if (auto repo = entry_->repo.lock()) repo->broadcastEphemeral(entry_->id, std::move(data));
}

// --- Repo ------------------------------------------------------------------------------------------

Repo::Repo(asio::any_io_executor executor, RepoOptions options)
    : impl_(std::make_shared<detail::RepoImpl>(std::move(executor), std::move(options))) {
  impl_->start();
}

Repo::~Repo() { impl_->stop(); }

const PeerId& Repo::peerId() const { return impl_->self; }

DocHandle Repo::create() {
  auto entry = impl_->newEntry(DocumentId::random());
  impl_->options.auth->documentCreated(entry->id);
  impl_->spawn(impl_->announce(entry->id));
  return impl_->handle(std::move(entry));
}

std::optional<DocHandle> Repo::findLocal(const DocumentId& id) const {
  auto entry = impl_->findEntry(id);
  if (!entry) return std::nullopt;
  return impl_->handle(std::move(entry));
}

asio::awaitable<Result<DocHandle>> Repo::find(DocumentId id) {
  auto impl = impl_;
  co_return co_await impl->find(id);
}

asio::awaitable<Result<void>> Repo::remove(DocumentId id) {
  auto impl = impl_;
  impl->documents.erase(id);
  impl->unsaved.erase(id);
  for (auto& [peer, s] : impl->sessions) s->docs.erase(id);
  if (!impl->options.storage) co_return Result<void>();
  StorageKey prefix{detail::storageName(id)};
  co_return co_await impl->options.storage->removeRange(std::move(prefix));
}

std::vector<DocumentId> Repo::documents() const {
  std::vector<DocumentId> out;
  for (const auto& [id, entry] : impl_->documents) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

asio::awaitable<Result<PeerId>> Repo::whenPeerReady(std::chrono::milliseconds deadline,
                                                    std::optional<PeerId> peer) {
  auto impl = impl_;
  co_return co_await impl->whenPeerReady(deadline, std::move(peer));
}

std::vector<PeerId> Repo::peers() const {
  std::vector<PeerId> out;
  for (const auto& [peer, s] : impl_->sessions) out.push_back(peer);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<ChangeHash> Repo::peerStoredHeads(const PeerId& peer, const DocumentId& doc) const {
  auto s = impl_->session(peer);
  if (!s) return {};
  auto it = s->docs.find(doc);
  return it == s->docs.end() ? std::vector<ChangeHash>() : it->second.theirStored;
}

std::vector<ChangeHash> Repo::peerRefused(const PeerId& peer, const DocumentId& doc) const {
  auto s = impl_->session(peer);
  if (!s) return {};
  auto it = s->docs.find(doc);
  return it == s->docs.end() ? std::vector<ChangeHash>() : it->second.refusedByPeer.sorted();
}

asio::awaitable<Result<void>> Repo::flush() {
  auto impl = impl_;
  co_return co_await impl->flush();
}

asio::awaitable<Result<void>> Repo::shutdown() {
  auto impl = impl_;
  auto flushed = co_await impl->flush();
  // Says goodbye, then gives the writers a bounded moment to send it before closing everything.
  const Bytes leave = detail::encodeMessage(detail::LeaveMsg{});
  for (auto& [peer, s] : impl->sessions) {
    s->enqueue({.doc = std::nullopt, .syncDoc = false, .isRequest = false, .last = true,
                .frame = leave});
  }
  asio::steady_timer pause(impl->executor);
  for (int i = 0; i < 100 && !impl->sessions.empty(); ++i) {
    pause.expires_after(std::chrono::milliseconds(10));
    boost::system::error_code ec;
    co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  impl->stop();
  co_return flushed;
}

}  // namespace portcullis
