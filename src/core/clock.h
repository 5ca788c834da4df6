// Time: a monotonic stopwatch for the stop window, and wall-clock RFC 3339 text.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>

namespace nines {

// Nanoseconds on CLOCK_MONOTONIC.
int64_t monotonic_ns();

class Stopwatch {
 public:
  Stopwatch() : start_(monotonic_ns()) {}
  int64_t elapsed_ns() const { return monotonic_ns() - start_; }
  double elapsed_us() const { return static_cast<double>(elapsed_ns()) / 1000.0; }

 private:
  int64_t start_;
};

// Seconds since the epoch as "2026-11-29T18:16:23Z".
std::string format_rfc3339(int64_t unix_seconds);
// Parses RFC 3339 ("2026-11-29T18:16:23Z", "2026-11-29T19:16:23+01:00", fractional seconds
// allowed) into seconds since the epoch; nullopt when malformed.
std::optional<int64_t> parse_rfc3339(const std::string& text);
int64_t unix_now();

}  // namespace nines
