// config.cc — ConfigTable over toml++, which stays inside this file (the public header names no
// TOML type, so that providers and applications do not depend on it).

#include "portcullis/config.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <system_error>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "config/toml_guard.h"

namespace portcullis {

struct ConfigTable::State {
  std::shared_ptr<const toml::table> root;  // keeps `table` alive
  const toml::table* table = nullptr;
  std::string name;
  std::filesystem::path file;
  std::uint32_t line = 0;  // where the table starts; 0 if it is absent from the file
};

namespace {

std::string dotted(const std::string& table, std::string_view key) {
  if (table.empty()) return std::string(key);
  if (key.empty()) return table;
  return table + "." + std::string(key);
}

std::string_view typeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

}  // namespace

ConfigTable::ConfigTable() {
  auto state = std::make_shared<State>();
  auto root = std::make_shared<const toml::table>();
  state->table = root.get();
  state->root = std::move(root);
  state_ = std::move(state);
}

const std::string& ConfigTable::name() const { return state_->name; }
const std::filesystem::path& ConfigTable::file() const { return state_->file; }

bool ConfigTable::contains(std::string_view key) const { return state_->table->contains(key); }

std::vector<std::string> ConfigTable::keys() const {
  std::vector<std::string> out;
  for (const auto& [key, node] : *state_->table) out.emplace_back(key.str());
  return out;
}

namespace {

Error errorAt(const std::filesystem::path& file, std::uint32_t line, const std::string& subject,
              std::string_view message) {
  std::string where = file.empty() ? std::string("(no config file)") : file.string();
  if (line != 0) where += fmt::format(":{}", line);
  return Error(Errc::Config, subject.empty() ? fmt::format("{}: {}", where, message)
                                             : fmt::format("{}: {}: {}", where, subject, message));
}

}  // namespace

Error ConfigTable::error(std::string_view key, std::string_view message) const {
  std::uint32_t line = state_->line;
  if (const toml::node* node = key.empty() ? nullptr : state_->table->get(key)) {
    line = node->source().begin.line;
  }
  return errorAt(state_->file, line, dotted(state_->name, key), message);
}

Error ConfigTable::error(std::string_view key, std::size_t index, std::string_view message) const {
  std::uint32_t line = state_->line;
  if (const toml::node* node = state_->table->get(key)) {
    line = node->source().begin.line;
    if (const auto* array = node->as_array(); array != nullptr && index < array->size()) {
      line = (*array)[index].source().begin.line;
    }
  }
  return errorAt(state_->file, line, fmt::format("{}[{}]", dotted(state_->name, key), index),
                 message);
}

Result<void> ConfigTable::expectKeys(std::initializer_list<std::string_view> known) const {
  for (const auto& [key, node] : *state_->table) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || k == key.str();
    if (!ok) {
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return error(key.str(), list.empty() ? std::string("unknown key (this table takes none)")
                                           : "unknown key (expected one of: " + list + ")");
    }
  }
  return {};
}

Result<std::optional<std::string>> ConfigTable::string(std::string_view key) const {
  const toml::node* node = state_->table->get(key);
  if (node == nullptr) return std::optional<std::string>();
  if (const auto* s = node->as_string()) return std::optional<std::string>(s->get());
  return error(key, fmt::format("expected a string, found {}", typeName(*node)));
}

Result<std::string> ConfigTable::requiredString(std::string_view key) const {
  auto value = string(key);
  if (!value) return std::move(value).error();
  if (!*value) return error(key, "missing (required)");
  return std::move(**value);
}

Result<std::vector<std::string>> ConfigTable::strings(std::string_view key) const {
  std::vector<std::string> out;
  const toml::node* node = state_->table->get(key);
  if (node == nullptr) return out;
  const auto* array = node->as_array();
  if (array == nullptr) {
    return error(key, fmt::format("expected an array of strings, found {}", typeName(*node)));
  }
  for (const toml::node& item : *array) {
    const auto* s = item.as_string();
    if (s == nullptr) {
      return error(key, fmt::format("expected an array of strings, found {} in it",
                                    typeName(item)));
    }
    out.push_back(s->get());
  }
  return out;
}

Result<std::optional<std::int64_t>> ConfigTable::integer(std::string_view key) const {
  const toml::node* node = state_->table->get(key);
  if (node == nullptr) return std::optional<std::int64_t>();
  if (const auto* i = node->as_integer()) return std::optional<std::int64_t>(i->get());
  return error(key, fmt::format("expected an integer, found {}", typeName(*node)));
}

Result<std::optional<bool>> ConfigTable::boolean(std::string_view key) const {
  const toml::node* node = state_->table->get(key);
  if (node == nullptr) return std::optional<bool>();
  if (const auto* b = node->as_boolean()) return std::optional<bool>(b->get());
  return error(key, fmt::format("expected true or false, found {}", typeName(*node)));
}

Result<std::optional<std::filesystem::path>> ConfigTable::path(std::string_view key) const {
  auto value = string(key);
  if (!value) return std::move(value).error();
  if (!*value) return std::optional<std::filesystem::path>();
  if ((*value)->empty()) return error(key, "expected a path, found an empty string");
  std::filesystem::path p(**value);
  if (p.is_relative() && !state_->file.empty()) p = state_->file.parent_path() / p;
  return std::optional<std::filesystem::path>(p.lexically_normal());
}

Result<ConfigTable> ConfigTable::table(std::string_view key) const {
  auto state = std::make_shared<State>(*state_);
  state->name = dotted(state_->name, key);
  const toml::node* node = state_->table->get(key);
  if (node == nullptr) {
    static const toml::table kEmpty;
    state->table = &kEmpty;
    state->line = 0;
  } else if (const auto* t = node->as_table()) {
    state->table = t;
    state->line = node->source().begin.line;
  } else {
    return error(key, fmt::format("expected a table, found {}", typeName(*node)));
  }
  return ConfigTable(std::move(state));
}

Result<ConfigTable> parseConfig(std::string_view text, const std::filesystem::path& file) {
  auto state = std::make_shared<ConfigTable::State>();
  state->file = file;
  // What Debian's toml++ 3.3 must not see (toml_guard.h): refused here, with its line.
  if (auto hazard = detail::findTomlHazard(text)) {
    return Error(Errc::Config, fmt::format("{}:{}: {}", file.string(), hazard->line, hazard->message));
  }
  try {
    auto root = std::make_shared<const toml::table>(toml::parse(text, file.string()));
    state->table = root.get();
    state->root = std::move(root);
  } catch (const toml::parse_error& e) {
    return Error(Errc::Config, fmt::format("{}:{}: {}", file.string(), e.source().begin.line,
                                           e.description()));
  }
  return ConfigTable(std::move(state));
}

Result<ConfigTable> loadConfigFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec;
    bool exists = std::filesystem::exists(file, ec);
    return Error(Errc::Config, fmt::format("{}: {}", file.string(),
                                           exists ? "cannot be read" : "no such file"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error(Errc::Config, fmt::format("{}: read failed", file.string()));
  return parseConfig(text.str(), file);
}

}  // namespace portcullis
