// Each route's body validated from its bytes alone (the fuzzing entry points).
#include <gtest/gtest.h>

#include "server/route_bodies.h"

namespace nines::server {
namespace {

TEST(RouteBodies, TokenRequestsNameTheFieldThatIsWrong) {
  auto ok = parse_token_request(R"({"kind":"mirror","name":"b","expires_in_s":60})");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->kind, TokenKind::kMirror);
  EXPECT_EQ(*ok->expires_in_s, 60);
  EXPECT_EQ(parse_token_request(R"({"kind":"machine"})").error().message,
            "create token: kind: 'machine' is not one of enroll, mirror, admin");
  EXPECT_FALSE(parse_token_request(R"({"kind":"enroll"})").ok());  // no tier
  EXPECT_FALSE(parse_token_request(R"({"kind":"admin","expires_in_s":"1"})").ok());
}

TEST(RouteBodies, EnrollRequestsCarryTheProofOfAnExistingMachine) {
  std::string t = "n9m_" + std::string(64, 'a');
  auto r = parse_enroll_request(R"({"machine_id":"a","current_token":")" + t + R"(","replace":true})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->current_token, t);
  EXPECT_TRUE(r->replace);
  EXPECT_FALSE(parse_enroll_request(R"({"machine_id":"a","replace":"yes"})").ok());
  EXPECT_FALSE(parse_enroll_request(R"({"machine_id":"a","current_token":"x"})").ok());
  EXPECT_FALSE(parse_enroll_request(R"({"machine_id":"a b"})").ok());
}

TEST(RouteBodies, ReportRequestsKeepAdvisorAndCatalogue) {
  auto r = parse_report_request(
      R"({"reports":[{"id":"x","version":1,"state":"applied"}],"advisor":{"verdict":"none"},)"
      R"("catalogue":{"state":"stale","since":"2026-12-01T00:00:00Z","reason":"expired"}})",
      2000000000);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->lines.size(), 1u);
  EXPECT_EQ(r->catalogue_json,
            R"({"reason":"expired","since":"2026-12-01T00:00:00Z","state":"stale"})");
  EXPECT_FALSE(parse_report_request(R"({"reports":[],"catalogue":{"state":"x"}})", 0).ok());
}

TEST(RouteBodies, EveryRouteIsReachableByName) {
  for (const char* route : {"/v1/tokens", "/v1/enroll", "/v1/checkin", "/v1/reports",
                            "/v1/bundles/:id/:version/promote"}) {
    Status s = validate_route_body(route, std::string(40, '['));
    ASSERT_FALSE(s.ok()) << route;
    EXPECT_NE(s.error().message.find("nested more than"), std::string::npos) << route;
  }
  EXPECT_TRUE(validate_route_body("/v1/bundles/:id/:version/promote", R"({"tier":"t"})").ok());
  EXPECT_FALSE(validate_route_body("/v1/nothing", "{}").ok());
}

}  // namespace
}  // namespace nines::server
