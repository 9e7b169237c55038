// Offers (architecture §5): a Repo offers its documents to every peer that may have them, and a
// peer that does not answer an offer does not want the document. A raw peer on the memory network
// reads what the Repo sends it.
#include <gtest/gtest.h>

#include "portcullis/repo.h"
#include "repo_harness.h"
#include "wire/sync_codec.h"

namespace portcullis::testing {
namespace {

// The `sync` frames for `id` that the Repo (the acceptor of `link`) has sent so far: the
// recorded bytes are the open handshake's greeting, then u32 big-endian lengths and frames.
std::vector<detail::SyncMsg> syncsFor(const MemoryLink& link, const DocumentId& id) {
  const std::vector<std::uint8_t>& bytes = link.bytesFromAcceptor();
  std::vector<detail::SyncMsg> out;
  if (bytes.empty()) return out;
  for (std::size_t at = 1 + std::size_t{bytes[0]}; at + 4 <= bytes.size();) {
    const std::size_t n = std::size_t{bytes[at]} << 24 | std::size_t{bytes[at + 1]} << 16 |
                          std::size_t{bytes[at + 2]} << 8 | bytes[at + 3];
    if (at + 4 + n > bytes.size()) break;
    auto decoded = detail::decodeMessage(ByteView(bytes.data() + at + 4, n));
    if (decoded) {
      if (auto* sync = std::get_if<detail::SyncMsg>(&*decoded); sync && sync->doc == id) {
        out.push_back(std::move(*sync));
      }
    }
    at += 4 + n;
  }
  return out;
}

std::size_t changesIn(const std::vector<detail::SyncMsg>& syncs) {
  std::size_t n = 0;
  for (const auto& s : syncs) n += s.changes.size();
  return n;
}

TEST(RepoOffer, APeerThatDoesNotAnswerAnOfferIsNotToldOfEachChangeButGetsThemAllOnceItAnswers) {
  constexpr int kChanges = 20;
  RepoHarness h;
  auto& a = h.add("a");
  RawPeer raw(h, "r");
  ASSERT_NO_FATAL_FAILURE(openRaw(h, raw, a, "r", helloFrame("r")));
  ASSERT_TRUE(h.runUntil([&] { return lists(a, "r"); }, 2s));

  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change(put("k", "0")));
  ASSERT_TRUE(h.runUntil([&] { return !syncsFor(*raw.link, doc.id()).empty(); }, 2s))
      << "the document is offered";
  // Each change on its own, with time for the Repo's writer to run in between.
  for (int i = 1; i <= kChanges; ++i) {
    ASSERT_TRUE(doc.change(put("k", std::to_string(i))));
    h.runFor(5ms);
  }
  h.runFor(100ms);
  const auto offers = syncsFor(*raw.link, doc.id());
  EXPECT_EQ(offers.size(), 1u) << "an unanswered offer was repeated";
  EXPECT_EQ(changesIn(offers), 0u) << "changes went to a peer that never said what it has";
  EXPECT_TRUE(lists(a, "r"));

  // The peer answers: it has nothing. Everything comes, current heads and all.
  detail::SyncMsg answer;
  answer.doc = doc.id();
  auto sent = h.await(raw.send(detail::encodeMessage(answer)), 2s);
  ASSERT_TRUE(sent) << sent.error().message();
  ASSERT_TRUE(h.runUntil([&] {
    return changesIn(syncsFor(*raw.link, doc.id())) == static_cast<std::size_t>(kChanges + 1);
  }, 2s)) << "the changes did not all come after the answer";
  EXPECT_EQ(syncsFor(*raw.link, doc.id()).back().heads, doc.heads());
}

}  // namespace
}  // namespace portcullis::testing
