// The CVE states (exposure.h) as a table: installed packages, tracker entries, stale
// processes with the versions dpkg.log says they run, live patches naming CVEs, the
// running kernel's version. Versions are compared by the real libapt-pkg.
#include "advisor/exposure.h"

#include <gtest/gtest.h>

namespace nines::advisor {
namespace {

TrackerEntry fixed(const std::string& cve, const std::string& version,
                   const std::string& urgency = "medium") {
  return TrackerEntry{cve, TrackerStatus::kResolved, version, urgency};
}
TrackerEntry no_fix(const std::string& cve) {
  return TrackerEntry{cve, TrackerStatus::kOpen, "", "unimportant"};
}
DpkgPackage pkg(const std::string& name, const std::string& source, const std::string& version) {
  return DpkgPackage{name, "amd64", version, source, version};
}

class ExposureTable : public ::testing::Test {
 protected:
  void SetUp() override {
    auto v = DpkgVersions::load();
    ASSERT_TRUE(v.ok()) << v.error().message;
    versions_.emplace(*v);
    packages_ = {pkg("libfoo1", "foo", "1.3-1"),
                 pkg("libbar1", "bar", "2.0-1"),
                 pkg("libc6", "glibc", "2.36-9+deb12u9"),
                 pkg("grub-pc", "grub2", "2.06-13+deb12u1"),
                 pkg("linux-image-6.1.0-28-cloud-amd64", "linux", "6.1.119-1"),
                 pkg("linux-libc-dev", "linux", "6.1.119-1")};
    tracker_.release = "bookworm";
    tracker_.by_source["foo"] = {
        fixed("CVE-2026-1", "1.1-1"),                 // fixed before the replaced 1.2-1
        fixed("CVE-2026-2", "1.3-1", "low"),          // fixed by the upgrade 1.2-1 -> 1.3-1
        fixed("CVE-2026-3", "1.4-1"),                 // not installed yet
        no_fix("CVE-2026-4"),                           // no fix
        fixed("CVE-2026-5", "0"),                     // never affected
        TrackerEntry{"CVE-2026-6", TrackerStatus::kOther, "", "low"}};
    tracker_.by_source["bar"] = {fixed("CVE-2026-7", "2.0-1"), fixed("CVE-2026-8", "2.0-1")};
    tracker_.by_source["glibc"] = {fixed("CVE-2026-9", "2.36-9+deb12u9")};
    tracker_.by_source["grub2"] = {fixed("CVE-2026-10", "2.06-13+deb12u1")};
    tracker_.by_source["linux"] = {
        fixed("CVE-2026-20", "6.1.76-1"),              // the running kernel has it
        fixed("CVE-2026-21", "6.1.119-1", "high"),     // installed, live-patched
        fixed("CVE-2026-22", "6.1.119-1", "medium"),   // installed, not live-patched
        fixed("CVE-2026-23", "6.1.120-1", "high"),     // not installed
        no_fix("CVE-2026-24")};
    in_.packages = &packages_;
    in_.tracker = &tracker_;
    in_.running_kernel_version = "6.1.76-1";
    in_.stale = {
        StaleUse{100, "foo.service", "libfoo1", "1.2-1", false, "", 0},
        StaleUse{102, "new.service", "libfoo1", "1.3-1", false, "", 0},  // started after? runs 1.3
        StaleUse{103, "bar.service", "libbar1", "1.9-1", false, "bar-fix", 2},
        StaleUse{104, "app.service", "libc6", "2.36-9+deb12u8", true, "", 0}};
    in_.boot_versions["grub-pc"] = "2.06-13";
    in_.signed_cves.by_patch[{"bar-fix", 2}] = {"CVE-2026-7"};
    in_.signed_cves.by_patch[{"kfix", 3}] = {"CVE-2026-21"};
    in_.kernel_livepatch_cves["CVE-2026-21"] = {"kfix"};
  }

  const CveExposure* find(const ExposureResult& r, const std::string& id,
                          const std::string& package) {
    for (const CveExposure& x : r.cves)
      if (x.id == id && x.package == package) return &x;
    return nullptr;
  }

  std::optional<DpkgVersions> versions_;
  std::vector<DpkgPackage> packages_;
  TrackerData tracker_;
  ExposureInput in_;
};

TEST_F(ExposureTable, EveryState) {
  ExposureResult r = assess_exposure(in_, *versions_);
  // Fixed at or before the version the processes run: not live, not listed.
  EXPECT_EQ(find(r, "CVE-2026-1", "libfoo1"), nullptr);
  EXPECT_EQ(find(r, "CVE-2026-5", "libfoo1"), nullptr);
  EXPECT_EQ(find(r, "CVE-2026-6", "libfoo1"), nullptr);
  // Fixed by the upgrade: the processes that still run 1.2-1 (or an unlogged version).
  const CveExposure* x = find(r, "CVE-2026-2", "libfoo1");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->state, CveState::kRestartNeeded);
  EXPECT_EQ(x->severity, "low");
  EXPECT_EQ(x->fixed_version, "1.3-1");
  ASSERT_EQ(x->processes.size(), 1u);  // pid 102 runs 1.3-1: not exposed
  EXPECT_EQ(x->processes[0].pid, 100);
  EXPECT_EQ(x->processes[0].unit, "foo.service");
  EXPECT_EQ(x->processes[0].runs_version, "1.2-1");
  x = find(r, "CVE-2026-3", "libfoo1");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->state, CveState::kFixNotInstalled);
  EXPECT_TRUE(x->processes.empty());
  x = find(r, "CVE-2026-4", "libfoo1");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->state, CveState::kUnfixed);
  EXPECT_EQ(x->severity, "negligible");
  // A live patch applied over the old code names CVE-2026-7, not CVE-2026-8.
  x = find(r, "CVE-2026-7", "libbar1");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->state, CveState::kLivepatched);
  EXPECT_EQ(x->livepatches, std::vector<std::string>{"bar-fix"});
  ASSERT_EQ(x->processes.size(), 1u);
  EXPECT_EQ(x->processes[0].pid, 103);
  EXPECT_EQ(find(r, "CVE-2026-8", "libbar1")->state, CveState::kRestartNeeded);
  // The C library: a reboot, with its processes.
  x = find(r, "CVE-2026-9", "libc6");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->state, CveState::kRebootNeeded);
  EXPECT_EQ(x->processes.at(0).pid, 104);
  // The bootloader upgraded since boot from a version without the fix.
  EXPECT_EQ(find(r, "CVE-2026-10", "grub-pc")->state, CveState::kRebootNeeded);
}

