// Fuzz target: box-stream receive (portcullis/secret_handshake.h: makeBoxStreamChannel's receive
// and the BoxStreamDecoder under it), with fixed session keys, so that every input gets past the
// handshake to the packets.
//
// Input: flags (1 byte: bits 0-1 the frame limit, 5000 B, 64 KiB, 200 KiB or the default 16 MiB)
// ‖ a chunk seed (1 byte, ChunkSizer) ‖ box-stream records (core_fuzz_support.h's
// writeBoxRecords: packets, frames as the channel sends them, length packets, goodbyes, junk,
// tampered and truncated packets, headers without a body), sealed with the receiver's key and
// nonce sequence by the target's own writer.
//
// Invariants, beyond "no crash, no leak, no hang":
//   * receive never throws and returns exactly the frames referenceBoxReceive (the spec's reading,
//     written apart from lib/src/crypto) finds in the same bytes, however the stream cuts its
//     reads; then the same error (Malformed for anything that does not open or breaks the framing,
//     Overloaded for a length over the limit, Disconnected for the goodbye or the end of the
//     bytes), and that error again on every later receive;
//   * receiving writes nothing;
//   * the received frames sent back through a channel with the other direction's keys come out of
//     the reference reader as the same frames, followed by the end of the stream (close() writes
//     no goodbye).
#include <string>

#include "core_fuzz_support.h"

namespace portcullis::fuzz {
namespace {

constexpr const char* kTarget = "box_stream_fuzz";

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

std::size_t limitOf(std::uint8_t flags) {
  static constexpr std::size_t kLimits[] = {5000, 64u << 10, 200u << 10, kDefaultMaxFrameBytes};
  return kLimits[flags & 3];
}

// The two directions: nonces end in 0xFF bytes so that the counter's carry is exercised.
BoxKeys incoming() {
  BoxKeys k;
  k.key.fill(0x61);
  k.nonce.fill(0x00);
  k.nonce[21] = 0xFF;
  k.nonce[22] = 0xFF;
  k.nonce[23] = 0xF0;
  return k;
}
BoxKeys outgoing() {
  BoxKeys k;
  k.key.fill(0x62);
  k.nonce.fill(0xFF);
  k.nonce[0] = 0x01;
  return k;
}

ShsSession session() {
  ShsSession s{.encryptKey = {},
               .encryptNonce = outgoing().nonce,
               .decryptKey = {},
               .decryptNonce = incoming().nonce,
               .remotePublicKey = *PublicKey::fromBytes(shsKeys().client.pk)};
  std::copy_n(outgoing().key.begin(), 32, s.encryptKey.data());
  std::copy_n(incoming().key.begin(), 32, s.decryptKey.data());
  return s;
}

void run(ByteView input) {
  Reader r(input);
  const std::size_t limit = limitOf(r.byte());
  const std::uint8_t chunks = r.byte();
  BoxWriter writer(incoming());
  writeBoxRecords(r, writer);
  const Bytes& wire = writer.wire();
  const BoxReceived expected = referenceBoxReceive(wire, incoming(), limit);

  asio::io_context ctx;
  auto script = std::make_shared<Script>();
  script->sizer = ChunkSizer(chunks);
  script->next = sendOnce(wire);
  auto channel = makeBoxStreamChannel(std::make_unique<ScriptedStream>(script), session(), limit);
  const ChannelReceived got = receiveAll(ctx, *channel, expected.frames.size(), true);
  check(got.finished, "a receive did not complete on a stream that never waits");
  check(got.frames == expected.frames, "receive returned other frames than the reference reader");
  check(got.end.has_value() && got.end->code() == expected.end,
        "receive ended with another error than the reference reader");
  check(got.sticky, "a receive after a failure did not fail the same way");
  check(script->written.empty(), "receiving wrote to the stream");

  std::vector<ByteView> views(got.frames.begin(), got.frames.end());
  auto sent = runToEnd(ctx, channel->sendMany(views));
  check(sent.has_value() && sent->has_value(), "sending the received frames failed");
  channel->close();
  const BoxReceived echoed = referenceBoxReceive(script->written, outgoing(), SIZE_MAX);
  check(echoed.frames == got.frames && echoed.end == Errc::Disconnected,
        "the frames sent do not read back as the same frames");
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (sodium_init() < 0) portcullis::fuzz::fail("box_stream_fuzz", "sodium_init failed");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("box_stream_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
