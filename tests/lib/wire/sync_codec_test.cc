// The sync frame codec (lib/src/wire/sync_codec.h, lib/schema/sync.capnp): every message kind
// round-trips, every rule of sync.capnp is enforced on decode, and hostile bytes (bit flips,
// truncations, garbage) give a value or Errc::Malformed, never a crash or an exception.
//
// Frames that the encoder refuses to write (descending hashes, bad peer IDs) are built here with
// the generated capnp builders, since this file tests the wire layer itself.
#include "wire/sync_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "portcullis/document.h"
#include "sync.capnp.h"

namespace portcullis::detail {
namespace {

namespace schema = ::portcullis::schema;

// --- fixtures ------------------------------------------------------------------------------------

PeerId pid(const std::string& s) { return *PeerId::parse(s); }

DocumentId fixedDoc(std::uint8_t fill) { return *DocumentId::fromBytes(Bytes(16, fill)); }

// `n` distinct hashes, ascending.
std::vector<ChangeHash> hashes(std::size_t n, std::uint8_t salt = 0) {
  std::vector<ChangeHash> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(ChangeHash::of(Bytes{salt, static_cast<std::uint8_t>(i)}));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// `n` distinct hashes, ascending, for n up to 65536.
std::vector<ChangeHash> manyHashes(std::size_t n) {
  std::vector<ChangeHash> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(ChangeHash::of(Bytes{0xee, static_cast<std::uint8_t>(i >> 8),
                                       static_cast<std::uint8_t>(i)}));
  }
  std::sort(out.begin(), out.end());
  return out;
}

SyncMsg fullSync(bool isRequest) {
  return SyncMsg{.doc = fixedDoc(7),
                 .heads = hashes(2, 1),
                 .need = hashes(3, 2),
                 .have = hashes(4, 3),
                 .changes = {Bytes{1, 2, 3}, Bytes(100, 0xab), Bytes{9}},
                 .storedHeads = hashes(1, 4),
                 .requestId = 0xfedcba9876543210ull,
                 .hops = 5,
                 .isRequest = isRequest};
}

HelloMsg sampleHello() {
  return HelloMsg{.protocolVersion = kProtocolVersion,
                  .peerId = pid("peer-a1b2"),
                  .storageId = Bytes(16, 0x5a),
                  .isEphemeral = true};
}

Bytes flatten(capnp::MessageBuilder& builder) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

// A frame built field by field, for values the encoder will not write.
Bytes buildFrame(const std::function<void(schema::Envelope::Builder)>& fill) {
  capnp::MallocMessageBuilder builder;
  fill(builder.initRoot<schema::Envelope>());
  return flatten(builder);
}

capnp::Data::Reader asData(const Bytes& b) { return capnp::Data::Reader(b.data(), b.size()); }

Bytes concat(const std::vector<ChangeHash>& list) {
  Bytes out;
  for (const ChangeHash& h : list) out.insert(out.end(), h.bytes().begin(), h.bytes().end());
  return out;
}

// A valid sync frame whose `heads` blob is `heads`, as raw bytes.
Bytes syncWithRawHeads(const Bytes& heads) {
  return buildFrame([&](schema::Envelope::Builder env) {
    auto s = env.initSync();
    Bytes doc(16, 1);
    s.setDocId(asData(doc));
    s.setHeads(asData(heads));
  });
}

Bytes helloWithPeerId(const std::string& peer) {
  return buildFrame([&](schema::Envelope::Builder env) {
    auto h = env.initHello();
    h.setProtocolVersion(kProtocolVersion);
    h.setPeerId(capnp::Text::Reader(peer.data(), peer.size()));
  });
}

Bytes ephemeralWithSender(const std::string& sender) {
  return buildFrame([&](schema::Envelope::Builder env) {
    auto e = env.initEphemeral();
    Bytes doc(16, 1);
    e.setDocId(asData(doc));
    e.setSenderId(capnp::Text::Reader(sender.data(), sender.size()));
  });
}

// The decoded message, or nothing (after a failure message) if it did not decode as a T.
template <typename T>
std::optional<T> roundTrip(const SyncMessage& in) {
  const Bytes frame = encodeMessage(in);
  auto out = decodeMessage(frame);
  if (!out) {
    ADD_FAILURE() << out.error().message();
    return std::nullopt;
  }
  if (!std::holds_alternative<T>(*out)) {
    ADD_FAILURE() << "decoded to another kind of message";
    return std::nullopt;
  }
  return std::get<T>(std::move(*out));
}

void expectMalformed(const Bytes& frame, const std::string& what) {
  SCOPED_TRACE(what);
  Result<SyncMessage> out = Error(Errc::Io, "not decoded");
  ASSERT_NO_THROW(out = decodeMessage(frame));
  ASSERT_FALSE(out.has_value()) << "accepted";
  EXPECT_EQ(out.error().code(), Errc::Malformed) << out.error().message();
}

// A value or Errc::Malformed, and no exception: what hostile bytes may produce. Returns false
// (after one failure message) otherwise, so a loop can stop at the first bad case.
bool valueOrMalformed(ByteView frame, const std::string& what) {
  try {
    auto out = decodeMessage(frame);
    if (out.has_value() || out.error().code() == Errc::Malformed) return true;
    ADD_FAILURE() << what << ": error code " << errcName(out.error().code()) << ": "
                  << out.error().message();
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": threw " << e.what();
  } catch (...) {
    ADD_FAILURE() << what << ": threw something that is not a std::exception";
  }
  return false;
}

std::vector<Bytes> sampleFrames() {
  return {
      encodeMessage(sampleHello()),
      encodeMessage(fullSync(false)),
      encodeMessage(fullSync(true)),
      encodeMessage(UnavailableMsg{.doc = fixedDoc(3), .requestId = 77}),
      encodeMessage(EphemeralMsg{.doc = fixedDoc(4), .sender = pid("x"), .data = Bytes{1, 2, 3}}),
      encodeMessage(ProviderMsg{.data = Bytes(40, 0x11)}),
      encodeMessage(LeaveMsg{}),
      encodeMessage(RefusedMsg{.doc = fixedDoc(5), .changes = hashes(3, 6), .count = 4}),
  };
}

std::uint64_t seedFor(int salt) {
  return static_cast<std::uint64_t>(::testing::UnitTest::GetInstance()->random_seed()) * 1000 +
         static_cast<std::uint64_t>(salt);
}

// --- round trips --------------------------------------------------------------------------------

TEST(SyncCodec, AHelloRoundTrips) {
  const auto out = roundTrip<HelloMsg>(sampleHello());
  ASSERT_TRUE(out);
  EXPECT_EQ(out->protocolVersion, kProtocolVersion);
  EXPECT_EQ(out->peerId, pid("peer-a1b2"));
  EXPECT_EQ(out->storageId, Bytes(16, 0x5a));
  EXPECT_TRUE(out->isEphemeral);

  const auto bare = roundTrip<HelloMsg>(HelloMsg{.protocolVersion = 42,
                                                 .peerId = pid("b"),
                                                 .storageId = {},
                                                 .isEphemeral = false});
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->protocolVersion, 42u) << "another version decodes; the session refuses it";
  EXPECT_TRUE(bare->storageId.empty());
  EXPECT_FALSE(bare->isEphemeral);
}

void expectSameSync(const SyncMsg& a, const SyncMsg& b) {
  EXPECT_EQ(a.doc, b.doc);
  EXPECT_EQ(a.heads, b.heads);
  EXPECT_EQ(a.need, b.need);
  EXPECT_EQ(a.have, b.have);
  EXPECT_EQ(a.changes, b.changes);
  EXPECT_EQ(a.storedHeads, b.storedHeads);
  EXPECT_EQ(a.requestId, b.requestId);
  EXPECT_EQ(a.hops, b.hops);
  EXPECT_EQ(a.isRequest, b.isRequest);
}

TEST(SyncCodec, ASyncWithEveryFieldSetRoundTrips) {
  const SyncMsg in = fullSync(false);
  const auto out = roundTrip<SyncMsg>(in);
  ASSERT_TRUE(out);
  expectSameSync(*out, in);
}

TEST(SyncCodec, AnEmptySyncRoundTrips) {
  SyncMsg in;
  in.doc = fixedDoc(0);
  const auto out = roundTrip<SyncMsg>(in);
  ASSERT_TRUE(out);
  expectSameSync(*out, in);
}

TEST(SyncCodec, ARequestKeepsItsRequestIdAndHopCount) {
  SyncMsg in = fullSync(true);
  in.hops = kMaxHops;
  const auto out = roundTrip<SyncMsg>(in);
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->isRequest);
  EXPECT_EQ(out->requestId, 0xfedcba9876543210ull);
  EXPECT_EQ(out->hops, kMaxHops);
  expectSameSync(*out, in);
}

