// Ops from a hostile author that refer outside their change's causal past, or that nest too
// deep, still give every replica the same state whatever the arrival order (op_set.h).
#include <gtest/gtest.h>

#include "crdt/op_set.h"
#include "portcullis/document.h"
#include "wire/change_codec.h"

namespace portcullis::detail {
namespace {

ActorId actor(std::uint8_t fill) { return *ActorId::fromBytes(Bytes(16, fill)); }

Op mapSet(std::string key, ScalarValue value) {
  Op op;
  op.mapKey = std::move(key);
  op.action = Action::Set;
  op.value = std::move(value);
  return op;
}

// A (actor 0x0a) makes root "l" = [] at op 1@A and "q" = 1 at 2@A. B (0x0b), never having seen
// A, first sets two keys (ops 1-2) and then, at ops 3-5: inserts "z" into 1@A (an object it
// cannot know yet), puts a map key into that list (the wrong key kind) and deletes "q" by naming
// 2@A in pred (outside its causal past).
std::vector<Bytes> hostileHistory() {
  ChangeData a{.actor = actor(0x0a)};
  a.seq = 1;
  a.startOp = 1;
  Op makeList;
  makeList.mapKey = "l";
  makeList.action = Action::MakeList;
  a.ops = {makeList, mapSet("q", std::int64_t{1})};

  ChangeData b1{.actor = actor(0x0b)};
  b1.seq = 1;
  b1.startOp = 1;
  b1.ops = {mapSet("x", std::int64_t{1}), mapSet("y", std::int64_t{2})};
  ChangeEnvelope b1env = encodeChange(b1);

  ChangeData b2{.actor = actor(0x0b)};
  b2.seq = 2;
  b2.startOp = 3;
  b2.deps = {b1env.hash};
  b2.otherActors = {actor(0x0a)};
  Op insert;
  insert.obj = OpRef{1, 1};
  insert.elemKey = true;
  insert.insert = true;
  insert.action = Action::Set;
  insert.value = std::string("z");
  Op wrongKind = mapSet("k", Null{});
  wrongKind.obj = OpRef{1, 1};
  Op del;
  del.mapKey = "q";
  del.action = Action::Delete;
  del.pred = {OpRef{2, 1}};
  b2.ops = {insert, wrongKind, del};
  return {encodeChange(a).payload, b1env.payload, encodeChange(b2).payload};
}

TEST(HostileOps, ReferencesOutsideTheCausalPastConvergeInEveryOrder) {
  std::vector<Bytes> history = hostileHistory();
  std::vector<std::vector<int>> orders = {{0, 1, 2}, {1, 2, 0}, {1, 0, 2}};
  std::vector<Bytes> saves;
  std::vector<std::string> jsons;
  for (const auto& order : orders) {
    Document doc;
    for (int i : order) {
      ApplyReport report = doc.applyChanges(std::span(&history[i], 1));
      ASSERT_TRUE(report.rejected.empty()) << report.rejected[0].message();
    }
    saves.push_back(doc.save());
    jsons.push_back(doc.toJson());
  }
  // The insert waits for the list when it comes first; the wrong-kind key is ignored; the
  // delete hides "q" even when it arrives before "q" itself.
  EXPECT_EQ(jsons[0], R"({"l":["z"],"x":1,"y":2})");
  for (std::size_t i = 1; i < orders.size(); ++i) {
    EXPECT_EQ(saves[i], saves[0]) << "order " << i;
    EXPECT_EQ(jsons[i], jsons[0]) << "order " << i;
  }
}

TEST(HostileOps, AnOpWithTheWrongKeyKindForItsObjectIsIgnored) {
  OpSet ops;
  const std::uint32_t a = ops.actors().intern(actor(0x0a));
  Op makeList;
  makeList.mapKey = "l";
  makeList.action = Action::MakeList;
  ops.apply(makeList, OpRef{1, a});
  Op wrongKind = mapSet("k", std::int64_t{7});
  wrongKind.obj = OpRef{1, a};
  ops.apply(wrongKind, OpRef{2, a});
  const Object* list = ops.findObject(OpRef{1, a});
  ASSERT_NE(list, nullptr);
  EXPECT_TRUE(list->map.empty());
  EXPECT_EQ(list->seq.visibleCount(), 0u);
}

TEST(HostileOps, ObjectsNestedPastTheLimitReadAsNull) {
  OpSet ops;
  const std::uint32_t a = ops.actors().intern(actor(0x0a));
  OpRef parent = kRoot;
  for (std::uint64_t c = 1; c <= kMaxDepth + 1; ++c) {
    Op make;
    make.obj = parent;
    make.mapKey = "m";
    make.action = Action::MakeMap;
    ops.apply(make, OpRef{c, a});
    parent = OpRef{c, a};
  }
  EXPECT_NE(ops.findObject(OpRef{kMaxDepth, a}), nullptr);
  EXPECT_EQ(ops.findObject(OpRef{kMaxDepth + 1, a}), nullptr);
  const Object* deepest = ops.findObject(OpRef{kMaxDepth, a});
  const Slot& slot = deepest->map.at("m");
  ASSERT_EQ(slot.entries.size(), 1u);
  EXPECT_FALSE(slot.entries[0].object.has_value());
  EXPECT_TRUE(std::holds_alternative<Null>(slot.entries[0].value));
}

TEST(HostileOps, LocalNestingPastTheLimitIsRefused) {
  Document doc;
  auto tx = doc.transaction();
  ObjId parent = ObjId::root();
  for (std::uint32_t depth = 1; depth <= kMaxDepth; ++depth) {
    auto made = tx.putObject(parent, "m", ObjType::Map);
    ASSERT_TRUE(made.has_value()) << "depth " << depth;
    parent = *made;
  }
  auto tooDeep = tx.putObject(parent, "m", ObjType::List);
  ASSERT_FALSE(tooDeep.has_value());
  EXPECT_EQ(tooDeep.error().code(), Errc::Overloaded);
  EXPECT_EQ(tx.pendingOps(), kMaxDepth);
}

}  // namespace
}  // namespace portcullis::detail
