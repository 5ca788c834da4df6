#include "core/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "core/clock.h"

namespace nines {

namespace {
constexpr int64_t kSecondNs = 1'000'000'000;
}

Progress::Progress(std::string what) : Progress(std::move(what), ::isatty(2) == 1) {}

Progress::Progress(std::string what, bool enabled)
    : what_(std::move(what)), enabled_(enabled), start_ns_(monotonic_ns()), next_ns_(start_ns_ + kSecondNs) {}

bool Progress::update(const std::string& detail) {
  int64_t now = monotonic_ns();
  if (!enabled_ || now < next_ns_) return false;
  next_ns_ = now + kSecondNs;
  std::fprintf(stderr, "nines: %s: %lld s%s%s\n", what_.c_str(),
               static_cast<long long>((now - start_ns_) / kSecondNs), detail.empty() ? "" : ": ",
               detail.c_str());
  std::fflush(stderr);
  return true;
}

Ticker::Ticker(std::string what) : progress_(std::move(what)) {
  if (!progress_.enabled()) return;  // no terminal: no thread either
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return done_; }))
      progress_.update();
  });
}

Ticker::~Ticker() {
  {
    std::lock_guard<std::mutex> g(mu_);
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace nines
