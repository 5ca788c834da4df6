#include "agent/policy.h"

#include <fmt/format.h>

#include "bundle/bundle.h"
#include "core/clock.h"

namespace nines::agent {

Decision decide(const Policy& p, const std::string& severity, int64_t published_unix, int64_t now) {
  Decision d;
  if (p.mode == "no-apply") {
    d.reason = "policy: mode is no-apply";
    return d;
  }
  std::string sev = severity.empty() ? "negligible" : severity;
  if (bundle::severity_rank(sev) < bundle::severity_rank(p.severity)) {
    d.reason = fmt::format("below the severity threshold ({} < {})", sev, p.severity);
    return d;
  }
  if (p.cutoff_unix && published_unix > *p.cutoff_unix) {
    d.reason = fmt::format("held back by the cut-off date (published {}, cut-off {})",
                           format_rfc3339(published_unix), p.cutoff_text);
    return d;
  }
  if (p.patch_delay_s > 0 && now < published_unix + p.patch_delay_s) {
    d.until_unix = published_unix + p.patch_delay_s;
    d.reason = fmt::format("waiting for the patch delay until {}", format_rfc3339(d.until_unix));
    return d;
  }
  d.action = Action::kApply;
  return d;
}

}  // namespace nines::agent
