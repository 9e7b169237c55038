// Tests of providers/team/invitation.h: codes, their parsing, the Argon2id key pair, the async
// derivation's threads, admission requests, expiry and durations (team spec §5, §5.1, §6.3).
//
// Argon2id INTERACTIVE costs 64 MiB and tens of milliseconds per call: this file runs six.
#include "invitation.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <future>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "portcullis/asio.h"
#include "wire/link_codec.h"

namespace portcullis::team {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kAlphabet =
    "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

// A fixed team ID: 0x00, 0x01, ..., 0x1f. Its base58 (Python's int.from_bytes and divmod):
constexpr std::string_view kTeamIdBase58 = "1thX6LZfHDZZKUs92febYZhYRcXddmzfzF2NvTkPNE";
// A code for it with a fixed seed.
constexpr std::string_view kFixedCode = "1thX6L-2Qb7xGkTz9HrMnVp";
// Its invitation public key (this implementation's output, checked to equal the §5 formula as
// the test computes it with libsodium directly).
constexpr std::string_view kFixedCodePublicKeyHex =
    "6426dae9b3d9a5ac2dbf84800dffaec4e2de9c1a925c393c3f1a618223a2dc69";

Hash countingTeamId() {
  Hash id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(i);
  return id;
}

// Another team whose base58 starts alike: only the last byte differs, which moves the number by
// less than 58^2, far below the prefix's digits.
Hash neighbourTeamId() {
  Hash id = countingTeamId();
  id.back() ^= 0x01;
  return id;
}

std::string hex(ByteView bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

// base58 by schoolbook long division of the big-endian number by 58: another route to the same
// digits than the encoder's (which multiplies up by 256).
std::string referenceBase58(ByteView in) {
  std::vector<std::uint8_t> number(in.begin(), in.end());
  const std::size_t zeros = static_cast<std::size_t>(
      std::find_if(number.begin(), number.end(), [](std::uint8_t b) { return b != 0; }) -
      number.begin());
  std::string reversed;
  while (std::any_of(number.begin(), number.end(), [](std::uint8_t b) { return b != 0; })) {
    unsigned remainder = 0;
    for (std::uint8_t& byte : number) {
      const unsigned current = remainder * 256u + byte;
      byte = static_cast<std::uint8_t>(current / 58u);
      remainder = current % 58u;
    }
    reversed.push_back(kAlphabet[remainder]);
  }
  return std::string(zeros, '1') + std::string(reversed.rbegin(), reversed.rend());
}

std::string seedText(const ParsedCode& code) {
  return std::string(reinterpret_cast<const char*>(code.seed().data()), code.seed().size());
}

ParsedCode parsed(std::string_view text) {
  auto code = parseInvitationCode(text);
  if (!code) ADD_FAILURE() << "parse failed: " << code.error().message();
  return std::move(code).value();
}

bool sameSecret(const SecretKey<64>& a, const SecretKey<64>& b) {
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

// CPU time of this thread or of the whole process: the Argon2id run is charged to whichever
// thread computes it, whatever else the machine is doing.
std::chrono::nanoseconds cpuTime(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Runs `io` on this thread and says whether it spent less than a quarter of the process's CPU
// time meanwhile: the Argon2id run (almost all of it) happened on another thread.
testing::AssertionResult runLeavesTheWorkToAnotherThread(asio::io_context& io) {
  const auto loopStart = cpuTime(CLOCK_THREAD_CPUTIME_ID);
  const auto processStart = cpuTime(CLOCK_PROCESS_CPUTIME_ID);
  io.run();
  const auto loop = cpuTime(CLOCK_THREAD_CPUTIME_ID) - loopStart;
  const auto process = cpuTime(CLOCK_PROCESS_CPUTIME_ID) - processStart;
  const auto ms = [](std::chrono::nanoseconds d) {
    return std::chrono::duration<double, std::milli>(d).count();
  };
  if (loop * 4 < process) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "the loop thread used " << ms(loop) << " ms of the "
                                     << ms(process) << " ms of CPU the process used";
}

// co_spawn's completion: a failure in a test coroutine propagates out of io.run().
constexpr auto rethrowIfFailed = [](std::exception_ptr failure) {
  if (failure) std::rethrow_exception(failure);
};

// ---------------------------------------------------------------------------------------------
// base58 and generated codes

TEST(TeamInvitation, Base58AgreesWithLongDivisionAndWithVectorsComputedElsewhere) {
  struct Vector {
    Bytes input;
    std::string_view expected;  // computed with Python's big integers
  };
  Bytes helloWorld;
  for (char c : std::string_view("Hello World!")) helloWorld.push_back(static_cast<std::uint8_t>(c));
  Bytes leadingZeros{0, 0};
  for (std::uint8_t i = 1; i <= 30; ++i) leadingZeros.push_back(i);
  const Hash counting = countingTeamId();
  const std::vector<Vector> vectors = {
      {Bytes(counting.begin(), counting.end()), kTeamIdBase58},
      {leadingZeros, "11CiMQsCUhqABwwLyCFeX2iPnBZX3s28dUUCBrirhs"},
      {Bytes(32, 0xff), "JEKNVnkbo3jma5nREBBJCDoXFVeKkD56V3xKrvRmWxFG"},
      {Bytes(32, 0x00), "11111111111111111111111111111111"},
      {helloWorld, "2NEpo7TZRRrLZSi2U"},
      {Bytes{0x00, 0x00, 0x28, 0x7f, 0xb4, 0xcd}, "11233QC4"},
      {Bytes{57}, "z"},
      {Bytes{58}, "21"},
      {Bytes{}, ""},
  };
  for (const auto& v : vectors) {
    SCOPED_TRACE(std::string(v.expected));
    EXPECT_EQ(base58Encode(v.input), v.expected);
    EXPECT_EQ(referenceBase58(v.input), v.expected);
  }

  // And on random 32-byte values, some with leading zero bytes.
  for (int i = 0; i < 200; ++i) {
    Bytes value(32);
    randombytes_buf(value.data(), value.size());
    std::fill_n(value.begin(), i % 4, std::uint8_t{0});
    ASSERT_EQ(base58Encode(value), referenceBase58(value)) << hex(value);
  }
}

TEST(TeamInvitation, AGeneratedCodeIsTheTeamPrefixADashAndSixteenSeedCharacters) {
  const Hash teamId = countingTeamId();
  const InvitationCode code = generateInvitationCode(teamId);
  const std::string_view text = code.text();
  ASSERT_EQ(text.size(), 6u + 1u + 16u);
  EXPECT_EQ(text.substr(0, 6), kTeamIdBase58.substr(0, 6));
  EXPECT_EQ(text[6], '-');
  for (char c : text.substr(7)) EXPECT_NE(kAlphabet.find(c), std::string_view::npos) << c;

  // Another team gets its own prefix.
  Hash other{};
  other.fill(0xff);
  EXPECT_EQ(generateInvitationCode(other).text().substr(0, 6), "JEKNVn");
}

TEST(TeamInvitation, GeneratedSeedsDoNotRepeatAndUseTheWholeAlphabet) {
  const Hash teamId = countingTeamId();
  std::set<std::string> seeds;
  std::set<char> used;
  constexpr int kCodes = 300;
  for (int i = 0; i < kCodes; ++i) {
    const InvitationCode code = generateInvitationCode(teamId);
    const std::string_view seed = code.text().substr(7);
    seeds.emplace(seed);
    used.insert(seed.begin(), seed.end());
  }
  EXPECT_EQ(seeds.size(), static_cast<std::size_t>(kCodes));
  // 4800 uniform draws miss one of 58 characters with probability below 1e-34.
  EXPECT_EQ(used.size(), kAlphabet.size());
}

// ---------------------------------------------------------------------------------------------
// parsing

TEST(TeamInvitation, ParsingAGeneratedCodeGivesBackItsPrefixAndSeed) {
  const Hash teamId = countingTeamId();
  const InvitationCode code = generateInvitationCode(teamId);
  const ParsedCode p = parsed(code.text());
  EXPECT_EQ(p.prefix(), code.text().substr(0, 6));
  EXPECT_EQ(seedText(p), code.text().substr(7));
  EXPECT_TRUE(prefixMatches(p, teamId));
}

TEST(TeamInvitation, ParsingDeletesWhitespaceAndTheDashesInsideTheSeed) {
  const std::vector<std::string_view> spellings = {
      "1thX6L-2Qb7xGkTz9HrMnVp",
      "  1thX6L-2Qb7xGkTz9HrMnVp  ",
      "1thX6L - 2Qb7 xGkT z9Hr MnVp",
      "1thX6L-2Qb7-xGkT-z9Hr-MnVp",
      "1thX6L--2Qb7--xGkT-z9Hr-MnVp-",
      "1th X6L\t-\t2Qb7xGkT\nz9HrMnVp\r\n",
      "\v1thX6L-2Qb7xGkT\fz9HrMnVp",
  };
  for (std::string_view text : spellings) {
    SCOPED_TRACE(std::string(text));
    const ParsedCode p = parsed(text);
    EXPECT_EQ(p.prefix(), "1thX6L");
    EXPECT_EQ(seedText(p), "2Qb7xGkTz9HrMnVp");
  }
}

TEST(TeamInvitation, ParsingRejectsEveryMalformedCodeWithoutQuotingTheSeed) {
  const std::vector<std::string> malformed = {
      "",
      "-",
      "1thX6L",                            // no dash
      "1thX6L2Qb7xGkTz9HrMnVp",            // no dash
      "1thX6L-2Qb7xGkTz9HrMnV",            // 15 seed characters
      "1thX6L-2Qb7xGkTz9HrMnVpp",          // 17
      "1thX6L-",                           // none
      "1thX6-2Qb7xGkTz9HrMnVp",            // 5 prefix characters
      "1thX6LZ-2Qb7xGkTz9HrMnVp",          // 7
      "-2Qb7xGkTz9HrMnVp",                 // no prefix
      "1thX6L-0Qb7xGkTz9HrMnVp",           // 0, O, I, l are not base58
      "1thX6L-OQb7xGkTz9HrMnVp",
      "1thX6L-IQb7xGkTz9HrMnVp",
      "1thX6L-lQb7xGkTz9HrMnVp",
      "1thX60-2Qb7xGkTz9HrMnVp",           // ... nor in the prefix
      "1thX6L-2Qb7xGkTz9HrMnV\xc3\xa9",    // non-ASCII: é
      "1thX6L-2Qb7xGkTz9HrMn\xef\xbc\x91",  // a full-width digit
      "1thX6L-2Qb7xGkTz9HrMnV\x80",
      std::string("1thX6L-2Qb7xGkTz9HrMnV\0", 23),  // NUL
      "1thX6L-2Qb7xGkTz9HrMnV_",
      "1thX6L-2Qb7xGkTz9HrMnV+",
      "1thX6L_2Qb7xGkTz9HrMnVp",
      "1thX6L-2Qb7xGkTz9HrMnVp\xc2\xa0",  // no-break space is not ASCII whitespace
  };
  for (const std::string& text : malformed) {
    SCOPED_TRACE(hex(ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())));
    const auto result = parseInvitationCode(text);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code(), Errc::Malformed);
    const std::string& message = result.error().message();
    EXPECT_FALSE(message.empty());
    EXPECT_EQ(message.find('\n'), std::string::npos);
    // No part of the seed comes back, not even a few characters of it.
    for (std::string_view piece : {"2Qb7", "xGkT", "z9Hr", "MnV"}) {
      EXPECT_EQ(message.find(piece), std::string::npos) << message;
    }
  }
}

TEST(TeamInvitation, APrefixMatchesOnlyTheTeamItWasMadeFor) {
  const ParsedCode code = parsed(kFixedCode);
  EXPECT_TRUE(prefixMatches(code, countingTeamId()));
  EXPECT_TRUE(prefixMatches(code, neighbourTeamId()));  // the prefix is 35 bits, not an identity
  Hash other{};
  other.fill(0xff);
  EXPECT_FALSE(prefixMatches(code, other));
  EXPECT_FALSE(prefixMatches(parsed("1thX6M-2Qb7xGkTz9HrMnVp"), countingTeamId()));
}

// ---------------------------------------------------------------------------------------------
// key derivation (four Argon2id runs)

TEST(TeamInvitation, TheDerivedKeyIsSection5sFormulaAndMatchesThePinnedVector) {
  const Hash teamId = countingTeamId();
  auto key = deriveInvitationKey(parsed(kFixedCode), teamId);
  ASSERT_TRUE(key.has_value()) << key.error().message();

  // §5 spelled out with libsodium: salt = H128(team ID), password = the 16 seed characters.
  std::array<std::uint8_t, crypto_pwhash_SALTBYTES> salt{};
  crypto_generichash(salt.data(), salt.size(), teamId.data(), teamId.size(), nullptr, 0);
  const std::string_view password = kFixedCode.substr(7);
  std::array<std::uint8_t, crypto_sign_SEEDBYTES> seed{};
  ASSERT_EQ(crypto_pwhash(seed.data(), seed.size(), password.data(), password.size(), salt.data(),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                          crypto_pwhash_ALG_ARGON2ID13),
            0);
  Key expectedPk{};
  std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> expectedSk{};
  crypto_sign_seed_keypair(expectedPk.data(), expectedSk.data(), seed.data());

  EXPECT_EQ(key->publicKey, expectedPk);
  EXPECT_EQ(sodium_memcmp(key->secretKey.data(), expectedSk.data(), expectedSk.size()), 0);
  EXPECT_EQ(hex(key->publicKey), kFixedCodePublicKeyHex);
  sodium_memzero(seed.data(), seed.size());
  sodium_memzero(expectedSk.data(), expectedSk.size());
}

TEST(TeamInvitation, TheDerivedKeyChangesWithTheTeamAndWithTheSeed) {
  const Hash neighbour = neighbourTeamId();
  const ParsedCode code = parsed(kFixedCode);
  ASSERT_TRUE(prefixMatches(code, neighbour));
  auto otherTeam = deriveInvitationKey(code, neighbour);
  ASSERT_TRUE(otherTeam.has_value());
  EXPECT_NE(hex(otherTeam->publicKey), kFixedCodePublicKeyHex);

  auto otherSeed = deriveInvitationKey(parsed("1thX6L-2Qb7xGkTz9HrMnVq"), countingTeamId());
  ASSERT_TRUE(otherSeed.has_value());
  EXPECT_NE(hex(otherSeed->publicKey), kFixedCodePublicKeyHex);
  EXPECT_NE(otherSeed->publicKey, otherTeam->publicKey);
  EXPECT_FALSE(sameSecret(otherSeed->secretKey, otherTeam->secretKey));
}

TEST(TeamInvitation, DerivationRefusesACodeMadeForAnotherTeam) {
  Hash other{};
  other.fill(0xff);
  const auto key = deriveInvitationKey(parsed(kFixedCode), other);
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code(), Errc::Denied);
}

// ---------------------------------------------------------------------------------------------
// the async derivation (one Argon2id run each)

struct Probe {
  bool done = false;
  std::thread::id resumedOn;
  int ticksWhileRunning = 0;
  std::optional<Result<InvitationKey>> result;
};

asio::awaitable<void> deriveOnOwnThread(ParsedCode code, Hash teamId, Probe& probe) {
  Result<InvitationKey> key = co_await deriveInvitationKeyAsync(std::move(code), teamId);
  probe.resumedOn = std::this_thread::get_id();
  probe.result.emplace(std::move(key));
  probe.done = true;
}

asio::awaitable<void> deriveOnWorker(ParsedCode code, Hash teamId, asio::any_io_executor worker,
                                     Probe& probe) {
  Result<InvitationKey> key = co_await deriveInvitationKeyAsync(std::move(code), teamId, worker);
  probe.resumedOn = std::this_thread::get_id();
  probe.result.emplace(std::move(key));
  probe.done = true;
}

// Ticks every millisecond until the derivation is done (at most 30 s), counting the ticks that
// came while it was still running: the loop stayed responsive.
asio::awaitable<void> tickUntilDone(Probe& probe) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int step = 0; step < 30000 && !probe.done; ++step) {
    timer.expires_after(1ms);
    co_await timer.async_wait(asio::use_awaitable);
    if (!probe.done) ++probe.ticksWhileRunning;
  }
}

