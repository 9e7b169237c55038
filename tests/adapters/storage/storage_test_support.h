// Helpers for the storage adapter tests: a fresh directory per test, and running coroutines on an
// io_context to completion within a bounded time, with their exceptions rethrown in the test.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "portcullis/asio.h"
#include "portcullis/result.h"

namespace portcullis::test {

// A new, empty directory under the system's temp directory, deleted with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "portcullis-storage-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Starts `task` on `ctx`; an exception escaping it is rethrown out of ctx.run(), into the test.
inline void spawn(asio::io_context& ctx, asio::awaitable<void> task) {
  asio::co_spawn(ctx, std::move(task), [](std::exception_ptr failure) {
    if (failure) std::rethrow_exception(failure);
  });
}

// Runs `ctx` until it has nothing left to do; throws if that takes longer than a test should.
inline void drain(asio::io_context& ctx) {
  ctx.restart();
  ctx.run_for(std::chrono::seconds(10));
  if (!ctx.stopped()) throw std::runtime_error("the io_context still had work after 10 s");
}

template <typename T>
asio::awaitable<void> storeResult(asio::awaitable<T> task, std::optional<T>& out) {
  out.emplace(co_await std::move(task));
}

// Runs `task` to completion on `ctx` and returns its result.
template <typename T>
T runToCompletion(asio::io_context& ctx, asio::awaitable<T> task) {
  // co_spawn would want T default-constructible for its exception path; Result<T> is not.
  std::optional<T> out;
  spawn(ctx, storeResult(std::move(task), out));
  drain(ctx);
  if (!out) throw std::runtime_error("the awaitable finished without a result");
  return std::move(*out);
}

// Awaits a call the test expects to succeed. The calls are lazy: each starts when this coroutine
// awaits it, so calls spawned this way start in the order of their spawn().
inline asio::awaitable<void> expectSuccess(asio::awaitable<Result<void>> call) {
  auto done = co_await std::move(call);
  EXPECT_TRUE(done.has_value()) << done.error().message();
}

// The value of a Result the test expects to hold one; an error throws, failing the test.
template <typename T>
T valueOrThrow(Result<T> result) {
  if (!result) throw std::runtime_error("unexpected error: " + result.error().message());
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

// Runs a call the test expects to succeed and returns its value.
template <typename T>
T runOrThrow(asio::io_context& ctx, asio::awaitable<Result<T>> call) {
  return valueOrThrow(runToCompletion(ctx, std::move(call)));
}

}  // namespace portcullis::test
