#include "wire/sync_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>
#include <memory>
#include <bit>
#include <cstring>

#include "detail/assert.h"
#include "sync.capnp.h"
#include "wire/capnp_util.h"

namespace portcullis::detail {
namespace {

namespace schema = ::portcullis::schema;

constexpr unsigned kNestingLimit = 8;

Error malformed(std::string what) { return Error(Errc::Malformed, "sync frame: " + std::move(what)); }

// --- encoding ----------------------------------------------------------------------------------

template <typename SetFn>
void setHashList(std::span<const ChangeHash> hashes, SetFn set) {
  if (hashes.empty()) return;
  PORTCULLIS_REQUIRE(std::adjacent_find(hashes.begin(), hashes.end(),
                                        [](const ChangeHash& a, const ChangeHash& b) {
                                          return !(a < b);
                                        }) == hashes.end(),
                     "hash lists strictly ascend");
  Bytes blob;
  blob.reserve(hashes.size() * ChangeHash::kSize);
  for (const ChangeHash& h : hashes) blob.insert(blob.end(), h.bytes().begin(), h.bytes().end());
  set(capnp::Data::Reader(blob.data(), blob.size()));
}

capnp::Data::Reader dataOf(ByteView b) { return capnp::Data::Reader(b.data(), b.size()); }

void writeSync(schema::Sync::Builder out, const SyncMsg& m) {
  out.setDocId(dataOf(m.doc.bytes()));
  setHashList(m.heads, [&](auto d) { out.setHeads(d); });
  setHashList(m.need, [&](auto d) { out.setNeed(d); });
  setHashList(m.have, [&](auto d) { out.setHave(d); });
  setHashList(m.storedHeads, [&](auto d) { out.setStoredHeads(d); });
  if (!m.changes.empty()) {
    auto list = out.initChanges(static_cast<unsigned>(m.changes.size()));
    for (unsigned i = 0; i < m.changes.size(); ++i) list.set(i, dataOf(m.changes[i]));
  }
  out.setRequestId(m.requestId);
  out.setHops(m.hops);
}

struct Encoder {
  schema::Envelope::Builder out;
  void operator()(const HelloMsg& m) {
    auto h = out.initHello();
    h.setProtocolVersion(m.protocolVersion);
    h.setPeerId(m.peerId.str());
    h.setStorageId(dataOf(m.storageId));
    h.setIsEphemeral(m.isEphemeral);
  }
  void operator()(const SyncMsg& m) {
    writeSync(m.isRequest ? out.initRequest() : out.initSync(), m);
  }
  void operator()(const UnavailableMsg& m) {
    auto u = out.initUnavailable();
    u.setDocId(dataOf(m.doc.bytes()));
    u.setRequestId(m.requestId);
  }
  void operator()(const EphemeralMsg& m) {
    auto e = out.initEphemeral();
    e.setDocId(dataOf(m.doc.bytes()));
    e.setSenderId(m.sender.str());
    e.setData(dataOf(m.data));
  }
  void operator()(const ProviderMsg& m) { out.setProvider(dataOf(m.data)); }
  void operator()(const LeaveMsg&) { out.setLeave(); }
  void operator()(const RefusedMsg& m) {
    PORTCULLIS_REQUIRE(m.changes.size() <= kMaxRefusedHashes && m.changes.size() <= m.count,
                       "a refusal lists at most {} hashes, and no more than it counts",
                       kMaxRefusedHashes);
    auto r = out.initRefused();
    r.setDocId(dataOf(m.doc.bytes()));
    setHashList(m.changes, [&](auto d) { r.setChanges(d); });
    r.setCount(m.count);
  }
  void operator()(const UnknownMsg&) { PORTCULLIS_REQUIRE(false, "UnknownMsg is never sent"); }
};

// --- decoding ----------------------------------------------------------------------------------

Result<std::vector<ChangeHash>> readHashList(capnp::Data::Reader d, const char* field) {
  if (d.size() % ChangeHash::kSize != 0) {
    return malformed(std::string(field) + " is not a whole number of hashes");
  }
  std::vector<ChangeHash> out;
  out.reserve(d.size() / ChangeHash::kSize);
  for (std::size_t off = 0; off < d.size(); off += ChangeHash::kSize) {
    out.push_back(*ChangeHash::fromBytes(ByteView(d.begin() + off, ChangeHash::kSize)));
    if (out.size() > 1 && !(out[out.size() - 2] < out.back())) {
      return malformed(std::string(field) + " is not strictly ascending");
    }
  }
  return out;
}

Result<DocumentId> readDocId(capnp::Data::Reader d) {
  auto id = DocumentId::fromBytes(view(d));
  if (!id) return malformed("document ID: " + id.error().message());
  return *id;
}

Result<PeerId> readPeerId(capnp::Text::Reader t) {
  auto id = PeerId::parse(view(t));
  if (!id) return malformed("peer ID: " + id.error().message());
  return *id;
}

Result<SyncMessage> decodeSync(schema::Sync::Reader in, bool isRequest) {
  auto doc = readDocId(in.getDocId());
  if (!doc) return std::move(doc).error();
  auto heads = readHashList(in.getHeads(), "heads");
  if (!heads) return std::move(heads).error();
  auto need = readHashList(in.getNeed(), "need");
  if (!need) return std::move(need).error();
  auto have = readHashList(in.getHave(), "have");
  if (!have) return std::move(have).error();
  auto stored = readHashList(in.getStoredHeads(), "storedHeads");
  if (!stored) return std::move(stored).error();
  if (in.getHops() > kMaxHops) return malformed("hop count over the limit");
  SyncMsg m{.doc = *doc,
            .heads = std::move(*heads),
            .need = std::move(*need),
            .have = std::move(*have),
            .changes = {},
            .storedHeads = std::move(*stored),
            .requestId = in.getRequestId(),
            .hops = in.getHops(),
            .isRequest = isRequest};
  auto changes = in.getChanges();
  m.changes.reserve(changes.size());
  for (auto c : changes) {
    if (c.size() == 0) return malformed("an empty change");
    m.changes.emplace_back(c.begin(), c.end());
  }
  return SyncMessage(std::move(m));
}

Result<SyncMessage> decodeEnvelope(schema::Envelope::Reader in) {
  switch (in.which()) {
    case schema::Envelope::HELLO: {
      auto h = in.getHello();
      auto peer = readPeerId(h.getPeerId());
      if (!peer) return std::move(peer).error();
      auto storage = h.getStorageId();
      if (storage.size() != 0 && storage.size() != 16) return malformed("storage ID size");
      return SyncMessage(HelloMsg{.protocolVersion = h.getProtocolVersion(),
                                  .peerId = *peer,
                                  .storageId = Bytes(storage.begin(), storage.end()),
                                  .isEphemeral = h.getIsEphemeral()});
    }
    case schema::Envelope::SYNC: return decodeSync(in.getSync(), false);
    case schema::Envelope::REQUEST: return decodeSync(in.getRequest(), true);
    case schema::Envelope::UNAVAILABLE: {
      auto u = in.getUnavailable();
      auto doc = readDocId(u.getDocId());
      if (!doc) return std::move(doc).error();
      return SyncMessage(UnavailableMsg{.doc = *doc, .requestId = u.getRequestId()});
    }
    case schema::Envelope::EPHEMERAL: {
      auto e = in.getEphemeral();
      auto doc = readDocId(e.getDocId());
      if (!doc) return std::move(doc).error();
      auto sender = readPeerId(e.getSenderId());
      if (!sender) return std::move(sender).error();
      auto data = e.getData();
      return SyncMessage(EphemeralMsg{.doc = *doc, .sender = *sender,
                                      .data = Bytes(data.begin(), data.end())});
    }
    case schema::Envelope::PROVIDER: {
      auto data = in.getProvider();
      return SyncMessage(ProviderMsg{.data = Bytes(data.begin(), data.end())});
    }
    case schema::Envelope::LEAVE: return SyncMessage(LeaveMsg{});
    case schema::Envelope::REFUSED: {
      auto r = in.getRefused();
      auto doc = readDocId(r.getDocId());
      if (!doc) return std::move(doc).error();
      // Checked on the blob's size, before a hash is copied out of it.
      if (r.getChanges().size() > kMaxRefusedHashes * ChangeHash::kSize) {
        return malformed("refused lists more than " + std::to_string(kMaxRefusedHashes) +
                         " hashes");
      }
      auto changes = readHashList(r.getChanges(), "refused changes");
      if (!changes) return std::move(changes).error();
      if (r.getCount() < changes->size()) return malformed("refused counts fewer than it lists");
      return SyncMessage(RefusedMsg{.doc = *doc, .changes = std::move(*changes),
                                    .count = r.getCount()});
    }
  }
  return SyncMessage(UnknownMsg{});
}

}  // namespace

namespace {

// A builder whose first segment is the caller's zeroed buffer (MallocMessageBuilder would zero
// it again when destroyed), and any further segment its own.
class FrameBuilder final : public capnp::MessageBuilder {
 public:
  explicit FrameBuilder(kj::ArrayPtr<capnp::word> first) : first_(first) {}
  kj::ArrayPtr<capnp::word> allocateSegment(unsigned minimumSize) override {
    if (!usedFirst_ && minimumSize <= first_.size()) {
      usedFirst_ = true;
      return first_;
    }
    const std::size_t size = std::max<std::size_t>(minimumSize, 1024);
    more_.push_back(std::make_unique<capnp::word[]>(size));  // zeroed, as capnp requires
    return kj::arrayPtr(more_.back().get(), size);
  }

