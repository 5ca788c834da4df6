// `nines check --restart`: restarts the systemd units that run outdated code through a
// configurable command (the service manager is a seam: tests point it at a recorder).
// Never PID 1 (a stale systemd gets `systemctl daemon-reexec` instead), never the unit
// nines itself runs in (the agent), never a unit on the deny list.
#pragma once

#include <string>
#include <vector>

#include "advisor/verdict.h"
#include "core/result.h"

namespace nines::advisor {

struct RestartPolicy {
  std::vector<std::string> command{"systemctl", "restart"};  // + UNIT
  std::vector<std::string> reexec_command{"systemctl", "daemon-reexec"};
  std::vector<std::string> deny;     // fnmatch(3) patterns of unit names
  std::vector<std::string> protect;  // units never touched: ours and the agent's
};

// Display managers and the units whose restart ends sessions or the bus.
std::vector<std::string> default_deny_list();

// The units this process and its parent run in, plus nines-agent*.service.
std::vector<std::string> own_units();

// Splits "systemctl restart" on blanks into an argument vector; empty -> error.
Result<std::vector<std::string>> split_command(const std::string& text);

struct RestartStep {
  std::string unit;
  std::vector<std::string> argv;  // empty when skipped
  std::string skipped;            // why not, when skipped
};

std::vector<RestartStep> plan_restarts(const Verdict& verdict, const RestartPolicy& policy);

struct RestartOutcome {
  RestartStep step;
  bool ok = false;
  std::string message;  // the error or the command's output tail
};

// Runs each planned command in order; one failure does not stop the others.
std::vector<RestartOutcome> run_restarts(const std::vector<RestartStep>& plan);

}  // namespace nines::advisor