// Waits 1 ms on the loop, notes whether the derivation is still pending, then lets the worker go.
asio::awaitable<void> openGateAfterATick(Probe& probe, bool& firedWhileRunning,
                                         std::promise<void>& gate) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(1ms);
  co_await timer.async_wait(asio::use_awaitable);
  firedWhileRunning = !probe.done;
  gate.set_value();
}

TEST(TeamInvitation, AsyncDerivationRunsOffTheEventLoopAndResumesOnIt) {
  asio::io_context io;
  Probe probe;
  asio::co_spawn(io, deriveOnOwnThread(parsed(kFixedCode), countingTeamId(), probe),
                 rethrowIfFailed);
  asio::co_spawn(io, tickUntilDone(probe), rethrowIfFailed);

  EXPECT_TRUE(runLeavesTheWorkToAnotherThread(io));

  ASSERT_TRUE(probe.done);
  ASSERT_TRUE(probe.result->has_value());
  EXPECT_EQ(hex((*probe.result)->publicKey), kFixedCodePublicKeyHex);
  EXPECT_EQ(probe.resumedOn, std::this_thread::get_id());
  EXPECT_GE(probe.ticksWhileRunning, 2);
}

TEST(TeamInvitation, AsyncDerivationOnAGivenWorkerLeavesTheLoopFreeUntilItIsDone) {
  asio::io_context io;
  asio::thread_pool worker(1);
  // The worker's one thread is held until a timer on the loop has fired, so the derivation cannot
  // finish before that; were the loop running it, the timer could not fire.
  std::promise<void> gate;
  asio::post(worker, [opened = gate.get_future()]() { opened.wait(); });

  Probe probe;
  bool firedWhileRunning = false;
  asio::co_spawn(io,
                 deriveOnWorker(parsed(kFixedCode), countingTeamId(), worker.get_executor(), probe),
                 rethrowIfFailed);
  asio::co_spawn(io, openGateAfterATick(probe, firedWhileRunning, gate), rethrowIfFailed);

  EXPECT_TRUE(runLeavesTheWorkToAnotherThread(io));
  worker.join();

  ASSERT_TRUE(probe.done);
  ASSERT_TRUE(probe.result->has_value());
  EXPECT_EQ(hex((*probe.result)->publicKey), kFixedCodePublicKeyHex);
  EXPECT_TRUE(firedWhileRunning);
  EXPECT_EQ(probe.resumedOn, std::this_thread::get_id());
}

