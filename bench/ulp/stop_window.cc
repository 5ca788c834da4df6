// Stop window of a user-space patch: the time the target is frozen while nines switches
// it, for targets with 1, 4, 16, 64 and 256 busy threads. Median and p90 over 50 applies
// (each followed by a revert). Usage: ulp_stop_window FIXTURES_DIR PATCH [threads...]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/fd.h"
#include "ulp/engine.h"

using namespace nines;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s BUSY_BINARY PATCH [threads...]\n", argv[0]);
    return 2;
  }
  std::string busy = argv[1];
  auto bytes = read_file(argv[2]);
  if (!bytes) return std::fprintf(stderr, "%s\n", bytes.error().message.c_str()), 1;
  auto patch = ulp::load_patch_object(*bytes, argv[2]);
  if (!patch) return std::fprintf(stderr, "%s\n", patch.error().message.c_str()), 1;
  std::vector<int> counts = {1, 4, 16, 64, 256};
  if (argc > 3) {
    counts.clear();
    for (int i = 3; i < argc; ++i) counts.push_back(std::atoi(argv[i]));
  }
  int runs = std::getenv("RUNS") ? std::atoi(std::getenv("RUNS")) : 50;
  std::printf("%-8s %-12s %-12s %-12s %-12s\n", "threads", "apply p50", "apply p90", "revert p50", "attempts");
  for (int n : counts) {
    int out[2];
    if (pipe(out)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
      dup2(out[1], 1);
      std::string arg = std::to_string(n);
      execl(busy.c_str(), busy.c_str(), arg.c_str(), (char*)nullptr);
      _exit(127);
    }
    close(out[1]);
    char buf[64];
    if (read(out[0], buf, sizeof buf) <= 0) return 1;
    usleep(200000);  // let every thread start spinning
    ulp::ElfCache cache;
    ulp::ApplyOptions opts;
    std::vector<double> apply_us, revert_us;
    int attempts = 0;
    for (int i = 0; i < runs; ++i) {
      auto a = ulp::apply_patch(*patch, pid, opts, cache);
      if (!a) return std::fprintf(stderr, "apply: %s\n", a.error().message.c_str()), 1;
      apply_us.push_back(a->stop_us);
      attempts += a->attempts;
      auto r = ulp::revert_patch(patch->meta.id, pid, opts);
      if (!r) return std::fprintf(stderr, "revert: %s\n", r.error().message.c_str()), 1;
      revert_us.push_back(r->stop_us);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    close(out[0]);
    auto pct = [](std::vector<double> v, double p) {
      std::sort(v.begin(), v.end());
      return v[static_cast<size_t>(p * (v.size() - 1))];
    };
    std::printf("%-8d %-12.0f %-12.0f %-12.0f %-12.2f\n", n, pct(apply_us, 0.5), pct(apply_us, 0.9),
                pct(revert_us, 0.5), static_cast<double>(attempts) / runs);
    std::fflush(stdout);
  }
  return 0;
}
