// The plaintext framed channel (makeFramedChannel in portcullis/auth_provider.h): a u32
// big-endian length and that many bytes per frame, over a pair of memory pipes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <vector>

#include "../repo/repo_harness.h"
#include "memory_network.h"
#include "portcullis/asio.h"
#include "portcullis/auth_provider.h"

// The largest single allocation made while `gTrackAllocations` is set: shows that a refused
// length is refused before any buffer for it exists. Replacing the global operator new is
// allowed in a program and affects only this test binary.
namespace {
std::atomic<bool> gTrackAllocations{false};
std::atomic<std::size_t> gLargestAllocation{0};
}  // namespace

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

namespace portcullis {
namespace {

using namespace std::chrono_literals;

// Two memory adapters joined by one link; the test holds both ends' streams.
struct PipePair {
  PipePair() {
    dialerNet.start([this](std::unique_ptr<Stream> s, Side) { dialerEnd = std::move(s); });
    acceptorNet.start([this](std::unique_ptr<Stream> s, Side) { acceptorEnd = std::move(s); });
    link = connect(dialerNet, acceptorNet);
  }

  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
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
T await(PipePair& p, asio::awaitable<T> aw, std::chrono::milliseconds limit = 5s) {
  auto out = start(p.ctx, std::move(aw));
  p.runUntil([&] { return out->done(); }, limit);
  if (out->error) std::rethrow_exception(out->error);
  if (!out->value) throw std::runtime_error("awaitable did not complete within the limit");
  return std::move(*out->value);
}

Bytes pattern(std::size_t size, std::uint8_t salt) {
  Bytes out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::uint8_t>(i * 131 + salt);
  return out;
}

asio::awaitable<Result<void>> sendAll(MessageChannel& channel, std::vector<Bytes> frames) {
  for (const Bytes& f : frames) {
    auto sent = co_await channel.send(f);
    if (!sent) co_return sent;
  }
  co_return Result<void>();
}

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

TEST(FramedChannel, FramesOfEverySizeArriveWholeAndInOrder) {
  PipePair p;
  ASSERT_TRUE(p.dialerEnd && p.acceptorEnd);
  auto sender = makeFramedChannel(std::move(p.dialerEnd));
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd));
  const std::vector<Bytes> frames = {pattern(0, 1),    pattern(1, 2), pattern(4096, 3),
                                     pattern(1u << 20, 4), pattern(0, 5), pattern(3, 6)};

  // Concurrently: a 1 MiB frame does not fit the pipe's buffer, so the sender waits for the reader.
  auto sent = start(p.ctx, sendAll(*sender, frames));
  auto got = start(p.ctx, receiveN(*receiver, frames.size()));
  ASSERT_TRUE(p.runUntil([&] { return sent->done() && got->done(); }, 10s));
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

TEST(FramedChannel, WritesABigEndianLengthBeforeEachFrame) {
  PipePair p;
  auto sender = makeFramedChannel(std::move(p.dialerEnd));
  auto sent = await(p, sendAll(*sender, {Bytes{0xaa, 0xbb, 0xcc}, pattern(0x0102, 0)}));
  ASSERT_TRUE(sent) << sent.error().message();
  const auto& wire = p.link->bytesFromDialer();
  ASSERT_EQ(wire.size(), 4u + 3u + 4u + 0x0102u);
  EXPECT_EQ(std::vector<std::uint8_t>(wire.begin(), wire.begin() + 7),
            (std::vector<std::uint8_t>{0, 0, 0, 3, 0xaa, 0xbb, 0xcc}));
  EXPECT_EQ(std::vector<std::uint8_t>(wire.begin() + 7, wire.begin() + 11),
            (std::vector<std::uint8_t>{0, 0, 0x01, 0x02}));
}

TEST(FramedChannel, AFrameAtTheLimitIsAcceptedAndOneByteMoreIsRefused) {
  PipePair p;
  auto sender = makeFramedChannel(std::move(p.dialerEnd), 1 << 20);
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd), 1024);
  auto sent = await(p, sendAll(*sender, {pattern(1024, 1), pattern(1025, 2)}));
  ASSERT_TRUE(sent) << sent.error().message();
  auto first = await(p, receiver->receive());
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(*first, pattern(1024, 1));
  auto second = await(p, receiver->receive());
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), Errc::Overloaded) << second.error().message();
}

TEST(FramedChannel, AnAnnouncedLengthOverTheLimitFailsOverloadedBeforeAllocating) {
  PipePair p;
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd), 1024);
  // 4 GiB - 1 announced, and no body: the refusal must not wait for it, nor allocate for it.
  auto written = await(p, writeBytes(*p.dialerEnd, Bytes{0xff, 0xff, 0xff, 0xff}));
  ASSERT_TRUE(written) << written.error().message();

  gLargestAllocation = 0;
  auto pending = start(p.ctx, receiver->receive());
  gTrackAllocations = true;
  const bool finished = p.runUntil([&] { return pending->done(); }, 2s);
  gTrackAllocations = false;
  ASSERT_TRUE(finished) << "receive() waited for a body it should have refused";
  ASSERT_FALSE(pending->error);
  ASSERT_FALSE(pending->value->has_value());
  EXPECT_EQ(pending->value->error().code(), Errc::Overloaded)
      << pending->value->error().message();
  EXPECT_LT(gLargestAllocation.load(), std::size_t{1} << 20)
      << "something allocated for the announced length";
}

