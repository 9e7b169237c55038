// online_provider.cc — the `online` provider: certificate sessions, permissions enforced by every
// peer, revocation lists passed on, sessions ended at expiry and on revocation, and the identity
// service's logins.

#include "online_provider.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

#include "online.h"
#include "portcullis/config.h"
#include "portcullis/logging.h"
#include "portcullis/secret_handshake.h"

namespace portcullis::online {

namespace {

constexpr std::string_view kName = "online";

Error denied(std::string message) { return Error(Errc::Denied, std::move(message)); }

Ed25519Key keyOf(const PublicKey& key) { return key.bytes(); }

// A file of at most `max` bytes, whole.
Result<Bytes> readSmallFile(const std::filesystem::path& file, std::size_t max) {
  const std::string name = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error(Errc::Io, fmt::format("{}: cannot read it", name));
  Bytes out;
  std::array<char, 4096> buf{};
  while (in.read(buf.data(), buf.size()) || in.gcount() > 0) {
    out.insert(out.end(), buf.begin(), buf.begin() + in.gcount());
    if (out.size() > max) return Error(Errc::Config, fmt::format("{}: over {} bytes", name, max));
  }
  if (in.bad()) return Error(Errc::Io, fmt::format("{}: read failed", name));
  return out;
}

// This node's own certificate from `bytes`: signed by a service key, for this app and key, and not
// expired at `now`. Errc::Config saying what to do.
Result<Certificate> openOwnCertificate(ByteView bytes, const OnlineOptions& options,
                                       std::int64_t now) {
  auto own = openCertificate(bytes, options.serviceKeys);
  if (!own) return Error(Errc::Config, "certificate: " + own.error().message());
  if (auto ok = checkCertificate(*own, options.appId, keyOf(options.identity->publicKey()), now,
                                 options.clockSkew, nullptr);
      !ok) {
    return Error(Errc::Config, ok.error().message() + " (run `portcullis login`)");
  }
  return own;
}

// A signed revocation list of this app, from a peer or from the revocations file.
Result<Revocations> openRevocationsOf(ByteView bytes, const OnlineOptions& options) {
  auto list = openRevocations(bytes, options.serviceKeys);
  if (!list) return list;
  if (list->appId != options.appId) return denied("revocation list: for another app");
  return list;
}

// The revocations file, when the options name one and it exists. Errc::Config naming the file.
struct RevocationsFile {
  Revocations list;
  Bytes bytes;
};
Result<std::optional<RevocationsFile>> readRevocationsFile(const OnlineOptions& options) {
  std::error_code ec;
  if (!options.revocationsFile || !std::filesystem::exists(*options.revocationsFile, ec)) {
    return std::optional<RevocationsFile>();
  }
  const std::string file = options.revocationsFile->string();
  auto bytes = readSmallFile(*options.revocationsFile, kMaxRevocationsBytes);
  if (!bytes) return Error(Errc::Config, bytes.error().message());
  auto list = openRevocationsOf(*bytes, options);
  if (!list) return Error(Errc::Config, fmt::format("{}: {}", file, list.error().message()));
  return std::optional<RevocationsFile>(
      RevocationsFile{.list = std::move(*list), .bytes = std::move(*bytes)});
}

// One certificate-holding peer this node has a session with.
struct Peer {
  Certificate certificate;
};

class OnlineProvider;

// The state the provider's own coroutine (the expiry timer) shares with it: it outlives the
// provider until that coroutine has seen `closed`.
struct Shared {
  bool closed = false;
};

class OnlineProvider final : public AuthProvider {
 public:
  OnlineProvider(OnlineOptions options, Certificate own, std::optional<Revocations> revocations,
                 Bytes revocationsBytes)
      : options_(std::move(options)),
        networkKey_(networkKeyOf(options_.appId)),
        self_(PeerId::parse(options_.identity->publicKeyHex()).value()),
        own_(std::move(own)),
        revocations_(std::move(revocations)),
        revocationsBytes_(std::move(revocationsBytes)),
        shared_(std::make_shared<Shared>()) {}

  ~OnlineProvider() override {
    shared_->closed = true;
    if (timer_) timer_->cancel();
  }

  std::string_view name() const override { return kName; }
  std::optional<PeerId> localPeer() const override { return self_; }
  std::string advertisedAddress(std::string_view hostPort) const override {
    return "net:" + std::string(hostPort) + "~shs:" + self_.str();
  }
  void attach(RepoCallbacks callbacks) override { callbacks_ = std::move(callbacks); }
  const Certificate& own() const { return own_; }

