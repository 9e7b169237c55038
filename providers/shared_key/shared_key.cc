// shared_key.cc — the `shared-key` provider: shs1 handshake, box-stream channel, a deny-list of
// device keys that reload() replaces all or nothing.

#include "shared_key.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "portcullis/auth_provider.h"
#include "portcullis/config.h"
#include "portcullis/logging.h"
#include "portcullis/secret_handshake.h"

namespace portcullis::sharedkey {

namespace {

constexpr std::string_view kName = "shared-key";

// Denied device keys as lower-case hex, the form of their PeerIds. Public keys, not secrets: an
// ordinary ordered set is fine.
using DenyList = std::set<std::string>;

Result<DenyList> parseDenyList(const ConfigTable& table) {
  auto entries = table.strings("deny");
  if (!entries) return std::move(entries).error();
  DenyList out;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    auto key = PublicKey::parse((*entries)[i]);
    if (!key) {
      return table.error("deny", fmt::format("entry {}: {}", i + 1, key.error().message()));
    }
    out.insert(key->toHex());
  }
  return out;
}

Result<void> expectOurKeys(const ConfigTable& table) {
  return table.expectKeys({"network-key", "identity", "deny"});
}

// Channels of authenticated peers that are still open, by peer, so that a reload can close the
// sessions of a device it denies, including one whose hello is still on its way (the Repo does
// not know that session yet, so endSession alone would miss it).
class TrackedChannel;
struct LiveChannels {
  std::multimap<std::string, TrackedChannel*> byPeer;  // not owned; each entry removes itself
};

class TrackedChannel final : public MessageChannel {
 public:
  TrackedChannel(std::unique_ptr<MessageChannel> inner, const std::string& peer,
                 const std::shared_ptr<LiveChannels>& live)
      : inner_(std::move(inner)), live_(live), entry_(live->byPeer.emplace(peer, this)) {}
  ~TrackedChannel() override {
    if (auto live = live_.lock()) live->byPeer.erase(entry_);
  }
  TrackedChannel(const TrackedChannel&) = delete;
  TrackedChannel& operator=(const TrackedChannel&) = delete;

  asio::awaitable<Result<void>> send(ByteView frame) override {
    auto inner = inner_;  // the channel may be destroyed while the send is pending
    co_return co_await inner->send(frame);
  }
  asio::awaitable<Result<Bytes>> receive() override {
    auto inner = inner_;
    co_return co_await inner->receive();
  }
  void close() override { inner_->close(); }

 private:
  std::shared_ptr<MessageChannel> inner_;
  std::weak_ptr<LiveChannels> live_;  // the provider may go first
  std::multimap<std::string, TrackedChannel*>::iterator entry_;
};

class SharedKeyProvider final : public AuthProvider {
 public:
  SharedKeyProvider(NetworkKey networkKey, DeviceKey identity, DenyList deny,
                    std::filesystem::path file, std::string table)
      : networkKey_(std::move(networkKey)),
        identity_(std::move(identity)),
        self_(PeerId::parse(identity_.publicKeyHex()).value()),
        deny_(std::move(deny)),
        file_(std::move(file)),
        table_(std::move(table)) {}

  std::string_view name() const override { return kName; }
  std::optional<PeerId> localPeer() const override { return self_; }
  // The dialer pins this node's key (Scuttlebutt's multiserver address form).
  std::string advertisedAddress(std::string_view hostPort) const override {
    return "net:" + std::string(hostPort) + "~shs:" + self_.str();
  }

  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> stream,
                                                Side side) override {
    const ShsConfig config{.networkKey = networkKey_, .identity = identity_};
    // A dialer refuses a denied server before writing anything; an acceptor refuses a denied
    // client, whose key is proven by then, before message 4.
    std::function<bool(const PublicKey&)> authorize = [this](const PublicKey& remote) {
      return !denied(remote.toHex());
    };
    auto handshake = shsHandshake(*stream, side, config, std::move(authorize));
    Result<ShsSession> shs = co_await std::move(handshake);
    if (!shs) {
      co_return Error(shs.error().code(), "shared-key: " + shs.error().message());
    }
    // Checked again: a reload may have denied the device while the last message was in flight.
    const std::string remote = shs->remotePublicKey.toHex();
    if (denied(remote)) co_return deniedError(remote);
    auto channel = std::make_unique<TrackedChannel>(
        makeBoxStreamChannel(std::move(stream), std::move(*shs)), remote, live_);
    co_return Session{.identity = {.peer = PeerId::parse(remote).value(),
                                   .user = {},
                                   .roles = {},
                                   .provider = std::string(kName)},
                      .channel = std::move(channel)};
  }

