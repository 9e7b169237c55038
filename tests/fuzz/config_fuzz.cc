// Fuzz target: the TOML deployment config (portcullis/config.h: parseConfig, loadConfigFile and
// every ConfigTable accessor a provider or the tool uses on it).
//
// Input: the file's bytes, at most kMaxBytes (longer inputs are skipped: a config is a small
// file, and the bound keeps each run short).
//
// Invariants, beyond "no crash, no leak, no hang":
//   * nothing throws; parseConfig and loadConfigFile (of the same bytes in a file) agree; a
//     failure is Errc::Config and names the file and a line ("FILE:LINE: ...");
//   * text that Debian's toml++ 3.3 must not see (findTomlHazard, lib/src/config/toml_guard.h:
//     inputs that reach its undefined behaviour) is refused, naming its line; any other text gets
//     toml++'s verdict (the parser under the wrapper): it parses there exactly when parseConfig
//     accepts it;
//   * on every key of every table (walked with toml++, at most kMaxKeys keys, kMaxDepth deep):
//     contains() is true; string(), integer() and boolean() return the value exactly when the
//     node has that type, strings() exactly when it is an array of strings, table() exactly
//     when it is a table (which is then walked the same way), path() when it is a non-empty
//     string; every refusal is Errc::Config and names the key's dotted name; error(key, ...)
//     and error(key, index, ...) name the file, the key and (for a present key) a line;
//   * an absent key reads as absent (nullopt, an empty list, an empty table); expectKeys({})
//     fails exactly when the table has a key.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "config/toml_guard.h"
#include "core_fuzz_support.h"
#include "portcullis/config.h"

namespace portcullis::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTarget = "config_fuzz";
constexpr std::size_t kMaxBytes = 64u << 10;
constexpr std::size_t kMaxKeys = 2000;
constexpr unsigned kMaxDepth = 32;

void check(bool ok, std::string_view what) { require(ok, kTarget, what); }

struct Files {
  fs::path dir;
  fs::path file;
  Files() {
    std::string pattern = (fs::temp_directory_path() / "portcullis-config-fuzz.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) fail(kTarget, "mkdtemp failed");
    dir = pattern;
    file = dir / "node.toml";
  }
  ~Files() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  Files(const Files&) = delete;
  Files& operator=(const Files&) = delete;
};
Files& files() {
  static Files f;
  return f;
}

bool namesFile(const Error& e, const fs::path& file) {
  return e.code() == Errc::Config && e.message().starts_with(file.string() + ":");
}

std::string dotted(const std::string& table, std::string_view key) {
  return table.empty() ? std::string(key) : table + "." + std::string(key);
}

struct Walk {
  const fs::path& file;
  std::size_t keys = 0;

  void refusal(const Error& e, const std::string& name, std::string_view what) {
    check(namesFile(e, file), std::string(what) + ": a refusal does not name the file");
    check(e.message().find(name) != std::string::npos,
          std::string(what) + ": a refusal does not name the key");
  }

  void table(const ConfigTable& t, const toml::table& model, unsigned depth) {
    auto none = t.expectKeys({});
    check(none.has_value() == model.empty(), "expectKeys({}) does not fail exactly on a key");
    if (!none) check(namesFile(none.error(), file), "expectKeys's refusal does not name the file");
    absent(t);
    for (const auto& [k, node] : model) {
      if (++keys > kMaxKeys) return;
      key(t, std::string(k.str()), node, depth);
    }
  }

  void absent(const ConfigTable& t) {
    constexpr std::string_view kAbsent =
        "\x01"
        "absent";
    if (t.contains(kAbsent)) return;
    auto s = t.string(kAbsent);
    auto l = t.strings(kAbsent);
    auto i = t.integer(kAbsent);
    auto b = t.boolean(kAbsent);
    auto p = t.path(kAbsent);
    auto sub = t.table(kAbsent);
    check(s && !*s && l && l->empty() && i && !*i && b && !*b && p && !*p && sub &&
              !sub->contains("x"),
          "an absent key does not read as absent");
  }

