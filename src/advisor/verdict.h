// The verdict: what needs a restart and whether the machine needs a reboot, with reasons.
//
// The rule (issue 5): updates to glibc or another libc, to CPU microcode, to the
// bootloader, and kernel fixes rated medium or lower need a reboot; critical and high
// kernel fixes are covered by an applied kernel livepatch until the next reboot window
// (which fixes the pending kernel carries, their ratings and coverage come from the CVE
// data: exposure.h);
// other libraries need only their services restarted. Objects that nines patched in
// memory need nothing for the fixes their patch covers.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "advisor/bootloader.h"
#include "advisor/exposure.h"
#include "advisor/kernel.h"
#include "advisor/livepatch.h"
#include "advisor/microcode.h"
#include "advisor/scan.h"
#include "core/result.h"

namespace nines::advisor {

// Everything the checks found; the input of decide() and of the reports.
struct Facts {
  KernelFacts kernel;
  RebootRequired reboot_required;
  std::vector<KernelLivepatch> kernel_livepatches;
  MicrocodeFacts microcode;
  BootloaderFacts bootloader;
  CveFacts cves;  // CVE exposure; its kernel_fixes rate the kernel part of the verdict
  std::vector<StaleProcess> processes;
  size_t scanned_processes = 0, scanned_mappings = 0, vanished = 0;
  size_t interpreted = 0, source_files = 0;  // interpreter processes, their sources looked at
  double scan_ms = 0;
  std::vector<std::string> warnings;
};

enum class Reboot { kNo, kYes, kYesKernelLivepatchesApplied };
const char* reboot_name(Reboot r);  // "no" | "yes" | "yes-kernel-livepatches-applied"

// The exit statuses of `nines check`.
constexpr int kExitNothing = 0;
constexpr int kExitRestart = 1;
constexpr int kExitReboot = 2;
constexpr int kExitError = 3;

struct Verdict {
  Reboot reboot = Reboot::kNo;
  std::vector<std::string> reboot_reasons;    // each alone makes the verdict "yes"
  std::vector<std::string> deferred_reasons;  // pending, covered by kernel livepatches
  std::vector<std::string> restart_reasons;   // one line per stale process
  std::vector<std::string> notes;             // found, but no action (microcode in a VM)

  // Restart targets, sorted and unique.
  std::vector<std::string> units;        // systemd units; "systemd-manager" for PID 1
  std::vector<std::string> sessions;     // "USER @ session #N", "USER @ user manager service"
  std::vector<std::string> containers;   // "docker:0123abcd4567", ...
  std::vector<pid_t> unattributed;       // stale processes outside any unit, session, container
  std::vector<pid_t> patched_in_memory;  // stale, but every stale object is patched by nines

  bool restarts_pending() const {
    return !units.empty() || !sessions.empty() || !containers.empty() || !unattributed.empty();
  }
  int exit_code() const {
    if (reboot != Reboot::kNo) return kExitReboot;
    return restarts_pending() ? kExitRestart : kExitNothing;
  }
};

// True for the C library and its dynamic loader (glibc, musl): every process maps it, so
// restarting "its services" means restarting everything.
bool is_libc(std::string_view path);

// True for packages that carry a kernel image (linux-image-*, linux-signed-*).
bool is_kernel_package(std::string_view name);

// Applies the rule to the facts. Pure: no I/O, so the table of cases is unit-tested.
Verdict decide(const Facts& facts);

// "alice @ session #3" as needrestart prints sessions.
std::string session_label(const Owner& owner);

}  // namespace nines::advisor
