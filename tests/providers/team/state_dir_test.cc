// Tests of providers/team/state_dir.h: layout and modes, reopening, the deviceSeq counter and the
// restored-backup refusal, and the links file's crash safety and damage reports.
#include "state_dir.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fixed_keys.h"
#include "wire/link_codec.h"

namespace {

namespace fs = std::filesystem;
using portcullis::Bytes;
using portcullis::ByteView;
using portcullis::DeviceKey;
using portcullis::Errc;
using portcullis::Result;
using namespace portcullis::team;  // NOLINT: the unit under test
using StateDir = portcullis::team::TeamStateDir;

// Keys from fixed seeds.
DeviceKey deviceKeyOf(std::uint8_t n) {
  std::array<std::uint8_t, 32> seed{};
  seed.fill(n);
  return DeviceKey::fromSeed(seed).value();
}

EncKey encKeyOf(std::uint8_t n) { return fixedkeys::encKey(static_cast<std::uint8_t>(n + 100)); }

Key idOf(const DeviceKey& key) { return key.publicKey().bytes(); }

struct SignedLink {
  Hash hash{};
  Bytes message;  // the `Link` message
};

SignedLink signLink(const LinkBody& body, const DeviceKey& author) {
  const Bytes encoded = encodeLinkBody(body);
  const Signature signature = signLinkBody(encoded, author.secretKey().span());
  return {linkHash(encoded, signature), encodeLink(encoded, signature)};
}

constexpr std::uint8_t kFounderSeed = 1;

SignedLink rootBy(const DeviceKey& founder) {
  LinkBody body;
  body.userId = "alice";
  body.deviceId = idOf(founder);
  body.deviceSeq = 1;
  body.timestamp = 1'700'000'000'000;
  Root root;
  root.teamName = "state dir test";
  root.founder = Device{idOf(founder), encKeyOf(kFounderSeed)};
  root.version = 3;
  body.action = root;
  return signLink(body, founder);
}

// alice's addMember of `userId` with one device (seed `deviceSeed`) that consents, signed at
// `seq` on top of alice's previous link `prev`.
SignedLink addMemberBy(const DeviceKey& alice, const Hash& teamId, std::uint64_t seq,
                       const Hash& prev, const std::string& userId, std::uint8_t deviceSeed) {
  const DeviceKey device = deviceKeyOf(deviceSeed);
  NewDevice newDevice;
  newDevice.deviceId = idOf(device);
  newDevice.encKey = encKeyOf(deviceSeed);
  newDevice.consent =
      signBytes(admissionTuple(teamId, Hash{}, newDevice.deviceId, newDevice.encKey, userId),
                device.secretKey().span());
  AddMember add;
  add.userId = userId;
  add.devices = {newDevice};
  LinkBody body;
  body.prev = {prev};
  body.userId = "alice";
  body.deviceId = idOf(alice);
  body.deviceSeq = seq;
  body.timestamp = 1'700'000'000'000 + seq;
  body.action = add;
  return signLink(body, alice);
}

Bytes readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void writeAll(const std::string& path, ByteView bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void appendRaw(const std::string& path, ByteView bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes u32le(std::uint32_t n) {
  return {static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(n >> 8),
          static_cast<std::uint8_t>(n >> 16), static_cast<std::uint8_t>(n >> 24)};
}

// A record as the header of state_dir.h describes it, built here independently of the code.
Bytes recordOf(ByteView payload) {
  Bytes out = u32le(static_cast<std::uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  std::array<std::uint8_t, 16> sum{};
  crypto_generichash(sum.data(), sum.size(), payload.data(), payload.size(), nullptr, 0);
  out.insert(out.end(), sum.begin(), sum.end());
  return out;
}

std::size_t recordSize(const SignedLink& link) { return 4 + link.message.size() + 16; }

std::vector<Hash> hashesOf(const TeamGraph& graph) {
  std::vector<Hash> out;
  graph.forEachLink([&](const StoredLink& link) { out.push_back(link.hash); });
  return out;
}

unsigned modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string textOf(const std::string& path) {
  const Bytes bytes = readAll(path);
  return std::string(bytes.begin(), bytes.end());
}

class TeamStateDir : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "team-state-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dir_ = root_ + "/state";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::string file(const std::string& name) const { return dir_ + "/" + name; }

  // A founder's state directory holding the root, as `team create` would make it.
  StateDir found() {
    DeviceKey alice = deviceKeyOf(kFounderSeed);
    root_link_ = rootBy(alice);
    teamId_ = root_link_.hash;
    auto dir = StateDir::create(dir_, teamId_, std::move(alice), /*lastSignedSeq=*/1);
    EXPECT_TRUE(dir.has_value()) << dir.error().message();
    StateDir out = std::move(dir).value();
    const std::vector<Bytes> batch = {root_link_.message};
    const BatchOutcome outcome = out.graph().addBatch(batch);
    EXPECT_EQ(outcome.stored.size(), 1u);
    EXPECT_TRUE(out.appendLinks(batch).has_value());
    last_ = root_link_.hash;
    return out;
  }

  // The founder signs addMember links, one per userId, each with a freshly reserved deviceSeq,
  // stores them in its graph and appends them as one batch.
  std::vector<SignedLink> addMembers(StateDir& dir, const std::vector<std::string>& users) {
    std::vector<SignedLink> links;
    std::vector<Bytes> batch;
    for (const std::string& user : users) {
      auto seq = dir.reserveNextSeq();
      EXPECT_TRUE(seq.has_value()) << seq.error().message();
      if (!seq) return links;
      links.push_back(addMemberBy(dir.deviceKey(), teamId_, *seq, last_, user, nextSeed_++));
      last_ = links.back().hash;
      batch.push_back(links.back().message);
    }
    const BatchOutcome outcome = dir.graph().addBatch(batch);
    EXPECT_EQ(outcome.stored.size(), batch.size());
    EXPECT_TRUE(outcome.dropped.empty());
    const auto appended = dir.appendLinks(batch);
    EXPECT_TRUE(appended.has_value()) << appended.error().message();
    return links;
  }

  StateDir reopen(const std::string& path) {
    auto dir = StateDir::open(path);
    EXPECT_TRUE(dir.has_value()) << dir.error().message();
    return std::move(dir).value();
  }

  std::string root_;
  std::string dir_;
  SignedLink root_link_;
  Hash teamId_{};
  Hash last_{};  // the founder's latest link
  std::uint8_t nextSeed_ = 10;
};

TEST_F(TeamStateDir, CreatesAPrivateDirectoryWithTheDocumentedFiles) {
  { StateDir dir = found(); }
  EXPECT_EQ(modeOf(dir_), 0700u);
  EXPECT_EQ(modeOf(file("device.key")), 0600u);
  EXPECT_EQ(textOf(file("device.seq")), "1\n");
  EXPECT_EQ(textOf(file("team.id")), portcullis::toHex(teamId_) + "\n");
  Bytes expected = {'P', 'C', 'T', 'L', 'I', 'N', 'K', 1};
  const Bytes record = recordOf(root_link_.message);
  expected.insert(expected.end(), record.begin(), record.end());
  EXPECT_EQ(readAll(file("links")), expected);
  EXPECT_FALSE(fs::exists(file("config.toml")));
}

TEST_F(TeamStateDir, ReopeningGivesTheSameLinksStateKeyAndCounter) {
  std::vector<Hash> hashes;
  std::vector<std::string> members;
  Key device{};
  {
    StateDir dir = found();
    (void)addMembers(dir, {"bob"});
    (void)addMembers(dir, {"carol", "dave"});
    hashes = hashesOf(dir.graph());
    members = dir.graph().members();
    device = idOf(dir.deviceKey());
    EXPECT_EQ(dir.persistedSeq(), 4u);
  }
  ASSERT_EQ(hashes.size(), 4u);
  EXPECT_EQ(members, (std::vector<std::string>{"alice", "bob", "carol", "dave"}));

  StateDir again = reopen(dir_);
  EXPECT_EQ(again.teamId(), teamId_);
  EXPECT_EQ(idOf(again.deviceKey()), device);
  EXPECT_EQ(again.persistedSeq(), 4u);
  EXPECT_EQ(again.discardedTailBytes(), 0u);
  EXPECT_EQ(hashesOf(again.graph()), hashes);
  EXPECT_EQ(again.graph().members(), members);
  EXPECT_EQ(again.graph().lastSeqOf(device), 4u);
  auto next = again.reserveNextSeq();
  ASSERT_TRUE(next.has_value()) << next.error().message();
  EXPECT_EQ(*next, 5u);
}

TEST_F(TeamStateDir, PersistsEachReservedSeqBeforeReturningIt) {
  StateDir dir = found();
  auto seq = dir.reserveNextSeq();
  ASSERT_TRUE(seq.has_value()) << seq.error().message();
  EXPECT_EQ(*seq, 2u);
  EXPECT_EQ(textOf(file("device.seq")), "2\n");
  EXPECT_FALSE(fs::exists(file("device.seq.tmp")));
}

TEST_F(TeamStateDir, ReusesAReservedSeqWhoseLinkNeverReachedTheLinksFile) {
  // A crash between reserving and appending: the link was never appended, so never sent.
  { StateDir dir = found(); ASSERT_TRUE(dir.reserveNextSeq().has_value()); }
  StateDir dir = reopen(dir_);
  auto seq = dir.reserveNextSeq();
  ASSERT_TRUE(seq.has_value()) << seq.error().message();
  EXPECT_EQ(*seq, 2u);
  EXPECT_EQ(textOf(file("device.seq")), "2\n");
}

TEST_F(TeamStateDir, RefusesAKeyFileThatGroupOrOthersCanRead) {
  { StateDir dir = found(); }
  ASSERT_EQ(::chmod(file("device.key").c_str(), 0644), 0);
  auto dir = StateDir::open(dir_);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code(), Errc::Config);
  EXPECT_NE(dir.error().message().find(file("device.key")), std::string::npos)
      << dir.error().message();

  ASSERT_EQ(::chmod(file("device.key").c_str(), 0600), 0);
  EXPECT_TRUE(StateDir::open(dir_).has_value());
}

TEST_F(TeamStateDir, RefusesToCreateInADirectoryThatIsNotEmpty) {
  ASSERT_TRUE(fs::create_directory(dir_));
  appendRaw(file("stranger"), Bytes{1});
  auto dir = StateDir::create(dir_, Hash{}, deviceKeyOf(2));
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code(), Errc::Conflict);
  EXPECT_FALSE(fs::exists(file("device.key")));
}

TEST_F(TeamStateDir, TakesAnExistingEmptyDirectoryAndMakesItPrivate) {
  ASSERT_TRUE(fs::create_directory(dir_));
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  auto dir = StateDir::create(dir_, Hash{}, deviceKeyOf(2));
  ASSERT_TRUE(dir.has_value()) << dir.error().message();
  EXPECT_EQ(modeOf(dir_), 0700u);
  EXPECT_EQ(textOf(file("device.seq")), "0\n");
}

TEST_F(TeamStateDir, RefusesADirectoryWhoseCreationWasInterrupted) {
  { StateDir dir = found(); }
  fs::remove(file("team.id"));
  auto dir = StateDir::open(dir_);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code(), Errc::NotFound);
  EXPECT_NE(dir.error().message().find("team.id"), std::string::npos);
}

