// nines revert ID --pid PID[,PID...] | --all  [--no-stack-check] [--timeout MS]
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "klp/cli.h"
#include "cli/pids.h"
#include "ulp/engine.h"

namespace nines::cli {

Runner setup_revert(CLI::App& app) {
  struct Args {
    std::string id;
    std::vector<std::string> pids;
    bool all = false, no_stack_check = false, kernel = false;
    int64_t timeout_ms = 5000;
  };
  auto a = std::make_shared<Args>();
  app.add_option("id", a->id, "Patch id")->required();
  auto* pid = app.add_option("--pid", a->pids, "Process id(s), comma separated");
  auto* all = app.add_flag("--all", a->all, "Every process where the patch is applied");
  pid->excludes(all);
  app.add_flag("--kernel", a->kernel, "Revert a kernel live patch");
  app.add_flag("--no-stack-check", a->no_stack_check, "Skip the stack check (see apply)");
  app.add_option("--timeout", a->timeout_ms, "Consistency retries stop after this many ms");
  auto* timeout = app.get_option("--timeout");
  return [a, timeout]() -> int {
    if (a->kernel) {
      // kernel: `nines revert ID --kernel` is wired here by the kernel part (seconds: 60
      // unless --timeout MS is given).
      return klp::cli_revert(a->id, timeout->count() ? a->timeout_ms / 1000.0 : klp::kDefaultTimeoutS);
    }
    std::vector<pid_t> pids;
    if (a->all) {
      pids = ulp::processes_with_patch(a->id, {getppid()});
      if (pids.empty()) {
        std::printf("no process has %s applied\n", a->id.c_str());
        return 0;
      }
    } else {
      if (a->pids.empty()) {
        std::fprintf(stderr, "nines revert: --pid PID, --all or --kernel is required\n");
        return 2;
      }
      auto p = parse_pids(a->pids);
      if (!p) {
        std::fprintf(stderr, "nines revert: %s\n", p.error().message.c_str());
        return 2;
      }
      pids = *p;
    }
    ulp::ApplyOptions opts;
    opts.stack_check = !a->no_stack_check;
    opts.timeout_ms = a->timeout_ms;
    return run_in_worker([&]() -> int {
      int failures = 0;
      for (pid_t pid : pids) {
        auto out = ulp::revert_patch(a->id, pid, opts);
        if (!out) {
          ++failures;
          std::printf("pid %d: FAILED: %s\n", pid, out.error().message.c_str());
          continue;
        }
        if (out->action != "reverted")  // an interrupted switch rolled back instead
          std::printf("pid %d: %s\n", pid, out->action.c_str());
        else
          std::printf("%s\n", fmt::format("pid {}: reverted {}: switched {}; stop window {:.0f} us",
                                           pid, a->id, fmt::join(out->functions, ", "), out->stop_us)
                                   .c_str());
        std::fflush(stdout);
      }
      return failures ? 1 : 0;
    });
  };
}

}  // namespace nines::cli
