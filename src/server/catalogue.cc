#include "server/catalogue.h"

#include <algorithm>
#include <set>

#include "core/clock.h"
#include "server/tokens.h"

namespace nines::server {

using nlohmann::json;

Status check_name_field(std::string_view field, std::string_view value, size_t max) {
  if (value.empty()) return make_error("{}: empty", field);
  if (value.size() > max)
    return make_error("{}: {} characters, more than the limit of {}", field, value.size(), max);
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '+' || c == ':';
    if (!ok)
      return make_error("{}: '{}' has a character outside [A-Za-z0-9._+:-]", field,
                        value.substr(0, 64));
  }
  return {};
}

Status check_hex_field(std::string_view field, std::string_view value) {
  if (value.size() < 2 || value.size() > 128 || value.size() % 2)
    return make_error("{}: '{}' is not a build-id (2..128 hex digits, even count)", field,
                      value.substr(0, 64));
  for (char c : value)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
      return make_error("{}: '{}' is not hex", field, value.substr(0, 64));
  return {};
}

Status check_text_field(std::string_view field, std::string_view value, size_t max) {
  if (value.size() > max)
    return make_error("{}: {} bytes, more than the limit of {}", field, value.size(), max);
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7f) return make_error("{}: contains a control character", field);
  return {};
}

namespace {

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// Reads an optional string member; a present member of another type is an error.
Result<std::string> opt_string(const json& body, const char* key, std::string_view where) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) return make_error("{}: {}: not a string", where, key);
  return it->get<std::string>();
}

}  // namespace

Result<MachineIdentity> parse_identity(const json& body) {
  if (!body.is_object()) return make_error("checkin: body is not a JSON object");
  MachineIdentity m;
  m.name = NINES_TRY(opt_string(body, "name", "checkin"));
  if (Status s = check_text_field("name", m.name, 255); !s.ok()) return s.error().wrap("checkin");
  m.arch = NINES_TRY(opt_string(body, "arch", "checkin"));
  if (Status s = check_name_field("arch", m.arch, 32); !s.ok()) return s.error().wrap("checkin");
  m.kernel_release = NINES_TRY(opt_string(body, "kernel_release", "checkin"));
  if (Status s = check_name_field("kernel_release", m.kernel_release); !s.ok())
    return s.error().wrap("checkin");
  m.kernel_build_id = lower(NINES_TRY(opt_string(body, "kernel_build_id", "checkin")));
  if (!m.kernel_build_id.empty())
    if (Status s = check_hex_field("kernel_build_id", m.kernel_build_id); !s.ok())
      return s.error().wrap("checkin");
  auto it = body.find("build_ids");
  if (it != body.end() && !it->is_null()) {
    if (!it->is_array()) return make_error("checkin: build_ids: not an array");
    if (it->size() > kMaxBuildIds)
      return make_error("checkin: build_ids: {} entries, more than the limit of {}", it->size(),
                        kMaxBuildIds);
    std::set<std::string> ids;
    for (size_t i = 0; i < it->size(); ++i) {
      const json& v = (*it)[i];
      std::string field = fmt::format("build_ids[{}]", i);
      if (!v.is_string()) return make_error("checkin: {}: not a string", field);
      std::string id = lower(v.get<std::string>());
      if (Status s = check_hex_field(field, id); !s.ok()) return s.error().wrap("checkin");
      ids.insert(std::move(id));
    }
    m.build_ids.assign(ids.begin(), ids.end());
  }
  return m;
}

MachineIdentity identity_of(const MachineRecord& r) {
  MachineIdentity m;
  m.machine_id = r.machine_id;
  m.name = r.name;
  m.arch = r.arch;
  m.kernel_release = r.kernel_release;
  m.kernel_build_id = r.kernel_build_id;
  json ids = json::parse(r.build_ids_json, nullptr, /*allow_exceptions=*/false);
  if (ids.is_array())
    for (const json& v : ids)
      if (v.is_string()) m.build_ids.push_back(v.get<std::string>());
  std::sort(m.build_ids.begin(), m.build_ids.end());
  return m;
}

