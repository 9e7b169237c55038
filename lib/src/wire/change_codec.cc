#include "wire/change_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "change.capnp.h"
#include "detail/assert.h"
#include "detail/utf8.h"
#include "wire/capnp_util.h"

namespace portcullis::detail {
namespace {

namespace schema = ::portcullis::schema;

constexpr unsigned kNestingLimit = 16;
constexpr std::uint32_t kSnapshotVersion = 2;

Error malformed(std::string what) { return Error(Errc::Malformed, "change: " + std::move(what)); }

capnp::ReaderOptions readerOptions(std::size_t words) {
  capnp::ReaderOptions options;
  // A canonical message has no shared pointers, so each pass reads each word once; the
  // canonical check, the validation and the decoding make a few passes between them.
  options.traversalLimitInWords = words * 8 + 1024;
  options.nestingLimit = kNestingLimit;
  return options;
}

std::string_view chars(ByteView b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

bool lessBytes(ByteView a, ByteView b) { return std::ranges::lexicographical_compare(a, b); }

// The op blob's head byte (change.capnp, `Change.ops`).
enum class OpCode : std::uint8_t {
  Delete, Null, False, True, Int, Float64, Str, Bytes, Counter, Increment, MakeMap, MakeList,
  MakeText,
};
constexpr std::uint8_t kCodeMask = 0x0F;
constexpr std::uint8_t kInsertFlag = 0x10;
constexpr std::uint8_t kElemKeyFlag = 0x20;
constexpr std::uint8_t kKnownBits = kCodeMask | kInsertFlag | kElemKeyFlag;
constexpr std::uint8_t kCodeCount = static_cast<std::uint8_t>(OpCode::MakeText) + 1;

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t u) {
  return static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
}

// Writes the op blob.
class OpWriter {
 public:
  // Writes into `out`, cleared first (a caller's buffer, kept to spare an allocation a change).
  explicit OpWriter(Bytes& out) : out_(out) { out_.clear(); }
  void op(const Op& op) {
    const OpCode code = codeOf(op);
    out_.push_back(static_cast<std::uint8_t>(static_cast<std::uint8_t>(code) |
                                             (op.insert ? kInsertFlag : 0) |
                                             (op.elemKey ? kElemKeyFlag : 0)));
    ref(op.obj);
    if (op.elemKey) {
      ref(op.elem);
    } else {
      blob(ByteView(reinterpret_cast<const std::uint8_t*>(op.mapKey.data()), op.mapKey.size()));
    }
    varint(op.pred.size());
    for (OpRef p : op.pred) ref(p);
    switch (code) {
      case OpCode::Int: varint(zigzag(std::get<std::int64_t>(op.value))); break;
      case OpCode::Counter: varint(zigzag(std::get<Counter>(op.value).value)); break;
      case OpCode::Increment: varint(zigzag(op.delta)); break;
      case OpCode::Float64: {
        const auto bits = std::bit_cast<std::uint64_t>(std::get<double>(op.value));
        for (int i = 0; i < 8; ++i) out_.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
        break;
      }
      case OpCode::Str: {
        const std::string& str = std::get<std::string>(op.value);
        blob(ByteView(reinterpret_cast<const std::uint8_t*>(str.data()), str.size()));
        break;
      }
      case OpCode::Bytes: blob(std::get<Bytes>(op.value)); break;
      default: break;
    }
  }
  const Bytes& bytes() const { return out_; }

 private:
  static OpCode codeOf(const Op& op) {
    switch (op.action) {
      case Action::Delete: return OpCode::Delete;
      case Action::Increment: return OpCode::Increment;
      case Action::MakeMap: return OpCode::MakeMap;
      case Action::MakeList: return OpCode::MakeList;
      case Action::MakeText: return OpCode::MakeText;
      case Action::Set: break;
    }
    return std::visit(
        [](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, Null>) return OpCode::Null;
          else if constexpr (std::is_same_v<V, bool>) return v ? OpCode::True : OpCode::False;
          else if constexpr (std::is_same_v<V, std::int64_t>) return OpCode::Int;
          else if constexpr (std::is_same_v<V, double>) return OpCode::Float64;
          else if constexpr (std::is_same_v<V, std::string>) return OpCode::Str;
          else if constexpr (std::is_same_v<V, Bytes>) return OpCode::Bytes;
          else return OpCode::Counter;
        },
        op.value);
  }
  void varint(std::uint64_t v) {
    for (; v >= 0x80; v >>= 7) out_.push_back(static_cast<std::uint8_t>(v | 0x80));
    out_.push_back(static_cast<std::uint8_t>(v));
  }
  void ref(OpRef r) {
    varint(r.counter);
    if (r.counter != 0) varint(r.actor);
  }
  void blob(ByteView b) {
    varint(b.size());
    out_.insert(out_.end(), b.begin(), b.end());
  }

