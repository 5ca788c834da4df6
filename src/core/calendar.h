// Calendar dates, checked by the calendar (std::chrono's year_month_day), never by ranges.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace nines {

// "2026-02-28" -> that day's 00:00:00 UTC in seconds since the epoch; nullopt when
// malformed or not a day of the calendar (2026-02-31, 2025-02-29).
std::optional<int64_t> parse_date(const std::string& text);

}  // namespace nines
