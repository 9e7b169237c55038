// Fuzz target: the online provider's webhook answer (providers/online/webhook.h,
// parseWebhookAnswer), the JSON body an application's webhook returns to the identity service.
// The client reads it from the network, so every byte is untrusted.
//
// Input: the body's bytes (at most kMaxBytes, the client's default answer limit: longer inputs
// are skipped).
//
// Invariants, beyond "no crash, no leak, no hang":
//   * parsing is a function: the same bytes twice give the same verdict, answer and message;
//   * a refusal is Errc::Malformed, and its message quotes nothing of the body (the seeds hold
//     the marker "S3CRET" in every string, the token a confused service might echo);
//   * an accepted answer keeps every bound: userId and each role printable ASCII of 1..their
//     limit, at most kMaxRoles roles, expirationSeconds 0 or 1..kMaxExpirationSeconds,
//     permissions that pass checkPermissions, clientInfo empty or at most kMaxClientInfoBytes of
//     JSON text; with authenticate true, userId is non-empty and expirationSeconds in range;
//   * written back as JSON (by this target, not by the parser) and parsed again, an accepted
//     answer gives an equal answer.
#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "webhook.h"

namespace portcullis::fuzz {
namespace {

using online::WebhookAnswer;

constexpr const char* kTarget = "webhook_answer_fuzz";
constexpr std::size_t kMaxBytes = 64u << 10;

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

bool printableText(const std::string& text, std::size_t maxBytes) {
  return !text.empty() && text.size() <= maxBytes &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// The answer as a webhook would send it, written from the field rules, not by the parser.
std::string serialise(const WebhookAnswer& answer) {
  nlohmann::json out = nlohmann::json::object();
  out["authenticate"] = answer.authenticate;
  if (!answer.userId.empty()) out["userId"] = answer.userId;
  if (answer.expirationSeconds != 0) out["expirationSeconds"] = answer.expirationSeconds;
  if (!answer.roles.empty()) out["roles"] = answer.roles;
  if (!answer.permissions.read.empty() || !answer.permissions.write.empty()) {
    out["permissions"] = {{"read", answer.permissions.read}, {"write", answer.permissions.write}};
  }
  if (!answer.clientInfo.empty()) {
    nlohmann::json info = nlohmann::json::parse(answer.clientInfo, nullptr, false);
    check(!info.is_discarded(), "an accepted clientInfo is not JSON text");
    out["clientInfo"] = std::move(info);
  }
  return out.dump();
}

void checkBounds(const WebhookAnswer& answer) {
  check(answer.userId.empty() || printableText(answer.userId, online::kMaxUserIdBytes),
        "an accepted userId is not 1..kMaxUserIdBytes of printable ASCII");
  check(
      answer.expirationSeconds == 0 || (answer.expirationSeconds >= 1 &&
                                        answer.expirationSeconds <= online::kMaxExpirationSeconds),
      "an accepted expirationSeconds is out of range");
  check(answer.roles.size() <= online::kMaxRoles, "more roles than kMaxRoles");
  for (const std::string& role : answer.roles) {
    check(printableText(role, online::kMaxRoleBytes), "an accepted role is out of bounds");
  }
  check(online::checkPermissions(answer.permissions).has_value(),
        "accepted permissions fail checkPermissions");
  check(answer.clientInfo.size() <= online::kMaxClientInfoBytes, "clientInfo over its limit");
  if (answer.authenticate) {
    check(!answer.userId.empty(), "an allowing answer without a userId");
    check(answer.expirationSeconds >= 1, "an allowing answer without an expiration");
  }
}

void run(ByteView input) {
  if (input.size() > kMaxBytes) return;
  const std::string_view body(reinterpret_cast<const char*>(input.data()), input.size());
  auto first = online::parseWebhookAnswer(body);
  auto second = online::parseWebhookAnswer(body);
  check(first.has_value() == second.has_value(), "the same body parsed two ways");
  if (!first) {
    check(first.error().code() == Errc::Malformed, "a refusal that is not Errc::Malformed");
    check(first.error().message() == second.error().message(), "two messages for one body");
    check(first.error().message().find("S3CRET") == std::string::npos,
          "a refusal's message quotes the body");
    return;
  }
  check(*first == *second, "the same body gave two answers");
  checkBounds(*first);
  const std::string again = serialise(*first);
  auto reparsed = online::parseWebhookAnswer(again);
  check(reparsed.has_value(), "an accepted answer, written back, is refused");
  check(*reparsed == *first, "an accepted answer, written back and parsed, differs");
}

template <typename Run>
void guarded(Run&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    fail(kTarget, std::string("threw: ") + e.what());
  } catch (...) {
    fail(kTarget, "threw a non-standard exception");
  }
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("webhook_answer_fuzz", "sodium_init failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded([&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
