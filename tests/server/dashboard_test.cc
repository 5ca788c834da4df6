// The dashboard in Debian's chromium (headless): loads /, lets its script fetch /v1/fleet,
// and checks every figure it draws against the API; then saves a screenshot.
#include <gtest/gtest.h>
#include <unistd.h>

#include <regex>

#include "core/fd.h"
#include "core/subprocess.h"
#include "test_support.h"

namespace nines::server {
namespace {

using nlohmann::json;

constexpr const char* kLibA = "0123456789abcdef0123456789abcdef01234567";
constexpr const char* kLibB = "fedcba9876543210fedcba9876543210fedcba98";

std::vector<std::string> chromium_argv(const std::string& profile) {
  return {"timeout",
          "90",
          "chromium",
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--user-data-dir=" + profile,
          "--virtual-time-budget=15000",
          "--window-size=1400,1700"};
}

std::string figure(const std::string& dom, const std::string& id) {
  std::smatch m;
  std::regex re("id=\"" + id + "\"[^>]*>([^<]*)<");
  return std::regex_search(dom, m, re) ? m[1].str() : "<missing #" + id + ">";
}

size_t count(const std::string& dom, const std::string& needle) {
  size_t n = 0;
  for (size_t at = dom.find(needle); at != std::string::npos; at = dom.find(needle, at + 1)) ++n;
  return n;
}

TEST(Dashboard, ChromiumShowsTheSameFiguresAsTheApi) {
  if (access("/usr/bin/chromium", X_OK) != 0) GTEST_FAIL() << "chromium is not installed";
  testing::RunningServer srv("sqlite");
  // A small fleet: two patches (one with two versions), two tiers, five machines in every
  // state, one needing a reboot.
  auto publish = [&](testing::BundleSpec s, const std::string& tier) {
    auto r = srv.admin().post_bytes("/v1/bundles?tier=" + tier, make_bundle(srv.publisher(), s));
    ASSERT_TRUE(r.ok()) << r.error().message;
  };
  testing::BundleSpec a1, a2, b1;
  a1.cves = {{"CVE-2026-1001", "critical"}};
  a2.version = 2;
  a2.cves = {{"CVE-2026-1001", "critical"}, {"CVE-2026-1002", "medium"}};
  b1.id = "fix-libbar";
  b1.build_id = kLibB;
  b1.cves = {{"CVE-2026-2001", "high"}};
  publish(a1, "stable");
  publish(a2, "canary");
  publish(b1, "stable");
  struct M {
    const char* id;
    const char* tier;
    std::vector<std::string> libs;
    const char* state;
    int64_t version;
    const char* reason;
  };
  std::vector<M> fleet = {
      {"web-1", "stable", {kLibA, kLibB}, "applied", 1, ""},
      {"web-2", "stable", {kLibA}, "deferred", 1, "policy: maintenance window Sunday"},
      {"db-1", "stable", {kLibA}, "apply-failed", 1, "consistency: thread 4711 in foo()"},
      {"canary-1", "canary", {kLibA}, "applied", 2, ""},
      {"canary-2", "canary", {kLibA}, "", 0, ""},
  };
  for (const M& m : fleet) {
    std::string tok = srv.enroll(m.id, m.tier);
    auto c = srv.client(tok);
    ASSERT_TRUE(c.post_json("/v1/checkin", {{"arch", "x86_64"},
                                            {"kernel_release", "6.1.0-28-cloud-amd64"},
                                            {"build_ids", m.libs}})
                    .ok());
    if (!*m.state) continue;
    json lines = {
        {{"id", "fix-libfoo"}, {"version", m.version}, {"state", m.state}, {"reason", m.reason}}};
    if (std::string(m.id) == "web-1")
      lines.push_back({{"id", "fix-libbar"}, {"version", 1}, {"state", "applied"}});
    json body = {{"reports", lines}};
    if (std::string(m.id) == "db-1")
      body["advisor"] = {{"verdict", "reboot"},
                         {"reasons", {"kernel 6.1.0-29 installed, running 6.1.0-28"}}};
    auto r = c.post_json("/v1/reports", body);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  auto api = srv.admin().get_json("/v1/fleet");
  ASSERT_TRUE(api.ok());
  const json& f = *api;

  testing::TempDir profile("nines-chromium");
  std::string page = srv.url() + "/#token=" + srv.admin_token();
  std::vector<std::string> argv = chromium_argv(profile.path());
  argv.push_back("--dump-dom");
  argv.push_back(page);
  auto out = run_process(argv);
  ASSERT_TRUE(out.ok()) << out.error().message;
  const std::string& dom = out->output;
  ASSERT_NE(dom.find("data-state=\"ready\""), std::string::npos) << dom.substr(0, 4000);

  EXPECT_EQ(figure(dom, "machines-total"), std::to_string(f["machines"]["total"].get<int>()));
  for (const char* s : {"up-to-date", "pending", "deferred", "failed"})
    EXPECT_EQ(figure(dom, std::string("state-") + s),
              std::to_string(f["machines"]["by_state"][s].get<int>()))
        << s;
  EXPECT_EQ(figure(dom, "reboot-count"),
            std::to_string(f["machines"]["needing_reboot"].get<int>()));
  EXPECT_EQ(figure(dom, "cves-published"), std::to_string(f["cves_published"].get<int>()));
  EXPECT_EQ(figure(dom, "cves-applied"), std::to_string(f["cves_applied"].get<int>()));
  EXPECT_EQ(figure(dom, "cves-everywhere"),
            std::to_string(f["cves_applied_everywhere"].get<int>()));
  // The fleet as built above: the API agrees with the scenario, and the page with the API.
  EXPECT_EQ(f["machines"]["total"], 5);
  EXPECT_EQ(f["machines"]["by_state"]["failed"], 1);
  EXPECT_EQ(f["machines"]["by_state"]["deferred"], 1);
  EXPECT_EQ(f["cves_published"], 3);
  EXPECT_EQ(count(dom, "data-cve=\""), f["cves"].size());
  EXPECT_EQ(count(dom, "data-rollout=\""), f["rollout"].size());
  for (const json& m : f["machine_list"])
    EXPECT_NE(dom.find("data-machine=\"" + m["machine_id"].get<std::string>() + "\" data-state=\"" +
                       m["state"].get<std::string>() + "\""),
              std::string::npos)
        << m.dump();
  EXPECT_NE(dom.find("kernel 6.1.0-29 installed, running 6.1.0-28"), std::string::npos);
  // The per-CVE exposed count for the critical CVE: machines offered it minus applied.
  for (const json& c : f["cves"]) {
    std::string id = c["id"];
    std::smatch m;
    std::regex re("data-cve=\"" + id +
                  "\">(?:<td[^>]*>.*?</td>){3}<td class=\"num\">(\\d+)</td>"
                  "<td class=\"num\">(\\d+)</td>");
    ASSERT_TRUE(std::regex_search(dom, m, re)) << id;
    EXPECT_EQ(m[1].str(), std::to_string(c["machines_affected"].get<int>())) << id;
    EXPECT_EQ(m[2].str(), std::to_string(c["machines_applied"].get<int>())) << id;
  }

  // The screenshot, for people (kept in the build folder).
  std::string png = std::string(SCREENSHOT_DIR) + "/dashboard.png";
  unlink(png.c_str());
  argv = chromium_argv(profile.path());
  argv.push_back("--screenshot=" + png);
  argv.push_back("--hide-scrollbars");
  argv.push_back(page);
  auto shot = run_process(argv);
  ASSERT_TRUE(shot.ok()) << shot.error().message;
  auto bytes = read_file(png);
  ASSERT_TRUE(bytes.ok()) << shot->output;
  EXPECT_EQ(bytes->substr(1, 3), "PNG");
  EXPECT_GT(bytes->size(), 20000u);
  std::printf("dashboard screenshot: %s\n", png.c_str());
}

}  // namespace
}  // namespace nines::server
