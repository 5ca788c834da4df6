#include "advisor/verdict.h"

#include <pwd.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "core/clock.h"
#include "core/strings.h"

namespace nines::advisor {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A pending kernel may carry hundreds of fixes: the reason names the first ones.
constexpr size_t kNamedKernelFixes = 10;

bool severe(std::string_view severity) {
  std::string s = lower(severity);
  return s == "critical" || s == "high";
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

std::string user_name(int64_t uid) {
  if (uid < 0) return "?";
  if (passwd* pw = getpwuid(static_cast<uid_t>(uid))) return pw->pw_name;
  return std::to_string(uid);
}

template <typename T>
void sort_unique(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

const char* reboot_name(Reboot r) {
  switch (r) {
    case Reboot::kNo:
      return "no";
    case Reboot::kYes:
      return "yes";
    case Reboot::kYesKernelLivepatchesApplied:
      return "yes-kernel-livepatches-applied";
  }
  return "no";
}

bool is_libc(std::string_view path) {
  std::string name = basename_of(path);
  return starts_with(name, "libc.so") || starts_with(name, "libc-") ||
         starts_with(name, "ld-linux") || starts_with(name, "ld-musl") ||
         starts_with(name, "libc.musl") || starts_with(name, "ld64.so");
}

bool is_kernel_package(std::string_view name) {
  return starts_with(name, "linux-image-") || starts_with(name, "linux-signed-");
}

std::string session_label(const Owner& owner) {
  if (owner.kind == OwnerKind::kUserManager)
    return fmt::format("{} @ user manager service", user_name(owner.uid));
  std::string n = owner.name;
  if (starts_with(n, "session-")) n = "session #" + n.substr(8);
  return fmt::format("{} @ {}", user_name(owner.uid), n);
}

Verdict decide(const Facts& f) {
  Verdict v;

  // Processes: restarts, and libc (a reboot).
  std::set<std::string> stale_libcs;
  size_t libc_processes = 0;
  for (const StaleProcess& p : f.processes) {
    std::vector<std::string> open_objects, patched;
    bool old_libc = false;
    for (const StaleObject& o : p.objects) {
      if (!o.patched_by.empty()) {
        patched.push_back(fmt::format("{} (patched in memory by {})", o.path, o.patched_by));
        continue;
      }
      if (!o.interpreter.empty())
        open_objects.push_back(o.kind == StaleKind::kDeleted
                                   ? fmt::format("{} ({} script deleted)", o.path, o.interpreter)
                                   : fmt::format("{} ({} source changed after the process started)",
                                                 o.path, o.interpreter));
      else
        open_objects.push_back(fmt::format("{} ({})", o.path, stale_kind_name(o.kind)));
      if (is_libc(o.path)) {
        old_libc = true;
        stale_libcs.insert(o.path);
      }
    }
    if (old_libc) ++libc_processes;
    if (open_objects.empty()) {
      v.patched_in_memory.push_back(p.pid);
      continue;
    }
    std::string who;
    switch (p.owner.kind) {
      case OwnerKind::kUnit:
      case OwnerKind::kManager:
        v.units.push_back(p.owner.name);
        who = p.owner.name;
        break;
      case OwnerKind::kSession:
      case OwnerKind::kUserManager:
        v.sessions.push_back(session_label(p.owner));
        who = session_label(p.owner);
        break;
      case OwnerKind::kContainer:
        v.containers.push_back(p.owner.name);
        who = "container " + p.owner.name;
        break;
      case OwnerKind::kNone:
        v.unattributed.push_back(p.pid);
        who = "no unit";
        break;
    }
    std::string line =
        fmt::format("pid {} ({}, {}) runs {}", p.pid, p.comm, who, join(open_objects, ", "));
    if (!patched.empty()) line += "; " + join(patched, ", ");
    v.restart_reasons.push_back(std::move(line));
  }
  sort_unique(v.units);
  sort_unique(v.sessions);
  sort_unique(v.containers);
  sort_unique(v.unattributed);
  sort_unique(v.patched_in_memory);
  for (const std::string& lib : stale_libcs)
    v.reboot_reasons.push_back(fmt::format(
        "the C library was updated: {} processes still run the old {}", libc_processes, lib));

  // Microcode.
  if (f.microcode.status == MicrocodeStatus::kObsolete) {
    std::string what = fmt::format(
        "CPU microcode {} is loaded, {} offers {}",
        format_revision(f.microcode.vendor, f.microcode.current.value_or(0)), f.microcode.source,
        format_revision(f.microcode.vendor, f.microcode.available.value_or(0)));
    if (f.microcode.virtual_machine)
      v.notes.push_back(what + " (virtual machine: the host loads microcode)");
    else
      v.reboot_reasons.push_back(what);
  }

  // Bootloader.
  for (const PackageChange& c : f.bootloader.upgraded)
    v.reboot_reasons.push_back(
        fmt::format("bootloader package {} {} was installed at {}, after boot", c.package,
                    c.version, format_rfc3339(c.changed_unix)));

  // Kernel: a newer installed kernel, or packages asking for a reboot.
  std::vector<std::string> kernel_pending;
  if (f.kernel.status == KernelStatus::kVersionUpgrade)
    kernel_pending.push_back(fmt::format("kernel {} is installed, {} is running",
                                         f.kernel.expected_release, f.kernel.running_release));
  if (f.kernel.status == KernelStatus::kAbiUpgrade)
    kernel_pending.push_back(
        fmt::format("an ABI-compatible rebuild of the running kernel {} is installed",
                    f.kernel.running_release));
  if (f.reboot_required.present) {
    std::vector<std::string> other, kernel;
    for (const std::string& p : f.reboot_required.packages)
      (is_kernel_package(p) ? kernel : other).push_back(p);
    if (!other.empty() || f.reboot_required.packages.empty())
      v.reboot_reasons.push_back(
          other.empty() ? std::string("/var/run/reboot-required is present")
                        : fmt::format("/var/run/reboot-required lists {}", join(other, ", ")));
    if (!kernel.empty())
      kernel_pending.push_back(
          fmt::format("/var/run/reboot-required lists {}", join(kernel, ", ")));
  }
  if (!kernel_pending.empty()) {
    std::vector<std::string> live;
    for (const KernelLivepatch& lp : f.kernel_livepatches)
      if (lp.enabled) live.push_back(lp.name);
    std::vector<std::string> need;  // fixes a livepatch does not carry until the window
    size_t needed = 0;
    for (const KernelFix& fix : f.cves.kernel_fixes) {
      if (fix.covered && severe(fix.severity)) continue;
      if (++needed <= kNamedKernelFixes)
        need.push_back(fmt::format("{} ({}{})", fix.id,
                                   fix.severity.empty() ? "unrated" : fix.severity,
                                   fix.covered ? "" : ", not live-patched"));
    }
    if (needed > kNamedKernelFixes)
      need.push_back(fmt::format("and {} more", needed - kNamedKernelFixes));
    for (const std::string& k : kernel_pending) {
      if (live.empty())
        v.reboot_reasons.push_back(k);
      else if (!need.empty())
        v.reboot_reasons.push_back(
            fmt::format("{}; kernel fixes that need it: {}", k, join(need, ", ")));
      else
        v.deferred_reasons.push_back(fmt::format(
            "{}; the running kernel is live-patched ({}): critical and high fixes are covered "
            "until the next reboot window",
            k, join(live, ", ")));
    }
  }

  if (!v.reboot_reasons.empty())
    v.reboot = Reboot::kYes;
  else if (!v.deferred_reasons.empty())
    v.reboot = Reboot::kYesKernelLivepatchesApplied;
  return v;
}

}  // namespace nines::advisor
