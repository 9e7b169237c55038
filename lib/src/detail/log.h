// Formatted logging for the library's own code, through the application's sink
// (portcullis/logging.h): a line below the level is never formatted.
#pragma once

#include <fmt/format.h>

#include <utility>

#include "portcullis/logging.h"

namespace portcullis::detail {

template <typename... Args>
void logf(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (logEnabled(level)) log(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace portcullis::detail
