#include "advisor/cves.h"

#include <unistd.h>

#include <unordered_set>

#include "advisor/verdict.h"
#include "bundle/bundle.h"
#include "core/clock.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/strings.h"

namespace nines::advisor {
namespace {

bool is_microcode_package(std::string_view name) {
  return name == "intel-microcode" || name == "amd64-microcode";
}

std::string unit_of(const Owner& o) {
  switch (o.kind) {
    case OwnerKind::kSession:
    case OwnerKind::kUserManager:
      return session_label(o);
    case OwnerKind::kNone:
      return "";
    default:
      return o.name;
  }
}

// Which installed package each stale object belongs to, and the version each process
// runs of it: one StaleUse per process and package.
Result<std::vector<StaleUse>> stale_uses(const CveContext& ctx, const DpkgVersions& versions,
                                         const TrackerData& tracker,
                                         std::unordered_set<std::string>* log_packages) {
  std::vector<StaleUse> uses;
  // A container's files belong to its own packages, not to this dpkg database: only
  // processes outside containers are attributed.
  auto attributable = [](const StaleProcess& p) { return p.owner.kind != OwnerKind::kContainer; };
  std::vector<std::string> paths;
  for (const StaleProcess& p : ctx.processes)
    if (attributable(p))
      for (const StaleObject& o : p.objects) paths.push_back(o.path);
  if (paths.empty()) return uses;
  // Only packages with a fix installed can be "restart-needed": their lists alone are read.
  std::vector<const DpkgPackage*> candidates;
  for (const DpkgPackage& pkg : ctx.dpkg.packages) {
    if (is_kernel_source(pkg.source)) continue;
    auto it = tracker.by_source.find(pkg.source);
    if (it == tracker.by_source.end()) continue;
    for (const TrackerEntry& e : it->second)
      if (e.status == TrackerStatus::kResolved && !e.fixed_version.empty() &&
          !versions.less(pkg.source_version, e.fixed_version)) {
        candidates.push_back(&pkg);
        break;
      }
  }
  std::unordered_map<std::string, std::string> owners =
      package_owners(ctx.root, candidates, paths);
  for (const StaleProcess& p : ctx.processes) {
    if (!attributable(p)) continue;
    std::map<std::string, StaleUse> by_package;
    for (const StaleObject& o : p.objects) {
      auto it = owners.find(o.path);
      if (it == owners.end()) continue;
      StaleUse& u = by_package[it->second];
      u.pid = p.pid;
      u.unit = unit_of(p.owner);
      u.package = it->second;
      u.libc = u.libc || (o.interpreter.empty() && is_libc(o.path));
      if (!o.patched_by.empty()) {
        u.patched_by = o.patched_by;
        u.patched_version = o.patched_version;
      }
      log_packages->insert(it->second);
    }
    for (auto& entry : by_package) uses.push_back(std::move(entry.second));
  }
  return uses;
}

}  // namespace

std::string agent_cve_data_path(const Root& root) {
  return root.path("/var/lib/nines/cve-data.json");
}

Result<std::string> os_codename(const Root& root) {
  for (const char* f : {"/etc/os-release", "/usr/lib/os-release"}) {
    std::string path = root.path(f);
    auto text = read_file(path, 1 << 16);
    if (!text.ok()) continue;
    for (std::string_view l : split(*text, '\n')) {
      if (!starts_with(l, "VERSION_CODENAME=")) continue;
      std::string_view v = trim(l.substr(17));
      if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
        v = v.substr(1, v.size() - 2);
      if (!v.empty()) return std::string(v);
    }
    return make_error("read the release: {} has no VERSION_CODENAME", path);
  }
  return make_error("read the release: neither {} nor {} can be read",
                    root.path("/etc/os-release"), root.path("/usr/lib/os-release"));
}

Result<CveFacts> check_cves(const CveOptions& opts, const CveContext& ctx) {
  CveFacts f;
  Stopwatch sw;
  // 1. The data: --cve-data, else the agent's copy, else nothing to do.
  f.data_file = opts.data_file;
  if (f.data_file.empty()) {
    std::string copy = agent_cve_data_path(ctx.root);
    if (::access(copy.c_str(), F_OK) != 0) {
      f.notes.push_back(fmt::format(
          "no CVE data (--cve-data FILE, or the agent's copy {}): CVE exposure not checked",
          copy));
      return f;
    }
    f.data_file = copy;
  }
  if (!ctx.dpkg.present) {
    f.notes.push_back(fmt::format("{} does not exist: CVE exposure not checked", ctx.dpkg.path));
    return f;
  }
  // 2. The release, dpkg's version order, and the tracker's entries for what is installed.
  f.release = NINES_TRY(os_codename(ctx.root));
  DpkgVersions versions = NINES_TRY(DpkgVersions::load(opts.apt_library));
  std::unordered_set<std::string> wanted{"linux"};
  for (const DpkgPackage& p : ctx.dpkg.packages) wanted.insert(p.source);
  Stopwatch read;
  TrackerData tracker = NINES_TRY(read_tracker_file(f.data_file, wanted, f.release));
  spdlog::debug("check: CVE data {}: {} sources, {} kept for {}: {:.1f} ms", f.data_file,
                tracker.sources, tracker.by_source.size(), f.release,
                static_cast<double>(read.elapsed_ns()) / 1e6);

  ExposureInput in;
  in.packages = &ctx.dpkg.packages;
  in.tracker = &tracker;
  if (auto v = debian_kernel_version(ctx.uname_v)) {
    in.running_kernel_version = *v;
  } else {
    f.notes.push_back(fmt::format(
        "the running kernel's package version is unknown (uname -v: '{}'): kernel CVEs not "
        "checked",
        ctx.uname_v));
  }
  f.running_kernel_version = in.running_kernel_version;

  // 3. What still runs old code, and which version: dpkg's file lists and log.
  std::unordered_set<std::string> log_packages;
  in.stale = NINES_TRY(stale_uses(ctx, versions, tracker, &log_packages));
  std::vector<std::string> since_boot;
  for (const PackageChange& c : ctx.bootloader.upgraded) since_boot.push_back(c.package);
  if (ctx.microcode.status == MicrocodeStatus::kObsolete && !ctx.microcode.virtual_machine)
    for (const DpkgPackage& p : ctx.dpkg.packages)
      if (is_microcode_package(p.name)) since_boot.push_back(p.name);
  log_packages.insert(since_boot.begin(), since_boot.end());
  if (!log_packages.empty()) {
    std::vector<DpkgUpgrade> log = NINES_TRY(read_dpkg_log(ctx.root, log_packages));
    std::unordered_map<pid_t, int64_t> starts;
    for (const StaleProcess& p : ctx.processes) starts[p.pid] = p.start_unix;
    for (StaleUse& u : in.stale)
      if (int64_t start = starts[u.pid]; start > 0)
        u.runs_version = version_replaced_since(log, u.package, start);
    for (const std::string& pkg : since_boot)
      in.boot_versions[pkg] = version_replaced_since(log, pkg, ctx.boot_unix);
  }

  // 4. The CVEs that signed bundles name (their ratings come first), and those of the
  // live patches applied: user space by patch id and version from each process's registry
  // (scan + mark_patched), the kernel's from its livepatch modules.
  std::string trust = opts.trust_dir.empty() ? ctx.root.path(bundle::kDefaultTrustDir)
                                             : opts.trust_dir;
  in.signed_cves = read_signed_cves(ctx.root, trust, &f.notes);
  for (const KernelLivepatch& lp : ctx.kernel_livepatches) {
    if (!lp.enabled || lp.id.empty()) continue;
    auto it = in.signed_cves.by_patch.find({lp.id, lp.version});
    if (it == in.signed_cves.by_patch.end()) {
      f.notes.push_back(fmt::format(
          "kernel livepatch {} ({} version {}): no signed bundle of it is kept, its CVEs are "
          "unknown",
          lp.name, lp.id, lp.version));
      continue;
    }
    for (const std::string& cve : it->second) in.kernel_livepatch_cves[cve].push_back(lp.id);
  }

  // 5. The states.
  ExposureResult r = assess_exposure(in, versions);
  f.cves = std::move(r.cves);
  f.kernel_fixes = std::move(r.kernel_fixes);
  f.checked = true;
  f.ms = static_cast<double>(sw.elapsed_ns()) / 1e6;
  return f;
}

}  // namespace nines::advisor
