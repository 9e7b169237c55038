// syscall_faults.h — the system calls of PosixFileOps with one of them failing as a full or failing
// disk does, for tests that check a save reports the error (never success) and leaves a store
// that still loads.
//
// Test support for adapters/storage/fs. Thread-safe: FsStorageAdapter calls from its pool threads.
#pragma once

#include <cstddef>
#include <string>

#include "fs_storage.h"

namespace portcullis::test {

enum class Syscall { Open, Write, Fsync, Rename, Unlink, Mkdir, Rmdir };

std::string syscallName(Syscall call);

// While one of these exists, calls() is the real system calls except for the armed fault: the
// `nth` call of one kind after arm() fails once with -1 and errno `err`. A failing write first
// writes half of its bytes and returns that short count, as a disk that fills up does, and the
// error comes from the next write. Only one SyscallFaults may exist at a time, since a table of
// plain function pointers can only reach it through one static slot.
class SyscallFaults {
 public:
  SyscallFaults();
  SyscallFaults(const SyscallFaults&) = delete;
  SyscallFaults& operator=(const SyscallFaults&) = delete;
  ~SyscallFaults();

  // For PosixFileOps(calls()). Valid for the life of the program; outside a SyscallFaults' life
  // it is just the real calls.
  static const detail::PosixCalls& calls();

  void arm(Syscall call, std::size_t nth, int err);
  // Back to the real calls; whether the armed fault fired.
  bool disarm();
};

}  // namespace portcullis::test
