// The patch server: the /v1 HTTP API over a Storage, the dashboard at /, /metrics, and the
// optional upstream mirror. docs/SERVER-API.md documents every endpoint.
//
// Threads: httplib answers each connection on a pool thread; handlers share the Storage
// (thread-safe), the rate limiters, the metrics and a catalogue cache that is refreshed
// when the store's catalogue generation moves (so several servers over one PostgreSQL see
// each other's publishes within kGenerationTtlMs).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "bundle/bundle.h"
#include "core/result.h"
#include "server/auth.h"
#include "server/json_body.h"
#include "server/metrics.h"
#include "server/rate_limit.h"
#include "server/storage.h"

namespace httplib {
class Server;
}

namespace nines::server {

struct ServeOptions {
  std::string listen = "127.0.0.1:9090";  // HOST:PORT; port 0 picks a free one
  std::string db;                         // empty: sqlite:<data_dir>/nines.db
  std::string data_dir = "/var/lib/nines-server";
  std::string tls_cert, tls_key;  // both or neither
  std::string trust_dir = "/etc/nines/trusted-keys.d";
  std::string upstream_url, upstream_token, upstream_ca_file;
  int upstream_interval_s = 60;
  // Rate limits per token: requests per second and burst. 0 disables.
  double machine_rate = 10, machine_burst = 30;
  double admin_rate = 200, admin_burst = 400;
  // Failed authentications per client address, and of all addresses together (a search
  // spread over many addresses still meets the second).
  double auth_fail_rate = 2, auth_fail_burst = 20;
  double auth_fail_global_rate = 20, auth_fail_global_burst = 200;
  int threads = 32;
  // The catalogue freshness signing key (docs/SECURITY.md); empty: <data_dir>/timestamp.key,
  // created at first start. Documents are valid for freshness_ttl_s.
  std::string timestamp_key;
  int64_t freshness_ttl_s = 86400;
  // A machine not seen for this long counts as "stale" in the dashboard's machine list.
  int64_t stale_after_s = 86400;
};

inline constexpr int64_t kGenerationTtlMs = 1000;

class Server {
 public:
  Server(ServeOptions opts, std::unique_ptr<Storage> store);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // On an empty store, creates the admin token and returns its text (shown once, and
  // written 0600 to <data_dir>/admin-token by run_serve). Returns "" when one exists.
  Result<std::string> ensure_admin_token();
  // Loads the timestamp key (ServeOptions::timestamp_key), creating the default one on
  // first start (mode 0600, its public half beside it). Returns whether it was created.
  // Without it, check-in answers carry no "freshness".
  Result<bool> load_timestamp_key();
  std::string timestamp_key_path() const;
  // Binds the listening socket (TLS when cert and key are set). Returns the port.
  Result<int> bind();
  // Answers requests until stop(). Starts the upstream mirror thread when configured.
  Status serve();
  void stop();
  // Mirrors the upstream catalogue once: new bundles are verified against our trust store
  // and stored; promotions are copied. Returns how many bundles were added.
  Result<int> sync_upstream_once();

  Storage& storage() { return *store_; }
  Metrics& metrics() { return metrics_; }

  struct Impl;

 private:
  ServeOptions opts_;
  std::unique_ptr<Storage> store_;
  std::unique_ptr<httplib::Server> http_;
  Metrics metrics_;
  Authenticator auth_;
  std::unique_ptr<Impl> impl_;
  std::optional<bundle::SecretKey> timestamp_key_;
  std::thread upstream_thread_;
  std::atomic<bool> stopping_{false};
};

// The whole of `nines serve`: data folder, storage, admin token (printed once to stdout and
// written to <data>/admin-token, mode 0600), bind, serve until SIGINT or SIGTERM.
// Prints "listening on http(s)://HOST:PORT" to stdout once bound. Returns the exit status.
int run_serve(const ServeOptions& opts);

}  // namespace nines::server
