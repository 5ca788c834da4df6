#include <gtest/gtest.h>

#include "core/clock.h"
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