  Bytes& out_;
};

// Reads and checks the op blob. `table` is the change's actor table (author first).
class OpReader {
 public:
  OpReader(ByteView ops, std::span<const ByteView> table)
      : at_(ops.data()), end_(ops.data() + ops.size()), table_(table) {}

  bool done() const { return at_ == end_; }

  // Reads the op whose own counter is `self`.
  Result<void> read(std::uint64_t self, Op& out) {
    std::uint8_t head = 0;
    if (!byte(head)) return truncated();
    const auto code = static_cast<OpCode>(head & kCodeMask);
    if ((head & ~kKnownBits) != 0 || (head & kCodeMask) >= kCodeCount) {
      return Error(Errc::Unsupported, "unknown op action or flag " + std::to_string(head));
    }
    out.insert = (head & kInsertFlag) != 0;
    out.elemKey = (head & kElemKeyFlag) != 0;
    // `out` may hold a previous op: every field is set below or reset here.
    out.elem = OpRef{};
    out.mapKey.clear();
    if (!std::holds_alternative<Null>(out.value)) out.value = Null{};
    if (auto ok = ref(self, /*allowZero=*/true, out.obj); !ok) return ok;
    if (out.elemKey) {
      if (auto ok = ref(self, /*allowZero=*/out.insert, out.elem); !ok) return ok;
    } else {
      if (out.insert) return Error(Errc::Malformed, "insert with a map key");
      ByteView key;
      if (!blob(key)) return truncated();
      if (!isValidUtf8(chars(key))) return Error(Errc::Malformed, "key is not UTF-8");
      out.mapKey.assign(chars(key));
    }
    std::uint64_t predCount = 0;
    // Each OpRef takes at least two bytes, which bounds the count before anything is reserved.
    if (!varint(predCount) || predCount > static_cast<std::uint64_t>(end_ - at_) / 2) {
      return truncated();
    }
    out.pred.resize(predCount);
    for (std::size_t i = 0; i < predCount; ++i) {
      if (auto ok = ref(self, /*allowZero=*/false, out.pred[i]); !ok) return ok;
      if (i > 0 && !lessRef(out.pred[i - 1], out.pred[i])) {
        return Error(Errc::Malformed, "pred is not strictly ascending");
      }
    }
    out.action = Action::Set;
    out.delta = 0;
    std::uint64_t number = 0;
    ByteView bytes;
    switch (code) {
      case OpCode::Delete: out.action = Action::Delete; break;
      case OpCode::Null: out.value = Null{}; break;
      case OpCode::False: out.value = false; break;
      case OpCode::True: out.value = true; break;
      case OpCode::Int:
        if (!varint(number)) return truncated();
        out.value = unzigzag(number);
        break;
      case OpCode::Counter:
        if (!varint(number)) return truncated();
        out.value = Counter{unzigzag(number)};
        break;
      case OpCode::Increment:
        if (!varint(number)) return truncated();
        out.action = Action::Increment;
        out.delta = unzigzag(number);
        break;
      case OpCode::Float64:
        if (end_ - at_ < 8) return truncated();
        for (int i = 0; i < 8; ++i) number |= std::uint64_t{*at_++} << (8 * i);
        out.value = std::bit_cast<double>(number);
        break;
      case OpCode::Str:
        if (!blob(bytes)) return truncated();
        if (!isValidUtf8(chars(bytes))) return Error(Errc::Malformed, "string is not UTF-8");
        out.value = std::string(chars(bytes));
        break;
      case OpCode::Bytes:
        if (!blob(bytes)) return truncated();
        out.value = Bytes(bytes.begin(), bytes.end());
        break;
      case OpCode::MakeMap: out.action = Action::MakeMap; break;
      case OpCode::MakeList: out.action = Action::MakeList; break;
      case OpCode::MakeText: out.action = Action::MakeText; break;
    }
    if ((out.action == Action::Delete || out.action == Action::Increment) &&
        (out.insert || predCount == 0)) {
      return Error(Errc::Malformed, "a delete or increment must name ops and cannot insert");
    }
    return {};
  }

 private:
  static Error truncated() { return Error(Errc::Malformed, "truncated or overlong op"); }

  bool byte(std::uint8_t& out) {
    if (at_ == end_) return false;
    out = *at_++;
    return true;
  }

