// providers/team/invitation.cc — invitation codes, Argon2id key derivation and admission requests
// (team spec §5, §5.1, §6.3).
#include "invitation.h"

#include <sodium.h>

#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "wire/link_codec.h"

namespace portcullis::team {

namespace {

constexpr std::string_view kBase58Alphabet =
    "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
static_assert(kBase58Alphabet.size() == 58);

constexpr std::size_t kInvitationSeedBytes = 32;  // crypto_pwhash output = sign seed
static_assert(kInvitationSeedBytes == crypto_sign_SEEDBYTES);
constexpr std::size_t kSaltBytes = 16;  // H128(team ID)
static_assert(kSaltBytes == crypto_pwhash_SALTBYTES);
static_assert(sizeof(InvitationKey{}.secretKey) == crypto_sign_SECRETKEYBYTES);
static_assert(kInvitationKeyTagBytes >= crypto_generichash_BYTES_MIN);

bool inAlphabet(char c) noexcept { return kBase58Alphabet.find(c) != std::string_view::npos; }

// The whitespace §5 deletes: ASCII's, as typed or pasted (std::isspace would consult the locale).
bool isSpace(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

Error malformedCode(std::string_view why) {
  return Error(Errc::Malformed, "invitation code: " + std::string(why));
}

std::array<std::uint8_t, kSaltBytes> saltOf(const Hash& teamId) {
  std::array<std::uint8_t, kSaltBytes> salt{};
  crypto_generichash(salt.data(), salt.size(), teamId.data(), teamId.size(), nullptr, 0);
  return salt;
}

// Runs `job` (returning Result<InvitationKey>) on `worker` and completes with its result on the
// executor of the awaiting coroutine. Not `co_await asio::post(worker, use_awaitable)`: in Asio
// 1.18 a use_awaitable handler is always dispatched on the coroutine's own executor, so that hop
// would resume right back on the caller's loop and Argon2id would run there.
template <typename Job>
auto runOnWorker(asio::any_io_executor worker, Job job) {
  auto initiate = [worker, job = std::move(job)](auto handler) mutable {
    // Counted as work of the caller's io_context, so that its run() waits for the result.
    auto home = asio::prefer(asio::get_associated_executor(handler),
                             asio::execution::outstanding_work.tracked);
    asio::post(worker, [job = std::move(job), handler = std::move(handler),
                        home = std::move(home)]() mutable {
      Result<InvitationKey> result = job();
      asio::post(home, [handler = std::move(handler), result = std::move(result)]() mutable {
        handler(std::move(result));
      });
    });
  };
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<InvitationKey>)>(
      std::move(initiate), asio::use_awaitable);
}

}  // namespace

std::string base58Encode(ByteView bytes) {
  std::size_t zeros = 0;
  while (zeros < bytes.size() && bytes[zeros] == 0) ++zeros;

  // Base-58 digits, least significant first; each byte multiplies the number by 256 and adds
  // itself. log(256)/log(58) < 1.37, so 138 digits per 100 bytes always suffice.
  std::string digits;
  digits.reserve((bytes.size() - zeros) * 138 / 100 + 1);
  for (std::size_t i = zeros; i < bytes.size(); ++i) {
    unsigned carry = bytes[i];
    for (char& d : digits) {
      carry += static_cast<unsigned>(static_cast<unsigned char>(d)) * 256u;
      d = static_cast<char>(carry % 58u);
      carry /= 58u;
    }
    while (carry != 0) {
      digits.push_back(static_cast<char>(carry % 58u));
      carry /= 58u;
    }
  }

  std::string out(zeros, '1');
  out.reserve(zeros + digits.size());
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    out.push_back(kBase58Alphabet[static_cast<unsigned char>(*it)]);
  }
  return out;
}

InvitationCode::InvitationCode(InvitationCode&& other) noexcept : text_(std::move(other.text_)) {
  other.wipe();
}

InvitationCode& InvitationCode::operator=(InvitationCode&& other) noexcept {
  if (this != &other) {
    wipe();
    text_ = std::move(other.text_);
    other.wipe();
  }
  return *this;
}

InvitationCode::~InvitationCode() { wipe(); }

void InvitationCode::wipe() noexcept {
  sodium_memzero(text_.data(), text_.capacity());
  text_.clear();
}

InvitationCode generateInvitationCode(const Hash& teamId) {
  const std::string teamText = base58Encode(teamId);
  std::string text;
  // Reserved up front so that the seed is written once, never left behind by a reallocation.
  text.reserve(kInvitationPrefixChars + 1 + kInvitationSeedChars);
  text.append(teamText, 0, kInvitationPrefixChars);
  text.push_back('-');
  for (std::size_t i = 0; i < kInvitationSeedChars; ++i) {
    text.push_back(kBase58Alphabet[randombytes_uniform(kBase58Alphabet.size())]);
  }
  return InvitationCode(std::move(text));
}

