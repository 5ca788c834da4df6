// Progress for a person at a terminal, for every wait longer than a second: applying (a
// thread inside a function being replaced), a kernel transition, a build, the agent's
// check. Each display is one whole line on stderr ("nines: applying to pid 1234: 3 s of
// 5 s: thread 1236 in parse()"), at most one a second, and only when stderr is a terminal:
// logs, pipes and the agent's journal stay quiet.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace nines {

// For a loop that waits: call update() on each turn.
class Progress {
 public:
  // `what` names the wait ("applying to pid 1234"). `enabled` defaults to isatty(2).
  explicit Progress(std::string what);
  Progress(std::string what, bool enabled);
  // Shows "nines: WHAT: N s: DETAIL" once the wait passed a second, then at most once a
  // second. Returns whether a line was written.
  bool update(const std::string& detail = {});
  bool enabled() const { return enabled_; }

 private:
  std::string what_;
  bool enabled_;
  int64_t start_ns_;
  int64_t next_ns_;
};

// For one blocking call (a compiler, a request): a thread writes the line once a second
// while the Ticker lives, the first after one second; nothing when the call is quicker.
class Ticker {
 public:
  explicit Ticker(std::string what);
  ~Ticker();
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

 private:
  Progress progress_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace nines
