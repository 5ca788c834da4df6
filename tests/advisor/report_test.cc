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
  std::string out = render_batch(f, decide(f), "nines-0.1.0");
  EXPECT_EQ(out,
            "NEEDRESTART-VER: nines-0.1.0\n"
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
            "NEEDRESTART-PID: worker=104,105\n"
            "NINES-REBOOT: yes\n"
            "NINES-PATCHED: redis=106:foo-fix-2\n");
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
