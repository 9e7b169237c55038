// online.cc — the `online` provider's verbs: `login` (a certificate from an identity service,
// kept next to the device key), `whoami` (what that certificate says) and `online revoke` (an
// identity service's new revocation list). All read the [auth.online] table of --config.

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

#include "online_provider.h"
#include "tcp_network.h"
#include "tool.h"

namespace portcullis::tool {

namespace {

using Clock = std::chrono::steady_clock;

// The [auth.online] table of --config, which must choose the online provider.
Result<ConfigTable> onlineTable(const OnlineArgs& args) {
  if (args.config.empty()) {
    return Error(Errc::Config, "--config is required: its [auth.online] table names the app, "
                               "the device key and where the certificate is kept");
  }
  auto root = loadNodeConfig(args.config);
  if (!root) return std::move(root).error();
  auto auth = root->table("auth");
  if (!auth) return std::move(auth).error();
  auto provider = auth->string("provider");
  if (!provider) return std::move(provider).error();
  if (provider->value_or("") != "online") {
    return auth->error("provider", "this verb needs provider = \"online\"");
  }
  return auth->table("online");
}

// --token: the token itself, @FILE, or - for the first line of stdin. Trailing line ends go.
Result<std::string> tokenOf(const std::string& arg) {
  std::string token;
  if (arg == "-") {
    std::getline(std::cin, token);
  } else if (arg.starts_with("@")) {
    std::ifstream in(arg.substr(1), std::ios::binary);
    if (!in) return Error(Errc::Config, "--token: cannot read " + arg.substr(1));
    token.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else {
    token = arg;
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) return Error(Errc::Config, "--token: empty");
  if (token.size() > online::kMaxTokenBytes) {
    secureWipe(token.data(), token.size());
    return Error(Errc::Config, "--token: over 16 KiB");
  }
  return token;
}

nlohmann::json describe(const online::Certificate& c, const std::string& device) {
  return {{"user", c.userId},         {"roles", c.roles},
          {"read", c.permissions.read}, {"write", c.permissions.write},
          {"issuedAt", c.issuedAt},   {"expiresAt", c.expiresAt},
          {"serial", c.serial},       {"device", device},
          {"app", c.appId}};
}

void printHuman(const online::Certificate& c, std::int64_t now) {
  auto list = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out.empty() ? std::string("(none)") : out;
  };
  std::printf("user        %s\nroles       %s\nread        %s\nwrite       %s\n", c.userId.c_str(),
              list(c.roles).c_str(), list(c.permissions.read).c_str(),
              list(c.permissions.write).c_str());
  const std::int64_t left = c.expiresAt - now;
  std::printf("expires     %lld (%s)\nserial      %llu\n", static_cast<long long>(c.expiresAt),
              left >= 0 ? ("in " + std::to_string(left) + " s").c_str() : "expired",
              static_cast<unsigned long long>(c.serial));
}

int login(const OnlineArgs& args) {
  auto table = onlineTable(args);
  if (!table) return failWith(kExitUsage, table.error().message());
  auto settings = online::readSettings(*table);
  if (!settings) return failWith(kExitUsage, settings.error().message());
  if (!settings->certificateFile) {
    return failWith(kExitUsage, table->error("certificate", "missing: where login keeps the "
                                                            "certificate").message());
  }
  auto token = tokenOf(args.token);
  if (!token) return failWith(kExitUsage, token.error().message());

  asio::io_context ctx;
  const ServerDial dial(args.service);
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(args.timeoutSeconds));
  auto net = TcpNetworkAdapter::create(
      ctx.get_executor(), TcpNetworkOptions{.listen = {}, .connect = {args.service},
                                            .minBackoff = std::chrono::milliseconds(50),
                                            .maxBackoff = std::chrono::milliseconds(1'000),
                                            .connectTimeout = timeout,
                                            .onDial = dial.reporter({})});
  if (!net) {
    secureWipe(token->data(), token->size());
    return failWith(kExitUsage, "--service: " + net.error().message());
  }
  std::optional<Result<online::LoginResult>> result;
  bool dialed = false;
  (*net)->start([&](std::unique_ptr<Stream> stream, Side) {
    if (dialed) return;  // a redial after the login: not needed
    dialed = true;
    asio::co_spawn(
        ctx,
        [&, s = std::move(stream)]() mutable -> asio::awaitable<void> {
          // (No temporaries with destructors inside co_await: g++ 12 destroys them twice.)
          auto attempt = online::login(std::move(s), settings->appId, settings->identity,
                                       settings->serviceKeys, args.provider, std::move(*token));
          result = co_await std::move(attempt);
        },
        asio::detached);
  });
  const auto deadline = Clock::now() + timeout;
  while (!result && !dial.failed() && Clock::now() < deadline) {
    ctx.run_for(std::chrono::milliseconds(10));
    if (ctx.stopped()) ctx.restart();
  }
  (*net)->stop();
  if (token->size() > 0) secureWipe(token->data(), token->size());
  if (!result) return failWith(kExitFailed, dial.error(args.timeoutSeconds).message());
  if (!*result) {
    return failWith(kExitFailed, describeHandshakeFailure("online", result->error()));
  }
  if (auto saved = online::saveCertificate(*settings->certificateFile, (*result)->certificate);
      !saved) {
    return failWith(kExitFailed, "certificate: " + saved.error().message());
  }
  const online::Certificate& c = (*result)->parsed;
  if (args.json) {
    nlohmann::json out = describe(c, settings->identity->publicKeyHex());
    out["certificate"] = settings->certificateFile->string();
    if ((*result)->clientInfo) {
      out["clientInfo"] = nlohmann::json::parse(*(*result)->clientInfo, nullptr, false);
    }
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("logged in; certificate kept in %s\n", settings->certificateFile->c_str());
    printHuman(c, online::unixNow());
  }
  return kExitOk;
}

int whoami(const OnlineArgs& args) {
  auto table = onlineTable(args);
  if (!table) return failWith(kExitUsage, table.error().message());
  auto settings = online::readSettings(*table);
  if (!settings) return failWith(kExitUsage, settings.error().message());
  if (!settings->certificateFile) {
    return failWith(kExitFailed, "no certificate file in [auth.online]: run `portcullis login`");
  }
  auto bytes = online::loadCertificate(*settings->certificateFile);
  if (!bytes) return failWith(kExitFailed, bytes.error().message() + " (run `portcullis login`)");
  auto c = online::openCertificate(*bytes, settings->serviceKeys);
  if (!c) return failWith(kExitFailed, settings->certificateFile->string() + ": " +
                                           c.error().message());
  const std::int64_t now = online::unixNow();
  auto valid = online::checkCertificate(*c, settings->appId,
                                        settings->identity->publicKey().bytes(), now,
                                        settings->clockSkew, nullptr);
  if (args.json) {
    nlohmann::json out = describe(*c, settings->identity->publicKeyHex());
    out["valid"] = static_cast<bool>(valid);
    if (!valid) out["problem"] = valid.error().message();
    std::printf("%s\n", out.dump().c_str());
  } else {
    printHuman(*c, now);
    if (!valid) std::printf("problem     %s\n", valid.error().message().c_str());
  }
  return valid ? kExitOk : kExitFailed;
}

// A new list: the serials of the current one (if any) and the new ones, sequence + 1, signed
// with the service's key. The running service passes it on after a SIGHUP.
int revoke(const OnlineArgs& args) {
  auto table = onlineTable(args);
  if (!table) return failWith(kExitUsage, table.error().message());
  auto settings = online::readSettings(*table);
  if (!settings) return failWith(kExitUsage, settings.error().message());
  if (!table->contains("service")) {
    return failWith(kExitUsage, table->error("service", "revoke runs on the identity service's "
                                                        "config").message());
  }
  if (!settings->revocationsFile) {
    return failWith(kExitUsage, table->error("revocations", "missing: where the service keeps "
                                                            "its revocation list").message());
  }
  auto serviceTable = table->table("service");
  if (!serviceTable) return failWith(kExitUsage, serviceTable.error().message());
  auto service = online::IdentityService::fromConfig(*serviceTable, settings->appId);
  if (!service) return failWith(kExitUsage, service.error().message());
  const DeviceKey& signer = (*service)->signingKey();
  const std::vector<online::Ed25519Key> own = {signer.publicKey().bytes()};

  online::Revocations list{.appId = settings->appId, .sequence = 0, .issuedAt = 0, .serials = {}};
  std::error_code ec;
  if (std::filesystem::exists(*settings->revocationsFile, ec)) {
    auto bytes = online::loadCertificate(*settings->revocationsFile);
    if (!bytes) return failWith(kExitFailed, bytes.error().message());
    auto current = online::openRevocations(*bytes, own);
    if (!current) {
      return failWith(kExitFailed, settings->revocationsFile->string() + ": " +
                                       current.error().message());
    }
    list = std::move(*current);
  }
  list.serials.insert(list.serials.end(), args.serials.begin(), args.serials.end());
  std::sort(list.serials.begin(), list.serials.end());
  list.serials.erase(std::unique(list.serials.begin(), list.serials.end()), list.serials.end());
  if (list.serials.size() > online::kMaxRevokedSerials) {
    return failWith(kExitFailed, "the revocation list would hold more than 65536 serials");
  }
  list.sequence += 1;
  list.issuedAt = online::unixNow();
  if (auto saved = online::saveCertificate(*settings->revocationsFile,
                                           online::signRevocations(list, signer));
      !saved) {
    return failWith(kExitFailed, saved.error().message());
  }
  if (args.json) {
    std::printf("%s\n", nlohmann::json{{"sequence", list.sequence},
                                       {"serials", list.serials},
                                       {"file", settings->revocationsFile->string()}}
                            .dump()
                            .c_str());
  } else {
    std::printf("revocation list %llu: %zu serials in %s\n"
                "send SIGHUP to the running service so that it passes the list on\n",
                static_cast<unsigned long long>(list.sequence), list.serials.size(),
                settings->revocationsFile->c_str());
  }
  return kExitOk;
}

}  // namespace

int runOnline(const OnlineArgs& args) {
  setupLogging(args.logLevel, "error");
  if (args.verb == "login") return login(args);
  if (args.verb == "whoami") return whoami(args);
  return revoke(args);
}

}  // namespace portcullis::tool