  asio::awaitable<Result<Session>> authenticate(std::unique_ptr<Stream> stream,
                                                Side side) override {
    startTimer(co_await asio::this_coro::executor);
    const ShsConfig config{.networkKey = networkKey_, .identity = *options_.identity};
    // Anyone who knows the app may complete the handshake (its network key is public); the
    // certificate decides. A dialer pins the acceptor's key from its address.
    std::function<bool(const PublicKey&)> anyone = [](const PublicKey&) { return true; };
    auto handshake = shsHandshake(*stream, side, config, std::move(anyone));
    Result<ShsSession> shs = co_await std::move(handshake);
    if (!shs) co_return Error(shs.error().code(), "online: " + shs.error().message());
    const Ed25519Key peerKey = keyOf(shs->remotePublicKey);
    std::unique_ptr<MessageChannel> channel =
        makeBoxStreamChannel(std::move(stream), std::move(*shs));

    if (side == Side::Dialer) {
      auto sent = co_await sendHello(*channel);
      if (!sent) co_return failed(*channel, std::move(sent).error());
    }
    auto frame = co_await channel->receive();
    if (!frame) co_return failed(*channel, std::move(frame).error());
    auto hello = decodeHello(*frame);
    if (!hello) co_return failed(*channel, std::move(hello).error());
    if (hello->revocations) adoptRevocations(*hello->revocations, std::nullopt);

    if (auto* login = std::get_if<Login>(&hello->body)) {
      if (side == Side::Dialer) {
        co_return failed(*channel, Error(Errc::Malformed, "online: a server sent a login"));
      }
      co_return co_await serveLogin(*channel, std::move(*login), peerKey);
    }
    auto certificate = openCertificate(std::get<Bytes>(hello->body), options_.serviceKeys);
    if (!certificate) co_return failed(*channel, std::move(certificate).error());
    const std::int64_t now = clock();
    if (auto ok = checkCertificate(*certificate, options_.appId, peerKey, now,
                                   options_.clockSkew, revocationsPtr());
        !ok) {
      co_return failed(*channel, ok.error());
    }
    if (side == Side::Acceptor) {
      auto sent = co_await sendHello(*channel);
      if (!sent) co_return failed(*channel, std::move(sent).error());
    }

    const PeerId peer = PeerId::parse(toHex(peerKey)).value();
    PeerIdentity identity{.peer = peer,
                          .user = certificate->userId,
                          .roles = certificate->roles,
                          .provider = std::string(kName)};
    portcullis::log(LogLevel::Debug,
                    fmt::format("online: session with {} (user '{}', certificate {} until {})",
                                peer.str(), certificate->userId, certificate->serial,
                                certificate->expiresAt));
    peers_[peer] = Peer{.certificate = std::move(*certificate)};
    rearm();
    co_return Session{.identity = std::move(identity), .channel = std::move(channel)};
  }

  // Read: telling a peer a document exists, sending it, naming it in a request.
  asio::awaitable<bool> okToAdvertise(const PeerIdentity& peer, const DocumentId& doc) override {
    co_return mayRead(peer, doc);
  }
  asio::awaitable<bool> okToSend(const PeerIdentity& peer, const DocumentId& doc) override {
    co_return mayRead(peer, doc);
  }
  asio::awaitable<bool> okToRequest(const PeerIdentity& peer, const DocumentId& doc) override {
    co_return mayRead(peer, doc);
  }
  // Write: applying a peer's changes.
  asio::awaitable<bool> okToReceive(const PeerIdentity& peer, const DocumentId& doc,
                                    const ChangeBatch&) override {
    const Certificate* c = current(peer.peer);
    co_return c != nullptr && c->permissions.mayWrite(doc);
  }

  // A Notice: a revocation list, perhaps newer than this node's.
  asio::awaitable<void> onProviderMessage(const PeerIdentity& peer, Bytes message) override {
    auto notice = decodeNotice(message);
    if (!notice) {
      portcullis::log(LogLevel::Info, fmt::format("online: a bad notice from {}: {}",
                                                  peer.peer.str(), notice.error().message()));
      co_return;
    }
    adoptRevocations(notice->revocations, peer.peer);
  }

