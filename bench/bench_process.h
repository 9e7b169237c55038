// bench/bench_process.h — what the benchmarks that run a real `portcullis serve` share: a private
// temp dir, a child process with its stdout on a pipe, the ready line, the child's memory from
// /proc and the open-files limit. Header-only; every wait is bounded and failures throw
// std::runtime_error (`fail`), which each benchmark's main() reports.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "portcullis/ids.h"

namespace portcullis::bench {

using Clock = std::chrono::steady_clock;

[[noreturn]] inline void fail(const std::string& what) { throw std::runtime_error(what); }

inline double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A private directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/" + prefix + ".XXXXXX";
    if (!::mkdtemp(pattern.data())) fail("mkdtemp: " + std::string(std::strerror(errno)));
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A child process with its stdout on a pipe (read line by line) and its stderr in a file. The
// child is killed if this process dies (PR_SET_PDEATHSIG), and stopped by the destructor.
class Child {
 public:
  static constexpr auto kStopBound = std::chrono::seconds(20);  // SIGTERM to exit, then SIGKILL

  // `softFileLimit`, if set, is the child's soft RLIMIT_NOFILE (as `ulimit -Sn` would set it).
  Child(const std::vector<std::string>& argv, const std::filesystem::path& stderrFile,
        std::optional<rlim_t> softFileLimit = std::nullopt) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) fail("pipe: " + std::string(std::strerror(errno)));
    const int err = ::open(stderrFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (err < 0) fail("open " + stderrFile.string() + ": " + std::strerror(errno));
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls until exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err, STDERR_FILENO);
      ::close_range(3, ~0U, 0);  // sockets of this process must not leak into the child
      if (softFileLimit) {
        rlimit lim{};
        ::getrlimit(RLIMIT_NOFILE, &lim);
        lim.rlim_cur = std::min(*softFileLimit, lim.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &lim);
      }
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err);
    if (pid_ < 0) {
      ::close(out[0]);
      fail("fork: " + std::string(std::strerror(errno)));
    }
    out_ = out[0];
    ::fcntl(out_, F_SETFL, ::fcntl(out_, F_GETFL) | O_NONBLOCK);
  }
  ~Child() {
    stop();
    if (out_ >= 0) ::close(out_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  // The next line on the child's stdout, waiting at most `bound`; nullopt at the bound or EOF.
  std::optional<std::string> readLine(Clock::duration bound) {
    const auto deadline = Clock::now() + bound;
    for (;;) {
      if (auto line = tryReadLine()) return line;
      if (eof_) return std::nullopt;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{.fd = out_, .events = POLLIN, .revents = 0};
      ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100)));
    }
  }

  // A complete line if one is there now; never blocks.
  std::optional<std::string> tryReadLine() {
    for (;;) {
      if (auto nl = buffered_.find('\n'); nl != std::string::npos) {
        std::string line = buffered_.substr(0, nl);
        buffered_.erase(0, nl + 1);
        return line;
      }
      char buf[4096];
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n > 0) {
        buffered_.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) eof_ = true;
      return std::nullopt;
    }
  }

  // SIGTERM, then SIGKILL after kStopBound. Returns the exit status as a text ("exit 0").
  std::string stop() {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + kStopBound;
    int status = 0;
    pid_t done = 0;
    while ((done = ::waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (done == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      status_ = "killed after " + std::to_string(kStopBound.count()) + " s";
    } else if (WIFEXITED(status)) {
      status_ = "exit " + std::to_string(WEXITSTATUS(status));
    } else {
      status_ = "signal " + std::to_string(WTERMSIG(status));
    }
    pid_ = -1;
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool eof_ = false;
  std::string buffered_;
  std::string status_;
};

inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::size_t countOccurrences(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

// The ready line of `portcullis serve --json` (and of peers that mimic it):
// {"listening":["HOST:PORT"],"peer":...}.
struct Ready {
  std::string address;
  PeerId peer;
};

inline Ready awaitReady(Child& child, const std::filesystem::path& log, const char* what,
                        Clock::duration bound = std::chrono::seconds(15)) {
  auto line = child.readLine(bound);
  if (!line) {
    fail(std::string(what) + " printed no ready line (it exited, or nothing within the bound); "
                             "its stderr:\n" + readFile(log));
  }
  try {
    auto j = nlohmann::json::parse(*line);
    auto peer = PeerId::parse(j.at("peer").get<std::string>());
    if (!peer) fail("bad peer in the ready line");
    return Ready{.address = j.at("listening").at(0).get<std::string>(), .peer = *peer};
  } catch (const nlohmann::json::exception& e) {
    fail(std::string(what) + ": unexpected ready line '" + *line + "': " + e.what());
  }
}

struct ProcMemory {
  long rssKiB = -1;
  long hwmKiB = -1;  // the peak (VmHWM)
};

inline ProcMemory readProcMemory(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  ProcMemory out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) out.rssKiB = std::atol(line.c_str() + 6);
    if (line.rfind("VmHWM:", 0) == 0) out.hwmKiB = std::atol(line.c_str() + 6);
  }
  if (out.rssKiB < 0 || out.hwmKiB < 0) {
    fail("cannot read /proc/" + std::to_string(pid) + "/status");
  }
  return out;
}

// Both ends of many connections live on this machine: raises the soft limit on open files to the
// hard limit (a spawned server inherits it). Returns the limit now in force.
inline rlim_t raiseFileLimit(const char* who) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur >= lim.rlim_max) return lim.rlim_cur;
  const rlim_t old = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return old;
  std::fprintf(stderr, "%s: raised RLIMIT_NOFILE from %llu to %llu\n", who,
               static_cast<unsigned long long>(old), static_cast<unsigned long long>(lim.rlim_cur));
  return lim.rlim_cur;
}

}  // namespace portcullis::bench
