#include "agent/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include <toml++/toml.h>

#include "bundle/bundle.h"
#include "core/clock.h"
#include "core/fd.h"
#include "core/proxy_url.h"
#include "core/strings.h"

namespace nines::agent {

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

bool valid_url(const std::string& s) {
  return starts_with(s, "http://") || starts_with(s, "https://");
}

}  // namespace

Paths Paths::make(const std::string& root_arg) {
  Paths p;
  p.root = root_arg.empty() ? env_or("NINES_ROOT", "") : root_arg;
  while (!p.root.empty() && p.root.back() == '/') p.root.pop_back();
  p.config_file = env_or("NINES_CONFIG", p.root + "/etc/nines/config.toml");
  p.state_dir = env_or("NINES_STATE_DIR", p.root + "/var/lib/nines");
  p.socket_path = env_or("NINES_SOCKET", p.root + "/run/nines/agent.sock");
  p.machine_id_file = p.root + "/etc/machine-id";
  return p;
}

const std::vector<std::string>& policy_keys() {
  static const std::vector<std::string> keys = {
      "check-interval", "severity", "cutoff-date", "patch-delay", "tier",          "mode",
      "remote-server",  "ca-certs", "http-proxy",  "trust-dir",   "metrics-listen",
      "max-download",   "server-timeout", "catalogue-max-age"};
  return keys;
}

namespace {
// The units of a duration, largest first (format_duration picks the largest that divides).
constexpr std::pair<char, int64_t> kDurationUnits[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
}  // namespace

Result<int64_t> parse_duration(const std::string& text) {
  std::string_view s = trim(text);
  if (s.empty()) return make_error("duration '{}': empty", text);
  int64_t mult = 1;
  for (const auto& [unit, seconds] : kDurationUnits)
    if (s.back() == unit) {
      mult = seconds;
      s.remove_suffix(1);
      break;
    }
  auto n = parse_u64(s);
  if (!n || *n > (uint64_t{1} << 40))
    return make_error("duration '{}': expected a number with an optional unit s, m, h or d", text);
  return static_cast<int64_t>(*n) * mult;
}

std::string format_duration(int64_t s) {
  for (const auto& [unit, seconds] : kDurationUnits)
    if (s != 0 && s % seconds == 0) return std::to_string(s / seconds) + unit;
  return "0s";
}

Status set_policy_key(Policy& p, const std::string& key, const std::string& value) {
  auto bad = [&](const std::string& why) {
    return make_error("config: {}: '{}' {}", key, value, why);
  };
  if (key == "check-interval") {
    auto d = parse_duration(value);
    if (!d) return Error{"config: check-interval: " + d.error().message};
    if (*d < 1) return bad("must be at least 1s");
    p.check_interval_s = *d;
  } else if (key == "severity") {
    if (bundle::severity_rank(value) < 0)
      return bad("is not one of critical, high, medium, low, negligible");
    p.severity = value;
  } else if (key == "cutoff-date") {
    if (value.empty() || value == "none") {
      p.cutoff_unix.reset();
      p.cutoff_text.clear();
      return {};
    }
    std::optional<int64_t> t;
    if (value.size() == 10) {
      // A date: patches published on that day are included (until 23:59:59 UTC).
      auto day = parse_rfc3339(value + "T23:59:59Z");
      t = day;
    } else {
      t = parse_rfc3339(value);
    }
    if (!t) return bad("is not a date (YYYY-MM-DD), an RFC 3339 time or 'none'");
    p.cutoff_unix = t;
    p.cutoff_text = value;
  } else if (key == "patch-delay") {
    auto d = parse_duration(value);
    if (!d) return Error{"config: patch-delay: " + d.error().message};
    p.patch_delay_s = *d;
  } else if (key == "tier") {
    p.tier = value;
  } else if (key == "mode") {
    if (value != "normal" && value != "no-apply" && value != "no-refresh" && value != "stop")
      return bad("is not one of normal, no-apply, no-refresh, stop");
    p.mode = value;
  } else if (key == "remote-server") {
    if (!value.empty() && !valid_url(value)) return bad("is not an http:// or https:// URL");
    p.remote_server = value;
  } else if (key == "ca-certs") {
    p.ca_certs = value;
  } else if (key == "http-proxy") {
    if (!value.empty()) {
      auto proxy = parse_proxy_url(value);
      if (!proxy) return make_error("config: {}: {}", key, proxy.error().message);
    }
    p.http_proxy = value;
  } else if (key == "trust-dir") {
    if (value.empty()) return bad("must name a folder");
    p.trust_dir = value;
  } else if (key == "metrics-listen") {
    if (!value.empty() && !starts_with(value, "127.0.0.1:") && !starts_with(value, "[::1]:"))
      return bad("must be a loopback address (127.0.0.1:PORT)");
    p.metrics_listen = value;
  } else if (key == "max-download") {
    // Bytes, with an optional K or M (powers of 1024); at most the bundle format's limit.
    std::string_view v = trim(value);
    uint64_t mult = 1;
    if (!v.empty() && (v.back() == 'K' || v.back() == 'M')) {
      mult = v.back() == 'K' ? 1024 : 1024 * 1024;
      v.remove_suffix(1);
    }
    auto n = parse_u64(v);
    if (!n || *n == 0 || *n > bundle::kMaxBundleBytes / mult || *n * mult < 1024)
      return bad(fmt::format("is not a size from 1K to {}M (bytes, or a number with K or M)",
                             bundle::kMaxBundleBytes >> 20));
    p.max_download = *n * mult;
  } else if (key == "server-timeout" || key == "catalogue-max-age") {
    auto d = parse_duration(value);
    if (!d) return Error{"config: " + key + ": " + d.error().message};
    if (*d < 1) return bad("must be at least 1s");
    (key == "server-timeout" ? p.server_timeout_s : p.catalogue_max_age_s) = *d;
  } else {
    std::string all;
    for (const auto& k : policy_keys()) all += (all.empty() ? "" : ", ") + k;
    return make_error("config: unknown key '{}' (known: {})", key, all);
  }
  return {};
}

std::string policy_value(const Policy& p, const std::string& key) {
  if (key == "check-interval") return format_duration(p.check_interval_s);
  if (key == "severity") return p.severity;
  if (key == "cutoff-date") return p.cutoff_text.empty() ? "none" : p.cutoff_text;
  if (key == "patch-delay") return format_duration(p.patch_delay_s);
  if (key == "tier") return p.tier;
  if (key == "mode") return p.mode;
  if (key == "remote-server") return p.remote_server;
  if (key == "ca-certs") return p.ca_certs;
  if (key == "http-proxy") return p.http_proxy;
  if (key == "trust-dir") return p.trust_dir;
  if (key == "metrics-listen") return p.metrics_listen;
  if (key == "max-download") {
    if (p.max_download % (1024 * 1024) == 0) return std::to_string(p.max_download >> 20) + "M";
    if (p.max_download % 1024 == 0) return std::to_string(p.max_download >> 10) + "K";
    return std::to_string(p.max_download);
  }
  if (key == "server-timeout") return format_duration(p.server_timeout_s);
  if (key == "catalogue-max-age") return format_duration(p.catalogue_max_age_s);
  return {};
}

Result<Policy> load_policy(const std::string& path) {
  Policy p;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return p;
    return errno_error("stat " + path);
  }
  auto text = NINES_TRY(read_file(path, 1 << 20));
  return parse_policy(text, path);
}

