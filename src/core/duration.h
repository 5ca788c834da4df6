// Durations as people write them, one vocabulary for every option and key: a whole number
// and a unit, ms, s, m, h, d or w ("500ms", "30s", "5m", "2h", "7d", "1w").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/result.h"

namespace nines {

// What a number without a unit means: nothing (an error that asks for a unit), or the
// unit a format inherited from another tool uses (check-interval: minutes, as
// canonical-livepatch).
enum class BareNumber { kRefused, kSeconds, kMinutes };

// Milliseconds. Fails naming the text: "duration '5x': ... (500ms, 30s, 5m, 2h, 7d, 1w)".
Result<int64_t> parse_duration_ms(const std::string& text, BareNumber bare = BareNumber::kRefused);
// The shortest exact form: 5000 -> "5s", 90000 -> "90s", 3600000 -> "1h", 0 -> "0s".
std::string format_duration_ms(int64_t ms);

}  // namespace nines
