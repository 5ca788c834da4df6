// Kernel status (needrestart's KSTA) and reboot-required through fake roots.
#include "advisor/kernel.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "fixtures.h"

namespace nines::advisor {
namespace {

using testing::TempDir;
using testing::write_bzimage;

const RunningKernel kRunning{"6.1.0-28-cloud-amd64",
                             "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)"};
const std::string kRunningString =
    "6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian "
    "6.1.119-1 (2024-11-22)";

struct FakeRoot {
  TempDir dir;
  FakeRoot() { testing::mkdirs(dir / "boot"); }
  Root root() const { return Root(dir.path()); }
};

TEST(BzImageVersion, ReadsTheSetupHeaderString) {
  TempDir d;
  write_bzimage(d / "img", kRunningString);
  std::string head = testing::read_all(d / "img").substr(0, 0x1000);
  EXPECT_EQ(bzimage_version(head), kRunningString);
}

TEST(BzImageVersion, RejectsNonBzImage) {
  EXPECT_FALSE(bzimage_version(std::string(0x1000, 'x')));
  EXPECT_FALSE(bzimage_version("short"));
}

TEST(CompareKernelVersions, NumbersAndReleaseCandidates) {
  EXPECT_LT(compare_kernel_versions("6.1.0-9-amd64", "6.1.0-28-amd64"), 0);
  EXPECT_GT(compare_kernel_versions("6.10.0-1-amd64", "6.9.0-1-amd64"), 0);
  EXPECT_LT(compare_kernel_versions("6.2.0-rc1", "6.2.0"), 0);
  EXPECT_EQ(compare_kernel_versions("6.1.0-28-amd64", "6.1.0-28-amd64"), 0);
}

TEST(CheckKernel, RunningIsNewestIsCurrent) {
  FakeRoot r;
  write_bzimage(r.dir / "boot/vmlinuz-6.1.0-28-cloud-amd64", kRunningString);
  write_bzimage(r.dir / "boot/vmlinuz-6.1.0-27-cloud-amd64",
                "6.1.0-27-cloud-amd64 (x@y) #1 SMP Debian 6.1.115-1 (2024-11-01)");
  KernelFacts k = check_kernel(r.root(), kRunning);
  EXPECT_EQ(k.status, KernelStatus::kCurrent);
  EXPECT_EQ(k.expected_release, "6.1.0-28-cloud-amd64");
}

TEST(CheckKernel, NewerReleaseInstalledIsVersionUpgrade) {
  FakeRoot r;
  write_bzimage(r.dir / "boot/vmlinuz-6.1.0-28-cloud-amd64", kRunningString);
  write_bzimage(r.dir / "boot/vmlinuz-6.1.0-30-cloud-amd64",
                "6.1.0-30-cloud-amd64 (x@y) #1 SMP Debian 6.1.124-1 (2025-01-12)");
  KernelFacts k = check_kernel(r.root(), kRunning);
  EXPECT_EQ(k.status, KernelStatus::kVersionUpgrade);
  EXPECT_EQ(k.expected_release, "6.1.0-30-cloud-amd64");
}

TEST(CheckKernel, SameReleaseRebuiltIsAbiUpgrade) {
  FakeRoot r;
  write_bzimage(r.dir / "boot/vmlinuz-6.1.0-28-cloud-amd64",
                "6.1.0-28-cloud-amd64 (x@y) #1 SMP PREEMPT_DYNAMIC Debian 6.1.120-1 (2024-12-02)");
  KernelFacts k = check_kernel(r.root(), kRunning);
  EXPECT_EQ(k.status, KernelStatus::kAbiUpgrade);
  EXPECT_EQ(k.expected_release, kRunning.release);
}

TEST(CheckKernel, EmptyBootIsUnknownWithANote) {
  FakeRoot r;
  KernelFacts k = check_kernel(r.root(), kRunning);
  EXPECT_EQ(k.status, KernelStatus::kUnknown);
  ASSERT_FALSE(k.notes.empty());
}

TEST(CheckKernel, InitrdAndTinyFilesAreIgnored) {
  FakeRoot r;
  write_bzimage(r.dir / "boot/vmlinuz-6.1.0-28-cloud-amd64", kRunningString);
  write_bzimage(r.dir / "boot/initrd.img-6.1.0-99-cloud-amd64", "6.1.0-99-cloud-amd64 x");
  testing::write_file(r.dir / "boot/vmlinuz-6.1.0-98-cloud-amd64", "tiny");
  KernelFacts k = check_kernel(r.root(), kRunning);
  EXPECT_EQ(k.status, KernelStatus::kCurrent);
}

TEST(CheckKernel, NonBzImageFallsBackToTheFileName) {
  FakeRoot r;
  testing::write_file(r.dir / "boot/vmlinuz-6.1.0-31-cloud-amd64", std::string(1100000, 'z'));
  KernelFacts k = check_kernel(r.root(), kRunning);
  EXPECT_EQ(k.status, KernelStatus::kVersionUpgrade);
  EXPECT_EQ(k.expected_release, "6.1.0-31-cloud-amd64");
}

TEST(RebootRequired, AbsentMeansNotPresent) {
  TempDir d;
  auto r = check_reboot_required(Root(d.path()));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->present);
}

TEST(RebootRequired, ReadsThePackageListThroughAnAbsoluteVarRunLink) {
  TempDir d;
  testing::mkdirs(d / "run");
  testing::mkdirs(d / "var");
  ASSERT_EQ(symlink("/run", (d / "var/run").c_str()), 0);  // as on Debian: /var/run -> /run
  testing::write_file(d / "run/reboot-required", "*** System restart required ***\n");
  testing::write_file(d / "run/reboot-required.pkgs",
                      "libssl3\nlinux-image-6.1.0-30-amd64\nlibssl3\n");
  auto r = check_reboot_required(Root(d.path()));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->present);
  EXPECT_EQ(r->packages, (std::vector<std::string>{"libssl3", "linux-image-6.1.0-30-amd64"}));
}

TEST(RootPath, StaysInsideTheRoot) {
  TempDir d;
  testing::mkdirs(d / "etc");
  ASSERT_EQ(symlink("../../../../../../etc", (d / "up").c_str()), 0);
  EXPECT_EQ(Root(d.path()).path("/up/x"), d.path() + "/etc/x");
  EXPECT_EQ(Root("/").path("/boot"), "/boot");
}

}  // namespace
}  // namespace nines::advisor
