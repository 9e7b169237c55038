// PosixCalls with one armed fault.
#include "syscall_faults.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace portcullis::test {
namespace {

// What a call should do instead of its real work.
enum class Verdict { Real, Fail, ShortWrite };

struct Fault {
  Syscall call = Syscall::Open;
  std::size_t nth = 0;
  int err = 0;
  std::size_t seen = 0;
  bool fired = false;
  bool writeErrorDue = false;  // a short write happened; the next write fails
};

std::mutex gMutex;
bool gExists = false;
std::optional<Fault> gFault;

Verdict judge(Syscall call, bool splittable = false) {
  std::lock_guard lock(gMutex);
  if (!gFault || gFault->fired) return Verdict::Real;
  if (call == Syscall::Write && gFault->writeErrorDue) {
    gFault->fired = true;
    return Verdict::Fail;
  }
  if (call != gFault->call || ++gFault->seen != gFault->nth) return Verdict::Real;
  if (splittable) {
    gFault->writeErrorDue = true;
    return Verdict::ShortWrite;
  }
  gFault->fired = true;
  return Verdict::Fail;
}

int failWith() {
  std::lock_guard lock(gMutex);
  errno = gFault->err;
  return -1;
}

int faultyOpen(const char* path, int flags, mode_t mode) {
  if (judge(Syscall::Open) == Verdict::Fail) return failWith();
  return ::open(path, flags, mode);
}

ssize_t faultyWrite(int fd, const void* data, std::size_t size) {
  switch (judge(Syscall::Write, size > 1)) {
    case Verdict::Fail: return failWith();
    case Verdict::ShortWrite: return ::write(fd, data, size / 2);
    case Verdict::Real: break;
  }
  return ::write(fd, data, size);
}

int faultyFsync(int fd) {
  return judge(Syscall::Fsync) == Verdict::Fail ? failWith() : ::fsync(fd);
}

int faultyRename(const char* from, const char* to) {
  return judge(Syscall::Rename) == Verdict::Fail ? failWith() : ::rename(from, to);
}

int faultyUnlink(const char* path) {
  return judge(Syscall::Unlink) == Verdict::Fail ? failWith() : ::unlink(path);
}

int faultyMkdir(const char* path, mode_t mode) {
  return judge(Syscall::Mkdir) == Verdict::Fail ? failWith() : ::mkdir(path, mode);
}

int faultyRmdir(const char* path) {
  return judge(Syscall::Rmdir) == Verdict::Fail ? failWith() : ::rmdir(path);
}

constexpr detail::PosixCalls kFaultyCalls = {
    .open = faultyOpen,
    .write = faultyWrite,
    .fsync = faultyFsync,
    .rename = faultyRename,
    .unlink = faultyUnlink,
    .mkdir = faultyMkdir,
    .rmdir = faultyRmdir,
};

}  // namespace

std::string syscallName(Syscall call) {
  switch (call) {
    case Syscall::Open: return "Open";
    case Syscall::Write: return "Write";
    case Syscall::Fsync: return "Fsync";
    case Syscall::Rename: return "Rename";
    case Syscall::Unlink: return "Unlink";
    case Syscall::Mkdir: return "Mkdir";
    case Syscall::Rmdir: return "Rmdir";
  }
  return "Unknown";
}

SyscallFaults::SyscallFaults() {
  std::lock_guard lock(gMutex);
  if (gExists) throw std::logic_error("only one SyscallFaults may exist at a time");
  gExists = true;
}

SyscallFaults::~SyscallFaults() {
  std::lock_guard lock(gMutex);
  gExists = false;
  gFault.reset();
}

const detail::PosixCalls& SyscallFaults::calls() { return kFaultyCalls; }

void SyscallFaults::arm(Syscall call, std::size_t nth, int err) {
  std::lock_guard lock(gMutex);
  gFault = Fault{.call = call, .nth = nth, .err = err};
}

bool SyscallFaults::disarm() {
  std::lock_guard lock(gMutex);
  bool fired = gFault && gFault->fired;
  gFault.reset();
  return fired;
}

}  // namespace portcullis::test