TEST_F(TeamStateDir, RefusesASecondOpenWhileTheFirstIsOpen) {
  StateDir first = found();
  auto second = StateDir::open(dir_);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), Errc::Conflict);
}

TEST_F(TeamStateDir, RefusesToSignAgainAfterARestoreFromABackup) {
  { StateDir dir = found(); }
  const std::string backup = root_ + "/backup";
  fs::copy(dir_, backup, fs::copy_options::recursive);
  ASSERT_EQ(::chmod(backup.c_str(), 0700), 0);
  ASSERT_EQ(::chmod((backup + "/device.key").c_str(), 0600), 0);

  // The original device goes on signing after the backup was taken.
  std::vector<SignedLink> later;
  {
    StateDir original = reopen(dir_);
    later = addMembers(original, {"bob", "carol"});
    ASSERT_EQ(later.size(), 2u);
  }

  // The restored copy learns those links (as sync would bring them) and must not sign again.
  std::vector<Bytes> batch;
  for (const SignedLink& link : later) batch.push_back(link.message);
  {
    StateDir restored = reopen(backup);
    EXPECT_EQ(restored.persistedSeq(), 1u);
    const BatchOutcome outcome = restored.graph().addBatch(batch);
    EXPECT_EQ(outcome.stored.size(), 2u);
    ASSERT_TRUE(restored.appendLinks(batch).has_value());
    auto seq = restored.reserveNextSeq();
    ASSERT_FALSE(seq.has_value());
    EXPECT_EQ(seq.error().code(), Errc::Conflict);
    EXPECT_NE(seq.error().message().find("this device signed links this state directory does "
                                         "not remember (restored from a backup?); join the team "
                                         "again as a new device"),
              std::string::npos)
        << seq.error().message();
    EXPECT_EQ(restored.persistedSeq(), 1u);
  }
  EXPECT_EQ(textOf(backup + "/device.seq"), "1\n");

  // And not after a restart either.
  StateDir restarted = reopen(backup);
  auto seq = restarted.reserveNextSeq();
  ASSERT_FALSE(seq.has_value());
  EXPECT_EQ(seq.error().code(), Errc::Conflict);
}