  // SIGHUP: this node's certificate file (after `portcullis login`), the revocations file (after
  // `portcullis online revoke` on a service) and the service's validators. All or nothing.
  Result<void> reload() override {
    std::optional<Certificate> own;
    Bytes ownBytes;
    if (!options_.service && options_.certificateFile) {
      auto bytes = loadCertificate(*options_.certificateFile);
      if (!bytes) return std::move(bytes).error();
      auto parsed = openOwnCertificate(*bytes, options_, clock());
      if (!parsed) return std::move(parsed).error();
      own = std::move(*parsed);
      ownBytes = std::move(*bytes);
    }
    auto revocations = readRevocationsFile(options_);
    if (!revocations) return std::move(revocations).error();
    if (options_.service) {
      if (auto ok = options_.service->reload(); !ok) return ok;
    }
    if (own) {
      own_ = std::move(*own);
      options_.certificate = std::move(ownBytes);
      warnedExpiring_ = false;
      rearm();
    }
    if (*revocations) adoptRevocations((*revocations)->bytes, std::nullopt);
    return {};
  }

 private:
  std::int64_t clock() const { return options_.clock ? options_.clock() : unixNow(); }
  const Revocations* revocationsPtr() const {
    return revocations_ ? &*revocations_ : nullptr;
  }

  // The peer's certificate while it is valid; null once it has expired or been revoked.
  const Certificate* current(const PeerId& peer) const {
    auto it = peers_.find(peer);
    if (it == peers_.end()) return nullptr;
    const Certificate& c = it->second.certificate;
    if (clock() > c.expiresAt + options_.clockSkew) return nullptr;
    if (revocations_ && revocations_->revoked(c.serial)) return nullptr;
    return &c;
  }
  bool mayRead(const PeerIdentity& peer, const DocumentId& doc) const {
    const Certificate* c = current(peer.peer);
    return c != nullptr && c->permissions.mayRead(doc);
  }

  // The certificate this node shows: an identity service issues its own.
  const Bytes& ownBytes() {
    if (options_.service && (options_.certificate.empty() || ownNearEnd())) {
      options_.certificate = options_.service->issueOwn(keyOf(options_.identity->publicKey()),
                                                        clock());
      own_ = openCertificate(options_.certificate, options_.serviceKeys).value();
      warnedExpiring_ = false;
    }
    return options_.certificate;
  }
  bool ownNearEnd() const {
    return clock() >= own_.issuedAt + (own_.expiresAt - own_.issuedAt) * 4 / 5;
  }

  asio::awaitable<Result<void>> sendHello(MessageChannel& channel) {
    Hello hello{.body = ownBytes(), .revocations = std::nullopt};
    if (!revocationsBytes_.empty()) hello.revocations = revocationsBytes_;
    const Bytes frame = encodeHello(hello);
    co_return co_await channel.send(frame);
  }

  // The acceptor's side of a login: only an identity service answers one, and the stream ends
  // after the answer either way (a login is not a sync session).
  asio::awaitable<Result<Session>> serveLogin(MessageChannel& channel, Login login,
                                              Ed25519Key peerKey) {
    LoginAnswer answer{.body = std::string("this node is not an identity service"),
                       .clientInfo = std::nullopt};
    if (options_.service) {
      answer = co_await options_.service->login(std::move(login), peerKey, clock());
    }
    const bool issued = std::holds_alternative<Bytes>(answer.body);
    const Bytes frame = encodeLoginAnswer(answer);
    auto sent = co_await channel.send(frame);
    if (sent) {
      // The device hangs up once it has read the answer; closing first could cut the answer off
      // on a transport that drops what is in flight. The Repo's handshake deadline bounds this.
      auto hangUp = co_await channel.receive();
      (void)hangUp;
    }
    channel.close();
    if (!sent) co_return std::move(sent).error();
    co_return denied(issued ? "online: login served (a login is not a sync session)"
                            : "online: login refused");
  }

  Error failed(MessageChannel& channel, Error error) {
    channel.close();
    if (error.message().starts_with("online:")) return error;
    return Error(error.code(), "online: " + error.message());
  }

