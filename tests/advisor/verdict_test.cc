// The verdict rule as a table: facts in, reboot verdict + exit status + reasons out.
#include "advisor/verdict.h"

#include <gtest/gtest.h>

namespace nines::advisor {
namespace {

StaleProcess proc(pid_t pid, Owner owner, std::vector<std::string> paths,
                  std::string patched_by = "") {
  StaleProcess p;
  p.pid = pid;
  p.comm = "p" + std::to_string(pid);
  p.owner = std::move(owner);
  for (auto& path : paths) {
    StaleObject o;
    o.path = path;
    o.kind = StaleKind::kReplaced;
    o.patched_by = patched_by;
    p.objects.push_back(o);
  }
  return p;
}

Owner unit(const std::string& n) { return Owner{OwnerKind::kUnit, n, -1}; }

Facts clean() {
  Facts f;
  f.kernel.status = KernelStatus::kCurrent;
  f.kernel.running_release = "6.1.0-28-cloud-amd64";
  f.microcode.status = MicrocodeStatus::kCurrent;
  return f;
}

Facts kernel_pending() {
  Facts f = clean();
  f.kernel.status = KernelStatus::kVersionUpgrade;
  f.kernel.expected_release = "6.1.0-30-cloud-amd64";
  return f;
}

void live_patched(Facts& f) { f.kernel_livepatches.push_back({"nines_cve_2026_1", true, false}); }

struct Case {
  const char* name;
  Facts facts;
  Reboot reboot;
  int exit_code;
  const char* reason_contains;  // in reboot, deferred or restart reasons; "" for none
};

std::vector<Case> cases() {
  std::vector<Case> c;
  c.push_back({"nothing pending", clean(), Reboot::kNo, 0, ""});
  {
    Facts f = clean();
    f.processes.push_back(proc(10, unit("nginx.service"), {"/usr/lib/libssl.so.3"}));
    c.push_back({"other library: restart only", f, Reboot::kNo, 1, "libssl.so.3"});
  }
  {
    Facts f = clean();
    f.processes.push_back(proc(10, unit("nginx.service"), {"/usr/lib/x86_64-linux-gnu/libc.so.6"}));
    c.push_back({"glibc: reboot", f, Reboot::kYes, 2, "C library"});
  }
  {
    Facts f = clean();
    f.processes.push_back(proc(11, unit("app.service"), {"/lib/ld-musl-x86_64.so.1"}));
    c.push_back({"musl: reboot", f, Reboot::kYes, 2, "C library"});
  }
  {
    Facts f = clean();
    f.processes.push_back(
        proc(10, unit("nginx.service"), {"/usr/lib/x86_64-linux-gnu/libc.so.6"}, "glibc-fix-1"));
    c.push_back({"glibc patched in memory: nothing", f, Reboot::kNo, 0, ""});
  }
  {
    Facts f = clean();
    f.microcode.status = MicrocodeStatus::kObsolete;
    f.microcode.vendor = "GenuineIntel";
    f.microcode.current = 0x500;
    f.microcode.available = 0x600;
    c.push_back({"microcode: reboot", f, Reboot::kYes, 2, "microcode"});
    f.microcode.virtual_machine = true;
    c.push_back({"microcode in a VM: the host's business", f, Reboot::kNo, 0, ""});
  }
  {
    Facts f = clean();
    f.bootloader.upgraded.push_back({"grub-pc", "2.06-13+deb12u1", 1700000000});
    c.push_back({"bootloader: reboot", f, Reboot::kYes, 2, "grub-pc"});
  }
  c.push_back({"newer kernel, no livepatch: reboot", kernel_pending(), Reboot::kYes, 2,
               "6.1.0-30-cloud-amd64"});
  {
    Facts f = kernel_pending();
    f.kernel.status = KernelStatus::kAbiUpgrade;
    c.push_back({"ABI rebuild, no livepatch: reboot", f, Reboot::kYes, 2, "ABI-compatible"});
  }
  {
    Facts f = kernel_pending();
    live_patched(f);
    c.push_back({"newer kernel, live-patched: deferred", f, Reboot::kYesKernelLivepatchesApplied, 2,
                 "live-patched"});
  }
  {
    Facts f = kernel_pending();
    live_patched(f);
    f.cves.kernel_fixes = {{"CVE-2026-1", "critical", true}, {"CVE-2026-2", "high", true}};
    c.push_back({"critical+high covered: deferred", f, Reboot::kYesKernelLivepatchesApplied, 2,
                 "live-patched"});
    f.cves.kernel_fixes.push_back({"CVE-2026-3", "medium", false});
    c.push_back({"a medium kernel fix: reboot", f, Reboot::kYes, 2, "CVE-2026-3 (medium"});
  }
  {
    Facts f = kernel_pending();
    live_patched(f);
    f.cves.kernel_fixes = {{"CVE-2026-9", "critical", false}};
    c.push_back({"critical not covered: reboot", f, Reboot::kYes, 2, "not live-patched"});
  }
  {
    Facts f = kernel_pending();
    live_patched(f);
    f.kernel_livepatches[0].enabled = false;
    c.push_back({"disabled livepatch does not count", f, Reboot::kYes, 2, "6.1.0-30"});
  }
  {
    Facts f = kernel_pending();
    live_patched(f);
    f.bootloader.upgraded.push_back({"grub-efi-amd64", "2.06-13", 1700000000});
    c.push_back({"live-patched kernel but bootloader: reboot", f, Reboot::kYes, 2, "grub-efi"});
  }
  {
    Facts f = clean();
    f.reboot_required.present = true;
    f.reboot_required.packages = {"dbus"};
    c.push_back({"reboot-required by a package: reboot", f, Reboot::kYes, 2, "dbus"});
  }
  {
    Facts f = clean();
    f.reboot_required.present = true;
    f.reboot_required.packages = {"linux-image-6.1.0-30-cloud-amd64"};
    live_patched(f);
    c.push_back({"reboot-required by a kernel, live-patched: deferred", f,
                 Reboot::kYesKernelLivepatchesApplied, 2, "linux-image"});
  }
  {
    Facts f = kernel_pending();
    live_patched(f);
    f.processes.push_back(proc(10, unit("nginx.service"), {"/usr/lib/libssl.so.3"}));
    c.push_back({"deferred reboot beats restarts in the exit status", f,
                 Reboot::kYesKernelLivepatchesApplied, 2, "libssl"});
  }
  return c;
}

TEST(Decide, TableOfCases) {
  for (const Case& k : cases()) {
    SCOPED_TRACE(k.name);
    Verdict v = decide(k.facts);
    EXPECT_EQ(reboot_name(v.reboot), std::string(reboot_name(k.reboot)));
    EXPECT_EQ(v.exit_code(), k.exit_code);
    std::string all;
    for (const auto* list : {&v.reboot_reasons, &v.deferred_reasons, &v.restart_reasons})
      for (const std::string& r : *list) all += r + "\n";
    if (std::string(k.reason_contains).empty())
      EXPECT_TRUE(v.reboot_reasons.empty() && v.deferred_reasons.empty()) << all;
    else
      EXPECT_NE(all.find(k.reason_contains), std::string::npos) << all;
  }
}

TEST(Decide, GroupsProcessesByUnitSessionContainer) {
  Facts f = clean();
  f.processes.push_back(proc(10, unit("nginx.service"), {"/usr/lib/libssl.so.3"}));
  f.processes.push_back(proc(11, unit("nginx.service"), {"/usr/lib/libssl.so.3"}));
  f.processes.push_back(proc(12, Owner{OwnerKind::kSession, "session-4", 0}, {"/usr/bin/vim"}));
  f.processes.push_back(proc(13, Owner{OwnerKind::kContainer, "docker:abc", -1}, {"/x"}));
  f.processes.push_back(proc(14, Owner{}, {"/y"}));
  f.processes.push_back(proc(15, Owner{OwnerKind::kManager, "systemd-manager", -1}, {"/z"}));
  f.processes.push_back(proc(16, unit("redis.service"), {"/usr/lib/libfoo.so.1"}, "foo-fix-2"));
  Verdict v = decide(f);
  EXPECT_EQ(v.units, (std::vector<std::string>{"nginx.service", "systemd-manager"}));
  EXPECT_EQ(v.sessions, (std::vector<std::string>{"root @ session #4"}));
  EXPECT_EQ(v.containers, (std::vector<std::string>{"docker:abc"}));
  EXPECT_EQ(v.unattributed, (std::vector<pid_t>{14}));
  EXPECT_EQ(v.patched_in_memory, (std::vector<pid_t>{16}));
  EXPECT_EQ(v.exit_code(), 1);
}

TEST(Decide, PartlyPatchedProcessStillNeedsARestartAndSaysWhichPart) {
  Facts f = clean();
  StaleProcess p = proc(20, unit("web.service"), {"/usr/lib/libfoo.so.1", "/usr/lib/libbar.so.2"});
  p.objects[0].patched_by = "foo-fix-2";
  f.processes.push_back(p);
  Verdict v = decide(f);
  EXPECT_EQ(v.units, (std::vector<std::string>{"web.service"}));
  ASSERT_EQ(v.restart_reasons.size(), 1u);
  EXPECT_NE(v.restart_reasons[0].find("libbar.so.2 (replaced)"), std::string::npos);
  EXPECT_NE(v.restart_reasons[0].find("patched in memory by foo-fix-2"), std::string::npos);
}

TEST(Decide, ManyKernelFixesAreNamedUpToTenThenCounted) {
  Facts f = kernel_pending();
  live_patched(f);
  for (int i = 0; i < 25; ++i)
    f.cves.kernel_fixes.push_back({fmt::format("CVE-2026-{}", 100 + i), "medium", false});
  Verdict v = decide(f);
  ASSERT_EQ(v.reboot, Reboot::kYes);
  ASSERT_EQ(v.reboot_reasons.size(), 1u);
  EXPECT_NE(v.reboot_reasons[0].find("CVE-2026-109 (medium"), std::string::npos);
  EXPECT_EQ(v.reboot_reasons[0].find("CVE-2026-110"), std::string::npos);
  EXPECT_NE(v.reboot_reasons[0].find("and 15 more"), std::string::npos) << v.reboot_reasons[0];
}

}  // namespace
}  // namespace nines::advisor
