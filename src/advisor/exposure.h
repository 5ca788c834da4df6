// Exposure: which CVEs this machine runs right now (issue 16), from the distribution's own
// data: Debian's security tracker (tracker.h), dpkg's database, file lists and log
// (dpkg.h), the running kernel's package version (`uname -v`), what still runs old code
// (scan.h) and what nines live-patched, as the signed manifests of its bundles name it.
//
// Every CVE of the source package of every installed binary package is put in one state:
//   unfixed            the distribution has no fix yet;
//   fix-not-installed  a fixed version exists, the installed one is older;
//   restart-needed     the installed version fixes it, processes still run code from
//                      before the upgrade, whose version (dpkg.log) is older than the fix;
//   reboot-needed      the same for the kernel (running version from uname -v), the C
//                      library, CPU microcode and the bootloader (version at boot);
//   livepatched        running code is vulnerable, an applied live patch names the CVE;
// fixed and not running old code: not listed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "advisor/dpkg.h"
#include "advisor/dpkg_version.h"
#include "advisor/tracker.h"

namespace nines::advisor {

enum class CveState { kUnfixed, kFixNotInstalled, kRestartNeeded, kRebootNeeded, kLivepatched };
// "unfixed" | "fix-not-installed" | "restart-needed" | "reboot-needed" | "livepatched"
const char* cve_state_name(CveState s);
inline constexpr CveState kAllCveStates[] = {CveState::kUnfixed, CveState::kFixNotInstalled,
                                             CveState::kRestartNeeded, CveState::kRebootNeeded,
                                             CveState::kLivepatched};

struct CveProcess {
  pid_t pid = 0;
  std::string unit;         // systemd unit, session, container; "" outside any
  std::string runs_version; // the version it runs (dpkg.log); "" when not logged
};

struct CveExposure {
  std::string id;                 // "CVE-2024-1234"
  std::string package;            // binary package; "linux" for the running kernel
  std::string severity;           // critical | high | medium | low | negligible | unknown
  CveState state = CveState::kUnfixed;
  std::string fixed_version;      // "" when unfixed
  std::string installed_version;  // the running kernel's version for "linux"
  std::vector<CveProcess> processes;   // restart-needed, reboot-needed (libc), livepatched
  std::vector<std::string> livepatches;  // patch ids naming it (livepatched)
};

// A fix that the newer installed kernel carries and the running one lacks, with its
// severity; `covered`: an applied kernel livepatch names it. The kernel part of the
// reboot verdict (verdict.h).
struct KernelFix {
  std::string id;        // "CVE-2026-1234"
  std::string severity;  // "critical" | "high" | "medium" | "low" | "negligible" | "unknown"
  bool covered = false;
};

// One stale process's use of one package: it maps (or, for an interpreter, read) files of
// the package that were replaced since it started.
struct StaleUse {
  pid_t pid = 0;
  std::string unit;
  std::string package;
  std::optional<std::string> runs_version;  // dpkg.log's replaced version; nullopt: unknown
  bool libc = false;                        // the C library: a reboot, not a restart
  std::string patched_by;                   // nines patch applied over it, if any
  int64_t patched_version = 0;
};

// The CVEs named by signed manifests (livepatch.h reads them).
struct SignedCves {
  std::map<std::pair<std::string, int64_t>, std::set<std::string>> by_patch;  // (id, version)
  std::unordered_map<std::string, std::string> severity;  // CVE -> highest rating
};

struct ExposureInput {
  const std::vector<DpkgPackage>* packages = nullptr;
  const TrackerData* tracker = nullptr;
  std::string running_kernel_version;  // "6.1.119-1"; "" when unknown: kernel not assessed
  std::vector<StaleUse> stale;
  // Packages whose code runs since boot (microcode, bootloader) and were upgraded since:
  // the version at boot (nullopt when the log does not say).
  std::map<std::string, std::optional<std::string>> boot_versions;
  // CVEs named by enabled kernel livepatches -> their patch ids.
  std::map<std::string, std::vector<std::string>> kernel_livepatch_cves;
  SignedCves signed_cves;
};

struct ExposureResult {
  std::vector<CveExposure> cves;       // sorted by state, package, id
  std::vector<KernelFix> kernel_fixes; // installed but not running
};

// What the CVE step of `nines check` found (cves.h gathers it).
struct CveFacts {
  bool checked = false;         // CVE data was found and read
  std::string data_file;        // the tracker file used
  std::string release;          // the machine's codename (ROOT/etc/os-release)
  std::string running_kernel_version;  // from uname -v; "" when not a Debian kernel
  std::vector<CveExposure> cves;
  std::vector<KernelFix> kernel_fixes;
  std::vector<std::string> notes;  // why the part was skipped, bundles not used, ...
  double ms = 0;
};

// Applies the states above. Pure apart from the version comparisons.
ExposureResult assess_exposure(const ExposureInput& in, const DpkgVersions& versions);

// Source packages whose CVEs are the running kernel's: "linux" and the signed wrappers.
bool is_kernel_source(std::string_view source);

// "6.1.119-1" from Debian's `uname -v`, "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1
// (2024-11-22)"; nullopt for a kernel not built by Debian.
std::optional<std::string> debian_kernel_version(std::string_view uname_v);

// The severities in the order the summaries list them.
inline constexpr const char* kSeverities[] = {"critical", "high",       "medium",
                                              "low",      "negligible", "unknown"};

// Counts of distinct CVE ids by state and severity, for the summaries.
std::map<std::pair<CveState, std::string>, size_t> exposure_counts(
    const std::vector<CveExposure>& cves);

}  // namespace nines::advisor
