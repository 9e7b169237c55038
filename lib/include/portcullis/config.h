// portcullis/config.h — a deployment's TOML config file, read once at start-up (architecture §8).
//
// Every error names the file, the line and the key ("node.toml:7: auth.shared-key.deny: expected
// an array of strings"), so that a person can fix it without reading code. Unknown keys are
// errors too: a misspelt key would otherwise be a setting silently ignored.
//
// A `ConfigTable` is one table of the file (the root, `[network]`, `[auth.shared-key]`, ...).
// Providers get their own table at `AuthProviderFactory::create` and check it there, once.
//
// Immutable values; safe to copy and share between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/export.h"
#include "portcullis/result.h"

namespace portcullis {

class PORTCULLIS_EXPORT ConfigTable {
 public:
  // An empty root table of no file (a client run without --config).
  ConfigTable();

  // The dotted name of this table ("auth.open"; empty for the root) and the file it came from.
  const std::string& name() const;
  const std::filesystem::path& file() const;

  bool contains(std::string_view key) const;
  // The table's keys, sorted: for tables whose keys are names the user chooses (the
  // online provider's roles).
  std::vector<std::string> keys() const;
  // Fails on the first key that is not in `known`, naming its line.
  Result<void> expectKeys(std::initializer_list<std::string_view> known) const;

  // Typed values. Absent keys give nullopt (or an empty list); a value of another type is an
  // Errc::Config error naming the key.
  Result<std::optional<std::string>> string(std::string_view key) const;
  Result<std::string> requiredString(std::string_view key) const;
  Result<std::vector<std::string>> strings(std::string_view key) const;
  Result<std::optional<std::int64_t>> integer(std::string_view key) const;
  Result<std::optional<bool>> boolean(std::string_view key) const;
  // A string naming a file or folder; a relative one is taken from the config file's folder, so
  // that a deployment reads the same files whatever the working directory.
  Result<std::optional<std::filesystem::path>> path(std::string_view key) const;
  // A sub-table; an empty one (named, of the same file) when absent.
  Result<ConfigTable> table(std::string_view key) const;

  // An Errc::Config error about `key` (or, for an empty key, the table), naming the file and the
  // line: for checks only the caller can make ("network-key: expected 32 bytes").
  Error error(std::string_view key, std::string_view message) const;
  // The same about element `index` (from 0) of the array `key`, with that element's line
  // ("node.toml:4: network.connect[1]: ..."); the array's line if it has no such element.
  Error error(std::string_view key, std::size_t index, std::string_view message) const;

  struct State;

 private:
  friend Result<ConfigTable> parseConfig(std::string_view, const std::filesystem::path&);
  explicit ConfigTable(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  std::shared_ptr<const State> state_;
};

// Reads and parses `file`. Errc::Config for a missing or unreadable file and for TOML syntax
// errors, with the file and line.
PORTCULLIS_EXPORT Result<ConfigTable> loadConfigFile(const std::filesystem::path& file);

// Parses `text` as if read from `file` (for tests and for configs built in memory).
PORTCULLIS_EXPORT Result<ConfigTable> parseConfig(std::string_view text,
                                                  const std::filesystem::path& file);

}  // namespace portcullis