TEST_F(ExposureTable, AVersionTheLogDoesNotGiveCountsAsLackingEveryFix) {
  in_.stale.push_back(StaleUse{101, "", "libfoo1", std::nullopt, false, "", 0});
  ExposureResult r = assess_exposure(in_, *versions_);
  const CveExposure* x = find(r, "CVE-2026-1", "libfoo1");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->state, CveState::kRestartNeeded);
  ASSERT_EQ(x->processes.size(), 1u);
  EXPECT_EQ(x->processes[0].pid, 101);
  EXPECT_EQ(x->processes[0].runs_version, "");
  EXPECT_EQ(find(r, "CVE-2026-2", "libfoo1")->processes.size(), 2u);
  EXPECT_EQ(find(r, "CVE-2026-5", "libfoo1"), nullptr);  // "0": never affected
}

TEST_F(ExposureTable, KernelFromTheRunningVersion) {
  ExposureResult r = assess_exposure(in_, *versions_);
  EXPECT_EQ(find(r, "CVE-2026-20", "linux"), nullptr);  // the running kernel has the fix
  const CveExposure* x = find(r, "CVE-2026-21", "linux");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->state, CveState::kLivepatched);
  EXPECT_EQ(x->livepatches, std::vector<std::string>{"kfix"});
  EXPECT_EQ(x->installed_version, "6.1.76-1");
  EXPECT_EQ(find(r, "CVE-2026-22", "linux")->state, CveState::kRebootNeeded);
  EXPECT_EQ(find(r, "CVE-2026-23", "linux")->state, CveState::kFixNotInstalled);
  EXPECT_EQ(find(r, "CVE-2026-24", "linux")->state, CveState::kUnfixed);
  // Kernel sources are assessed once, for the running kernel, not per binary package.
  for (const CveExposure& c : r.cves) EXPECT_NE(c.package, "linux-libc-dev");
  // The fixes the installed kernel carries: the reboot verdict's input.
  ASSERT_EQ(r.kernel_fixes.size(), 2u);
  EXPECT_EQ(r.kernel_fixes[0].id, "CVE-2026-21");
  EXPECT_TRUE(r.kernel_fixes[0].covered);
  EXPECT_EQ(r.kernel_fixes[0].severity, "high");
  EXPECT_EQ(r.kernel_fixes[1].id, "CVE-2026-22");
  EXPECT_FALSE(r.kernel_fixes[1].covered);
}

TEST_F(ExposureTable, SignedBundleRatingWinsOverTheTrackersUrgency) {
  in_.signed_cves.severity["CVE-2026-22"] = "critical";
  ExposureResult r = assess_exposure(in_, *versions_);
  EXPECT_EQ(find(r, "CVE-2026-22", "linux")->severity, "critical");
  EXPECT_EQ(r.kernel_fixes[1].severity, "critical");
}

TEST_F(ExposureTable, UnknownRunningKernelSkipsTheKernel) {
  in_.running_kernel_version.clear();
  ExposureResult r = assess_exposure(in_, *versions_);
  for (const CveExposure& c : r.cves) EXPECT_NE(c.package, "linux");
  EXPECT_TRUE(r.kernel_fixes.empty());
}

TEST_F(ExposureTable, CountsDistinctIdsByStateAndSeverity) {
  ExposureResult r = assess_exposure(in_, *versions_);
  auto counts = exposure_counts(r.cves);
  EXPECT_EQ((counts[{CveState::kRestartNeeded, "medium"}]), 1u);  // CVE-2026-8
  EXPECT_EQ((counts[{CveState::kRestartNeeded, "low"}]), 1u);     // CVE-2026-2
  EXPECT_EQ((counts[{CveState::kRebootNeeded, "medium"}]), 3u);   // -9, -10, -22
  EXPECT_EQ((counts[{CveState::kLivepatched, "high"}]), 1u);
}

TEST(DebianKernelVersion, FromUnameV) {
  EXPECT_EQ(debian_kernel_version("#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)"),
            "6.1.119-1");
  EXPECT_EQ(debian_kernel_version("#1 SMP Debian 4.19.208-1 (2021-09-29)"), "4.19.208-1");
  EXPECT_EQ(debian_kernel_version("#1 SMP PREEMPT_DYNAMIC Debian 6.12.6-1~bpo12+1 (2024-12-26)"),
            "6.12.6-1~bpo12+1");
  EXPECT_EQ(debian_kernel_version("#58-Ubuntu SMP PREEMPT_DYNAMIC Thu Oct 10 2024"), std::nullopt);
  EXPECT_EQ(debian_kernel_version(""), std::nullopt);
}

}  // namespace
}  // namespace nines::advisor
