// `nines agent-exchange`: the child side of agent/server_link.h. It holds the HTTP(S)
// client and the advisor, so that the agent daemon maps neither.
#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <set>
#include <optional>
#include <string>

#include "advisor/check.h"
#include "agent/offers.h"
#include "agent/server_link.h"
#include "bundle/bundle.h"
#include "core/clock.h"
#include "core/fd.h"
#include "core/strings.h"
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

// The deadline of one request, from the daemon's `timeout_s` (default 300 s).
int64_t deadline_of(const json& req) {
  auto t = req.find("timeout_s");
  int64_t s = t != req.end() && t->is_number_integer() ? t->get<int64_t>() : 300;
  return monotonic_ns() + std::clamp<int64_t>(s, 1, 86400) * 1'000'000'000;
}
uint64_t max_bytes_of(const json& req, uint64_t fallback) {
  auto m = req.find("max_bytes");
  return m != req.end() && m->is_number_unsigned() ? m->get<uint64_t>() : fallback;
}

// Streams the body into a temporary file next to `file` (0600), counting and hashing as it
// arrives: nothing larger than max_bytes is ever held in memory or left on disk. The file
// takes its name only when the digest the server named is the digest of what arrived.
// A body that is too large or does not match is refused ("refused": true): asking again
// cannot help; anything else (unreachable, slow) may be retried.
json download(server::ApiClient& api, const json& req) {
  std::string path = req.value("path", ""), sha256 = req.value("sha256", ""),
              file = req.value("file", "");
  uint64_t max_bytes = max_bytes_of(req, bundle::kMaxBundleBytes);
  std::string tmp = file + ".part";
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!out.valid()) return {{"error", errno_error("create " + tmp).message}};
  crypto_hash_sha256_state h;
  crypto_hash_sha256_init(&h);
  std::string write_error;
  auto r = api.get_streamed(path, max_bytes, deadline_of(req), [&](std::string_view chunk) {
    crypto_hash_sha256_update(&h, reinterpret_cast<const unsigned char*>(chunk.data()),
                              chunk.size());
    for (size_t off = 0; off < chunk.size();) {
      ssize_t n = ::write(out.get(), chunk.data() + off, chunk.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        write_error = errno_error("write " + tmp).message;
        return false;
      }
      off += static_cast<size_t>(n);
    }
    return true;
  });
  auto fail = [&](std::string why, bool refused) {
    ::unlink(tmp.c_str());
    json a = {{"error", std::move(why)}};
    if (refused) a["refused"] = true;
    return a;
  };
  if (!write_error.empty()) return fail(write_error, false);
  if (!r) {
    bool too_large = r.error().message.find("limit of") != std::string::npos ||
                     r.error().message.find("refused (limit") != std::string::npos;
    return fail(r.error().message, too_large);
  }
  if (r->status != 200) return fail(fmt::format("GET {}: HTTP {}", path, r->status), false);
  std::array<uint8_t, 32> digest{};
  crypto_hash_sha256_final(&h, digest.data());
  std::string got = to_hex(digest);
  if (got != sha256)
    return fail(fmt::format("GET {}: sha256 {} does not match the offered {}", path, got, sha256),
                true);
  if (::fsync(out.get()) != 0 || ::rename(tmp.c_str(), file.c_str()) != 0)
    return fail(errno_error("rename " + tmp).message, false);
  return {{"ok", true}};
}

// POST, the answer capped in size and time. A 2xx answer goes back to the daemon as text,
// unparsed: the daemon reads it with its own bounded parser (agent/offers.h). Only an
// error answer's `error` member is read here, after the depth check.
json post(server::ApiClient& api, const json& req) {
  std::string path = req.value("path", "");
  auto r = api.post_bounded(path, req.value("body", json::object()).dump(), "application/json",
                            max_bytes_of(req, kMaxCheckinAnswerBytes), deadline_of(req));
  if (!r) return {{"error", r.error().message}};
  if (r->status >= 200 && r->status <= 299) return {{"text", r->body}};
  std::string msg = r->reason;
  if (check_json_depth(r->body, kMaxJsonDepth)) {
    json j = json::parse(r->body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string())
      msg = j["error"].get<std::string>().substr(0, 1000);
  }
  return {{"error", fmt::format("POST {}{}: HTTP {}: {}", api.base_url(), path, r->status, msg)}};
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
  if (op == "post") return post(*api, req);
  if (op == "download") return download(*api, req);
  return {{"error", "agent-exchange: unknown request '" + op + "'"}};
}

}  // namespace

int run_exchange() {
  std::optional<server::ApiClient> api;
  std::string line;
  while (std::getline(std::cin, line)) {
    // The daemon is trusted, but a request is still read without exceptions.
    json req = json::parse(line, nullptr, false);
    json a;
    try {
      a = req.is_object() ? answer(req, api)
                          : json{{"error", "agent-exchange: a request is one JSON object"}};
    } catch (const std::exception& e) {
      a = json{{"error", fmt::format("agent-exchange: {}", e.what())}};
    }
    // Server bytes (an answer's text, a status line) may be invalid UTF-8: replaced, so
    // the line to the daemon is always valid JSON.
    std::cout << a.dump(-1, ' ', false, json::error_handler_t::replace) << '\n' << std::flush;
  }
  return 0;
}

}  // namespace nines::agent