  void key(const ConfigTable& t, const std::string& k, const toml::node& node, unsigned depth) {
    const std::string name = dotted(t.name(), k);
    check(t.contains(k), "contains() is false for a key the file has");

    auto s = t.string(k);
    check(s.has_value() == node.is_string(), "string() does not succeed exactly on a string");
    if (s) {
      check(*s && **s == node.as_string()->get(), "string() returns another value");
    } else {
      refusal(s.error(), name, "string()");
    }
    auto i = t.integer(k);
    check(i.has_value() == node.is_integer(), "integer() does not succeed exactly on an integer");
    if (i) {
      check(*i && **i == node.as_integer()->get(), "integer() returns another value");
    } else {
      refusal(i.error(), name, "integer()");
    }
    auto b = t.boolean(k);
    check(b.has_value() == node.is_boolean(), "boolean() does not succeed exactly on a boolean");
    if (b) {
      check(*b && **b == node.as_boolean()->get(), "boolean() returns another value");
    } else {
      refusal(b.error(), name, "boolean()");
    }
    auto l = t.strings(k);
    const toml::array* array = node.as_array();
    const bool allStrings = array != nullptr && array->is_homogeneous(toml::node_type::string);
    check(l.has_value() == (array != nullptr && (array->empty() || allStrings)),
          "strings() does not succeed exactly on an array of strings");
    if (l) {
      check(l->size() == array->size(), "strings() returns another number of strings");
      for (std::size_t n = 0; n < l->size(); ++n) {
        check((*l)[n] == (*array)[n].as_string()->get(), "strings() returns other strings");
      }
    } else {
      refusal(l.error(), name, "strings()");
    }
    auto p = t.path(k);
    check(p.has_value() == (node.is_string() && !node.as_string()->get().empty()),
          "path() does not succeed exactly on a non-empty string");
    if (!p) refusal(p.error(), name, "path()");

    const Error e = t.error(k, "fuzz message");
    check(namesFile(e, file) && e.message().find(name) != std::string::npos &&
              e.message().ends_with("fuzz message"),
          "error(key) does not name the file, the key and the message");
    // toml++ gives no line to a table only implied by a dotted key or a [a.b] header.
    const auto line = node.source().begin.line;
    check(e.message().starts_with(
              file.string() + (line == 0 ? std::string(": ") : ":" + std::to_string(line) + ":")),
          "error(key) does not name the key's line");
    const Error ei = t.error(k, 3, "fuzz message");
    check(namesFile(ei, file) && ei.message().find(name + "[3]") != std::string::npos,
          "error(key, index) does not name the file and the element");

    auto sub = t.table(k);
    check(sub.has_value() == node.is_table(), "table() does not succeed exactly on a table");
    if (!sub) {
      refusal(sub.error(), name, "table()");
      return;
    }
    check(sub->name() == name && sub->file() == file, "a sub-table has another name or file");
    if (depth < kMaxDepth) table(*sub, *node.as_table(), depth + 1);
  }
};

void run(ByteView input) {
  if (input.size() > kMaxBytes) return;
  const fs::path& file = files().file;
  const std::string_view text = charsOf(input);
  auto parsed = parseConfig(text, file);
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  auto loaded = loadConfigFile(file);
  check(parsed.has_value() == loaded.has_value(), "parseConfig and loadConfigFile disagree");

  // Text toml++ 3.3 must not see (lib/src/config/toml_guard.h) is refused with its line, and
  // never given to toml++ here either.
  if (const auto hazard = detail::findTomlHazard(text)) {
    check(!parsed && parsed.error().code() == Errc::Config &&
              parsed.error().message() ==
                  file.string() + ":" + std::to_string(hazard->line) + ": " + hazard->message,
          "text toml++ must not see was not refused, with its line");
    check(!loaded && loaded.error().message() == parsed.error().message(),
          "loadConfigFile gave text toml++ must not see to toml++");
    return;
  }
  std::optional<toml::table> model;
  try {
    model = toml::parse(text, file.string());
  } catch (const toml::parse_error&) {
  }
  check(parsed.has_value() == model.has_value(), "parseConfig's verdict is not toml++'s");
  if (!parsed) {
    check(namesFile(parsed.error(), file), "a syntax error does not name the file");
    check(loaded.error().message() == parsed.error().message(),
          "parseConfig and loadConfigFile give different errors");
    const std::string_view rest =
        std::string_view(parsed.error().message()).substr(file.string().size() + 1);
    check(!rest.empty() && rest[0] >= '0' && rest[0] <= '9', "a syntax error does not name a line");
    return;
  }
  check(parsed->name().empty() && parsed->file() == file,
        "the root table has a name or another file");
  Walk walk{file};
  walk.table(*parsed, *model, 0);
}

}  // namespace
}  // namespace portcullis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  portcullis::fuzz::guarded("config_fuzz", [] { (void)portcullis::fuzz::files(); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  portcullis::fuzz::guarded("config_fuzz",
                            [&] { portcullis::fuzz::run(portcullis::ByteView(data, size)); });
  return 0;
}
