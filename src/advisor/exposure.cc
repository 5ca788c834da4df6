#include "advisor/exposure.h"

#include <algorithm>

#include "core/strings.h"

namespace nines::advisor {
namespace {

const std::vector<TrackerEntry>* entries_of(const TrackerData& t, const std::string& source) {
  auto it = t.by_source.find(source);
  return it == t.by_source.end() ? nullptr : &it->second;
}

// "0" is the tracker's "this release was never affected".
bool has_fix(const TrackerEntry& e) {
  return e.status == TrackerStatus::kResolved && !e.fixed_version.empty() &&
         e.fixed_version != "0";
}
bool no_fix_yet(const TrackerEntry& e) {
  return e.status == TrackerStatus::kOpen || e.status == TrackerStatus::kUndetermined;
}

class Assessor {
 public:
  Assessor(const ExposureInput& in, const DpkgVersions& v) : in_(in), v_(v) {
    for (const StaleUse& u : in_.stale) stale_by_package_[u.package].push_back(&u);
  }

  ExposureResult run() {
    for (const DpkgPackage& p : *in_.packages)
      if (!is_kernel_source(p.source)) package(p);
    kernel();
    std::sort(out_.cves.begin(), out_.cves.end(), [](const CveExposure& a, const CveExposure& b) {
      return std::tie(a.state, a.package, a.id) < std::tie(b.state, b.package, b.id);
    });
    return std::move(out_);
  }

 private:
  std::string severity(const TrackerEntry& e) const {
    auto it = in_.signed_cves.severity.find(e.cve);
    return it != in_.signed_cves.severity.end() ? it->second : severity_from_urgency(e.urgency);
  }

  CveExposure make(const TrackerEntry& e, const std::string& package, CveState s,
                   const std::string& installed) const {
    CveExposure x;
    x.id = e.cve;
    x.package = package;
    x.severity = severity(e);
    x.state = s;
    if (has_fix(e)) x.fixed_version = e.fixed_version;
    x.installed_version = installed;
    return x;
  }

  bool names(const StaleUse& u, const std::string& cve) const {
    if (u.patched_by.empty()) return false;
    auto it = in_.signed_cves.by_patch.find({u.patched_by, u.patched_version});
    return it != in_.signed_cves.by_patch.end() && it->second.count(cve);
  }

  // One installed binary package: every CVE of its source.
  void package(const DpkgPackage& p) {
    const std::vector<TrackerEntry>* entries = entries_of(*in_.tracker, p.source);
    if (!entries) return;
    auto stale = stale_by_package_.find(p.name);
    auto boot = in_.boot_versions.find(p.name);
    for (const TrackerEntry& e : *entries) {
      if (no_fix_yet(e)) {
        out_.cves.push_back(make(e, p.name, CveState::kUnfixed, p.version));
        continue;
      }
      if (!has_fix(e)) continue;  // not affected, or no version to compare
      // The tracker names source versions; a binNMU's binary version differs.
      if (v_.less(p.source_version, e.fixed_version)) {
        out_.cves.push_back(make(e, p.name, CveState::kFixNotInstalled, p.version));
        continue;
      }
      // Installed and fixed. Code that runs since boot (microcode, bootloader) needs a
      // reboot when the version at boot lacked the fix (unknown counts as lacking it).
      if (boot != in_.boot_versions.end() &&
          (!boot->second || v_.less(*boot->second, e.fixed_version))) {
        CveExposure x = make(e, p.name, CveState::kRebootNeeded, p.version);
        out_.cves.push_back(std::move(x));
        continue;
      }
      if (stale == stale_by_package_.end()) continue;
      processes(e, p, stale->second);
    }
  }

