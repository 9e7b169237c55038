// The deny-by-default hooks of AuthProvider, MessageChannel's default sendMany, and the `open`
// provider.
#include "portcullis/auth_provider.h"

#include "detail/log.h"

namespace portcullis {

asio::awaitable<Result<void>> MessageChannel::sendMany(std::span<const ByteView> frames) {
  for (const ByteView frame : frames) {
    auto sent = co_await send(frame);
    if (!sent) co_return sent;
  }
  co_return Result<void>();
}

asio::awaitable<bool> AuthProvider::okToAdvertise(const PeerIdentity&, const DocumentId&) {
  co_return false;
}

asio::awaitable<bool> AuthProvider::okToSend(const PeerIdentity&, const DocumentId&) {
  co_return false;
}

asio::awaitable<bool> AuthProvider::okToReceive(const PeerIdentity&, const DocumentId&,
                                                const ChangeBatch&) {
  co_return false;
}

asio::awaitable<void> AuthProvider::onProviderMessage(const PeerIdentity&, Bytes) { co_return; }

std::shared_ptr<const ChangeSealer> AuthProvider::sealerFor(const DocumentId&) { return nullptr; }

void AuthProvider::attach(RepoCallbacks) {}

std::optional<PeerId> AuthProvider::localPeer() const { return std::nullopt; }

std::optional<ActorId> AuthProvider::localActor() const { return std::nullopt; }

bool AuthProvider::inStepWith(const PeerId&) const { return true; }

Result<void> AuthProvider::reload() { return {}; }

asio::awaitable<bool> AuthProvider::okToRequest(const PeerIdentity& peer, const DocumentId& doc) {
  co_return co_await okToSend(peer, doc);
}

void AuthProvider::documentCreated(const DocumentId&) {}

std::vector<std::string> AuthProvider::dialAddresses() const { return {}; }
std::string AuthProvider::advertisedAddress(std::string_view hostPort) const {
  return std::string(hostPort);
}

namespace {

class OpenProvider final : public AuthProvider {
 public:
  explicit OpenProvider(PeerId self) : self_(std::move(self)) {
    detail::logf(LogLevel::Warn,
                 "auth provider 'open': every peer is trusted with every document; for "
                 "development only");
  }

  std::string_view name() const override { return "open"; }
  std::optional<PeerId> localPeer() const override { return self_; }

  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> stream, Side) override {
    // Both sides write first, so neither waits on the other.
    Bytes hello(1 + self_.str().size());
    hello[0] = static_cast<std::uint8_t>(self_.str().size());
    std::copy(self_.str().begin(), self_.str().end(), hello.begin() + 1);
    auto sent = co_await stream->write(hello);
    if (!sent) co_return sent.error();
    std::uint8_t len = 0;
    auto got = co_await readExactly(*stream, std::span(&len, 1));
    if (!got) co_return got.error();
    std::string claimed(len, '\0');
    got = co_await readExactly(*stream, std::span(reinterpret_cast<std::uint8_t*>(claimed.data()),
                                                  claimed.size()));
    if (!got) co_return got.error();
    auto peer = PeerId::parse(claimed);
    if (!peer) co_return Error(Errc::Denied, "open: " + peer.error().message());
    co_return Session{.identity = {.peer = *peer, .user = {}, .roles = {}, .provider = "open"},
                      .channel = makeFramedChannel(std::move(stream))};
  }

  asio::awaitable<bool> okToAdvertise(const PeerIdentity&, const DocumentId&) override {
    co_return true;
  }
  asio::awaitable<bool> okToSend(const PeerIdentity&, const DocumentId&) override {
    co_return true;
  }
  asio::awaitable<bool> okToReceive(const PeerIdentity&, const DocumentId&,
                                    const ChangeBatch&) override {
    co_return true;
  }

 private:
  PeerId self_;
};

}  // namespace

std::unique_ptr<AuthProvider> makeOpenProvider(PeerId self) {
  return std::make_unique<OpenProvider>(std::move(self));
}

}  // namespace portcullis
