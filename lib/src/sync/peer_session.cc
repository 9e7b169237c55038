// Peer sessions and the sync protocol (architecture §2, §5): handshake under a deadline, hello, one
// session per peer, the writer that re-checks queued frames, and the handling of every frame.
#include <algorithm>

#include "detail/log.h"
#include "repo/repo_impl.h"

namespace portcullis::detail {
namespace {

using Clock = std::chrono::steady_clock;

// Room kept in a frame for everything but the change payloads.
constexpr std::size_t kFrameOverhead = 64u << 10;
// `have` samples: heads first, then ancestors at doubling distances in arrival order.
constexpr std::size_t kMaxHaveSamples = 32;

asio::awaitable<void> watchdog(std::shared_ptr<asio::steady_timer> timer,
                               std::shared_ptr<Stream> stream) {
  boost::system::error_code ec;
  co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) stream->close();
}

void sortUnique(std::vector<ChangeHash>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

std::vector<ChangeHash> haveSamples(const ChangeGraph& graph) {
  std::vector<ChangeHash> out = graph.heads();
  const std::size_t size = graph.size();
  for (std::size_t back = 1; back <= size && out.size() < kMaxHaveSamples; back *= 2) {
    out.push_back(graph.changeAt(size - back).hash);
  }
  sortUnique(out);
  return out;
}

// The heads of past(shared) ∪ sent, where `sent` is a causally closed prefix of what followed.
std::vector<ChangeHash> frontier(const ChangeGraph& graph, const std::vector<ChangeHash>& shared,
                                 const std::vector<const ChangeEnvelope*>& sent) {
  // The graph positions of every dep of what was sent (all in the graph), sorted: small keys
  // to sort and search instead of hashes.
  std::vector<std::uint32_t> covered;
  covered.reserve(sent.size());
  for (const ChangeEnvelope* e : sent) {
    for (const ChangeHash& d : e->deps) {
      if (const auto pos = graph.positionOf(d)) covered.push_back(static_cast<std::uint32_t>(*pos));
    }
  }
  std::sort(covered.begin(), covered.end());
  auto isCovered = [&](const ChangeHash& h) {
    const auto pos = graph.positionOf(h);
    return pos && std::binary_search(covered.begin(), covered.end(),
                                     static_cast<std::uint32_t>(*pos));
  };
  std::vector<ChangeHash> out;
  for (const ChangeHash& h : shared) {
    if (!isCovered(h)) out.push_back(h);
  }
  for (const ChangeEnvelope* e : sent) {
    if (!isCovered(e->hash)) out.push_back(e->hash);
  }
  sortUnique(out);
  return out;
}

// Brings `shared` up to `sharedPrefix` (see PeerDocState), once the prefix no longer says what
// both sides have. Deferred to then, a history sent in many frames is walked once, not per frame.
void catchUpShared(const ChangeGraph& graph, PeerDocState& st) {
  if (!st.sharedPrefix || st.sharedAt == *st.sharedPrefix) return;
  std::vector<const ChangeEnvelope*> sent;
  sent.reserve(*st.sharedPrefix - st.sharedAt);
  for (std::size_t pos = st.sharedAt; pos < *st.sharedPrefix; ++pos) {
    sent.push_back(&graph.changeAt(pos));
  }
  st.shared = frontier(graph, st.shared, sent);
  st.sharedAt = *st.sharedPrefix;
}

// Records that the peer holds `theirs` (the hashes of changes it has just sent us, ascending),
// and so their pasts, once they are in the graph: what a peer sent is never sent back to it.
// `before` is the graph's size before they were applied.
void noteHeldByPeer(const ChangeGraph& graph, PeerDocState& st, std::size_t before,
                    const std::vector<ChangeHash>& theirs) {
  if (st.sharedPrefix && *st.sharedPrefix == before) {
    // The common case: the peer had all we had, and all that was added since came from it. The
    // prefix then moves on, and nothing is walked or listed.
    bool allTheirs = true;
    for (std::size_t pos = before; allTheirs && pos < graph.size(); ++pos) {
      allTheirs = std::binary_search(theirs.begin(), theirs.end(), graph.changeAt(pos).hash);
    }
    if (allTheirs) {
      *st.sharedPrefix = graph.size();
      return;
    }
  }
  std::vector<const ChangeEnvelope*> held;
  for (const ChangeHash& h : theirs) {
    const auto pos = graph.positionOf(h);
    if (!pos || (st.sharedPrefix && *pos < *st.sharedPrefix)) continue;  // refused, queued, or known
    held.push_back(&graph.changeAt(*pos));
  }
  if (held.empty()) return;
  catchUpShared(graph, st);
  st.shared = frontier(graph, st.shared, held);
  st.sharedPrefix.reset();
}

// The answer to a refused batch: the changes of it that are not here (only those are lost to
// the sender), the last kMaxRefusedHashes of them by the frame's causal order; nothing if
// every one of them is here anyway.
std::optional<RefusedMsg> refusal(const DocumentId& id, const ChangeGraph& graph,
                                  const std::vector<ChangeEnvelope>& batch) {
  RefusedMsg out{.doc = id, .changes = {}, .count = 0};
  for (auto e = batch.rbegin(); e != batch.rend(); ++e) {
    if (graph.contains(e->hash)) continue;
    ++out.count;
    if (out.changes.size() < kMaxRefusedHashes) out.changes.push_back(e->hash);
  }
  if (out.count == 0) return std::nullopt;
  sortUnique(out.changes);
  return out;
}

}  // namespace

// --- PeerSession -------------------------------------------------------------------------------

void PeerSession::enqueue(QueueItem item) {
  if (closed) return;
  queuedBytes += item.frame.size();
  if (queuedBytes > maxQueuedBytes) {
    closeReason = "its send queue is over the bound (it does not read)";
    close();
    return;
  }
  queue.push_back(std::move(item));
  wake.cancel();
}

void PeerSession::markDirty(const DocumentId& doc) {
  // A flag in the document's state rather than a set of dirty documents: no node to allocate
  // and free, nor another table to look up, per sync frame.
  auto it = docs.find(doc);
  if (closed || it == docs.end() || it->second.queued) return;
  // An unanswered offer has nothing to send (buildSync): no queue item, no okToSend at dequeue.
  if (it->second.sentAny && !it->second.heardFrom) return;
  it->second.queued = true;
  enqueue({.doc = doc, .syncDoc = true, .isRequest = false, .last = false, .frame = {}});
}

void PeerSession::close() {
  if (closed) return;
  closed = true;
  queue.clear();
  queuedBytes = 0;
  channel->close();
  wake.cancel();
}

// --- start and stop ----------------------------------------------------------------------------

void RepoImpl::start() {
  std::weak_ptr<RepoImpl> weak = weak_from_this();
  options.auth->attach(RepoCallbacks{
      .sendProviderMessage =
          [weak](const PeerId& peer, Bytes message) {
            auto self = weak.lock();
            if (!self) return;
            if (auto s = self->session(peer)) {
              s->enqueueFrame(encodeMessage(ProviderMsg{.data = std::move(message)}));
            }
          },
      .broadcastProviderMessage =
          [weak](Bytes message) {
            auto self = weak.lock();
            if (!self) return;
            const Bytes frame = encodeMessage(ProviderMsg{.data = std::move(message)});
            for (auto& [peer, s] : self->sessions) s->enqueueFrame(frame);
          },
      .accessChanged =
          [weak](const PeerId& peer) {
            if (auto self = weak.lock()) self->spawn(self->recheckAccess(peer));
          },
      .endSession =
          [weak](const PeerId& peer, std::string reason) {
            if (auto self = weak.lock()) self->endSession(peer, reason);
          },
  });
  for (auto& adapter : options.network) {
    adapter->start([weak](std::unique_ptr<Stream> stream, Side side) {
      if (auto self = weak.lock()) self->accept(std::move(stream), side);
    });
  }
}

void RepoImpl::stop() {
  if (stopped) return;
  stopped = true;
  for (auto& adapter : options.network) adapter->stop();
  for (auto& [peer, s] : sessions) s->close();
  for (auto& stream : handshaking) stream->close();
  std::vector<DocumentId> pending;
  for (auto& [id, pf] : finds) pending.push_back(id);
  for (const DocumentId& id : pending) settleFind(id, false);
  saveTimer.cancel();
  wakePeerWaiters();
}

std::shared_ptr<PeerSession> RepoImpl::session(const PeerId& peer) const {
  auto it = sessions.find(peer);
  return it == sessions.end() ? nullptr : it->second;
}

// --- hooks -------------------------------------------------------------------------------------

namespace {

// One hook's answer, holding the provider until it is in. A hook that throws could not decide,
// and that is a no (architecture §3).
asio::awaitable<bool> decided(const char* hook,
                              [[maybe_unused]] std::shared_ptr<AuthProvider> auth,
                              asio::awaitable<bool> answer) {
  try {
    co_return co_await std::move(answer);
  } catch (const std::exception& e) {
    detail::logf(LogLevel::Warn, "auth: {} threw, counted as deny: {}", hook, e.what());
  }
  co_return false;
}

}  // namespace

// Not coroutines themselves: each hands the provider's awaitable to decided(), one coroutine
// frame fewer per hook on the sync path.
asio::awaitable<bool> RepoImpl::okToAdvertise(const PeerIdentity& peer, const DocumentId& doc) {
  return decided("okToAdvertise", options.auth, options.auth->okToAdvertise(peer, doc));
}

asio::awaitable<bool> RepoImpl::okToSend(const PeerIdentity& peer, const DocumentId& doc) {
  return decided("okToSend", options.auth, options.auth->okToSend(peer, doc));
}

asio::awaitable<bool> RepoImpl::okToRequest(const PeerIdentity& peer, const DocumentId& doc) {
  return decided("okToRequest", options.auth, options.auth->okToRequest(peer, doc));
}

asio::awaitable<void> RepoImpl::offer(std::shared_ptr<PeerSession> session, DocumentId id) {
  if (session->closed) co_return;
  const bool advertise = co_await okToAdvertise(session->identity, id);
  if (!advertise || session->closed) co_return;
  const bool send = co_await okToSend(session->identity, id);
  if (send && !session->closed && findEntry(id)) {
    session->docs[id].active = true;
    session->markDirty(id);
  }
}

asio::awaitable<bool> RepoImpl::okToReceive(const PeerIdentity& peer, const DocumentId& doc,
                                            const ChangeBatch& batch) {
  return decided("okToReceive", options.auth, options.auth->okToReceive(peer, doc, batch));
}

// --- connections -------------------------------------------------------------------------------

void RepoImpl::accept(std::unique_ptr<Stream> stream, Side side) {
  if (stopped) return;
  spawn(runConnection(shared_from_this(), std::move(stream), side));
}

namespace {

// Counts a connection as authenticating until it has a session or is gone; finds wait for it.
class HandshakeGuard {
 public:
  HandshakeGuard(RepoImpl& repo, std::shared_ptr<Stream> stream)
      : repo_(repo), stream_(std::move(stream)) {
    ++repo_.authenticating;
    repo_.handshaking.push_back(stream_);
  }
  ~HandshakeGuard() { finish(); }
  void finish() {
    if (done_) return;
    done_ = true;
    --repo_.authenticating;
    std::erase(repo_.handshaking, stream_);
    std::vector<DocumentId> pending;
    for (auto& [id, pf] : repo_.finds) pending.push_back(id);
    for (const DocumentId& id : pending) repo_.checkFindExhausted(id);
  }

