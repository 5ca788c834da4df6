// `nines agent-exchange`: the child side of agent/server_link.h. It holds the HTTP(S)
// client and the advisor, so that the agent daemon maps neither.
#include <iostream>
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

// What the agent reports with its patch states: the verdict and its reasons, within the
// server's 16 KiB limit.
Result<json> advisor_summary(const std::string& root) {
  advisor::CheckOptions co;
  co.root = root.empty() ? "/" : root;
  advisor::Facts facts = NINES_TRY(advisor::gather_facts(co));
  advisor::Verdict v = advisor::decide(facts);
  json reasons = json::array();
  size_t bytes = 0;
  for (const auto* list : {&v.reboot_reasons, &v.restart_reasons})
    for (const auto& r : *list) {
      if (bytes + r.size() > 12000) break;
      bytes += r.size();
      reasons.push_back(r.substr(0, 1000));
    }
  std::string verdict = v.reboot != advisor::Reboot::kNo ? "reboot"
                        : v.restarts_pending()           ? "restart"
                                                         : "none";
  return json{{"verdict", verdict}, {"reasons", reasons}};
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