std::string identity_sha(const MachineIdentity& m) {
  // Length-prefixed fields: no two different identities frame to the same text.
  std::string text;
  auto add = [&text](std::string_view f) {
    text += std::to_string(f.size());
    text += ':';
    text += f;
  };
  add(m.name);
  add(m.arch);
  add(m.kernel_release);
  add(m.kernel_build_id);
  for (const std::string& id : m.build_ids) add(id);
  return hash_token(text);
}

namespace {
bool applies(const BundleRecord& b, const MachineIdentity& m) {
  if (b.kind == "kernel") {
    if (b.kernel_release != m.kernel_release) return false;
    if (!b.target_build_id.empty() && !m.kernel_build_id.empty())
      return lower(b.target_build_id) == m.kernel_build_id;
    return true;
  }
  return std::binary_search(m.build_ids.begin(), m.build_ids.end(), lower(b.target_build_id));
}
}  // namespace

std::vector<BundleRecord> applicable_bundles(const std::vector<BundleRecord>& tier_bundles,
                                             const MachineIdentity& m) {
  std::map<std::string, const BundleRecord*> newest;
  for (const BundleRecord& b : tier_bundles) {
    if (!applies(b, m)) continue;
    auto [it, inserted] = newest.emplace(b.id, &b);
    if (!inserted && it->second->version < b.version) it->second = &b;
  }
  std::vector<BundleRecord> out;
  out.reserve(newest.size());
  for (auto& [id, b] : newest) out.push_back(*b);
  return out;
}

BundleRecord bundle_record(const bundle::Bundle& b, std::string_view bytes, int64_t uploaded_unix) {
  const bundle::Manifest& m = b.manifest;
  BundleRecord r;
  r.id = m.id;
  r.version = m.version;
  r.sha256 = bundle::sha256_hex(bytes);
  r.kind = m.kind;
  r.target_name = m.target_name;
  r.target_build_id = m.target_build_id;
  r.kernel_release = m.kernel_release;
  r.description = m.description;
  r.manifest_json = bundle::manifest_to_json(m).dump();
  r.signer = b.signer_fingerprint;
  r.size = static_cast<int64_t>(bytes.size());
  r.published_unix = m.published_unix;
  r.uploaded_unix = uploaded_unix;
  return r;
}

json bundle_offer_json(const BundleRecord& b) {
  json manifest = json::parse(b.manifest_json, nullptr, false);
  if (manifest.is_discarded()) manifest = json::object();
  return json{{"id", b.id},
              {"version", b.version},
              {"kind", b.kind},
              {"target_name", b.target_name},
              {"target_build_id", b.target_build_id},
              {"kernel_release", b.kernel_release},
              {"sha256", b.sha256},
              {"size", b.size},
              {"url", "/v1/bundles/sha256/" + b.sha256},
              {"signer", b.signer},
              {"published_unix", b.published_unix},
              {"manifest", manifest}};
}

Result<ReportRecord> parse_report_line(const json& line, size_t index, int64_t now_unix) {
  std::string where = fmt::format("report: reports[{}]", index);
  if (!line.is_object()) return make_error("{}: not an object", where);
  ReportRecord r;
  r.bundle_id = NINES_TRY(opt_string(line, "id", where));
  if (Status s = check_name_field("id", r.bundle_id); !s.ok()) return s.error().wrap(where);
  auto v = line.find("version");
  if (v == line.end() || !v->is_number_integer())
    return make_error("{}: version: missing or not an integer", where);
  r.version = v->get<int64_t>();
  if (r.version < 0) return make_error("{}: version: {} is negative", where, r.version);
  r.state = NINES_TRY(opt_string(line, "state", where));
  if (r.state != "applied" && r.state != "apply-failed" && r.state != "deferred" &&
      r.state != "not-applicable")
    return make_error(
        "{}: state: '{}' is not one of applied, apply-failed, deferred, "
        "not-applicable",
        where, r.state.substr(0, 64));
  r.reason = NINES_TRY(opt_string(line, "reason", where));
  if (Status s = check_text_field("reason", r.reason, kMaxReasonBytes); !s.ok())
    return s.error().wrap(where);
  if ((r.state == "deferred" || r.state == "apply-failed") && r.reason.empty())
    return make_error("{}: reason: required when the state is {}", where, r.state);
  r.reported_unix = now_unix;
  std::string at = NINES_TRY(opt_string(line, "at", where));
  if (!at.empty()) {
    std::optional<int64_t> t = parse_rfc3339(at);
    if (!t) return make_error("{}: at: '{}' is not RFC 3339", where, at.substr(0, 64));
    // A machine's clock may be off; a report from the future is clamped to now.
    r.reported_unix = std::min(*t, now_unix);
  }
  return r;
}