 private:
  RepoImpl& repo_;
  std::shared_ptr<Stream> stream_;
  bool done_ = false;
};

}  // namespace

asio::awaitable<void> RepoImpl::runConnection(std::shared_ptr<RepoImpl> self,
                                              std::unique_ptr<Stream> stream, Side side) {
  std::shared_ptr<Stream> raw(std::move(stream));
  const std::string remote = raw->remoteAddress();
  HandshakeGuard guard(*self, raw);
  auto deadline = std::make_shared<asio::steady_timer>(self->executor,
                                                       self->options.handshakeTimeout);
  self->spawn(watchdog(deadline, raw));

  auto refuse = [&](const Error& e) {
    raw->close();
    detail::logf(LogLevel::Info, "repo: refused {}: {}", remote, e.message());
    if (self->options.events.peerRefused) self->options.events.peerRefused(remote, e);
  };

  Result<Session> auth = Error(Errc::Denied, "the auth provider failed");
  auto provider = self->options.auth;
  try {
    auto guarded = std::make_unique<SharedStream>(raw);
    auth = co_await provider->authenticate(std::move(guarded), side);
  } catch (const std::exception& e) {
    detail::logf(LogLevel::Warn, "auth: authenticate threw, counted as deny: {}", e.what());
  }
  if (!auth) {
    deadline->cancel();
    refuse(auth.error());
    co_return;
  }
  auto session = std::make_shared<PeerSession>(self->executor, std::move(auth->identity),
                                               std::move(auth->channel), side,
                                               self->options.quotas.sendQueueBytes);
  // Hello, both ways, still under the handshake deadline.
  const PeerId& peer = session->identity.peer;
  // (No temporaries with destructors inside co_await expressions, and no co_await inside
  // conditional expressions: g++ 12 destroys such temporaries twice.)
  const Bytes helloFrame =
      encodeMessage(HelloMsg{.protocolVersion = kProtocolVersion, .peerId = self->self,
                             .storageId = {}, .isEphemeral = !self->options.storage});
  auto sent = co_await session->channel->send(helloFrame);
  Result<Bytes> frame = Error(Errc::Disconnected, "no hello");
  if (sent) {
    frame = co_await session->channel->receive();
  } else {
    frame = sent.error();
  }
  deadline->cancel();
  if (!frame) {
    session->channel->close();
    refuse(frame.error());
    co_return;
  }
  auto hello = decodeMessage(*frame);
  const HelloMsg* h = hello ? std::get_if<HelloMsg>(&*hello) : nullptr;
  if (!h || h->protocolVersion != kProtocolVersion || h->peerId != peer) {
    session->channel->close();
    refuse(Error(!h ? Errc::Malformed : h->protocolVersion != kProtocolVersion
                                            ? Errc::Unsupported
                                            : Errc::Denied,
                 !h ? "the first frame is not a hello"
                 : h->protocolVersion != kProtocolVersion
                     ? "protocol version " + std::to_string(h->protocolVersion)
                     : "hello names another peer than the one authenticated"));
    co_return;
  }
  if (self->stopped || !self->registerSession(session)) {
    session->channel->close();
    co_return;
  }
  // Pending finds ask this peer too; counted before the handshake stops counting, so no find
  // gives up in between.
  std::vector<DocumentId> pendingFinds;
  for (auto& [id, pf] : self->finds) {
    if (pf->excluded != peer) pendingFinds.push_back(id);
  }
  for (const DocumentId& id : pendingFinds) self->ask(session, id);
  guard.finish();
  detail::logf(LogLevel::Info, "repo: {} authenticated by '{}' ({})", peer.str(),
               session->identity.provider, remote);
  if (self->options.events.peerAuthenticated) self->options.events.peerAuthenticated(session->identity);
  self->wakePeerWaiters();
  self->spawn(runWriter(self, session));
  self->spawn(self->startSyncing(session));

  std::string reason = "disconnected";
  while (!session->closed) {
    auto in = co_await session->channel->receive();
    if (!in) {
      if (in.error().code() != Errc::Disconnected) reason = in.error().message();
      break;
    }
    // Quotas, per one-second window.
    const auto now = Clock::now();
    if (now - session->windowStart >= std::chrono::seconds(1)) {
      session->windowStart = now;
      session->framesInWindow = 0;
      session->bytesInWindow = 0;
    }
    ++session->framesInWindow;
    session->bytesInWindow += in->size();
    if (session->framesInWindow > self->options.quotas.framesPerSecond ||
        session->bytesInWindow > self->options.quotas.bytesPerSecond) {
      reason = "over its frame or byte quota";
      break;
    }
    auto handled = co_await self->handleFrame(session, std::move(*in));
    if (!handled) {
      reason = handled.error().message();
      break;
    }
  }
  self->dropSession(session, session->closeReason.empty() ? reason : session->closeReason);
}

void RepoImpl::dropSession(const std::shared_ptr<PeerSession>& session, const std::string& reason) {
  session->close();
  const PeerId peer = session->identity.peer;
  auto it = sessions.find(peer);
  if (it == sessions.end() || it->second != session) return;
  sessions.erase(it);
  detail::logf(LogLevel::Info, "repo: {} gone: {}", peer.str(), reason);
  if (options.events.peerGone) options.events.peerGone(peer, reason);
  // What it announced will not come: find()s waiting for it stop waiting.
  for (const auto& [id, state] : session->docs) {
    if (auto entry = findEntry(id)) wakeArrivalWaiters(*entry);
  }
  std::vector<DocumentId> pending;
  for (auto& [id, pf] : finds) pending.push_back(id);
  for (const DocumentId& id : pending) {
    if (auto f = finds.find(id); f != finds.end()) f->second->declined.insert(peer);
    checkFindExhausted(id);
  }
}

bool RepoImpl::registerSession(const std::shared_ptr<PeerSession>& fresh) {
  const PeerId& peer = fresh->identity.peer;
  auto existing = session(peer);
  if (!existing) {
    sessions[peer] = fresh;
    return true;
  }
  // Both ends must keep the same connection: the one dialed by the smaller PeerId. Between two
  // connections dialed by the same side, the newer wins (the older is likely dead).
  auto dialer = [&](const PeerSession& s) { return s.side == Side::Dialer ? self : peer; };
  const PeerId winner = std::min(self, peer);
  if (dialer(*fresh) == dialer(*existing) || dialer(*fresh) == winner) {
    existing->close();
    sessions[peer] = fresh;
    return true;
  }
  return false;
}

void RepoImpl::endSession(const PeerId& peer, const std::string& reason) {
  if (auto s = session(peer)) dropSession(s, "session ended by the auth provider: " + reason);
}

asio::awaitable<void> RepoImpl::runWriter(std::shared_ptr<RepoImpl> self,
                                          std::shared_ptr<PeerSession> session) {
  // What a backlog may put into one sendMany: the channel then makes few stream writes of it.
  constexpr std::size_t kBatchBytes = 64 * 1024;
  std::vector<Bytes> batch;
  std::vector<ByteView> views;
  while (!session->closed) {
    if (session->queue.empty()) {
      session->wake.expires_at(asio::steady_timer::time_point::max());
      boost::system::error_code ec;
      co_await session->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    batch.clear();
    std::size_t batchBytes = 0;
    bool closeAfter = false;
    while (!session->queue.empty() && batchBytes < kBatchBytes && !closeAfter) {
      PeerSession::QueueItem item = std::move(session->queue.front());
      session->queue.pop_front();
      session->queuedBytes -= item.frame.size();
      if (item.syncDoc) {
        auto it = session->docs.find(*item.doc);
        if (it != session->docs.end()) it->second.queued = false;
      }
      // Re-checked as it leaves the queue: access may have changed since it was queued.
      bool allowed = true;
      if (item.doc && item.isRequest) {
        allowed = co_await self->okToRequest(session->identity, *item.doc);
      } else if (item.doc) {
        allowed = co_await self->okToSend(session->identity, *item.doc);
      }
      if (!allowed) {
        if (item.isRequest) {
          if (auto f = self->finds.find(*item.doc); f != self->finds.end()) {
            f->second->declined.insert(session->identity.peer);
            self->checkFindExhausted(*item.doc);
          }
        }
        continue;
      }
      if (session->closed) break;
      if (item.syncDoc) {
        auto frame = self->buildSync(*session, *item.doc);
        if (!frame) continue;
        item.frame = std::move(*frame);
      }
      batchBytes += item.frame.size();
      closeAfter = item.last;
      batch.push_back(std::move(item.frame));
    }
    // Nothing goes out once the session is closed (endSession included), not even the batch.
    if (session->closed) break;
    if (batch.empty()) continue;
    views.assign(batch.begin(), batch.end());
    auto sent = co_await session->channel->sendMany(views);
    if (!sent) {
      session->close();
      break;
    }
    if (closeAfter) session->close();
  }
}

asio::awaitable<void> RepoImpl::startSyncing(std::shared_ptr<PeerSession> session) {
  auto self = shared_from_this();
  std::vector<DocumentId> ids;
  for (auto& [id, entry] : documents) ids.push_back(id);
  for (const DocumentId& id : ids) {
    auto offered = offer(session, id);  // named: no temporary lives across the co_await
    co_await std::move(offered);
  }
}

asio::awaitable<void> RepoImpl::announce(DocumentId id) {
  auto self = shared_from_this();
  std::vector<std::shared_ptr<PeerSession>> all;
  for (auto& [peer, s] : sessions) all.push_back(s);
  for (auto& s : all) {
    auto offered = offer(s, id);
    co_await std::move(offered);
  }
}

asio::awaitable<void> RepoImpl::recheckAccess(PeerId peer) {
  auto self = shared_from_this();
  std::vector<DocumentId> ids;
  for (auto& [id, entry] : documents) ids.push_back(id);
  for (const DocumentId& id : ids) {
    auto s = session(peer);
    if (!s) co_return;
    const bool allowed = co_await okToSend(s->identity, id);
    s = session(peer);
    if (!s || !findEntry(id)) continue;
    auto it = s->docs.find(id);
    if (!allowed) {
      if (it != s->docs.end()) it->second.active = false;
    } else if (it != s->docs.end()) {
      it->second.active = true;
      if (!it->second.heardFrom) it->second.sentAny = false;  // an unanswered offer goes again
      s->markDirty(id);
    } else if (co_await okToAdvertise(s->identity, id)) {
      if (auto again = session(peer)) {
        again->docs[id].active = true;
        again->markDirty(id);
      }
    }
  }
}

// --- frames ------------------------------------------------------------------------------------

asio::awaitable<Result<void>> RepoImpl::handleFrame(std::shared_ptr<PeerSession> session,
                                                    Bytes frame) {
  auto self = shared_from_this();
  auto decoded = decodeMessage(frame);
  if (!decoded) co_return std::move(decoded).error();
  SyncMessage& msg = *decoded;
  if (auto* m = std::get_if<SyncMsg>(&msg)) co_return co_await handleSync(session, std::move(*m));
  if (auto* m = std::get_if<UnavailableMsg>(&msg)) {
    handleUnavailable(session, *m);
  } else if (auto* m = std::get_if<RefusedMsg>(&msg)) {
    handleRefused(session, *m);
  } else if (auto* m = std::get_if<EphemeralMsg>(&msg)) {
    co_await handleEphemeral(session, std::move(*m));
  } else if (auto* m = std::get_if<ProviderMsg>(&msg)) {
    auto auth = options.auth;
    co_await auth->onProviderMessage(session->identity, std::move(m->data));
  } else if (std::holds_alternative<LeaveMsg>(msg)) {
    co_return Error(Errc::Disconnected, "the peer left");
  } else if (std::holds_alternative<HelloMsg>(msg)) {
    co_return Error(Errc::Malformed, "a second hello");
  }
  co_return Result<void>();
}

asio::awaitable<Result<void>> RepoImpl::handleSync(std::shared_ptr<PeerSession> session,
                                                   SyncMsg msg) {
  auto self = shared_from_this();
  const DocumentId id = msg.doc;
  const PeerId peer = session->identity.peer;
  // okToSend comes before anything looks at whether the document exists, on this one path, so
  // that a forbidden and a missing document cost the same and answer the same (architecture §9).
  const bool allowed = co_await okToSend(session->identity, id);
  if (session->closed) co_return Result<void>();
  auto unavailable = [&] {
    session->enqueueFrame(encodeMessage(UnavailableMsg{.doc = id, .requestId = msg.requestId}));
  };
  if (!allowed) {
    if (msg.isRequest) unavailable();
    if (auto it = session->docs.find(id); it != session->docs.end()) it->second.active = false;
    if (!msg.changes.empty() && options.events.changesRefused) {
      options.events.changesRefused(peer, id, msg.changes.size());
    }
    co_return Result<void>();
  }
  auto loaded = co_await loadEntry(id);
  if (!loaded) {
    detail::logf(LogLevel::Error, "repo: {}: {}", id.logName(), loaded.error().message());
    if (msg.isRequest) unavailable();
    co_return Result<void>();
  }
  std::shared_ptr<DocEntry> entry = *loaded;
  if (!entry) {
    if (msg.isRequest) {
      // We lack it: ask our other peers on the requester's behalf, unless the request has looped
      // back or gone too far.
      if (seenRequests.contains(msg.requestId) || msg.hops + 1 > kMaxHops || session->closed) {
        unavailable();
        co_return Result<void>();
      }
      PeerDocState& st = session->docs[id];
      st.heardFrom = true;
      st.theirHeads = msg.heads;
      startFind(id, msg.requestId, static_cast<std::uint8_t>(msg.hops + 1),
                std::make_pair(peer, msg.requestId));
      co_return Result<void>();
    }
    if (!finds.contains(id) &&
        ++session->documentsCreated > options.quotas.documentsCreated) {
      co_return Error(Errc::Overloaded, "over its quota of new documents");
    }
    entry = newEntry(id);
    // A document new here is offered onward, as a local one would be. The sender syncs it
    // already (below), so with no other peer there is no one to offer it to.
    if (std::any_of(sessions.begin(), sessions.end(),
                    [&](const auto& other) { return other.second != session; })) {
      spawn(announce(id));
    }
  }

  {
    PeerDocState& st = session->docs[id];
    st.active = true;
    st.heardFrom = true;
    st.theirHeads = msg.heads;
    const ChangeGraph& graph = entry->graph();
    for (const auto* list : {&msg.heads, &msg.have}) {
      for (const ChangeHash& h : *list) {
        const auto pos = graph.positionOf(h);
        if (!pos || (st.sharedPrefix && *pos < *st.sharedPrefix)) continue;  // nothing new
        catchUpShared(graph, st);
        st.shared.push_back(h);
        st.sharedPrefix.reset();
      }
    }
    sortUnique(st.shared);
    if (!msg.storedHeads.empty() && msg.storedHeads != st.theirStored) {
      st.theirStored = msg.storedHeads;
      if (options.events.peerStored) options.events.peerStored(peer, id, st.theirStored);
    }
  }

  if (!msg.changes.empty()) {
    DocEntry::Received received;
    received.envelopes.reserve(msg.changes.size());
    if (!entry->sealer) received.data.reserve(msg.changes.size());
    for (Bytes& payload : msg.changes) {
      auto parsed = entry->parse(std::move(payload), received, opsPool);
      if (!parsed) co_return Error(Errc::Malformed, "a change: " + parsed.error().message());
    }
    const ChangeBatch batch{.changes = received.envelopes};
    const bool accepted = co_await okToReceive(session->identity, id, batch);
    entry = findEntry(id);
    if (!entry || session->closed) co_return Result<void>();
    const std::size_t count = received.envelopes.size();
    if (!accepted) {
      // Refused changes are settled for this peer: dropped, counted, never asked for again.
      auto& refused = session->docs[id].refused;
      for (const ChangeEnvelope& e : received.envelopes) refused.insert(e.hash);
      // The writer learns which of what it sent is lost, and nothing more; re-checked with
      // okToSend as it leaves the queue, like anything else that names the document.
      if (auto answer = refusal(id, entry->graph(), received.envelopes)) {
        session->enqueueFrame(encodeMessage(*answer), id);
      }
      wakeArrivalWaiters(*entry);
      detail::logf(LogLevel::Info, "repo: refused {} changes to {} from {}", count, id.logName(),
                   peer.str());
      if (options.events.changesRefused) options.events.changesRefused(peer, id, count);
    } else {
      std::vector<ChangeHash> theirs;
      theirs.reserve(count);
      for (const ChangeEnvelope& e : received.envelopes) theirs.push_back(e.hash);
      sortUnique(theirs);
      const std::size_t before = entry->graph().size();
      auto watched = entry->watchChange();
      ApplyReport report = entry->apply(std::move(received), opsPool);
      noteHeldByPeer(entry->graph(), session->docs[id], before, theirs);
      for (const Error& e : report.rejected) {
        detail::logf(LogLevel::Warn, "repo: a change to {} from {} is invalid: {}", id.logName(),
                     peer.str(), e.message());
      }
      if (report.applied > 0) onDocumentChanged(entry);
      entry->reportChange(std::move(watched), peer, report.applied > 0);
      if (entry->graph().pendingCount() > options.quotas.pendingChanges) {
        co_return Error(Errc::Overloaded, "over its quota of changes waiting for deps");
      }
    }
  }

  if (finds.contains(id)) {
    const ChangeGraph& graph = entry->graph();
    const auto& refused = session->docs[id].refused;
    if (std::all_of(msg.heads.begin(), msg.heads.end(), [&](const ChangeHash& h) {
          return graph.contains(h) || refused.contains(h);
        })) {
      settleFind(id, true);
    }
  }
  session->markDirty(id);
  co_return Result<void>();
}

void RepoImpl::handleUnavailable(const std::shared_ptr<PeerSession>& session,
                                 const UnavailableMsg& msg) {
  auto it = finds.find(msg.doc);
  if (it == finds.end()) return;
  it->second->declined.insert(session->identity.peer);
  checkFindExhausted(msg.doc);
}

void RepoImpl::handleRefused(const std::shared_ptr<PeerSession>& session, const RefusedMsg& msg) {
  // Heard only about a document synced with this peer, and only for changes held here: whatever
  // a peer sends, it cannot make us remember other hashes, nor more than kMaxRefusedByPeer.
  auto it = session->docs.find(msg.doc);
  auto entry = findEntry(msg.doc);
  if (it == session->docs.end() || !it->second.active || !entry) return;
  const ChangeGraph& graph = entry->graph();
  std::vector<ChangeHash> fresh;
  for (const ChangeHash& h : msg.changes) {
    if (graph.contains(h) && it->second.refusedByPeer.insert(h)) fresh.push_back(h);
  }
  if (fresh.empty()) return;
  const PeerId& peer = session->identity.peer;
  detail::logf(LogLevel::Info, "repo: {} refused {} of our changes to {}", peer.str(), msg.count,
               msg.doc.logName());
  if (options.events.changesRefusedByPeer) options.events.changesRefusedByPeer(peer, msg.doc, fresh);
}

asio::awaitable<void> RepoImpl::handleEphemeral(std::shared_ptr<PeerSession> session,
                                                EphemeralMsg msg) {
  auto self = shared_from_this();
  if (msg.sender != session->identity.peer) co_return;  // ephemeral messages are not relayed
  const bool allowed = co_await okToSend(session->identity, msg.doc);
  if (!allowed) co_return;
  if (session->closed || !findEntry(msg.doc)) co_return;
  if (options.events.ephemeral) options.events.ephemeral(msg.doc, msg.sender, msg.data);
}

std::optional<Bytes> RepoImpl::buildSync(PeerSession& session, const DocumentId& id) {
  auto entry = findEntry(id);
  auto it = session.docs.find(id);
  if (!entry || it == session.docs.end() || !it->second.active) return std::nullopt;
  PeerDocState& st = it->second;
  const ChangeGraph& graph = entry->graph();

  SyncMsg msg{.doc = id, .heads = graph.heads(), .need = {}, .have = {}, .changes = {},
              .storedHeads = {}, .requestId = 0, .hops = 0, .isRequest = false};
  for (const ChangeHash& h : st.theirHeads) {
    if (!graph.contains(h) && !st.refused.contains(h)) msg.need.push_back(h);
  }
  for (const ChangeHash& h : graph.missingDeps()) msg.need.push_back(h);
  sortUnique(msg.need);

  // Changes only once we know what the peer has; until then, heads and samples.
  bool complete = true;
  std::vector<const ChangeEnvelope*> sent;
  if (st.heardFrom) {
    const std::size_t frameRoom = options.maxFrameBytes > 2 * kFrameOverhead
                                      ? options.maxFrameBytes - kFrameOverhead
                                      : options.maxFrameBytes / 2;
    const std::size_t budget = std::min(frameRoom, options.syncBatchBytes);
    std::size_t used = 0;
    // Takes `e` into the frame, unless the frame is full.
    auto fits = [&](const ChangeEnvelope& e) {
      const std::size_t size = encodedChangeSize(e.payload.size());
      if (!sent.empty() && used + size > budget) return false;
      used += size;
      sent.push_back(&e);
      return true;
    };
    if (st.sharedPrefix) {
      // By position: a long history is not listed whole for each frame it takes.
      for (std::size_t pos = *st.sharedPrefix; complete && pos < graph.size(); ++pos) {
        complete = fits(graph.changeAt(pos));
      }
    } else {
      for (const ChangeEnvelope* e : graph.changesSince(st.shared)) {
        complete = fits(*e);
        if (!complete) break;
      }
    }
  }
  // An offer the peer has not answered is not repeated at each change: a peer that wants the
  // document answers and is then sent everything since, and one that stays silent does not want
  // it (a server with 1,000 peers otherwise sends each of them a frame per change of every
  // document: bench/load_bench). recheckAccess offers it anew.
  if (st.sentAny && !st.heardFrom) return std::nullopt;
  const bool storedNews = !entry->storedHeads.empty() && entry->storedHeads != st.lastSentStored;
  if (sent.empty() && msg.need.empty() && st.sentAny && msg.heads == st.lastSentHeads &&
      !storedNews) {
    return std::nullopt;  // in sync: quiet
  }
  if (!msg.need.empty() || !st.sentAny) msg.have = haveSamples(graph);
  if (storedNews) {
    msg.storedHeads = entry->storedHeads;
    st.lastSentStored = entry->storedHeads;
  }
  Bytes frame = encodeSync(msg, sent);
  st.sentAny = true;
  st.lastSentHeads = msg.heads;
  if (st.heardFrom) {
    if (complete) {
      st.shared = msg.heads;
      st.sharedPrefix = graph.size();
      st.sharedAt = graph.size();
    } else if (st.sharedPrefix) {
      *st.sharedPrefix += sent.size();  // `shared` catches up when it is needed
      session.markDirty(id);
    } else {
      st.shared = frontier(graph, st.shared, sent);
      session.markDirty(id);
    }
  }
  return frame;
}

}  // namespace portcullis::detail
