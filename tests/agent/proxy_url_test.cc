// The agent's http-proxy value as server::ApiClient reads it (server/client.h). The proxy
// itself, over http and https, is exercised by proxy_test.sh against a real tinyproxy.
#include <gtest/gtest.h>

#include <string>

#include "server/client.h"

namespace nines::server {
namespace {

std::string error_of(const std::string& url) {
  auto p = parse_proxy_url(url);
  EXPECT_FALSE(p.ok()) << url << " was accepted";
  return p.ok() ? std::string() : p.error().message;
}

TEST(ProxyUrl, HostAndPort) {
  auto p = parse_proxy_url("http://proxy.example.org:3128");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->host, "proxy.example.org");
  EXPECT_EQ(p->port, 3128);
  EXPECT_EQ(p->user, "");
  EXPECT_EQ(p->display(), "http://proxy.example.org:3128");
}

TEST(ProxyUrl, TrailingSlashIsAllowed) {
  auto p = parse_proxy_url("http://10.0.0.1:8080/");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->host, "10.0.0.1");
  EXPECT_EQ(p->port, 8080);
}

TEST(ProxyUrl, CredentialsArePercentDecodedAndNeverDisplayed) {
  auto p = parse_proxy_url("http://ops%40corp:p%3Aw%25rd@proxy:3128");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->user, "ops@corp");
  EXPECT_EQ(p->password, "p:w%rd");
  EXPECT_EQ(p->display(), "http://proxy:3128");
}

TEST(ProxyUrl, BracketedIpv6) {
  auto p = parse_proxy_url("http://[::1]:3128");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->host, "::1");
  EXPECT_EQ(p->display(), "http://[::1]:3128");
}

TEST(ProxyUrl, MalformedValuesSayWhatIsWrong) {
  EXPECT_NE(error_of("https://proxy:3128").find("https:// proxies are not supported"),
            std::string::npos);
  EXPECT_NE(error_of("socks5://proxy:1080").find("must start with http://"), std::string::npos);
  EXPECT_NE(error_of("http://proxy").find("no port"), std::string::npos);
  EXPECT_NE(error_of("http://:3128").find("no host"), std::string::npos);
  EXPECT_NE(error_of("http://proxy:0").find("1-65535"), std::string::npos);
  EXPECT_NE(error_of("http://proxy:65536").find("1-65535"), std::string::npos);
  EXPECT_NE(error_of("http://proxy:31a8").find("port must be a number"), std::string::npos);
  EXPECT_NE(error_of("http://proxy:3128/path").find("no path"), std::string::npos);
  EXPECT_NE(error_of("http://::1:3128").find("[...]"), std::string::npos);
  EXPECT_NE(error_of("http://[::1:3128").find("unclosed"), std::string::npos);
  EXPECT_NE(error_of("http://user@proxy:3128").find("USER:PASSWORD"), std::string::npos);
  EXPECT_NE(error_of("http://user:@proxy:3128").find("USER:PASSWORD"), std::string::npos);
  EXPECT_NE(error_of("http://user:pw%zz@proxy:3128").find("percent-encoding"), std::string::npos);
}

TEST(ProxyUrl, ErrorsMaskThePassword) {
  std::string e = error_of("http://ops:hunter2@proxy");
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
  EXPECT_NE(e.find("http://ops:***@proxy"), std::string::npos) << e;
}

TEST(ApiClient, TakesAProxyForHttpAndHttps) {
  for (const char* server : {"http://127.0.0.1:9", "https://127.0.0.1:9"}) {
    auto c = ApiClient::make(server, "token", "", "http://u:p@127.0.0.1:3128");
    ASSERT_TRUE(c.ok()) << server << ": " << c.error().message;
    EXPECT_EQ(c->proxy(), "http://127.0.0.1:3128");
  }
  auto direct = ApiClient::make("http://127.0.0.1:9", "token");
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(direct->proxy(), "");
}

TEST(ApiClient, RefusesAMalformedProxyOrServerUrl) {
  auto c = ApiClient::make("http://127.0.0.1:9", "token", "", "http://127.0.0.1");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("no port"), std::string::npos) << c.error().message;
  auto s = ApiClient::make("http://127.0.0.1:9/api", "token");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("without a path"), std::string::npos) << s.error().message;
}

TEST(ApiClient, AnUnreachableProxyIsNamedInTheError) {
  // Port 1 on loopback: nothing listens there, the connection is refused at once.
  for (const char* server : {"http://127.0.0.1:9", "https://127.0.0.1:9"}) {
    auto c = ApiClient::make(server, "token", "", "http://u:secret@127.0.0.1:1");
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto r = c->post_json("/v1/checkin", nlohmann::json::object());
    ASSERT_FALSE(r.ok()) << server;
    EXPECT_NE(r.error().message.find("proxy http://127.0.0.1:1 unreachable"), std::string::npos)
        << r.error().message;
    EXPECT_EQ(r.error().message.find("secret"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace nines::server
