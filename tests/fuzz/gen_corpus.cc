// Writes the seed corpora of the team fuzz targets from the golden vectors
// (tests/data/team-vectors.json built into real links by tests/providers/team/vector_builder.h):
//
//   OUT/team_link/seed-*   one link each, in team_link_fuzz's framing: the first link of the
//                          vectors for each distinct verdict of decodeLink (an action accepted,
//                          known or unknown, or a reason for a drop)
//   OUT/team_batch/seed-*  one vector each, in team_batch_fuzz's framing, the smallest vectors
//                          first, split and flagged in turn (fresh store, existing team plus a
//                          hostile batch, one new link, tight limits)
//
// Both are kept small (at most kMaxFiles files and kMaxBytes bytes per folder): the fuzzer grows
// them in a scratch copy. Existing seed-* files are replaced; other files (regression inputs)
// are left alone.
//
// Usage: team_fuzz_gen_corpus VECTORS_JSON OUT_DIR
#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "team_fuzz_support.h"
#include "vector_builder.h"

namespace {

namespace fs = std::filesystem;
using namespace portcullis;
using namespace portcullis::team;

constexpr std::size_t kMaxFiles = 96;
constexpr std::size_t kMaxBytes = 180 * 1024;
constexpr std::size_t kMaxLinkSeedBytes = 4096;   // team_link_fuzz runs with -max_len=8192
constexpr std::size_t kMaxBatchSeedBytes = 16384;  // team_batch_fuzz runs with -max_len=32768
constexpr std::size_t kMaxSigners = 16;            // team_batch_fuzz reads no more

// The seed of each signing key a vector uses, and the key pair it makes.
struct Signers {
  std::vector<std::array<std::uint8_t, 32>> seeds;
  std::vector<fuzz::TestSigner> keys;
};

Signers signersOf(const vectors::BuiltVector& v) {
  Signers s;
  for (const auto& [name, key] : v.keyOf) {
    const auto pair = vectors::testKeyPair(name);
    std::array<std::uint8_t, 32> seed{};
    std::copy_n(pair.secretKey.begin(), seed.size(), seed.begin());
    s.seeds.push_back(seed);
    s.keys.push_back(fuzz::signerFromSeed(seed));
  }
  return s;
}

// The index in `s` of the key that signed (or should have signed) `body`, if a test key did.
std::optional<std::size_t> authorIndex(const Signers& s, ByteView body) {
  const fuzz::TestSigner* k = fuzz::authorIn(body, s.keys);
  if (k == nullptr) return std::nullopt;
  return static_cast<std::size_t>(k - s.keys.data());
}

// decodeLink's verdict on the link, and the action it was built with: one seed per pair.
std::string verdict(const vectors::BuiltLink& l, const Hash& teamId) {
  const std::string built = l.value ? actionName(typeOf(l.value->action)) : "later-version";
  auto d = decodeLink(l.message, teamId);
  if (!d) return built + " " + d.error().message();
  return built + " accepted" + (d->unknown ? " unknown" : "");
}

std::string fileSafe(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
  }
  return s.substr(0, 60);
}

std::string numbered(std::size_t i) {
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "seed-%03zu-", i);
  return prefix;
}

void write(const fs::path& file, const Bytes& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

void clearSeeds(const fs::path& dir) {
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().starts_with("seed-")) fs::remove(e.path());
  }
}

void linkCorpus(const std::vector<vectors::BuiltVector>& all, const fs::path& dir) {
  clearSeeds(dir);
  std::set<std::string> seen;
  std::size_t files = 0;
  std::size_t bytes = 0;
  for (const auto& v : all) {
    const Signers s = signersOf(v);
    for (const auto& l : v.links) {
      if (l.message.size() > kMaxLinkSeedBytes) continue;
      const std::string why = verdict(l, v.teamId);
      if (seen.contains(why)) continue;
      Bytes in;
      fuzz::putBytes(in, v.teamId);
      const auto author = authorIndex(s, l.body);
      const std::array<std::uint8_t, 32> none{};
      fuzz::putBytes(in, author ? s.seeds[*author] : none);
      fuzz::putBytes(in, l.message);
      if (files + 1 > kMaxFiles || bytes + in.size() > kMaxBytes) return;
      seen.insert(why);
      write(dir / (numbered(files) + fileSafe(why + "-" + v.name + "-" + l.id)), in);
      ++files;
      bytes += in.size();
    }
  }
}

Bytes batchInput(const vectors::BuiltVector& v, std::size_t turn) {
  const Signers s = signersOf(v);
  // The authors' seeds, most frequent first, as many as the target reads.
  std::map<std::size_t, std::size_t> uses;
  for (const auto& l : v.links) {
    if (auto a = authorIndex(s, l.body)) ++uses[*a];
  }
  std::vector<std::pair<std::size_t, std::size_t>> order(uses.begin(), uses.end());
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (order.size() > kMaxSigners) order.resize(kMaxSigners);

  const std::size_t n = v.links.size();
  std::uint8_t flags = 4;  // re-sign
  std::size_t split = 0;
  switch (turn % 4) {
    case 0: split = 0; flags |= (turn % 8 == 0) ? 8 : 0; break;   // a fresh store
    case 1: split = n / 2; flags |= 2; break;                      // a team, then a peer's half
    case 2: split = n > 0 ? n - 1 : 0; flags |= 2; break;          // a team, then one new link
    default:                                                       // tight limits: cap ≈ n / 2
      split = n / 2;
      flags |= 1 | static_cast<std::uint8_t>(std::min<std::size_t>(15, n / 8) << 4);
      break;
  }
  Bytes in;
  fuzz::putBytes(in, v.teamId);
  in.push_back(flags);
  in.push_back(static_cast<std::uint8_t>(std::min<std::size_t>(split, 255)));
  in.push_back(static_cast<std::uint8_t>(order.size()));
  for (const auto& [index, count] : order) fuzz::putBytes(in, s.seeds[index]);
  for (const auto& l : v.links) {
    fuzz::putU32(in, static_cast<std::uint32_t>(l.message.size()));
    fuzz::putBytes(in, l.message);
  }
  return in;
}

void batchCorpus(const std::vector<vectors::BuiltVector>& all, const fs::path& dir) {
  clearSeeds(dir);
  std::vector<std::pair<Bytes, std::string>> inputs;
  for (std::size_t i = 0; i < all.size(); ++i) {
    Bytes in = batchInput(all[i], i);
    if (in.size() <= kMaxBatchSeedBytes) inputs.emplace_back(std::move(in), all[i].name);
  }
  std::stable_sort(inputs.begin(), inputs.end(),
                   [](const auto& a, const auto& b) { return a.first.size() < b.first.size(); });
  std::size_t files = 0;
  std::size_t bytes = 0;
  for (const auto& [in, name] : inputs) {
    if (files + 1 > kMaxFiles || bytes + in.size() > kMaxBytes) break;
    write(dir / (numbered(files) + fileSafe(name)), in);
    ++files;
    bytes += in.size();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s VECTORS_JSON OUT_DIR\n", argv[0]);
    return 1;
  }
  try {
    std::ifstream file(argv[1]);
    const auto json = nlohmann::json::parse(file);
    std::vector<vectors::BuiltVector> all;
    for (const auto& v : json.at("vectors")) all.push_back(vectors::buildVector(v));
    linkCorpus(all, fs::path(argv[2]) / "team_link");
    batchCorpus(all, fs::path(argv[2]) / "team_batch");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
