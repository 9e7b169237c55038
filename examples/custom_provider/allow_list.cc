// allow_list.cc — an example auth provider built out of tree and loaded by name: peers whose
// claimed name is on a list get read/write access to every document; everyone else is refused.
//
// It reuses the `open` handshake (a claimed name, no keys): a sketch of the plugin interface,
// not a secure provider. Build and use:
//   g++ -shared -fPIC -fvisibility=hidden $(pkg-config --cflags portcullis) allow_list.cc \
//       $(pkg-config --libs portcullis) -o libportcullis-auth-allow-list.so
//   [auth]
//   provider = "allow-list"
//   [auth.allow-list]
//   peer-id = "server"
//   allow = ["alice", "bob"]
#include <portcullis/provider_registry.h>

#include <set>

namespace {

using namespace portcullis;

class AllowList final : public AuthProvider {
 public:
  AllowList(PeerId self, std::set<std::string> allowed)
      : open_(makeOpenProvider(std::move(self))), allowed_(std::move(allowed)) {}

  std::string_view name() const override { return "allow-list"; }
  std::optional<PeerId> localPeer() const override { return open_->localPeer(); }

  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> stream, Side side) override {
    auto session = co_await open_->authenticate(std::move(stream), side);
    if (session && !allowed_.contains(session->identity.peer.str())) {
      co_return Error(Errc::Denied, session->identity.peer.str() + " is not on the allow-list");
    }
    if (session) session->identity.provider = "allow-list";
    co_return session;
  }
  asio::awaitable<bool> okToAdvertise(const PeerIdentity&, const DocumentId&) override {
    co_return true;
  }
  asio::awaitable<bool> okToSend(const PeerIdentity&, const DocumentId&) override { co_return true; }
  asio::awaitable<bool> okToReceive(const PeerIdentity&, const DocumentId&,
                                    const ChangeBatch&) override {
    co_return true;
  }

 private:
  std::unique_ptr<AuthProvider> open_;
  std::set<std::string> allowed_;
};

class AllowListFactory final : public AuthProviderFactory {
 public:
  std::string_view name() const override { return "allow-list"; }
  Result<std::unique_ptr<AuthProvider>> create(const ConfigTable& config) const override {
    if (auto ok = config.expectKeys({"peer-id", "allow"}); !ok) return std::move(ok).error();
    auto self = config.requiredString("peer-id");
    if (!self) return std::move(self).error();
    auto peer = PeerId::parse(*self);
    if (!peer) return config.error("peer-id", peer.error().message());
    auto allow = config.strings("allow");
    if (!allow) return std::move(allow).error();
    return std::unique_ptr<AuthProvider>(
        new AllowList(*peer, std::set<std::string>(allow->begin(), allow->end())));
  }
};

Result<void> registerProvider(ProviderRegistry& registry) {
  return registry.add(std::make_unique<AllowListFactory>());
}

}  // namespace

PORTCULLIS_PROVIDER_PLUGIN("allow-list", registerProvider)
