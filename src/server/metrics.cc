#include "server/metrics.h"

#include <fmt/format.h>

#include "core/strings.h"

namespace nines::server {

void Metrics::observe_request(const std::string& route, const std::string& method, int status,
                              int64_t duration_ns) {
  std::lock_guard lock(mu_);
  ++requests_[route + "|" + method + "|" + std::to_string(status)];
  Histogram& h = latency_[route];
  double s = duration_ns / 1e9;
  for (size_t i = 0; i < std::size(kBuckets); ++i)
    if (s <= kBuckets[i]) ++h.counts[i];
  ++h.count;
  h.sum += s;
}

void Metrics::count_report(const std::string& state) {
  std::lock_guard lock(mu_);
  ++reports_[state];
}

std::string Metrics::render(const nlohmann::json& fleet, const std::string& backend) {
  std::string o;
  auto add = [&](std::string_view s) { o.append(s); };
  add("# HELP nines_server_info The storage back end of this server.\n");
  add("# TYPE nines_server_info gauge\n");
  o += fmt::format("nines_server_info{{backend=\"{}\"}} 1\n", backend);
  add("# HELP nines_checkins_total Machine check-ins answered.\n# TYPE nines_checkins_total "
      "counter\n");
  o += fmt::format("nines_checkins_total {}\n", checkins.load());
  add("# HELP nines_publishes_total Bundles stored by publish.\n# TYPE nines_publishes_total "
      "counter\n");
  o += fmt::format("nines_publishes_total {}\n", publishes.load());
  add("# HELP nines_rate_limited_total Requests refused with 429.\n# TYPE nines_rate_limited_total "
      "counter\n");
  o += fmt::format("nines_rate_limited_total {}\n", rate_limited.load());
  add("# HELP nines_auth_failures_total Requests refused with 401.\n# TYPE "
      "nines_auth_failures_total counter\n");
  o += fmt::format("nines_auth_failures_total {}\n", auth_failures.load());
  {
    std::lock_guard lock(mu_);
    add("# HELP nines_reports_total Report lines received, by state.\n# TYPE nines_reports_total "
        "counter\n");
    for (const auto& [state, n] : reports_)
      o += fmt::format("nines_reports_total{{state=\"{}\"}} {}\n", state, n);
    add("# HELP nines_http_requests_total HTTP requests by route, method and status.\n");
    add("# TYPE nines_http_requests_total counter\n");
    for (const auto& [key, n] : requests_) {
      auto parts = split(key, '|');
      o += fmt::format("nines_http_requests_total{{route=\"{}\",method=\"{}\",code=\"{}\"}} {}\n",
                       parts[0], parts[1], parts[2], n);
    }
    add("# HELP nines_http_request_duration_seconds Time to answer, by route.\n");
    add("# TYPE nines_http_request_duration_seconds histogram\n");
    for (const auto& [route, h] : latency_) {
      for (size_t i = 0; i < std::size(kBuckets); ++i)
        o +=
            fmt::format("nines_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n",
                        route, kBuckets[i], h.counts[i]);
      o +=
          fmt::format("nines_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n",
                      route, h.count);
      o +=
          fmt::format("nines_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", route, h.sum);
      o += fmt::format("nines_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", route,
                       h.count);
    }
  }
  add("# HELP nines_machines Machines known, by state.\n# TYPE nines_machines gauge\n");
  if (fleet.contains("machines"))
    for (const auto& [state, n] : fleet["machines"]["by_state"].items())
      o += fmt::format("nines_machines{{state=\"{}\"}} {}\n", state, n.get<int64_t>());
  add("# HELP nines_machines_needing_reboot Machines whose advisor verdict is reboot.\n");
  add("# TYPE nines_machines_needing_reboot gauge\n");
  o += fmt::format("nines_machines_needing_reboot {}\n",
                   fleet.value("/machines/needing_reboot"_json_pointer, 0));
  add("# HELP nines_cves_published CVEs fixed by published bundles.\n# TYPE nines_cves_published "
      "gauge\n");
  o += fmt::format("nines_cves_published {}\n", fleet.value("cves_published", 0));
  add("# HELP nines_cve_machines_exposed Machines offered a fix for the CVE that have not applied "
      "it.\n");
  add("# TYPE nines_cve_machines_exposed gauge\n");
  if (fleet.contains("cves"))
    for (const auto& c : fleet["cves"])
      o +=
          fmt::format("nines_cve_machines_exposed{{cve=\"{}\"}} {}\n", c["id"].get<std::string>(),
                      c["machines_affected"].get<int64_t>() - c["machines_applied"].get<int64_t>());
  return o;
}

}  // namespace nines::server
