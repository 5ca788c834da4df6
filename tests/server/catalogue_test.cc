// The server's rules without HTTP or storage: applicability, field validation, machine
// states and the fleet summary (exposure windows).
#include <gtest/gtest.h>

#include "server/catalogue.h"

namespace nines::server {
namespace {

using nlohmann::json;

BundleRecord user_bundle(std::string id, int64_t version, std::string build_id,
                         std::string cves_json = "[]", int64_t published = 1000) {
  BundleRecord b;
  b.id = std::move(id);
  b.version = version;
  b.kind = "userspace";
  b.target_build_id = std::move(build_id);
  b.sha256 = std::string(64, 'a');
  b.published_unix = published;
  b.manifest_json = R"({"cves":)" + cves_json + "}";
  return b;
}

TEST(Applicable, NewestVersionPerPatchIdThatTargetsAMappedObject) {
  std::vector<BundleRecord> tier = {user_bundle("a", 1, "aa11"), user_bundle("a", 3, "aa11"),
                                    user_bundle("a", 2, "aa11"), user_bundle("b", 1, "bb22"),
                                    user_bundle("c", 1, "cc33")};
  MachineIdentity m;
  m.build_ids = {"aa11", "cc33"};
  auto out = applicable_bundles(tier, m);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, "a");
  EXPECT_EQ(out[0].version, 3);
  EXPECT_EQ(out[1].id, "c");
}

TEST(Applicable, KernelBundlesMatchReleaseAndBuildIdWhenBothAreKnown) {
  BundleRecord k;
  k.id = "k";
  k.version = 1;
  k.kind = "kernel";
  k.kernel_release = "6.1.0-28-cloud-amd64";
  k.target_build_id = "abcd";
  MachineIdentity m;
  m.kernel_release = "6.1.0-28-cloud-amd64";
  EXPECT_EQ(applicable_bundles({k}, m).size(), 1u);  // machine did not say its build-id
  m.kernel_build_id = "abcd";
  EXPECT_EQ(applicable_bundles({k}, m).size(), 1u);
  m.kernel_build_id = "ffff";
  EXPECT_TRUE(applicable_bundles({k}, m).empty());
  m.kernel_build_id.clear();
  m.kernel_release = "6.1.0-27-cloud-amd64";
  EXPECT_TRUE(applicable_bundles({k}, m).empty());
}

TEST(ParseIdentity, LowercasesAndDeduplicatesBuildIds) {
  auto m = parse_identity(json{
      {"arch", "x86_64"}, {"kernel_release", "6.1.0"}, {"build_ids", {"AABB", "aabb", "0011"}}});
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->build_ids, (std::vector<std::string>{"0011", "aabb"}));
}

TEST(ParseIdentity, RefusesEachBadFieldByName) {
  auto no_arch = parse_identity(json{{"kernel_release", "6.1.0"}});
  ASSERT_FALSE(no_arch.ok());
  EXPECT_NE(no_arch.error().message.find("arch: empty"), std::string::npos);
  auto odd =
      parse_identity(json{{"arch", "x86_64"}, {"kernel_release", "k"}, {"build_ids", {"abc"}}});
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.error().message.find("build_ids[0]"), std::string::npos);
  auto type = parse_identity(json{{"arch", 5}, {"kernel_release", "k"}});
  ASSERT_FALSE(type.ok());
  EXPECT_NE(type.error().message.find("arch: not a string"), std::string::npos);
  json many = json{{"arch", "x86_64"}, {"kernel_release", "k"}, {"build_ids", json::array()}};
  for (size_t i = 0; i <= kMaxBuildIds; ++i) many["build_ids"].push_back("aa");
  auto too_many = parse_identity(many);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().message.find("more than the limit"), std::string::npos);
  auto ctrl = parse_identity(json{{"arch", "x86_64"}, {"kernel_release", "k"}, {"name", "a\nb"}});
  ASSERT_FALSE(ctrl.ok());
  EXPECT_NE(ctrl.error().message.find("control character"), std::string::npos);
}

