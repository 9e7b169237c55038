// portcullis/logging.h — where the library's log lines go: the Repo, the sync sessions, the
// plugin loader, the adapters and the providers all log through here, never straight to stdout.
//
// Design: one process-wide sink, replaceable by the application. A sink passed in RepoOptions
// would miss what logs outside any Repo (the provider registry and its plugins, a provider's
// factory, the config loader), and a named spdlog logger would tie every application to spdlog
// and put it in our public headers. The sink is the one piece of process state the library
// keeps, the same role spdlog's default logger had before; an application sets it once in
// main(), before it starts a Repo, and a test sets it around what it checks.
//
// By default, lines at Info and above go to stderr as "portcullis: <level>: <message>".
//
// Thread safety: setLogSink, setLogLevel and log may be called from any thread. The sink is
// called on the thread that logs (a Repo's executor, usually), possibly from several threads at
// once when several Repos run on their own threads: a sink must be thread-safe, must not throw
// and must not log itself.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "portcullis/export.h"

namespace portcullis {

enum class LogLevel : std::uint8_t { Debug, Info, Warn, Error, Off };

// Receives one whole line, without a trailing newline. The view is valid during the call only.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;

// Sends every later line to `sink`; an empty sink silences the library. Returns the sink it
// replaces (an empty one if it was silent), so a caller can put it back.
PORTCULLIS_EXPORT LogSink setLogSink(LogSink sink);
// The stderr sink described above, to restore or to wrap.
PORTCULLIS_EXPORT LogSink defaultLogSink();

// Lines below `level` are dropped before they are formatted. Default: Info. Off drops all.
PORTCULLIS_EXPORT void setLogLevel(LogLevel level) noexcept;
PORTCULLIS_EXPORT bool logEnabled(LogLevel level) noexcept;

// Hands `message` to the sink if `level` is enabled. Off is not a level to log at.
PORTCULLIS_EXPORT void log(LogLevel level, std::string_view message);

// "debug", "info", "warn", "error", "off".
PORTCULLIS_EXPORT std::string_view logLevelName(LogLevel level) noexcept;

}  // namespace portcullis
