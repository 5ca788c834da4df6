#include "agent/config.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include <toml++/toml.h>

#include "bundle/bundle.h"
#include "core/clock.h"
#include "core/duration.h"
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

Result<int64_t> parse_duration(const std::string& text) {
  auto ms = parse_duration_ms(text, BareNumber::kSeconds);
  if (!ms) return ms.error();
  if (*ms % 1000) return make_error("duration '{}': whole seconds only", text);
  return *ms / 1000;
}

std::string format_duration(int64_t seconds) { return format_duration_ms(seconds * 1000); }

Status set_policy_key(Policy& p, const std::string& key, const std::string& value) {
  auto bad = [&](const std::string& why) {
    return make_error("config: {}: '{}' {}", key, value, why);
  };
  if (key == "check-interval") {
    // canonical-livepatch's meaning: a bare number is minutes, and 0 is "never".
    auto ms = parse_duration_ms(value, BareNumber::kMinutes);
    if (!ms) return Error{"config: check-interval: " + ms.error().message};
    if (*ms == 0) {
      p.check_interval_s = kNeverCheck;
    } else if (*ms < 1000 || *ms % 1000) {
      return bad("must be whole seconds, at least 1s (or 0: never)");
    } else {
      p.check_interval_s = *ms / 1000;
    }
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
    if (!t) return bad("is not a day of the calendar (YYYY-MM-DD), an RFC 3339 time or 'none'");
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
  if (key == "check-interval")
    return p.check_interval_s >= kNeverCheck ? "0" : format_duration(p.check_interval_s);
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

namespace {

std::string dropin_dir(const std::string& config_file) {
  auto slash = config_file.rfind('/');
  return (slash == std::string::npos ? std::string(".") : config_file.substr(0, slash)) +
         "/config.d";
}

// The *.toml files of config.d in name order (a missing folder has none).
std::vector<std::string> dropin_files(const std::string& config_file) {
  std::vector<std::string> out;
  std::string dir = dropin_dir(config_file);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 5 && name[0] != '.' && name.compare(name.size() - 5, 5, ".toml") == 0)
      out.push_back(dir + "/" + name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Status apply_policy_text(Policy& p, std::string_view text, const std::string& path);

// One file's keys onto `p`; a missing file changes nothing.
Status apply_policy_file(Policy& p, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return errno_error("stat " + path);
  }
  auto text = NINES_TRY(read_file(path, 1 << 20));
  return apply_policy_text(p, text, path);
}

}  // namespace

Result<Policy> parse_policy(std::string_view text, const std::string& path) {
  Policy p;
  NINES_CHECK(apply_policy_text(p, text, path));
  return p;
}

namespace {

// The keys of one file's text onto `p`.
Status apply_policy_text(Policy& p, std::string_view text, const std::string& path) {
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
  return {};
}

}  // namespace

Result<Policy> load_policy(const std::string& path) {
  Policy p;
  NINES_CHECK(apply_policy_file(p, path));
  for (const auto& f : dropin_files(path)) NINES_CHECK(apply_policy_file(p, f));
  return p;
}

std::string policy_dropin(const std::string& config_file) {
  return dropin_dir(config_file) + "/50-local.toml";
}

int64_t policy_stamp(const std::string& config_file) {
  auto mtime = [](const std::string& f) -> int64_t {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) return 0;
    return st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec + st.st_ino;
  };
  int64_t stamp = mtime(config_file) ^ (mtime(dropin_dir(config_file)) * 31);
  for (const auto& f : dropin_files(config_file)) stamp = stamp * 131 + mtime(f);
  return stamp;
}

Status save_policy_dropin(const std::string& config_file, const Policy& p) {
  // Only what differs from config.toml and the other drop-ins goes in ours, so a key the
  // administrator later edits in config.toml is not shadowed by an old copy of it.
  Policy base;
  NINES_CHECK(apply_policy_file(base, config_file));
  std::string ours = policy_dropin(config_file);
  for (const auto& f : dropin_files(config_file))
    if (f != ours) NINES_CHECK(apply_policy_file(base, f));
  toml::table t;
  for (const auto& key : policy_keys()) {
    std::string v = policy_value(p, key);
    if (v != policy_value(base, key)) t.insert_or_assign(key, v);
  }
  std::ostringstream out;
  out << "# Written by `nines config` and `nines enable` (docs/AGENT.md): they never edit\n"
      << "# config.toml. Keys here override config.toml and the drop-ins before this one.\n"
      << t << "\n";
  std::string dir = dropin_dir(config_file);
  for (size_t i = 1; i <= dir.size(); ++i)  // mkdir -p
    if (i == dir.size() || dir[i] == '/') ::mkdir(dir.substr(0, i).c_str(), 0755);
  return write_file_atomic(ours, out.str(), 0600);  // http-proxy may hold a password
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
