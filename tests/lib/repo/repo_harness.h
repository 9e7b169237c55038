// A harness for Repo tests: repos on one io_context, joined by the memory network, with a
// scriptable auth provider. Every wait is bounded.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "memory_network.h"
#include "memory_storage.h"
#include "wire/sync_codec.h"
#include "portcullis/asio.h"
#include "portcullis/repo.h"

namespace portcullis::testing {

using namespace std::chrono_literals;

// Authenticates like `open` (claimed IDs in plaintext), then answers every hook from functions
// a test may change at any time. Allows everything until told otherwise.
class ScriptedProvider final : public AuthProvider {
 public:
  explicit ScriptedProvider(PeerId self) : open_(makeOpenProvider(std::move(self))) {}

  std::string_view name() const override { return "scripted"; }

  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> stream, Side side) override {
    if (handshakeDelay.count() > 0) {
      asio::steady_timer t(co_await asio::this_coro::executor, handshakeDelay);
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    auto session = co_await open_->authenticate(std::move(stream), side);
    if (session && refuse.contains(session->identity.peer.str())) {
      co_return Error(Errc::Denied, "refused by the test");
    }
    co_return session;
  }
  asio::awaitable<bool> okToAdvertise(const PeerIdentity& p, const DocumentId& d) override {
    co_return advertise(p.peer, d);
  }
  asio::awaitable<bool> okToSend(const PeerIdentity& p, const DocumentId& d) override {
    co_return send(p.peer, d);
  }
  asio::awaitable<bool> okToReceive(const PeerIdentity& p, const DocumentId& d,
                                    const ChangeBatch&) override {
    co_return receive(p.peer, d);
  }
  asio::awaitable<bool> okToRequest(const PeerIdentity& p, const DocumentId& d) override {
    co_return request ? request(p.peer, d) : send(p.peer, d);
  }
  void documentCreated(const DocumentId& d) override { created.push_back(d); }
  asio::awaitable<void> onProviderMessage(const PeerIdentity& p, Bytes message) override {
    providerMessages.emplace_back(p.peer, std::move(message));
    co_return;
  }
  std::shared_ptr<const ChangeSealer> sealerFor(const DocumentId&) override { return sealer; }
  void attach(RepoCallbacks cb) override { callbacks = std::move(cb); }

  std::function<bool(const PeerId&, const DocumentId&)> advertise = [](auto&, auto&) { return true; };
  std::function<bool(const PeerId&, const DocumentId&)> send = [](auto&, auto&) { return true; };
  std::function<bool(const PeerId&, const DocumentId&)> receive = [](auto&, auto&) { return true; };
  std::function<bool(const PeerId&, const DocumentId&)> request;  // unset: as `send`
  std::vector<DocumentId> created;  // as documentCreated reported them
  std::set<std::string> refuse;
  std::chrono::milliseconds handshakeDelay{0};
  std::shared_ptr<const ChangeSealer> sealer;
  RepoCallbacks callbacks;
  std::vector<std::pair<PeerId, Bytes>> providerMessages;  // as onProviderMessage got them

 private:
  std::unique_ptr<AuthProvider> open_;
};

// What a Repo reported, for assertions.
struct EventLog {
  std::vector<PeerId> authenticated;
  std::vector<std::string> refused;
  std::vector<PeerId> gone;
  std::size_t changesRefused = 0;
  std::vector<DocumentId> changed;
  std::vector<std::vector<ChangeHash>> stored;  // peerStored heads, in order
  std::vector<std::pair<PeerId, Bytes>> ephemeral;
};

struct TestPeer {
  std::string name;
  std::shared_ptr<MemoryNetworkAdapter> net;
  std::shared_ptr<ScriptedProvider> auth;
  std::shared_ptr<EventLog> log = std::make_shared<EventLog>();
  std::unique_ptr<Repo> repo;
};

// Runs `ctx` until `done()` or `limit` passes; returns done().
inline bool runUntil(asio::io_context& ctx, const std::function<bool()>& done,
                     std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end) {
    ctx.run_for(1ms);
    if (ctx.stopped()) ctx.restart();
  }
  return done();
}

