// CLI11 validators shared by every command, so one vocabulary holds everywhere.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/duration.h"

namespace nines::cli {

// A duration with its unit ("500ms", "30s", "5m", "2h", "7d", "1w"), handed on as whole
// milliseconds (for an int64_t option) or seconds (for a double option, with
// `as_seconds`). A bare number is refused naming the option's value.
class Duration : public CLI::Validator {
 public:
  explicit Duration(bool as_seconds = false) {
    name_ = "DURATION";
    desc_function_ = [] { return std::string("DURATION"); };  // the man page's value name
    func_ = [as_seconds](std::string& text) -> std::string {
      auto ms = parse_duration_ms(text);
      if (!ms) return ms.error().message;
      text = as_seconds ? std::to_string(static_cast<double>(*ms) / 1000.0) : std::to_string(*ms);
      return {};
    };
  }
};

}  // namespace nines::cli
