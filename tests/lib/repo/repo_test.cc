// The Repo's acceptance scenarios (issue "Core 2"), each over the memory network.
#include "portcullis/repo.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "repo_harness.h"

namespace portcullis::testing {
namespace {

TEST(Repo, OpenProviderSharesANewDocumentWithoutBeingAsked) {
  RepoHarness h;
  auto& a = h.add("a");
  auto& b = h.add("b");
  h.link(a, b);
  DocHandle doc = a.repo->create();
  ASSERT_TRUE(doc.change([](Transaction& tx) { return putString(tx, "foo", "bar"); }));
  ASSERT_TRUE(h.runUntil([&] {
    auto there = b.repo->findLocal(doc.id());
    return there && readString(*there, "foo") == "bar";
  }));
  EXPECT_EQ(b.repo->findLocal(doc.id())->heads(), doc.heads());
}

}  // namespace
}  // namespace portcullis::testing
