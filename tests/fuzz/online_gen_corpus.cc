// online_fuzz_gen_corpus FOLDER — writes the online_wire target's seeds (online_wire_fuzz.cc's
// input framing: a flags byte, then the bytes) from real encodings made with fixed keys: every
// message kind, signed certificates and revocation lists, and their bodies for flags 1 and 2.
#include <sodium.h>

#include <capnp/message.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "certificate.h"
#include "online.capnp.h"

namespace {

using namespace portcullis;

void write(const std::filesystem::path& folder, const std::string& name, std::uint8_t flags,
           ByteView bytes) {
  std::ofstream out(folder / ("seed-" + name), std::ios::binary | std::ios::trunc);
  out.put(static_cast<char>(flags));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// The body inside a Signed envelope.
Bytes bodyOf(const Bytes& signedBytes) {
  auto words = kj::heapArray<capnp::word>(signedBytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), signedBytes.data(), signedBytes.size());
  const kj::ArrayPtr<const capnp::word> segment = words.asPtr();
  capnp::SegmentArrayMessageReader message(kj::arrayPtr(&segment, 1));
  const auto body = message.getRoot<online::wire::Signed>().getBody();
  return Bytes(body.begin(), body.end());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || sodium_init() < 0) {
    std::fprintf(stderr, "usage: online_fuzz_gen_corpus FOLDER\n");
    return 2;
  }
  const std::filesystem::path folder = argv[1];
  std::filesystem::create_directories(folder);
  const DeviceKey service = DeviceKey::fromSeed(Bytes(32, 0x11)).value();  // the target's key
  const DeviceKey device = DeviceKey::fromSeed(Bytes(32, 0x33)).value();
  const online::Certificate c{.appId = "com.example.notes",
                              .peerKey = device.publicKey().bytes(),
                              .userId = "alice@example.com",
                              .roles = {"editor", "viewer"},
                              .permissions = {.read = {"*"},
                                              .write = {DocumentId::fromBytes(Bytes(16, 5))
                                                            .value()
                                                            .toString()}},
                              .issuedAt = 1'800'000'000,
                              .expiresAt = 1'800'003'600,
                              .serial = 42};
  const online::Revocations r{.appId = "com.example.notes", .sequence = 3, .issuedAt = 1'800'000'100,
                              .serials = {7, 42, 1000}};
  const Bytes cert = online::signCertificate(c, service);
  const Bytes list = online::signRevocations(r, service);
  write(folder, "certificate", 0, cert);
  write(folder, "revocations", 0, list);
  write(folder, "hello-peer", 0, online::encodeHello({.body = cert, .revocations = list}));
  write(folder, "hello-login", 0,
        online::encodeHello({.body = online::Login{.provider = "corp", .token = Bytes(64, 'e')},
                             .revocations = std::nullopt}));
  write(folder, "answer-issued", 0,
        online::encodeLoginAnswer({.body = cert, .clientInfo = "{\"plan\":\"pro\"}"}));
  write(folder, "answer-refused", 0,
        online::encodeLoginAnswer({.body = std::string("login provider 'corp' did not accept "
                                                       "the token"),
                                   .clientInfo = std::nullopt}));
  write(folder, "notice", 0, online::encodeNotice({.revocations = list}));
  write(folder, "certificate-body", 1, bodyOf(cert));
  write(folder, "revocations-body", 2, bodyOf(list));
  write(folder, "untrusted-body", 3, bodyOf(cert));
  return 0;
}