  // Unsigned LEB128 in its shortest form, at most 64 bits.
  bool varint(std::uint64_t& out) {
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      std::uint8_t b = 0;
      if (!byte(b) || (shift == 63 && b > 1)) return false;
      v |= std::uint64_t{b & 0x7Fu} << shift;
      if ((b & 0x80) == 0) {
        if (b == 0 && shift != 0) return false;
        out = v;
        return true;
      }
    }
    return false;
  }

  bool blob(ByteView& out) {
    std::uint64_t n = 0;
    if (!varint(n) || n > static_cast<std::uint64_t>(end_ - at_)) return false;
    out = ByteView(at_, n);
    at_ += n;
    return true;
  }

  // A reference to an earlier op (counter 0 is allowed only where `allowZero`, with no actor).
  Result<void> ref(std::uint64_t self, bool allowZero, OpRef& out) {
    std::uint64_t actor = 0;
    if (!varint(out.counter)) return truncated();
    if (out.counter == 0) {
      if (!allowZero) return Error(Errc::Malformed, "bad root or head reference");
      out.actor = 0;
      return {};
    }
    if (!varint(actor)) return truncated();
    if (actor >= table_.size()) return Error(Errc::Malformed, "actor index out of range");
    if (out.counter >= self) return Error(Errc::Malformed, "reference to a later op");
    out.actor = static_cast<std::uint32_t>(actor);
    return {};
  }

  bool lessRef(OpRef a, OpRef b) const {
    if (a.counter != b.counter) return a.counter < b.counter;
    return lessBytes(table_[a.actor], table_[b.actor]);
  }

  const std::uint8_t* at_;
  const std::uint8_t* end_;
  std::span<const ByteView> table_;
};

// A few byte views kept in place: a change names few actors, and this spares an allocation per
// change for its actor table.
class ViewList {
 public:
  void push_back(ByteView v) {
    if (size_ < kInline) {
      inline_[size_] = v;
    } else {
      if (heap_.empty()) heap_.assign(inline_, inline_ + kInline);
      heap_.push_back(v);
    }
    ++size_;
  }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const ByteView> span() const {
    return size_ <= kInline ? std::span<const ByteView>(inline_, size_)
                            : std::span<const ByteView>(heap_);
  }
  const ByteView& operator[](std::size_t i) const { return span()[i]; }
  const ByteView& back() const { return span()[size_ - 1]; }
  const ByteView& front() const { return span()[0]; }

 private:
  static constexpr std::size_t kInline = 8;
  ByteView inline_[kInline];
  std::vector<ByteView> heap_;
  std::size_t size_ = 0;
};

// A Change's fields as they stand in its bytes, before any rule is checked. Views into the
// encoded bytes.
struct ChangeFields {
  std::uint64_t seq = 0;
  std::uint64_t startOp = 0;
  std::int64_t time = 0;
  ByteView actor;
  ByteView deps;
  ByteView ops;
  std::string_view message;
  ViewList otherActors;
  bool emptyFieldPresent = false;  // a pointer to an empty value (never canonical here)
};

// Validates a Change while decoding it.
class ChangeReader {
 public:
  explicit ChangeReader(const ChangeFields& change) : change_(change) {}

  // Fills `out`, whose actor the caller has already read.
  Result<void> read(ChangeData& out) {
    // Absent is the only encoding of empty (change.capnp).
    if (change_.emptyFieldPresent) return malformed("an empty field is present");
    table_.push_back(change_.actor);
    const std::uint64_t seq = change_.seq;
    const std::uint64_t startOp = change_.startOp;
    if (seq == 0 || seq > kMaxCounter) return malformed("seq out of range");
    if (startOp == 0 || startOp > kMaxCounter) return malformed("op counters out of range");
    const std::string_view message = change_.message;
    if (!isValidUtf8(message)) return malformed("message is not UTF-8");

    const ByteView deps = change_.deps;
    if (deps.size() % ChangeHash::kSize != 0) return malformed("deps are not whole hashes");
    static_assert(sizeof(ChangeHash) == ChangeHash::kSize && std::is_trivially_copyable_v<ChangeHash>,
                  "hashes are copied as bytes");
    out.deps.resize(deps.size() / ChangeHash::kSize);
    if (!deps.empty()) std::memcpy(out.deps.data(), deps.data(), deps.size());
    for (std::size_t i = 1; i < out.deps.size(); ++i) {
      if (!(out.deps[i - 1] < out.deps[i])) return malformed("deps are not strictly ascending");
    }
    const ViewList& others = change_.otherActors;
    out.otherActors.reserve(others.size());
    for (std::size_t i = 0; i < others.size(); ++i) {
      auto other = ActorId::fromBytes(others[i]);
      if (!other) return malformed("other actor: " + other.error().message());
      if (i > 0 && !lessBytes(table_.back(), others[i])) {
        return malformed("other actors are not strictly ascending");
      }
      if (std::ranges::equal(others[i], table_.front())) {
        return malformed("other actors repeat the author");
      }
      table_.push_back(others[i]);
      out.otherActors.push_back(std::move(*other));
    }
    out.seq = seq;
    out.startOp = startOp;
    out.time = change_.time;
    out.message = std::string(message);

    // Ops already in `out` (a recycled vector) are overwritten in place, keeping their storage.
    OpReader ops(change_.ops, table_.span());
    std::size_t count = 0;
    for (std::uint64_t self = startOp; !ops.done(); ++self, ++count) {
      if (self > kMaxCounter) return malformed("op counters out of range");
      Op& op = count < out.ops.size() ? out.ops[count] : out.ops.emplace_back();
      if (auto ok = ops.read(self, op); !ok) {
        return Error(ok.error().code(), "change: op " + std::to_string(self - startOp) + ": " +
                                            ok.error().message());
      }
    }
    out.ops.resize(count);
    return {};
  }

