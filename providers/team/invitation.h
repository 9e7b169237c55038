// providers/team/invitation.h — invitation codes and the keys derived from them (team spec §5),
// and the signed admission request an invitee hands to the admitting device (§5.1, §6.3).
//
// Layer: the team provider's graph library; no I/O and no graph state. An inviter shows a code
// `PREFIX-SEED` once: PREFIX is the first 6 base58 characters of the team ID (it lets an invitee
// find the team, §6.1 mode 1), SEED is 16 random base58 characters that only the invitee learns.
// Argon2id turns SEED, salted with the team ID, into the invitation's Ed25519 key pair; the invite
// link records only its public key. The seed is never stored: codes, parsed codes and derived keys
// are move-only and wipe their secret bytes when destroyed, and no error message repeats them.
//
// Threads: every function except deriveInvitationKeyAsync is pure (libsodium only; sodium_init()
// must have run) and may be called on any thread. deriveInvitationKey blocks for the Argon2id run
// (about 64 MiB and tens of milliseconds), so it MUST NOT run on an event loop; the async forms
// run it on a worker thread and resume the caller on its own executor.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "link.h"
#include "portcullis/asio.h"
#include "portcullis/result.h"
#include "portcullis/secret_handshake.h"
#include "portcullis/types.h"

namespace portcullis::team {

inline constexpr std::size_t kInvitationPrefixChars = 6;
inline constexpr std::size_t kInvitationSeedChars = 16;  // ≈ 93.7 bits
inline constexpr std::size_t kInvitationKeyTagBytes = 16;
// The bytes of a member's userId (§1); a device invitation's request has none.
inline constexpr std::size_t kMaxInvitationUserIdBytes = 64;

// Bitcoin's base58 of `bytes` as one big-endian number, each leading zero byte written as '1'.
// Empty input gives an empty string. Not secret-safe: use it for public values (team IDs).
[[nodiscard]] std::string base58Encode(ByteView bytes);

// A freshly generated code, "PREFIX-SEED" (23 characters). The only copy of the seed: show it to
// the user once and let it go. Move-only; the text is wiped when destroyed or moved from.
class InvitationCode {
 public:
  InvitationCode(InvitationCode&& other) noexcept;
  InvitationCode& operator=(InvitationCode&& other) noexcept;
  InvitationCode(const InvitationCode&) = delete;
  InvitationCode& operator=(const InvitationCode&) = delete;
  ~InvitationCode();

  // Valid while this object lives and is not moved from.
  std::string_view text() const noexcept { return text_; }

 private:
  explicit InvitationCode(std::string text) noexcept : text_(std::move(text)) {}
  friend InvitationCode generateInvitationCode(const Hash& teamId);
  // Zeroes the whole buffer (capacity, not size: a short string's bytes stay in place when moved).
  void wipe() noexcept;
  std::string text_;
};

// A new code for `teamId`, its seed drawn with randombytes_uniform(58). Nothing is kept.
[[nodiscard]] InvitationCode generateInvitationCode(const Hash& teamId);

// A code as typed by the invitee, normalised: the 6 prefix characters and the 16 seed characters
// (ASCII, base58 alphabet). Move-only; the seed is wiped when destroyed or moved from.
class ParsedCode {
 public:
  ParsedCode(ParsedCode&&) noexcept = default;
  ParsedCode& operator=(ParsedCode&&) noexcept = default;

  // Not secret: it is derived from the team ID and sent in the clear in §6.1's mode 1.
  const std::string& prefix() const noexcept { return prefix_; }
  // The seed characters as bytes: Argon2id's password. Never log or copy them.
  const SecretKey<kInvitationSeedChars>& seed() const noexcept { return seed_; }

