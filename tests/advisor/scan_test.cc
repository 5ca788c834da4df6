// Stale-code detection against real processes that the test starts (advisor_holder).
#include "advisor/scan.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include "test_util.h"

namespace nines::advisor {
namespace {

using testing::Holder;
using testing::TempDir;

TEST(ParseMapsLine, KeepsSpacesAndTheDeletedSuffixInThePath) {
  auto m = parse_maps_line(
      "7f9b5f64e000-7f9b5f7a4000 r-xp 00026000 fe:00 332835                     "
      "/tmp/with space/lib a.so (deleted)");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->start, 0x7f9b5f64e000u);
  EXPECT_EQ(m->end, 0x7f9b5f7a4000u);
  EXPECT_EQ(m->perms[2], 'x');
  EXPECT_EQ(m->offset, 0x26000u);
  EXPECT_EQ(m->dev_major, 0xfeu);
  EXPECT_EQ(m->dev_minor, 0u);
  EXPECT_EQ(m->inode, 332835u);
  EXPECT_EQ(m->path, "/tmp/with space/lib a.so (deleted)");
}

TEST(ParseMapsLine, AnonymousMappingHasNoPath) {
  auto m = parse_maps_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0 ");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->path.empty());
  EXPECT_EQ(m->inode, 0u);
}

TEST(ParseMapsLine, RejectsGarbage) {
  EXPECT_FALSE(parse_maps_line("not a maps line"));
  EXPECT_FALSE(parse_maps_line("1000-2000 r-xp zz 00:00 1 /x"));
}

TEST(OwnerFromCgroup, SystemServiceFromCgroupV2) {
  Owner o = owner_from_cgroup("0::/system.slice/nginx.service\n");
  EXPECT_EQ(o.kind, OwnerKind::kUnit);
  EXPECT_EQ(o.name, "nginx.service");
}

TEST(OwnerFromCgroup, ServiceWithSubCgroupsIsTheService) {
  Owner o = owner_from_cgroup("0::/system.slice/containerd.service/worker\n");
  EXPECT_EQ(o.kind, OwnerKind::kUnit);
  EXPECT_EQ(o.name, "containerd.service");
}

TEST(OwnerFromCgroup, HybridModePrefersTheSpecificHierarchy) {
  Owner o = owner_from_cgroup("9:name=systemd:/system.slice/ssh.service\n1:cpu:/\n0::/\n");
  EXPECT_EQ(o.kind, OwnerKind::kUnit);
  EXPECT_EQ(o.name, "ssh.service");
}

TEST(OwnerFromCgroup, UserSessionAndUserManager) {
  Owner s = owner_from_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n");
  EXPECT_EQ(s.kind, OwnerKind::kSession);
  EXPECT_EQ(s.name, "session-3");
  EXPECT_EQ(s.uid, 1000);
  Owner m = owner_from_cgroup(
      "0::/user.slice/user-1000.slice/user@1000.service/app.slice/pipewire.service\n");
  EXPECT_EQ(m.kind, OwnerKind::kUserManager);
  EXPECT_EQ(m.uid, 1000);
}

TEST(OwnerFromCgroup, Containers) {
  EXPECT_EQ(owner_from_cgroup("0::/system.slice/docker-0123456789abcdef0123.scope\n").name,
            "docker:0123456789ab");
  EXPECT_EQ(owner_from_cgroup("0::/machine.slice/libpod-fedcba9876543210.scope/container\n").name,
            "podman:fedcba987654");
  EXPECT_EQ(owner_from_cgroup("0::/lxc.payload.web1/system.slice/nginx.service\n").name,
            "lxc:web1");
  EXPECT_EQ(owner_from_cgroup("0::/machine.slice/machine-vm1.scope\n").name, "machine:vm1");
  EXPECT_EQ(owner_from_cgroup("4:name=systemd:/docker/abcdef0123456789\n").kind,
            OwnerKind::kContainer);
}

TEST(OwnerFromCgroup, NothingKnownIsNone) {
  EXPECT_EQ(owner_from_cgroup("0::/\n").kind, OwnerKind::kNone);
  EXPECT_EQ(owner_from_cgroup("").kind, OwnerKind::kNone);
}

// A copy of the test library in a fresh folder, so the test may replace or delete it.
struct LibCopy {
  TempDir dir;
  std::string path;
  explicit LibCopy(const std::string& name = "libadvisortest.so") {
    path = dir / name;
    testing::copy_file(ADVISOR_TESTLIB, path);
  }
};

// Every ScanProcess test runs twice: PROCMAP_QUERY (Linux 6.11+) and the text of maps.
class ScanProcess : public ::testing::TestWithParam<bool> {
 protected:
  ScanOptions opts() const {
    ScanOptions o;
    o.procmap_query = GetParam();
    return o;
  }
};
INSTANTIATE_TEST_SUITE_P(Sources, ScanProcess, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "ProcmapQuery" : "MapsText";
                         });

