// The agent's exchanges with the patch server, run in a child process.
//
// The daemon (nines-agent) links no HTTP or TLS library: Debian's cpp-httplib initializes
// OpenSSL as soon as it is loaded, and with libpq's Kerberos and GnuTLS that was 6 MB of
// the idle agent's 10 MB budget (docs/PERFORMANCE.md). For the length of one check, the
// daemon starts `nines agent-exchange` (the full nines binary, next to nines-agent) and
// talks to it over its stdin and stdout: one JSON request line, one JSON answer line. The
// machine token travels in the first request, never in argv or the environment. When the
// check ends the daemon closes the pipe and the child exits; if the daemon dies, the child
// reads EOF and exits too.
//
//   -> {"op":"hello","server":URL,"token":T,"ca_certs":F,"http_proxy":P}   <- {"ok":true}
//   -> {"op":"post","path":"/v1/checkin","body":{...},"max_bytes":N,"timeout_s":S}
//                                                                            <- {"text":"..."}
//   -> {"op":"download","path":P,"sha256":H,"file":F,"max_bytes":N,"timeout_s":S}
//                                                         <- {"ok":true} | {"error","refused"}
//   -> {"op":"advisor","root":R}                        <- {"advisor":{"verdict","reasons"}}
//   any failure                                                             <- {"error":"..."}
#pragma once

#include <sys/types.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/fd.h"
#include "core/result.h"

namespace nines::agent {

struct LinkConfig {
  std::string server;      // http(s)://HOST:PORT
  std::string token;       // the machine token
  std::string ca_certs;    // PEM file trusted for https ("" = the system's)
  std::string http_proxy;  // http://[USER:PASS@]HOST:PORT ("" = direct)
};

class ServerLink {
 public:
  // Starts the child and sends the configuration; fails when the child cannot be started
  // or refuses the configuration (a malformed URL, say), with its message.
  static Result<ServerLink> open(const LinkConfig& config);
  ServerLink(ServerLink&& o) noexcept;
  ServerLink& operator=(ServerLink&& o) noexcept;
  ~ServerLink();  // closes the pipe and reaps the child (killed if it does not exit in 5 s)

  // POST a JSON body; the server's 2xx answer as text, unparsed (the caller parses it with
  // its own bounds: agent/offers.h), or the error ("POST PATH: HTTP STATUS: ..."). The
  // answer is refused past max_bytes or timeout_s (headers to last byte).
  Result<std::string> post(const std::string& path, const nlohmann::json& body,
                           uint64_t max_bytes, int timeout_s);
  // post() for small answers (reports): at most 1 MiB, parsed after the depth check.
  Result<nlohmann::json> post_json(const std::string& path, const nlohmann::json& body,
                                   int timeout_s);

  struct Download {
    bool ok = false;
    bool refused = false;  // too large or the wrong digest: asking again cannot help
    std::string error;
  };
  // GET path into `file` (0600, written atomically) only when the body's sha256 is `sha256`;
  // the body is streamed to disk, never held whole, and refused past max_bytes.
  Download download(const std::string& path, const std::string& sha256, const std::string& file,
                    uint64_t max_bytes, int timeout_s);
  // The advisor's verdict on the machine under `root`: {"verdict", "reasons"}.
  Result<nlohmann::json> advisor(const std::string& root);

 private:
  ServerLink() = default;
  void close();
  // One request line, one answer line; an answer with "error" is an error unless
  // keep_error_answer (download reads its "refused" member).
  Result<nlohmann::json> call(const nlohmann::json& request, int timeout_s,
                              bool keep_error_answer = false);
  pid_t pid_ = -1;
  Fd to_, from_;
  std::string pending_;  // bytes read past the last answer line
};

// The child's side (`nines agent-exchange`): answers requests from stdin on stdout until
// EOF. Defined in exchange.cc, which only the nines binary links. Returns the exit status.
int run_exchange();

}  // namespace nines::agent
