#include "advisor/report.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <tuple>

#include <fmt/ranges.h>

#include "core/clock.h"

namespace nines::advisor {
namespace {

std::string hex32(uint32_t v) { return fmt::format("{:#x}", v); }

bool less_nocase(const std::string& a, const std::string& b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) <
           std::tolower(static_cast<unsigned char>(y));
  });
}

const StaleProcess* find_pid(const Facts& f, pid_t pid) {
  for (const StaleProcess& p : f.processes)
    if (p.pid == pid) return &p;
  return nullptr;
}

// Printable process name for one-line formats.
std::string clean(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  return s;
}

// "cves": one entry per CVE and package; "cve": where the data came from and the counts.
void cves_to_json(const CveFacts& c, nlohmann::json& j) {
  using nlohmann::json;
  json cves = json::array();
  for (const CveExposure& x : c.cves) {
    json procs = json::array();
    for (const CveProcess& p : x.processes) {
      json jp = {{"pid", p.pid}, {"unit", p.unit}};
      if (!p.runs_version.empty()) jp["runs_version"] = p.runs_version;
      procs.push_back(std::move(jp));
    }
    json e = {{"id", x.id},
              {"package", x.package},
              {"severity", x.severity},
              {"state", cve_state_name(x.state)},
              {"fixed_version", x.fixed_version},
              {"installed_version", x.installed_version},
              {"processes", procs}};
    if (!x.livepatches.empty()) e["livepatches"] = x.livepatches;
    cves.push_back(std::move(e));
  }
  j["cves"] = cves;
  json counts = json::array();
  for (const auto& [key, n] : exposure_counts(c.cves))
    counts.push_back({{"state", cve_state_name(key.first)}, {"severity", key.second}, {"count", n}});
  j["cve"] = {{"checked", c.checked},
              {"data", c.data_file},
              {"release", c.release},
              {"running_kernel_version", c.running_kernel_version},
              {"counts", counts},
              {"notes", c.notes},
              {"ms", c.ms}};
}

// "STATE SEVERITY COUNT" rows in the summaries' order: states as the enum lists them,
// severities from critical down.
std::vector<std::tuple<CveState, std::string, size_t>> cve_rows(const CveFacts& c) {
  std::vector<std::tuple<CveState, std::string, size_t>> rows;
  auto counts = exposure_counts(c.cves);
  for (CveState s : kAllCveStates)
    for (const char* sev : kSeverities)
      if (auto it = counts.find({s, sev}); it != counts.end()) rows.emplace_back(s, sev, it->second);
  return rows;
}

// The CVE summary of the text output: counts by state and severity, then the CVEs that
// an action removes (restart, reboot), with their processes.
std::string render_cve_text(const CveFacts& c) {
  std::string out;
  if (!c.checked) {
    for (const std::string& n : c.notes) out += fmt::format("CVEs: {}\n", n);
    return out;
  }
  auto rows = cve_rows(c);
  out += fmt::format("CVEs ({} data, {}):{}\n", c.release, c.data_file,
                     rows.empty() ? " none exposed" : "");
  std::string line;
  CveState last = CveState::kUnfixed;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& [state, severity, n] = rows[i];
    if (i == 0 || state != last) {
      if (!line.empty()) out += line + "\n";
      line = fmt::format("  {}: ", cve_state_name(state));
    } else {
      line += ", ";
    }
    line += fmt::format("{} {}", n, severity);
    last = state;
  }
  if (!line.empty()) out += line + "\n";
  constexpr size_t kListed = 20;  // a pending kernel can carry hundreds: JSON has them all
  size_t actionable = 0;
  for (const CveExposure& x : c.cves) {
    if (x.state != CveState::kRestartNeeded && x.state != CveState::kRebootNeeded) continue;
    if (++actionable > kListed) continue;
    std::vector<std::string> procs;
    for (const CveProcess& p : x.processes)
      procs.push_back(p.unit.empty() ? fmt::format("pid {}", p.pid)
                                     : fmt::format("pid {} ({})", p.pid, p.unit));
    out += fmt::format("  - {} {} ({}, fixed in {}): {}{}\n", x.id, x.package, x.severity,
                       x.fixed_version, cve_state_name(x.state),
                       procs.empty() ? "" : fmt::format(": {}", fmt::join(procs, ", ")));
  }
  if (actionable > kListed)
    out += fmt::format("  - and {} more (--format json lists every CVE)\n", actionable - kListed);
  for (const std::string& n : c.notes) out += fmt::format("  note: {}\n", n);
  return out;
}

}  // namespace