 private:
  ParsedCode() = default;
  friend Result<ParsedCode> parseInvitationCode(std::string_view text);
  std::string prefix_;
  SecretKey<kInvitationSeedChars> seed_;
};

// Normalises as §5 says: deletes all ASCII whitespace, splits at the first '-', deletes '-' from
// the seed part. Errc::Malformed, with a one-line message that never quotes the input, when a
// character is outside the base58 alphabet (so 0, O, I, l and any non-ASCII byte), when there is
// no '-', or when the prefix is not 6 or the seed not 16 characters. The caller owns `text` and
// should wipe it afterwards.
[[nodiscard]] Result<ParsedCode> parseInvitationCode(std::string_view text);

// Whether the code's prefix is the first 6 base58 characters of `teamId`: the invitee's check on
// the responder's claimed team (§6.3) before it runs Argon2id.
[[nodiscard]] bool prefixMatches(const ParsedCode& code, const Hash& teamId);

// An invitation's Ed25519 key pair. Move-only; the secret half (libsodium's 64-byte form,
// seed ‖ public key) is wiped when destroyed.
struct InvitationKey {
  Key publicKey{};
  SecretKey<64> secretKey;
};

// §5's key pair: crypto_sign_seed_keypair(crypto_pwhash(32 bytes, password = the seed
// characters, salt = H128(teamId), OPSLIMIT_INTERACTIVE, MEMLIMIT_INTERACTIVE, ARGON2ID13)).
// Blocks the calling thread for the whole Argon2id run: never call it on an event loop.
// Errc::Denied when the code's prefix does not match `teamId` (it is not this team's code, and
// §6.3 says to stop before Argon2id); Errc::Overloaded when Argon2id cannot get its memory.
[[nodiscard]] Result<InvitationKey> deriveInvitationKey(const ParsedCode& code,
                                                        const Hash& teamId);

// deriveInvitationKey on `worker`, completing on the awaiting coroutine's executor. `worker` must
// be an executor whose threads may block for the Argon2id run (an asio::thread_pool's, say, whose
// size bounds how many run at once: each holds 64 MiB), never the caller's own; its context must
// outlive the awaitable, and so must the caller's io_context, which the pending derivation keeps
// from running out of work. Only an invitee derives (the admitting side verifies with the public
// key), so peers cannot make us run it.
asio::awaitable<Result<InvitationKey>> deriveInvitationKeyAsync(ParsedCode code, Hash teamId,
                                                                asio::any_io_executor worker);

// The same on a thread of its own, started for this call and joined (after it has finished) when
// the awaitable completes. The caller's io_context must outlive the awaitable.
asio::awaitable<Result<InvitationKey>> deriveInvitationKeyAsync(ParsedCode code, Hash teamId);

// H128(publicKey): the pkTag of §6.1's Offer, by which an invitee finds its invitation.
[[nodiscard]] std::array<std::uint8_t, kInvitationKeyTagBytes> invitationKeyTag(
    const Key& publicKey);

// What an invitee sends (§6.3's Claim_I) so that a member can post admitMember or admitDevice:
// its new device and the two signatures over the admission tuple of §5.1.
struct AdmissionRequest {
  Hash invitation{};     // the invite link's hash
  Key deviceId{};
  EncKey encKey{};
  std::string userId;    // empty for a device invitation
  Signature consent{};   // by deviceId
  Signature inviteSig{}; // by the invitation key
};

// The new device's consent (§5.1): Ed25519 by `device` over the admission tuple. Also what
// addMember and addDevice carry, with `invitation` all zero. Throws std::invalid_argument when
// `userId` is longer than kMaxInvitationUserIdBytes (a bug of the caller's: §1 bounds it).
[[nodiscard]] Signature signConsent(const Hash& teamId, const Hash& invitation,
                                    const DeviceKey& device, const EncKey& encKey,
                                    std::string_view userId);

// Signs a request for `newDevice` to join through `invitation` (the invite link's hash) with
// `invitationKey`: consent by the device and inviteSig by the invitation key over one tuple.
// `userId` is the new member's for a member invitation and empty for a device invitation.
// Throws std::invalid_argument as signConsent does.
[[nodiscard]] AdmissionRequest makeAdmissionRequest(const Hash& teamId, const Hash& invitation,
                                                    const InvitationKey& invitationKey,
                                                    const DeviceKey& newDevice,
                                                    const EncKey& encKey,
                                                    std::string_view userId);

// Whether both signatures of `request` verify over its tuple for `teamId`: consent under
// request.deviceId and inviteSig under `invitationPublicKey` (the key the invite link records).
// False on any doubt, including a userId longer than kMaxInvitationUserIdBytes; never throws on
// peer input. The rest is the caller's: whether the invitation's kind fits an empty or non-empty
// userId, §3's conditions, expiry, and check 1's rules for the userId text and encKey.
[[nodiscard]] bool verifyAdmissionRequest(const Hash& teamId, const AdmissionRequest& request,
                                          const Key& invitationPublicKey);

// §6.3's proof that the invitee holds the invitation key in this very session: Ed25519 by the
// invitation key over "portcullis/team/v3/invitation-proof" ‖ h2 ‖ deviceId ‖ encKey ‖
// u8(len(userId)) ‖ userId. Worthless in any other session (h2 differs). `userId` is at most
// kMaxInvitationUserIdBytes (else signInvitationProof throws std::invalid_argument and
// verifyInvitationProof answers false).
[[nodiscard]] Signature signInvitationProof(const InvitationKey& invitationKey, const Hash& h2,
                                            const Key& deviceId, const EncKey& encKey,
                                            std::string_view userId);
[[nodiscard]] bool verifyInvitationProof(const Key& invitationPublicKey, const Signature& proof,
                                         const Hash& h2, const Key& deviceId,
                                         const EncKey& encKey, std::string_view userId);

// Whether an invitation expiring at `expiresAtMs` (ms since 1970; 0 = never) has expired at
// `nowMs`, the admitting device's own clock (§5.1: nobody else reads a clock). An invitation is
// expired from its expiresAt on.
[[nodiscard]] constexpr bool invitationExpired(std::uint64_t expiresAtMs,
                                               std::uint64_t nowMs) noexcept {
  return expiresAtMs != 0 && nowMs >= expiresAtMs;
}

// Parses the CLI's `--expires DURATION`: a positive decimal integer and one unit, s, m, h, d or
// w ("90s", "30m", "12h", "7d", "1w"), to milliseconds. Errc::Malformed with a one-line message
// on an empty text, a missing or unknown unit, zero, anything else around the number, or a value
// that does not fit in 64 bits of milliseconds.
[[nodiscard]] Result<std::uint64_t> parseDurationMs(std::string_view text);

}  // namespace portcullis::team
