// bench/json_line.h — one JSON object on one line of stdout, keys in the order added: how every
// benchmark here prints a figure.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace portcullis::bench {

class JsonLine {
 public:
  JsonLine() = default;
  explicit JsonLine(std::string_view bench) { str("bench", bench); }
  JsonLine& str(std::string_view key, std::string_view value) {
    sep(key);
    out_ += '"';
    out_ += value;  // callers pass plain ASCII without quotes or backslashes
    out_ += '"';
    return *this;
  }
  JsonLine& num(std::string_view key, double value, int decimals = 3) {
    sep(key);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    out_ += buf;
    return *this;
  }
  JsonLine& integer(std::string_view key, long long value) {
    sep(key);
    out_ += std::to_string(value);
    return *this;
  }
  JsonLine& flag(std::string_view key, bool value) {
    sep(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  void print() {
    std::printf("{%s}\n", out_.c_str());
    std::fflush(stdout);
  }

 private:
  void sep(std::string_view key) {
    if (!out_.empty()) out_ += ',';
    out_ += '"';
    out_ += key;
    out_ += "\":";
  }
  std::string out_;
};

}  // namespace portcullis::bench