Result<std::string> parse_advisor(const json& advisor) {
  if (advisor.is_null()) return std::string();
  if (!advisor.is_object()) return make_error("report: advisor: not an object");
  std::string verdict = NINES_TRY(opt_string(advisor, "verdict", "report: advisor"));
  if (verdict != "none" && verdict != "restart" && verdict != "reboot")
    return make_error("report: advisor: verdict: '{}' is not one of none, restart, reboot",
                      verdict.substr(0, 64));
  auto reasons = advisor.find("reasons");
  if (reasons != advisor.end() && !reasons->is_null()) {
    if (!reasons->is_array()) return make_error("report: advisor: reasons: not an array");
    for (size_t i = 0; i < reasons->size(); ++i)
      if (!(*reasons)[i].is_string())
        return make_error("report: advisor: reasons[{}]: not a string", i);
  }
  std::string text = advisor.dump();
  if (text.size() > kMaxAdvisorBytes)
    return make_error("report: advisor: {} bytes, more than the limit of {}", text.size(),
                      kMaxAdvisorBytes);
  return text;
}

Result<std::string> parse_catalogue_state(const json& catalogue) {
  constexpr std::string_view where = "report: catalogue";
  if (!catalogue.is_object()) return make_error("{}: not an object", where);
  std::string state = NINES_TRY(opt_string(catalogue, "state", where));
  if (state != "fresh" && state != "stale")
    return make_error("{}: state: '{}' is not one of fresh, stale", where, state.substr(0, 64));
  json out = {{"state", state}};
  std::string since = NINES_TRY(opt_string(catalogue, "since", where));
  if (!since.empty()) {
    if (!parse_rfc3339(since))
      return make_error("{}: since: '{}' is not RFC 3339", where, since.substr(0, 64));
    out["since"] = since;
  }
  std::string reason = NINES_TRY(opt_string(catalogue, "reason", where));
  if (Status s = check_text_field("reason", reason, kMaxReasonBytes); !s.ok())
    return s.error().wrap(where);
  if (!reason.empty()) out["reason"] = reason;
  return out.dump();
}

std::string machine_state(const MachineRecord& m, const std::vector<BundleRecord>& offered,
                          const std::map<std::string, ReportRecord>& patch_states) {
  (void)m;
  bool failed = false, deferred = false, pending = false;
  for (const BundleRecord& b : offered) {
    auto it = patch_states.find(b.id);
    if (it == patch_states.end()) {
      pending = true;
      continue;
    }
    const ReportRecord& r = it->second;
    if (r.state == "not-applicable") continue;
    if (r.state == "applied" && r.version >= b.version) continue;
    if (r.version < b.version) {
      pending = true;  // a newer version is offered than the one reported
    } else if (r.state == "apply-failed") {
      failed = true;
    } else if (r.state == "deferred") {
      deferred = true;
    }
  }
  if (failed) return "failed";
  if (deferred) return "deferred";
  if (pending) return "pending";
  return "up-to-date";
}

