// dpkg's records through a root folder (dpkg.h), and Debian version order through
// libapt-pkg loaded on demand (dpkg_version.h).
#include "advisor/dpkg.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <ctime>

#include "advisor/dpkg_version.h"
#include "test_util.h"

namespace nines::advisor {
namespace {

using testing::mkdirs;
using testing::TempDir;
using testing::write_file;

TEST(DpkgStatusSource, SourceFieldWithAndWithoutVersion) {
  auto pkgs = parse_dpkg_status(
      "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n"
      "Source: openssl\nVersion: 3.0.15-1~deb12u1\n\n"
      "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n"
      "Source: glibc (2.36-9+deb12u9)\nVersion: 2.36-9+deb12u9+b1\n\n"
      "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\n"
      "Version: 3.0.15-1~deb12u1\n");
  ASSERT_EQ(pkgs.size(), 3u);
  EXPECT_EQ(pkgs[0].source, "openssl");
  EXPECT_EQ(pkgs[0].source_version, "3.0.15-1~deb12u1");
  EXPECT_EQ(pkgs[1].source, "glibc");
  EXPECT_EQ(pkgs[1].source_version, "2.36-9+deb12u9");
  EXPECT_EQ(pkgs[1].version, "2.36-9+deb12u9+b1");
  EXPECT_EQ(pkgs[2].source, "openssl");  // no Source: its own name
}

TEST(DpkgPaths, MergedUsrAliases) {
  EXPECT_EQ(merged_usr_path("/lib/x86_64-linux-gnu/libc.so.6"), "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(merged_usr_path("/usr/lib/x86_64-linux-gnu/libc.so.6"), "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(merged_usr_path("/bin/bash"), "/usr/bin/bash");
  EXPECT_EQ(merged_usr_path("/opt/x/lib/a.so"), "/opt/x/lib/a.so");
}

TEST(DpkgLists, OwnersFromFileListsOfCandidatesOnly) {
  TempDir t;
  mkdirs(t / "var/lib/dpkg/info");
  write_file(t / "var/lib/dpkg/info/libssl3:amd64.list",
             "/.\n/usr\n/usr/lib/x86_64-linux-gnu/libssl.so.3\n/usr/lib/x86_64-linux-gnu/libcrypto.so.3\n");
  write_file(t / "var/lib/dpkg/info/libc6:amd64.list", "/.\n/lib/x86_64-linux-gnu/libc.so.6\n");
  write_file(t / "var/lib/dpkg/info/other.list", "/opt/other.so\n");
  DpkgPackage ssl{"libssl3", "amd64", "3", "openssl", "3"}, libc{"libc6", "amd64", "2", "glibc", "2"},
      other{"other", "all", "1", "other", "1"};
  auto owners = package_owners(Root(t.path()), {&ssl, &libc},
                               {"/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
                                "/usr/lib/x86_64-linux-gnu/libc.so.6", "/opt/other.so"});
  EXPECT_EQ(owners.size(), 2u);
  EXPECT_EQ(owners["/usr/lib/x86_64-linux-gnu/libcrypto.so.3"], "libssl3");
  EXPECT_EQ(owners["/usr/lib/x86_64-linux-gnu/libc.so.6"], "libc6");  // listed as /lib/...
  EXPECT_EQ(owners.count("/opt/other.so"), 0u);                        // not a candidate
}

std::string log_time(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  localtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

TEST(DpkgLog, UpgradesOfWantedPackages) {
  auto ups = parse_dpkg_log(
      "2026-11-30 10:00:01 startup archives unpack\n"
      "2026-11-30 10:00:02 upgrade libssl3:amd64 3.0.14-1~deb12u2 3.0.15-1~deb12u1\n"
      "2026-11-30 10:00:02 status half-configured libssl3:amd64 3.0.15-1~deb12u1\n"
      "2026-11-30 10:00:03 install newpkg:amd64 <none> 1.0\n"
      "2026-11-30 10:00:04 upgrade libc6:amd64 2.36-9+deb12u8 2.36-9+deb12u9\n"
      "garbage line\n",
      {"libssl3", "newpkg"});
  ASSERT_EQ(ups.size(), 1u);
  EXPECT_EQ(ups[0].package, "libssl3");
  EXPECT_EQ(ups[0].old_version, "3.0.14-1~deb12u2");
  EXPECT_EQ(ups[0].new_version, "3.0.15-1~deb12u1");
}

TEST(DpkgLog, RotationsIncludingGzipAreReadInTimeOrder) {
  TempDir t;
  mkdirs(t / "var/log");
  int64_t now = ::time(nullptr);
  write_file(t / "var/log/dpkg.log",
             log_time(now - 100) + " upgrade libfoo1:amd64 1.2-1 1.3-1\n");
  write_file(t / "var/log/dpkg.log.1",
             log_time(now - 86400) + " upgrade libfoo1:amd64 1.1-1 1.2-1\n");
  std::string gz = t / "var/log/dpkg.log.2.gz";
  gzFile f = gzopen(gz.c_str(), "wb");
  std::string old = log_time(now - 10 * 86400) + " upgrade libfoo1:amd64 1.0-1 1.1-1\n";
  gzwrite(f, old.data(), static_cast<unsigned>(old.size()));
  gzclose(f);
  auto log = read_dpkg_log(Root(t.path()), {"libfoo1"});
  ASSERT_TRUE(log.ok()) << log.error().message;
  ASSERT_EQ(log->size(), 3u);
  EXPECT_EQ((*log)[0].old_version, "1.0-1");
  EXPECT_EQ((*log)[2].old_version, "1.2-1");
  // A process started between the second and third upgrade runs 1.2-1; one started
  // before all of them runs 1.0-1; one started after all of them is not in the log.
  EXPECT_EQ(version_replaced_since(*log, "libfoo1", now - 1000), "1.2-1");
  EXPECT_EQ(version_replaced_since(*log, "libfoo1", now - 20 * 86400), "1.0-1");
  EXPECT_EQ(version_replaced_since(*log, "libfoo1", now), std::nullopt);
  // An upgrade logged in the very second the process started counts (whole seconds).
  EXPECT_EQ(version_replaced_since(*log, "libfoo1", now - 100), "1.2-1");
}

TEST(DpkgLog, CorruptGzipIsAnErrorNamingTheFile) {
  TempDir t;
  mkdirs(t / "var/log");
  write_file(t / "var/log/dpkg.log.3.gz", std::string("\x1f\x8b\x08\x00garbage", 12));
  auto log = read_dpkg_log(Root(t.path()), {"x"});
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.error().message.find("dpkg.log.3.gz"), std::string::npos) << log.error().message;
}

TEST(DpkgVersionOrder, ComparesAsDpkgDoes) {
  auto v = DpkgVersions::load();
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_LT(v->compare("1.0~rc1", "1.0"), 0);          // tilde sorts first
  EXPECT_LT(v->compare("1.0", "1.0+deb12u1"), 0);
  EXPECT_GT(v->compare("1:0.9", "2.0"), 0);            // epoch
  EXPECT_EQ(v->compare("1.0-1", "1.0-1"), 0);
  EXPECT_EQ(v->compare("0:1.0-1", "1.0-1"), 0);
  EXPECT_LT(v->compare("3.0.14-1~deb12u2", "3.0.15-1~deb12u1"), 0);
  EXPECT_LT(v->compare("2.36-9+deb12u3", "2.36-9+deb12u10"), 0);  // numbers, not text
  EXPECT_LT(v->compare("6.1.76-1", "6.1.119-1"), 0);
  EXPECT_GT(v->compare("5.6.1+really5.4.5-1", "5.6.1"), 0);
  EXPECT_LT(v->compare("1.0a", "1.0+"), 0);            // letters before other characters
  EXPECT_LT(v->compare("0", "0.1"), 0);
}

TEST(DpkgVersionOrder, MissingLibraryIsAClearError) {
  auto v = DpkgVersions::load("libapt-pkg-does-not-exist.so.0");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("libapt-pkg-does-not-exist.so.0"), std::string::npos);
  EXPECT_NE(v.error().message.find("libapt-pkg6.0"), std::string::npos) << v.error().message;
}

}  // namespace
}  // namespace nines::advisor
