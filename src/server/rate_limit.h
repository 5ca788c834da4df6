// Per-key token buckets: each token hash (or client address, for unauthenticated failures)
// may spend `burst` requests at once and earns `rate` per second after that.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace nines::server {

class RateLimiter {
 public:
  RateLimiter(double rate_per_s, double burst) : rate_(rate_per_s), burst_(burst) {}

  // Takes one request from `key`'s bucket at time `now_ns` (monotonic). Returns 0 when
  // allowed, else the seconds to wait before the next request would be (Retry-After).
  int take(const std::string& key, int64_t now_ns);

 private:
  struct Bucket {
    double tokens;
    int64_t last_ns;
  };
  double rate_, burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  int64_t last_sweep_ns_ = 0;
};

}  // namespace nines::server