const StaleObject* find_object(const StaleProcess& p, const std::string& path) {
  for (const StaleObject& o : p.objects)
    if (o.path == path) return &o;
  return nullptr;
}

TEST_P(ScanProcess, CurrentLibraryIsNotStale) {
  LibCopy lib;
  Holder h(ADVISOR_HOLDER, {lib.path});
  auto r = scan_process(h.pid(), opts());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(*r);
}

TEST_P(ScanProcess, ReplacedLibraryIsReportedReplaced) {
  LibCopy lib;
  Holder h(ADVISOR_HOLDER, {lib.path});
  testing::replace_file(lib.path);
  auto r = scan_process(h.pid(), opts());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(*r);
  const StaleObject* o = find_object(**r, lib.path);
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->kind, StaleKind::kReplaced);
  EXPECT_FALSE(o->is_executable);
  EXPECT_EQ((*r)->objects.size(), 1u) << "only the replaced library is stale";
  EXPECT_EQ((*r)->pid, h.pid());
  EXPECT_EQ((*r)->comm, "advisor_holder");
}

TEST_P(ScanProcess, DeletedLibraryIsReportedDeleted) {
  LibCopy lib;
  Holder h(ADVISOR_HOLDER, {lib.path});
  ASSERT_EQ(unlink(lib.path.c_str()), 0);
  auto r = scan_process(h.pid(), opts());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(*r);
  const StaleObject* o = find_object(**r, lib.path);
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->kind, StaleKind::kDeleted);
}

TEST_P(ScanProcess, ReplacedExecutableIsReportedAsTheExecutable) {
  TempDir dir;
  std::string exe = dir / "holder-copy";
  testing::copy_file(ADVISOR_HOLDER, exe);
  Holder h(exe, {});
  testing::replace_file(exe);
  auto r = scan_process(h.pid(), opts());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(*r);
  const StaleObject* o = find_object(**r, exe);
  ASSERT_NE(o, nullptr);
  EXPECT_TRUE(o->is_executable);
  EXPECT_EQ(o->kind, StaleKind::kReplaced);
  EXPECT_EQ((*r)->exe, exe);
}

TEST_P(ScanProcess, PathWithSpacesIsReportedWhole) {
  TempDir dir;
  testing::mkdirs(dir / "with space");
  std::string path = dir / "with space/lib a b.so";
  testing::copy_file(ADVISOR_TESTLIB, path);
  Holder h(ADVISOR_HOLDER, {path});
  testing::replace_file(path);
  auto r = scan_process(h.pid(), opts());
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_NE(find_object(**r, path), nullptr);
}