TEST(TeamInvitation, AsyncDerivationReportsARefusalLikeTheSynchronousOne) {
  asio::io_context io;
  Probe probe;
  Hash other{};
  other.fill(0xff);
  asio::co_spawn(io, deriveOnOwnThread(parsed(kFixedCode), other, probe), rethrowIfFailed);
  io.run();
  ASSERT_TRUE(probe.done);
  ASSERT_FALSE(probe.result->has_value());
  EXPECT_EQ(probe.result->error().code(), Errc::Denied);
}

// ---------------------------------------------------------------------------------------------
// the pk tag

TEST(TeamInvitation, TheKeyTagIsAUnkeyed128BitBlake2bOfThePublicKey) {
  Key pk{};
  for (std::size_t i = 0; i < pk.size(); ++i) pk[i] = static_cast<std::uint8_t>(i);
  // Python's hashlib.blake2b(..., digest_size=16); not the first half of the 32-byte hash
  // (cb2f5160fc1f7e05a55ef49d340b48da), since the output length is a BLAKE2b parameter.
  EXPECT_EQ(hex(invitationKeyTag(pk)), "f39a2cad58411cd49f577e5086b8031f");
  pk.fill(0xa5);
  EXPECT_EQ(hex(invitationKeyTag(pk)), "6f000dae54c8cd124810dab4617d3ab7");
}

