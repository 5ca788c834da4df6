#include "advisor/restart.h"

#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>

#include "core/fd.h"
#include "core/strings.h"
#include "core/subprocess.h"

namespace nines::advisor {

std::vector<std::string> default_deny_list() {
  return {"display-manager.service",
          "gdm.service",
          "gdm3.service",
          "lightdm.service",
          "sddm.service",
          "xdm.service",
          "lxdm.service",
          "nodm.service",
          "slim.service",
          "wdm.service",
          "dbus.service",
          "dbus-broker.service",
          "getty@*.service",
          "serial-getty@*.service",
          "user@*.service",
          "emergency.service",
          "rescue.service"};
}

std::vector<std::string> own_units() {
  std::vector<std::string> out{"nines-agent*.service"};
  for (const std::string& path :
       {std::string("/proc/self/cgroup"), fmt::format("/proc/{}/cgroup", getppid())}) {
    auto text = read_file(path, 1 << 16);
    if (!text.ok()) continue;
    Owner o = owner_from_cgroup(*text);
    if (o.kind == OwnerKind::kUnit) out.push_back(o.name);
  }
  return out;
}

Result<std::vector<std::string>> split_command(const std::string& text) {
  std::vector<std::string> argv;
  for (std::string_view w : split(text, ' '))
    if (!trim(w).empty()) argv.emplace_back(trim(w));
  if (argv.empty()) return make_error("restart command: empty command \"{}\"", text);
  return argv;
}

std::vector<RestartStep> plan_restarts(const Verdict& v, const RestartPolicy& policy) {
  auto matches = [](const std::vector<std::string>& pats, const std::string& unit) {
    return std::any_of(pats.begin(), pats.end(), [&](const std::string& p) {
      return fnmatch(p.c_str(), unit.c_str(), 0) == 0;
    });
  };
  std::vector<RestartStep> plan;
  for (const std::string& unit : v.units) {
    RestartStep s;
    s.unit = unit;
    if (unit == "systemd-manager") {
      s.argv = policy.reexec_command;  // PID 1 is re-executed, never restarted
    } else if (unit == "init.scope" || unit == "-.slice") {
      s.skipped = "PID 1 is never restarted";
    } else if (matches(policy.protect, unit)) {
      s.skipped = "nines runs in this unit";
    } else if (matches(policy.deny, unit)) {
      s.skipped = "on the deny list";
    } else {
      s.argv = policy.command;
      s.argv.push_back(unit);
    }
    plan.push_back(std::move(s));
  }
  return plan;
}

std::vector<RestartOutcome> run_restarts(const std::vector<RestartStep>& plan) {
  std::vector<RestartOutcome> out;
  for (const RestartStep& s : plan) {
    RestartOutcome o;
    o.step = s;
    if (s.argv.empty()) {
      o.message = s.skipped;
      out.push_back(std::move(o));
      continue;
    }
    auto r = run_checked(s.argv);
    o.ok = r.ok();
    o.message = r.ok() ? std::string(trim(*r)) : r.error().wrap("restart " + s.unit).message;
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace nines::advisor