nlohmann::json to_json(const Facts& f, const Verdict& v) {
  using nlohmann::json;
  json j;
  j["verdict"] = {{"reboot", reboot_name(v.reboot)},
                  {"restart", v.restarts_pending()},
                  {"exit_code", v.exit_code()},
                  {"reboot_reasons", v.reboot_reasons},
                  {"deferred_reasons", v.deferred_reasons},
                  {"restart_reasons", v.restart_reasons},
                  {"notes", v.notes}};
  j["services"] = v.units;
  j["sessions"] = v.sessions;
  j["containers"] = v.containers;
  j["unattributed_pids"] = v.unattributed;
  j["patched_in_memory_pids"] = v.patched_in_memory;

  json images = json::array();
  for (const KernelImage& i : f.kernel.images)
    images.push_back({{"path", i.path}, {"release", i.release}, {"version", i.version}});
  json lps = json::array();
  for (const KernelLivepatch& lp : f.kernel_livepatches)
    lps.push_back({{"name", lp.name}, {"enabled", lp.enabled}, {"transition", lp.transition}});
  json fixes = json::array();
  for (const KernelFix& k : f.cves.kernel_fixes)
    fixes.push_back({{"id", k.id}, {"severity", k.severity}, {"covered", k.covered}});
  j["kernel"] = {
      {"status", kernel_status_name(f.kernel.status)},
      {"ksta", static_cast<int>(f.kernel.status)},
      {"running", f.kernel.running_release},
      {"running_version", f.kernel.running_version},
      {"expected", f.kernel.expected_release},
      {"images", images},
      {"livepatches", lps},
      {"fixes", fixes},
      {"reboot_required",
       {{"present", f.reboot_required.present}, {"packages", f.reboot_required.packages}}},
      {"notes", f.kernel.notes}};

  const MicrocodeFacts& m = f.microcode;
  j["microcode"] = {{"status", microcode_status_name(m.status)},
                    {"ucsta", static_cast<int>(m.status)},
                    {"vendor", m.vendor},
                    {"signature", hex32(m.signature)},
                    {"current", m.current ? json(hex32(*m.current)) : json(nullptr)},
                    {"available", m.available ? json(hex32(*m.available)) : json(nullptr)},
                    {"source", m.source},
                    {"virtual_machine", m.virtual_machine},
                    {"notes", m.notes}};

  json upgraded = json::array();
  for (const PackageChange& c : f.bootloader.upgraded)
    upgraded.push_back({{"package", c.package},
                        {"version", c.version},
                        {"changed", format_rfc3339(c.changed_unix)}});
  j["bootloader"] = {{"boot_time", format_rfc3339(f.bootloader.boot_unix)},
                     {"upgraded", upgraded},
                     {"notes", f.bootloader.notes}};

  json procs = json::array();
  for (const StaleProcess& p : f.processes) {
    json objs = json::array();
    for (const StaleObject& o : p.objects) {
      json jo = {{"path", o.path},
                 {"kind", stale_kind_name(o.kind)},
                 {"executable", o.is_executable},
                 {"dev", o.mapped_dev},
                 {"inode", o.mapped_ino}};
      if (!o.patched_by.empty()) jo["patched_by"] = o.patched_by;
      if (!o.build_id.empty()) jo["build_id"] = o.build_id;
      if (!o.interpreter.empty()) jo["interpreter"] = o.interpreter;
      objs.push_back(std::move(jo));
    }
    json owner = {{"kind", owner_kind_name(p.owner.kind)}, {"name", p.owner.name}};
    if (p.owner.uid >= 0) owner["uid"] = p.owner.uid;
    procs.push_back({{"pid", p.pid},
                     {"ppid", p.ppid},
                     {"uid", p.uid},
                     {"comm", p.comm},
                     {"exe", p.exe},
                     {"cgroup", p.cgroup},
                     {"owner", owner},
                     {"patched_in_memory", p.fully_patched()},
                     {"objects", objs}});
  }
  j["processes"] = procs;
  cves_to_json(f.cves, j);
  j["scan"] = {{"processes", f.scanned_processes}, {"mappings", f.scanned_mappings},
               {"interpreted", f.interpreted},     {"source_files", f.source_files},
               {"vanished", f.vanished},           {"ms", f.scan_ms}};
  j["warnings"] = f.warnings;
  return j;
}

