// The process-wide log sink (portcullis/logging.h).
#include "portcullis/logging.h"

#include <atomic>
#include <cstdio>
#include <memory>

namespace portcullis {
namespace {

std::shared_ptr<const LogSink> makeShared(LogSink sink) {
  if (!sink) return nullptr;
  return std::make_shared<const LogSink>(std::move(sink));
}

// Atomics rather than a mutex: lines are logged from every Repo's thread, and a sink replaced
// meanwhile stays alive until the lines already handed to it are done.
std::atomic<std::shared_ptr<const LogSink>>& current() {
  static std::atomic<std::shared_ptr<const LogSink>> sink{makeShared(defaultLogSink())};
  return sink;
}

std::atomic<LogLevel> threshold{LogLevel::Info};

}  // namespace

std::string_view logLevelName(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
    case LogLevel::Off: return "off";
  }
  return "unknown";
}

LogSink defaultLogSink() {
  return [](LogLevel level, std::string_view message) {
    const std::string_view name = logLevelName(level);
    // One write per line, so that lines from several threads do not interleave.
    std::fprintf(stderr, "portcullis: %.*s: %.*s\n", static_cast<int>(name.size()), name.data(),
                 static_cast<int>(message.size()), message.data());
  };
}

LogSink setLogSink(LogSink sink) {
  auto previous = current().exchange(makeShared(std::move(sink)));
  return previous ? *previous : LogSink();
}

void setLogLevel(LogLevel level) noexcept { threshold.store(level, std::memory_order_relaxed); }

bool logEnabled(LogLevel level) noexcept {
  return level != LogLevel::Off && level >= threshold.load(std::memory_order_relaxed);
}

void log(LogLevel level, std::string_view message) {
  if (!logEnabled(level)) return;
  if (auto sink = current().load()) (*sink)(level, message);
}

}  // namespace portcullis
