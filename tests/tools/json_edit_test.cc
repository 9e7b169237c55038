// Tests for `portcullis doc set`'s JSON Pointer writes (tools/portcullis/json_edit.*).

#include "json_edit.h"

#include <gtest/gtest.h>

namespace portcullis::tool {
namespace {

// Applies one set in its own transaction; commits on success, rolls back on error.
Result<void> set(Document& doc, std::string_view pointer, std::string_view json) {
  Transaction tx = doc.transaction();
  auto ok = setAtPointer(tx, doc, pointer, nlohmann::json::parse(json));
  if (ok) {
    tx.commit();
  } else {
    tx.rollback();
  }
  return ok;
}

TEST(JsonPointer, ParsesTokensAndEscapes) {
  EXPECT_EQ(*parseJsonPointer(""), std::vector<std::string>{});
  EXPECT_EQ(*parseJsonPointer("/a/0/b"), (std::vector<std::string>{"a", "0", "b"}));
  EXPECT_EQ(*parseJsonPointer("/a~1b/m~0n/"), (std::vector<std::string>{"a/b", "m~n", ""}));
  EXPECT_FALSE(parseJsonPointer("a/b"));
  EXPECT_FALSE(parseJsonPointer("/a~2"));
  EXPECT_FALSE(parseJsonPointer("/a~"));
}

TEST(JsonPointer, CreatesMapsAlongTheWayAndWritesEveryJsonType) {
  Document doc;
  ASSERT_TRUE(set(doc, "/a/b/c", "42"));
  ASSERT_TRUE(set(doc, "/s", R"("milk")"));
  ASSERT_TRUE(set(doc, "/v", R"({"x":[1,2.5,true,null,"y",{"z":{}}]})"));
  ASSERT_TRUE(set(doc, "/big", "18446744073709551615"));
  EXPECT_EQ(doc.toJson(), R"({"a":{"b":{"c":42}},"big":1.8446744073709552e+19,"s":"milk",)"
                          R"("v":{"x":[1,2.5,true,null,"y",{"z":{}}]}})");
}

TEST(JsonPointer, ListsTakeExistingIndexesOrTheEnd) {
  Document doc;
  ASSERT_TRUE(set(doc, "/l", "[10]"));
  ASSERT_TRUE(set(doc, "/l/0", "11"));        // replaces
  ASSERT_TRUE(set(doc, "/l/1", "12"));        // the length appends
  ASSERT_TRUE(set(doc, "/l/-", "13"));        // so does "-"
  ASSERT_TRUE(set(doc, "/l/2", R"({"k":1})"));
  ASSERT_TRUE(set(doc, "/l/2/k", "2"));       // into an object in a list
  EXPECT_EQ(doc.toJson(), R"({"l":[11,12,{"k":2}]})");

  auto outOfRange = set(doc, "/l/5", "0");
  ASSERT_FALSE(outOfRange);
  EXPECT_EQ(outOfRange.error().message(), "/l/5: index 5 is out of range (the list has 3 elements)");
  EXPECT_FALSE(set(doc, "/l/01", "0"));       // no leading zeros
  EXPECT_FALSE(set(doc, "/l/x", "0"));
  EXPECT_FALSE(set(doc, "/l/-/k", "0"));      // "-" only as the last token
  EXPECT_EQ(doc.toJson(), R"({"l":[11,12,{"k":2}]})");
}

TEST(JsonPointer, RefusesToDescendIntoAScalarAndChangesNothing) {
  Document doc;
  ASSERT_TRUE(set(doc, "/n", "1"));
  auto r = set(doc, "/n/x", "2");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "/n is not a map or a list");
  EXPECT_FALSE(set(doc, "", "{}"));
  EXPECT_EQ(doc.toJson(), R"({"n":1})");
}

}  // namespace
}  // namespace portcullis::tool
