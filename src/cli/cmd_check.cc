// nines check: what needs a restart or a reboot, and why (issue 5, docs/ADVISOR.md).
// Exit status: 0 nothing pending, 1 service restarts pending, 2 reboot required, 3 error.
#include <cstdio>
#include <memory>

#include <fmt/ranges.h>

#include "advisor/check.h"
#include "advisor/report.h"
#include "advisor/restart.h"
#include "cli/commands.h"
#include "core/fd.h"

namespace nines::cli {

namespace {

struct CheckArgs {
  std::string format = "text";
  std::string root = "/";
  std::string cpuinfo = "/proc/cpuinfo";
  std::string cve_data;
  std::string trust;
  std::string uname_v;
  bool restart = false;
  bool dry_run = false;
  std::string restart_command = "systemctl restart";
  std::string reexec_command = "systemctl daemon-reexec";
  std::vector<std::string> deny;
  bool no_default_deny = false;
};

int run_check(const CheckArgs& a) {
  using namespace nines::advisor;
  RestartPolicy policy;
  if (a.restart) {
    auto cmd = split_command(a.restart_command);
    auto reexec = split_command(a.reexec_command);
    if (!cmd.ok() || !reexec.ok()) {
      std::fprintf(stderr, "nines check: %s\n",
                   (!cmd.ok() ? cmd.error() : reexec.error()).message.c_str());
      return kExitError;
    }
    policy.command = *cmd;
    policy.reexec_command = *reexec;
    if (!a.no_default_deny) policy.deny = default_deny_list();
    policy.deny.insert(policy.deny.end(), a.deny.begin(), a.deny.end());
    policy.protect = own_units();
  }

  CheckOptions opts;
  opts.root = a.root;
  opts.cpuinfo = a.cpuinfo;
  opts.cve.data_file = a.cve_data;
  opts.cve.trust_dir = a.trust;
  opts.uname_v = a.uname_v;
  auto facts = gather_facts(opts);
  if (!facts.ok()) {
    std::fprintf(stderr, "nines check: %s\n", facts.error().message.c_str());
    return kExitError;
  }
  Verdict verdict = decide(*facts);

  if (a.format == "json") {
    std::printf("%s\n", to_json(*facts, verdict).dump(2).c_str());
  } else if (a.format == "batch") {
    std::fputs(render_batch(*facts, verdict, "nines-" NINES_VERSION).c_str(), stdout);
  } else {
    std::fputs(render_text(*facts, verdict).c_str(), stdout);
  }
  if (!a.restart) return verdict.exit_code();

  // Restarts: the plan on stderr for machine formats, so stdout stays parseable.
  FILE* out = a.format == "text" ? stdout : stderr;
  std::vector<RestartStep> plan = plan_restarts(verdict, policy);
  if (plan.empty()) std::fprintf(out, "Restart: no unit to restart.\n");
  if (a.dry_run) {
    for (const RestartStep& s : plan) {
      if (s.argv.empty())
        std::fprintf(out, "would skip %s: %s\n", s.unit.c_str(), s.skipped.c_str());
      else
        std::fprintf(out, "would run: %s\n", fmt::format("{}", fmt::join(s.argv, " ")).c_str());
    }
    return verdict.exit_code();
  }
  bool all_done = true;
  for (const RestartOutcome& o : run_restarts(plan)) {
    if (o.step.argv.empty()) {
      std::fprintf(out, "skipped %s: %s\n", o.step.unit.c_str(), o.message.c_str());
      all_done = false;
    } else if (o.ok) {
      std::fprintf(out, "restarted %s\n", o.step.unit.c_str());
    } else {
      std::fprintf(stderr, "nines check: %s\n", o.message.c_str());
      all_done = false;
    }
  }
  // What is left pending: restarts that were skipped or failed, processes outside units.
  if (verdict.reboot != Reboot::kNo) return kExitReboot;
  bool left = !all_done || !verdict.sessions.empty() || !verdict.containers.empty() ||
              !verdict.unattributed.empty();
  return left ? kExitRestart : kExitNothing;
}

}  // namespace

Runner setup_check(CLI::App& app) {
  auto a = std::make_shared<CheckArgs>();
  app.add_option("--format", a->format, "Output: text, json, or batch (needrestart -b lines)")
      ->check(CLI::IsMember({"text", "json", "batch"}));
  app.add_option("--root", a->root,
                 "Read /boot, /lib/firmware, /var/lib/dpkg, /var/run, /sys/kernel/livepatch "
                 "under DIR (processes always come from /proc)");
  app.add_option("--cpuinfo", a->cpuinfo, "Read the CPU from this file instead of /proc/cpuinfo");
  app.add_option("--cve-data", a->cve_data,
                 "Debian security tracker JSON: which CVEs this machine runs (default: the "
                 "agent's copy, ROOT/var/lib/nines/cve-data.json, when there is one)");
  app.add_option("--trust", a->trust,
                 "Publisher keys for the bundles whose manifests name CVEs (default "
                 "ROOT/etc/nines/trusted-keys.d)");
  app.add_option("--uname-v", a->uname_v,
                 "The running kernel's build string as `uname -v` prints it (checking a "
                 "saved state)");
  app.add_flag("--restart", a->restart, "Restart the systemd units that run outdated code");
  app.add_flag("--dry-run", a->dry_run, "With --restart: print the plan, run nothing");
  app.add_option("--restart-command", a->restart_command,
                 "Command that restarts one unit (the unit name is appended)");
  app.add_option("--reexec-command", a->reexec_command,
                 "Command run instead when PID 1 (systemd) runs outdated code");
  app.add_option("--deny", a->deny, "Never restart units matching this pattern (repeatable)");
  app.add_flag("--no-default-deny", a->no_default_deny,
               "Drop the built-in deny list (display managers, dbus, getty, user@)");
  return [a] {
    if (a->dry_run && !a->restart) {
      std::fprintf(stderr, "nines check: --dry-run needs --restart\n");
      return nines::advisor::kExitError;
    }
    return run_check(*a);
  };
}

}  // namespace nines::cli
