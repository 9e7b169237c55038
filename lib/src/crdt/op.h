// The decoded form of a change and its ops, shared by the wire codec (lib/src/wire) and the CRDT
// state (lib/src/crdt). No capnp here: only the codec touches capnp.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "portcullis/document.h"
#include "portcullis/types.h"

namespace portcullis::detail {

// An op's identity (counter, actor). Counter 0 names the root object or a list's head.
// What `actor` indexes depends on the holder: a change's own actor table (0 = the change's
// author) in `ChangeData`, the document's actor table in `OpSet`.
struct OpRef {
  std::uint64_t counter = 0;
  std::uint32_t actor = 0;
  friend bool operator==(OpRef, OpRef) = default;
};

enum class Action : std::uint8_t {
  Delete,
  Set,        // a scalar value
  Increment,  // adds `delta` to every counter in `pred`
  MakeMap,
  MakeList,
  MakeText,
};

struct Op {
  OpRef obj;
  bool elemKey = false;  // key is `elem`, else `mapKey`
  std::string mapKey;
  OpRef elem;
  bool insert = false;
  std::vector<OpRef> pred;
  Action action = Action::Delete;
  ScalarValue value;       // for Set
  std::int64_t delta = 0;  // for Increment
};

inline bool isMake(Action a) {
  return a == Action::MakeMap || a == Action::MakeList || a == Action::MakeText;
}
inline ObjType madeType(Action a) {
  return a == Action::MakeMap ? ObjType::Map : a == Action::MakeList ? ObjType::List : ObjType::Text;
}

// One change, decoded. Actor indexes in ops are change-local: 0 is `actor`, i is
// otherActors[i - 1].
struct ChangeData {
  ActorId actor;
  std::uint64_t seq = 0;
  std::uint64_t startOp = 0;
  std::int64_t time = 0;
  std::string message{};
  std::vector<ChangeHash> deps{};
  std::vector<ActorId> otherActors{};
  std::vector<Op> ops{};
};

}  // namespace portcullis::detail

template <>
struct std::hash<portcullis::detail::OpRef> {
  std::size_t operator()(portcullis::detail::OpRef r) const noexcept {
    return std::hash<std::uint64_t>{}(r.counter * 0x9E3779B97F4A7C15ull ^ r.actor);
  }
};
