// End-to-end test harness: a target process started by the test, driven by one-line
// commands over pipes, and the nines binary run as a user would run it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace nines::test {

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// Runs nines with arguments; captures stdout and stderr together.
CommandResult run_nines(const std::vector<std::string>& args);

// Builds a patch from tests/ulp/patches/NAME.c against `target`; returns its path.
// Fails the test (ADD_FAILURE) when the build fails.
std::string build_patch(const std::string& name, const std::string& target, const std::string& id = "");

class Target {
 public:
  // Starts FIXTURES_DIR/program with `threads` hammer threads; waits for "ready".
  explicit Target(const std::string& program, int threads = 0);
  ~Target();
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  pid_t pid() const { return pid_; }
  // Sends a command line and returns the reply line (without newline); "" on EOF/timeout.
  std::string ask(const std::string& command, int timeout_ms = 20000);
  // Sends a command line without waiting for the reply (read it later with ask("")).
  void send(const std::string& command);
  // Writes to the pipe the target's "readwait" thread reads (its fd 3).
  void feed(const std::string& data);
  // The state letter of every thread (/proc/PID/task/*/stat): 'R', 'S', 't' (traced), ...
  std::string thread_states() const;
  bool alive() const;

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1, feed_ = -1;
  std::string buffer_;
};

}  // namespace nines::test