TEST_F(TeamStateDir, RecoversFromACutAtEveryByteOfTheLastRecord) {
  SignedLink last;
  {
    StateDir dir = found();
    (void)addMembers(dir, {"bob"});
    last = addMembers(dir, {"carol"}).at(0);
  }
  const Bytes full = readAll(file("links"));
  const std::size_t lastStart = full.size() - recordSize(last);
  const std::vector<Bytes> lastBatch = {last.message};

  for (std::size_t cut = lastStart; cut < full.size(); ++cut) {
    SCOPED_TRACE("links cut at byte " + std::to_string(cut));
    writeAll(file("links"), ByteView(full).first(cut));
    {
      auto dir = StateDir::open(dir_);
      ASSERT_TRUE(dir.has_value()) << dir.error().message();
      EXPECT_EQ(dir->graph().size(), 2u);
      EXPECT_EQ(dir->graph().members(), (std::vector<std::string>{"alice", "bob"}));
      EXPECT_EQ(dir->discardedTailBytes(), cut - lastStart);
      EXPECT_EQ(fs::file_size(file("links")), lastStart);
      ASSERT_TRUE(dir->appendLinks(lastBatch).has_value());
    }
    auto dir = StateDir::open(dir_);
    ASSERT_TRUE(dir.has_value()) << dir.error().message();
    EXPECT_EQ(dir->graph().size(), 3u);
    EXPECT_EQ(dir->graph().members(), (std::vector<std::string>{"alice", "bob", "carol"}));
    EXPECT_EQ(dir->discardedTailBytes(), 0u);
    ASSERT_EQ(readAll(file("links")), full);
  }
}