  // Takes `bytes` as this node's revocation list if it verifies and is newer than the one it
  // holds; then keeps it, passes it to every other peer and ends the revoked peers' sessions.
  void adoptRevocations(const Bytes& bytes, std::optional<PeerId> from) {
    auto list = openRevocationsOf(bytes, options_);
    if (!list) {
      portcullis::log(LogLevel::Info,
                      fmt::format("online: a revocation list{} refused: {}",
                                  from ? " from " + from->str() : std::string(),
                                  list.error().message()));
      return;
    }
    if (revocations_ && list->sequence <= revocations_->sequence) return;
    portcullis::log(LogLevel::Info,
                    fmt::format("online: revocation list {} ({} serials){}", list->sequence,
                                list->serials.size(), from ? " from " + from->str() : ""));
    revocations_ = std::move(*list);
    revocationsBytes_ = bytes;
    if (options_.revocationsFile) {
      if (auto saved = saveCertificate(*options_.revocationsFile, bytes); !saved) {
        portcullis::log(LogLevel::Error, "online: cannot keep the revocation list: " +
                                             saved.error().message());
      }
    }
    if (revocations_->revoked(own_.serial)) {
      portcullis::log(LogLevel::Error, "online: this node's own certificate is revoked; peers "
                                       "will refuse it (log in again)");
    }
    const Bytes notice = encodeNotice(Notice{.revocations = bytes});
    std::vector<PeerId> revoked;
    for (const auto& [peer, state] : peers_) {
      if (revocations_->revoked(state.certificate.serial)) {
        revoked.push_back(peer);
      } else if (callbacks_.sendProviderMessage && (!from || peer != *from)) {
        callbacks_.sendProviderMessage(peer, notice);
      }
    }
    for (const PeerId& peer : revoked) {
      peers_.erase(peer);
      if (callbacks_.endSession) callbacks_.endSession(peer, "certificate revoked");
    }
  }

  // One timer for every expiry: the earliest peer certificate's end, and 80 % of this node's own
  // certificate's lifetime.
  void startTimer(asio::any_io_executor executor) {
    if (timer_) return;
    timer_ = std::make_shared<asio::steady_timer>(executor);
    rearm();
    asio::co_spawn(executor, expiryLoop(this, timer_, shared_), asio::detached);
  }

  void rearm() {
    if (!timer_) return;
    std::int64_t next = warnedExpiring_ || own_.expiresAt == 0
                            ? INT64_MAX
                            : own_.issuedAt + (own_.expiresAt - own_.issuedAt) * 4 / 5;
    for (const auto& [peer, state] : peers_) {
      next = std::min(next, state.certificate.expiresAt + options_.clockSkew + 1);
    }
    if (next == INT64_MAX) {
      timer_->expires_at(asio::steady_timer::time_point::max());
      return;
    }
    const std::int64_t wait = std::clamp<std::int64_t>(next - clock(), 0, 366 * 24 * 3600);
    timer_->expires_after(std::chrono::seconds(wait));
  }

  static asio::awaitable<void> expiryLoop(OnlineProvider* self,
                                          std::shared_ptr<asio::steady_timer> timer,
                                          std::shared_ptr<Shared> shared) {
    for (;;) {
      boost::system::error_code ec;
      co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (shared->closed) co_return;
      if (ec && ec != asio::error::operation_aborted) co_return;
      if (asio::steady_timer::clock_type::now() < timer->expiry()) continue;  // re-armed later
      self->expire();
    }
  }

  void expire() {
    const std::int64_t now = clock();
    std::vector<PeerId> ended;
    for (const auto& [peer, state] : peers_) {
      if (now > state.certificate.expiresAt + options_.clockSkew) ended.push_back(peer);
    }
    for (const PeerId& peer : ended) {
      peers_.erase(peer);
      portcullis::log(LogLevel::Info, fmt::format("online: {}'s certificate expired", peer.str()));
      if (callbacks_.endSession) callbacks_.endSession(peer, "certificate expired");
    }
    if (!warnedExpiring_ && own_.expiresAt != 0 && ownNearEnd()) {
      warnedExpiring_ = true;
      if (options_.service) {
        ownBytes();  // reissued: the next sessions show the new one
      } else {
        portcullis::log(LogLevel::Warn,
                        fmt::format("online: this node's certificate expires in {} s: log in "
                                    "again (`portcullis login`)", own_.expiresAt - now));
        if (options_.expiringSoon) options_.expiringSoon(own_);
      }
    }
    rearm();
  }

  OnlineOptions options_;
  NetworkKey networkKey_;
  PeerId self_;
  Certificate own_;
  bool warnedExpiring_ = false;
  std::optional<Revocations> revocations_;
  Bytes revocationsBytes_;
  std::map<PeerId, Peer> peers_;
  RepoCallbacks callbacks_;
  std::shared_ptr<asio::steady_timer> timer_;
  std::shared_ptr<Shared> shared_;
};

// Makes the provider from the [auth.online] table.
class OnlineFactory final : public AuthProviderFactory {
 public:
  std::string_view name() const override { return kName; }

