// The status document (docs/AGENT.md, "Status") and the Prometheus metrics.
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_impl.h"
#include "core/clock.h"
#include "core/log.h"
#include "klp/apply.h"

#ifndef NINES_VERSION
#define NINES_VERSION "0"
#endif

namespace nines::agent {

using nlohmann::json;

namespace {
// A string member of a journal document, "" when absent or of another type (a journal
// written by an older agent held the offer's unsigned manifest).
std::string text_of(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}
}  // namespace

json Agent::catalogue_json() const {
  json c = {{"state", catalogue_.stale ? "stale" : "fresh"}};
  if (catalogue_.stale) {
    c["since"] = format_rfc3339(catalogue_.since_unix);
    c["reason"] = catalogue_.reason;
  }
  if (catalogue_.issued_unix) c["issued"] = format_rfc3339(catalogue_.issued_unix);
  if (!catalogue_.withheld.empty()) c["withheld"] = catalogue_.withheld;
  return c;
}

json Agent::status() {
  json s;
  std::lock_guard<std::mutex> g(mu_);
  // The check's own /proc pass when nothing was applied since, else a fresh one.
  Snapshot snap = check_snapshot_ && !applied_in_check_ ? *check_snapshot_ : snapshot();
  int64_t now = unix_now();
  s["agent"] = {{"running", true},
                {"pid", getpid()},
                {"version", NINES_VERSION},
                {"started", format_rfc3339(started_)},
                {"uptime_s", now - started_}};
  s["machine_id"] = machine_id(paths_);
  s["enabled"] = enabled_;
  s["server"] = policy_.remote_server;
  s["server_warning"] = policy_.remote_server.starts_with("http://")
                            ? "plain http: answers and the machine token travel unprotected "
                              "(bundles are still verified); prefer https"
                            : "";
  s["mode"] = policy_.mode;
  s["tier"] = server_tier_;
  s["advisor"] = advisor_.is_null() ? json(nullptr) : advisor_;
  s["config_error"] = config_error_;
  s["last_check"] = last_check_ ? json(format_rfc3339(last_check_)) : json(nullptr);
  s["last_check_result"] = last_result_;
  s["next_check"] = next_check_ && enabled_ ? json(format_rfc3339(next_check_)) : json(nullptr);
  s["catalogue"] = last_check_ ? catalogue_json() : json(nullptr);
  json pol;
  for (const auto& k : policy_keys()) pol[k] = policy_value(policy_, k);
  s["policy"] = pol;
  int64_t bt = boot_unix();
  std::string lp = livepatch_unavailable_reason();
  json kernel = {{"release", kernel_release()},
                 {"version", kernel_version()},
                 {"livepatch", lp.empty()},
                 {"livepatch_reason", lp},
                 {"patches", json::array()}};
  if (lp.empty())
    if (auto k = klp::list())
      for (const auto& p : *k)
        kernel["patches"].push_back(
            {{"id", p.id}, {"version", p.version}, {"module", p.module_name}});
  s["kernel"] = kernel;
  s["boot_time"] = bt ? json(format_rfc3339(bt)) : json(nullptr);
  s["uptime_s"] = bt ? now - bt : 0;

  auto rows = db_->patches();
  json patches = json::array(), fixes = json::array(), targets = json::array(),
       refused = json::array();
  for (const auto& x : refusals_)
    refused.push_back({{"id", x.id}, {"version", x.version}, {"sha256", x.sha256}, {"reason", x.reason}});
  if (rows) {
    std::map<std::string, const PatchRow*> newest;
    for (const auto& r : *rows) {
      if (r.state == RowState::kRefused) {
        refused.push_back(
            {{"id", r.id}, {"version", r.version}, {"sha256", r.sha256}, {"reason", r.reason}});
        continue;
      }
      if (!newest.count(r.id) || newest[r.id]->version < r.version) newest[r.id] = &r;
    }
    std::lock_guard<std::mutex> ga(apply_mu_);
    for (const auto& [id, r] : newest) {
      std::string state = to_string(r->state);
      json p = {{"id", r->id},
                {"version", r->version},
                {"kind", r->kind},
                {"state", state},
                {"reason", r->reason},
                {"target", r->target_name},
                {"target_build_id", r->target_build_id},
                {"published",
                 r->published_unix ? json(format_rfc3339(r->published_unix)) : json(nullptr)},
                {"until", r->until_unix ? json(format_rfc3339(r->until_unix)) : json(nullptr)}};
      patches.push_back(p);
      // CVEs come from the signed manifest only (manifest_json is "{}" until it verified).
      json manifest = json::parse(r->manifest_json, nullptr, false);
      if (manifest.is_object() && manifest.contains("cves") && manifest["cves"].is_array())
        for (const auto& c : manifest["cves"])
          if (c.is_object())
            fixes.push_back({{"cve", text_of(c, "id")},
                             {"severity", text_of(c, "severity")},
                             {"patch", r->id},
                             {"version", r->version},
                             {"kind", r->kind},
                             {"state", state},
                             {"reason", r->reason},
                             {"until", p["until"]}});
      if (r->kind != "userspace") continue;
      std::set<pid_t> patched;
      for (pid_t pid : snap.with_registry) {
        auto reg = ulp::read_registry(pid);
        if (reg && *reg)
          if (const auto* ap = (*reg)->find_by_id(r->id); ap && ap->version >= r->version)
            patched.insert(pid);
      }
      json t = {{"name", r->target_name},   {"build_id", r->target_build_id},
                {"patch", r->id},           {"version", r->version},
                {"patched", json::array()}, {"not_patched", json::array()}};
      for (pid_t pid : patched) t["patched"].push_back(pid);
      for (const auto& [pid, ids] : snap.build_ids) {
        if (patched.count(pid) || !ids.count(r->target_build_id)) continue;
        std::string why = r->state == RowState::kApplied ? "pending (new process)"
                                                         : state + ": " + r->reason;
        if (auto f = failures_.find({r->id, pid}); f != failures_.end())
          why = "apply failed: " + f->second;
        t["not_patched"].push_back({{"pid", pid}, {"reason", why}});
      }
      targets.push_back(t);
    }
  }
  s["patches"] = patches;
  s["fixes"] = fixes;
  s["targets"] = targets;
  s["refused"] = refused;
  return s;
}

void Agent::save_status() {
  // Called with mu_ held: build without re-locking.
  mu_.unlock();
  json s = status();
  mu_.lock();
  last_status_ = s;
  {
    std::lock_guard<std::mutex> g(metrics_mu_);
    m_states_.clear();
    for (const auto& p : s["patches"]) m_states_[p["state"].get<std::string>()]++;
    m_last_check_ = last_check_;
    m_next_check_ = next_check_;
  }
  s["agent"]["running"] = false;
  (void)db_->put("status", s.dump());
}

std::string Agent::render_metrics() {
  std::string o;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    o += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
  };
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    o += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, v);
  };
  counter("nines_agent_checks_total", "Checks with the server", m_checks_);
  counter("nines_agent_check_failures_total", "Checks that could not reach the server",
          m_check_failures_);
  counter("nines_agent_process_applies_total", "Patches applied to a process", m_applies_);
  counter("nines_agent_process_apply_failures_total", "Failed applies to a process",
          m_apply_failures_);
  gauge("nines_agent_last_check_timestamp_seconds", "Time of the last check", m_last_check_);
  gauge("nines_agent_next_check_timestamp_seconds", "Time of the next check", m_next_check_);
  gauge("nines_catalogue_stale",
        "1 when the signed catalogue is stale, missing, replayed or withholds patches",
        m_catalogue_stale_);
  gauge("nines_catalogue_issued_timestamp_seconds",
        "Issue time of the newest verified signed catalogue (0: none)", m_catalogue_issued_);
  o += "# HELP nines_agent_patches Offered patches (newest version of each) by state\n# TYPE "
       "nines_agent_patches gauge\n";
  std::lock_guard<std::mutex> g(metrics_mu_);
  for (const auto& [state, n] : m_states_)
    o += fmt::format("nines_agent_patches{{state=\"{}\"}} {}\n", state, n);
  return o;
}

