// A Repo whose fs storage meets a full or failing disk (ENOSPC or EIO from a write, an fsync or a
// rename of a save) never reports the change stored: flush() fails and the peer that sent the
// change gets no storedHeads that cover it. Once the disk recovers, the change is stored,
// acknowledged, and survives a power cut; so does everything acknowledged before.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <tuple>

#include "fault_injection_file_ops.h"
#include "fs_storage.h"
#include "repo_harness.h"
#include "storage_test_support.h"
#include "syscall_faults.h"

namespace portcullis::testing {
namespace {

using test::Syscall;

// Which call of a save fails: a save into the document's existing directories opens a temp file,
// writes it, opens and fsyncs it, renames it, then opens and fsyncs the directory.
struct FailingCall {
  Syscall call;
  std::size_t nth;
};

std::shared_ptr<StorageAdapter> openStore(const std::filesystem::path& dir, FileOps& ops) {
  auto store = FsStorageAdapter::open(dir, ops);
  if (!store) throw std::runtime_error(store.error().message());
  return std::shared_ptr<StorageAdapter>(std::move(*store));
}

class RepoStorageFault : public ::testing::TestWithParam<std::tuple<FailingCall, int>> {};

TEST_P(RepoStorageFault, IsNeverAcknowledgedAndLosesNothingAcknowledgedBefore) {
  const auto [failing, err] = GetParam();
  test::TempDir dir;
  test::SyscallFaults faults;
  test::FaultInjectionFileOps disk(dir.path(), PosixFileOps(test::SyscallFaults::calls()));
  const PeerId serverId = pid("server");
  DocumentId id = DocumentId::random();
  {
    RepoHarness h;
    auto& client = h.add("client");
    // A long save delay: only flush() writes, so the test knows which save meets the fault.
    auto& server = h.add("server", [store = openStore(dir.path(), disk)](RepoOptions& o) {
      o.storage = store;
      o.saveDelay = 60s;
    });
    h.link(client, server);
    DocHandle doc = client.repo->create();
    id = doc.id();
    auto storedHere = [&] { return client.repo->peerStoredHeads(serverId, id) == doc.heads(); };

    ASSERT_TRUE(doc.change(put("k", "v1")));
    ASSERT_TRUE(h.runUntil([&] { return holds(server, id, "k", "v1"); }));
    ASSERT_TRUE(h.await(server.repo->flush()));
    ASSERT_TRUE(h.runUntil(storedHere));
    const std::vector<ChangeHash> acknowledged = doc.heads();

    ASSERT_TRUE(doc.change(put("k", "v2")));
    ASSERT_TRUE(h.runUntil([&] { return holds(server, id, "k", "v2"); }));
    faults.arm(failing.call, failing.nth, err);
    auto failed = h.await(server.repo->flush());
    ASSERT_TRUE(faults.disarm()) << "the save made no such call";
    ASSERT_FALSE(failed.has_value()) << "flush() reported a change stored that the disk refused";
    EXPECT_EQ(failed.error().code(), Errc::Io);
    h.runFor(200ms);
    EXPECT_EQ(client.repo->peerStoredHeads(serverId, id), acknowledged);
    for (const auto& heads : client.log->stored) EXPECT_NE(heads, doc.heads());

    // The disk recovers: the next flush stores the change, and the client hears so.
    auto retried = h.await(server.repo->flush());
    ASSERT_TRUE(retried) << retried.error().message();
    EXPECT_TRUE(h.runUntil(storedHere));
  }
  disk.simulateCrash();
  RepoHarness h;
  auto& again = h.add("server", [store = openStore(dir.path(), disk)](RepoOptions& o) {
    o.storage = store;
  });
  auto found = h.await(again.repo->find(id));
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(readString(*found, "k"), "v2");
}

INSTANTIATE_TEST_SUITE_P(
    EachCallOfASave, RepoStorageFault,
    ::testing::Combine(::testing::Values(FailingCall{Syscall::Open, 1},
                                         FailingCall{Syscall::Write, 1},
                                         FailingCall{Syscall::Fsync, 1},
                                         FailingCall{Syscall::Rename, 1},
                                         FailingCall{Syscall::Fsync, 2}),
                       ::testing::Values(ENOSPC, EIO)),
    [](const ::testing::TestParamInfo<std::tuple<FailingCall, int>>& info) {
      // std::get, not a structured binding: its comma would split the macro's arguments.
      const FailingCall& failing = std::get<0>(info.param);
      const char* which = failing.call == Syscall::Fsync ? (failing.nth == 1 ? "File" : "Dir")
                                                         : "";
      return test::syscallName(failing.call) + which +
             (std::get<1>(info.param) == ENOSPC ? "Enospc" : "Eio");
    });

}  // namespace
}  // namespace portcullis::testing
