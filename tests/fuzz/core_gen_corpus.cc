// Writes the seed corpora of the core library's fuzz targets from real encodings:
//
//   OUT/change_codec/seed-*    every change of a document that uses every op (each action, list
//                              and text inserts, element keys, other actors, deps, a message,
//                              time 0) and of apply_batch's base document
//   OUT/sync_codec/seed-*      every sync envelope member as the Repo encodes it, with real
//                              changes and hashes
//   OUT/snapshot/seed-*        save() of an empty document, of one with one change, of those two
//                              documents and of a merged one
//   OUT/apply_batch/seed-*     batches of real changes made on top of apply_batch's base document
//                              (new and existing authors, chains in and out of order, concurrent
//                              changes and a merge, an equivocation, duplicates, a missing dep),
//                              as built records and as raw ones, with and without tight limits;
//                              and built records with a wrong seq or startOp
//   OUT/shs_server/seed-*, OUT/shs_client/seed-*   every mode of the fuzzed peer (honest, the
//                              other identities, refused, fuzzed keys and signatures, raw and
//                              short messages, wrong box keys, another network key, low-order
//                              keys), followed by box-stream records
//   OUT/box_stream/seed-*      box-stream records: frames around every size boundary, lengths
//                              over the limits and that fit one packet, goodbyes between and
//                              inside frames, junk, tampered, truncated and body-less packets
//   OUT/framed_channel/seed-*  wires a framed channel sends, under each limit and read cut
//   OUT/deny_list/seed-*       shared-key configs: deny entries in both key forms, bad entries,
//                              unknown keys, wrong types, syntax errors
//   OUT/config/seed-*          deployment configs from the docs (serve with each provider) and
//                              TOML's other forms (arrays of tables, inline tables, dotted keys,
//                              dates, multi-line strings), and syntax errors
//   OUT/fs_storage/seed-*      the data folder a Repo with fs storage left (incremental chunks, a
//                              compaction's snapshot), whole, truncated, with a temp file, a
//                              symlinked folder and an own chunk, and with small chunks
//
// Deterministic: libsodium's randombytes is replaced (DeterministicRandom), actors and times are
// fixed. Existing seed-* files are replaced; other files (regression inputs) are left alone.
//
// Usage: core_fuzz_gen_corpus OUT_DIR
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apply_batch_input.h"
#include "core_fuzz_support.h"
#include "fs_storage.h"
#include "fs_storage_input.h"
#include "portcullis/repo.h"
#include "wire/sync_codec.h"

namespace {

namespace fs = std::filesystem;
using namespace portcullis;
using namespace portcullis::fuzz;

using Seeds = std::vector<std::pair<std::string, Bytes>>;

void writeSeeds(const fs::path& dir, const Seeds& seeds) {
  fs::create_directories(dir);
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with("seed-")) fs::remove(entry.path());
  }
  std::size_t total = 0;
  for (const auto& [name, bytes] : seeds) {
    std::ofstream out(dir / ("seed-" + name), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
      std::exit(1);
    }
    total += bytes.size();
  }
  std::printf("%-16s %3zu seeds, %zu bytes\n", dir.filename().c_str(), seeds.size(), total);
}

CommitOptions at(std::int64_t time, std::string message = {}) {
  return CommitOptions{.message = std::move(message), .time = time, .allowEmpty = false};
}

DocumentOptions actorOptions(std::uint8_t fill, std::size_t size = 16) {
  DocumentOptions o;
  o.actor = *ActorId::fromBytes(Bytes(size, fill));
  return o;
}

// --- documents -----------------------------------------------------------------------------------