// ---------------------------------------------------------------------------------------------
// admission requests (keys from fixed seeds, no Argon2id)

InvitationKey fixedInvitationKey(std::uint8_t fill) {
  std::array<std::uint8_t, crypto_sign_SEEDBYTES> seed{};
  seed.fill(fill);
  InvitationKey key;
  crypto_sign_seed_keypair(key.publicKey.data(), key.secretKey.data(), seed.data());
  return key;
}

DeviceKey fixedDevice(std::uint8_t fill) {
  const Bytes seed(DeviceKey::kSeedSize, fill);
  return DeviceKey::fromSeed(seed).value();
}

EncKey fixedEncKey(std::uint8_t fill) {
  std::array<std::uint8_t, crypto_box_SECRETKEYBYTES> secret{};
  secret.fill(fill);
  EncKey pk{};
  crypto_scalarmult_base(pk.data(), secret.data());
  return pk;
}

Hash filledHash(std::uint8_t fill) {
  Hash h{};
  h.fill(fill);
  return h;
}

TEST(TeamInvitation, AnAdmissionRequestVerifiesForAMemberAndForADeviceInvitation) {
  const Hash teamId = countingTeamId();
  const InvitationKey invitationKey = fixedInvitationKey(0x11);
  const DeviceKey device = fixedDevice(0x22);
  for (std::string_view userId : {std::string_view("alice"), std::string_view()}) {
    const AdmissionRequest request = makeAdmissionRequest(
        teamId, filledHash(0x33), invitationKey, device, fixedEncKey(0x44), userId);
    EXPECT_EQ(request.invitation, filledHash(0x33));
    EXPECT_EQ(request.deviceId, device.publicKey().bytes());
    EXPECT_EQ(request.encKey, fixedEncKey(0x44));
    EXPECT_EQ(request.userId, userId);
    EXPECT_TRUE(verifyAdmissionRequest(teamId, request, invitationKey.publicKey));

    // Both signatures are over §5.1's tuple, as link_codec builds it.
    const Bytes tuple = admissionTuple(teamId, request.invitation, request.deviceId,
                                       request.encKey, request.userId);
    EXPECT_TRUE(verifyBytes(tuple, request.consent, request.deviceId));
    EXPECT_TRUE(verifyBytes(tuple, request.inviteSig, invitationKey.publicKey));
  }
}

