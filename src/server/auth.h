// Authentication of the patch server's requests: who presents the bearer token, whether its
// kind may call the route, and the limits around it (failed logins per address and of all
// addresses together; requests per token). Free of HTTP types: it takes the Authorization
// header's value and the client address, and says who the caller is or why not.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "server/metrics.h"
#include "server/rate_limit.h"
#include "server/storage.h"
#include "server/tokens.h"

namespace nines::server {

// The token kinds that may call a route; the empty set means anyone, without a token.
class KindSet {
 public:
  constexpr KindSet() = default;
  constexpr KindSet(std::initializer_list<TokenKind> kinds) {
    for (TokenKind k : kinds) bits_ |= bit(k);
  }
  constexpr bool anyone() const { return bits_ == 0; }
  constexpr bool contains(TokenKind k) const { return (bits_ & bit(k)) != 0; }
  constexpr KindSet operator|(KindSet o) const {
    KindSet s;
    s.bits_ = bits_ | o.bits_;
    return s;
  }

 private:
  static constexpr unsigned bit(TokenKind k) { return 1u << static_cast<unsigned>(k); }
  unsigned bits_ = 0;
};

struct AuthLimits {
  double machine_rate = 10, machine_burst = 30;  // requests per machine token (0: none)
  double admin_rate = 200, admin_burst = 400;    // per admin, enroll or mirror token
  double fail_rate = 2, fail_burst = 20;         // failed logins per client address
  double fail_global_rate = 20, fail_global_burst = 200;  // of all addresses together
};

// The caller, or the refusal: status 401 (no, malformed, unknown or expired token), 403
// (a kind the route does not take), 429 (a budget spent; retry_after_s set), 500 (store).
struct AuthResult {
  std::optional<TokenRecord> caller;
  int status = 0;
  std::string why;
  int retry_after_s = 0;
};

class Authenticator {
 public:
  Authenticator(Storage& store, Metrics& metrics, const AuthLimits& limits);

  // Authorizes a request from `remote_addr` whose Authorization header is `authorization`
  // for a route that `allowed` kinds may call; `what` ("POST /v1/checkin") prefixes the
  // reasons. Anyone passes a route open to anyone, with an empty caller. A failed login
  // counts against the address's and the global budget; with `rate_limit`, a caller's
  // request counts against its token's budget (an enroll token gets the admin budget: it
  // provisions a whole fleet).
  AuthResult authorize(std::string_view authorization, const std::string& remote_addr,
                       std::string_view what, KindSet allowed, bool rate_limit);

 private:
  AuthResult identify(std::string_view authorization, std::string_view what, KindSet allowed);
  Storage& store_;
  Metrics& metrics_;
  RateLimiter machine_limits_, admin_limits_, fail_limits_, fail_global_;
};

}  // namespace nines::server
