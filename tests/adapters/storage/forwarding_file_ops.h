// forwarding_file_ops.h — a FileOps that passes every call on to another, for test wrappers that
// change one or two calls (skip an fsync, note the calling thread) and leave the rest alone.
//
// Test support for adapters/storage/fs. As thread-safe as the FileOps it forwards to.
#pragma once

#include <filesystem>

#include "fs_storage.h"

namespace portcullis::test {

// Not final, unlike an implementation: it exists to be derived from. `inner` must outlive it.
class ForwardingFileOps : public FileOps {
 public:
  explicit ForwardingFileOps(FileOps& inner) : inner_(inner) {}

  Result<void> writeFile(const std::filesystem::path& path, ByteView data) override {
    return inner_.writeFile(path, data);
  }
  Result<void> syncFile(const std::filesystem::path& path) override {
    return inner_.syncFile(path);
  }
  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    return inner_.rename(from, to);
  }
  Result<void> unlink(const std::filesystem::path& path) override { return inner_.unlink(path); }
  Result<void> makeDir(const std::filesystem::path& path) override { return inner_.makeDir(path); }
  Result<void> removeDir(const std::filesystem::path& path) override {
    return inner_.removeDir(path);
  }
  Result<void> syncDir(const std::filesystem::path& path) override { return inner_.syncDir(path); }

 private:
  FileOps& inner_;
};

}  // namespace portcullis::test
