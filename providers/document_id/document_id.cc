// document_id.cc — the `document-id` provider: knowing a document's ID is the capability; the
// secret handshake under a published network key pins servers and encrypts every frame.

#include "document_id.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "portcullis/auth_provider.h"
#include "portcullis/config.h"
#include "portcullis/secret_handshake.h"

namespace portcullis::documentid {

namespace {

constexpr std::string_view kName = "document-id";

// The upstream addresses of the table, each net:HOST:PORT~shs:KEY, and their keys as hex.
struct Upstreams {
  std::vector<std::string> addresses;
  std::set<std::string> keys;
};

Result<Upstreams> parseUpstreams(const ConfigTable& table) {
  auto entries = table.strings("upstream");
  if (!entries) return std::move(entries).error();
  Upstreams out;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    const std::string& address = (*entries)[i];
    auto key = shsServerKeyOf(address);
    if (!address.starts_with("net:") || !key) {
      return table.error("upstream",
                         fmt::format("entry {}: expected net:HOST:PORT~shs:KEY (the server's "
                                     "public key){}", i + 1,
                                     key ? "" : ": " + key.error().message()));
    }
    out.addresses.push_back(address);
    out.keys.insert(key->toHex());
  }
  return out;
}

// The install's device key: read, or made and saved (mode 0600) on first use.
Result<DeviceKey> loadOrCreateIdentity(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) return DeviceKey::load(file.string());
  DeviceKey key = DeviceKey::generate();
  if (auto saved = key.save(file.string()); !saved) return saved.error();
  spdlog::info("auth provider 'document-id': made a new device key in {}", file.string());
  return key;
}

class DocumentIdProvider final : public AuthProvider {
 public:
  DocumentIdProvider(NetworkKey networkKey, DeviceKey identity, Upstreams upstreams)
      : networkKey_(std::move(networkKey)),
        identity_(std::move(identity)),
        self_(PeerId::parse(identity_.publicKeyHex()).value()),
        upstreams_(std::move(upstreams)) {}

  std::string_view name() const override { return kName; }
  std::optional<PeerId> localPeer() const override { return self_; }
  std::vector<std::string> dialAddresses() const override { return upstreams_.addresses; }

  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> stream,
                                                Side side) override {
    const ShsConfig config{.networkKey = networkKey_, .identity = identity_};
    // Anyone may connect (the network key is public): what a peer gets depends on the IDs it
    // knows. A dialer still pins the server's key from its address.
    std::function<bool(const PublicKey&)> anyone = [](const PublicKey&) { return true; };
    auto handshake = shsHandshake(*stream, side, config, std::move(anyone));
    Result<ShsSession> shs = co_await std::move(handshake);
    if (!shs) co_return Error(shs.error().code(), "document-id: " + shs.error().message());
    const std::string remote = shs->remotePublicKey.toHex();
    // A server this node dialed, with the key its address pinned, is one of its upstreams.
    if (side == Side::Dialer) dialed_.insert(remote);
    co_return Session{.identity = {.peer = PeerId::parse(remote).value(),
                                   .user = {},
                                   .roles = {},
                                   .provider = std::string(kName)},
                      .channel = makeBoxStreamChannel(std::move(stream), std::move(*shs))};
  }

  // IDs are bearer secrets: logs name documents only by logName(), a short hash.
  void documentCreated(const DocumentId& doc) override {
    createdHere_.insert(doc);
    spdlog::debug("document-id: {} created here: offered to every upstream", doc.logName());
  }

  // Announced (and so pushed) only to the upstreams it was created with or found from.
  asio::awaitable<bool> okToAdvertise(const PeerIdentity& peer, const DocumentId& doc) override {
    const std::string& key = peer.peer.str();
    if (!isUpstream(key)) co_return false;
    if (createdHere_.contains(doc)) co_return true;
    auto it = foundFrom_.find(doc);
    co_return it != foundFrom_.end() && it->second.contains(key);
  }

  // A request names the document: only upstreams are asked.
  asio::awaitable<bool> okToRequest(const PeerIdentity& peer, const DocumentId&) override {
    co_return isUpstream(peer.peer.str());
  }

  // Knowing the ID is the capability. The Repo sends a document to a peer only after the peer
  // named it (asked for it, or sent changes to it) or after okToAdvertise announced it, and it
  // names a document in a request only where okToRequest allows; so whoever reaches this with
  // a document either showed its ID or is an upstream it belongs to.
  asio::awaitable<bool> okToSend(const PeerIdentity&, const DocumentId&) override {
    co_return true;
  }

  // Changes name their document, so a peer that sends them has shown its ID. Changes from an
  // upstream to a document not made here mean it was found there: from now on it is pushed
  // back to that upstream.
  asio::awaitable<bool> okToReceive(const PeerIdentity& peer, const DocumentId& doc,
                                    const ChangeBatch&) override {
    const std::string& key = peer.peer.str();
    if (isUpstream(key) && !createdHere_.contains(doc) && foundFrom_[doc].insert(key).second) {
      spdlog::debug("document-id: {} found from upstream {}", doc.logName(), key);
    }
    co_return true;
  }

 private:
  bool isUpstream(const std::string& key) const {
    return upstreams_.keys.contains(key) || dialed_.contains(key);
  }

  NetworkKey networkKey_;
  DeviceKey identity_;
  PeerId self_;
  Upstreams upstreams_;
  std::set<std::string> dialed_;  // servers this node dialed, by key
  std::set<DocumentId> createdHere_;
  std::map<DocumentId, std::set<std::string>> foundFrom_;
};

class DocumentIdFactory final : public AuthProviderFactory {
 public:
  std::string_view name() const override { return kName; }

  Result<std::unique_ptr<AuthProvider>> create(const ConfigTable& config) const override {
    if (auto ok = config.expectKeys({"identity", "upstream"}); !ok) return ok.error();
    auto identityPath = config.path("identity");
    if (!identityPath) return std::move(identityPath).error();
    if (!*identityPath) return config.error("identity", "missing (required)");
    auto identity = loadOrCreateIdentity(**identityPath);
    if (!identity) return config.error("identity", identity.error().message());
    auto upstreams = parseUpstreams(config);
    if (!upstreams) return std::move(upstreams).error();
    auto networkKey = NetworkKey::parse(kNetworkKeyHex);
    if (!networkKey) return networkKey.error();  // a constant: cannot fail
    spdlog::info("auth provider 'document-id': this device is {}; {} upstream(s)",
                 identity->publicKeyHex(), upstreams->addresses.size());
    return std::unique_ptr<AuthProvider>(std::make_unique<DocumentIdProvider>(
        std::move(*networkKey), std::move(*identity), std::move(*upstreams)));
  }
};

}  // namespace

Result<void> registerProvider(ProviderRegistry& registry) {
  return registry.add(std::make_unique<DocumentIdFactory>());
}

}  // namespace portcullis::documentid
