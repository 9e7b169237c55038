// Helpers shared by the capnp codecs in lib/src/wire.
#pragma once

#include <capnp/common.h>
#include <capnp/message.h>
#include <kj/array.h>

#include <cstdint>
#include <cstring>
#include <string_view>

#include "portcullis/types.h"

namespace portcullis::detail {

// Capnp reads words; peer bytes may sit at any address, so unaligned input is copied.
class AlignedWords {
 public:
  explicit AlignedWords(ByteView bytes) {
    if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
      words_ = kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()),
                            bytes.size() / sizeof(capnp::word));
    } else {
      copy_ = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
      std::memcpy(copy_.begin(), bytes.data(), bytes.size());
      words_ = copy_.asPtr();
    }
  }
  kj::ArrayPtr<const capnp::word> words() const { return words_; }

 private:
  kj::Array<capnp::word> copy_;
  kj::ArrayPtr<const capnp::word> words_;
};

inline ByteView view(capnp::Data::Reader d) { return ByteView(d.begin(), d.size()); }
inline std::string_view view(capnp::Text::Reader t) { return std::string_view(t.begin(), t.size()); }

}  // namespace portcullis::detail
