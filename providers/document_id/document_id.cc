// document_id.cc — the `document-id` provider: knowing a document's ID is the capability; the
// secret handshake under a published network key pins servers and encrypts every frame.

#include "document_id.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "portcullis/auth_provider.h"
#include "portcullis/config.h"
#include "portcullis/logging.h"
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

// Which documents belong to which upstreams: made here (offered to every upstream) or found
// from one. With a state file the facts outlive a restart: each new one is appended as a line
// ("created <doc hex>" or "found <doc hex> <upstream key hex>") and fsync'd; the file holds
// bearer secrets, so it is created 0600 and refused if group or others may read it.
class Associations {
 public:
  static Result<Associations> open(std::optional<std::filesystem::path> file) {
    Associations out;
    out.file_ = std::move(file);
    if (!out.file_) return out;
    const std::string name = out.file_->string();
    struct stat st {};
    if (::stat(name.c_str(), &st) != 0) {
      if (errno == ENOENT) return out;
      return Error(Errc::Config, fmt::format("{}: {}", name, std::strerror(errno)));
    }
    if ((st.st_mode & 077) != 0) {
      return Error(Errc::Config, fmt::format("{}: readable by group or others (it holds document "
                                             "IDs); chmod 600 it", name));
    }
    std::ifstream in(*out.file_, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return Error(Errc::Config, fmt::format("{}: read failed", name));
    std::size_t line = 0;
    for (std::size_t at = 0; at < text.size();) {
      const std::size_t end = text.find('\n', at);
      if (end == std::string::npos) break;  // a last line cut short by a crash: never fsync'd
      ++line;
      if (auto ok = out.apply(std::string_view(text).substr(at, end - at)); !ok) {
        return Error(Errc::Config, fmt::format("{}:{}: {}", name, line, ok.error().message()));
      }
      at = end + 1;
    }
    return out;
  }

  bool createdHere(const DocumentId& doc) const { return created_.contains(doc); }
  bool foundFrom(const DocumentId& doc, const std::string& key) const {
    auto it = found_.find(doc);
    return it != found_.end() && it->second.contains(key);
  }
  void addCreated(const DocumentId& doc) {
    if (created_.insert(doc).second) append("created " + toHex(doc.bytes()));
  }
  // False if it was known already.
  bool addFound(const DocumentId& doc, const std::string& key) {
    if (!found_[doc].insert(key).second) return false;
    append("found " + toHex(doc.bytes()) + " " + key);
    return true;
  }

 private:
  Result<void> apply(std::string_view line) {
    auto bad = [] { return Error(Errc::Malformed, "expected 'created DOC' or 'found DOC KEY'"); };
    const bool created = line.starts_with("created ");
    if (!created && !line.starts_with("found ")) return bad();
    line.remove_prefix(created ? 8 : 6);
    std::array<std::uint8_t, DocumentId::kSize> id{};
    std::size_t len = 0;
    if (line.size() < 2 * id.size() ||
        sodium_hex2bin(id.data(), id.size(), line.data(), 2 * id.size(), nullptr, &len,
                       nullptr) != 0 ||
        len != id.size()) {
      return bad();
    }
    const DocumentId doc = DocumentId::fromBytes(id).value();
    line.remove_prefix(2 * id.size());
    if (created) {
      if (!line.empty()) return bad();
      created_.insert(doc);
      return {};
    }
    if (!line.starts_with(' ')) return bad();
    auto key = PublicKey::parse(line.substr(1));
    if (!key) return bad();
    found_[doc].insert(key->toHex());
    return {};
  }

  void append(const std::string& line) {
    if (!file_) return;
    const std::string name = file_->string();
    const int fd = ::open(name.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    const std::string text = line + "\n";
    const bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) ==
                                   static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    const int err = errno;
    if (fd >= 0) ::close(fd);
    // The hooks cannot fail: the fact is kept in memory, and only a restart loses it.
    if (!ok)
      portcullis::log(LogLevel::Error, fmt::format("document-id: cannot record in {}: {}", name,
                                                   std::strerror(err)));
  }

  std::optional<std::filesystem::path> file_;
  std::set<DocumentId> created_;
  std::map<DocumentId, std::set<std::string>> found_;
};

class DocumentIdProvider final : public AuthProvider {
 public:
  DocumentIdProvider(NetworkKey networkKey, DeviceKey identity, Upstreams upstreams,
                     Associations associations)
      : networkKey_(std::move(networkKey)),
        identity_(std::move(identity)),
        self_(PeerId::parse(identity_.publicKeyHex()).value()),
        upstreams_(std::move(upstreams)),
        associations_(std::move(associations)) {}

  std::string_view name() const override { return kName; }
  std::optional<PeerId> localPeer() const override { return self_; }
  // The dialer pins this node's key, as under shared-key.
  std::string advertisedAddress(std::string_view hostPort) const override {
    return "net:" + std::string(hostPort) + "~shs:" + self_.str();
  }
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
    associations_.addCreated(doc);
    portcullis::log(
        LogLevel::Debug,
        fmt::format("document-id: {} created here: offered to every upstream", doc.logName()));
  }

  // Announced (and so pushed) only to the upstreams it was created with or found from.
  asio::awaitable<bool> okToAdvertise(const PeerIdentity& peer, const DocumentId& doc) override {
    const std::string& key = peer.peer.str();
    if (!isUpstream(key)) co_return false;
    co_return associations_.createdHere(doc) || associations_.foundFrom(doc, key);
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
    if (isUpstream(key) && !associations_.createdHere(doc) && associations_.addFound(doc, key)) {
      portcullis::log(LogLevel::Debug,
                      fmt::format("document-id: {} found from upstream {}", doc.logName(), key));
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
  Associations associations_;
};

class DocumentIdFactory final : public AuthProviderFactory {
 public:
  std::string_view name() const override { return kName; }

  Result<std::unique_ptr<AuthProvider>> create(const ConfigTable& config) const override {
    if (auto ok = config.expectKeys({"identity", "upstream", "state"}); !ok) return ok.error();
    auto identityPath = config.path("identity");
    if (!identityPath) return std::move(identityPath).error();
    if (!*identityPath) return config.error("identity", "missing (required)");
    auto identity = DeviceKey::loadOrCreate((*identityPath)->string());
    if (!identity) return config.error("identity", identity.error().message());
    auto upstreams = parseUpstreams(config);
    if (!upstreams) return std::move(upstreams).error();
    auto statePath = config.path("state");
    if (!statePath) return std::move(statePath).error();
    auto associations = Associations::open(*statePath);
    if (!associations) return config.error("state", associations.error().message());
    auto networkKey = NetworkKey::parse(kNetworkKeyHex);
    if (!networkKey) return networkKey.error();  // a constant: cannot fail
    portcullis::log(LogLevel::Info,
                    fmt::format("auth provider 'document-id': this device is {}; {} upstream(s)",
                                identity->publicKeyHex(), upstreams->addresses.size()));
    return std::unique_ptr<AuthProvider>(std::make_unique<DocumentIdProvider>(
        std::move(*networkKey), std::move(*identity), std::move(*upstreams),
        std::move(*associations)));
  }
};

}  // namespace

Result<void> registerProvider(ProviderRegistry& registry) {
  return registry.add(std::make_unique<DocumentIdFactory>());
}

}  // namespace portcullis::documentid
