// Unit tests of the agent's policy, configuration, state journal and status rendering.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/policy.h"
#include "agent/state.h"
#include "core/fd.h"

namespace nines::agent {
namespace {

std::string temp_dir() {
  char t[] = "/tmp/nines-agent-unit-XXXXXX";
  return mkdtemp(t);
}

TEST(Policy, PatchBelowTheSeverityThresholdIsDeferredWithTheReason) {
  Policy p;  // default threshold: high
  Decision d = decide(p, "medium", 1000, 2000);
  EXPECT_FALSE(d.apply);
  EXPECT_EQ(d.reason, "below the severity threshold (medium < high)");
  EXPECT_TRUE(decide(p, "critical", 1000, 2000).apply);
  EXPECT_TRUE(decide(p, "high", 1000, 2000).apply);
}

TEST(Policy, PatchWithoutCvesCountsAsNegligible) {
  Policy p;
  ASSERT_TRUE(set_policy_key(p, "severity", "low"));
  EXPECT_FALSE(decide(p, "", 0, 10).apply);
  ASSERT_TRUE(set_policy_key(p, "severity", "negligible"));
  EXPECT_TRUE(decide(p, "", 0, 10).apply);
}

TEST(Policy, CutoffDateHoldsBackLaterPatchesAndIncludesTheWholeDay) {
  Policy p;
  ASSERT_TRUE(set_policy_key(p, "cutoff-date", "2026-11-01"));
  int64_t day_end = *p.cutoff_unix;
  EXPECT_TRUE(decide(p, "high", day_end, day_end + 100).apply);
  Decision d = decide(p, "high", day_end + 1, day_end + 100);
  EXPECT_FALSE(d.apply);
  EXPECT_NE(d.reason.find("held back by the cut-off date"), std::string::npos) << d.reason;
  ASSERT_TRUE(set_policy_key(p, "cutoff-date", "none"));
  EXPECT_TRUE(decide(p, "high", day_end + 1, day_end + 100).apply);
}

TEST(Policy, DelayDefersUntilPublishedPlusDelay) {
  Policy p;
  ASSERT_TRUE(set_policy_key(p, "patch-delay", "2h"));
  Decision d = decide(p, "critical", 1000, 1000 + 3600);
  EXPECT_FALSE(d.apply);
  EXPECT_EQ(d.until_unix, 1000 + 7200);
  EXPECT_NE(d.reason.find("waiting for the patch delay until 1970-01-01T02:16:40Z"),
            std::string::npos)
      << d.reason;
  EXPECT_TRUE(decide(p, "critical", 1000, 1000 + 7200).apply);
}

TEST(Policy, NoApplyModeDefersEverything) {
  Policy p;
  ASSERT_TRUE(set_policy_key(p, "mode", "no-apply"));
  Decision d = decide(p, "critical", 0, 10);
  EXPECT_FALSE(d.apply);
  EXPECT_EQ(d.reason, "policy: mode is no-apply");
}

TEST(Config, BadValuesAreRefusedNamingKeyAndValue) {
  Policy p;
  auto st = set_policy_key(p, "severity", "urgent");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("severity: 'urgent' is not one of"), std::string::npos);
  EXPECT_FALSE(set_policy_key(p, "mode", "sometimes"));
  EXPECT_FALSE(set_policy_key(p, "check-interval", "soon"));
  EXPECT_FALSE(set_policy_key(p, "cutoff-date", "yesterday"));
  EXPECT_FALSE(set_policy_key(p, "remote-server", "ftp://x"));
  EXPECT_FALSE(set_policy_key(p, "metrics-listen", "0.0.0.0:9100"));
  auto unknown = set_policy_key(p, "colour", "blue");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown key 'colour'"), std::string::npos);
}

TEST(Config, DurationsParseWithUnits) {
  EXPECT_EQ(*parse_duration("90"), 90);
  EXPECT_EQ(*parse_duration("15m"), 900);
  EXPECT_EQ(*parse_duration("2h"), 7200);
  EXPECT_EQ(*parse_duration("1d"), 86400);
  EXPECT_FALSE(parse_duration("m"));
  EXPECT_EQ(format_duration(3600), "1h");
  EXPECT_EQ(format_duration(90), "90s");
}

TEST(Config, SavedPolicyLoadsBackAndDefaultsAreImplicit) {
  std::string dir = temp_dir();
  std::string file = dir + "/etc/nines/config.toml";
  auto missing = load_policy(file);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->check_interval_s, 3600);
  EXPECT_EQ(missing->severity, "high");
  Policy p;
  ASSERT_TRUE(set_policy_key(p, "check-interval", "30m"));
  ASSERT_TRUE(set_policy_key(p, "cutoff-date", "2026-10-01"));
  ASSERT_TRUE(set_policy_key(p, "remote-server", "http://127.0.0.1:9090"));
  ASSERT_TRUE(save_policy(file, p));
  auto text = read_file(file);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->find("severity"), std::string::npos) << "defaults are not written";
  auto back = load_policy(file);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->check_interval_s, 1800);
  EXPECT_EQ(back->cutoff_text, "2026-10-01");
  EXPECT_EQ(back->remote_server, "http://127.0.0.1:9090");
  std::filesystem::remove_all(dir);
}