TEST(TeamInvitation, AnAdmissionRequestIsRejectedWhenAnythingInItIsChanged) {
  const Hash teamId = countingTeamId();
  const InvitationKey invitationKey = fixedInvitationKey(0x11);
  const DeviceKey device = fixedDevice(0x22);
  const DeviceKey stranger = fixedDevice(0x55);
  const AdmissionRequest good = makeAdmissionRequest(teamId, filledHash(0x33), invitationKey,
                                                     device, fixedEncKey(0x44), "alice");
  ASSERT_TRUE(verifyAdmissionRequest(teamId, good, invitationKey.publicKey));

  auto rejected = [&](AdmissionRequest request) {
    return !verifyAdmissionRequest(teamId, request, invitationKey.publicKey);
  };
  {
    AdmissionRequest r = good;
    r.userId = "mallory";
    EXPECT_TRUE(rejected(r)) << "userId";
  }
  {
    AdmissionRequest r = good;
    r.userId = "alicE";
    EXPECT_TRUE(rejected(r)) << "userId, one byte";
  }
  {
    AdmissionRequest r = good;
    r.userId.clear();  // a member invitation's request replayed as a device admission
    EXPECT_TRUE(rejected(r)) << "userId dropped";
  }
  {
    AdmissionRequest r = good;
    r.userId = std::string(65, 'a');  // too long for §1, and must not throw
    EXPECT_TRUE(rejected(r)) << "userId too long";
  }
  {
    AdmissionRequest r = good;
    r.deviceId = stranger.publicKey().bytes();
    EXPECT_TRUE(rejected(r)) << "deviceId";
  }
  {
    AdmissionRequest r = good;
    r.encKey = fixedEncKey(0x66);
    EXPECT_TRUE(rejected(r)) << "encKey";
  }
  {
    AdmissionRequest r = good;
    r.invitation = filledHash(0x34);
    EXPECT_TRUE(rejected(r)) << "invitation";
  }
  {
    AdmissionRequest r = good;
    r.consent[10] ^= 0x01;
    EXPECT_TRUE(rejected(r)) << "consent bit";
  }
  {
    AdmissionRequest r = good;
    r.inviteSig[63] ^= 0x80;
    EXPECT_TRUE(rejected(r)) << "inviteSig bit";
  }
  {
    AdmissionRequest r = good;
    std::swap(r.consent, r.inviteSig);
    EXPECT_TRUE(rejected(r)) << "signatures swapped";
  }
  {
    // The consent of another device over the very same tuple.
    AdmissionRequest r = good;
    const Bytes tuple = admissionTuple(teamId, r.invitation, r.deviceId, r.encKey, r.userId);
    r.consent = signBytes(tuple, stranger.secretKey().span());
    EXPECT_TRUE(rejected(r)) << "consent by another device";
  }
  {
    // Someone holding a request swaps in their own device with its own consent: inviteSig no
    // longer covers the tuple.
    AdmissionRequest r = good;
    r.deviceId = stranger.publicKey().bytes();
    r.consent = signConsent(teamId, r.invitation, stranger, r.encKey, r.userId);
    EXPECT_TRUE(rejected(r)) << "device swapped with its own consent";
  }
  // The right request checked against another invitation's key, or for another team.
  EXPECT_FALSE(verifyAdmissionRequest(teamId, good, fixedInvitationKey(0x12).publicKey));
  EXPECT_FALSE(verifyAdmissionRequest(neighbourTeamId(), good, invitationKey.publicKey));
  // An invitation key that is not a valid point verifies nothing.
  EXPECT_FALSE(verifyAdmissionRequest(teamId, good, Key{}));
}

