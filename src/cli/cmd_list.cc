// nines list [--pid PID[,PID...]] [--format text|json]   (no --pid: every patched process)
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "klp/cli.h"
#include "cli/pids.h"
#include "core/clock.h"
#include "proc/maps.h"
#include "ulp/registry.h"

namespace nines::cli {

Runner setup_list(CLI::App& app) {
  struct Args {
    std::vector<std::string> pids;
    std::string format = "text";
    bool kernel = false;
  };
  auto a = std::make_shared<Args>();
  app.add_option("--pid", a->pids, "Process id(s), comma separated (default: every process)");
  app.add_option("--format", a->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--kernel", a->kernel, "List kernel live patches");
  return [a]() -> int {
    if (a->kernel) {
      // kernel: `nines list --kernel` is wired here by the kernel part.
      return klp::cli_list(a->format);
    }
    std::vector<pid_t> pids;
    bool explicit_pids = !a->pids.empty();
    if (explicit_pids) {
      auto p = parse_pids(a->pids);
      if (!p) {
        std::fprintf(stderr, "nines list: %s\n", p.error().message.c_str());
        return 2;
      }
      pids = *p;
    } else {
      for (pid_t p : proc::list_processes())
        if (p != getpid()) pids.push_back(p);
    }
    nlohmann::json out = nlohmann::json::array();
    int errors = 0;
    for (pid_t pid : pids) {
      auto reg = ulp::read_registry(pid);
      if (!reg) {
        if (explicit_pids) {
          ++errors;
          std::fprintf(stderr, "nines list: pid %d: %s\n", pid, reg.error().message.c_str());
        }
        continue;
      }
      bool interrupted = *reg && (*reg)->interrupted();
      if (!explicit_pids && (!*reg || (*reg)->patches.empty()) && !interrupted) continue;
      // A switch killed between two writes: the code is half switched until the next apply
      // or revert of this process rolls it back (ulp/registry.h).
      nlohmann::json proc = {{"pid", pid},
                             {"interrupted_switch", interrupted},
                             {"patches", nlohmann::json::array()}};
      if (*reg)
        for (const auto& p : (*reg)->patches)
          proc["patches"].push_back({{"id", p.id}, {"version", p.version}, {"target", p.target_name},
                                     {"target_path", p.target_path}, {"build_id", p.target_build_id},
                                     {"functions", p.functions},
                                     {"applied", format_rfc3339(p.applied_unix)}});
      out.push_back(proc);
    }
    if (a->format == "json") {
      std::printf("%s\n", out.dump(2).c_str());
    } else {
      for (const auto& p : out) {
        if (p["interrupted_switch"].get<bool>())
          std::printf("pid %d: a switch was interrupted half done; the next `nines apply` or "
                      "`nines revert` on this process rolls it back\n",
                      p["pid"].get<int>());
        if (p["patches"].empty()) {
          std::printf("pid %d: no patches\n", p["pid"].get<int>());
          continue;
        }
        for (const auto& e : p["patches"]) {
          std::string fns;
          for (const auto& f : e["functions"]) fns += (fns.empty() ? "" : ", ") + f.get<std::string>();
          std::printf("pid %d: %s (version %lld) on %s [%s] applied %s: %s\n", p["pid"].get<int>(),
                      e["id"].get<std::string>().c_str(), static_cast<long long>(e["version"].get<int64_t>()),
                      e["target"].get<std::string>().c_str(), e["build_id"].get<std::string>().c_str(),
                      e["applied"].get<std::string>().c_str(), fns.c_str());
        }
      }
      if (out.empty()) std::printf("no patched process\n");
    }
    return errors ? 1 : 0;
  };
}

}  // namespace nines::cli