  // Every device that completed the handshake may read and write everything (the mode, as in
  // Ditto's shared-key mode); one denied since, whose session is ending, may not.
  asio::awaitable<bool> okToAdvertise(const PeerIdentity& peer, const DocumentId&) override {
    co_return !denied(peer.peer.str());
  }
  asio::awaitable<bool> okToSend(const PeerIdentity& peer, const DocumentId&) override {
    co_return !denied(peer.peer.str());
  }
  asio::awaitable<bool> okToReceive(const PeerIdentity& peer, const DocumentId&,
                                    const ChangeBatch&) override {
    co_return !denied(peer.peer.str());
  }

  void attach(RepoCallbacks callbacks) override { callbacks_ = std::move(callbacks); }

  Result<void> reload() override {
    if (file_.empty()) {
      return Error(Errc::Config, "shared-key: the provider was not made from a config file; "
                                 "there is no deny-list to reload");
    }
    auto root = loadConfigFile(file_);
    if (!root) return std::move(root).error();
    auto table = tableAt(*root);
    if (!table) return std::move(table).error();
    if (auto ok = expectOurKeys(*table); !ok) return ok.error();
    auto fresh = parseDenyList(*table);
    if (!fresh) return std::move(fresh).error();

    std::vector<std::string> newlyDenied;
    for (const std::string& key : *fresh) {
      if (!deny_.contains(key)) newlyDenied.push_back(key);
    }
    deny_ = std::move(*fresh);
    portcullis::log(
        LogLevel::Info,
        fmt::format("auth provider 'shared-key': deny-list reloaded from {}: {} device(s), {} new",
                    file_.string(), deny_.size(), newlyDenied.size()));
    for (const std::string& key : newlyDenied) endSessionsOf(key);
    return {};
  }

 private:
  bool denied(const std::string& keyHex) const { return deny_.contains(keyHex); }

  static Error deniedError(const std::string& keyHex) {
    return Error(Errc::Denied, "shared-key: device " + keyHex + " is on the deny-list");
  }

  // The provider's table in a freshly read file: the same dotted name ("auth.shared-key").
  Result<ConfigTable> tableAt(const ConfigTable& root) const {
    ConfigTable table = root;
    std::string_view rest = table_;
    while (!rest.empty()) {
      const auto dot = rest.find('.');
      auto next = table.table(rest.substr(0, dot));
      if (!next) return std::move(next).error();
      table = std::move(*next);
      rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
    }
    return table;
  }

  void endSessionsOf(const std::string& keyHex) {
    const std::string reason = "device " + keyHex + " denied by a reload of the deny-list";
    if (callbacks_.endSession) callbacks_.endSession(PeerId::parse(keyHex).value(), reason);
    // Sessions the Repo has not registered yet (hello in flight) end by their channel. Looked up
    // after endSession, which may have destroyed channels.
    std::vector<TrackedChannel*> open;
    auto [first, last] = live_->byPeer.equal_range(keyHex);
    for (auto it = first; it != last; ++it) open.push_back(it->second);
    for (TrackedChannel* channel : open) channel->close();
    if (!open.empty())
      portcullis::log(LogLevel::Info, fmt::format("auth provider 'shared-key': {}", reason));
  }

  NetworkKey networkKey_;
  DeviceKey identity_;
  PeerId self_;
  DenyList deny_;
  std::filesystem::path file_;  // where reload() reads the deny-list; empty: nowhere
  std::string table_;           // the provider's table in it
  RepoCallbacks callbacks_;
  std::shared_ptr<LiveChannels> live_ = std::make_shared<LiveChannels>();
};

class SharedKeyFactory final : public AuthProviderFactory {
 public:
  std::string_view name() const override { return kName; }

  Result<std::unique_ptr<AuthProvider>> create(const ConfigTable& config) const override {
    if (auto ok = expectOurKeys(config); !ok) return ok.error();
    auto keyText = config.requiredString("network-key");
    if (!keyText) return std::move(keyText).error();
    auto networkKey = NetworkKey::parse(*keyText);
    secureWipe(keyText->data(), keyText->size());
    if (!networkKey) return config.error("network-key", networkKey.error().message());

    auto identityPath = config.path("identity");
    if (!identityPath) return std::move(identityPath).error();
    if (!*identityPath) return config.error("identity", "missing (required)");
    auto identity = DeviceKey::load(identityPath->value().string());
    if (!identity) return config.error("identity", identity.error().message());

    auto deny = parseDenyList(config);
    if (!deny) return std::move(deny).error();

    portcullis::log(
        LogLevel::Info,
        fmt::format("auth provider 'shared-key': this device is {}; {} device(s) denied",
                    identity->publicKeyHex(), deny->size()));
    return std::unique_ptr<AuthProvider>(std::make_unique<SharedKeyProvider>(
        std::move(*networkKey), std::move(*identity), std::move(*deny), config.file(),
        config.name()));
  }
};

}  // namespace

Result<void> registerProvider(ProviderRegistry& registry) {
  return registry.add(std::make_unique<SharedKeyFactory>());
}

}  // namespace portcullis::sharedkey
