// A Repo on real storage: what flush() reported stored is there for the next Repo, through a
// simulated crash that drops everything not fsync'd (scenario 9 of issue "Core 2").
#include <gtest/gtest.h>

#include "fault_injection_file_ops.h"
#include "fs_storage.h"
#include "repo_harness.h"
#include "storage_test_support.h"

namespace portcullis::testing {
namespace {

std::shared_ptr<StorageAdapter> openStore(const std::filesystem::path& dir, FileOps* ops = nullptr) {
  auto store = ops ? FsStorageAdapter::open(dir, *ops) : FsStorageAdapter::open(dir);
  if (!store) throw std::runtime_error(store.error().message());
  return std::shared_ptr<StorageAdapter>(std::move(*store));
}

std::function<void(RepoOptions&)> withStorage(std::shared_ptr<StorageAdapter> store) {
  return [store](RepoOptions& o) {
    o.storage = store;
    o.saveDelay = 50ms;
  };
}

TEST(RepoStorage, ANewRepoOnTheSameStorageFindsWhatWasFlushed) {
  test::TempDir dir;
  DocumentId id = DocumentId::random();
  {
    RepoHarness h;
    auto& a = h.add("a", withStorage(openStore(dir.path())));
    DocHandle doc = a.repo->create();
    id = doc.id();
    ASSERT_TRUE(doc.change([](Transaction& tx) { return putString(tx, "foo", "bar"); }));
    auto flushed = h.await(a.repo->flush());
    ASSERT_TRUE(flushed) << flushed.error().message();
  }
  RepoHarness h;
  auto& again = h.add("a", withStorage(openStore(dir.path())));
  EXPECT_FALSE(again.repo->findLocal(id));
  auto found = h.await(again.repo->find(id));
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(readString(*found, "foo"), "bar");
}

TEST(RepoStorage, ThreeDocumentsChangedInQuickSuccessionAreAllThereAfterFlush) {
  test::TempDir dir;
  std::vector<std::pair<DocumentId, std::string>> written;
  {
    RepoHarness h;
    // A long save delay: only flush() can have written them.
    auto& a = h.add("a", [store = openStore(dir.path())](RepoOptions& o) {
      o.storage = store;
      o.saveDelay = 60s;
    });
    for (int i = 0; i < 3; ++i) {
      DocHandle doc = a.repo->create();
      const std::string value = "value-" + std::to_string(i);
      ASSERT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "k", value); }));
      written.emplace_back(doc.id(), value);
    }
    auto flushed = h.await(a.repo->flush());
    ASSERT_TRUE(flushed) << flushed.error().message();
  }
  RepoHarness h;
  auto& again = h.add("a", withStorage(openStore(dir.path())));
  for (const auto& [id, value] : written) {
    auto found = h.await(again.repo->find(id));
    ASSERT_TRUE(found) << found.error().message();
    EXPECT_EQ(readString(*found, "k"), value);
  }
}

TEST(RepoStorage, WhatFlushReportedStoredSurvivesACrashThatDropsUnsyncedWrites) {
  test::TempDir dir;
  test::FaultInjectionFileOps disk(dir.path());
  std::vector<std::pair<DocumentId, std::string>> flushed;
  DocumentId unflushedDoc = DocumentId::random();
  {
    RepoHarness h;
    auto& a = h.add("a", [store = openStore(dir.path(), &disk)](RepoOptions& o) {
      o.storage = store;
      o.saveDelay = 60s;
    });
    for (int round = 0; round < 3; ++round) {
      DocHandle doc = a.repo->create();
      const std::string value = "round-" + std::to_string(round);
      ASSERT_TRUE(doc.change([&](Transaction& tx) { return putString(tx, "k", value); }));
      auto done = h.await(a.repo->flush());
      ASSERT_TRUE(done) << done.error().message();
      flushed.emplace_back(doc.id(), value);
    }
    // A change after the last flush may be lost, but must not damage what was stored.
    DocHandle late = a.repo->create();
    unflushedDoc = late.id();
    ASSERT_TRUE(late.change([](Transaction& tx) { return putString(tx, "k", "late"); }));
  }
  disk.simulateCrash();

  RepoHarness h;
  auto& again = h.add("a", withStorage(openStore(dir.path())));
  for (const auto& [id, value] : flushed) {
    auto found = h.await(again.repo->find(id));
    ASSERT_TRUE(found) << found.error().message();
    EXPECT_EQ(readString(*found, "k"), value);
  }
  auto late = h.await(again.repo->find(unflushedDoc));
  if (late) EXPECT_EQ(readString(*late, "k"), "late");
  else EXPECT_EQ(late.error().code(), Errc::NotFound);
}

TEST(RepoStorage, ManySavesCompactIntoASnapshotThatLoadsTheSameDocument) {
  test::TempDir dir;
  auto store = openStore(dir.path());
  DocumentId id = DocumentId::random();
  std::string json;
  {
    RepoHarness h;
    auto& a = h.add("a", withStorage(store));
    DocHandle doc = a.repo->create();
    id = doc.id();
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE(doc.change([&](Transaction& tx) {
        return tx.put(ObjId::root(), "n" + std::to_string(i % 7), ScalarValue(std::int64_t{i}));
      }));
      ASSERT_TRUE(h.await(a.repo->flush()));
    }
    json = doc.toJson();
  }
  RepoHarness h;
  std::vector<StorageChunk> chunks = *h.await(store->loadRange({toHex(id.bytes())}));
  std::size_t snapshots = 0;
  for (const StorageChunk& c : chunks) snapshots += c.key.at(1) == "snapshot" ? 1 : 0;
  EXPECT_EQ(snapshots, 1u);
  EXPECT_LT(chunks.size(), 40u);
  auto& again = h.add("a", withStorage(store));
  auto found = h.await(again.repo->find(id));
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(found->toJson(), json);
}

TEST(RepoStorage, APeerReportsWhatItStoredAsItsAcknowledgement) {
  test::TempDir dir;
  RepoHarness h;
  auto& client = h.add("client");
  auto& server = h.add("server", withStorage(openStore(dir.path())));
  h.link(client, server);
  DocHandle doc = client.repo->create();
  ASSERT_TRUE(doc.change([](Transaction& tx) { return putString(tx, "k", "v"); }));
  const PeerId serverId = *PeerId::parse("server");
  ASSERT_TRUE(h.runUntil([&] {
    return client.repo->peerStoredHeads(serverId, doc.id()) == doc.heads();
  }, 3s));
  // A later change is acknowledged in turn.
  ASSERT_TRUE(doc.change([](Transaction& tx) { return putString(tx, "k", "w"); }));
  EXPECT_NE(client.repo->peerStoredHeads(serverId, doc.id()), doc.heads());
  ASSERT_TRUE(h.runUntil([&] {
    return client.repo->peerStoredHeads(serverId, doc.id()) == doc.heads();
  }, 3s));
  // Each acknowledgement was an event, once.
  ASSERT_FALSE(client.log->stored.empty());
  EXPECT_EQ(client.log->stored.back(), doc.heads());
  for (std::size_t i = 1; i < client.log->stored.size(); ++i) {
    EXPECT_NE(client.log->stored[i], client.log->stored[i - 1]);
  }
}

}  // namespace
}  // namespace portcullis::testing
