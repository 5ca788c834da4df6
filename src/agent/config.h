// The agent's configuration: where its files live and the operator's policy.
//
// Every path is derived from one root (NINES_ROOT, default "/") so tests and containers
// run the agent without touching the machine's /etc, /var/lib or /run:
//   ROOT/etc/nines/config.toml   policy (toml++), edited by `nines config`
//   ROOT/var/lib/nines/          state.db (SQLite), machine-token (0600), bundles/
//   ROOT/run/nines/agent.sock    the root-only control socket
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nines::agent {

struct Paths {
  std::string root;             // "" means "/"
  std::string config_file;      // ROOT/etc/nines/config.toml
  std::string state_dir;        // ROOT/var/lib/nines
  std::string socket_path;      // ROOT/run/nines/agent.sock
  std::string machine_id_file;  // ROOT/etc/machine-id, falling back to /etc/machine-id

  // From `root` when given, else NINES_ROOT, else "/". NINES_CONFIG, NINES_STATE_DIR and
  // NINES_SOCKET override single paths.
  static Paths make(const std::string& root = {});
  std::string state_db() const { return state_dir + "/state.db"; }
  std::string token_file() const { return state_dir + "/machine-token"; }
  std::string bundle_dir() const { return state_dir + "/bundles"; }
};

// The policy keys of config.toml (kebab-case, all optional).
struct Policy {
  int64_t check_interval_s = 3600;     // check-interval: "60m" (jittered by up to 10%)
  std::string severity = "high";       // severity: lowest severity applied automatically
  std::optional<int64_t> cutoff_unix;  // cutoff-date: apply only patches published before
  std::string cutoff_text;             // ... as written
  int64_t patch_delay_s = 0;           // patch-delay: apply once published this long
  std::string tier;                    // tier: expected tier (the enroll token decides it)
  std::string mode = "normal";         // mode: normal | no-apply | no-refresh | stop
  std::string remote_server;           // remote-server: http(s)://host:port
  std::string ca_certs;                // ca-certs: PEM file trusted for https
  std::string http_proxy;              // http-proxy: http://host:port
  std::string trust_dir = "/etc/nines/trusted-keys.d";  // trust-dir: publisher keys
  std::string metrics_listen;                           // metrics-listen: 127.0.0.1:PORT ("" = off)
  uint64_t max_download = 64u << 20;   // max-download: bundle bodies larger are refused
  int64_t server_timeout_s = 300;      // server-timeout: one request, headers to last byte
  int64_t catalogue_max_age_s = 86400;  // catalogue-max-age: stale past this age
};

// The timestamp keys' trust store (docs/SECURITY.md): ROOT/etc/nines/timestamp-keys.d.
std::string timestamp_key_dir(const Paths& paths);

// The keys in the order `nines config` shows them.
const std::vector<std::string>& policy_keys();

// "90", "90s", "15m", "2h", "1d" -> seconds. Fails naming the text.
Result<int64_t> parse_duration(const std::string& text);
std::string format_duration(int64_t seconds);

// Sets one key from its text form, validating it ("config: severity: 'urgent' is not one
// of critical, high, medium, low, negligible").
Status set_policy_key(Policy& p, const std::string& key, const std::string& value);
// The text form of one key (what config.toml holds).
std::string policy_value(const Policy& p, const std::string& key);

// Reads config.toml; a missing file is the default policy. Unknown keys and bad values
// fail naming the file and the key.
Result<Policy> load_policy(const std::string& path);
// The policy that the text of a config.toml holds (what load_policy does once the file is
// read); `name` names it in messages. Non-ASCII, bad TOML, unknown keys and bad values fail.
Result<Policy> parse_policy(std::string_view text, const std::string& name);
// Writes every key that differs from the default, atomically (mode 0600: http-proxy may
// hold a password).
Status save_policy(const std::string& path, const Policy& p);

// This machine's id: machine_id_file, /etc/machine-id, else the hostname.
std::string machine_id(const Paths& paths);

}  // namespace nines::agent
