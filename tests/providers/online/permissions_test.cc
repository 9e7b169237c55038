// The online provider's permission sets: write implies read, "*" covers every document, entries
// are checked, merging is a union.

#include "permissions.h"

#include <gtest/gtest.h>

namespace portcullis::online {
namespace {

TEST(OnlinePermissions, EmptyGrantsNothing) {
  const Permissions none;
  const DocumentId doc = DocumentId::random();
  EXPECT_FALSE(none.mayRead(doc));
  EXPECT_FALSE(none.mayWrite(doc));
}

TEST(OnlinePermissions, ListedDocumentOnly) {
  const DocumentId a = DocumentId::random();
  const DocumentId b = DocumentId::random();
  const Permissions p{.read = {a.toString()}, .write = {}};
  EXPECT_TRUE(p.mayRead(a));
  EXPECT_FALSE(p.mayWrite(a));
  EXPECT_FALSE(p.mayRead(b));
}

TEST(OnlinePermissions, WriteImpliesRead) {
  const DocumentId a = DocumentId::random();
  const Permissions p{.read = {}, .write = {a.toString()}};
  EXPECT_TRUE(p.mayRead(a));
  EXPECT_TRUE(p.mayWrite(a));
}

TEST(OnlinePermissions, StarCoversEveryDocument) {
  const Permissions reader{.read = {"*"}, .write = {}};
  const Permissions writer{.read = {}, .write = {"*"}};
  const DocumentId doc = DocumentId::random();
  EXPECT_TRUE(reader.mayRead(doc));
  EXPECT_FALSE(reader.mayWrite(doc));
  EXPECT_TRUE(writer.mayWrite(doc));
}

TEST(OnlinePermissions, MergeIsASortedUnionWithoutRepeats) {
  const DocumentId a = DocumentId::random();
  Permissions p{.read = {"*"}, .write = {a.toString()}};
  p.merge(Permissions{.read = {"*"}, .write = {a.toString(), "*"}});
  EXPECT_EQ(p.read, std::vector<std::string>{"*"});
  ASSERT_EQ(p.write.size(), 2u);
  EXPECT_EQ(p.write[0], "*");  // '*' sorts before 'p'
  EXPECT_EQ(p.write[1], a.toString());
}

TEST(OnlinePermissions, EntriesAreChecked) {
  EXPECT_TRUE(checkPermissionEntry("*"));
  EXPECT_TRUE(checkPermissionEntry(DocumentId::random().toString()));
  for (std::string_view bad : {"", "**", "doc-1", "portcullis:", "portcullis:abc"}) {
    auto ok = checkPermissionEntry(bad);
    ASSERT_FALSE(ok) << bad;
    EXPECT_EQ(ok.error().code(), Errc::Malformed);
  }
  // A document ID with its checksum broken.
  std::string id = DocumentId::random().toString();
  id.back() = id.back() == '2' ? '3' : '2';
  EXPECT_FALSE(checkPermissionEntry(id));
}

TEST(OnlinePermissions, ListsAreBounded) {
  Permissions p;
  p.read.assign(kMaxPermissionEntries, "*");
  EXPECT_TRUE(checkPermissions(p));
  p.read.push_back("*");
  auto ok = checkPermissions(p);
  ASSERT_FALSE(ok);
  EXPECT_NE(ok.error().message().find("read"), std::string::npos);
  p.read.clear();
  p.write = {"nope"};
  ok = checkPermissions(p);
  ASSERT_FALSE(ok);
  EXPECT_NE(ok.error().message().find("write"), std::string::npos);
}

}  // namespace
}  // namespace portcullis::online
