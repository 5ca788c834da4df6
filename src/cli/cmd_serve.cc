// nines serve: the patch server (HTTP API, dashboard, metrics) over SQLite or PostgreSQL.
#include "bundle/bundle.h"
#include "cli/commands.h"
#include "core/strings.h"
#include "server/server.h"

namespace nines::cli {
namespace {

// "90s", "30m", "24h", "7d", or plain seconds; nullopt for anything else or zero.
std::optional<int64_t> parse_ttl(const std::string& text) {
  if (text.empty()) return std::nullopt;
  int64_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 's': unit = 1; digits.pop_back(); break;
    case 'm': unit = 60; digits.pop_back(); break;
    case 'h': unit = 3600; digits.pop_back(); break;
    case 'd': unit = 86400; digits.pop_back(); break;
    default: break;
  }
  std::optional<uint64_t> n = parse_u64(digits);
  if (!n || *n == 0 || *n > (uint64_t{1} << 40) / static_cast<uint64_t>(unit)) return std::nullopt;
  return static_cast<int64_t>(*n) * unit;
}

}  // namespace

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
    std::optional<int64_t> seconds = parse_ttl(*ttl);
    if (!seconds) {
      std::fprintf(stderr,
                   "nines serve: --freshness-ttl '%s': expected a positive number with s, m, h "
                   "or d (24h)\n",
                   ttl->c_str());
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
