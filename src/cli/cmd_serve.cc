// nines serve: the patch server (HTTP API, dashboard, metrics) over SQLite or PostgreSQL.
#include "agent/config.h"
#include "bundle/bundle.h"
#include "cli/commands.h"
#include "server/server.h"

namespace nines::cli {

Runner setup_serve(CLI::App& app) {
  auto o = std::make_shared<server::ServeOptions>();
  o->trust_dir = bundle::kDefaultTrustDir;
  app.add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--db", o->db,
                 "sqlite:PATH or postgresql://... (default: sqlite:<data>/nines.db)");
  app.add_option("--data", o->data_dir, "Folder for the SQLite file and the admin token")
      ->capture_default_str();
  app.add_option("--tls-cert", o->tls_cert, "PEM certificate: serve HTTPS");
  app.add_option("--tls-key", o->tls_key, "PEM private key of --tls-cert");
  app.add_option("--trust", o->trust_dir, "Trust store: publish accepts bundles signed by these")
      ->capture_default_str();
  app.add_option("--upstream", o->upstream_url, "Mirror the catalogue of this nines server");
  app.add_option("--upstream-token", o->upstream_token, "Mirror (or admin) token of --upstream");
  app.add_option("--upstream-ca", o->upstream_ca_file, "PEM CA file for an https upstream");
  app.add_option("--upstream-interval", o->upstream_interval_s, "Seconds between mirror syncs")
      ->capture_default_str();
  app.add_option("--threads", o->threads, "HTTP worker threads")->capture_default_str();
  app.add_option("--machine-rate", o->machine_rate,
                 "Requests per second per machine token (0: no limit)")
      ->capture_default_str();
  app.add_option("--machine-burst", o->machine_burst, "Burst per machine token")
      ->capture_default_str();
  app.add_option("--timestamp-key", o->timestamp_key,
                 "Secret key that signs catalogue freshness (default: <data>/timestamp.key, "
                 "created at first start)");
  auto ttl = std::make_shared<std::string>("24h");
  app.add_option("--freshness-ttl", *ttl,
                 "How long a signed freshness document is valid: N[s|m|h|d]")
      ->capture_default_str();
  return [o, ttl] {
    Result<int64_t> seconds = agent::parse_duration(*ttl);
    if (!seconds.ok() || *seconds < 1) {
      std::fprintf(stderr, "nines serve: --freshness-ttl: %s\n",
                   seconds.ok() ? "must be at least 1s" : seconds.error().message.c_str());
      return 2;
    }
    o->freshness_ttl_s = *seconds;
    if (!o->upstream_url.empty() && o->upstream_token.empty()) {
      std::fprintf(stderr, "nines serve: --upstream needs --upstream-token\n");
      return 2;
    }
    return server::run_serve(*o);
  };
}

}  // namespace nines::cli
