#include "core/clock.h"

#include <charconv>
#include <cstdio>
#include <string_view>

#include "core/calendar.h"

namespace nines {

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t unix_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec;
}

std::string format_rfc3339(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  tm tmv{};
  gmtime_r(&t, &tmv);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  return buf;
}

namespace {

// Exactly `width` ASCII digits at s[at...]; nullopt otherwise.
std::optional<int> digits_at(std::string_view s, size_t at, size_t width) {
  if (at + width > s.size()) return std::nullopt;
  int v = 0;
  auto [end, ec] = std::from_chars(s.data() + at, s.data() + at + width, v);
  if (ec != std::errc() || end != s.data() + at + width) return std::nullopt;
  for (size_t i = at; i < at + width; ++i)
    if (s[i] < '0' || s[i] > '9') return std::nullopt;  // from_chars takes a sign
  return v;
}

}  // namespace

std::optional<int64_t> parse_rfc3339(const std::string& s) {
  if (s.size() < 20 || (s[10] != 'T' && s[10] != 't')) return std::nullopt;
  auto day = parse_date(s.substr(0, 10));
  auto h = digits_at(s, 11, 2), mi = digits_at(s, 14, 2), sec = digits_at(s, 17, 2);
  if (!day || !h || !mi || !sec || s[13] != ':' || s[16] != ':' || *h > 23 || *mi > 59 ||
      *sec > 60)
    return std::nullopt;
  size_t i = 19;
  if (s[i] == '.') {
    size_t first = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == first) return std::nullopt;
  }
  int offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    auto oh = digits_at(s, i + 1, 2), om = digits_at(s, i + 4, 2);
    if (!oh || !om || s[i + 3] != ':' || *oh > 23 || *om > 59) return std::nullopt;
    offset = (*oh * 60 + *om) * 60 * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  return *day + *h * 3600 + *mi * 60 + *sec - offset;
}

}  // namespace nines