  // Processes that run code of `p` from before its upgrade: those whose version lacks the
  // fix are exposed unless a live patch applied over that code names the CVE.
  void processes(const TrackerEntry& e, const DpkgPackage& p,
                 const std::vector<const StaleUse*>& uses) {
    std::vector<const StaleUse*> exposed, covered;
    bool libc = false;
    for (const StaleUse* u : uses) {
      if (u->runs_version && !v_.less(*u->runs_version, e.fixed_version)) continue;
      if (names(*u, e.cve)) {
        covered.push_back(u);
      } else {
        exposed.push_back(u);
        libc = libc || u->libc;
      }
    }
    if (exposed.empty() && covered.empty()) return;
    CveState s = !exposed.empty() ? (libc ? CveState::kRebootNeeded : CveState::kRestartNeeded)
                                  : CveState::kLivepatched;
    CveExposure x = make(e, p.name, s, p.version);
    for (const StaleUse* u : exposed.empty() ? covered : exposed) {
      x.processes.push_back(CveProcess{u->pid, u->unit, u->runs_version.value_or("")});
      if (s == CveState::kLivepatched &&
          std::find(x.livepatches.begin(), x.livepatches.end(), u->patched_by) ==
              x.livepatches.end())
        x.livepatches.push_back(u->patched_by);
    }
    out_.cves.push_back(std::move(x));
  }

  // The running kernel against source package "linux".
  void kernel() {
    const std::string& running = in_.running_kernel_version;
    const std::vector<TrackerEntry>* entries = entries_of(*in_.tracker, "linux");
    if (running.empty() || !entries) return;
    std::string newest;  // the newest kernel image installed
    for (const DpkgPackage& p : *in_.packages)
      if ((starts_with(p.name, "linux-image-") || starts_with(p.name, "linux-signed-")) &&
          (newest.empty() || v_.less(newest, p.version)))
        newest = p.version;
    for (const TrackerEntry& e : *entries) {
      auto live = in_.kernel_livepatch_cves.find(e.cve);
      bool covered = live != in_.kernel_livepatch_cves.end();
      CveState s;
      if (no_fix_yet(e)) {
        s = CveState::kUnfixed;
      } else if (!has_fix(e) || !v_.less(running, e.fixed_version)) {
        continue;  // the running kernel has the fix
      } else if (!newest.empty() && !v_.less(newest, e.fixed_version)) {
        s = CveState::kRebootNeeded;
        out_.kernel_fixes.push_back(KernelFix{e.cve, severity(e), covered});
      } else {
        s = CveState::kFixNotInstalled;
      }
      CveExposure x = make(e, "linux", covered ? CveState::kLivepatched : s, running);
      if (covered) x.livepatches = live->second;
      out_.cves.push_back(std::move(x));
    }
  }

  const ExposureInput& in_;
  const DpkgVersions& v_;
  std::unordered_map<std::string, std::vector<const StaleUse*>> stale_by_package_;
  ExposureResult out_;
};

}  // namespace

const char* cve_state_name(CveState s) {
  switch (s) {
    case CveState::kUnfixed:
      return "unfixed";
    case CveState::kFixNotInstalled:
      return "fix-not-installed";
    case CveState::kRestartNeeded:
      return "restart-needed";
    case CveState::kRebootNeeded:
      return "reboot-needed";
    case CveState::kLivepatched:
      return "livepatched";
  }
  return "unfixed";
}

bool is_kernel_source(std::string_view source) {
  return source == "linux" || starts_with(source, "linux-signed-");
}

std::optional<std::string> debian_kernel_version(std::string_view uname_v) {
  size_t at = uname_v.find(" Debian ");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = uname_v.substr(at + 8);
  std::string_view v = rest.substr(0, rest.find(' '));
  if (v.empty() || !std::isdigit(static_cast<unsigned char>(v.front()))) return std::nullopt;
  return std::string(v);
}

ExposureResult assess_exposure(const ExposureInput& in, const DpkgVersions& versions) {
  return Assessor(in, versions).run();
}

std::map<std::pair<CveState, std::string>, size_t> exposure_counts(
    const std::vector<CveExposure>& cves) {
  std::set<std::tuple<CveState, std::string, std::string>> seen;
  for (const CveExposure& c : cves) seen.emplace(c.state, c.severity, c.id);
  std::map<std::pair<CveState, std::string>, size_t> counts;
  for (const auto& [state, severity, id] : seen) ++counts[{state, severity}];
  return counts;
}

}  // namespace nines::advisor
