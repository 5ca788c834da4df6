// The operator's policy applied to one offered patch: apply now, or why not.
#pragma once

#include <cstdint>
#include <string>

#include "agent/config.h"

namespace nines::agent {

enum class Action { kApply, kDefer };

struct Decision {
  Action action = Action::kDefer;
  std::string reason;      // for deferred: "below the severity threshold (medium < high)", ...
  int64_t until_unix = 0;  // deferred by patch-delay: when it becomes due
};

// `severity` is the highest severity among the CVEs of the patch's signed manifest ("" when
// none: treated as negligible), `published_unix` the signed publication time. Rules in
// order: mode no-apply, severity threshold, cut-off date, delay.
Decision decide(const Policy& p, const std::string& severity, int64_t published_unix, int64_t now);

}  // namespace nines::agent