TEST_F(TeamStateDir, StopsAtAFlippedByteInAnEarlierRecordAndNamesItsOffset) {
  SignedLink bob;
  {
    StateDir dir = found();
    bob = addMembers(dir, {"bob"}).at(0);
    (void)addMembers(dir, {"carol"});
  }
  const Bytes full = readAll(file("links"));
  const std::size_t bobStart = 8 + recordSize(root_link_);
  const std::string expected = file("links") + ": record checksum mismatch at byte offset " +
                               std::to_string(bobStart);
  // Every byte of bob's payload and checksum (its length is covered by the bound tests).
  for (std::size_t at = bobStart + 4; at < bobStart + recordSize(bob); ++at) {
    SCOPED_TRACE("flipped byte " + std::to_string(at));
    Bytes damaged = full;
    damaged[at] ^= 0x20;
    writeAll(file("links"), damaged);
    auto dir = StateDir::open(dir_);
    ASSERT_FALSE(dir.has_value());
    EXPECT_EQ(dir.error().code(), Errc::Malformed);
    EXPECT_EQ(dir.error().message(), expected);
  }
  // Damage is never repaired: the file is as it was.
  Bytes damaged = full;
  damaged[bobStart + 10] ^= 1;
  writeAll(file("links"), damaged);
  EXPECT_FALSE(StateDir::open(dir_).has_value());
  EXPECT_EQ(readAll(file("links")), damaged);
}

TEST_F(TeamStateDir, RejectsAFileWithoutTheMagic) {
  { StateDir dir = found(); }
  Bytes bytes = readAll(file("links"));
  bytes[0] = 'X';
  writeAll(file("links"), bytes);
  auto dir = StateDir::open(dir_);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code(), Errc::Malformed);
  EXPECT_NE(dir.error().message().find(file("links")), std::string::npos);
  EXPECT_NE(dir.error().message().find("(bad magic) at byte offset 0"), std::string::npos)
      << dir.error().message();

  writeAll(file("links"), ByteView(bytes).first(5));
  dir = StateDir::open(dir_);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code(), Errc::Malformed);
}

TEST_F(TeamStateDir, RejectsAnotherFormatVersionAsUnsupported) {
  { StateDir dir = found(); }
  Bytes bytes = readAll(file("links"));
  bytes[7] = 2;
  writeAll(file("links"), bytes);
  auto dir = StateDir::open(dir_);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code(), Errc::Unsupported);
  EXPECT_NE(dir.error().message().find("at byte offset 7"), std::string::npos);
}

