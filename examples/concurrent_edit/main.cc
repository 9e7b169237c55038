// Two replicas of one document are edited concurrently, exchange their changes in both
// directions and print the merged result, which is identical on both.
//
// The main job of the Quick start until the sync server lands: it shows the CRDT converging.
#include <portcullis/document.h>
#include <sodium.h>

#include <cstdio>
#include <string>

namespace {

using portcullis::Document;
using portcullis::ObjId;
using portcullis::ObjType;

void check(const portcullis::Result<void>& r) {
  if (!r) {
    std::fprintf(stderr, "edit failed: %s\n", r.error().message().c_str());
    std::exit(1);
  }
}

// Sends every change `from` has that `to` lacks, as a network would.
void deliver(const Document& from, Document& to) {
  auto changes = from.getChangesSince(to.getHeads());
  auto report = to.applyChanges(changes);
  std::printf("  %zu change(s) delivered: %zu applied, %zu already known, %zu rejected\n",
              changes.size(),
              report.applied, report.duplicates, report.rejected.size());
  for (const auto& e : report.rejected) std::printf("  rejected: %s\n", e.message().c_str());
}

}  // namespace

int main() {
  if (sodium_init() < 0) return 1;

  Document alice;
  ObjId todo = ObjId::root();
  ObjId notes = ObjId::root();
  {
    auto tx = alice.transaction();
    todo = *tx.putObject(ObjId::root(), "todo", ObjType::List);
    check(tx.insert(todo, 0, std::string("buy milk")));
    notes = *tx.putObject(ObjId::root(), "notes", ObjType::Text);
    check(tx.splice(notes, 0, 0, "Hello world"));
    check(tx.put(ObjId::root(), "visits", portcullis::Counter{0}));
    tx.commit({.message = "start a shared list", .time = std::nullopt});
  }
  Document bob = alice.fork();
  std::printf("alice and bob start from: %s\n", alice.toJson().c_str());

  {  // Concurrent edits: neither has seen the other's.
    auto tx = alice.transaction();
    check(tx.insert(todo, 1, std::string("call mum")));
    check(tx.splice(notes, 5, 0, ", dear"));
    check(tx.increment(ObjId::root(), "visits", 1));
    check(tx.put(ObjId::root(), "owner", std::string("alice")));
    tx.commit({.message = "alice's edits", .time = std::nullopt});
  }
  {
    auto tx = bob.transaction();
    check(tx.insert(todo, 0, std::string("fix bike")));
    check(tx.splice(notes, 11, 0, "!"));
    check(tx.increment(ObjId::root(), "visits", 2));
    check(tx.put(ObjId::root(), "owner", std::string("bob")));
    tx.commit({.message = "bob's edits", .time = std::nullopt});
  }
  std::printf("alice edits to:       %s\n", alice.toJson().c_str());
  std::printf("bob edits to:         %s\n", bob.toJson().c_str());

  std::printf("alice -> bob\n");
  deliver(alice, bob);
  std::printf("bob -> alice\n");
  deliver(bob, alice);

  std::string a = alice.toJson();
  std::string b = bob.toJson();
  std::printf("alice reads: %s\n", a.c_str());
  std::printf("bob reads:   %s\n", b.c_str());
  const bool same = a == b && alice.save() == bob.save();
  std::printf("%s\n", same ? "converged: identical documents and identical saved bytes"
                           : "DIVERGED");
  return same ? 0 : 1;
}
