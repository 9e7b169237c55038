// A harness for Repo tests: repos on one io_context, joined by the memory network, with a
// scriptable auth provider. Every wait is bounded.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "memory_network.h"
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
  std::shared_ptr<const ChangeSealer> sealerFor(const DocumentId&) override { return sealer; }
  void attach(RepoCallbacks cb) override { callbacks = std::move(cb); }

  std::function<bool(const PeerId&, const DocumentId&)> advertise = [](auto&, auto&) { return true; };
  std::function<bool(const PeerId&, const DocumentId&)> send = [](auto&, auto&) { return true; };
  std::function<bool(const PeerId&, const DocumentId&)> receive = [](auto&, auto&) { return true; };
  std::set<std::string> refuse;
  std::chrono::milliseconds handshakeDelay{0};
  std::shared_ptr<const ChangeSealer> sealer;
  RepoCallbacks callbacks;

 private:
  std::unique_ptr<AuthProvider> open_;
};

// What a Repo reported, for assertions.
struct EventLog {
  std::vector<PeerId> authenticated;
  std::vector<std::string> refused;
  std::vector<PeerId> gone;
  std::size_t changesRefused = 0;
  std::vector<std::pair<PeerId, Bytes>> ephemeral;
};

struct TestPeer {
  std::string name;
  std::shared_ptr<MemoryNetworkAdapter> net;
  std::shared_ptr<ScriptedProvider> auth;
  std::shared_ptr<EventLog> log = std::make_shared<EventLog>();
  std::unique_ptr<Repo> repo;
};

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
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
      ctx.run_for(1ms);
      if (ctx.stopped()) ctx.restart();
    }
    return done();
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
    asio::co_spawn(ctx, std::move(aw), [&](std::exception_ptr e, T value) {
      error = e;
      if (!e) out.emplace(std::move(value));
    });
    runUntil([&] { return out.has_value() || error; }, limit);
    if (error) std::rethrow_exception(error);
    if (!out) throw std::runtime_error("awaitable did not complete within the limit");
    return std::move(*out);
  }

  asio::io_context ctx;
  std::vector<std::unique_ptr<TestPeer>> peers;
};

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

}  // namespace portcullis::testing