TEST(SyncCodec, UnavailableRoundTrips) {
  const auto out =
      roundTrip<UnavailableMsg>(UnavailableMsg{.doc = fixedDoc(9), .requestId = ~0ull});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->doc, fixedDoc(9));
  EXPECT_EQ(out->requestId, ~0ull);
}

TEST(SyncCodec, AnEphemeralMessageRoundTrips) {
  const auto out = roundTrip<EphemeralMsg>(
      EphemeralMsg{.doc = fixedDoc(2), .sender = pid("sender~1"), .data = Bytes{0, 255, 7}});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->doc, fixedDoc(2));
  EXPECT_EQ(out->sender, pid("sender~1"));
  EXPECT_EQ(out->data, (Bytes{0, 255, 7}));
}

TEST(SyncCodec, AProviderMessageRoundTripsItsOpaqueBytes) {
  const auto some = roundTrip<ProviderMsg>(ProviderMsg{.data = Bytes{1, 0, 2}});
  ASSERT_TRUE(some);
  EXPECT_EQ(some->data, (Bytes{1, 0, 2}));
  const auto none = roundTrip<ProviderMsg>(ProviderMsg{});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->data.empty());
}

TEST(SyncCodec, LeaveRoundTrips) { EXPECT_TRUE(roundTrip<LeaveMsg>(LeaveMsg{})); }

