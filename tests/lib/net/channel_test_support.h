// channel_test_support.h — what the channel tests share: an allocation tracker, two memory
// pipes whose ends a test holds, and running one coroutine to completion.
//
// Replaces the global operator new: include it in exactly one file of a test binary.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <vector>

#include "../repo/repo_harness.h"
#include "portcullis/frame_length.h"
#include "memory_network.h"
#include "portcullis/asio.h"
#include "portcullis/auth_provider.h"

// The largest single allocation made while `gTrackAllocations` is set: shows that a refused
// length is refused before any buffer for it exists. Replacing the global operator new is
// allowed in a program and affects only the test binary that includes this file.
inline std::atomic<bool> gTrackAllocations{false};
inline std::atomic<std::size_t> gLargestAllocation{0};

void* operator new(std::size_t size) {
  if (gTrackAllocations.load(std::memory_order_relaxed)) {
    std::size_t seen = gLargestAllocation.load(std::memory_order_relaxed);
    while (size > seen && !gLargestAllocation.compare_exchange_weak(seen, size)) {
    }
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace portcullis::testing {

using namespace std::chrono_literals;

// Two memory adapters joined by one link; the test holds both ends' streams.
struct PipePair {
  explicit PipePair(MemoryLinkOptions options = {}) {
    dialerNet.start([this](std::unique_ptr<Stream> s, Side) { dialerEnd = std::move(s); });
    acceptorNet.start([this](std::unique_ptr<Stream> s, Side) { acceptorEnd = std::move(s); });
    link = connect(dialerNet, acceptorNet, options);
  }
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    return testing::runUntil(ctx, done, limit);
  }

  asio::io_context ctx;
  MemoryNetworkAdapter dialerNet{ctx.get_executor(), "dialer"};
  MemoryNetworkAdapter acceptorNet{ctx.get_executor(), "acceptor"};
  std::unique_ptr<Stream> dialerEnd;
  std::unique_ptr<Stream> acceptorEnd;
  std::shared_ptr<MemoryLink> link;
};

// A coroutine's outcome, filled in when it completes.
template <typename T>
struct Outcome {
  std::optional<T> value;
  std::exception_ptr error;
  bool done() const { return value.has_value() || error; }
};

template <typename T>
asio::awaitable<void> into(asio::awaitable<T> inner, std::shared_ptr<Outcome<T>> out) {
  T got = co_await std::move(inner);
  out->value.emplace(std::move(got));
}

// Starts `aw` on `ctx`; the outcome fills in as the context runs.
template <typename T>
std::shared_ptr<Outcome<T>> start(asio::io_context& ctx, asio::awaitable<T> aw) {
  auto out = std::make_shared<Outcome<T>>();
  asio::co_spawn(ctx, into(std::move(aw), out), [out](std::exception_ptr e) {
    if (e) out->error = e;
  });
  return out;
}

// Runs `aw` to completion (bounded).
template <typename T>
T await(PipePair& p, asio::awaitable<T> aw, std::chrono::milliseconds limit = 10s) {
  auto out = start(p.ctx, std::move(aw));
  p.runUntil([&] { return out->done(); }, limit);
  if (out->error) std::rethrow_exception(out->error);
  if (!out->value) throw std::runtime_error("awaitable did not complete within the limit");
  return std::move(*out->value);
}

// Starts `receive` while a frame's body has mostly not been sent, and expects it to wait holding
// the channel's first frame buffer (kFrameFirstChunk) and nothing larger: memory for what
// arrived, not for the length the peer announced. That the largest allocation is that buffer
// also shows that the tracker sees the channel's buffers.
inline std::shared_ptr<Outcome<Result<Bytes>>> startReceiveOfAPartFrame(
    PipePair& p, asio::awaitable<Result<Bytes>> receive) {
  gLargestAllocation = 0;
  auto pending = start(p.ctx, std::move(receive));
  gTrackAllocations = true;
  p.runUntil([] { return false; }, 20ms);
  gTrackAllocations = false;
  EXPECT_FALSE(pending->done()) << "most of the body has not been sent";
  EXPECT_GE(gLargestAllocation.load(), kFrameFirstChunk);
  EXPECT_LT(gLargestAllocation.load(), 2 * kFrameFirstChunk)
      << "memory for the announced length";
  return pending;
}

// Sends `frames` in order; stops at the first failure.
asio::awaitable<Result<void>> sendAll(MessageChannel& channel, std::vector<Bytes> frames) {
  for (const Bytes& f : frames) {
    auto sent = co_await channel.send(f);
    if (!sent) co_return sent;
  }
  co_return Result<void>();
}

// Receives `n` frames, or the first failure.
asio::awaitable<Result<std::vector<Bytes>>> receiveN(MessageChannel& channel, std::size_t n) {
  std::vector<Bytes> out;
  for (std::size_t i = 0; i < n; ++i) {
    auto got = co_await channel.receive();
    if (!got) co_return std::move(got).error();
    out.push_back(std::move(*got));
  }
  co_return out;
}

asio::awaitable<Result<void>> writeBytes(Stream& stream, Bytes bytes) {
  co_return co_await stream.write(bytes);
}

// Sends `frames` from `sender` while `receiver` reads them, concurrently; expects every frame
// to arrive whole and in order within `limit`.
inline void expectFramesArrive(PipePair& p, MessageChannel& sender, MessageChannel& receiver,
                               const std::vector<Bytes>& frames,
                               std::chrono::milliseconds limit = 10s) {
  auto sent = start(p.ctx, sendAll(sender, frames));
  auto got = start(p.ctx, receiveN(receiver, frames.size()));
  ASSERT_TRUE(p.runUntil([&] { return sent->done() && got->done(); }, limit));
  ASSERT_FALSE(sent->error);
  ASSERT_FALSE(got->error);
  ASSERT_TRUE(*sent->value) << sent->value->error().message();
  ASSERT_TRUE(*got->value) << got->value->error().message();
  const std::vector<Bytes>& received = **got->value;
  ASSERT_EQ(received.size(), frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(received[i].size(), frames[i].size()) << "frame " << i;
    EXPECT_TRUE(received[i] == frames[i]) << "frame " << i;
  }
}

}  // namespace portcullis::testing
