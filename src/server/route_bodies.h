// The body of each /v1 route that takes one, validated from its bytes alone: no socket, no
// store, no clock beyond the `now` passed in. Each returns the validated value or an error
// naming the field (answered 400). These are the entry points for fuzzing the routes' body
// validation; what needs the store (a report's bundle exists, a machine id is enrolled)
// is the handler's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "server/catalogue.h"
#include "server/storage.h"
#include "server/tokens.h"

namespace nines::server {

// The longest lifetime a token may be given (about 10 years).
inline constexpr int64_t kMaxTokenLifetimeS = int64_t{3650} * 86400;

// POST /v1/tokens: {"kind": enroll|mirror|admin (default enroll), "tier" (enroll: required),
// "name", "expires_in_s": 0..kMaxTokenLifetimeS (0: never; absent: the kind's default)}.
struct TokenRequest {
  TokenKind kind = TokenKind::kEnroll;
  std::string tier, name;
  std::optional<int64_t> expires_in_s;
};
Result<TokenRequest> parse_token_request(std::string_view body);

// POST /v1/enroll: {"machine_id", "name", "tier" (used for admin callers), "current_token",
// "replace": bool}.
struct EnrollRequest {
  std::string machine_id, name, tier, current_token;
  bool replace = false;
};
Result<EnrollRequest> parse_enroll_request(std::string_view body);

// POST /v1/checkin: the machine's identity (parse_identity).
Result<MachineIdentity> parse_checkin_request(std::string_view body);

// POST /v1/reports: {"reports": [line...] (at most kMaxReportLines), "advisor", "catalogue"}.
struct ReportRequest {
  std::vector<ReportRecord> lines;
  std::string advisor_json;    // "" when absent
  std::string catalogue_json;  // "" when absent
};
Result<ReportRequest> parse_report_request(std::string_view body, int64_t now_unix);

// POST /v1/bundles/{id}/{version}/promote: {"tier"}; returns the tier.
Result<std::string> parse_promote_request(std::string_view body);

// The validation of `route`'s body ("/v1/tokens", "/v1/enroll", "/v1/checkin",
// "/v1/reports", "/v1/bundles/:id/:version/promote"), for a fuzzer that covers them all
// with one input. An unknown route is an error.
Status validate_route_body(std::string_view route, std::string_view body);

}  // namespace nines::server