class RepoHarness {
 public:
  // A peer named `name` (also its PeerId). `tweak` may adjust the options before the Repo starts.
  TestPeer& add(const std::string& name,
                const std::function<void(RepoOptions&)>& tweak = {}) {
    auto peer = std::make_unique<TestPeer>();
    peer->name = name;
    peer->net = std::make_shared<MemoryNetworkAdapter>(ctx.get_executor(), name);
    const PeerId id = *PeerId::parse(name);
    peer->auth = std::make_shared<ScriptedProvider>(id);
    RepoOptions options;
    options.network = {peer->net};
    options.auth = peer->auth;
    options.peerId = id;
    auto log = peer->log;
    options.events.peerAuthenticated = [log](const PeerIdentity& p) { log->authenticated.push_back(p.peer); };
    options.events.peerRefused = [log](const std::string& r, const Error&) { log->refused.push_back(r); };
    options.events.peerGone = [log](const PeerId& p, const std::string&) { log->gone.push_back(p); };
    options.events.changesRefused = [log](const PeerId&, const DocumentId&, std::size_t n) {
      log->changesRefused += n;
    };
    options.events.documentChanged = [log](const DocumentId& d) { log->changed.push_back(d); };
    options.events.peerStored = [log](const PeerId&, const DocumentId&,
                                      const std::vector<ChangeHash>& heads) {
      log->stored.push_back(heads);
    };
    options.events.ephemeral = [log](const DocumentId&, const PeerId& p, const Bytes& d) {
      log->ephemeral.emplace_back(p, d);
    };
    if (tweak) tweak(options);
    peer->repo = std::make_unique<Repo>(ctx.get_executor(), std::move(options));
    peers.push_back(std::move(peer));
    return *peers.back();
  }

  std::shared_ptr<MemoryLink> link(TestPeer& dialer, TestPeer& acceptor) {
    return connect(*dialer.net, *acceptor.net);
  }

  // Runs the io_context until `done()` or `limit` passes; returns done().
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    return testing::runUntil(ctx, done, limit);
  }

  // Runs the io_context for `d` (to show that something does NOT happen).
  void runFor(std::chrono::milliseconds d) {
    runUntil([] { return false; }, d);
  }

  // Runs an awaitable to completion (bounded); exceptions propagate to the test.
  template <typename T>
  T await(asio::awaitable<T> aw, std::chrono::milliseconds limit = 15s) {
    std::optional<T> out;
    std::exception_ptr error;
    // Through a void coroutine: co_spawn's own handler needs a default-constructible T.
    auto into = [](asio::awaitable<T> inner, std::optional<T>& dest) -> asio::awaitable<void> {
      dest.emplace(co_await std::move(inner));
    };
    asio::co_spawn(ctx, into(std::move(aw), out), [&](std::exception_ptr e) { error = e; });
    runUntil([&] { return out.has_value() || error; }, limit);
    if (error) std::rethrow_exception(error);
    if (!out) throw std::runtime_error("awaitable did not complete within the limit");
    return std::move(*out);
  }

  asio::io_context ctx;
  std::vector<std::unique_ptr<TestPeer>> peers;
};

// A stream that shares another, so a raw peer can frame it and still write raw bytes to it.
using SharingStream = SharedStream;

// A hand-written peer on the memory network: the test writes and reads its bytes. It speaks the
// `open` handshake (one length byte, then the claimed ID) and then frames via makeFramedChannel.
class RawPeer {
 public:
  RawPeer(RepoHarness& h, const std::string& name)
      : net(std::make_shared<MemoryNetworkAdapter>(h.ctx.get_executor(), name)) {
    net->start([this](std::unique_ptr<Stream> s, Side) { stream = std::shared_ptr<Stream>(std::move(s)); });
  }
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;

  // Dials `target`; the link records every byte.
  void dial(TestPeer& target, MemoryLinkOptions options = {}) {
    link = connect(*net, *target.net, options);
  }

