// Counters of the running server, rendered with the fleet gauges in the Prometheus text
// exposition format (version 0.0.4) at /metrics.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace nines::server {

class Metrics {
 public:
  // One finished request: route pattern ("/v1/checkin"), method, HTTP status, duration.
  void observe_request(const std::string& route, const std::string& method, int status,
                       int64_t duration_ns);
  void count_report(const std::string& state);
  std::atomic<int64_t> checkins{0};
  std::atomic<int64_t> publishes{0};
  std::atomic<int64_t> rate_limited{0};
  std::atomic<int64_t> auth_failures{0};

  // The text for /metrics: counters, request latency histogram, and the fleet gauges from
  // `fleet` (a fleet_summary()).
  std::string render(const nlohmann::json& fleet, const std::string& backend);

 private:
  static constexpr double kBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,  0.1,    0.25,  0.5,  1.0};
  struct Histogram {
    int64_t counts[std::size(kBuckets)] = {};
    int64_t count = 0;
    double sum = 0;
  };
  std::mutex mu_;
  std::map<std::string, int64_t> requests_;   // "route|method|status"
  std::map<std::string, Histogram> latency_;  // route
  std::map<std::string, int64_t> reports_;    // state
};

}  // namespace nines::server
