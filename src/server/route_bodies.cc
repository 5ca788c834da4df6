#include "server/route_bodies.h"

#include "server/json_body.h"

namespace nines::server {

using nlohmann::json;

namespace {

// An optional string member: "" when absent or null; an error naming it otherwise.
Result<std::string> member(const json& o, std::string_view what, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::string();
  if (!it->is_string()) return make_error("{}: {}: not a string", what, key);
  return it->get<std::string>();
}

}  // namespace

Result<TokenRequest> parse_token_request(std::string_view body) {
  constexpr std::string_view what = "create token";
  json b = NINES_TRY(parse_json_object(body, what));
  TokenRequest r;
  std::string kind = NINES_TRY(member(b, what, "kind"));
  r.tier = NINES_TRY(member(b, what, "tier"));
  r.name = NINES_TRY(member(b, what, "name"));
  if (auto e = b.find("expires_in_s"); e != b.end() && !e->is_null()) {
    if (!e->is_number_integer() || e->get<int64_t>() < 0 || e->get<int64_t>() > kMaxTokenLifetimeS)
      return make_error("{}: expires_in_s: expected an integer 0..{} (0: never)", what,
                        kMaxTokenLifetimeS);
    r.expires_in_s = e->get<int64_t>();
  }
  std::optional<TokenKind> k = parse_token_kind(kind.empty() ? "enroll" : kind);
  if (!k || *k == TokenKind::kMachine)  // machine tokens come from enrollment only
    return make_error("{}: kind: '{}' is not one of enroll, mirror, admin", what,
                      kind.substr(0, 64));
  r.kind = *k;
  if (r.kind == TokenKind::kEnroll)
    if (Status s = check_name_field("tier", r.tier, 64); !s.ok()) return s.error().wrap(what);
  if (Status s = check_text_field("name", r.name, 255); !s.ok()) return s.error().wrap(what);
  return r;
}

Result<EnrollRequest> parse_enroll_request(std::string_view body) {
  constexpr std::string_view what = "enroll";
  json b = NINES_TRY(parse_json_object(body, what));
  EnrollRequest r;
  r.machine_id = NINES_TRY(member(b, what, "machine_id"));
  r.name = NINES_TRY(member(b, what, "name"));
  r.tier = NINES_TRY(member(b, what, "tier"));
  r.current_token = NINES_TRY(member(b, what, "current_token"));
  if (auto e = b.find("replace"); e != b.end() && !e->is_null()) {
    if (!e->is_boolean()) return make_error("{}: replace: not a boolean", what);
    r.replace = e->get<bool>();
  }
  if (Status s = check_name_field("machine_id", r.machine_id); !s.ok()) return s.error().wrap(what);
  if (!r.tier.empty())
    if (Status s = check_name_field("tier", r.tier, 64); !s.ok()) return s.error().wrap(what);
  if (Status s = check_text_field("name", r.name, 255); !s.ok()) return s.error().wrap(what);
  if (!r.current_token.empty() && !token_well_formed(r.current_token))
    return make_error("{}: current_token: not a token", what);
  return r;
}

Result<MachineIdentity> parse_checkin_request(std::string_view body) {
  return parse_identity(NINES_TRY(parse_json_object(body, "checkin")));
}

Result<ReportRequest> parse_report_request(std::string_view body, int64_t now_unix) {
  json b = NINES_TRY(parse_json_object(body, "report"));
  auto lines = b.find("reports");
  if (lines == b.end() || !lines->is_array())
    return make_error("report: reports: missing or not an array");
  if (lines->size() > kMaxReportLines)
    return make_error("report: reports: {} lines, more than the limit of {}", lines->size(),
                      kMaxReportLines);
  ReportRequest r;
  for (size_t i = 0; i < lines->size(); ++i)
    r.lines.push_back(NINES_TRY(parse_report_line((*lines)[i], i, now_unix)));
  if (auto a = b.find("advisor"); a != b.end()) r.advisor_json = NINES_TRY(parse_advisor(*a));
  if (auto c = b.find("catalogue"); c != b.end() && !c->is_null())
    r.catalogue_json = NINES_TRY(parse_catalogue_state(*c));
  return r;
}

Result<std::string> parse_promote_request(std::string_view body) {
  json b = NINES_TRY(parse_json_object(body, "promote"));
  std::string tier = NINES_TRY(member(b, "promote", "tier"));
  if (Status s = check_name_field("tier", tier, 64); !s.ok()) return s.error().wrap("promote");
  return tier;
}

namespace {
template <typename T>
Status status_of(const Result<T>& r) {
  if (!r.ok()) return r.error();
  return {};
}
}  // namespace

Status validate_route_body(std::string_view route, std::string_view body) {
  if (route == "/v1/tokens") return status_of(parse_token_request(body));
  if (route == "/v1/enroll") return status_of(parse_enroll_request(body));
  if (route == "/v1/checkin") return status_of(parse_checkin_request(body));
  if (route == "/v1/reports") return status_of(parse_report_request(body, 1764547200));
  if (route == "/v1/bundles/:id/:version/promote") return status_of(parse_promote_request(body));
  return make_error("no route {} takes a JSON body", route);
}

}  // namespace nines::server