 private:
  const ChangeFields& change_;
  ViewList table_;
};

Result<void> checkFrame(ByteView bytes, std::size_t maxBytes, const char* what) {
  if (bytes.size() > maxBytes) {
    return Error(Errc::Overloaded, std::string(what) + " of " + std::to_string(bytes.size()) +
                                       " bytes exceeds the limit of " + std::to_string(maxBytes));
  }
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Error(Errc::Malformed, std::string(what) + " is not a whole number of words");
  }
  return {};
}

// The envelope of a plain change: its header, and its canonical bytes as payload and hash.
// `deps` are the change's (given apart so that a caller done with them can move them).
ChangeEnvelope envelopeOf(const ChangeData& change, std::vector<ChangeHash> deps, Bytes payload) {
  return ChangeEnvelope{
      .hash = ChangeHash::of(payload),
      .actor = change.actor,
      .seq = change.seq,
      .startOp = change.startOp,
      .opCount = change.ops.size(),
      .deps = std::move(deps),
      .payload = std::move(payload),
  };
}

// Writes a Change in Cap'n Proto's canonical form directly: one segment, the root struct with
// its data section cut after the last non-zero word and its pointer section after the last
// non-null pointer, then every object the pointers name, in pointer order (preorder). Building
// with capnp and calling canonicalize() makes the same bytes with two more passes and a copy;
// a test compares the two. Reading uses it too (readFast): bytes that equal what this writes for
// the fields read from them are canonical.
class CanonicalChangeWriter {
 public:
  explicit CanonicalChangeWriter(const ChangeFields& change) : change_(change) {
    dataWords_ = change.time != 0 ? 3 : 2;  // seq and startOp are never 0
    // Pointers: actor, deps, ops, message, otherActors; the trailing empty ones are left out.
    pointers_ = 5;
    if (change.otherActors.empty()) {
      pointers_ = 4;
      if (change.message.empty()) {
        pointers_ = 3;
        if (change.ops.empty()) pointers_ = change.deps.empty() ? 1 : 2;
      }
    }
    words_ = 1 + dataWords_ + pointers_ + blobWords(change.actor.size()) +
             blobWords(change.deps.size()) + blobWords(change.ops.size()) +
             (change.message.empty() ? 0 : blobWords(change.message.size() + 1));
    if (!change.otherActors.empty()) {
      words_ += change.otherActors.size();
      for (const ByteView& a : change.otherActors.span()) words_ += blobWords(a.size());
    }
  }

  std::size_t bytes() const { return words_ * kWord; }

  // Writes bytes() bytes at `out`, which must be zeroed.
  void write(std::uint8_t* out) {
    out_ = out;
    emit();
  }

  // Whether `bytes` are exactly what write() would write, given that the fields' views point
  // into `bytes` itself (as readFast makes them): then a blob whose pointer word matches is at
  // the place write() would copy it to, so its content matches without being compared, and
  // what is left to check is every pointer and header word and the zero padding after blobs.
  bool matches(ByteView bytes) {
    if (bytes.size() != this->bytes()) return false;
    in_ = bytes.data();
    emit();
    return matches_;
  }