TEST(ParseReport, ClampsTimesFromTheFutureToNow) {
  auto r = parse_report_line(
      json{{"id", "a"}, {"version", 1}, {"state", "applied"}, {"at", "2099-01-01T00:00:00Z"}}, 0,
      5000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reported_unix, 5000);
}

TEST(MachineState, FailedOutranksDeferredOutranksPending) {
  MachineRecord m;
  std::vector<BundleRecord> offered = {user_bundle("a", 2, "x"), user_bundle("b", 1, "y"),
                                       user_bundle("c", 1, "z")};
  std::map<std::string, ReportRecord> st;
  EXPECT_EQ(machine_state(m, offered, st), "pending");
  st["a"] = {0, "m", "a", 2, "applied", "", 1};
  st["b"] = {0, "m", "b", 1, "applied", "", 1};
  st["c"] = {0, "m", "c", 1, "not-applicable", "", 1};
  EXPECT_EQ(machine_state(m, offered, st), "up-to-date");
  st["a"] = {0, "m", "a", 1, "applied", "", 1};  // an older version than offered
  EXPECT_EQ(machine_state(m, offered, st), "pending");
  st["b"] = {0, "m", "b", 1, "deferred", "window", 1};
  EXPECT_EQ(machine_state(m, offered, st), "deferred");
  st["c"] = {0, "m", "c", 1, "apply-failed", "busy", 1};
  EXPECT_EQ(machine_state(m, offered, st), "failed");
}

TEST(FleetSummary, ExposureWindowRunsFromPublicationToTheFirstApply) {
  FleetInput in;
  in.now_unix = 10000;
  in.bundles = {user_bundle("a", 1, "aa", R"([{"id":"CVE-1","severity":"high"}])", 1000),
                user_bundle("a", 2, "aa", R"([{"id":"CVE-2","severity":"low"}])", 2000)};
  in.promotions = {{"a", 1, "stable", 1000}, {"a", 2, "stable", 2000}};
  for (const char* id : {"m1", "m2", "m3"})
    in.machines.push_back({id, "stable", "", "x86_64", "k", "", R"(["aa"])", "{}", 0, 0});
  // m1 applied v1 at 1500, then v2 at 2600; m2 applied v1 at 3000; m3 nothing.
  in.history = {{1, "m1", "a", 1, "applied", "", 1500},
                {2, "m1", "a", 2, "applied", "", 2600},
                {3, "m2", "a", 1, "applied", "", 3000}};
  in.states = {{2, "m1", "a", 2, "applied", "", 2600}, {3, "m2", "a", 1, "applied", "", 3000}};
  json f = fleet_summary(in);
  EXPECT_EQ(f["machines"]["by_state"]["up-to-date"], 1);
  EXPECT_EQ(f["machines"]["by_state"]["pending"], 2);
  ASSERT_EQ(f["cves"].size(), 2u);
  const json& c1 = f["cves"][0];  // CVE-1: fixed since v1
  EXPECT_EQ(c1["id"], "CVE-1");
  EXPECT_EQ(c1["machines_affected"], 3);
  EXPECT_EQ(c1["machines_applied"], 2);
  EXPECT_EQ(c1["exposure_max_s"], 2000);       // m2: 3000 - 1000
  EXPECT_EQ(c1["open_exposure_max_s"], 9000);  // m3: still open since 1000
  const json& c2 = f["cves"][1];               // CVE-2: only v2 fixes it
  EXPECT_EQ(c2["machines_applied"], 1);
  EXPECT_EQ(c2["exposure_max_s"], 600);  // m1: 2600 - 2000
  EXPECT_EQ(f["cves_published"], 2);
  EXPECT_EQ(f["cves_applied_everywhere"], 0);
  ASSERT_EQ(f["rollout"].size(), 2u);
  EXPECT_EQ(f["rollout"][1]["version"], 2);
  EXPECT_EQ(f["rollout"][1]["applied"], 1);
  EXPECT_EQ(f["rollout"][1]["pending"], 2);
}

}  // namespace
}  // namespace nines::server
