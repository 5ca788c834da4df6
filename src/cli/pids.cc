#include "cli/pids.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "core/strings.h"

namespace nines::cli {

Result<std::vector<pid_t>> parse_pids(const std::vector<std::string>& args) {
  std::vector<pid_t> out;
  for (const auto& a : args) {
    for (auto part : split(a, ',')) {
      part = trim(part);
      auto v = parse_u64(part);
      if (!v || *v == 0 || *v > 0x3fffffff) return make_error("--pid: '{}' is not a process id", part);
      out.push_back(static_cast<pid_t>(*v));
    }
  }
  return out;
}

int run_in_worker(const std::function<int()>& work) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t child = fork();
  if (child < 0) return work();  // no worker: do it here
  if (child == 0) {
    setsid();
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    int rc = work();
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(rc);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return 3;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 3;
}

}  // namespace nines::cli
