// nines serve: the patch server (HTTP API, dashboard, metrics) over SQLite or PostgreSQL.
#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>

#include "agent/config.h"
#include "bundle/bundle.h"
#include "cli/commands.h"
#include "core/fd.h"
#include "core/strings.h"
#include "server/server.h"

namespace nines::cli {

namespace {

// HOST:PORT with a port of 0..65535 whose address is free: a second server on a busy port
// is refused, not started beside the first (they would split the requests between two
// databases). The probe binds without SO_REUSEPORT, so it fails when anything listens.
Status check_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return make_error("--listen '{}': expected HOST:PORT", listen);
  std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
  auto p = parse_u64(port);
  if (!p || *p > 65535) return make_error("--listen '{}': port '{}' is not 0..65535", listen, port);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return make_error("--listen '{}': {}", listen, ::gai_strerror(rc));
  Status st;
  if (*p != 0) {
    Fd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() >= 0 && ::bind(fd.get(), res->ai_addr, res->ai_addrlen) != 0 && errno == EADDRINUSE)
      st = make_error("--listen {}: the address is in use (another nines serve?)", listen);
  }
  ::freeaddrinfo(res);
  return st;
}

void warn_without_trust_store(const std::string& dir) {
  auto keys = bundle::load_trust_store(dir);
  if (!keys || keys->empty())
    std::fprintf(stderr,
                 "nines serve: warning: no publisher key in the trust store %s: every publish "
                 "will be refused (nines keygen, then copy the .pub there, or --trust DIR)\n",
                 dir.c_str());
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
    // Every option is checked before any state (database, admin token) is created.
    if (auto st = check_listen(o->listen); !st) {
      std::fprintf(stderr, "nines serve: %s\n", st.error().message.c_str());
      return 2;
    }
    if (o->tls_cert.empty() != o->tls_key.empty()) {
      std::fprintf(stderr, "nines serve: --tls-cert and --tls-key go together\n");
      return 2;
    }
    warn_without_trust_store(o->trust_dir);
    return server::run_serve(*o);
  };
}

}  // namespace nines::cli
