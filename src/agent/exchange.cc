// `nines agent-exchange`: the child side of agent/server_link.h. It holds the HTTP(S)
// client and the advisor, so that the agent daemon maps neither.
#include <iostream>
#include <map>
#include <set>
#include <optional>
#include <string>

#include "advisor/check.h"
#include "agent/server_link.h"
#include "bundle/bundle.h"
#include "core/fd.h"
#include "server/client.h"

namespace nines::agent {

using nlohmann::json;

namespace {

// The machine's CVE exposure for a report (issue 16): counts by state and severity (all
// of them), and CVE ids by state, the actionable states first, within `budget` bytes of
// ids (`truncated` when some are left out). Null without CVE data.
json exposure_summary(const advisor::CveFacts& c, size_t budget) {
  if (!c.checked) return nullptr;
  json counts = json::array();
  for (const auto& [key, n] : advisor::exposure_counts(c.cves))
    counts.push_back({{"state", advisor::cve_state_name(key.first)}, {"severity", key.second},
                      {"count", n}});
  std::map<advisor::CveState, std::set<std::string>> ids;
  for (const advisor::CveExposure& x : c.cves) ids[x.state].insert(x.id);
  json by_state = json::object();
  bool truncated = false;
  size_t bytes = 0;
  for (advisor::CveState s : {advisor::CveState::kRestartNeeded, advisor::CveState::kRebootNeeded,
                              advisor::CveState::kLivepatched, advisor::CveState::kFixNotInstalled,
                              advisor::CveState::kUnfixed}) {
    json list = json::array();
    for (const std::string& id : ids[s]) {
      if (bytes + id.size() + 3 > budget) {
        truncated = true;
        break;
      }
      bytes += id.size() + 3;
      list.push_back(id);
    }
    by_state[advisor::cve_state_name(s)] = std::move(list);
  }
  return json{{"release", c.release}, {"counts", counts}, {"cves", by_state},
              {"truncated", truncated}};
}

// What the agent reports with its patch states: the verdict and its reasons, and the CVE
// exposure when the machine has CVE data, within the server's 16 KiB limit (reasons
// 10,000 bytes, CVE ids 3,000).
Result<json> advisor_summary(const std::string& root) {
  advisor::CheckOptions co;
  co.root = root.empty() ? "/" : root;
  advisor::Facts facts = NINES_TRY(advisor::gather_facts(co));
  advisor::Verdict v = advisor::decide(facts);
  json reasons = json::array();
  size_t bytes = 0;
  for (const auto* list : {&v.reboot_reasons, &v.restart_reasons})
    for (const auto& r : *list) {
      if (bytes + r.size() > 10000) break;
      bytes += r.size();
      reasons.push_back(r.substr(0, 1000));
    }
  std::string verdict = v.reboot != advisor::Reboot::kNo ? "reboot"
                        : v.restarts_pending()           ? "restart"
                                                         : "none";
  json summary{{"verdict", verdict}, {"reasons", reasons}};
  if (json e = exposure_summary(facts.cves, 3000); !e.is_null()) summary["exposure"] = e;
  // The budgets above count text, not JSON's quotes and escapes: the whole object is held
  // under the server's limit, dropping ids first, then the last reasons.
  constexpr size_t kLimit = 16 * 1024 - 256;
  if (summary.dump().size() > kLimit && summary.contains("exposure")) {
    summary["exposure"]["cves"] = json::object();
    summary["exposure"]["truncated"] = true;
  }
  while (summary.dump().size() > kLimit && !summary["reasons"].empty())
    summary["reasons"].erase(summary["reasons"].size() - 1);
  return summary;
}

Status download(server::ApiClient& api, const std::string& path, const std::string& sha256,
                const std::string& file) {
  auto r = NINES_TRY(api.get(path));
  if (r.status != 200) return make_error("GET {}: HTTP {}", path, r.status);
  // The digest the server named must be the digest of what arrived.
  std::string got = bundle::sha256_hex(r.body);
  if (got != sha256)
    return make_error("GET {}: sha256 {} does not match the offered {}", path, got, sha256);
  return write_file_atomic(file, r.body, 0600);
}

json answer(const json& req, std::optional<server::ApiClient>& api) {
  auto fail = [](const Error& e) { return json{{"error", e.message}}; };
  std::string op = req.value("op", "");
  if (op == "hello") {
    auto c = server::ApiClient::make(req.value("server", ""), req.value("token", ""),
                                     req.value("ca_certs", ""), req.value("http_proxy", ""));
    if (!c) return fail(c.error());
    api.emplace(std::move(*c));
    return {{"ok", true}};
  }
  if (op == "advisor") {
    auto a = advisor_summary(req.value("root", ""));
    return a ? json{{"advisor", *a}} : fail(a.error());
  }
  if (!api) return {{"error", "agent-exchange: '" + op + "' before 'hello'"}};
  if (op == "post") {
    auto r = api->post_json(req.value("path", ""), req.value("body", json::object()));
    return r ? json{{"reply", *r}} : fail(r.error());
  }
  if (op == "download") {
    auto s = download(*api, req.value("path", ""), req.value("sha256", ""), req.value("file", ""));
    return s ? json{{"ok", true}} : fail(s.error());
  }
  return {{"error", "agent-exchange: unknown request '" + op + "'"}};
}

}  // namespace

int run_exchange() {
  std::optional<server::ApiClient> api;
  std::string line;
  while (std::getline(std::cin, line)) {
    json req = json::parse(line, nullptr, false);
    json a = req.is_object() ? answer(req, api)
                             : json{{"error", "agent-exchange: a request is one JSON object"}};
    std::cout << a.dump() << '\n' << std::flush;
  }
  return 0;
}

}  // namespace nines::agent