// A document whose changes use every op of change.capnp.
Document everyOpDocument() {
  Document a(actorOptions(0xA1));
  ObjId list = ObjId::root(), text = ObjId::root(), map = ObjId::root();
  {
    Transaction tx = a.transaction();
    (void)tx.put(ObjId::root(), "null", Null{});
    (void)tx.put(ObjId::root(), "false", false);
    (void)tx.put(ObjId::root(), "true", true);
    (void)tx.put(ObjId::root(), "int", std::int64_t{-1234567890123});
    (void)tx.put(ObjId::root(), "float", 3.25);
    (void)tx.put(ObjId::root(), "str", std::string("ünïcödé"));
    (void)tx.put(ObjId::root(), "bytes", Bytes{0, 0xFF, 7});
    (void)tx.put(ObjId::root(), "counter", Counter{10});
    map = *tx.putObject(ObjId::root(), "map", ObjType::Map);
    list = *tx.putObject(ObjId::root(), "list", ObjType::List);
    text = *tx.putObject(ObjId::root(), "text", ObjType::Text);
    tx.commit(at(0));  // time 0: the field is absent
  }
  {
    Transaction tx = a.transaction();
    (void)tx.increment(ObjId::root(), "counter", -3);
    (void)tx.insert(list, 0, std::int64_t{1});
    (void)tx.insert(list, 1, std::string("two"));
    (void)tx.insertObject(list, 2, ObjType::Map);
    (void)tx.splice(text, 0, 0, "héllo");
    (void)tx.put(map, "nested", 1.0 / 3);
    (void)tx.remove(ObjId::root(), "null");
    tx.commit(at(1'700'000'000, "every op"));
  }
  Document b = a.fork(*ActorId::fromBytes(Bytes(32, 0xB2)));
  {
    Transaction tx = b.transaction();
    (void)tx.set(list, 0, std::int64_t{100});  // pred names a's op: another actor in the table
    (void)tx.remove(list, 1);
    (void)tx.splice(text, 1, 2, "EL");
    (void)tx.increment(ObjId::root(), "counter", 7);
    tx.commit(at(1'700'000'001));
  }
  {
    Transaction tx = a.transaction();
    (void)tx.put(ObjId::root(), "str", std::string("concurrent"));
    tx.commit(at(1'700'000'002));
  }
  (void)a.merge(b);
  {
    Transaction tx = a.transaction();
    (void)tx.put(ObjId::root(), "after-merge", std::string(300, 'x'));  // two deps
    (void)tx.setObject(list, 0, ObjType::Text);
    tx.commit(at(1'700'000'003));
  }
  return a;
}

std::vector<Bytes> changesOf(const Document& d) { return d.getChangesSince({}); }

Seeds changeCodecSeeds() {
  Seeds seeds;
  const Document every = everyOpDocument();
  std::size_t i = 0;
  for (const Bytes& c : changesOf(every)) seeds.emplace_back("every-op-" + std::to_string(i++), c);
  i = 0;
  for (const Bytes& c : changesOf(batch::baseDocument())) {
    seeds.emplace_back("base-" + std::to_string(i++), c);
  }
  return seeds;
}

// Every envelope member as the Repo encodes it, with real changes and hashes.
Seeds syncCodecSeeds() {
  using namespace portcullis::detail;
  Seeds seeds;
  const Document every = everyOpDocument();
  const std::vector<Bytes> changes = changesOf(every);
  std::vector<ChangeHash> hashes;
  for (const Bytes& c : changes) hashes.push_back(ChangeHash::of(c));
  std::sort(hashes.begin(), hashes.end());
  const DocumentId doc = *DocumentId::fromBytes(Bytes(DocumentId::kSize, 0x5D));
  const PeerId peer = *PeerId::parse("5e6f0a0b0c0d0e0f");
  seeds.emplace_back("hello", encodeMessage(HelloMsg{.peerId = peer, .storageId = {}}));
  seeds.emplace_back("hello-storage", encodeMessage(HelloMsg{.peerId = peer,
                                                             .storageId = Bytes(16, 0x51),
                                                             .isEphemeral = true}));
  SyncMsg sync{.doc = doc, .heads = every.getHeads(), .need = {hashes.front()},
               .have = {hashes.back()}, .changes = changes, .storedHeads = every.getHeads(),
               .requestId = 0, .hops = 2};
  seeds.emplace_back("sync", encodeMessage(sync));
  SyncMsg request{.doc = doc, .heads = {}, .need = {}, .have = {}, .changes = {},
                  .storedHeads = {}, .requestId = 7, .hops = 1, .isRequest = true};
  seeds.emplace_back("request", encodeMessage(request));
  seeds.emplace_back("unavailable", encodeMessage(UnavailableMsg{.doc = doc, .requestId = 7}));
  seeds.emplace_back("ephemeral",
                     encodeMessage(EphemeralMsg{.doc = doc, .sender = peer, .data = Bytes(40, 0xE7)}));
  seeds.emplace_back("provider", encodeMessage(ProviderMsg{.data = Bytes(24, 0x9A)}));
  seeds.emplace_back("leave", encodeMessage(LeaveMsg{}));
  seeds.emplace_back("refused", encodeMessage(RefusedMsg{.doc = doc, .changes = hashes,
                                                         .count = static_cast<std::uint32_t>(
                                                             hashes.size() + 3)}));
  return seeds;
}

Seeds snapshotSeeds() {
  Seeds seeds;
  seeds.emplace_back("empty", Document(actorOptions(1)).save());
  Document one(actorOptions(2));
  {
    Transaction tx = one.transaction();
    (void)tx.put(ObjId::root(), "k", std::int64_t{1});
    tx.commit(at(5));
  }
  seeds.emplace_back("one-change", one.save());
  seeds.emplace_back("every-op", everyOpDocument().save());
  seeds.emplace_back("base", batch::baseDocument().save());
  Document text(actorOptions(3));
  {
    Transaction tx = text.transaction();
    const ObjId t = *tx.putObject(ObjId::root(), "t", ObjType::Text);
    (void)tx.splice(t, 0, 0, "the quick brown fox jumps over the lazy dog");
    tx.commit(at(6));
  }
  for (int n = 0; n < 3; ++n) {
    Transaction tx = text.transaction();
    (void)tx.put(ObjId::root(), "n", std::int64_t{n});
    tx.commit(at(7 + n));
  }
  seeds.emplace_back("text-history", text.save());
  return seeds;
}

// --- apply_batch ---------------------------------------------------------------------------------

// Records for `changes` offered in this order: built where a built record gives exactly the
// change, else raw (or raw throughout).
Bytes batchInput(const std::vector<Bytes>& changes, bool tight, bool raw) {
  const Document base = batch::baseDocument();
  batch::BatchState state(base);
  Bytes out{static_cast<std::uint8_t>(tight ? batch::kTightLimits : 0)};
  for (const Bytes& c : changes) {
    std::optional<Bytes> built = raw ? std::nullopt : batch::builtRecordOf(c, state);
    if (built) {
      putBytes(out, *built);
    } else {
      batch::putRaw(out, c);
    }
    state.note(c);
  }
  return out;
}

// The changes `doc` made after `before` changes.
std::vector<Bytes> newChanges(const Document& doc, std::size_t before) {
  std::vector<Bytes> out;
  for (const ChangeEnvelope* e : doc.graph().changesAfter(before)) out.push_back(e->payload);
  return out;
}

Seeds applyBatchSeeds() {
  Seeds seeds;
  const Document base = batch::baseDocument();
  const std::size_t n = base.graph().size();
  const ObjId list = std::get<ObjectRef>(*base.get(ObjId::root(), "list")).id;
  const ObjId text = std::get<ObjectRef>(*base.get(ObjId::root(), "text")).id;

  // A new author's chain of three.
  Document c = base.fork(batch::testActor(2));
  {
    Transaction tx = c.transaction();
    (void)tx.put(ObjId::root(), "title", std::string("c"));
    (void)tx.insert(list, 0, std::string("first"));
    tx.commit(at(batch::kBuiltTime, "c1"));
  }
  {
    Transaction tx = c.transaction();
    (void)tx.splice(text, 0, 3, "HE");
    (void)tx.increment(ObjId::root(), "n", 40);
    const ObjId m = *tx.putObject(ObjId::root(), "fresh", ObjType::Map);
    (void)tx.put(m, "deep", Bytes{9, 9});
    tx.commit(at(batch::kBuiltTime));
  }
  {
    Transaction tx = c.transaction();
    (void)tx.remove(list, 1);
    (void)tx.set(list, 0, 1.5);
    (void)tx.remove(ObjId::root(), "bytes");
    tx.commit(at(batch::kBuiltTime));
  }
  const std::vector<Bytes> chain = newChanges(c, n);
  seeds.emplace_back("chain-built", batchInput(chain, false, false));
  seeds.emplace_back("chain-raw", batchInput(chain, false, true));
  seeds.emplace_back("chain-reversed", batchInput({chain[2], chain[1], chain[0]}, false, false));
  seeds.emplace_back("chain-reversed-tight",
                     batchInput({chain[2], chain[1], chain[0]}, true, false));
  seeds.emplace_back("missing-dep", batchInput({chain[1]}, false, false));

  // The base's own author goes on; concurrent with another author; a third merges both.
  Document a = base.fork(batch::testActor(0));
  {
    Transaction tx = a.transaction();
    (void)tx.put(ObjId::root(), "title", std::string("a again"));
    (void)tx.splice(text, 2, 1, "");
    tx.commit(at(batch::kBuiltTime));
  }
  Document b = base.fork(batch::testActor(1));
  {
    Transaction tx = b.transaction();
    (void)tx.put(ObjId::root(), "title", std::string("b again"));
    (void)tx.insertObject(list, 0, ObjType::List);
    tx.commit(at(batch::kBuiltTime));
  }
  Document d = base.fork(batch::testActor(3));
  (void)d.merge(a);
  (void)d.merge(b);
  {
    Transaction tx = d.transaction();
    (void)tx.put(ObjId::root(), "title", std::string("merged by d"));
    tx.commit(at(batch::kBuiltTime));
  }
  std::vector<Bytes> merged = newChanges(a, n);
  for (const Bytes& x : newChanges(b, n)) merged.push_back(x);
  merged.push_back(newChanges(d, n + 2).back());
  seeds.emplace_back("concurrent-merge", batchInput(merged, false, false));
  seeds.emplace_back("merge-first-tight",
                     batchInput({merged[2], merged[0], merged[1]}, true, false));

  // An equivocation: a second, different first change by c's author.
  Document c2 = base.fork(batch::testActor(2));
  {
    Transaction tx = c2.transaction();
    (void)tx.put(ObjId::root(), "title", std::string("c, the other story"));
    tx.commit(at(batch::kBuiltTime));
  }
  seeds.emplace_back("equivocation",
                     batchInput({chain[0], newChanges(c2, n)[0], chain[1]}, false, false));

  // Duplicates: a base change again, and a record repeated.
  {
    Bytes in = batchInput({changesOf(base).front(), chain[0]}, false, false);
    in.push_back(batch::kRepeat);
    in.push_back(1);
    seeds.emplace_back("duplicates", in);
  }
  // Built records with a wrong seq and a wrong startOp.
  {
    batch::BatchState state(base);
    auto built = batch::builtRecordOf(chain[0], state);
    if (built) {
      Bytes seq = {0};
      putBytes(seq, *built);
      seq[3] = 1;  // seq delta
      seeds.emplace_back("wrong-seq", seq);
      Bytes op = {0};
      putBytes(op, *built);
      op[4] = 0xFF;  // startOp delta -1
      seeds.emplace_back("wrong-startop", op);
      Bytes empties = {0};
      putBytes(empties, *built);
      empties[2] |= batch::kEmptyFields;
      seeds.emplace_back("empty-fields", empties);
    }
  }
  return seeds;
}

// --- box-stream records --------------------------------------------------------------------------

struct Records {
  Bytes out;
  Records& packet(ByteView body) {
    out.push_back(0);
    putU16(out, static_cast<std::uint16_t>(body.size()));
    putBytes(out, body);
    return *this;
  }
  Records& frame(std::uint16_t length, std::uint8_t scale, std::uint8_t fill) {
    out.push_back(1);
    putU16(out, length);
    out.push_back(scale);
    for (int i = 0; i < 64; ++i) out.push_back(static_cast<std::uint8_t>(fill + i));
    return *this;
  }
  Records& lengthPacket(std::uint32_t n) {
    out.push_back(2);
    putU32(out, n);
    return *this;
  }
  Records& goodbye() {
    out.push_back(3);
    return *this;
  }
  Records& junk(ByteView bytes) {
    out.push_back(4);
    out.push_back(static_cast<std::uint8_t>(bytes.size()));
    putBytes(out, bytes);
    return *this;
  }
  Records& tamper(std::uint16_t offset, std::uint8_t mask) {
    out.push_back(5);
    putU16(out, offset);
    out.push_back(mask);
    return *this;
  }
  Records& headerOnly(std::uint16_t length) {
    out.push_back(6);
    putU16(out, length);
    for (int i = 0; i < 16; ++i) out.push_back(0);
    return *this;
  }
  Records& truncate(std::uint16_t bytes) {
    out.push_back(7);
    putU16(out, bytes);
    return *this;
  }
};

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::vector<std::pair<std::string, Records>> boxRecordSets() {
  std::vector<std::pair<std::string, Records>> sets;
  const Bytes hello = text("hello");
  sets.emplace_back("frames", Records()
                                  .packet(hello)
                                  .frame(4, 0, 1)
                                  .frame(0, 0, 2)
                                  .frame(4096, 0, 3)
                                  .frame(4097, 0, 4)
                                  .frame(300, 1, 5)
                                  .goodbye());
  sets.emplace_back("large", Records().frame(64, 2, 6).frame(1, 0, 7));
  sets.emplace_back("over-limit", Records().frame(1, 0, 8).lengthPacket(1u << 30));
  sets.emplace_back("length-fits", Records().lengthPacket(5).packet(hello));
  sets.emplace_back("goodbye-inside",
                    Records().lengthPacket(5000).packet(Bytes(4096, 1)).goodbye());
  sets.emplace_back("past-the-end",
                    Records().lengthPacket(5000).packet(Bytes(4096, 1)).packet(Bytes(1000, 2)));
  sets.emplace_back("tampered", Records().packet(hello).packet(hello).tamper(40, 0x80));
  sets.emplace_back("tampered-header", Records().packet(hello).tamper(3, 0x01));
  sets.emplace_back("truncated", Records().frame(5000, 0, 9).truncate(100));
  sets.emplace_back("header-only", Records().packet(hello).headerOnly(0));
  sets.emplace_back("header-too-long", Records().headerOnly(4097));
  sets.emplace_back("junk", Records().packet(hello).junk(Bytes(40, 0xAB)).packet(hello));
  sets.emplace_back("empty", Records());
  return sets;
}

Seeds boxStreamSeeds() {
  Seeds seeds;
  std::uint8_t i = 0;
  for (const auto& [name, r] : boxRecordSets()) {
    Bytes in{static_cast<std::uint8_t>(i % 4), static_cast<std::uint8_t>(i % 3 == 0 ? 0 : i)};
    putBytes(in, r.out);
    seeds.emplace_back(name, in);
    ++i;
  }
  return seeds;
}

// --- handshakes ----------------------------------------------------------------------------------

// flags ‖ chunk seed ‖ identity ‖ sends ‖ materials ‖ records (shs_server_fuzz.cc's framing, and
// shs_client_fuzz.cc's with message 4 in place of message 3).
Bytes shsInput(std::uint8_t flags, std::uint8_t chunks, std::uint8_t who, std::uint8_t sends,
               const Bytes& materials, const Records& records) {
  Bytes in{flags, chunks, who, sends};
  putBytes(in, materials);
  putBytes(in, records.out);
  return in;
}

Bytes withLength(const Bytes& b) {
  Bytes out{static_cast<std::uint8_t>(b.size())};
  putBytes(out, b);
  return out;
}

Seeds shsServerSeeds() {
  Seeds seeds;
  const auto sets = boxRecordSets();
  const Records& frames = sets[0].second;
  // flags: bits 0-1 hello, 2-3 message 3, bit 4 refuse, bit 5 raw stream
  seeds.emplace_back("honest", shsInput(0x00, 0, 0, 3, {}, frames));
  seeds.emplace_back("honest-cut-reads", shsInput(0x00, 3, 0, 1, {}, sets[1].second));
  seeds.emplace_back("other-device", shsInput(0x00, 1, 1, 0, {}, sets[2].second));
  seeds.emplace_back("server-itself", shsInput(0x00, 0, 2, 2, {}, sets[6].second));
  seeds.emplace_back("refused", shsInput(0x10, 0, 0, 0, {}, {}));
  seeds.emplace_back("raw-stream", shsInput(0x20, 0, 0, 1, {}, Records().junk(Bytes(60, 7))));
  Bytes fuzzedKey(32, 0);
  putBytes(fuzzedKey, Bytes(64, 0));  // the all-zero key: not a usable point
  seeds.emplace_back("unusable-key", shsInput(0x04, 0, 0, 0, fuzzedKey, {}));
  Bytes clientKey(shsKeys().client.pk.begin(), shsKeys().client.pk.end());
  putBytes(clientKey, Bytes(64, 0x11));  // the client's key, a wrong signature
  seeds.emplace_back("bad-signature", shsInput(0x04, 0, 0, 0, clientKey, {}));
  seeds.emplace_back("raw-auth-short", shsInput(0x08, 0, 0, 0, withLength(Bytes(10, 1)), {}));
  seeds.emplace_back("raw-auth-junk", shsInput(0x08, 0, 0, 0, withLength(Bytes(112, 2)), {}));
  seeds.emplace_back("wrong-box", shsInput(0x0C, 0, 0, 0, {}, {}));
  seeds.emplace_back("low-order-hello", shsInput(0x01, 0, 0, 0, Bytes(32, 0), {}));
  seeds.emplace_back("tagged-hello", shsInput(0x01, 0, 0, 0, Bytes(32, 9), {}));
  seeds.emplace_back("raw-hello-short", shsInput(0x02, 0, 0, 0, withLength(Bytes(20, 3)), {}));
  seeds.emplace_back("raw-hello-junk", shsInput(0x02, 0, 0, 0, withLength(Bytes(64, 4)), {}));
  seeds.emplace_back("other-network", shsInput(0x03, 0, 0, 0, {}, {}));
  return seeds;
}

Seeds shsClientSeeds() {
  Seeds seeds;
  const auto sets = boxRecordSets();
  // flags: bits 0-1 hello, 2-3 message 4, bit 4 refuse, bit 5 raw stream; identity 2 = server
  seeds.emplace_back("honest", shsInput(0x00, 0, 2, 3, {}, sets[0].second));
  seeds.emplace_back("honest-cut-reads", shsInput(0x00, 5, 2, 1, {}, sets[4].second));
  seeds.emplace_back("honest-tampered", shsInput(0x00, 2, 2, 2, {}, sets[7].second));
  seeds.emplace_back("signed-by-another", shsInput(0x00, 0, 1, 0, {}, {}));
  seeds.emplace_back("refused", shsInput(0x10, 0, 2, 0, {}, {}));
  seeds.emplace_back("raw-stream", shsInput(0x20, 0, 2, 0, {}, Records().junk(Bytes(34, 5))));
  seeds.emplace_back("fuzzed-signature", shsInput(0x04, 0, 2, 0, Bytes(64, 0x22), {}));
  seeds.emplace_back("raw-accept-short", shsInput(0x08, 0, 2, 0, withLength(Bytes(79, 1)), {}));
  seeds.emplace_back("raw-accept-junk", shsInput(0x08, 0, 2, 0, withLength(Bytes(80, 2)), {}));
  seeds.emplace_back("wrong-box", shsInput(0x0C, 0, 2, 0, {}, {}));
  Bytes lowOrder(32, 0);
  lowOrder[0] = 1;  // the point of order 1
  seeds.emplace_back("low-order-hello", shsInput(0x01, 0, 2, 0, lowOrder, {}));
  seeds.emplace_back("tagged-hello", shsInput(0x01, 0, 2, 0, Bytes(32, 9), {}));
  seeds.emplace_back("raw-hello-short", shsInput(0x02, 0, 2, 0, withLength(Bytes(63, 3)), {}));
  seeds.emplace_back("raw-hello-junk", shsInput(0x02, 0, 2, 0, withLength(Bytes(64, 4)), {}));
  seeds.emplace_back("other-network", shsInput(0x03, 0, 2, 0, {}, {}));
  return seeds;
}

// --- framed channel ------------------------------------------------------------------------------

Bytes framed(const std::vector<Bytes>& frames) {
  Bytes out;
  for (const Bytes& f : frames) {
    putBytes(out, encodeFrameLength(static_cast<std::uint32_t>(f.size())));
    putBytes(out, f);
  }
  return out;
}

Seeds framedChannelSeeds() {
  Seeds seeds;
  const Bytes wire = framed({text("hi"), {}, Bytes(15, 1), Bytes(16, 2)});
  for (std::uint8_t limit = 0; limit < 4; ++limit) {
    Bytes in{limit, static_cast<std::uint8_t>(limit * 2)};
    putBytes(in, wire);
    seeds.emplace_back("frames-limit-" + std::to_string(limit), in);
  }
  Bytes big{2, 4};
  putBytes(big, framed({Bytes(5000, 3), Bytes(4096, 4), Bytes(1, 5)}));
  seeds.emplace_back("large-frames", big);
  Bytes over{1, 0};
  putBytes(over, framed({text("ok")}));
  putBytes(over, encodeFrameLength(5000));
  seeds.emplace_back("over-limit", over);
  Bytes cut{3, 1};
  putBytes(cut, framed({text("whole")}));
  putBytes(cut, encodeFrameLength(100));
  putBytes(cut, Bytes(10, 6));
  seeds.emplace_back("cut-short", cut);
  seeds.emplace_back("half-a-length", Bytes{3, 0, 0, 0});
  return seeds;
}

// --- configs -------------------------------------------------------------------------------------

Seeds denyListSeeds() {
  const std::string network = toHex(shsKeys().network);
  const std::string p1 = toHex(identityOf(0xD1).pk);
  const std::string p2 = PublicKey::fromBytes(identityOf(0xD2).pk)->toSsbId();
  std::string p3 = PublicKey::fromBytes(identityOf(0xD3).pk)->toSsbId();
  p3 = p3.substr(1, p3.size() - 1 - std::string(".ed25519").size());  // bare base64
  const std::string head =
      "[auth]\nprovider = \"shared-key\"\n[auth.shared-key]\nnetwork-key = \"" + network +
      "\"\nidentity = \"device.key\"\n";
  Seeds seeds;
  auto add = [&](const std::string& name, const std::string& toml) {
    seeds.emplace_back(name, text(toml));
  };
  add("three-forms", head + "deny = [\"" + p1 + "\", \"" + p2 + "\", \"" + p3 + "\"]\n");
  add("empty-list", head + "deny = []\n");
  add("no-deny", head);
  add("only-p3", head + "deny = [\n  \"" + p3 + "\",  # a comment\n]\n");
  add("bad-entry", head + "deny = [\"" + p1 + "\", \"not a key\"]\n");
  add("low-order-entry", head + "deny = [\"" + std::string(64, '0') + "\"]\n");
  add("wrong-type", head + "deny = \"" + p1 + "\"\n");
  add("number-in-list", head + "deny = [\"" + p1 + "\", 7]\n");
  add("unknown-key", head + "deny = []\nallow = [\"" + p1 + "\"]\n");
  add("dotted", "auth.provider = \"shared-key\"\nauth.shared-key.deny = [\"" + p1 + "\"]\n");
  add("inline-table",
      "auth = { provider = \"shared-key\", shared-key = { deny = [\"" + p2 + "\"] } }\n");
  add("syntax-error", head + "deny = [\"" + p1 + "\"\n");
  add("not-a-table", "auth = 5\n");
  add("empty", "");
  return seeds;
}

Seeds configSeeds() {
  Seeds seeds;
  auto add = [&](const std::string& name, const std::string& toml) {
    seeds.emplace_back(name, text(toml));
  };
  add("serve-shared-key",
      "[network]\nlisten = \"127.0.0.1:7420\"\nconnect = [\"net:sync.example.org:7420~shs:"
      "qfXVPNc4DN+y3d2fwyLa+eM/AM7YMYSuEot5QAEqxes=\"]\nhandshake-timeout-ms = 10000\n"
      "[storage]\npath = \"./data\"\n[auth]\nprovider = \"shared-key\"\n[auth.shared-key]\n"
      "network-key = \"d4a1cb88a66f02f8db635ce26441cc5dac1b08420ceaac230839b755845a9ffb\"\n"
      "identity = \"./device.key\"\ndeny = "
      "[\"@7sY9ROud8cFKK8gGaLPjCsVqZEfBTiZpPSG8z12VOwo=.ed25519\"]\n");
  add("serve-team",
      "[network]\nlisten = \"0.0.0.0:7420\"\n[storage]\npath = \"/var/lib/portcullis\"\n"
      "[auth]\nprovider = \"team\"\n[auth.team]\nstate = \"./data/team\"\n");
  add("document-id",
      "[auth]\nprovider = \"document-id\"\n[auth.document-id]\nupstreams = [\n"
      "  \"net:a.example:7420~shs:qfXVPNc4DN+y3d2fwyLa+eM/AM7YMYSuEot5QAEqxes=\",\n]\n");
  add("open", "[auth]\nprovider = \"open\"\n");
  add("every-type",
      "s = 'literal'\nml = \"\"\"\nmulti\\tline\"\"\"\ni = -0x7f\nf = 6.02e23\nb = true\n"
      "d = 1979-05-27T07:32:00Z\nld = 1979-05-27\nt = 07:32:00\na = [1, \"two\", [3]]\n"
      "e = []\nit = { x = 1, y = { z = \"deep\" } }\n[[arr]]\nname = \"one\"\n[[arr]]\nname = "
      "\"two\"\n"
      "[a.b.c]\nk = \"v\"\n\"quoted key\" = 1\n'single' = 2\nx.y.z = 3\n");
  add("unicode", "\"ключ\" = \"значение\"\nemoji = \"\\U0001F600\"\n");
  add("syntax-error", "[network\nlisten = 1\n");
  add("duplicate-key", "a = 1\na = 2\n");
  add("bad-escape", "s = \"\\q\"\n");
  add("empty", "");
  return seeds;
}

// --- fs storage ----------------------------------------------------------------------------------

// The data folder a Repo with fs storage writes: three documents, one compacted.
fs::path repoDataFolder(const fs::path& dir) {
  const fs::path store = dir / "store";
  asio::io_context ctx;
  auto adapter = FsStorageAdapter::open(store);
  if (!adapter) throw std::runtime_error(adapter.error().message());
  RepoOptions options;
  options.storage = std::shared_ptr<FsStorageAdapter>(std::move(*adapter));
  options.auth = makeOpenProvider(*PeerId::parse("gen"));
  options.document.actor = *ActorId::fromBytes(Bytes(16, 0x6E));
  Repo repo(ctx.get_executor(), options);
  auto edit = [&](DocHandle& h, int n) {
    auto changed = h.change(
        [&](Transaction& tx) -> Result<void> {
          return tx.put(ObjId::root(), "k" + std::to_string(n % 5), std::int64_t{n});
        },
        at(1'700'000'000 + n));
    if (!changed) throw std::runtime_error(changed.error().message());
    auto flushed = runToEnd(ctx, repo.flush());
    if (!flushed || !*flushed) throw std::runtime_error("flush failed");
  };
  DocHandle small = repo.create();
  for (int i = 0; i < 3; ++i) edit(small, i);
  DocHandle compacted = repo.create();
  for (int i = 0; i < 34; ++i) edit(compacted, i);
  DocHandle one = repo.create();
  edit(one, 0);
  (void)runToEnd(ctx, repo.shutdown());
  return store;
}

Seeds fsStorageSeeds() {
  Seeds seeds;
  std::string pattern = (fs::temp_directory_path() / "portcullis-gen.XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  const fs::path dir = pattern;
  const fs::path store = repoDataFolder(dir);
  std::vector<fs::path> docs;
  for (const auto& e : fs::directory_iterator(store)) docs.push_back(e.path());
  std::sort(docs.begin(), docs.end());

  auto input = [&](std::uint8_t flags) {
    Bytes in{flags};
    putBytes(in, fsinput::entriesOf(store));
    return in;
  };
  seeds.emplace_back("repo-folder", input(0));
  seeds.emplace_back("small-chunks", input(fsinput::kSmallChunks));
  // A chunk cut in half (a torn write the rename should have prevented).
  std::vector<fs::path> chunks;
  for (const auto& e : fs::recursive_directory_iterator(store)) {
    if (e.is_regular_file()) chunks.push_back(e.path());
  }
  std::sort(chunks.begin(), chunks.end());
  if (!chunks.empty()) {
    fs::resize_file(chunks.front(), fs::file_size(chunks.front()) / 2);
    seeds.emplace_back("truncated-chunk", input(0));
  }
  // A crash's temp file, an own chunk, a stranger and a symlinked folder.
  if (!docs.empty()) {
    const std::string doc = docs.front().filename().string();
    std::ofstream(docs.front() / "incremental" / ".tmp.abc") << "torn";
    std::ofstream(store / (doc + ".chunk")) << "not a snapshot at all";
    std::ofstream(docs.front() / "README") << "not ours";
    fs::create_directory_symlink("incremental", docs.front() / "linked");
    seeds.emplace_back("strangers", input(0));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return seeds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  if (sodium_init() < 0) return 1;
  DeterministicRandom::install();
  spdlog::set_level(spdlog::level::off);
  const fs::path out = argv[1];
  try {
    writeSeeds(out / "change_codec", changeCodecSeeds());
    writeSeeds(out / "snapshot", snapshotSeeds());
    writeSeeds(out / "sync_codec", syncCodecSeeds());
    writeSeeds(out / "apply_batch", applyBatchSeeds());
    writeSeeds(out / "shs_server", shsServerSeeds());
    writeSeeds(out / "shs_client", shsClientSeeds());
    writeSeeds(out / "box_stream", boxStreamSeeds());
    writeSeeds(out / "framed_channel", framedChannelSeeds());
    writeSeeds(out / "deny_list", denyListSeeds());
    writeSeeds(out / "config", configSeeds());
    writeSeeds(out / "fs_storage", fsStorageSeeds());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "core_fuzz_gen_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