  // The open handshake, claiming `claimed`; returns the ID the other side claimed.
  asio::awaitable<Result<std::string>> handshake(std::string claimed) {
    Bytes mine(1 + claimed.size());
    mine[0] = static_cast<std::uint8_t>(claimed.size());
    std::copy(claimed.begin(), claimed.end(), mine.begin() + 1);
    auto sent = co_await stream->write(mine);
    if (!sent) co_return sent.error();
    std::uint8_t len = 0;
    auto got = co_await readExactly(*stream, std::span(&len, 1));
    if (!got) co_return got.error();
    std::string theirs(len, '\0');
    got = co_await readExactly(
        *stream, std::span(reinterpret_cast<std::uint8_t*>(theirs.data()), theirs.size()));
    if (!got) co_return got.error();
    co_return theirs;
  }

  // From now on, frames over the stream (raw writes remain possible through writeRaw).
  void frame() { channel = makeFramedChannel(std::make_unique<SharingStream>(stream)); }

  asio::awaitable<Result<void>> send(Bytes frame) {
    co_return co_await channel->send(frame);
  }
  asio::awaitable<Result<void>> writeRaw(Bytes bytes) {
    co_return co_await stream->write(bytes);
  }
  asio::awaitable<Result<Bytes>> receive() { co_return co_await channel->receive(); }

  std::shared_ptr<MemoryNetworkAdapter> net;
  std::shared_ptr<Stream> stream;
  std::unique_ptr<MessageChannel> channel;
  std::shared_ptr<MemoryLink> link;
};

// A hello frame naming `peer`, as a raw peer sends it first.
inline Bytes helloFrame(const std::string& peer,
                        std::uint32_t version = detail::kProtocolVersion) {
  return detail::encodeMessage(detail::HelloMsg{.protocolVersion = version,
                                                .peerId = *PeerId::parse(peer),
                                                .storageId = {},
                                                .isEphemeral = true});
}

// Dials `target` as a raw peer: the open handshake claiming `claimed`, then `first` as its first
// frame (normally helloFrame), then (if `readHello`) reads `target`'s hello.
inline void openRaw(RepoHarness& h, RawPeer& raw, TestPeer& target, const std::string& claimed,
                    const Bytes& first, bool readHello = true, MemoryLinkOptions link = {}) {
  raw.dial(target, link);
  ASSERT_TRUE(raw.stream);
  auto theirs = h.await(raw.handshake(claimed), 2s);
  ASSERT_TRUE(theirs) << theirs.error().message();
  ASSERT_EQ(*theirs, target.name);
  raw.frame();
  auto sent = h.await(raw.send(first), 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  if (!readHello) return;
  auto hello = h.await(raw.receive(), 2s);
  ASSERT_TRUE(hello) << hello.error().message();
  auto decoded = detail::decodeMessage(*hello);
  ASSERT_TRUE(decoded);
  ASSERT_TRUE(std::holds_alternative<detail::HelloMsg>(*decoded));
}

// A string's bytes, to look for on the wire.
inline ByteView asBytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Whether `needle` occurs in `hay`.
inline bool containsBytes(const std::vector<std::uint8_t>& hay, ByteView needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

// Reads a top-level string key, or "" if absent or not a string.
inline std::string readString(const DocHandle& h, const std::string& key) {
  auto v = h.doc().get(ObjId::root(), key);
  if (!v) return "";
  auto* s = std::get_if<std::string>(&*v);
  return s ? *s : "";
}

inline Result<void> putString(Transaction& tx, const std::string& key, const std::string& value) {
  return tx.put(ObjId::root(), key, ScalarValue(value));
}

// A change that sets a top-level string key, for DocHandle::change.
inline std::function<Result<void>(Transaction&)> put(std::string key, std::string value) {
  return [key, value](Transaction& tx) { return putString(tx, key, value); };
}

inline PeerId pid(const std::string& name) { return *PeerId::parse(name); }

// Whether `peer`'s Repo lists `other` among its peers.
inline bool lists(const TestPeer& peer, const std::string& other) {
  auto all = peer.repo->peers();
  return std::find(all.begin(), all.end(), pid(other)) != all.end();
}

// Whether `peer` holds `id` with `key` set to `value`.
inline bool holds(const TestPeer& peer, const DocumentId& id, const std::string& key,
                  const std::string& value) {
  auto there = peer.repo->findLocal(id);
  return there && readString(*there, key) == value;
}

inline bool connected(const TestPeer& peer, std::size_t count) {
  return peer.repo->peers().size() == count;
}

}  // namespace portcullis::testing
