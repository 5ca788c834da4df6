// GRUB packages changed since boot, through a fake dpkg database.
#include "advisor/bootloader.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include "core/clock.h"
#include "fixtures.h"

namespace nines::advisor {
namespace {

using namespace nines::advisor::testing;

const char* kStatus =
    "Package: grub-pc\nStatus: install ok installed\nArchitecture: amd64\nVersion: "
    "2.06-13+deb12u1\n"
    "Description: GRand Unified Bootloader\n multi-line\n\n"
    "Package: grub-common\nStatus: install ok installed\nArchitecture: amd64\nVersion: "
    "2.06-13+deb12u1\n\n"
    "Package: grub-efi-amd64\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: "
    "2.06-13\n\n"
    "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.15-1\n";

void touch(const std::string& path, int64_t when) {
  write_file(path, "/.\n");
  struct utimbuf t {
    static_cast<time_t>(when), static_cast<time_t>(when)
  };
  utime(path.c_str(), &t);
}

// Reads the dpkg database once, as gather_facts does, then checks the bootloader.
Result<BootloaderFacts> check_at(const std::string& dir, int64_t boot) {
  Root root(dir);
  DpkgStatus status = NINES_TRY(read_dpkg_status(root));
  return check_bootloader(root, status, boot);
}

TEST(DpkgStatus, OnlyInstalledPackages) {
  auto pkgs = parse_dpkg_status(kStatus);
  ASSERT_EQ(pkgs.size(), 3u);
  EXPECT_EQ(pkgs[0].name, "grub-pc");
  EXPECT_EQ(pkgs[0].version, "2.06-13+deb12u1");
  EXPECT_EQ(pkgs[2].name, "openssl");
}

TEST(CheckBootloader, GrubUpgradedAfterBootIsReported) {
  TempDir d;
  mkdirs(d / "var/lib/dpkg/info");
  write_file(d / "var/lib/dpkg/status", kStatus);
  int64_t boot = unix_now() - 3600;
  touch(d / "var/lib/dpkg/info/grub-pc.list", boot + 60);            // upgraded after boot
  touch(d / "var/lib/dpkg/info/grub-common:amd64.list", boot - 60);  // before boot
  touch(d / "var/lib/dpkg/info/openssl:amd64.list", boot + 60);      // not a bootloader
  auto f = check_at(d.path(), boot);
  ASSERT_TRUE(f.ok()) << f.error().message;
  ASSERT_EQ(f->upgraded.size(), 1u);
  EXPECT_EQ(f->upgraded[0].package, "grub-pc");
  EXPECT_EQ(f->upgraded[0].changed_unix, boot + 60);
}

TEST(CheckBootloader, NothingChangedSinceBoot) {
  TempDir d;
  mkdirs(d / "var/lib/dpkg/info");
  write_file(d / "var/lib/dpkg/status", kStatus);
  int64_t boot = unix_now() - 60;
  touch(d / "var/lib/dpkg/info/grub-pc.list", boot - 86400);
  touch(d / "var/lib/dpkg/info/grub-common.list", boot - 86400);
  auto f = check_at(d.path(), boot);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->upgraded.empty());
}

TEST(CheckBootloader, NoDpkgIsANoteNotAnError) {
  TempDir d;
  auto f = check_at(d.path(), 0);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->notes.empty());
}

TEST(CheckBootloader, UnreadableStatusIsAnErrorNamingTheFile) {
  TempDir d;
  mkdirs(d / "var/lib/dpkg/status");  // a folder where the file should be
  auto f = check_at(d.path(), 0);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("var/lib/dpkg/status"), std::string::npos) << f.error().message;
}

TEST(BootTime, IsInThePast) {
  auto b = boot_time_unix();
  ASSERT_TRUE(b.ok());
  EXPECT_LE(*b, unix_now());
  EXPECT_GT(*b, 1000000000);
}

}  // namespace
}  // namespace nines::advisor