 private:
  kj::ArrayPtr<capnp::word> first_;
  bool usedFirst_ = false;
  std::vector<std::unique_ptr<capnp::word[]>> more_;
};

Bytes flatten(capnp::MessageBuilder& builder) {
  auto segments = builder.getSegmentsForOutput();
  Bytes out(capnp::computeSerializedSizeInWords(segments) * sizeof(capnp::word));
  kj::ArrayOutputStream stream(kj::arrayPtr(out.data(), out.size()));
  capnp::writeMessage(stream, segments);
  return out;
}

}  // namespace

Bytes encodeMessage(const SyncMessage& message) {
  // Requests, hellos and the like fit in a first segment on the stack: MallocMessageBuilder
  // would allocate and zero 8 KiB for each.
  capnp::word first[128] = {};
  FrameBuilder builder(kj::arrayPtr(first, std::size(first)));
  std::visit(Encoder{builder.initRoot<schema::Envelope>()}, message);
  return flatten(builder);
}

Bytes encodeSync(const SyncMsg& sync, std::span<const ChangeEnvelope* const> changes) {
  PORTCULLIS_REQUIRE(sync.changes.empty() && !sync.isRequest, "changes come from the span");
  constexpr std::size_t kWord = sizeof(capnp::word);
  // Everything but the changes fits in this many words, and every hash list adds its own.
  std::size_t words = 64;
  for (const auto* list : {&sync.heads, &sync.need, &sync.have, &sync.storedHeads}) {
    words += list->size() * ChangeHash::kSize / kWord;
  }
  for (const ChangeEnvelope* e : changes) words += encodedChangeSize(e->payload.size()) / kWord;
  words = std::min<std::size_t>(words, 1u << 28);
  // The message is built straight into the frame: one word for the segment table, then the
  // first segment, large enough for everything (zeroed, as capnp requires), so the payloads are
  // copied once and the frame needs no second buffer.
  Bytes frame((1 + words) * kWord);
  const kj::ArrayPtr<capnp::word> first(reinterpret_cast<capnp::word*>(frame.data() + kWord), words);
  FrameBuilder builder(first);
  auto out = builder.initRoot<schema::Envelope>().initSync();
  writeSync(out, sync);
  auto list = out.initChanges(static_cast<unsigned>(changes.size()));
  for (unsigned i = 0; i < changes.size(); ++i) list.set(i, dataOf(changes[i]->payload));
  auto segments = builder.getSegmentsForOutput();
  if (segments.size() != 1 || segments[0].begin() != first.begin()) return flatten(builder);
  // The segment table of a one-segment message: segment count - 1, then its size in words.
  const auto used = static_cast<std::uint32_t>(segments[0].size());
  const std::uint32_t table[2] = {0, used};
  static_assert(std::endian::native == std::endian::little, "capnp's table is little-endian");
  std::memcpy(frame.data(), table, sizeof table);
  frame.resize((1 + used) * kWord);
  return frame;
}

Result<SyncMessage> decodeMessage(ByteView frame) {
  if (frame.size() % sizeof(capnp::word) != 0) return malformed("not a whole number of words");
  try {
    AlignedWords words(frame);
    capnp::ReaderOptions options;
    // One pass over a message without shared pointers reads each word once; leave room for
    // the few reads of the header and pointers.
    options.traversalLimitInWords = frame.size() / sizeof(capnp::word) * 2 + 64;
    options.nestingLimit = kNestingLimit;
    capnp::FlatArrayMessageReader reader(words.words(), options);
    if (reader.getEnd() != words.words().end()) return malformed("trailing bytes");
    return decodeEnvelope(reader.getRoot<schema::Envelope>());
  } catch (const kj::Exception& e) {
    return malformed(e.getDescription().cStr());
  }
}

std::size_t encodedChangeSize(std::size_t payloadBytes) {
  // A list element pointer plus the data rounded up to whole words.
  return sizeof(capnp::word) + (payloadBytes + 7) / 8 * 8;
}

}  // namespace portcullis::detail