 private:
  void emit() {
    put(0, structPointer(0, dataWords_, pointers_));
    put(1, change_.seq);
    put(2, change_.startOp);
    if (dataWords_ == 3) put(3, static_cast<std::uint64_t>(change_.time));
    const std::size_t firstPointer = 1 + dataWords_;
    next_ = firstPointer + pointers_;
    blob(firstPointer, change_.actor, 0);
    if (pointers_ > 1) blob(firstPointer + 1, change_.deps, 0);
    if (pointers_ > 2) blob(firstPointer + 2, change_.ops, 0);
    if (pointers_ > 3) {
      blob(firstPointer + 3,
           ByteView(reinterpret_cast<const std::uint8_t*>(change_.message.data()),
                    change_.message.size()),
           1);  // Text ends in a NUL
    }
    if (pointers_ > 4) {
      const std::size_t list = next_;
      const auto others = change_.otherActors.span();
      put(firstPointer + 4, listPointer(firstPointer + 4, list, kPointerElements, others.size()));
      next_ += others.size();
      for (std::size_t i = 0; i < others.size(); ++i) blob(list + i, others[i], 0);
    }
    PORTCULLIS_ASSERT(next_ == words_, "change layout: {} words written of {}", next_, words_);
  }

  static constexpr std::size_t kWord = sizeof(capnp::word);
  static constexpr std::uint64_t kByteElements = 2;
  static constexpr std::uint64_t kPointerElements = 6;

  static std::size_t blobWords(std::size_t bytes) { return (bytes + kWord - 1) / kWord; }
  static std::uint64_t structPointer(std::size_t offset, std::size_t data, std::size_t pointers) {
    return (static_cast<std::uint64_t>(pointers) << 48) | (static_cast<std::uint64_t>(data) << 32) |
           (static_cast<std::uint64_t>(offset) << 2);
  }
  // A list pointer at word `at` to a list starting at word `target`.
  static std::uint64_t listPointer(std::size_t at, std::size_t target, std::uint64_t elementSize,
                                   std::size_t count) {
    return (static_cast<std::uint64_t>(count) << 35) | (elementSize << 32) |
           (static_cast<std::uint64_t>(target - at - 1) << 2) | 1;
  }
  static_assert(std::endian::native == std::endian::little, "capnp words are little-endian");
  void put(std::size_t word, std::uint64_t value) {
    if (in_ == nullptr) {
      std::memcpy(out_ + word * kWord, &value, kWord);
      return;
    }
    std::uint64_t have = 0;
    std::memcpy(&have, in_ + word * kWord, kWord);
    matches_ = matches_ && have == value;
  }
  // A byte list at the next free word, named by the pointer at word `at`; `extra` zero bytes
  // follow the content (Text's NUL). An empty blob is a null pointer.
  void blob(std::size_t at, ByteView bytes, std::size_t extra) {
    if (bytes.empty()) {
      put(at, 0);  // (matches() must see a null pointer, not one to an empty list)
      return;
    }
    put(at, listPointer(at, next_, kByteElements, bytes.size() + extra));
    const std::size_t end = (next_ + blobWords(bytes.size() + extra)) * kWord;
    if (in_ == nullptr) {
      std::memcpy(out_ + next_ * kWord, bytes.data(), bytes.size());
    } else {
      // The content is in place if the pointer matched (and compared if not, which cannot
      // match then anyway); the NUL and the padding must be zero.
      matches_ = matches_ && bytes.data() == in_ + next_ * kWord;
      for (std::size_t i = next_ * kWord + bytes.size(); i < end; ++i) {
        matches_ = matches_ && in_[i] == 0;
      }
    }
    next_ = end / kWord;
  }

  const ChangeFields& change_;
  std::size_t dataWords_ = 0;
  std::size_t pointers_ = 0;
  std::size_t words_ = 0;
  std::uint8_t* out_ = nullptr;      // write(): where to
  const std::uint8_t* in_ = nullptr;  // matches(): what to compare with
  bool matches_ = true;
  std::size_t next_ = 0;
};

