#include "server/auth.h"

#include "core/clock.h"
#include "core/strings.h"

namespace nines::server {

Authenticator::Authenticator(Storage& store, Metrics& metrics, const AuthLimits& limits)
    : store_(store),
      metrics_(metrics),
      machine_limits_(limits.machine_rate, limits.machine_burst),
      admin_limits_(limits.admin_rate, limits.admin_burst),
      fail_limits_(limits.fail_rate, limits.fail_burst),
      fail_global_(limits.fail_global_rate, limits.fail_global_burst) {}

AuthResult Authenticator::identify(std::string_view authorization, std::string_view what,
                                   KindSet allowed) {
  auto refused = [&](int status, std::string_view why) {
    return AuthResult{std::nullopt, status, fmt::format("{}: {}", what, why), 0};
  };
  std::string_view token = starts_with(authorization, "Bearer ") ? authorization.substr(7) : "";
  if (token.empty()) return refused(401, "missing bearer token (Authorization: Bearer <token>)");
  if (!token_well_formed(token)) return refused(401, "malformed token");
  std::string h = hash_token(token);
  Result<std::optional<TokenRecord>> r = store_.find_token(h);
  if (!r.ok()) return AuthResult{std::nullopt, 500, r.error().message, 0};
  if (!r->has_value() || !constant_time_equal((**r).hash_hex, h))
    return refused(401, "unknown token");
  const TokenRecord& t = **r;
  if (t.expires_unix != 0 && unix_now() >= t.expires_unix)
    return refused(401, fmt::format("token expired at {}", format_rfc3339(t.expires_unix)));
  if (!allowed.contains(t.kind))
    return refused(403, fmt::format("a {} token may not do this", to_string(t.kind)));
  return AuthResult{t, 0, "", 0};
}

AuthResult Authenticator::authorize(std::string_view authorization, const std::string& remote_addr,
                                    std::string_view what, KindSet allowed, bool rate_limit) {
  if (allowed.anyone()) return AuthResult{TokenRecord{}, 0, "", 0};
  AuthResult id = identify(authorization, what, allowed);
  int64_t now = monotonic_ns();
  if (id.status == 401) {
    metrics_.auth_failures++;
    if (int wait = fail_limits_.take("addr:" + remote_addr, now)) {
      metrics_.rate_limited++;
      return AuthResult{std::nullopt, 429, "too many failed authentications from this address",
                        wait};
    }
    if (int wait = fail_global_.take("all", now)) {
      metrics_.rate_limited++;
      return AuthResult{std::nullopt, 429,
                        "too many failed authentications from all addresses together", wait};
    }
    return id;
  }
  if (!id.caller || !rate_limit) return id;
  RateLimiter& lim = id.caller->kind == TokenKind::kMachine ? machine_limits_ : admin_limits_;
  if (int wait = lim.take(id.caller->hash_hex, now)) {
    metrics_.rate_limited++;
    return AuthResult{std::nullopt, 429, fmt::format("{}: rate limit of this token exceeded", what),
                      wait};
  }
  return id;
}

}  // namespace nines::server
