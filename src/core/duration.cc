#include "core/duration.h"

#include <string_view>

#include "core/strings.h"

namespace nines {

namespace {

struct Unit {
  std::string_view suffix;
  int64_t ms;
};
// Largest first: format_duration_ms picks the largest unit that divides exactly.
constexpr Unit kUnits[] = {{"w", 604800000}, {"d", 86400000}, {"h", 3600000},
                           {"m", 60000},     {"s", 1000},     {"ms", 1}};
constexpr int64_t kMaxMs = int64_t{1} << 52;  // about 142,000 years

}  // namespace

Result<int64_t> parse_duration_ms(const std::string& text, BareNumber bare) {
  std::string_view s = trim(text);
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  std::string_view number = s.substr(0, digits), suffix = s.substr(digits);
  auto n = parse_u64(number);
  auto bad = [&](std::string_view why) {
    return make_error("duration '{}': {} (500ms, 30s, 5m, 2h, 7d, 1w)", text, why);
  };
  if (!n) return bad("expected a whole number and a unit");
  int64_t unit_ms = 0;
  if (suffix.empty()) {
    if (bare == BareNumber::kRefused) return bad("needs a unit");
    unit_ms = bare == BareNumber::kMinutes ? 60000 : 1000;
  } else {
    for (const auto& u : kUnits)
      if (suffix == u.suffix) unit_ms = u.ms;
    if (!unit_ms) return bad(fmt::format("unknown unit '{}'", suffix));
  }
  if (*n > static_cast<uint64_t>(kMaxMs / unit_ms)) return bad("too long");
  return static_cast<int64_t>(*n) * unit_ms;
}

std::string format_duration_ms(int64_t ms) {
  if (ms == 0) return "0s";
  for (const auto& u : kUnits)
    if (ms % u.ms == 0) return std::to_string(ms / u.ms) + std::string(u.suffix);
  return std::to_string(ms) + "ms";
}

}  // namespace nines
