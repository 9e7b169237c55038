// tests/fuzz/fs_storage_input.h — fs_storage_fuzz's input framing: a data directory as a list of
// entries, which the target creates in a fresh temporary folder and the corpus generator
// (core_gen_corpus.cc) writes from the folders a real Repo left on disk.
//
// Input: flags (1 byte: bit 0, FsStorageOptions::maxChunkSize is kSmallChunk instead of the
// default) ‖ entries, at most kMaxEntries, each:
//   u8 kind (mod 4): 0 a regular file, 1 a directory, 2 a symlink, 3 a FIFO
//   u8 length and that many bytes: the path, relative to the store's root, '/'-separated
//   a file: u32 little-endian length and that many bytes (what is left if fewer)
//   a symlink: u8 length and that many bytes: its target
// A path (or symlink target) is used only if every component is non-empty, not "." or "..",
// without NUL, at most kMaxComponent bytes, and there are at most kMaxComponents of them; so
// nothing is ever made outside the folder, and a symlink points inside it (or nowhere). Missing
// parent directories are made; an entry whose path or a parent of it already exists as something
// else is skipped, so nothing is ever made beneath a symlink.
//
// Test support only. Single-threaded.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core_fuzz_support.h"

namespace portcullis::fuzz::fsinput {

namespace fs = std::filesystem;

enum Kind : std::uint8_t { kFile = 0, kDir = 1, kSymlink = 2, kFifo = 3 };
inline constexpr std::uint8_t kSmallChunks = 0x01;
inline constexpr std::uint64_t kSmallChunk = 1000;
inline constexpr std::size_t kMaxEntries = 96;
inline constexpr std::size_t kMaxComponents = 10;
inline constexpr std::size_t kMaxComponent = 100;

// The components of a relative path, or nothing when it is not one the target may use.
inline std::optional<std::vector<std::string>> components(std::string_view path) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= path.size()) {
    std::size_t end = path.find('/', at);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view c = path.substr(at, end - at);
    if (!c.empty()) {
      if (c == "." || c == ".." || c.size() > kMaxComponent ||
          c.find('\0') != std::string_view::npos) {
        return std::nullopt;
      }
      out.emplace_back(c);
    }
    at = end + 1;
  }
  if (out.empty() || out.size() > kMaxComponents) return std::nullopt;
  return out;
}

inline std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

// --- for the generator ---------------------------------------------------------------------------

inline void putEntry(Bytes& out, Kind kind, const std::string& path, ByteView content = {}) {
  out.push_back(kind);
  out.push_back(static_cast<std::uint8_t>(path.size()));
  putBytes(out, viewOf(path));
  if (kind == kFile) {
    putU32(out, static_cast<std::uint32_t>(content.size()));
    putBytes(out, content);
  } else if (kind == kSymlink) {
    out.push_back(static_cast<std::uint8_t>(content.size()));
    putBytes(out, content);
  }
}

// Every entry below `root` (directories before what they hold, names in order), as records.
inline Bytes entriesOf(const fs::path& root) {
  std::vector<fs::path> paths;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());
  Bytes out;
  for (const fs::path& p : paths) {
    const std::string rel = p.lexically_relative(root).string();
    const auto status = fs::symlink_status(p);
    if (fs::is_symlink(status)) {
      putEntry(out, kSymlink, rel, viewOf(fs::read_symlink(p).string()));
    } else if (fs::is_directory(status)) {
      putEntry(out, kDir, rel);
    } else if (fs::is_regular_file(status)) {
      std::ifstream in(p, std::ios::binary);
      const Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      putEntry(out, kFile, rel, data);
    }
  }
  return out;
}

}  // namespace portcullis::fuzz::fsinput