TEST(TeamInvitation, ConsentForAnAddMemberIsOverAnAllZeroInvitation) {
  const Hash teamId = countingTeamId();
  const DeviceKey device = fixedDevice(0x22);
  const Signature consent = signConsent(teamId, Hash{}, device, fixedEncKey(0x44), "bob");
  const Key deviceId = device.publicKey().bytes();
  EXPECT_TRUE(verifyBytes(admissionTuple(teamId, Hash{}, deviceId, fixedEncKey(0x44), "bob"),
                          consent, deviceId));
}

TEST(TeamInvitation, SigningRefusesAUserIdLongerThanSixtyFourBytes) {
  const InvitationKey invitationKey = fixedInvitationKey(0x11);
  const DeviceKey device = fixedDevice(0x22);
  EXPECT_THROW((void)makeAdmissionRequest(countingTeamId(), filledHash(0x33), invitationKey,
                                          device, fixedEncKey(0x44), std::string(65, 'a')),
               std::invalid_argument);
  const AdmissionRequest longest = makeAdmissionRequest(
      countingTeamId(), filledHash(0x33), invitationKey, device, fixedEncKey(0x44),
      std::string(64, 'a'));
  EXPECT_TRUE(verifyAdmissionRequest(countingTeamId(), longest, invitationKey.publicKey));
}

