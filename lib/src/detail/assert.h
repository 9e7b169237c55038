// Invariant and precondition checks. A failure is a bug: it throws std::logic_error with the
// location and a message formatted by fmt, to be caught only at a connection's root.
#pragma once

#include <fmt/format.h>

#include <stdexcept>

namespace portcullis::detail {

[[noreturn]] inline void failCheck(const char* kind, const char* expr, const char* file, int line,
                                   const std::string& message) {
  throw std::logic_error(fmt::format("{} failed at {}:{}: {}{}{}", kind, file, line, expr,
                                     message.empty() ? "" : ": ", message));
}

}  // namespace portcullis::detail

// Our own invariant.
#define PORTCULLIS_ASSERT(cond, ...)                                                          \
  do {                                                                                        \
    if (!(cond)) [[unlikely]]                                                                 \
      ::portcullis::detail::failCheck("assertion", #cond, __FILE__, __LINE__,                 \
                                      ::fmt::format("" __VA_ARGS__));                         \
  } while (false)

// The caller's precondition.
#define PORTCULLIS_REQUIRE(cond, ...)                                                         \
  do {                                                                                        \
    if (!(cond)) [[unlikely]]                                                                 \
      ::portcullis::detail::failCheck("precondition", #cond, __FILE__, __LINE__,              \
                                      ::fmt::format("" __VA_ARGS__));                         \
  } while (false)
