#include "core/calendar.h"

#include <charconv>
#include <chrono>

namespace nines {

namespace {

// Exactly `width` ASCII digits at s[at...].
std::optional<int> digits_at(const std::string& s, size_t at, size_t width) {
  if (at + width > s.size()) return std::nullopt;
  for (size_t i = at; i < at + width; ++i)
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  int v = 0;
  std::from_chars(s.data() + at, s.data() + at + width, v);
  return v;
}

}  // namespace

std::optional<int64_t> parse_date(const std::string& s) {
  auto y = digits_at(s, 0, 4), mo = digits_at(s, 5, 2), d = digits_at(s, 8, 2);
  if (s.size() != 10 || !y || !mo || !d || s[4] != '-' || s[7] != '-') return std::nullopt;
  // The calendar check (2026-02-31, 2025-02-29 refused) is std::chrono's, not ours.
  std::chrono::year_month_day ymd{std::chrono::year(*y), std::chrono::month(*mo),
                                  std::chrono::day(*d)};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_seconds(std::chrono::sys_days(ymd)).time_since_epoch().count();
}

}  // namespace nines
