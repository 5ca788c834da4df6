#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/calendar.h"
#include "core/clock.h"
#include "core/duration.h"
#include "core/progress.h"
#include "core/proxy_connect.h"
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

TEST(Dates, TheCalendarDecidesWhichDaysExist) {
  EXPECT_EQ(*parse_date("1970-01-02"), 86400);
  EXPECT_EQ(*parse_date("2024-02-29"), *parse_rfc3339("2024-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_date("2026-02-31"));
  EXPECT_FALSE(parse_date("2025-02-29")) << "not a leap year";
  EXPECT_FALSE(parse_date("2026-04-31"));
  EXPECT_FALSE(parse_date("2026-13-01"));
  EXPECT_FALSE(parse_date("2026-00-10"));
  EXPECT_FALSE(parse_date("2026-1-10"));
  EXPECT_FALSE(parse_date("2026-01-+1"));
  EXPECT_FALSE(parse_date("2026-01-10x"));
  EXPECT_FALSE(parse_rfc3339("2026-02-31T12:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2026-02-28T24:00:00Z"));
}

TEST(Durations, TakeUnitsFromMillisecondsToWeeks) {
  EXPECT_EQ(*parse_duration_ms("500ms"), 500);
  EXPECT_EQ(*parse_duration_ms("30s"), 30000);
  EXPECT_EQ(*parse_duration_ms("5m"), 300000);
  EXPECT_EQ(*parse_duration_ms("2h"), 7200000);
  EXPECT_EQ(*parse_duration_ms("7d"), 604800000);
  EXPECT_EQ(*parse_duration_ms("1w"), 604800000);
  EXPECT_EQ(*parse_duration_ms(" 0s "), 0);
}

TEST(Durations, ABareNumberNeedsAUnitUnlessTheKeySaysWhich) {
  auto bare = parse_duration_ms("5000");
  ASSERT_FALSE(bare);
  EXPECT_NE(bare.error().message.find("needs a unit"), std::string::npos) << bare.error().message;
  EXPECT_EQ(*parse_duration_ms("60", BareNumber::kMinutes), 3600000);
  EXPECT_EQ(*parse_duration_ms("90", BareNumber::kSeconds), 90000);
  auto unit = parse_duration_ms("5x");
  ASSERT_FALSE(unit);
  EXPECT_NE(unit.error().message.find("unknown unit 'x'"), std::string::npos);
  EXPECT_FALSE(parse_duration_ms("-5s"));
  EXPECT_FALSE(parse_duration_ms("1.5h"));
  EXPECT_FALSE(parse_duration_ms("s"));
  EXPECT_FALSE(parse_duration_ms("99999999999999999w")) << "overflow";
}

TEST(Durations, FormatWithTheLargestExactUnit) {
  EXPECT_EQ(format_duration_ms(0), "0s");
  EXPECT_EQ(format_duration_ms(500), "500ms");
  EXPECT_EQ(format_duration_ms(5000), "5s");
  EXPECT_EQ(format_duration_ms(90000), "90s");
  EXPECT_EQ(format_duration_ms(3600000), "1h");
  EXPECT_EQ(format_duration_ms(1209600000), "2w");
  EXPECT_EQ(format_duration_ms(86400000 * 3), "3d");
}

TEST(Progress, ShowsWholeLinesOnlyPastOneSecondAndOnlyOnATerminal) {
  Progress quiet("waiting", false);
  EXPECT_FALSE(quiet.update("x"));
  Progress shown("waiting", true);
  EXPECT_FALSE(shown.update("x")) << "not before one second";
  testing::internal::CaptureStderr();
  std::this_thread::sleep_for(std::chrono::milliseconds(1050));
  EXPECT_TRUE(shown.update("thread 7 in parse()"));
  EXPECT_FALSE(shown.update("again")) << "at most once a second";
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "nines: waiting: 1 s: thread 7 in parse()\n") << "one whole line";
}

TEST(Hex, RoundTripsAndRejectsOddOrNonHex) {
  std::vector<uint8_t> b{0x00, 0xab, 0xff};
  EXPECT_EQ(to_hex(b), "00abff");
  EXPECT_EQ(from_hex("00abff"), b);
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("zz"));
  EXPECT_EQ(from_hex("00ABFF"), b) << "either case";
  EXPECT_FALSE(from_hex("0 ab"));
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

// The proxy's answer to CONNECT (core/proxy_connect.h): hostile bytes from the network.
namespace {
nines::ProxyUrl test_proxy(bool credentials) {
  nines::ProxyUrl p;
  p.host = "proxy.example";
  p.port = 3128;
  if (credentials) p.user = "agent", p.password = "secret";
  return p;
}
}  // namespace

TEST(ProxyConnect, OpensTheTunnelOnlyOnA2xxStatusLine) {
  auto p = test_proxy(false);
  EXPECT_TRUE(nines::check_connect_reply("HTTP/1.1 200 Connection established\r\n\r\n", p, "h:443"));
  EXPECT_TRUE(nines::check_connect_reply("HTTP/1.0 200 OK\r\nProxy-Agent: x\r\n\r\n", p, "h:443"));
  auto refused = nines::check_connect_reply("HTTP/1.1 502 Bad Gateway\r\n\r\n", p, "h:443");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message,
            "proxy http://proxy.example:3128 refused the tunnel to h:443: HTTP 502 Bad Gateway");
}

TEST(ProxyConnect, A407SaysWhetherCredentialsWereSent) {
  const char* head = "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n";
  auto without = nines::check_connect_reply(head, test_proxy(false), "h:443");
  ASSERT_FALSE(without);
  EXPECT_NE(without.error().message.find("the proxy requires credentials"), std::string::npos);
  auto with = nines::check_connect_reply(head, test_proxy(true), "h:443");
  ASSERT_FALSE(with);
  EXPECT_NE(with.error().message.find("the proxy refused the credentials"), std::string::npos);
}

TEST(ProxyConnect, NonHttpOrUnterminatedAnswersAreRefusedWithPrintableText) {
  auto p = test_proxy(false);
  // No line end at all: the whole text is the status line (nothing is read past it).
  auto short_head = nines::check_connect_reply("HTTP/1.1 2", p, "h:443");
  ASSERT_FALSE(short_head);
  EXPECT_NE(short_head.error().message.find("the answer is not HTTP: 'HTTP/1.1 2'"),
            std::string::npos);
  auto ssh = nines::check_connect_reply("SSH-2.0-OpenSSH_9.2\x1b[2J\r\n\r\n", p, "h:443");
  ASSERT_FALSE(ssh);
  EXPECT_NE(ssh.error().message.find("'SSH-2.0-OpenSSH_9.2?[2J'"), std::string::npos);
  auto ctl = nines::check_connect_reply("HTTP/1.1 500 \x07\x1b]0;owned\x07\r\n\r\n", p, "h:443");
  ASSERT_FALSE(ctl);
  for (char c : ctl.error().message) EXPECT_GE(static_cast<unsigned char>(c), 0x20);
}