TEST_P(ScanProcess, RealNameEndingInDeletedIsNotMistakenForTheKernelsMark) {
  LibCopy lib("libodd.so (deleted)");
  Holder h(ADVISOR_HOLDER, {lib.path});
  auto r = scan_process(h.pid(), opts());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(*r) << "a live file whose name ends in \" (deleted)\" is current";

  // Once really deleted, the kernel appends its own mark; the real name is reported.
  ASSERT_EQ(unlink(lib.path.c_str()), 0);
  auto after = scan_process(h.pid(), opts());
  ASSERT_TRUE(after.ok() && *after);
  const StaleObject* o = find_object(**after, lib.path);
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->kind, StaleKind::kDeleted);
}

TEST_P(ScanProcess, ProcessThatExitedIsSkippedNotAnError) {
  LibCopy lib;
  pid_t gone;
  {
    Holder h(ADVISOR_HOLDER, {lib.path});
    gone = h.pid();
    unlink(lib.path.c_str());
  }
  auto r = scan_process(gone, opts());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(*r);
}

TEST_P(ScanProcess, ZombieHasNoMemoryAndIsNotAnError) {
  pid_t z = fork();
  if (z == 0) _exit(0);
  ASSERT_GT(z, 0);
  // Wait until it is a zombie (state Z), without reaping it.
  for (int i = 0; i < 200; ++i) {
    std::string st = testing::read_all("/proc/" + std::to_string(z) + "/stat");
    size_t rp = st.rfind(')');
    if (rp != std::string::npos && rp + 2 < st.size() && st[rp + 2] == 'Z') break;
    usleep(5000);
  }
  auto r = scan_process(z, opts());
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (r.ok()) {
    EXPECT_FALSE(*r);
  }
  waitpid(z, nullptr, 0);
}

// ---- Whole-system scans: only inside `unshare --pid --fork --mount-proc` (ctest runs
// them there), where this test's processes are the only ones visible.

TEST(WholeSystem, ScanFindsExactlyTheStaleTestProcesses) {
  if (!testing::in_private_pid_namespace()) GTEST_SKIP() << "needs a private PID namespace";
  LibCopy current, replaced, deleted;
  Holder a(ADVISOR_HOLDER, {current.path});
  Holder b(ADVISOR_HOLDER, {replaced.path});
  Holder c(ADVISOR_HOLDER, {deleted.path, current.path});
  testing::replace_file(replaced.path);
  unlink(deleted.path.c_str());
  for (bool query : {true, false}) {
    SCOPED_TRACE(query ? "PROCMAP_QUERY" : "maps text");
    ScanOptions o;
    o.procmap_query = query;
    auto r = scan_processes(o);
    ASSERT_TRUE(r.ok()) << r.error().message;
    std::set<pid_t> stale;
    for (const StaleProcess& p : r->stale) stale.insert(p.pid);
    EXPECT_EQ(stale, (std::set<pid_t>{b.pid(), c.pid()}));
    EXPECT_GE(r->processes, 3u);
    for (const StaleProcess& p : r->stale) {
      ASSERT_EQ(p.objects.size(), 1u);
      EXPECT_EQ(p.objects[0].path, p.pid == b.pid() ? replaced.path : deleted.path);
      EXPECT_EQ(p.owner.kind, OwnerKind::kNone);
    }
  }
}

TEST(WholeSystem, ScanSurvivesProcessesExitingMidScan) {
  if (!testing::in_private_pid_namespace()) GTEST_SKIP() << "needs a private PID namespace";
  LibCopy lib;
  Holder stale(ADVISOR_HOLDER, {lib.path});
  unlink(lib.path.c_str());
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop) {
      pid_t p = fork();
      if (p == 0) {
        usleep(200);
        _exit(0);
      }
      if (p > 0) waitpid(p, nullptr, 0);
    }
  });
  for (int i = 0; i < 200; ++i) {
    auto r = scan_processes();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->warnings.empty()) << r->warnings.front();
    bool found = false;
    for (const StaleProcess& p : r->stale) found |= p.pid == stale.pid();
    EXPECT_TRUE(found);
  }
  stop = true;
  churn.join();
}

}  // namespace
}  // namespace nines::advisor
