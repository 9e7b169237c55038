// portcullis/result.h — expected outcomes as values.
//
// Every API that can fail on input it does not control (peer bytes, storage, config) returns a
// `Result<T>`: either a value or an `Error` naming what the caller should do next. Exceptions are
// reserved for bugs (see PORTCULLIS_ASSERT / PORTCULLIS_REQUIRE). The member names follow
// `std::expected` so that the type can be swapped for it once the toolchain has C++23.
//
// Value type; no threading concerns of its own.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "portcullis/export.h"

namespace portcullis {

// What went wrong, phrased as what the caller should do about it.
enum class Errc : std::uint8_t {
  Malformed,     // the input is not valid: drop it (and, for a peer, close its session)
  NotFound,      // the thing does not exist (or may not be known to exist)
  Io,            // the operating system failed us: retry or report
  Disconnected,  // the other side went away
  Overloaded,    // a bound was reached: back off or drop the source
  Unsupported,   // a version or feature we do not speak
  Config,        // the configuration is wrong: stop start-up
  Denied,        // the auth provider said no
  Conflict,      // the input contradicts what is already known (e.g. equivocation)
};

PORTCULLIS_EXPORT std::string_view errcName(Errc) noexcept;

class [[nodiscard]] Error {
 public:
  Error(Errc code, std::string message) : code_(code), message_(std::move(message)) {}
  Errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

 private:
  Errc code_;
  std::string message_;
};

// Holds either a T or an Error. Accessing the wrong alternative is a bug and throws.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    if (has_value()) throw std::logic_error("Result::error() on a value");
    return std::get<1>(v_);
  }
  Error&& error() && {
    if (has_value()) throw std::logic_error("Result::error() on a value");
    return std::get<1>(std::move(v_));
  }

 private:
  void check() const {
    if (!has_value()) {
      throw std::logic_error("Result::value() on an error: " + std::get<1>(v_).message());
    }
  }
  std::variant<T, Error> v_;
};

// Result<void>: success carries nothing.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT

  bool has_value() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (error_) throw std::logic_error("Result::value() on an error: " + error_->message());
  }
  const Error& error() const& {
    if (!error_) throw std::logic_error("Result::error() on a value");
    return *error_;
  }

 private:
  // Empty on success, which is then nothing to build, move or destroy: a Result<void> is
  // returned from every edit and check on the hot paths.
  std::optional<Error> error_;
};

}  // namespace portcullis
