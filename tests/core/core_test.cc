#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/strings.h"
#include "core/subprocess.h"

using namespace nines;

TEST(Rfc3339, ParsesUtcAndOffsets) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("2026-11-29T19:16:23+01:00"), parse_rfc3339("2026-11-29T18:16:23Z"));
  EXPECT_EQ(parse_rfc3339("2026-11-29T18:16:23.25Z"), parse_rfc3339("2026-11-29T18:16:23Z"));
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2026-11-29T18:16:23Z")), "2026-11-29T18:16:23Z");
}

TEST(Rfc3339, RejectsMalformedText) {
  EXPECT_FALSE(parse_rfc3339("2026-11-29 18:16:23Z"));
  EXPECT_FALSE(parse_rfc3339("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2026-11-29T18:16:23"));
  EXPECT_FALSE(parse_rfc3339("2026-11-29T18:16:23Zjunk"));
}

TEST(Hex, RoundTripsAndRejectsOddOrNonHex) {
  std::vector<uint8_t> b{0x00, 0xab, 0xff};
  EXPECT_EQ(to_hex(b), "00abff");
  EXPECT_EQ(from_hex("00abff"), b);
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("zz"));
}

TEST(Subprocess, ReportsExitCodeAndOutput) {
  auto r = run_process({"sh", "-c", "echo hi; exit 3"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->output, "hi\n");
  auto c = run_checked({"sh", "-c", "echo boom >&2; exit 1"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("boom"), std::string::npos);
}
