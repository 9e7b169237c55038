// How much slower than normal the code under test may run: PORTCULLIS_TEST_TIME_SCALE (a whole
// number, default 1), which scripts/check sets for its sanitizer builds. A test that asserts an
// upper bound on wall-clock time multiplies the bound by it, so that the bound still means
// "without waiting for a deadline" instead of the test being skipped under sanitizers.
#pragma once

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <string_view>

namespace portcullis::testing {

inline int timeScale() {
  static const int scale = [] {
    const char* text = std::getenv("PORTCULLIS_TEST_TIME_SCALE");
    int value = 1;
    if (text == nullptr) return value;
    const std::string_view s(text);
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    return ec == std::errc() && end == s.data() + s.size() && value >= 1 ? value : 1;
  }();
  return scale;
}

// `bound` stretched by timeScale().
template <typename Rep, typename Period>
std::chrono::duration<Rep, Period> scaledBound(std::chrono::duration<Rep, Period> bound) {
  return bound * timeScale();
}

}  // namespace portcullis::testing