  Result<std::unique_ptr<AuthProvider>> create(const ConfigTable& config) const override {
    auto settings = readSettings(config);
    if (!settings) return std::move(settings).error();
    OnlineOptions options{.appId = std::move(settings->appId),
                          .identity = std::move(settings->identity),
                          .serviceKeys = std::move(settings->serviceKeys),
                          .certificate = {},
                          .certificateFile = settings->certificateFile,
                          .clockSkew = settings->clockSkew,
                          .revocationsFile = std::move(settings->revocationsFile),
                          .service = nullptr,
                          .clock = {},
                          .expiringSoon = {}};
    if (config.contains("service")) {
      auto table = config.table("service");
      if (!table) return std::move(table).error();
      auto service = IdentityService::fromConfig(*table, options.appId);
      if (!service) return std::move(service).error();
      const Ed25519Key signer = keyOf((*service)->signingKey().publicKey());
      if (std::find(options.serviceKeys.begin(), options.serviceKeys.end(), signer) ==
          options.serviceKeys.end()) {
        return config.error("service-keys",
                            fmt::format("must include this service's own signing key {}",
                                        toHex(signer)));
      }
      options.service = std::move(*service);
      options.certificateFile.reset();
    } else {
      if (!options.certificateFile) {
        return config.error("certificate", "missing (the file `portcullis login` writes)");
      }
      auto bytes = loadCertificate(*options.certificateFile);
      if (!bytes) {
        return config.error("certificate", bytes.error().message() + " (run `portcullis login`)");
      }
      options.certificate = std::move(*bytes);
    }
    auto provider = makeOnlineProvider(std::move(options));
    if (!provider) {
      const bool aboutCertificate = provider.error().message().starts_with("certificate");
      return config.error(aboutCertificate ? "certificate" : "revocations",
                          provider.error().message());
    }
    return provider;
  }
};

}  // namespace

std::int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<OnlineSettings> readSettings(const ConfigTable& config) {
  if (auto ok = config.expectKeys({"app-id", "identity", "certificate", "service-keys",
                                   "clock-skew", "revocations", "service"});
      !ok) {
    return ok.error();
  }
  OnlineSettings out;
  auto appId = config.requiredString("app-id");
  if (!appId) return std::move(appId).error();
  if (!printableText(*appId, kMaxAppIdBytes)) {
    return config.error("app-id", "expected 1..256 bytes of printable ASCII");
  }
  out.appId = std::move(*appId);

  auto identityPath = config.path("identity");
  if (!identityPath) return std::move(identityPath).error();
  if (!*identityPath) return config.error("identity", "missing (required)");
  auto identity = DeviceKey::loadOrCreate((*identityPath)->string());
  if (!identity) return config.error("identity", identity.error().message());
  out.identity = std::make_shared<const DeviceKey>(std::move(*identity));

  auto keys = config.strings("service-keys");
  if (!keys) return std::move(keys).error();
  for (std::size_t i = 0; i < keys->size(); ++i) {
    auto key = PublicKey::parse((*keys)[i]);
    if (!key) return config.error("service-keys", i, "not an Ed25519 public key");
    out.serviceKeys.push_back(key->bytes());
  }
  if (out.serviceKeys.empty()) {
    return config.error("service-keys", "missing (the identity services' public keys)");
  }

  auto skew = config.integer("clock-skew");
  if (!skew) return std::move(skew).error();
  out.clockSkew = skew->value_or(60);
  if (out.clockSkew < 0 || out.clockSkew > 3600) {
    return config.error("clock-skew", "expected 0..3600 seconds");
  }
  auto certificate = config.path("certificate");
  if (!certificate) return std::move(certificate).error();
  out.certificateFile = *certificate;
  auto revocations = config.path("revocations");
  if (!revocations) return std::move(revocations).error();
  out.revocationsFile = *revocations;
  return out;
}

Result<std::unique_ptr<AuthProvider>> makeOnlineProvider(OnlineOptions options) {
  if (!options.identity) return Error(Errc::Config, "identity: missing");
  if (options.serviceKeys.empty()) return Error(Errc::Config, "service-keys: missing");
  const std::int64_t now = options.clock ? options.clock() : unixNow();
  const Ed25519Key self = keyOf(options.identity->publicKey());
  if (options.service) {
    options.certificate = options.service->issueOwn(self, now);
  } else if (options.certificate.empty()) {
    return Error(Errc::Config, "certificate: none (run `portcullis login`)");
  }
  auto own = openOwnCertificate(options.certificate, options, now);
  if (!own) return std::move(own).error();
  auto revocations = readRevocationsFile(options);
  if (!revocations) return std::move(revocations).error();
  portcullis::log(LogLevel::Info,
                  fmt::format("auth provider 'online': app '{}', this device is {}, user '{}'{}; "
                              "certificate {} valid until {}",
                              options.appId, toHex(self), own->userId,
                              options.service ? " (identity service)" : "", own->serial,
                              own->expiresAt));
  return std::unique_ptr<AuthProvider>(std::make_unique<OnlineProvider>(
      std::move(options), std::move(*own),
      *revocations ? std::optional<Revocations>((*revocations)->list) : std::nullopt,
      *revocations ? (*revocations)->bytes : Bytes{}));
}

asio::awaitable<Result<LoginResult>> login(std::unique_ptr<Stream> stream, std::string appId,
                                           std::shared_ptr<const DeviceKey> identity,
                                           std::vector<Ed25519Key> serviceKeys,
                                           std::string provider, std::string token) {
  const NetworkKey networkKey = networkKeyOf(appId);
  const ShsConfig config{.networkKey = networkKey, .identity = *identity};
  std::function<bool(const PublicKey&)> anyone = [](const PublicKey&) { return true; };
  auto handshake = shsHandshake(*stream, Side::Dialer, config, std::move(anyone));
  Result<ShsSession> shs = co_await std::move(handshake);
  if (!shs) co_return Error(shs.error().code(), "login: " + shs.error().message());
  std::unique_ptr<MessageChannel> channel =
      makeBoxStreamChannel(std::move(stream), std::move(*shs), kMaxHelloBytes);

  Hello hello{.body = Login{.provider = std::move(provider),
                            .token = Bytes(token.begin(), token.end())},
              .revocations = std::nullopt};
  sodium_memzero(token.data(), token.size());
  Bytes frame = encodeHello(hello);
  sodium_memzero(std::get<Login>(hello.body).token.data(), std::get<Login>(hello.body).token.size());
  auto sent = co_await channel->send(frame);
  sodium_memzero(frame.data(), frame.size());
  if (!sent) {
    channel->close();
    co_return Error(sent.error().code(), "login: " + sent.error().message());
  }
  auto reply = co_await channel->receive();
  channel->close();
  if (!reply) co_return Error(reply.error().code(), "login: " + reply.error().message());
  auto answer = decodeLoginAnswer(*reply);
  if (!answer) co_return Error(answer.error().code(), "login: " + answer.error().message());
  if (const auto* why = std::get_if<std::string>(&answer->body)) {
    co_return denied("login refused by the identity service: " + *why);
  }
  Bytes certificate = std::move(std::get<Bytes>(answer->body));
  auto parsed = openCertificate(certificate, serviceKeys);
  if (!parsed) co_return Error(parsed.error().code(), "login: " + parsed.error().message());
  if (auto ok = checkCertificate(*parsed, appId, keyOf(identity->publicKey()), unixNow(), 60,
                                 nullptr);
      !ok) {
    co_return Error(ok.error().code(), "login: " + ok.error().message());
  }
  co_return LoginResult{.certificate = std::move(certificate),
                        .parsed = std::move(*parsed),
                        .clientInfo = std::move(answer->clientInfo)};
}

// Written to a temporary file in the same folder, fsync'd, renamed over the old one, and the
// folder fsync'd: a crash leaves the old certificate or the new one, never half of one.
Result<void> saveCertificate(const std::filesystem::path& file, ByteView bytes) {
  const std::string name = file.string();
  const std::string temp = name + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error(Errc::Io, fmt::format("{}: {}", temp, std::strerror(errno)));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  const bool ok = done == bytes.size() && ::fchmod(fd, 0600) == 0 && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok || ::rename(temp.c_str(), name.c_str()) != 0) {
    const int why = ok ? errno : err;
    ::unlink(temp.c_str());
    return Error(Errc::Io, fmt::format("{}: {}", name, std::strerror(why)));
  }
  const std::string folder = file.has_parent_path() ? file.parent_path().string() : ".";
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

Result<Bytes> loadCertificate(const std::filesystem::path& file) {
  return readSmallFile(file, kMaxCertificateBytes);
}

std::optional<Certificate> ownCertificate(const AuthProvider& provider) {
  const auto* online = dynamic_cast<const OnlineProvider*>(&provider);
  if (online == nullptr) return std::nullopt;
  return online->own();
}

Result<void> registerProvider(ProviderRegistry& registry) {
  return registry.add(std::make_unique<OnlineFactory>());
}

}  // namespace portcullis::online