// A control for the test above: the tracker does see the buffer of a length under the limit.
TEST(FramedChannel, AnAnnouncedLengthUnderTheLimitIsAllocatedBeforeTheBodyArrives) {
  PipePair p;
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd), 4u << 20);
  auto written = await(p, writeBytes(*p.dialerEnd, Bytes{0x00, 0x20, 0x00, 0x00}));
  ASSERT_TRUE(written) << written.error().message();

  gLargestAllocation = 0;
  auto pending = start(p.ctx, receiver->receive());
  gTrackAllocations = true;
  p.runUntil([] { return false; }, 20ms);
  gTrackAllocations = false;
  EXPECT_FALSE(pending->done()) << "the body has not been sent";
  EXPECT_GE(gLargestAllocation.load(), std::size_t{2} << 20);
  p.link->cut();
  ASSERT_TRUE(p.runUntil([&] { return pending->done(); }, 2s));
}

TEST(FramedChannel, AStreamCutInTheMiddleOfAFrameFailsDisconnected) {
  PipePair p;
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd));
  Bytes partial{0, 0, 0, 100};
  const Bytes half = pattern(50, 9);
  partial.insert(partial.end(), half.begin(), half.end());
  auto written = await(p, writeBytes(*p.dialerEnd, partial));
  ASSERT_TRUE(written) << written.error().message();

  auto pending = start(p.ctx, receiver->receive());
  p.runUntil([] { return false; }, 50ms);
  ASSERT_FALSE(pending->done()) << "receive() returned with half a frame";
  p.link->cut();
  ASSERT_TRUE(p.runUntil([&] { return pending->done(); }, 2s));
  ASSERT_FALSE(pending->error);
  ASSERT_FALSE(pending->value->has_value());
  EXPECT_EQ(pending->value->error().code(), Errc::Disconnected)
      << pending->value->error().message();
}

TEST(FramedChannel, AStreamCutInTheMiddleOfTheLengthFailsDisconnected) {
  PipePair p;
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd));
  auto written = await(p, writeBytes(*p.dialerEnd, Bytes{0, 0}));
  ASSERT_TRUE(written) << written.error().message();
  auto pending = start(p.ctx, receiver->receive());
  p.runUntil([] { return false; }, 20ms);
  ASSERT_FALSE(pending->done());
  p.dialerEnd->close();
  ASSERT_TRUE(p.runUntil([&] { return pending->done(); }, 2s));
  ASSERT_FALSE(pending->error);
  ASSERT_FALSE(pending->value->has_value());
  EXPECT_EQ(pending->value->error().code(), Errc::Disconnected);
}

TEST(FramedChannel, ReceiveFailsDisconnectedAtTheEndOfTheStream) {
  PipePair p;
  auto sender = makeFramedChannel(std::move(p.dialerEnd));
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd));
  auto sent = await(p, sendAll(*sender, {Bytes{1}}));
  ASSERT_TRUE(sent);
  auto first = await(p, receiver->receive());
  ASSERT_TRUE(first);
  sender->close();
  auto end = await(p, receiver->receive());
  ASSERT_FALSE(end.has_value());
  EXPECT_EQ(end.error().code(), Errc::Disconnected);
}

TEST(FramedChannel, SendingAFrameOverTheLimitFailsOverloadedAndWritesNothing) {
  PipePair p;
  auto sender = makeFramedChannel(std::move(p.dialerEnd), 1024);
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd), 1 << 20);
  auto refused = await(p, sender->send(pattern(1025, 0)));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), Errc::Overloaded);
  EXPECT_TRUE(p.link->bytesFromDialer().empty());

  // The channel is still usable: the next frame is the first the peer sees.
  auto sent = await(p, sender->send(pattern(1024, 1)));
  ASSERT_TRUE(sent) << sent.error().message();
  auto got = await(p, receiver->receive());
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, pattern(1024, 1));
}

TEST(FramedChannel, CloseIsIdempotentAndLaterSendsFail) {
  PipePair p;
  auto sender = makeFramedChannel(std::move(p.dialerEnd));
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd));
  sender->close();
  sender->close();
  auto sent = await(p, sender->send(Bytes{1, 2, 3}));
  ASSERT_FALSE(sent.has_value());
  EXPECT_EQ(sent.error().code(), Errc::Disconnected);
  auto empty = await(p, sender->send(Bytes{}));
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code(), Errc::Disconnected);
  auto mine = await(p, sender->receive());
  ASSERT_FALSE(mine.has_value());
  EXPECT_EQ(mine.error().code(), Errc::Disconnected);
  auto theirs = await(p, receiver->receive());
  ASSERT_FALSE(theirs.has_value());
  EXPECT_EQ(theirs.error().code(), Errc::Disconnected);
  EXPECT_FALSE(p.link->isOpen());
  receiver->close();
  receiver->close();
}

TEST(FramedChannel, ClosingWakesAPendingReceive) {
  PipePair p;
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd));
  auto pending = start(p.ctx, receiver->receive());
  p.runUntil([] { return false; }, 20ms);
  ASSERT_FALSE(pending->done());
  receiver->close();
  ASSERT_TRUE(p.runUntil([&] { return pending->done(); }, 2s));
  ASSERT_FALSE(pending->error);
  ASSERT_FALSE(pending->value->has_value());
  EXPECT_EQ(pending->value->error().code(), Errc::Disconnected);
}

}  // namespace
}  // namespace portcullis