Result<ParsedCode> parseInvitationCode(std::string_view text) {
  ParsedCode code;
  // Characters counted past the limits are not kept: only the counts are, for the messages.
  struct {
    std::size_t prefixChars = 0;
    std::size_t seedChars = 0;
    bool sawDash = false;
  } parts;
  for (const char c : text) {
    if (isSpace(c)) continue;
    if (c == '-') {
      parts.sawDash = true;  // the first splits; any later one is deleted
      continue;
    }
    if (!inAlphabet(c)) {
      // Says neither which character nor where: either could narrow the seed.
      return malformedCode(
          "holds a character outside the base58 alphabet (0, O, I and l are never used)");
    }
    if (!parts.sawDash) {
      if (++parts.prefixChars > kInvitationPrefixChars) continue;  // reported below
      code.prefix_.push_back(c);
    } else {
      if (parts.seedChars < kInvitationSeedChars) {
        code.seed_.data()[parts.seedChars] = static_cast<std::uint8_t>(c);
      }
      ++parts.seedChars;
    }
  }
  if (!parts.sawDash) return malformedCode("has no '-' between its prefix and its seed");
  if (parts.prefixChars != kInvitationPrefixChars) {
    return malformedCode("its prefix (before the first '-') must be 6 characters");
  }
  if (parts.seedChars != kInvitationSeedChars) {
    return malformedCode("its seed (after the first '-') must be 16 characters");
  }
  return code;
}

bool prefixMatches(const ParsedCode& code, const Hash& teamId) {
  const std::string teamText = base58Encode(teamId);
  return code.prefix().size() == kInvitationPrefixChars &&
         teamText.compare(0, kInvitationPrefixChars, code.prefix()) == 0;
}

