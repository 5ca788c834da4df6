// Rendering of the status document (agent.h format_status): humane text, JSON, YAML.
#include <fmt/format.h>

#include "agent/agent.h"

namespace nines::agent {

using nlohmann::json;

namespace {

std::string str(const json& j, const char* key, const std::string& none = "-") {
  if (!j.contains(key) || j[key].is_null()) return none;
  if (j[key].is_string())
    return j[key].get<std::string>().empty() ? none : j[key].get<std::string>();
  return j[key].dump();
}

// YAML 1.2 is a superset of JSON: scalars are written as JSON (strings double-quoted, so
// no value is ever misread as another type), structure in block style.
void yaml(const json& j, int indent, std::string& out) {
  std::string pad(indent, ' ');
  if (j.is_object()) {
    if (j.empty()) {
      out += " {}\n";
      return;
    }
    out += "\n";
    for (const auto& [k, v] : j.items()) {
      out += pad + k + ":";
      if (v.is_structured() && !v.empty()) {
        yaml(v, indent + 2, out);
      } else {
        out += " " +
               (v.is_structured() ? (v.is_array() ? std::string("[]") : std::string("{}"))
                                  : v.dump()) +
               "\n";
      }
    }
  } else if (j.is_array()) {
    if (j.empty()) {
      out += " []\n";
      return;
    }
    out += "\n";
    for (const auto& v : j) {
      if (v.is_object() && !v.empty()) {
        // "- key: value" then the other keys aligned under the first.
        bool first = true;
        for (const auto& [k, w] : v.items()) {
          out += (first ? pad + "- " : pad + "  ") + k + ":";
          if (w.is_structured() && !w.empty())
            yaml(w, indent + 4, out);
          else
            out += " " +
                   (w.is_structured() ? (w.is_array() ? std::string("[]") : std::string("{}"))
                                      : w.dump()) +
                   "\n";
          first = false;
        }
      } else if (v.is_array() && !v.empty()) {
        out += pad + "-";
        yaml(v, indent + 2, out);
      } else {
        out += pad + "- " + v.dump() + "\n";
      }
    }
  } else {
    out += " " + j.dump() + "\n";
  }
}

std::string pids_text(const json& arr) {
  std::string s;
  for (const auto& p : arr)
    s += (s.empty() ? "" : ", ") + (p.is_object() ? p["pid"].dump() : p.dump());
  return s.empty() ? "none" : s;
}

std::string fix_text(const json& f) {
  std::string st = f.value("state", "");
  std::string reason =
      f.contains("reason") && f["reason"].is_string() ? f["reason"].get<std::string>() : "";
  if (st == "applied") return "applied";
  if (st == "deferred") return "not applied: " + reason;
  if (st == "apply-failed") return "not applied: apply failed: " + reason;
  if (st == "interrupted") return "not applied: " + reason;
  if (st == "not-applicable") return "not applicable: " + reason;
  if (st == "reverted") return "reverted: " + reason;
  if (st == "superseded") return "superseded: " + reason;
  if (st == "refused") return "not applied: " + reason;
  return st + (reason.empty() ? "" : ": " + reason);
}

}  // namespace

std::string format_status(const json& s, const std::string& format, bool verbose) {
  if (format == "json") return s.dump(2) + "\n";
  if (format == "yaml") {
    std::string out = "---";
    yaml(s, 0, out);
    return out;
  }
  std::string o;
  const json& a = s.value("agent", json::object());
  o += fmt::format("agent:       {}\n",
                   a.value("running", false)
                       ? fmt::format("running (pid {})", a.value("pid", 0))
                       : std::string("not running (as it last saved its state)"));
  o += fmt::format("enabled:     {}   mode: {}\n", s.value("enabled", false) ? "yes" : "no",
                   str(s, "mode"));
  o += fmt::format("server:      {}{}\n", str(s, "server", "(none)"),
                   str(s, "tier", "").empty() ? std::string() : " (tier " + str(s, "tier") + ")");
  o += fmt::format("last check:  {} ({})\n", str(s, "last_check", "never"),
                   str(s, "last_check_result"));
  o += fmt::format("next check:  {}\n", str(s, "next_check", "not scheduled"));
  if (!str(s, "server_warning", "").empty())
    o += fmt::format("warning:     {}\n", str(s, "server_warning"));
  if (s.contains("catalogue") && s["catalogue"].is_object()) {
    const json& c = s["catalogue"];
    if (str(c, "state") == "stale")
      o += fmt::format("catalogue:   stale since {}: {}\n", str(c, "since"), str(c, "reason"));
    else
      o += fmt::format("catalogue:   fresh (signed catalogue issued {})\n", str(c, "issued"));
  }
  if (!str(s, "config_error", "").empty())
    o += fmt::format("config:      ERROR {}\n", str(s, "config_error"));
  const json& k = s.value("kernel", json::object());
  std::string kp;
  for (const auto& p : k.value("patches", json::array()))
    kp += (kp.empty() ? "" : ", ") + fmt::format("{} v{}", str(p, "id"), p.value("version", 0));
  o += fmt::format("kernel:      {}  livepatch: {}{}\n", str(k, "release"),
                   k.value("livepatch", false) ? "available" : "unavailable",
                   k.value("livepatch", false)
                       ? "; patches: " + (kp.empty() ? std::string("none") : kp)
                       : " (" + str(k, "livepatch_reason") + ")");
  if (s.contains("advisor") && s["advisor"].is_object()) {
    const json& adv = s["advisor"];
    o += fmt::format("advisor:     {}\n", str(adv, "verdict"));
    if (verbose)
      for (const auto& r : adv.value("reasons", json::array()))
        o += "  " + r.get<std::string>() + "\n";
  }
  if (verbose) {
    o += fmt::format("kernel ver:  {}\n", str(k, "version"));
    o += fmt::format("boot time:   {}  (up {} s)\n", str(s, "boot_time"), s.value("uptime_s", 0));
    o += fmt::format("agent:       version {}, started {}, up {} s\n", str(a, "version"),
                     str(a, "started"), a.value("uptime_s", 0));
    o += fmt::format("machine id:  {}\n", str(s, "machine_id"));
    o += "policy:     ";
    const json policy = s.value("policy", json::object());  // items() needs a living object
    for (const auto& [key, v] : policy.items())
      o += fmt::format(" {}={}", key, v.is_string() ? v.get<std::string>() : v.dump());
    o += "\n";
  }
  o += "targets:\n";
  const json& targets = s.value("targets", json::array());
  if (targets.empty()) o += "  (none)\n";
  for (const auto& t : targets) {
    o += fmt::format("  {} ({}): {} v{}\n", str(t, "name"), str(t, "build_id").substr(0, 12),
                     str(t, "patch"), t.value("version", 0));
    o += fmt::format("    patched:     {}\n", pids_text(t.value("patched", json::array())));
    o += fmt::format("    not patched: {}\n", pids_text(t.value("not_patched", json::array())));
    if (verbose)
      for (const auto& n : t.value("not_patched", json::array()))
        o += fmt::format("      pid {}: {}\n", n.value("pid", 0), str(n, "reason"));
  }
  o += "fixes:\n";
  const json& fixes = s.value("fixes", json::array());
  if (fixes.empty()) o += "  (none)\n";
  for (const auto& f : fixes)
    o += fmt::format(
        "  {:<16} {:<9} {}{}: {}\n", str(f, "cve"), str(f, "severity"), str(f, "patch"),
        verbose ? fmt::format(" v{}", f.value("version", 0)) : std::string(), fix_text(f));
  const json& refused = s.value("refused", json::array());
  if (!refused.empty()) {
    o += "refused offers:\n";
    for (const auto& r : refused)
      o += fmt::format("  {} v{}: {}\n", str(r, "id", "?"), r.value("version", 0), str(r, "reason"));
  }
  return o;
}

}  // namespace nines::agent
