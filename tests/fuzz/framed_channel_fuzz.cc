// Fuzz target: the plaintext framed channel's receive (lib/src/net/framed_channel.cc,
// makeFramedChannel): a u32 big-endian length and that many bytes per frame, from a peer.
//
// Input: flags (1 byte: bits 0-1 the frame limit, 16 B, 4 KiB, 200 KiB or the default 16 MiB)
// ‖ a chunk seed (1 byte: how the stream cuts its reads, ChunkSizer) ‖ the peer's bytes.
//
// Invariants, beyond "no crash, no leak, no hang":
//   * receive never throws, and returns exactly the frames a reference reader of the same bytes
//     finds, in order, however the stream cuts its reads; then fails Overloaded where a length
//     over the limit is announced (before anything is allocated for it) and Disconnected where
//     the bytes end (a frame cut short is never delivered);
//   * sending the frames received through a second channel writes exactly length ‖ frame for
//     each, and a frame over the limit is refused as Overloaded with nothing written.
#include <string>

#include "core_fuzz_support.h"
#include "portcullis/auth_provider.h"

namespace portcullis::fuzz {
namespace {

constexpr const char* kTarget = "framed_channel_fuzz";

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

std::size_t limitOf(std::uint8_t flags) {
  static constexpr std::size_t kLimits[] = {16, 4096, 200u << 10, kDefaultMaxFrameBytes};
  return kLimits[flags & 3];
}

struct Expected {
  std::vector<Bytes> frames;
  Errc end = Errc::Disconnected;
};
Expected reference(ByteView wire, std::size_t limit) {
  Expected out;
  while (wire.size() >= kFrameLengthBytes) {
    const std::size_t n = decodeFrameLength(wire.first<kFrameLengthBytes>());
    if (n > limit) {
      out.end = Errc::Overloaded;
      return out;
    }
    if (wire.size() - kFrameLengthBytes < n) break;
    out.frames.emplace_back(wire.begin() + kFrameLengthBytes, wire.begin() + kFrameLengthBytes + n);
    wire = wire.subspan(kFrameLengthBytes + n);
  }
  return out;
}

void run(ByteView input) {
  Reader r(input);
  const std::size_t limit = limitOf(r.byte());
  const std::uint8_t chunks = r.byte();
  const ByteView wire = r.rest();
  const Expected expected = reference(wire, limit);

  asio::io_context ctx;
  auto script = std::make_shared<Script>();
  script->sizer = ChunkSizer(chunks);
  script->next = sendOnce(Bytes(wire.begin(), wire.end()));
  auto channel = makeFramedChannel(std::make_unique<ScriptedStream>(script), limit);
  // Not sticky: after an error the caller closes the channel, so only the first one counts.
  const ChannelReceived got = receiveAll(ctx, *channel, expected.frames.size(), false);
  check(got.finished, "a receive did not complete on a stream that never waits");
  check(got.frames == expected.frames, "receive returned other frames than the reference reader");
  check(got.end.has_value() && got.end->code() == expected.end,
        "receive ended with another error than the reference reader");
  check(script->written.empty(), "receiving wrote to the stream");

  // The frames back out through a second channel.
  auto sink = std::make_shared<Script>();
  auto sender = makeFramedChannel(std::make_unique<ScriptedStream>(sink), limit);
  Bytes expectedWire;
  for (const Bytes& f : got.frames) {
    const auto length = encodeFrameLength(static_cast<std::uint32_t>(f.size()));
    putBytes(expectedWire, length);
    putBytes(expectedWire, f);
  }
  std::vector<ByteView> views(got.frames.begin(), got.frames.end());
  auto sent = runToEnd(ctx, sender->sendMany(views));
  check(sent.has_value() && sent->has_value(), "sending the received frames failed");
  check(sink->written == expectedWire, "send does not write length ‖ frame for each frame");
  if (limit < 4096) {
    const Bytes tooLarge(limit + 1, 0x5A);
    auto refused = runToEnd(ctx, sender->send(tooLarge));
    check(refused.has_value() && !*refused && (*refused).error().code() == Errc::Overloaded,
          "a frame over the limit is not refused as Overloaded");
    check(sink->written == expectedWire, "a refused frame wrote bytes");
  }
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) { return 0; }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("framed_channel_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