Result<InvitationKey> deriveInvitationKey(const ParsedCode& code, const Hash& teamId) {
  if (!prefixMatches(code, teamId)) {
    return Error(Errc::Denied, "invitation code: its prefix does not match this team");
  }
  const auto salt = saltOf(teamId);
  SecretKey<kInvitationSeedBytes> seed;  // wiped when it goes out of scope
  if (crypto_pwhash(seed.data(), seed.size(), reinterpret_cast<const char*>(code.seed().data()),
                    code.seed().size(), salt.data(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                    crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Error(Errc::Overloaded, "invitation key: Argon2id could not allocate its memory");
  }
  InvitationKey key;
  crypto_sign_seed_keypair(key.publicKey.data(), key.secretKey.data(), seed.data());
  return key;
}

// Threads: the coroutine runs on the caller's executor up to the co_await; the job (Argon2id)
// runs on a thread of `worker`, which then posts the result back; the coroutine resumes on the
// caller's executor.
//
// The job is a named local, not a lambda written inside the co_await expression: g++ 12
// miscompiles that form here (the ParsedCode it captured was destroyed through a dangling string
// pointer; the async tests crash with it).
asio::awaitable<Result<InvitationKey>> deriveInvitationKeyAsync(ParsedCode code, Hash teamId,
                                                                asio::any_io_executor worker) {
  auto job = [code = std::move(code), teamId]() { return deriveInvitationKey(code, teamId); };
  auto derivation = runOnWorker(std::move(worker), std::move(job));
  Result<InvitationKey> key = co_await std::move(derivation);
  co_return key;
}

// The pool lives in this coroutine's frame. While the job is away the frame belongs to the job
// (through the handler), so the pool cannot be destroyed under it; once the result has been posted
// back the pool's thread has nothing left to do, and its join when the frame ends is immediate.
asio::awaitable<Result<InvitationKey>> deriveInvitationKeyAsync(ParsedCode code, Hash teamId) {
  asio::thread_pool worker(1);
  auto derivation = deriveInvitationKeyAsync(std::move(code), teamId, worker.get_executor());
  Result<InvitationKey> key = co_await std::move(derivation);
  co_return key;
}

std::array<std::uint8_t, kInvitationKeyTagBytes> invitationKeyTag(const Key& publicKey) {
  std::array<std::uint8_t, kInvitationKeyTagBytes> tag{};
  crypto_generichash(tag.data(), tag.size(), publicKey.data(), publicKey.size(), nullptr, 0);
  return tag;
}

Signature signConsent(const Hash& teamId, const Hash& invitation, const DeviceKey& device,
                      const EncKey& encKey, std::string_view userId) {
  if (userId.size() > kMaxInvitationUserIdBytes) {
    throw std::invalid_argument("signConsent: userId longer than 64 bytes");
  }
  const Key deviceId = device.publicKey().bytes();
  const Bytes tuple = admissionTuple(teamId, invitation, deviceId, encKey, userId);
  return signBytes(tuple, device.secretKey().span());
}

AdmissionRequest makeAdmissionRequest(const Hash& teamId, const Hash& invitation,
                                      const InvitationKey& invitationKey,
                                      const DeviceKey& newDevice, const EncKey& encKey,
                                      std::string_view userId) {
  AdmissionRequest request;
  request.invitation = invitation;
  request.deviceId = newDevice.publicKey().bytes();
  request.encKey = encKey;
  request.userId = std::string(userId);
  request.consent = signConsent(teamId, invitation, newDevice, encKey, userId);
  const Bytes tuple = admissionTuple(teamId, invitation, request.deviceId, encKey, userId);
  request.inviteSig = signBytes(tuple, invitationKey.secretKey.span());
  return request;
}

bool verifyAdmissionRequest(const Hash& teamId, const AdmissionRequest& request,
                            const Key& invitationPublicKey) {
  // Longer would not even fit the tuple's u8 length, and §1 caps a userId at 64 bytes.
  if (request.userId.size() > kMaxInvitationUserIdBytes) return false;
  const Bytes tuple = admissionTuple(teamId, request.invitation, request.deviceId,
                                     request.encKey, request.userId);
  // Both are checked whatever the first says: the time taken tells nothing of which failed.
  const bool consentOk = verifyBytes(tuple, request.consent, request.deviceId);
  const bool inviteOk = verifyBytes(tuple, request.inviteSig, invitationPublicKey);
  return consentOk && inviteOk;
}

namespace {

Bytes invitationProofMessage(const Hash& h2, const Key& deviceId, const EncKey& encKey,
                             std::string_view userId) {
  constexpr std::string_view kLabel = "portcullis/team/v3/invitation-proof";
  const auto label = ByteView(reinterpret_cast<const std::uint8_t*>(kLabel.data()), kLabel.size());
  const auto user = ByteView(reinterpret_cast<const std::uint8_t*>(userId.data()), userId.size());
  const std::uint8_t length = static_cast<std::uint8_t>(userId.size());
  Bytes m;
  for (ByteView part : {label, ByteView(h2), ByteView(deviceId), ByteView(encKey),
                        ByteView(&length, 1), user}) {
    m.insert(m.end(), part.begin(), part.end());
  }
  return m;
}

}  // namespace

Signature signInvitationProof(const InvitationKey& invitationKey, const Hash& h2,
                              const Key& deviceId, const EncKey& encKey, std::string_view userId) {
  if (userId.size() > kMaxInvitationUserIdBytes) {
    throw std::invalid_argument("signInvitationProof: userId longer than 64 bytes");
  }
  return signBytes(invitationProofMessage(h2, deviceId, encKey, userId),
                   invitationKey.secretKey.span());
}

bool verifyInvitationProof(const Key& invitationPublicKey, const Signature& proof, const Hash& h2,
                           const Key& deviceId, const EncKey& encKey, std::string_view userId) {
  if (userId.size() > kMaxInvitationUserIdBytes) return false;
  return verifyBytes(invitationProofMessage(h2, deviceId, encKey, userId), proof,
                     invitationPublicKey);
}

Result<std::uint64_t> parseDurationMs(std::string_view text) {
  const auto malformed = [](std::string_view why) {
    return Error(Errc::Malformed, "duration: " + std::string(why) +
                                      " (a positive whole number and s, m, h, d or w, e.g. 7d)");
  };
  if (text.empty()) return malformed("is empty");

  std::uint64_t unitMs = 0;
  switch (text.back()) {
    case 's': unitMs = 1000; break;
    case 'm': unitMs = 60 * 1000; break;
    case 'h': unitMs = 60 * 60 * 1000; break;
    case 'd': unitMs = 24 * 60 * 60 * 1000; break;
    case 'w': unitMs = 7 * 24 * 60 * 60 * 1000; break;
    default:
      if (text.back() >= '0' && text.back() <= '9') return malformed("has no unit");
      return malformed("has an unknown unit");
  }
  const std::string_view number = text.substr(0, text.size() - 1);
  if (number.empty()) return malformed("has no number");
  for (const char c : number) {
    // from_chars alone would accept a leading '-' for signed types and stop at junk; be exact.
    if (c < '0' || c > '9') return malformed("must be digits followed by one unit");
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec == std::errc::result_out_of_range || end != number.data() + number.size()) {
    return malformed("is too large");
  }
  if (value == 0) return malformed("must be more than zero");
  if (value > UINT64_MAX / unitMs) return malformed("is too large");
  return value * unitMs;
}

}  // namespace portcullis::team
