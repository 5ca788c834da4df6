// The output formats: needrestart's batch lines and the JSON document.
#include "advisor/report.h"

#include <gtest/gtest.h>

namespace nines::advisor {
namespace {

Facts sample() {
  Facts f;
  f.kernel.status = KernelStatus::kVersionUpgrade;
  f.kernel.running_release = "6.1.0-28-cloud-amd64";
  f.kernel.expected_release = "6.1.0-30-cloud-amd64";
  f.microcode.status = MicrocodeStatus::kObsolete;
  f.microcode.vendor = "AuthenticAMD";
  f.microcode.current = 0x0a0011d1;
  f.microcode.available = 0x0a0011d5;
  auto add = [&f](pid_t pid, const char* comm, Owner o, const char* path, const char* patch) {
    StaleProcess p;
    p.pid = pid;
    p.comm = comm;
    p.owner = o;
    StaleObject obj;
    obj.path = path;
    obj.patched_by = patch;
    p.objects.push_back(obj);
    f.processes.push_back(p);
  };
  add(100, "sshd", {OwnerKind::kUnit, "ssh.service", -1}, "/usr/lib/libssl.so.3", "");
  add(101, "cron", {OwnerKind::kUnit, "Cron.service", -1}, "/usr/lib/libssl.so.3", "");
  add(102, "bash", {OwnerKind::kSession, "session-2", 0}, "/usr/bin/bash", "");
  add(103, "nginx", {OwnerKind::kContainer, "docker:0123abcd", -1}, "/usr/lib/libz.so.1", "");
  add(104, "worker", {}, "/opt/lib/libx.so", "");
  add(105, "worker", {}, "/opt/lib/libx.so", "");
  add(106, "redis", {OwnerKind::kUnit, "redis.service", -1}, "/usr/lib/libfoo.so.1", "foo-fix-2");
  return f;
}

TEST(Batch, NeedrestartLinesInNeedrestartsOrder) {
  Facts f = sample();
  std::string out = render_batch(f, decide(f), "0.1.0");
  EXPECT_EQ(out,
            "NEEDRESTART-VER: 0.1.0\n"
            "NEEDRESTART-KCUR: 6.1.0-28-cloud-amd64\n"
            "NEEDRESTART-KEXP: 6.1.0-30-cloud-amd64\n"
            "NEEDRESTART-KSTA: 3\n"
            "NEEDRESTART-UCSTA: 2\n"
            "NEEDRESTART-UCCUR: 0x0a0011d1\n"
            "NEEDRESTART-UCEXP: 0x0a0011d5\n"
            "NEEDRESTART-SVC: Cron.service\n"
            "NEEDRESTART-SVC: ssh.service\n"
            "NEEDRESTART-CONT: docker:0123abcd\n"
            "NEEDRESTART-SESS: root @ session #2\n"
            "NINES-REBOOT: yes\n"
            "NINES-PATCHED: redis=106:foo-fix-2\n")
      << "as root needrestart prints no PID line";
}

TEST(Batch, UserModeListsOnlyStaleProcessesByName) {
  Facts f = sample();
  std::string out = render_batch(f, decide(f), "0.1.0", BatchMode::kUser);
  EXPECT_EQ(out,
            "NEEDRESTART-VER: 0.1.0\n"
            "NEEDRESTART-PID: bash=102\n"
            "NEEDRESTART-PID: cron=101\n"
            "NEEDRESTART-PID: nginx=103\n"
            "NEEDRESTART-PID: sshd=100\n"
            "NEEDRESTART-PID: worker=104,105\n"
            "NINES-REBOOT: yes\n"
            "NINES-PATCHED: redis=106:foo-fix-2\n")
      << "no kernel, microcode, service, container or session lines as a user";
}

TEST(Batch, KnownMicrocodeWithoutARevisionHasNoEmptyLines) {
  Facts f = sample();
  f.microcode.available.reset();
  f.microcode.status = MicrocodeStatus::kCurrent;
  std::string out = render_batch(f, decide(f), "0.1.0");
  EXPECT_NE(out.find("NEEDRESTART-UCSTA: 1\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("NEEDRESTART-UCCUR"), std::string::npos) << out;
  EXPECT_EQ(out.find("NEEDRESTART-UCEXP"), std::string::npos) << out;
  EXPECT_EQ(out.find(": \n"), std::string::npos) << "no line without a value: " << out;
}

TEST(Nagios, NeedrestartPluginLineAndStatus) {
  Facts f = sample();
  int status = -1;
  std::string out = render_nagios(f, decide(f), BatchMode::kRoot, status);
  EXPECT_EQ(status, 2);
  EXPECT_EQ(out,
            "CRIT - Kernel: 6.1.0-28-cloud-amd64!=6.1.0-30-cloud-amd64 (!!), Microcode: OBSOLETE "
            "(!!), Services: 2 (!), Containers: 1 (!), Sessions: 1 (!!)|Kernel=2;0;;0;2 "
            "Microcode=1;0;;0;1 Services=2;;0;0 Containers=1;;0;0 Sessions=1;0;;0\n"
            "Services:\n- Cron.service\n- ssh.service\n"
            "Containers:\n- docker:0123abcd\n"
            "Sessions:\n- root @ session #2\n");
  Facts clean;
  clean.kernel.running_release = "6.1.0";
  clean.kernel.status = KernelStatus::kCurrent;
  clean.microcode.status = MicrocodeStatus::kCurrent;
  EXPECT_EQ(render_nagios(clean, decide(clean), BatchMode::kRoot, status),
            "OK - Kernel: 6.1.0, Microcode: CURRENT, Services: none, Containers: none, Sessions: "
            "none|Kernel=0;0;;0;2 Microcode=0;0;;0;1 Services=0;;0;0 Containers=0;;0;0 "
            "Sessions=0;0;;0\n");
  EXPECT_EQ(status, 0);
  render_nagios(clean, decide(clean), BatchMode::kUser, status);
  EXPECT_EQ(status, 3) << "needrestart checks no services as a user: UNKNOWN";
}

TEST(Batch, UnknownMicrocodeHasNoRevisionLines) {
  Facts f;
  f.kernel.running_release = "6.1.0";
  std::string out = render_batch(f, decide(f), "v");
  EXPECT_NE(out.find("NEEDRESTART-KSTA: 0\n"), std::string::npos);
  EXPECT_NE(out.find("NEEDRESTART-UCSTA: 0\n"), std::string::npos);
  EXPECT_EQ(out.find("NEEDRESTART-UCCUR"), std::string::npos);
  EXPECT_EQ(out.find("NEEDRESTART-KEXP"), std::string::npos);
}

TEST(Json, CarriesVerdictFactsAndPatchedProcesses) {
  Facts f = sample();
  nlohmann::json j = to_json(f, decide(f));
  EXPECT_EQ(j["verdict"]["reboot"], "yes");
  EXPECT_EQ(j["verdict"]["exit_code"], 2);
  EXPECT_EQ(j["kernel"]["ksta"], 3);
  EXPECT_EQ(j["kernel"]["expected"], "6.1.0-30-cloud-amd64");
  EXPECT_EQ(j["microcode"]["status"], "obsolete");
  EXPECT_EQ(j["services"], nlohmann::json({"Cron.service", "ssh.service"}));
  ASSERT_EQ(j["processes"].size(), 7u);
  EXPECT_EQ(j["processes"][6]["patched_in_memory"], true);
  EXPECT_EQ(j["processes"][6]["objects"][0]["patched_by"], "foo-fix-2");
  EXPECT_EQ(j["patched_in_memory_pids"], nlohmann::json({106}));
}

TEST(Text, NamesTheVerdictAndThePatchedProcess) {
  Facts f = sample();
  std::string out = render_text(f, decide(f));
  EXPECT_NE(out.find("Reboot: yes"), std::string::npos);
  EXPECT_NE(out.find("Services to restart: Cron.service ssh.service"), std::string::npos);
  EXPECT_NE(out.find("pid 106 (redis): /usr/lib/libfoo.so.1 patched by foo-fix-2"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace nines::advisor