// Reads the fields of bytes laid out as CanonicalChangeWriter writes them, without capnp. Every
// read is bounds-checked; then the fields are written again and compared with the input, so a
// true answer means the bytes are exactly the canonical encoding of these fields (which is
// what capnp's isCanonical and getters would have found). False means "not in that layout":
// the caller reads the bytes with capnp instead, which decides and explains.
bool readFast(ByteView bytes, ChangeFields& out) {
  constexpr std::size_t kWord = sizeof(capnp::word);
  const std::size_t words = bytes.size() / kWord;
  auto word = [&](std::size_t i) {
    std::uint64_t w = 0;
    std::memcpy(&w, bytes.data() + i * kWord, kWord);
    return w;  // capnp is little-endian, and so is every target this builds for
  };
  static_assert(std::endian::native == std::endian::little, "readFast reads words natively");
  if (words < 2) return false;
  const std::uint64_t root = word(0);
  const std::size_t dataWords = (root >> 32) & 0xFFFF;
  const std::size_t pointers = root >> 48;
  if ((root & 0xFFFFFFFF) != 0 || dataWords < 2 || dataWords > 3 || pointers < 1 || pointers > 5 ||
      1 + dataWords + pointers > words) {
    return false;
  }
  out.seq = word(1);
  out.startOp = word(2);
  out.time = dataWords == 3 ? static_cast<std::int64_t>(word(3)) : 0;
  // The writer keeps two data words, which is canonical only while the second (startOp) is not
  // zero: capnp cuts trailing zero words. A zero startOp is refused anyway; capnp's reading then
  // says why (not canonical), as parseChangeWithCapnp does.
  if (dataWords == 2 && out.startOp == 0) return false;
  // A list pointer at word `at` to `count` elements of `size`, placed within the message.
  struct List {
    std::size_t start;
    std::size_t count;
  };
  auto list = [&](std::size_t at, std::uint64_t elementSize, std::size_t elementBits,
                  List& l) -> bool {
    const std::uint64_t p = word(at);
    if ((p & 3) != 1 || ((p >> 32) & 7) != elementSize || (p & 0x80000000u) != 0) return false;
    l.start = at + 1 + ((p >> 2) & 0x3FFFFFFF);
    l.count = p >> 35;
    const std::size_t listWords = (l.count * elementBits + 63) / 64;
    return l.start <= words && listWords <= words - l.start;
  };
  auto blob = [&](std::size_t at, ByteView& v) -> bool {
    if (word(at) == 0) return true;  // absent
    List l;
    if (!list(at, 2, 8, l)) return false;
    v = bytes.subspan(l.start * kWord, l.count);
    return true;
  };
  const std::size_t first = 1 + dataWords;
  if (!blob(first, out.actor)) return false;
  if (pointers > 1 && !blob(first + 1, out.deps)) return false;
  if (pointers > 2 && !blob(first + 2, out.ops)) return false;
  if (pointers > 3) {
    ByteView text;
    if (!blob(first + 3, text)) return false;
    if (!text.empty()) {
      // The NUL is checked by the comparison below; here it is only left out.
      out.message = std::string_view(reinterpret_cast<const char*>(text.data()), text.size() - 1);
    }
  }
  if (pointers > 4 && word(first + 4) != 0) {
    List l;
    if (!list(first + 4, 6, 64, l)) return false;
    for (std::size_t i = 0; i < l.count; ++i) {
      ByteView actor;
      if (!blob(l.start + i, actor)) return false;
      out.otherActors.push_back(actor);
    }
  }
  return CanonicalChangeWriter(out).matches(bytes);
}

// The fields as capnp reads them (views into the segment, which is the caller's bytes).
void readCapnp(schema::Change::Reader change, ChangeFields& out) {
  out.emptyFieldPresent = (change.hasDeps() && change.getDeps().size() == 0) ||
                          (change.hasOps() && change.getOps().size() == 0) ||
                          (change.hasMessage() && change.getMessage().size() == 0) ||
                          (change.hasOtherActors() && change.getOtherActors().size() == 0);
  out.seq = change.getSeq();
  out.startOp = change.getStartOp();
  out.time = change.getTime();
  out.actor = view(change.getActor());
  out.deps = view(change.getDeps());
  out.ops = view(change.getOps());
  out.message = view(change.getMessage());
  for (auto other : change.getOtherActors()) out.otherActors.push_back(view(other));
}

// The fields of untrusted bytes that are whole words: the canonical layout read directly, else
// capnp's reading once it has checked that the bytes are canonical.
Result<void> readFields(ByteView bytes, ChangeFields& out, bool tryFast = true) {
  if (tryFast && readFast(bytes, out)) return {};
  out = ChangeFields{};
  try {
    AlignedWords words(bytes);
    kj::ArrayPtr<const capnp::word> segment[1] = {words.words()};
    capnp::SegmentArrayMessageReader message(segment, readerOptions(segment[0].size()));
    if (!message.isCanonical()) return malformed("not canonically encoded");
    // Aligned input is read in place, so the views stay valid; readFast's layout is the only
    // canonical one for the fields this reader knows, which leaves unknown fields (a newer
    // writer) and bytes that end up rejected.
    if (words.words().begin() != reinterpret_cast<const capnp::word*>(bytes.data())) {
      return malformed("not word-aligned");
    }
    readCapnp(message.getRoot<schema::Change>(), out);
    return {};
  } catch (const kj::Exception& e) {
    return malformed(e.getDescription().cStr());
  }
}