TEST(Config, FileWithUnknownKeyOrNonAsciiIsRefusedNamingTheFile) {
  std::string dir = temp_dir();
  ASSERT_TRUE(write_file_atomic(dir + "/a.toml", "colour = \"blue\"\n"));
  auto a = load_policy(dir + "/a.toml");
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find(dir + "/a.toml"), std::string::npos);
  ASSERT_TRUE(write_file_atomic(dir + "/b.toml", "tier = \"caf\xc3\xa9\"\n"));
  EXPECT_FALSE(load_policy(dir + "/b.toml"));
  std::filesystem::remove_all(dir);
}

TEST(Config, PathsFollowTheRoot) {
  Paths p = Paths::make("/tmp/x/");
  EXPECT_EQ(p.config_file, "/tmp/x/etc/nines/config.toml");
  EXPECT_EQ(p.state_db(), "/tmp/x/var/lib/nines/state.db");
  EXPECT_EQ(p.socket_path, "/tmp/x/run/nines/agent.sock");
}

TEST(State, RowsAndKeysSurviveReopening) {
  std::string dir = temp_dir();
  {
    auto db = StateDb::open(dir + "/s/state.db");
    ASSERT_TRUE(db) << db.error().message;
    PatchRow r;
    r.id = "fix-a";
    r.version = 2;
    r.kind = "userspace";
    r.state = "applying";
    ASSERT_TRUE(db->upsert(r));
    ASSERT_TRUE(db->put("enabled", "1"));
  }
  auto db = StateDb::open(dir + "/s/state.db");
  ASSERT_TRUE(db);
  auto row = db->patch("fix-a", 2);
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->state, "applying");
  EXPECT_GT((*row)->updated_unix, 0);
  EXPECT_EQ(**db->get("enabled"), "1");
  EXPECT_FALSE(*db->get("missing"));
  std::filesystem::remove_all(dir);
}

TEST(Control, NoAgentRunningIsAnErrorNamingTheSocket) {
  std::string dir = temp_dir();
  Paths p = Paths::make(dir);
  auto r = request(p, "status", 1);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("agent socket " + dir + "/run/nines/agent.sock: connect"),
            std::string::npos)
      << r.error().message;
  auto saved = saved_status(p);
  ASSERT_FALSE(saved);
  EXPECT_NE(saved.error().message.find("no agent state at " + dir + "/var/lib/nines/state.db"),
            std::string::npos)
      << saved.error().message;
  std::filesystem::remove_all(dir);
}

TEST(StatusFormat, YamlAndHumaneCarryTheFixesAndTheirReasons) {
  nlohmann::json s = {
      {"agent", {{"running", true}, {"pid", 7}}},
      {"server", "http://127.0.0.1:1"},
      {"last_check", "2026-11-29T18:00:00Z"},
      {"next_check", nullptr},
      {"kernel", {{"release", "6.1.0"}, {"livepatch", false}, {"livepatch_reason", "absent"}}},
      {"targets",
       {{{"name", "libfoo.so"},
         {"build_id", "abcdef"},
         {"patch", "fix-a"},
         {"version", 1},
         {"patched", {1, 2}},
         {"not_patched", {{{"pid", 3}, {"reason", "apply failed: x"}}}}}}},
      {"fixes",
       {{{"cve", "CVE-1"},
         {"severity", "medium"},
         {"patch", "fix-a"},
         {"version", 1},
         {"state", "deferred"},
         {"reason", "below the severity threshold (medium < high)"}}}}};
  std::string h = format_status(s, "humane", true);
  EXPECT_NE(h.find("CVE-1"), std::string::npos);
  EXPECT_NE(h.find("not applied: below the severity threshold"), std::string::npos) << h;
  EXPECT_NE(h.find("patched:     1, 2"), std::string::npos) << h;
  EXPECT_NE(h.find("pid 3: apply failed: x"), std::string::npos) << h;
  std::string y = format_status(s, "yaml", false);
  EXPECT_NE(y.find("next_check: null"), std::string::npos) << y;
  EXPECT_NE(y.find("  - cve: \"CVE-1\""), std::string::npos) << y;
  EXPECT_EQ(nlohmann::json::parse(format_status(s, "json", false)), s);
}

}  // namespace
}  // namespace nines::agent