namespace {

json catalogue_of(const MachineRecord& m) {
  if (m.catalogue_json.empty()) return nullptr;
  json c = json::parse(m.catalogue_json, nullptr, false);
  return c.is_object() ? c : json(nullptr);
}

json advisor_of(const MachineRecord& m) {
  json a = json::parse(m.advisor_json.empty() ? "{}" : m.advisor_json, nullptr, false);
  return a.is_object() ? a : json::object();
}

int64_t median(std::vector<int64_t> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

json fleet_summary(const FleetInput& in) {
  // Bundles by tier, and the CVEs each id fixes up to each version (patches are cumulative).
  std::map<std::string, std::vector<BundleRecord>> by_tier;
  std::map<std::pair<std::string, int64_t>, const BundleRecord*> by_key;
  for (const BundleRecord& b : in.bundles) by_key[{b.id, b.version}] = &b;
  for (const Promotion& p : in.promotions)
    if (auto it = by_key.find({p.id, p.version}); it != by_key.end())
      by_tier[p.tier].push_back(*it->second);

  struct CveInfo {
    std::string severity;
    int64_t published = INT64_MAX;
    std::set<std::string> bundle_ids;
  };
  std::map<std::string, CveInfo> cves;
  // cves_of[id] = list of (version, cve ids) sorted by version.
  std::map<std::string, std::vector<std::pair<int64_t, std::vector<std::string>>>> cves_of;
  for (const BundleRecord& b : in.bundles) {
    json man = json::parse(b.manifest_json, nullptr, false);
    std::vector<std::string> ids;
    if (man.is_object() && man.contains("cves") && man["cves"].is_array()) {
      for (const json& c : man["cves"]) {
        if (!c.is_object() || !c.contains("id") || !c["id"].is_string()) continue;
        std::string id = c["id"].get<std::string>();
        CveInfo& ci = cves[id];
        if (c.contains("severity") && c["severity"].is_string())
          ci.severity = c["severity"].get<std::string>();
        ci.published = std::min(ci.published, b.published_unix);
        ci.bundle_ids.insert(b.id);
        ids.push_back(id);
      }
    }
    cves_of[b.id].emplace_back(b.version, std::move(ids));
  }
  auto fixes = [&](const std::string& bundle_id, int64_t version, const std::string& cve) {
    auto it = cves_of.find(bundle_id);
    if (it == cves_of.end()) return false;
    for (const auto& [v, ids] : it->second)
      if (v <= version && std::find(ids.begin(), ids.end(), cve) != ids.end()) return true;
    return false;
  };

  // Current states per machine; first time each (machine, id, version) was reported applied.
  std::map<std::string, std::map<std::string, ReportRecord>> states;
  for (const ReportRecord& r : in.states) states[r.machine_id][r.bundle_id] = r;
  std::map<std::string, std::vector<const ReportRecord*>> applied_history;  // machine|id
  for (const ReportRecord& r : in.history)
    if (r.state == "applied") applied_history[r.machine_id + "|" + r.bundle_id].push_back(&r);

  json by_state = {{"up-to-date", 0}, {"pending", 0}, {"deferred", 0}, {"failed", 0}};
  int catalogue_stale = 0;  // machines whose last report says their catalogue is stale
  json machine_list = json::array();
  json reboot = json::array();
  std::map<std::string, std::vector<int64_t>> windows;    // cve -> closed exposure windows
  std::map<std::string, int64_t> open_max;                // cve -> longest open window
  std::map<std::string, std::pair<int, int>> cve_counts;  // cve -> (affected, applied)
  std::set<std::string> cves_applied_somewhere;

  // Each machine's identity is parsed once (build-id lists are the bulk of the input).
  std::vector<MachineIdentity> idents;
  idents.reserve(in.machines.size());
  for (const MachineRecord& m : in.machines) idents.push_back(identity_of(m));

  for (size_t mi = 0; mi < in.machines.size(); ++mi) {
    const MachineRecord& m = in.machines[mi];
    const MachineIdentity& ident = idents[mi];
    static const std::vector<BundleRecord> kNone;
    auto t = by_tier.find(m.tier);
    std::vector<BundleRecord> offered =
        applicable_bundles(t == by_tier.end() ? kNone : t->second, ident);
    const auto& ms = states[m.machine_id];
    std::string state = machine_state(m, offered, ms);
    by_state[state] = by_state[state].get<int>() + 1;
    json adv = advisor_of(m);
    json catalogue = catalogue_of(m);
    if (catalogue.is_object() && catalogue.value("state", "") == "stale") ++catalogue_stale;
    std::string verdict = adv.value("verdict", "");
    bool needs_reboot = verdict == "reboot";
    if (needs_reboot)
      reboot.push_back({{"machine_id", m.machine_id},
                        {"name", m.name},
                        {"reasons", adv.value("reasons", json::array())}});
    int applied = 0;
    for (const BundleRecord& b : offered) {
      auto st = ms.find(b.id);
      bool is_applied = st != ms.end() && st->second.state == "applied";
      if (is_applied && st->second.version >= b.version) ++applied;
      // CVEs this offer fixes, and whether the machine has them fixed now.
      auto it = cves_of.find(b.id);
      if (it == cves_of.end()) continue;
      std::set<std::string> offered_cves;
      for (const auto& [v, ids] : it->second)
        if (v <= b.version) offered_cves.insert(ids.begin(), ids.end());
      for (const std::string& cve : offered_cves) {
        auto& cnt = cve_counts[cve];
        ++cnt.first;
        int64_t published = cves[cve].published;
        if (is_applied && fixes(b.id, st->second.version, cve)) {
          ++cnt.second;
          cves_applied_somewhere.insert(cve);
          // The first report that applied a version fixing this CVE closes the window.
          int64_t when = INT64_MAX;
          for (const ReportRecord* r : applied_history[m.machine_id + "|" + b.id])
            if (fixes(b.id, r->version, cve)) when = std::min(when, r->reported_unix);
          if (when == INT64_MAX) when = st->second.reported_unix;
          windows[cve].push_back(std::max<int64_t>(0, when - published));
        } else {
          open_max[cve] = std::max(open_max[cve], std::max<int64_t>(0, in.now_unix - published));
        }
      }
    }
    machine_list.push_back({{"machine_id", m.machine_id},
                            {"name", m.name},
                            {"tier", m.tier},
                            {"arch", m.arch},
                            {"kernel_release", m.kernel_release},
                            {"last_seen_unix", m.last_seen_unix},
                            {"state", state},
                            {"offered", offered.size()},
                            {"applied", applied},
                            {"needs_reboot", needs_reboot},
                            {"advisor", adv},
                            {"catalogue", catalogue}});
  }

  json cve_list = json::array();
  int applied_everywhere = 0;
  for (const auto& [id, ci] : cves) {
    auto [affected, applied] = cve_counts[id];
    if (affected > 0 && affected == applied) ++applied_everywhere;
    const std::vector<int64_t>& w = windows[id];
    cve_list.push_back(
        {{"id", id},
         {"severity", ci.severity},
         {"published_unix", ci.published == INT64_MAX ? 0 : ci.published},
         {"bundles", std::vector<std::string>(ci.bundle_ids.begin(), ci.bundle_ids.end())},
         {"machines_affected", affected},
         {"machines_applied", applied},
         {"exposure_median_s", median(w)},
         {"exposure_max_s", w.empty() ? 0 : *std::max_element(w.begin(), w.end())},
         {"open_exposure_max_s", open_max[id]}});
  }

  // Rollout of each promoted bundle in its tier: among the tier's machines it targets.
  json rollout = json::array();
  for (const Promotion& p : in.promotions) {
    auto bit = by_key.find({p.id, p.version});
    if (bit == by_key.end()) continue;
    const BundleRecord& b = *bit->second;
    int targeted = 0, applied = 0, failed = 0, deferred = 0, not_applicable = 0;
    for (size_t mi = 0; mi < in.machines.size(); ++mi) {
      const MachineRecord& m = in.machines[mi];
      if (m.tier != p.tier) continue;
      if (!applies(b, idents[mi])) continue;
      ++targeted;
      const auto& ms = states[m.machine_id];
      auto st = ms.find(b.id);
      if (st == ms.end()) continue;
      const ReportRecord& r = st->second;
      if (r.state == "applied" && r.version >= b.version)
        ++applied;
      else if (r.version == b.version && r.state == "apply-failed")
        ++failed;
      else if (r.version == b.version && r.state == "deferred")
        ++deferred;
      else if (r.state == "not-applicable")
        ++not_applicable;
    }
    rollout.push_back({{"id", p.id},
                       {"version", p.version},
                       {"tier", p.tier},
                       {"promoted_unix", p.promoted_unix},
                       {"machines_targeted", targeted},
                       {"applied", applied},
                       {"failed", failed},
                       {"deferred", deferred},
                       {"not_applicable", not_applicable},
                       {"pending", targeted - applied - failed - deferred - not_applicable}});
  }

  return json{
      {"now_unix", in.now_unix},
      {"machines",
       {{"total", in.machines.size()},
        {"by_state", by_state},
        {"needing_reboot", reboot.size()},
        {"catalogue_stale", catalogue_stale}}},
      {"machine_list", machine_list},
      {"cves_published", cves.size()},
      {"cves_applied", cves_applied_somewhere.size()},
      {"cves_applied_everywhere", applied_everywhere},
      {"cves", cve_list},
      {"reboot", reboot},
      {"rollout", rollout}};
}

}  // namespace nines::server