Result<ParsedChange> parse(Bytes payload, std::size_t maxBytes, bool tryFast,
                           std::vector<Op>* recycledOps) {
  if (auto ok = checkFrame(payload, maxBytes, "change"); !ok) return ok.error();
  ChangeFields fields;
  if (auto ok = readFields(payload, fields, tryFast); !ok) return ok.error();
  auto actor = ActorId::fromBytes(fields.actor);
  if (!actor) return malformed(actor.error().message());
  ChangeData data{.actor = std::move(*actor)};
  if (recycledOps) data.ops = std::move(*recycledOps);
  if (auto ok = ChangeReader(fields).read(data); !ok) return ok.error();
  ChangeEnvelope envelope{
      .hash = ChangeHash::of(payload),
      .actor = std::move(data.actor),
      .seq = data.seq,
      .startOp = data.startOp,
      .opCount = data.ops.size(),
      .deps = std::move(data.deps),
      .payload = std::move(payload),
  };
  return ParsedChange{std::move(envelope), std::move(data)};
}

}  // namespace

Result<ParsedChange> parseChange(Bytes payload, std::size_t maxBytes,
                                 std::vector<Op>* recycledOps) {
  return parse(std::move(payload), maxBytes, true, recycledOps);
}

Result<ParsedChange> parseChangeWithCapnp(Bytes payload, std::size_t maxBytes) {
  return parse(std::move(payload), maxBytes, false, nullptr);
}

ChangeData decodeChange(const ChangeEnvelope& envelope) {
  ChangeFields fields;
  auto read = readFields(envelope.payload, fields);
  PORTCULLIS_ASSERT(read.has_value(), "a checked change no longer reads");
  ChangeData out{.actor = envelope.actor};
  auto ok = ChangeReader(fields).read(out);
  PORTCULLIS_ASSERT(ok.has_value(), "a checked change no longer decodes");
  return out;
}

namespace {

Bytes encodePayload(const ChangeData& change, Bytes& scratch) {
  OpWriter ops(scratch);
  for (const Op& op : change.ops) ops.op(op);
  ChangeFields fields;
  fields.seq = change.seq;
  fields.startOp = change.startOp;
  fields.time = change.time;
  fields.actor = change.actor.bytes();
  static_assert(sizeof(ChangeHash) == ChangeHash::kSize, "hashes are stored back to back");
  fields.deps = ByteView(reinterpret_cast<const std::uint8_t*>(change.deps.data()),
                         change.deps.size() * ChangeHash::kSize);
  fields.ops = ops.bytes();
  fields.message = change.message;
  for (const ActorId& a : change.otherActors) fields.otherActors.push_back(a.bytes());
  CanonicalChangeWriter writer(fields);
  Bytes payload(writer.bytes(), 0);
  writer.write(payload.data());
  return payload;
}

}  // namespace

ChangeEnvelope encodeChange(const ChangeData& change) {
  Bytes scratch;
  return envelopeOf(change, change.deps, encodePayload(change, scratch));
}

ChangeEnvelope encodeChange(ChangeData&& change, Bytes& scratch) {
  Bytes payload = encodePayload(change, scratch);
  const ChangeHash hash = ChangeHash::of(payload);
  ChangeEnvelope envelope{
      .hash = hash,
      .actor = std::move(change.actor),
      .seq = change.seq,
      .startOp = change.startOp,
      .opCount = change.ops.size(),
      .deps = std::move(change.deps),
      .payload = std::move(payload),
  };
  return envelope;
}

namespace {

// Writes a snapshot directly in the canonical layout: the root pointer, the Snapshot struct
// (version, pointers to the sizes and the blob), the sizes, the blob. A capnp builder would need
// the whole buffer zeroed first; this way each byte of the output is written once, in one pass
// over the payloads, and parseSnapshot checks the layout with capnp's isCanonical all the same.
class SnapshotWriter {
 public:
  // For `count` changes whose payloads add up to `blobBytes`.
  SnapshotWriter(std::size_t count, std::size_t blobBytes) : count_(count) {
    // A Cap'n Proto list (the blob is one) holds fewer than 2^29 elements.
    PORTCULLIS_REQUIRE(blobBytes < (std::size_t{1} << 29),
                       "a document of {} bytes is too large to save", blobBytes);
    const std::size_t sizeWords = (count * sizeof(std::uint32_t) + kWord - 1) / kWord;
    const std::size_t blobStart = (kHeaderWords + sizeWords) * kWord;
    total_ = blobStart + (blobBytes + kWord - 1) / kWord * kWord;
    // One allocation of the final size: the header and the sizes (zeroed: the sizes' padding),
    // then the blob appended.
    out_.reserve(total_);
    out_.resize(blobStart);
    const std::uint64_t header[kHeaderWords] = {
        (std::uint64_t{2} << 48) | (std::uint64_t{1} << 32),
        kSnapshotVersion,
        listPointer(kHeaderWords - 3, kFourByteElements, count),
        listPointer(sizeWords, kByteElements, blobBytes),
    };
    for (std::size_t i = 0; i < kHeaderWords; ++i) {
      for (std::size_t b = 0; b < kWord; ++b) {
        out_[i * kWord + b] = static_cast<std::uint8_t>(header[i] >> (8 * b));
      }
    }
    sizes_ = out_.data() + kHeaderWords * kWord;
  }

