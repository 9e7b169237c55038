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

#include "channel_test_support.h"
#include "memory_network.h"
#include "portcullis/asio.h"
#include "portcullis/auth_provider.h"

namespace portcullis {
namespace {

using namespace std::chrono_literals;
using namespace portcullis::testing;


Bytes pattern(std::size_t size, std::uint8_t salt) {
  Bytes out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::uint8_t>(i * 131 + salt);
  return out;
}

// The framed channel keeps MessageChannel's default sendMany: the frames one by one, in order, and
// the first failure ends it.
TEST(FramedChannel, SendManySendsEachFrameInOrderAndStopsAtTheFirstFailure) {
  PipePair p;
  auto sender = makeFramedChannel(std::move(p.dialerEnd), 100);
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd));
  const Bytes a = pattern(3, 1), b = pattern(0, 2), c = pattern(100, 3), tooLarge = pattern(101, 4);
  const std::vector<ByteView> frames{a, b, c};
  ASSERT_TRUE(await(p, sender->sendMany(frames)));
  auto got = await(p, receiveN(*receiver, 3));
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, (std::vector<Bytes>{a, b, c}));
  const std::size_t before = p.link->bytesFromDialer().size();
  const std::vector<ByteView> failing{a, tooLarge, c};
  auto refused = await(p, sender->sendMany(failing));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), Errc::Overloaded);
  EXPECT_EQ(p.link->bytesFromDialer().size(), before + 4 + a.size()) << "c was sent after the failure";
}

TEST(FramedChannel, FramesOfEverySizeArriveWholeAndInOrder) {
  PipePair p;
  ASSERT_TRUE(p.dialerEnd && p.acceptorEnd);
  auto sender = makeFramedChannel(std::move(p.dialerEnd));
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd));
  // Around the receive buffer's first size and its doublings too.
  constexpr std::size_t kChunk = kFrameFirstChunk;
  const std::vector<Bytes> frames = {pattern(0, 1),              pattern(1, 2),
                                     pattern(4096, 3),           pattern(kChunk - 1, 7),
                                     pattern(kChunk, 8),         pattern(kChunk + 1, 9),
                                     pattern(2 * kChunk + 1, 10), pattern(1u << 20, 4),
                                     pattern(0, 5),              pattern(3, 6)};

  // Concurrently: a 1 MiB frame does not fit the pipe's buffer, so the sender waits for the reader.
  expectFramesArrive(p, *sender, *receiver, frames);
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

// A peer that announces a large frame and sends little of it holds memory for what it sent: the
// buffer starts at kFrameFirstChunk and doubles as the body arrives.
TEST(FramedChannel, AnAnnouncedFrameHoldsMemoryForTheBytesThatArriveNotForItsLength) {
  PipePair p;
  auto receiver = makeFramedChannel(std::move(p.acceptorEnd), 4u << 20);
  const Bytes body = pattern(2u << 20, 7);
  Bytes head{0x00, 0x20, 0x00, 0x00};  // 2 MiB
  head.insert(head.end(), body.begin(), body.begin() + 1000);
  auto written = await(p, writeBytes(*p.dialerEnd, head));
  ASSERT_TRUE(written) << written.error().message();

  auto pending = startReceiveOfAPartFrame(p, receiver->receive());

  // The rest arrives in pieces that cross the buffer's growth steps, and the frame is whole.
  for (std::size_t at = 1000; at < body.size(); at += 300'000) {
    const std::size_t end = std::min(body.size(), at + 300'000);
    written = await(p, writeBytes(*p.dialerEnd, Bytes(body.begin() + static_cast<std::ptrdiff_t>(at),
                                                      body.begin() + static_cast<std::ptrdiff_t>(end))));
    ASSERT_TRUE(written) << written.error().message();
  }
  ASSERT_TRUE(p.runUntil([&] { return pending->done(); }, 5s));
  ASSERT_FALSE(pending->error);
  ASSERT_TRUE(pending->value->has_value()) << pending->value->error().message();
  EXPECT_TRUE(**pending->value == body);
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