// ---------------------------------------------------------------------------------------------
// expiry and durations

TEST(TeamInvitation, AnInvitationExpiresAtItsExpiresAtAndZeroMeansNever) {
  EXPECT_FALSE(invitationExpired(0, 0));
  EXPECT_FALSE(invitationExpired(0, UINT64_MAX));
  EXPECT_FALSE(invitationExpired(1'000, 999));
  EXPECT_TRUE(invitationExpired(1'000, 1'000));
  EXPECT_TRUE(invitationExpired(1'000, 1'001));
  EXPECT_FALSE(invitationExpired(UINT64_MAX, UINT64_MAX - 1));
  EXPECT_TRUE(invitationExpired(1, UINT64_MAX));
}

TEST(TeamInvitation, DurationsAreAPositiveNumberAndOneUnit) {
  const std::vector<std::pair<std::string_view, std::uint64_t>> good = {
      {"90s", 90'000},
      {"30m", 1'800'000},
      {"12h", 43'200'000},
      {"7d", 604'800'000},
      {"1w", 604'800'000},
      {"1s", 1'000},
      {"007d", 604'800'000},
      {"18446744073709551s", 18'446'744'073'709'551'000u},  // the most seconds that fit
      {"30500568904w", 18'446'744'073'139'200'000u},        // the most weeks that fit
  };
  for (const auto& [text, ms] : good) {
    SCOPED_TRACE(std::string(text));
    const auto parsedMs = parseDurationMs(text);
    ASSERT_TRUE(parsedMs.has_value()) << parsedMs.error().message();
    EXPECT_EQ(*parsedMs, ms);
  }
}

TEST(TeamInvitation, DurationsRejectZeroOverflowUnknownUnitsAndStrayText) {
  const std::vector<std::string_view> bad = {
      "",     "0s",  "00d", "7",   "d",    "7x",  "7D",  "7M",   "-1d",  "+1d",
      " 7d",  "7d ", "7 d", "1.5h", "7dd", "1e3s", "7ms", "0x10s", "\xc3\xa9",
      "18446744073709552s",            // one second too many for 64 bits of ms
      "18446744073709551616s",         // too many for 64 bits at all
      "30500568905w",                  // the first week count past 64 bits of ms
      "99999999999999999999999999999999d",
  };
  for (std::string_view text : bad) {
    SCOPED_TRACE(std::string(text));
    const auto parsedMs = parseDurationMs(text);
    ASSERT_FALSE(parsedMs.has_value());
    EXPECT_EQ(parsedMs.error().code(), Errc::Malformed);
    EXPECT_FALSE(parsedMs.error().message().empty());
    EXPECT_EQ(parsedMs.error().message().find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace portcullis::team
