// Untrusted JSON bodies: size and depth are refused on the raw bytes, before parsing.
#include <gtest/gtest.h>

#include "server/json_body.h"

namespace nines::server {
namespace {

TEST(JsonBody, DepthIsCountedOnTheBytesOutsideStrings) {
  EXPECT_TRUE(check_json_bounds(R"({"a": [[{"b": 1}]]})", "t", 100, 4).ok());
  EXPECT_FALSE(check_json_bounds(R"({"a": [[{"b": [1]}]]})", "t", 100, 4).ok());
  // Brackets inside strings, escaped quotes included, are text.
  EXPECT_TRUE(check_json_bounds(R"({"a": "[[[[[\"[[[[", "b": "}}}"})", "t", 100, 2).ok());
}

TEST(JsonBody, AHundredThousandLevelsAreRefusedNamingTheLimit) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  Result<nlohmann::json> r = parse_json_object("{\"x\": " + deep + "}", "report");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "report: JSON nested more than 32 levels deep");
}

TEST(JsonBody, SizeIsCheckedFirstAndOnlyObjectsAreBodies) {
  Result<nlohmann::json> big = parse_json_object(std::string(200, ' '), "checkin", 100);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("more than the limit of 100"), std::string::npos);
  EXPECT_FALSE(parse_json_object("[1]", "checkin").ok());
  EXPECT_FALSE(parse_json_object("{\"a\":", "checkin").ok());
  EXPECT_EQ(parse_json_object("{\"a\": 1}", "checkin")->at("a"), 1);
}

}  // namespace
}  // namespace nines::server