void Agent::update_metrics_server() {
  if (policy_.metrics_listen == metrics_listen_) return;
  metrics_.reset();
  metrics_listen_ = policy_.metrics_listen;
  if (metrics_listen_.empty()) return;
  auto m = MetricsServer::start(metrics_listen_, [this] { return render_metrics(); });
  if (!m) {
    spdlog::error("{}", m.error().message);
    return;
  }
  metrics_ = std::move(*m);
  spdlog::info("metrics on http://{}/metrics", metrics_listen_);
}

Result<json> saved_status(const Paths& paths) {
  struct stat st {};
  if (::stat(paths.state_db().c_str(), &st) != 0)
    return make_error("status: no agent state at {} (has `nines agent` ever run?)",
                      paths.state_db());
  auto db = NINES_TRY(StateDb::open(paths.state_db()));
  auto s = NINES_TRY(db.get("status"));
  if (!s) return make_error("status: the agent has saved no status yet in {}", paths.state_db());
  json j = json::parse(*s, nullptr, false);
  if (!j.is_object())
    return make_error("status: saved status in {} is not a JSON object", paths.state_db());
  if (!j["agent"].is_object()) j["agent"] = json::object();
  j["agent"]["running"] = false;
  j["source"] = "saved state (agent not running)";
  // `enable`/`disable` without an agent change this after the agent saved its status.
  if (auto en = db.get("enabled"); en && *en) j["enabled"] = **en == "1";
  return j;
}

}  // namespace nines::agent