  void add(ByteView change) {
    PORTCULLIS_REQUIRE(written_ < count_ && out_.size() + change.size() <= total_,
                       "snapshot: more changes than announced");
    const auto size = static_cast<std::uint32_t>(change.size());  // below 2^29, checked above
    std::memcpy(sizes_ + written_ * sizeof size, &size, sizeof size);  // little-endian
    ++written_;
    out_.insert(out_.end(), change.begin(), change.end());
  }

  Bytes finish() && {
    PORTCULLIS_REQUIRE(written_ == count_, "snapshot: {} changes written of {}", written_, count_);
    // Plain payloads are whole words; a sealer's may not be, and the blob ends on a word.
    out_.resize(total_, 0);
    return std::move(out_);
  }

 private:
  static constexpr std::size_t kWord = sizeof(capnp::word);
  static constexpr std::size_t kHeaderWords = 4;         // root pointer, one data word, two pointers
  static constexpr std::uint64_t kFourByteElements = 4;  // list element sizes, from the encoding spec
  static constexpr std::uint64_t kByteElements = 2;
  static_assert(std::endian::native == std::endian::little, "sizes are stored natively");

  static std::uint64_t listPointer(std::size_t offset, std::uint64_t elementSize,
                                   std::size_t count) {
    return (static_cast<std::uint64_t>(count) << 35) | (elementSize << 32) |
           (static_cast<std::uint64_t>(offset) << 2) | 1;
  }

  Bytes out_;
  std::uint8_t* sizes_ = nullptr;
  std::size_t count_;
  std::size_t written_ = 0;
  std::size_t total_ = 0;
};

}  // namespace

Bytes encodeSnapshot(const std::vector<const ChangeEnvelope*>& changes) {
  std::size_t blobBytes = 0;
  for (const ChangeEnvelope* e : changes) blobBytes += e->payload.size();
  SnapshotWriter writer(changes.size(), blobBytes);
  for (const ChangeEnvelope* e : changes) writer.add(e->payload);
  return std::move(writer).finish();
}

Bytes encodeSnapshot(const ChangeGraph& graph) {
  SnapshotWriter writer(graph.size(), graph.payloadBytes());
  graph.forEachCanonicalPayload([&](ByteView payload) { writer.add(payload); });
  return std::move(writer).finish();
}

Result<std::vector<Bytes>> parseSnapshot(ByteView bytes, std::size_t maxBytes) {
  if (auto ok = checkFrame(bytes, maxBytes, "snapshot"); !ok) return ok.error();
  try {
    AlignedWords words(bytes);
    kj::ArrayPtr<const capnp::word> segment[1] = {words.words()};
    capnp::SegmentArrayMessageReader message(segment, readerOptions(segment[0].size()));
    if (!message.isCanonical()) return Error(Errc::Malformed, "snapshot: not canonical");
    auto snapshot = message.getRoot<schema::Snapshot>();
    if (snapshot.getVersion() != kSnapshotVersion) {
      return Error(Errc::Unsupported,
                   "snapshot: version " + std::to_string(snapshot.getVersion()));
    }
    const ByteView blob = view(snapshot.getChanges());
    auto sizes = snapshot.getSizes();
    std::vector<Bytes> out;
    out.reserve(sizes.size());
    std::size_t at = 0;
    for (std::uint32_t size : sizes) {
      // Any size: a sealer's payloads need not be whole words; each change is parsed anyway.
      if (size == 0 || size > blob.size() - at) {
        return Error(Errc::Malformed, "snapshot: change sizes do not split the changes");
      }
      out.emplace_back(blob.begin() + at, blob.begin() + at + size);
      at += size;
    }
    if (at != blob.size()) {
      return Error(Errc::Malformed, "snapshot: change sizes do not split the changes");
    }
    return out;
  } catch (const kj::Exception& e) {
    return Error(Errc::Malformed, std::string("snapshot: ") + e.getDescription().cStr());
  }
}

}  // namespace portcullis::detail