TEST(SyncCodec, ARefusalRoundTripsItsDocumentHashesAndCount) {
  const auto out = roundTrip<RefusedMsg>(
      RefusedMsg{.doc = fixedDoc(6), .changes = hashes(3, 9), .count = 70'000});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->doc, fixedDoc(6));
  EXPECT_EQ(out->changes, hashes(3, 9));
  EXPECT_EQ(out->count, 70'000u);

  // At the bound, and with no hash at all (a count alone).
  const auto most = roundTrip<RefusedMsg>(
      RefusedMsg{.doc = fixedDoc(6), .changes = manyHashes(kMaxRefusedHashes), .count = 5000});
  ASSERT_TRUE(most);
  EXPECT_EQ(most->changes, manyHashes(kMaxRefusedHashes));
  const auto bare = roundTrip<RefusedMsg>(RefusedMsg{.doc = fixedDoc(6), .changes = {}, .count = 1});
  ASSERT_TRUE(bare);
  EXPECT_TRUE(bare->changes.empty());
  EXPECT_EQ(bare->count, 1u);
}

TEST(SyncCodec, ARefusalOverTheBoundOrListingMoreThanItCountsIsNeverEncoded) {
  EXPECT_THROW((void)encodeMessage(RefusedMsg{
                   .doc = fixedDoc(1), .changes = manyHashes(kMaxRefusedHashes + 1), .count = 5000}),
               std::logic_error);
  EXPECT_THROW(
      (void)encodeMessage(RefusedMsg{.doc = fixedDoc(1), .changes = hashes(3), .count = 2}),
      std::logic_error);
  EXPECT_NO_THROW(
      (void)encodeMessage(RefusedMsg{.doc = fixedDoc(1), .changes = hashes(3), .count = 3}));
}

TEST(SyncCodec, DecodesAFrameAtAnUnalignedAddress) {
  const Bytes frame = encodeMessage(fullSync(false));
  Bytes shifted(frame.size() + 1);
  std::copy(frame.begin(), frame.end(), shifted.begin() + 1);
  auto out = decodeMessage(ByteView(shifted).subspan(1));
  ASSERT_TRUE(out) << out.error().message();
  ASSERT_TRUE(std::holds_alternative<SyncMsg>(*out));
  expectSameSync(std::get<SyncMsg>(*out), fullSync(false));
}

// --- the rules of sync.capnp ----------------------------------------------------------------------

TEST(SyncCodec, RejectsAFrameThatIsNotAWholeNumberOfWords) {
  const Bytes frame = encodeMessage(LeaveMsg{});
  for (std::size_t cut = 1; cut < 8; ++cut) {
    expectMalformed(Bytes(frame.begin(), frame.end() - static_cast<std::ptrdiff_t>(cut)),
                    "short by " + std::to_string(cut));
    Bytes longer = frame;
    longer.resize(frame.size() + cut);
    expectMalformed(longer, "long by " + std::to_string(cut));
  }
}

TEST(SyncCodec, RejectsTrailingWordsAfterTheMessage) {
  Bytes frame = encodeMessage(UnavailableMsg{.doc = fixedDoc(1), .requestId = 1});
  frame.resize(frame.size() + 8);
  expectMalformed(frame, "one zero word after the message");
}

TEST(SyncCodec, RejectsAnEmptyFrame) { expectMalformed(Bytes{}, "empty"); }

TEST(SyncCodec, RejectsAHashListThatIsNotAMultipleOf32Bytes) {
  expectMalformed(syncWithRawHeads(Bytes(31, 1)), "31 bytes");
  expectMalformed(syncWithRawHeads(Bytes(33, 1)), "33 bytes");
  Bytes twoAndABit = concat(hashes(2));
  twoAndABit.push_back(0);
  expectMalformed(syncWithRawHeads(twoAndABit), "65 bytes");
  // A control: the same builder with whole hashes is accepted.
  auto ok = decodeMessage(syncWithRawHeads(concat(hashes(2))));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(std::get<SyncMsg>(*ok).heads, hashes(2));
}

TEST(SyncCodec, RejectsHashListsThatAreNotStrictlyAscending) {
  std::vector<ChangeHash> descending = hashes(3);
  std::reverse(descending.begin(), descending.end());
  expectMalformed(syncWithRawHeads(concat(descending)), "descending heads");
  const std::vector<ChangeHash> one = hashes(1);
  expectMalformed(syncWithRawHeads(concat({one[0], one[0]})), "a repeated head");

  // Every hash list, not only heads.
  const Bytes bad = concat(descending);
  const Bytes doc(16, 1);
  const std::vector<std::pair<std::string, std::function<void(schema::Sync::Builder)>>> fields = {
      {"need", [&](schema::Sync::Builder s) { s.setNeed(asData(bad)); }},
      {"have", [&](schema::Sync::Builder s) { s.setHave(asData(bad)); }},
      {"storedHeads", [&](schema::Sync::Builder s) { s.setStoredHeads(asData(bad)); }},
  };
  for (const auto& [name, set] : fields) {
    expectMalformed(buildFrame([&](schema::Envelope::Builder env) {
                      auto s = env.initRequest();
                      s.setDocId(asData(doc));
                      set(s);
                    }),
                    name);
  }
}

// A `refused` frame built field by field.
Bytes refusedFrame(const Bytes& doc, const Bytes& changes, std::uint32_t count) {
  return buildFrame([&](schema::Envelope::Builder env) {
    auto r = env.initRefused();
    r.setDocId(asData(doc));
    r.setChanges(asData(changes));
    r.setCount(count);
  });
}

TEST(SyncCodec, RejectsARefusalListingMoreHashesThanTheBound) {
  const Bytes doc(16, 1);
  expectMalformed(refusedFrame(doc, concat(manyHashes(kMaxRefusedHashes + 1)), 100'000),
                  "one hash over the bound");
  expectMalformed(refusedFrame(doc, Bytes((kMaxRefusedHashes + 1) * 32, 0), 100'000),
                  "over the bound and not ascending: refused on its size alone");
  // A control: at the bound it is accepted.
  auto ok = decodeMessage(refusedFrame(doc, concat(manyHashes(kMaxRefusedHashes)), 100'000));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(std::get<RefusedMsg>(*ok).changes.size(), kMaxRefusedHashes);
}

TEST(SyncCodec, RejectsARefusalThatCountsFewerChangesThanItLists) {
  const Bytes doc(16, 1);
  expectMalformed(refusedFrame(doc, concat(hashes(3)), 2), "3 listed, 2 counted");
  expectMalformed(refusedFrame(doc, concat(hashes(1)), 0), "1 listed, 0 counted");
  auto ok = decodeMessage(refusedFrame(doc, concat(hashes(3)), 3));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(std::get<RefusedMsg>(*ok).count, 3u);
}

TEST(SyncCodec, RejectsARefusalWhoseHashesAreNotWholeOrNotStrictlyAscending) {
  const Bytes doc(16, 1);
  Bytes partial = concat(hashes(2));
  partial.pop_back();
  expectMalformed(refusedFrame(doc, partial, 5), "63 bytes");
  std::vector<ChangeHash> descending = hashes(3);
  std::reverse(descending.begin(), descending.end());
  expectMalformed(refusedFrame(doc, concat(descending), 5), "descending");
  const std::vector<ChangeHash> one = hashes(1);
  expectMalformed(refusedFrame(doc, concat({one[0], one[0]}), 5), "a repeated hash");
}

TEST(SyncCodec, RejectsADocumentIdThatIsNot16Bytes) {
  for (std::size_t size : {0u, 15u, 17u, 32u}) {
    const Bytes doc(size, 1);
    const std::string n = std::to_string(size) + " bytes";
    expectMalformed(buildFrame([&](schema::Envelope::Builder env) { env.initSync().setDocId(asData(doc)); }),
                    "sync, " + n);
    expectMalformed(buildFrame([&](schema::Envelope::Builder env) { env.initRequest().setDocId(asData(doc)); }),
                    "request, " + n);
    expectMalformed(buildFrame([&](schema::Envelope::Builder env) {
                      env.initUnavailable().setDocId(asData(doc));
                    }),
                    "unavailable, " + n);
    expectMalformed(buildFrame([&](schema::Envelope::Builder env) {
                      auto e = env.initEphemeral();
                      e.setDocId(asData(doc));
                      e.setSenderId("x");
                    }),
                    "ephemeral, " + n);
    expectMalformed(refusedFrame(doc, {}, 1), "refused, " + n);
  }
}

TEST(SyncCodec, RejectsAnEmptyChange) {
  SyncMsg in = fullSync(false);
  in.changes = {Bytes{1}, Bytes{}, Bytes{2}};
  expectMalformed(encodeMessage(in), "an empty change in the middle");
}

TEST(SyncCodec, RejectsAHopCountOverEight) {
  SyncMsg in = fullSync(true);
  in.hops = kMaxHops + 1;
  expectMalformed(encodeMessage(in), "9 hops");
  in.hops = 255;
  expectMalformed(encodeMessage(in), "255 hops");
  in.isRequest = false;
  expectMalformed(encodeMessage(in), "255 hops on a sync");
}

TEST(SyncCodec, RejectsPeerIdsThatAreEmptyOverLongOrNotPrintable) {
  const std::vector<std::string> bad = {
      "", std::string(129, 'a'), "a b", " ", "a\tb", std::string("a\0b", 3), "\x01", "\x7f",
      "caf\xc3\xa9", "\xff"};
  for (const std::string& peer : bad) {
    expectMalformed(helloWithPeerId(peer), "hello from '" + peer + "'");
    expectMalformed(ephemeralWithSender(peer), "ephemeral from '" + peer + "'");
  }
  // Controls: the same frames with good IDs decode.
  for (const std::string& peer : {std::string("a"), std::string(128, '~')}) {
    auto hello = decodeMessage(helloWithPeerId(peer));
    ASSERT_TRUE(hello) << hello.error().message();
    EXPECT_EQ(std::get<HelloMsg>(*hello).peerId.str(), peer);
    auto eph = decodeMessage(ephemeralWithSender(peer));
    ASSERT_TRUE(eph) << eph.error().message();
    EXPECT_EQ(std::get<EphemeralMsg>(*eph).sender.str(), peer);
  }
}

TEST(SyncCodec, RejectsAStorageIdThatIsNeitherEmptyNor16Bytes) {
  for (std::size_t size : {1u, 15u, 17u, 32u}) {
    HelloMsg h = sampleHello();
    h.storageId = Bytes(size, 3);
    expectMalformed(encodeMessage(h), std::to_string(size) + " bytes");
  }
}

// The union's discriminant is the first 16 bits of the Envelope's data section, which capnp lays
// out right after the root pointer: byte 16 of a single-segment frame.
constexpr std::size_t kDiscriminantOffset = 16;

TEST(SyncCodec, DecodesAnUnknownUnionMemberAsUnknownMsg) {
  Bytes leave = encodeMessage(LeaveMsg{});
  ASSERT_GE(leave.size(), kDiscriminantOffset + 2);
  ASSERT_EQ(leave[kDiscriminantOffset], 6) << "the layout assumed here does not hold";
  ASSERT_EQ(leave[kDiscriminantOffset + 1], 0);
  Bytes sync = encodeMessage(fullSync(false));
  ASSERT_EQ(sync[kDiscriminantOffset], 1) << "the layout assumed here does not hold";

  // 7 is `refused`; the first member this version does not know is 8.
  for (std::uint16_t which : {8, 9, 100, 0xffff}) {
    SCOPED_TRACE("discriminant " + std::to_string(which));
    for (Bytes* frame : {&leave, &sync}) {
      Bytes patched = *frame;
      patched[kDiscriminantOffset] = static_cast<std::uint8_t>(which & 0xff);
      patched[kDiscriminantOffset + 1] = static_cast<std::uint8_t>(which >> 8);
      auto out = decodeMessage(patched);
      ASSERT_TRUE(out) << out.error().message();
      EXPECT_TRUE(std::holds_alternative<UnknownMsg>(*out));
    }
  }
}

// --- hostile bytes --------------------------------------------------------------------------------

TEST(SyncCodec, EverySingleBitFlipOfAValidFrameGivesAValueOrMalformed) {
  const std::vector<Bytes> frames = sampleFrames();
  for (std::size_t f = 0; f < frames.size(); ++f) {
    Bytes frame = frames[f];
    for (std::size_t bit = 0; bit < frame.size() * 8; ++bit) {
      frame[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      const bool ok = valueOrMalformed(
          frame, "frame " + std::to_string(f) + ", bit " + std::to_string(bit) + " flipped");
      frame[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      if (!ok) return;
    }
  }
}

TEST(SyncCodec, EveryTruncationOfAValidFrameGivesAValueOrMalformed) {
  const std::vector<Bytes> frames = sampleFrames();
  for (std::size_t f = 0; f < frames.size(); ++f) {
    const Bytes& frame = frames[f];
    for (std::size_t len = 0; len < frame.size(); ++len) {
      const std::string what = "frame " + std::to_string(f) + " cut to " + std::to_string(len);
      if (!valueOrMalformed(ByteView(frame).first(len), what)) return;
      // A whole-word truncation always loses part of the message or its segment table.
      if (len % 8 == 0) {
        auto out = decodeMessage(ByteView(frame).first(len));
        EXPECT_FALSE(out.has_value()) << what << ": accepted";
      }
    }
  }
}

TEST(SyncCodec, RandomGarbageGivesAValueOrMalformed) {
  const std::uint64_t seed = seedFor(1);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (gtest random seed * 1000 + 1)");
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 5000; ++i) {
    const std::size_t words = std::uniform_int_distribution<std::size_t>(0, 40)(rng);
    Bytes frame(words * 8);
    for (auto& b : frame) b = static_cast<std::uint8_t>(byte(rng));
    // Half the time, a plausible segment table (one segment filling the rest), so the garbage
    // reaches the pointers and the fields instead of failing at the first word.
    if (words >= 1 && i % 2 == 0) {
      const std::uint32_t segWords = static_cast<std::uint32_t>(words - 1);
      std::memset(frame.data(), 0, 4);
      std::memcpy(frame.data() + 4, &segWords, 4);
    }
    if (!valueOrMalformed(frame, "garbage #" + std::to_string(i))) return;
  }
}

TEST(SyncCodec, RandomMutationsOfValidFramesGiveAValueOrMalformed) {
  const std::uint64_t seed = seedFor(2);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (gtest random seed * 1000 + 2)");
  std::mt19937_64 rng(seed);
  const std::vector<Bytes> frames = sampleFrames();
  for (int i = 0; i < 5000; ++i) {
    Bytes frame = frames[static_cast<std::size_t>(i) % frames.size()];
    const int edits = std::uniform_int_distribution<int>(1, 8)(rng);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = std::uniform_int_distribution<std::size_t>(0, frame.size() - 1)(rng);
      frame[at] = static_cast<std::uint8_t>(std::uniform_int_distribution<int>(0, 255)(rng));
    }
    if (!valueOrMalformed(frame, "mutation #" + std::to_string(i))) return;
  }
}

// --- encodeSync ----------------------------------------------------------------------------------

// A document with `n` changes, one of them large.
Document documentWithChanges(int n) {
  Document doc;
  for (int i = 0; i < n; ++i) {
    Transaction tx = doc.transaction();
    const std::string value = i == 1 ? std::string(200'000, 'x') : "v" + std::to_string(i);
    EXPECT_TRUE(tx.put(ObjId::root(), "k" + std::to_string(i), ScalarValue(value)));
    EXPECT_TRUE(tx.commit());
  }
  return doc;
}

TEST(SyncCodec, EncodeSyncWithChangeEnvelopesIsReadBackWithTheSamePayloads) {
  const Document doc = documentWithChanges(4);
  const std::vector<const ChangeEnvelope*> envelopes = doc.graph().changes();
  ASSERT_EQ(envelopes.size(), 4u);
  SyncMsg head = fullSync(false);
  head.changes.clear();

  const Bytes frame = encodeSync(head, envelopes);
  auto out = decodeMessage(frame);
  ASSERT_TRUE(out) << out.error().message();
  ASSERT_TRUE(std::holds_alternative<SyncMsg>(*out));
  const SyncMsg& sync = std::get<SyncMsg>(*out);
  ASSERT_EQ(sync.changes.size(), envelopes.size());
  for (std::size_t i = 0; i < envelopes.size(); ++i) {
    EXPECT_EQ(sync.changes[i], envelopes[i]->payload) << "change " << i;
  }
  SyncMsg expected = head;
  for (const ChangeEnvelope* e : envelopes) expected.changes.push_back(e->payload);
  expectSameSync(sync, expected);

  // And the same frame as encodeMessage writes with the payloads copied into the message.
  auto viaMessage = decodeMessage(encodeMessage(expected));
  ASSERT_TRUE(viaMessage);
  expectSameSync(std::get<SyncMsg>(*viaMessage), sync);
}

TEST(SyncCodec, EncodeSyncWithNoChangesIsAPlainSync) {
  SyncMsg head = fullSync(false);
  head.changes.clear();
  auto out = decodeMessage(encodeSync(head, {}));
  ASSERT_TRUE(out) << out.error().message();
  expectSameSync(std::get<SyncMsg>(*out), head);
}

TEST(SyncCodec, EncodedChangeSizeIsWhatOneMoreChangeAddsToASyncFrame) {
  const Document doc = documentWithChanges(4);
  const std::vector<const ChangeEnvelope*> envelopes = doc.graph().changes();
  SyncMsg head;
  head.doc = fixedDoc(1);
  head.heads = hashes(1);
  for (std::size_t n = 0; n < envelopes.size(); ++n) {
    const std::span<const ChangeEnvelope* const> all(envelopes);
    const Bytes shorter = encodeSync(head, all.first(n));
    const Bytes longer = encodeSync(head, all.first(n + 1));
    EXPECT_EQ(longer.size() - shorter.size(), encodedChangeSize(envelopes[n]->payload.size()))
        << "change " << n << " of " << envelopes[n]->payload.size() << " bytes";
  }
}

}  // namespace
}  // namespace portcullis::detail