std::string render_batch(const Facts& f, const Verdict& v, const std::string& version) {
  std::string out = fmt::format("NEEDRESTART-VER: {}\n", version);
  out += fmt::format("NEEDRESTART-KCUR: {}\n", f.kernel.running_release);
  if (!f.kernel.expected_release.empty())
    out += fmt::format("NEEDRESTART-KEXP: {}\n", f.kernel.expected_release);
  out += fmt::format("NEEDRESTART-KSTA: {}\n", static_cast<int>(f.kernel.status));
  const MicrocodeFacts& m = f.microcode;
  out += fmt::format("NEEDRESTART-UCSTA: {}\n", static_cast<int>(m.status));
  if (m.status != MicrocodeStatus::kUnknown) {
    out += fmt::format("NEEDRESTART-UCCUR: {}\n",
                       m.current ? format_revision(m.vendor, *m.current) : "");
    out += fmt::format("NEEDRESTART-UCEXP: {}\n",
                       m.available ? format_revision(m.vendor, *m.available) : "");
  }
  std::vector<std::string> units = v.units, conts = v.containers;
  std::sort(units.begin(), units.end(), less_nocase);
  std::sort(conts.begin(), conts.end(), less_nocase);
  for (const std::string& u : units) out += fmt::format("NEEDRESTART-SVC: {}\n", u);
  for (const std::string& c : conts) out += fmt::format("NEEDRESTART-CONT: {}\n", c);
  for (const std::string& s : v.sessions) out += fmt::format("NEEDRESTART-SESS: {}\n", s);
  // needrestart's user-mode line, "NAME=PID,PID", for what no unit owns.
  std::map<std::string, std::vector<pid_t>> by_name;
  for (pid_t pid : v.unattributed)
    if (const StaleProcess* p = find_pid(f, pid)) by_name[clean(p->comm)].push_back(pid);
  for (const auto& [name, pids] : by_name)
    out += fmt::format("NEEDRESTART-PID: {}={}\n", name, fmt::join(pids, ","));
  out += fmt::format("NINES-REBOOT: {}\n", reboot_name(v.reboot));
  for (pid_t pid : v.patched_in_memory) {
    const StaleProcess* p = find_pid(f, pid);
    if (!p) continue;
    std::vector<std::string> ids;
    for (const StaleObject& o : p->objects)
      if (std::find(ids.begin(), ids.end(), o.patched_by) == ids.end()) ids.push_back(o.patched_by);
    out += fmt::format("NINES-PATCHED: {}={}:{}\n", clean(p->comm), pid, fmt::join(ids, ","));
  }
  for (const auto& [state, severity, n] : cve_rows(f.cves))
    out += fmt::format("NINES-CVE: {} {} {}\n", cve_state_name(state), severity, n);
  return out;
}

std::string render_text(const Facts& f, const Verdict& v) {
  std::string out;
  out += fmt::format("Reboot: {}\n", reboot_name(v.reboot));
  for (const std::string& r : v.reboot_reasons) out += fmt::format("  - {}\n", r);
  for (const std::string& r : v.deferred_reasons) out += fmt::format("  - (deferred) {}\n", r);

  out += fmt::format("Kernel: running {}, {}", f.kernel.running_release,
                     kernel_status_name(f.kernel.status));
  if (!f.kernel.expected_release.empty() && f.kernel.expected_release != f.kernel.running_release)
    out += fmt::format(" (newest installed {})", f.kernel.expected_release);
  out += "\n";
  for (const std::string& n : f.kernel.notes) out += fmt::format("  note: {}\n", n);
  const MicrocodeFacts& m = f.microcode;
  out += fmt::format("Microcode: {}", microcode_status_name(m.status));
  if (m.current) out += fmt::format(", loaded {}", format_revision(m.vendor, *m.current));
  if (m.available)
    out += fmt::format(", offered {} by {}", format_revision(m.vendor, *m.available), m.source);
  if (m.virtual_machine) out += " (virtual machine)";
  out += "\n";
  for (const std::string& n : m.notes) out += fmt::format("  note: {}\n", n);
  out += fmt::format("Bootloader: {}\n", f.bootloader.upgraded.empty()
                                             ? "no package changed since boot"
                                             : "packages changed since boot");

  if (!v.restarts_pending() && v.patched_in_memory.empty()) {
    out += "Services: no process runs outdated code.\n";
  } else {
    if (!v.units.empty()) out += fmt::format("Services to restart: {}\n", fmt::join(v.units, " "));
    if (!v.containers.empty())
      out += fmt::format("Containers to restart: {}\n", fmt::join(v.containers, " "));
    if (!v.sessions.empty())
      out += fmt::format("User sessions running outdated code: {}\n", fmt::join(v.sessions, "; "));
    if (!v.restart_reasons.empty()) out += "Processes running outdated code:\n";
    for (const std::string& r : v.restart_reasons) out += fmt::format("  - {}\n", r);
    if (!v.patched_in_memory.empty()) out += "Patched in memory by nines (no restart needed):\n";
    for (pid_t pid : v.patched_in_memory) {
      const StaleProcess* p = find_pid(f, pid);
      if (!p) continue;
      for (const StaleObject& o : p->objects)
        out +=
            fmt::format("  - pid {} ({}): {} patched by {}\n", pid, p->comm, o.path, o.patched_by);
    }
  }
  out += render_cve_text(f.cves);
  for (const std::string& n : v.notes) out += fmt::format("Note: {}\n", n);
  for (const std::string& w : f.warnings) out += fmt::format("Warning: {}\n", w);
  return out;
}

}  // namespace nines::advisor
