// DocumentId's base58check text form and PeerId's rules (portcullis/ids.h).
//
// The known-answer texts were computed independently (Python: hashlib double SHA-256 and a
// textbook base58 with Bitcoin's alphabet), as bs58check does for automerge-repo URLs.
#include "portcullis/ids.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace portcullis {
namespace {

constexpr std::string_view kPrefix = "portcullis:";
constexpr std::string_view kBase58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

DocumentId fromFill(std::uint8_t fill) { return *DocumentId::fromBytes(Bytes(16, fill)); }

Bytes counting() {
  Bytes out(16);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(i);
  return out;
}

// A mix of edge cases (leading zero bytes become '1's) and random IDs.
std::vector<DocumentId> sampleIds() {
  std::vector<DocumentId> out = {fromFill(0), fromFill(0xff), *DocumentId::fromBytes(counting())};
  Bytes oneLeadingZero(16, 0x42);
  oneLeadingZero[0] = 0;
  out.push_back(*DocumentId::fromBytes(oneLeadingZero));
  for (int i = 0; i < 50; ++i) out.push_back(DocumentId::random());
  return out;
}

void expectRefused(std::string_view text, const std::string& why) {
  auto parsed = DocumentId::parse(text);
  EXPECT_FALSE(parsed.has_value()) << why << ": '" << text << "' parsed";
  if (!parsed) {
    EXPECT_EQ(parsed.error().code(), Errc::Malformed) << why;
  }
}

// --- DocumentId ---------------------------------------------------------------------------------

TEST(DocumentId, WritesTheKnownBase58CheckText) {
  EXPECT_EQ(fromFill(0).toString(), "portcullis:11111111111111114Ki9Gx");
  EXPECT_EQ(DocumentId::fromBytes(counting())->toString(), "portcullis:1Bhh3pU9gLXZiNDL6PEa1Gs9fh");
  EXPECT_EQ(fromFill(0xff).toString(), "portcullis:4ZrjxJnU1LA5xSyrWMNuXTozYEvA");
}

TEST(DocumentId, ParsesWhatItWrites) {
  for (const DocumentId& id : sampleIds()) {
    const std::string text = id.toString();
    SCOPED_TRACE(text);
    EXPECT_TRUE(text.starts_with(kPrefix));
    EXPECT_EQ(text.find_first_not_of(kBase58, kPrefix.size()), std::string::npos);
    auto parsed = DocumentId::parse(text);
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(*parsed, id);
  }
}

TEST(DocumentId, RandomIdsDiffer) {
  std::set<DocumentId> seen;
  for (int i = 0; i < 100; ++i) seen.insert(DocumentId::random());
  EXPECT_EQ(seen.size(), 100u);
}

TEST(DocumentId, ParseRefusesAWrongPrefix) {
  const std::string body = DocumentId::random().toString().substr(kPrefix.size());
  expectRefused(body, "no prefix");
  expectRefused("automerge:" + body, "automerge's prefix");
  expectRefused("Portcullis:" + body, "capitalised prefix");
  expectRefused("portcullis" + body, "no colon");
  expectRefused(" portcullis:" + body, "a leading space");
  expectRefused("portcullis:", "nothing after the prefix");
  expectRefused("", "empty");
}

TEST(DocumentId, ParseRefusesCharactersOutsideTheBase58Alphabet) {
  for (const DocumentId& id : sampleIds()) {
    const std::string text = id.toString();
    for (char bad : {'0', 'O', 'I', 'l', '+', '/', ' ', '\0', '\xc3'}) {
      for (std::size_t at : {kPrefix.size(), text.size() / 2 + 3, text.size() - 1}) {
        std::string mutated = text;
        mutated[at] = bad;
        expectRefused(mutated, std::string("'") + bad + "' at " + std::to_string(at));
      }
    }
  }
}

TEST(DocumentId, ParseRefusesAWrongLength) {
  for (const DocumentId& id : sampleIds()) {
    const std::string text = id.toString();
    expectRefused(text.substr(0, text.size() - 1), "last character dropped");
    expectRefused(text + "2", "a character appended");
    expectRefused(std::string(kPrefix) + "1" + text.substr(kPrefix.size()), "a leading '1' added");
    expectRefused(text + text.substr(kPrefix.size()), "the body twice");
  }
  expectRefused(std::string(kPrefix) + std::string(1000, 'z'), "1000 digits");
  expectRefused(std::string(kPrefix) + std::string(28, '1'), "28 zero digits");
}

TEST(DocumentId, ParseRefusesAFlippedChecksumCharacter) {
  for (const DocumentId& id : sampleIds()) {
    const std::string text = id.toString();
    std::string mutated = text;
    const std::size_t digit = kBase58.find(mutated.back());
    mutated.back() = kBase58[(digit + 1) % kBase58.size()];
    expectRefused(mutated, "last digit changed");
    mutated = text;
    const std::size_t at = text.size() - 2;
    mutated[at] = kBase58[(kBase58.find(mutated[at]) + 7) % kBase58.size()];
    expectRefused(mutated, "second-to-last digit changed");
  }
}

TEST(DocumentId, FromBytesTakesExactly16Bytes) {
  for (std::size_t size : {0u, 1u, 15u, 17u, 32u}) {
    auto id = DocumentId::fromBytes(Bytes(size, 1));
    ASSERT_FALSE(id.has_value()) << size << " bytes";
    EXPECT_EQ(id.error().code(), Errc::Malformed);
  }
  const Bytes bytes = counting();
  auto id = DocumentId::fromBytes(bytes);
  ASSERT_TRUE(id);
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), id->bytes().begin(), id->bytes().end()));
}

