// Result<T>: the error channel for everything that can fail once the outside world
// (a process, a file, the network) is touched. Shaped like std::expected (C++23), which
// gcc 12 lacks. Fatal errors exist only before anything is touched and are handled in
// main (see docs/CODING.md).
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace nines {

// An error carries one message that names the operation, the object and the cause,
// e.g. "ptrace(SEIZE) tid 4711: Operation not permitted".
struct Error {
  std::string message;

  // Prefixes context: err.wrap("apply fix-1 to pid 42") -> "apply fix-1 to pid 42: <cause>".
  Error wrap(std::string_view context) const {
    return Error{fmt::format("{}: {}", context, message)};
  }
};

// Builds an Error from a format string.
template <typename... Args>
Error make_error(fmt::format_string<Args...> f, Args&&... args) {
  return Error{fmt::format(f, std::forward<Args>(args)...)};
}

// Builds an Error for a failed system call, from errno as it is now.
Error errno_error(std::string_view what);
Error errno_error(std::string_view what, int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}      // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace nines

// NINES_TRY(expr): evaluates a Result; on error returns the error from the enclosing
// function, otherwise yields the value. A GNU statement expression (gcc and clang).
#define NINES_TRY(expr)                                  \
  ({                                                     \
    auto nines_try_r_ = (expr);                          \
    if (!nines_try_r_.ok()) return nines_try_r_.error(); \
    std::move(nines_try_r_).value();                     \
  })

// NINES_CHECK(status_expr): for Result<void>.
#define NINES_CHECK(expr)                                \
  do {                                                   \
    auto nines_chk_r_ = (expr);                          \
    if (!nines_chk_r_.ok()) return nines_chk_r_.error(); \
  } while (0)