Result<Policy> parse_policy(std::string_view text, const std::string& path) {
  Policy p;
  // toml++ 3.3 reaches __builtin_unreachable() on some non-ASCII input (see
  // src/bundle/manifest.cc); policy values are ASCII, so refuse anything else up front.
  for (size_t i = 0, line = 1; i < text.size(); ++i) {
    if (text[i] == '\n') ++line;
    if (static_cast<unsigned char>(text[i]) >= 0x80)
      return make_error("config {}: line {}: non-ASCII byte (policy values are ASCII)", path, line);
  }
  toml::table t;
  try {
    t = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    return make_error("config {}: line {}: {}", path, e.source().begin.line, e.description());
  }
  for (const auto& [k, node] : t) {
    std::string key(k.str());
    std::string value;
    if (auto s = node.value<std::string>()) {
      value = *s;
    } else if (auto i = node.value<int64_t>()) {
      value = std::to_string(*i);
    } else {
      return make_error("config {}: {}: expected a string", path, key);
    }
    auto st2 = set_policy_key(p, key, value);
    if (!st2) return st2.error().wrap("config " + path);
  }
  return p;
}

Status save_policy(const std::string& path, const Policy& p) {
  Policy def;
  toml::table t;
  for (const auto& key : policy_keys()) {
    std::string v = policy_value(p, key);
    if (v != policy_value(def, key)) t.insert_or_assign(key, v);
  }
  std::ostringstream out;
  out << "# nines agent policy (docs/AGENT.md); edit with `nines config KEY=VALUE`\n" << t << "\n";
  std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty()) {
    std::string cmd;
    // mkdir -p without a shell.
    for (size_t i = 1; i <= dir.size(); ++i)
      if (i == dir.size() || dir[i] == '/') ::mkdir(dir.substr(0, i).c_str(), 0755);
  }
  return write_file_atomic(path, out.str(), 0600);
}

std::string timestamp_key_dir(const Paths& paths) {
  return paths.root + "/etc/nines/timestamp-keys.d";
}

std::string machine_id(const Paths& paths) {
  for (const auto& f : {paths.machine_id_file, std::string("/etc/machine-id")}) {
    auto t = read_file(f, 4096);
    if (t) {
      std::string id(trim(*t));
      if (!id.empty()) return id;
    }
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

}  // namespace nines::agent
