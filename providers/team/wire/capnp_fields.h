// providers/team/wire/capnp_fields.h — what the team provider's decoders of peer bytes share:
// reading bytes as one aligned segment with tight limits, and the field checks every decoder
// applies (exact sizes, null versus empty, list kinds and bounds, ascending hash lists, words of
// a later version). Internal to wire/: the only code of the provider that touches Cap'n Proto.
#pragma once

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <kj/array.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "link.h"
#include "portcullis/types.h"

namespace portcullis::team::wirecheck {

inline constexpr unsigned kNestingLimit = 16;
inline constexpr std::size_t kMaxUserIdBytes = 64;
inline constexpr std::uint64_t kMaxDeviceSeq = 0xFFFF'FFFFu;

inline std::string_view view(capnp::Text::Reader t) { return std::string_view(t.begin(), t.size()); }

inline Bytes toBytes(const kj::Array<capnp::word>& words) {
  const auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

// Peer bytes as one aligned segment (capnp reads words; the bytes may sit at any address). The
// caller has checked that the size is whole words.
inline kj::Array<capnp::word> alignedWords(ByteView bytes) {
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  return words;
}

// A message that need not be canonical may point many times at the same words; the traversal
// limit caps what that amplification can cost at a few passes over the segment.
inline capnp::ReaderOptions readerOptions(std::size_t words) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words * 8 + 1024;
  options.nestingLimit = kNestingLimit;
  return options;
}

// Field checks that record the first failure as "field: rule". Reader calls may throw
// kj::Exception on a pointer of the wrong kind; the decoders turn that into Malformed.
class FieldChecker {
 public:
  const std::string& failure() const noexcept { return failure_; }

  bool fail(std::string_view field, std::string_view rule) {
    failure_ = std::string(field) + ": " + std::string(rule);
    return false;
  }

  // Required Data of exactly N bytes (null and empty both fail).
  template <std::size_t N>
  bool fixed(bool has, capnp::Data::Reader d, std::array<std::uint8_t, N>& out,
             std::string_view field) {
    if (!has) return fail(field, "missing");
    if (d.size() == 0) return fail(field, "empty");
    if (d.size() != N) return fail(field, "wrong size");
    std::memcpy(out.data(), d.begin(), N);
    return true;
  }

  // Optional Data: null, or exactly N bytes.
  template <std::size_t N>
  bool optionalFixed(bool has, capnp::Data::Reader d,
                     std::optional<std::array<std::uint8_t, N>>& out, std::string_view field) {
    if (!has) {
      out.reset();
      return true;
    }
    std::array<std::uint8_t, N> value{};
    if (!fixed(true, d, value, field)) return false;
    out = value;
    return true;
  }

  // A non-null list: 1..max elements of the schema's element size (an empty list is not null).
  template <typename L>
  bool list(L l, std::size_t max, capnp::ElementSize size, std::string_view field) {
    if (capnp::AnyList::Reader(l).getElementSize() != size) {
      return fail(field, "list of the wrong kind");
    }
    if (l.size() == 0) return fail(field, "empty list");
    if (l.size() > max) return fail(field, "too many entries");
    return true;
  }

  // A required (or, with `optional`, nullable) list of 32-byte hashes, strictly ascending.
  bool hashes(bool has, capnp::List<capnp::Data>::Reader l, std::size_t max,
              std::vector<Hash>& out, std::string_view field, bool optional = false) {
    out.clear();
    if (!has) return optional ? true : fail(field, "missing");
    if (!list(l, max, capnp::ElementSize::POINTER, field)) return false;
    out.resize(l.size());
    for (unsigned i = 0; i < l.size(); ++i) {
      if (!fixed(true, l[i], out[i], field)) return false;
      if (i > 0 && !(out[i - 1] < out[i])) return fail(field, "not strictly ascending");
    }
    return true;
  }

  // Words beyond this schema's in a struct mean fields of a later version. Canonical form drops
  // trailing zero words, so a smaller section is fine.
  template <typename T>
  static bool wider(typename T::Reader r) {
    const auto node = capnp::Schema::from<T>().getProto().getStruct();
    const capnp::AnyStruct::Reader any(r);
    return any.getDataSection().size() > node.getDataWordCount() * sizeof(capnp::word) ||
           any.getPointerSection().size() > node.getPointerCount();
  }

 private:
  std::string failure_;
};

}  // namespace portcullis::team::wirecheck