TEST_F(TeamStateDir, RejectsARecordLengthOverTheBoundOrZeroEvenAtTheEnd) {
  { StateDir dir = found(); }
  const Bytes good = readAll(file("links"));
  const std::string offset = "at byte offset " + std::to_string(good.size());
  for (std::uint32_t length : {static_cast<std::uint32_t>(kMaxLinkRecordBytes + 1),
                               0xFFFFFFFFu, 0u}) {
    SCOPED_TRACE("length " + std::to_string(length));
    writeAll(file("links"), good);
    appendRaw(file("links"), u32le(length));
    appendRaw(file("links"), Bytes(64, 0));
    auto dir = StateDir::open(dir_);
    ASSERT_FALSE(dir.has_value());
    EXPECT_EQ(dir.error().code(), Errc::Malformed);
    EXPECT_NE(dir.error().message().find(file("links")), std::string::npos);
    EXPECT_NE(dir.error().message().find(offset), std::string::npos) << dir.error().message();
  }
  // The bound itself is a length, not damage: a record of that size cut short is a cut tail.
  writeAll(file("links"), good);
  appendRaw(file("links"), u32le(static_cast<std::uint32_t>(kMaxLinkRecordBytes)));
  auto dir = StateDir::open(dir_);
  ASSERT_TRUE(dir.has_value()) << dir.error().message();
  EXPECT_EQ(dir->discardedTailBytes(), 4u);
}

TEST_F(TeamStateDir, RejectsAWholeRecordThatHoldsNoValidLink) {
  { StateDir dir = found(); }
  const Bytes good = readAll(file("links"));

  // Checksummed correctly, but not a Link message.
  appendRaw(file("links"), recordOf(Bytes(40, 0xAB)));
  auto dir = StateDir::open(dir_);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code(), Errc::Malformed);
  EXPECT_NE(dir.error().message().find("at byte offset " + std::to_string(good.size())),
            std::string::npos)
      << dir.error().message();

  // A well-formed, signed root of another team: checks 1–2 pass, the graph drops it (check 3).
  writeAll(file("links"), good);
  const DeviceKey other = deviceKeyOf(3);
  appendRaw(file("links"), recordOf(rootBy(other).message));
  dir = StateDir::open(dir_);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code(), Errc::Malformed);
  EXPECT_NE(dir.error().message().find(file("links")), std::string::npos)
      << dir.error().message();
  EXPECT_NE(dir.error().message().find("at byte offset " + std::to_string(good.size())),
            std::string::npos)
      << dir.error().message();
}

TEST_F(TeamStateDir, ExportedLinksImportAgainAndACutExportIsRefused) {
  std::vector<Hash> hashes;
  const std::string exported = root_ + "/team.links";
  {
    StateDir dir = found();
    (void)addMembers(dir, {"bob", "carol"});
    hashes = hashesOf(dir.graph());
    ASSERT_TRUE(StateDir::exportLinks(dir.graph(), exported).has_value());
    auto again = StateDir::exportLinks(dir.graph(), exported);
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code(), Errc::Conflict);
  }
  EXPECT_EQ(modeOf(exported), 0600u);

  auto links = StateDir::importFile(exported, teamId_);
  ASSERT_TRUE(links.has_value()) << links.error().message();
  ASSERT_EQ(links->size(), 3u);
  TeamGraph graph(teamId_);
  const BatchOutcome outcome = graph.addBatch(*links);
  EXPECT_EQ(outcome.stored.size(), 3u);
  EXPECT_EQ(hashesOf(graph), hashes);

  auto bounded = StateDir::importFile(exported, teamId_, 2);
  ASSERT_FALSE(bounded.has_value());
  EXPECT_EQ(bounded.error().code(), Errc::Overloaded);

  const Bytes full = readAll(exported);
  writeAll(exported, ByteView(full).first(full.size() - 1));
  auto cut = StateDir::importFile(exported, teamId_);
  ASSERT_FALSE(cut.has_value());
  EXPECT_EQ(cut.error().code(), Errc::Malformed);
  EXPECT_NE(cut.error().message().find(exported), std::string::npos);
  EXPECT_NE(cut.error().message().find("file ends inside the record"), std::string::npos);
}

TEST_F(TeamStateDir, RefusesToAppendALinkOfImpossibleSizeAndWritesNothing) {
  StateDir dir = found();
  const auto before = fs::file_size(file("links"));
  const std::vector<Bytes> batch = {root_link_.message, Bytes{}};
  auto appended = dir.appendLinks(batch);
  ASSERT_FALSE(appended.has_value());
  EXPECT_EQ(appended.error().code(), Errc::Malformed);
  EXPECT_EQ(fs::file_size(file("links")), before);
}

}  // namespace