TEST(DocumentId, LogNameIsShortStableAndRevealsNothingOfTheId) {
  std::set<std::string> names;
  for (const DocumentId& id : sampleIds()) {
    const std::string name = id.logName();
    const std::string hex = toHex(id.bytes());
    const std::string text = id.toString();
    SCOPED_TRACE(name);
    EXPECT_LE(name.size(), 16u);
    EXPECT_EQ(name, id.logName()) << "stable";
    EXPECT_EQ(name.find(hex), std::string::npos);
    EXPECT_EQ(name.find(hex.substr(0, 8)), std::string::npos) << "the ID's first 8 hex digits";
    EXPECT_EQ(name.find(hex.substr(hex.size() - 8)), std::string::npos) << "its last 8 digits";
    EXPECT_EQ(name.find(text.substr(kPrefix.size(), 8)), std::string::npos) << "its text form";
    names.insert(name);
  }
  EXPECT_EQ(names.size(), sampleIds().size()) << "different IDs, different names";
}

// --- PeerId -------------------------------------------------------------------------------------

TEST(PeerId, AcceptsPrintableAsciiUpTo128Characters) {
  std::string everyPrintable;
  for (char c = '!'; c <= '~'; ++c) everyPrintable.push_back(c);
  for (const std::string& text : {std::string("a"), everyPrintable, std::string(128, 'x'),
                                  std::string("0123abcdef"), std::string("peer-\"quoted\"")}) {
    auto id = PeerId::parse(text);
    ASSERT_TRUE(id) << "'" << text << "': " << id.error().message();
    EXPECT_EQ(id->str(), text);
  }
}

TEST(PeerId, RefusesEmptyOverLongSpacedControlAndNonAsciiValues) {
  const std::vector<std::string> bad = {
      "",
      std::string(129, 'x'),
      std::string(1000, 'x'),
      "a b",
      " a",
      "a ",
      "a\tb",
      "a\nb",
      std::string("a\0b", 3),
      std::string(1, '\0'),
      "\x1b[31m",
      "\x7f",
      "caf\xc3\xa9",
      "\x80",
      "\xff",
  };
  for (const std::string& text : bad) {
    auto id = PeerId::parse(text);
    ASSERT_FALSE(id.has_value()) << "'" << text << "' accepted";
    EXPECT_EQ(id.error().code(), Errc::Malformed);
  }
}

TEST(PeerId, RandomIdsDifferAndAreValid) {
  std::set<PeerId> seen;
  for (int i = 0; i < 100; ++i) {
    const PeerId id = PeerId::random();
    EXPECT_TRUE(id.str().starts_with("peer-")) << id.str();
    auto again = PeerId::parse(id.str());
    ASSERT_TRUE(again) << id.str();
    EXPECT_EQ(*again, id);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace portcullis
