// tests/providers/team/future_link.cc — link bodies of a later version of the schema
// (future_link.capnp): what this version must store as unknown (the team protocol §2.3), never
// drop.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>

#include <cstring>
#include <stdexcept>

#include "future_link.capnp.h"
#include "vector_builder.h"
#include "wire/link_codec.h"

namespace portcullis::team::vectors {
namespace {

namespace fs = ::portcullis::team::future_schema;

capnp::Data::Reader data(const std::uint8_t* p, std::size_t n) {
  return capnp::Data::Reader(p, n);
}

Bytes canonicalBytes(fs::LinkBody::Reader reader) {
  const kj::Array<capnp::word> words = capnp::canonicalize(reader);
  const auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

void setEnvelope(fs::LinkBody::Builder b, const LinkBody& envelope) {
  if (!envelope.prev.empty()) {  // an empty prev (the root's) is a null pointer (§2.1)
    auto prev = b.initPrev(static_cast<unsigned>(envelope.prev.size()));
    for (unsigned i = 0; i < envelope.prev.size(); ++i) {
      prev.set(i, data(envelope.prev[i].data(), envelope.prev[i].size()));
    }
  }
  b.setUserId(capnp::Text::Reader(envelope.userId.data(), envelope.userId.size()));
  b.setDeviceId(data(envelope.deviceId.data(), envelope.deviceId.size()));
  b.setDeviceSeq(envelope.deviceSeq);
  b.setTimestamp(envelope.timestamp);
}

}  // namespace

Bytes encodeFutureActionBody(const LinkBody& envelope, std::string_view name,
                             std::string_view payload) {
  capnp::MallocMessageBuilder message;
  auto b = message.initRoot<fs::LinkBody>();
  setEnvelope(b, envelope);
  auto action = b.getAction().initFutureAction();
  action.setName(capnp::Text::Reader(name.data(), name.size()));
  action.setPayload(capnp::Text::Reader(payload.data(), payload.size()));
  return canonicalBytes(b.asReader());
}

Bytes encodeBodyWithFutureField(const LinkBody& body, std::uint64_t value) {
  if (value == 0) throw std::invalid_argument("a later version's field must be non-zero");
  // The known fields as this version encodes them, read back through the later schema (the
  // layouts agree), then the new field set: the builder grows the struct in place.
  const Bytes known = encodeLinkBody(body);
  if (known.size() % sizeof(capnp::word) != 0) {
    throw std::logic_error("encodeLinkBody returned a partial word");
  }
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(known.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), known.data(), known.size());
  const kj::ArrayPtr<const capnp::word> segment = words.asPtr();
  capnp::SegmentArrayMessageReader reader(kj::arrayPtr(&segment, 1));
  capnp::MallocMessageBuilder message;
  message.setRoot(reader.getRoot<fs::LinkBody>());
  auto b = message.getRoot<fs::LinkBody>();
  if (std::holds_alternative<RotateKeys>(body.action)) {
    b.getAction().getRotateKeys().setFutureField(value);
  } else {
    b.setFutureField(value);
  }
  return canonicalBytes(b.asReader());
}

}  // namespace portcullis::team::vectors
