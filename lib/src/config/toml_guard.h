// A check of config text before toml++ reads it: Debian bookworm's toml++ (3.3.0) has undefined
// behaviour on two kinds of input, both fixed upstream after that release:
//   - its whitespace test reaches __builtin_unreachable for some non-ASCII code points (U+00A1 to
//     U+0499, U+2E8E to U+3287 but U+3000, U+FB36 to U+FEFE; marzer/tomlplusplus#190, #295, fixed
//     by #305). It asks that of every character outside strings and comments, and, in a
//     multi-line basic string, of the character after a backslash and of the first one after a
//     line-ending backslash;
//   - a table header whose first key starts with neither a bare-key character nor a quote ("[@",
//     "[[[") breaks an assumption of its key parser (fixed by marzer/tomlplusplus#301).
// Such text is invalid TOML anyway, but for a multi-line string whose line-ending backslash is
// followed by such a character; parseConfig refuses all of it, with the line, before toml++ sees
// it. The scan tracks only what it must: comments, the four kinds of strings, and whether a '['
// opens a table header (first on its line, outside any value) or an array.
//
// Pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace portcullis::detail {

struct TomlHazard {
  std::size_t line;     // from 1
  std::string message;  // what is refused there
};

// Whether toml++ 3.3.0's is_non_ascii_horizontal_whitespace has no answer for `c`: the code
// points of its 1018-wide buckets 0, 11 and 63 that are not whitespace.
inline bool tomlUnclassifiable(char32_t c) {
  if (c < 0xA1 || c > 0xFEFE || c == 0x3000) return false;
  const std::uint32_t bucket = (static_cast<std::uint32_t>(c) - 0xA0) / 0x3FA;
  return bucket == 0 || bucket == 11 || bucket == 63;
}

// The UTF-8 code point at text[at] and its length; an invalid sequence reads as U+FFFD of one
// byte (toml++ refuses it itself).
inline char32_t tomlCodePoint(std::string_view text, std::size_t at, std::size_t& length) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(text[at + i]); };
  const unsigned char lead = b(0);
  length = 1;
  std::size_t n = 0;
  char32_t c = 0;
  if (lead < 0x80) return lead;
  if ((lead & 0xE0) == 0xC0) {
    n = 2;
    c = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    n = 3;
    c = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    n = 4;
    c = lead & 0x07;
  } else {
    return 0xFFFD;
  }
  if (text.size() - at < n) return 0xFFFD;
  for (std::size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xC0) != 0x80) return 0xFFFD;
    c = (c << 6) | (b(i) & 0x3F);
  }
  length = n;
  return c;
}

inline std::string tomlHazardCharacter(char32_t c) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "U+%04X", static_cast<unsigned>(c));
  return std::string("the character ") + hex + " is not allowed here";
}

// The first thing in `text` that toml++ 3.3.0 must not see, if any.
inline std::optional<TomlHazard> findTomlHazard(std::string_view text) {
  const std::size_t size = text.size();
  std::size_t line = 1;
  std::size_t depth = 0;  // arrays and inline tables open in a value
  bool lineStart = true;  // nothing but whitespace yet on this line
  bool inValue = false;   // after '=', until the end of the line outside brackets
  auto isBare = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  };
  auto hazardAt = [&](std::size_t at) -> std::optional<TomlHazard> {
    if (at >= size) return std::nullopt;
    std::size_t n = 0;
    const char32_t c = tomlCodePoint(text, at, n);
    if (tomlUnclassifiable(c)) return TomlHazard{line, tomlHazardCharacter(c)};
    return std::nullopt;
  };
  for (std::size_t i = 0; i < size;) {
    const char ch = text[i];
    if (ch == '\n') {
      ++line;
      lineStart = true;
      if (depth == 0) inValue = false;
      ++i;
      continue;
    }
    if (ch == ' ' || ch == '\t' || ch == '\r') {
      ++i;
      continue;
    }
    const bool first = lineStart;
    lineStart = false;
    if (ch == '#') {
      while (i < size && text[i] != '\n') ++i;
      continue;
    }
    if (ch == '"' || ch == '\'') {
      const std::string_view triple = ch == '"' ? "\"\"\"" : "'''";
      const bool multi = text.substr(i, 3) == triple;
      i += multi ? 3 : 1;
      while (i < size) {
        const char s = text[i];
        if (multi && text.substr(i, 3) == triple) {
          i += 3;
          for (int extra = 0; extra < 2 && i < size && text[i] == ch; ++extra) ++i;
          break;
        }
        if (!multi && s == ch) {
          ++i;
          break;
        }
        if (s == '\n') {
          if (!multi) break;  // an unterminated string: toml++ stops there
          ++line;
          ++i;
          continue;
        }
        if (s == '\\' && ch == '"') {
          std::size_t j = i + 1;
          if (multi) {
            bool skipped = false;
            while (j < size &&
                   (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n')) {
              if (text[j] == '\n') ++line;
              skipped = true;
              ++j;
            }
            if (auto h = hazardAt(j)) return h;
            if (skipped) {
              i = j;  // the character after the whitespace is the string's again
              continue;
            }
          }
          std::size_t n = 1;
          if (j < size) (void)tomlCodePoint(text, j, n);
          i = j + (j < size ? n : 0);  // the escape and the escaped character
          continue;
        }
        std::size_t n = 1;
        (void)tomlCodePoint(text, i, n);
        i += n;
      }
      continue;
    }
    if (first && depth == 0 && ch == '[') {
      std::size_t j = i + 1;
      if (j < size && text[j] == '[') ++j;
      while (j < size && (text[j] == ' ' || text[j] == '\t')) ++j;
      if (j < size && !isBare(text[j]) && text[j] != '"' && text[j] != '\'') {
        if (auto h = hazardAt(j)) return h;
        return TomlHazard{line, "a table header must start with a key"};
      }
      inValue = false;
      i = j;
      continue;
    }
    if (ch == '=') {
      inValue = true;
      ++i;
      continue;
    }
    if (inValue && (ch == '[' || ch == '{')) {
      ++depth;
      ++i;
      continue;
    }
    if (inValue && (ch == ']' || ch == '}')) {
      if (depth > 0) --depth;
      ++i;
      continue;
    }
    if (static_cast<unsigned char>(ch) >= 0x80) {
      if (auto h = hazardAt(i)) return h;
      std::size_t n = 1;
      (void)tomlCodePoint(text, i, n);
      i += n;
      continue;
    }
    ++i;
  }
  return std::nullopt;
}

}  // namespace portcullis::detail
