#include "server/rate_limit.h"

#include <algorithm>
#include <cmath>

namespace nines::server {

int RateLimiter::take(const std::string& key, int64_t now_ns) {
  if (rate_ <= 0) return 0;  // disabled
  std::lock_guard lock(mu_);
  // Forget full buckets once a minute so the map holds only recently active keys.
  if (now_ns - last_sweep_ns_ > 60'000'000'000) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      double refilled = it->second.tokens + (now_ns - it->second.last_ns) / 1e9 * rate_;
      it = refilled >= burst_ ? buckets_.erase(it) : std::next(it);
    }
    last_sweep_ns_ = now_ns;
  }
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now_ns});
  Bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + (now_ns - b.last_ns) / 1e9 * rate_);
  b.last_ns = now_ns;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate_)));
}

}  // namespace nines::server
