// --restart: the plan (never PID 1, never nines' own unit, deny list) and its execution
// against a recorder script, never a real service manager.
#include "advisor/restart.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "fixtures.h"

namespace nines::advisor {
namespace {

using namespace nines::advisor::testing;

Verdict with_units(std::vector<std::string> units) {
  Verdict v;
  v.units = std::move(units);
  return v;
}

TEST(PlanRestarts, RestartsUnitsWithTheConfiguredCommand) {
  RestartPolicy p;
  p.command = {"/bin/recorder", "restart"};
  auto plan = plan_restarts(with_units({"nginx.service"}), p);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].argv, (std::vector<std::string>{"/bin/recorder", "restart", "nginx.service"}));
}

TEST(PlanRestarts, StalePid1IsReexecutedNeverRestarted) {
  RestartPolicy p;
  auto plan = plan_restarts(with_units({"systemd-manager", "init.scope"}), p);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].argv, (std::vector<std::string>{"systemctl", "daemon-reexec"}));
  EXPECT_TRUE(plan[1].argv.empty());
  EXPECT_NE(plan[1].skipped.find("PID 1"), std::string::npos);
}

TEST(PlanRestarts, DenyListAndOwnUnitAreSkipped) {
  RestartPolicy p;
  p.deny = default_deny_list();
  p.deny.push_back("postgres*");
  p.protect = {"nines-agent*.service", "nines-check-test.service"};
  auto plan =
      plan_restarts(with_units({"gdm.service", "getty@tty1.service", "postgresql@15-main.service",
                                "nines-agent.service", "nines-check-test.service", "cron.service"}),
                    p);
  ASSERT_EQ(plan.size(), 6u);
  for (size_t i = 0; i < 5; ++i) EXPECT_TRUE(plan[i].argv.empty()) << plan[i].unit;
  EXPECT_EQ(plan[3].skipped, "nines runs in this unit");
  EXPECT_EQ(plan[0].skipped, "on the deny list");
  EXPECT_FALSE(plan[5].argv.empty());
}

TEST(OwnUnits, AlwaysProtectTheAgent) {
  auto u = own_units();
  ASSERT_FALSE(u.empty());
  EXPECT_EQ(u[0], "nines-agent*.service");
}

TEST(SplitCommand, BlanksSeparateArgumentsAndEmptyIsAnError) {
  auto a = split_command("  systemctl   restart ");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<std::string>{"systemctl", "restart"}));
  auto e = split_command("   ");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("empty command"), std::string::npos);
}

TEST(RunRestarts, RunsTheRecorderAndReportsFailuresPerUnit) {
  TempDir d;
  std::string rec = d / "recorder", log = d / "log";
  write_file(rec, "#!/bin/sh\necho \"$@\" >> '" + log +
                      "'\n[ \"$2\" = broken.service ] && { echo boom; exit 5; }\nexit 0\n");
  chmod(rec.c_str(), 0755);
  RestartPolicy p;
  p.command = {rec, "restart"};
  p.deny = {"gdm.service"};
  auto out =
      run_restarts(plan_restarts(with_units({"a.service", "broken.service", "gdm.service"}), p));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].ok);
  EXPECT_FALSE(out[1].ok);
  EXPECT_NE(out[1].message.find("restart broken.service"), std::string::npos) << out[1].message;
  EXPECT_NE(out[1].message.find("boom"), std::string::npos) << out[1].message;
  EXPECT_FALSE(out[2].ok);
  EXPECT_EQ(read_all(log), "restart a.service\nrestart broken.service\n");
}

}  // namespace
}  // namespace nines::advisor
