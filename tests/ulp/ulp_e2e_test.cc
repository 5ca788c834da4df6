// End-to-end scenarios of user-space live patching, against real processes that the
// tests start themselves (fixtures/ulptarget.c), with the real nines binary.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/fd.h"
#include "harness.h"
#include "ulp/engine.h"

using nines::test::build_patch;
using nines::test::run_nines;
using nines::test::Target;

namespace {

std::string lib_path() { return std::string(FIXTURES_DIR) + "/libulptarget.so"; }

std::string maps_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

std::string libc_path() {
  std::ifstream f("/proc/self/maps");
  std::string line;
  while (std::getline(f, line)) {
    auto p = line.find('/');
    if (p != std::string::npos && line.find("/libc.so.6") != std::string::npos) return line.substr(p);
  }
  return "/lib/x86_64-linux-gnu/libc.so.6";
}

std::string pid_arg(const Target& t) { return std::to_string(t.pid()); }

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Waits until no thread of the target is traced (the patcher has let go of it).
bool wait_untraced(const Target& t, int timeout_ms = 10000) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    std::string states = t.thread_states();
    std::ifstream f("/proc/" + std::to_string(t.pid()) + "/status");
    std::string status((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (states.find('t') == std::string::npos && contains(status, "TracerPid:\t0\n")) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST(UserspacePatch, SharedLibraryFunctionIsReplacedWhileThreadsHammerIt) {
  Target t("ulptarget_pie", 4);
  std::string patch = build_patch("lib_v1", lib_path());
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=10 atoi=5");
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t), "--no-stack-check"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "lib_value")) << r.output;
  EXPECT_TRUE(contains(r.output, "lib_other")) << r.output;
  EXPECT_TRUE(contains(r.output, "stop window")) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=2 other=200 scaled=80 exe=10 atoi=5");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(contains(t.ask("stats"), "wrong=0"));
  EXPECT_EQ(t.thread_states().find('t'), std::string::npos) << "a thread was left stopped";
}

TEST(UserspacePatch, PieMainExecutableFunctionIsReplaced) {
  Target t("ulptarget_pie", 2);
  std::string patch = build_patch("exe_fix", std::string(FIXTURES_DIR) + "/ulptarget_pie", "exe-pie");
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t), "--no-stack-check"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=11 atoi=5");
  EXPECT_TRUE(contains(t.ask("stats"), "wrong=0"));
}

TEST(UserspacePatch, NonPieMainExecutableFunctionIsReplaced) {
  Target t("ulptarget_nopie", 2);
  std::string patch = build_patch("exe_fix", std::string(FIXTURES_DIR) + "/ulptarget_nopie", "exe-nopie");
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t), "--no-stack-check"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=11 atoi=5");
  r = run_nines({"revert", "exe-nopie", "--pid", pid_arg(t), "--no-stack-check"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=10 atoi=5");
}

TEST(UserspacePatch, RevertRestoresTheOriginalCodeAndUnmapsThePatch) {
  Target t("ulptarget_pie", 0);
  std::string before = maps_of(t.pid());
  std::string patch = build_patch("lib_v1", lib_path());
  ASSERT_EQ(run_nines({"apply", patch, "--pid", pid_arg(t)}).exit_code, 0);
  EXPECT_EQ(t.ask("values"), "lib=2 other=200 scaled=80 exe=10 atoi=5");
  auto r = run_nines({"revert", "lib_v1", "--pid", pid_arg(t)});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "reverted lib_v1")) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=10 atoi=5");
  auto l = run_nines({"list", "--pid", pid_arg(t)});
  EXPECT_TRUE(contains(l.output, "no patches")) << l.output;
  // Only the registry mapping remains.
  std::string after = maps_of(t.pid());
  EXPECT_EQ(count_lines(after), count_lines(before) + 1) << after;
  EXPECT_TRUE(contains(after, "/memfd:nines-registry"));
}

TEST(UserspacePatch, ListShowsIdTargetFunctionsAndTimeAsTextAndJson) {
  Target t("ulptarget_pie", 0);
  std::string patch = build_patch("lib_v1", lib_path());
  ASSERT_EQ(run_nines({"apply", patch, "--pid", pid_arg(t)}).exit_code, 0);
  auto l = run_nines({"list", "--pid", pid_arg(t)});
  ASSERT_EQ(l.exit_code, 0);
  EXPECT_TRUE(contains(l.output, "lib_v1")) << l.output;
  EXPECT_TRUE(contains(l.output, "libulptarget.so")) << l.output;
  EXPECT_TRUE(contains(l.output, "lib_value")) << l.output;
  EXPECT_TRUE(contains(l.output, "lib_other")) << l.output;
  auto j = run_nines({"list", "--pid", pid_arg(t), "--format", "json"});
  auto doc = nlohmann::json::parse(j.output);
  ASSERT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc[0]["pid"], t.pid());
  EXPECT_EQ(doc[0]["patches"][0]["id"], "lib_v1");
  auto fns = doc[0]["patches"][0]["functions"].get<std::vector<std::string>>();
  std::sort(fns.begin(), fns.end());
  EXPECT_EQ(fns, (std::vector<std::string>{"lib_other", "lib_value"}));
  EXPECT_FALSE(doc[0]["patches"][0]["applied"].get<std::string>().empty());
}

TEST(UserspacePatch, CumulativeV2ReplacesV1InOneSwitchAndRestoresDroppedFunctions) {
  Target t("ulptarget_pie", 2);
  std::string v1 = build_patch("lib_v1", lib_path(), "fix-v1");
  std::string v2 = build_patch("lib_v2", lib_path(), "fix-v2");
  ASSERT_EQ(run_nines({"apply", v1, "--pid", pid_arg(t), "--no-stack-check"}).exit_code, 0);
  EXPECT_EQ(t.ask("values"), "lib=2 other=200 scaled=80 exe=10 atoi=5");
  auto r = run_nines({"apply", v2, "--pid", pid_arg(t), "--no-stack-check"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "replaced fix-v1")) << r.output;
  EXPECT_TRUE(contains(r.output, "lib_other (restored)")) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=3 other=100 scaled=80 exe=10 atoi=5");
  auto l = run_nines({"list", "--pid", pid_arg(t), "--format", "json"});
  auto doc = nlohmann::json::parse(l.output);
  ASSERT_EQ(doc[0]["patches"].size(), 1u);
  EXPECT_EQ(doc[0]["patches"][0]["id"], "fix-v2");
  ASSERT_EQ(run_nines({"revert", "fix-v2", "--pid", pid_arg(t), "--no-stack-check"}).exit_code, 0);
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=10 atoi=5");
  EXPECT_TRUE(contains(t.ask("stats"), "wrong=0"));
}

TEST(UserspacePatch, ApplyingTheSamePatchAgainIsANoOpSuccess) {
  Target t("ulptarget_pie", 0);
  std::string patch = build_patch("lib_v1", lib_path());
  ASSERT_EQ(run_nines({"apply", patch, "--pid", pid_arg(t)}).exit_code, 0);
  std::string maps = maps_of(t.pid());
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t)});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "already applied")) << r.output;
  EXPECT_EQ(maps_of(t.pid()), maps);
  EXPECT_EQ(t.ask("values"), "lib=2 other=200 scaled=80 exe=10 atoi=5");
}

TEST(UserspacePatch, BuildIdMismatchIsRefusedAndTheProcessIsUntouched) {
  Target t("ulptarget_pie", 0);
  std::string patch = build_patch("lib_v1", std::string(FIXTURES_DIR) + "/alt/libulptarget.so", "alt-fix");
  std::string maps = maps_of(t.pid());
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "build-id mismatch")) << r.output;
  EXPECT_EQ(maps_of(t.pid()), maps) << "the process was changed";
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=10 atoi=5");
}

TEST(UserspacePatch, GlibcFunctionIsReplacedInARunningProgram) {
  Target t("ulptarget_pie", 0);
  std::string patch = build_patch("atoi_fix", libc_path());
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t)});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=10 atoi=1005");
  ASSERT_EQ(run_nines({"revert", "atoi_fix", "--pid", pid_arg(t)}).exit_code, 0);
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=10 atoi=5");
}

TEST(UserspacePatch, PatchCallsAStaticFunctionAndReadsAStaticVariableOfTheTarget) {
  Target t("ulptarget_pie", 0);
  std::string patch = build_patch("lib_static", lib_path());
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t)});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=160 exe=10 atoi=5");
}

TEST(UserspacePatch, StrippedTargetIsPatchedThroughItsDynamicSymbols) {
  Target t("ulptarget_pie", 0);
  std::string stripped = std::string(FIXTURES_DIR) + "/stripped/libulptarget.so";
  std::string patch = build_patch("lib_v1", stripped, "from-stripped");
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t)});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=2 other=200 scaled=80 exe=10 atoi=5");
}

TEST(UserspacePatch, AFrameInsideTheFunctionBlocksTheSwitchUntilItLeaves) {
  Target t("ulptarget_pie", 0);
  std::string patch = build_patch("lib_slow", lib_path());
  EXPECT_EQ(t.ask("slow 1500"), "slow-started");
  auto start = std::chrono::steady_clock::now();
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t), "--timeout", "10000"});
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GE(ms, 1000) << "the switch did not wait for the thread to leave lib_slow";
  EXPECT_EQ(t.ask("slowdone"), "slow=7");  // the call in progress finished in the old code
  EXPECT_EQ(t.ask("slow 0"), "slow-started");
  EXPECT_EQ(t.ask("slowdone"), "slow=8");  // new calls run the new code
}

TEST(UserspacePatch, AFrameThatNeverLeavesFailsAtTheTimeoutNamingThreadAndFunction) {
  Target t("ulptarget_pie", 0);
  std::string patch = build_patch("lib_slow", lib_path());
  EXPECT_EQ(t.ask("slow 4000"), "slow-started");
  std::string maps = maps_of(t.pid());
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t), "--timeout", "500"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "lib_slow")) << r.output;
  EXPECT_TRUE(contains(r.output, "tid ")) << r.output;
  EXPECT_TRUE(contains(r.output, "not switched after 500 ms")) << r.output;
  EXPECT_EQ(maps_of(t.pid()).find("rwxp"), std::string::npos);
  EXPECT_EQ(t.ask("slowdone"), "slow=7");
  EXPECT_EQ(t.ask("slow 0"), "slow-started");
  EXPECT_EQ(t.ask("slowdone"), "slow=7") << "the failed apply changed the code";
  EXPECT_EQ(t.thread_states().find('t'), std::string::npos);
}

TEST(UserspacePatch, ThreadsBlockedInReadAndNanosleepKeepTheirSemantics) {
  Target t("ulptarget_pie", 0);
  EXPECT_EQ(t.ask("sleep 1000"), "sleep-started");
  EXPECT_EQ(t.ask("readwait"), "read-started");
  std::string patch = build_patch("lib_v1", lib_path());
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t)});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(run_nines({"revert", "lib_v1", "--pid", pid_arg(t)}).exit_code, 0);
  t.feed("hello");
  EXPECT_EQ(t.ask("readdone"), "read=hello");
  std::string slept = t.ask("sleepdone");
  ASSERT_TRUE(contains(slept, "slept=")) << slept;
  int ms = std::stoi(slept.substr(6));
  EXPECT_GE(ms, 1000) << "nanosleep returned early";
  EXPECT_LT(ms, 3000) << "nanosleep lasted far too long";
}

TEST(UserspacePatch, RegistersAndVectorStateOfTheThreadUsedForInjectionSurvive) {
  Target t("ulptarget_pie", 0);
  t.send("regcheck");  // the main thread now blocks in read(3) with known register values
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string patch = build_patch("lib_v1", lib_path());
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t)});  // injects into the main thread
  ASSERT_EQ(r.exit_code, 0) << r.output;
  t.feed("x");
  EXPECT_EQ(t.ask(""), "regs=ok");
  EXPECT_EQ(t.ask("values"), "lib=2 other=200 scaled=80 exe=10 atoi=5");
}

TEST(UserspacePatch, SeveralProcessesArePatchedWithOneCommand) {
  Target a("ulptarget_pie", 1), b("ulptarget_nopie", 1);
  std::string patch = build_patch("lib_v1", lib_path());
  auto r = run_nines({"apply", patch, "--pid", pid_arg(a) + "," + pid_arg(b), "--no-stack-check"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "2 of 2 processes patched")) << r.output;
  EXPECT_EQ(a.ask("values"), "lib=2 other=200 scaled=80 exe=10 atoi=5");
  EXPECT_EQ(b.ask("values"), "lib=2 other=200 scaled=80 exe=10 atoi=5");
}

TEST(UserspaceBuild, RefusesAnIfuncResolverAndSaysToNameTheImplementation) {
  auto r = run_nines({"build", "--target", libc_path(), "-o", std::string(WORK_DIR) + "/ifunc.patch",
                      std::string(PATCHES_DIR) + "/ifunc.c"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "IFUNC")) << r.output;
  EXPECT_TRUE(contains(r.output, "name the implementation")) << r.output;
}

TEST(UserspaceBuild, RefusesAFunctionTooShortForTheRedirect) {
  auto r = run_nines({"build", "--target", lib_path(), "-o", std::string(WORK_DIR) + "/short.patch",
                      std::string(PATCHES_DIR) + "/too_short.c"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "too short")) << r.output;
}

TEST(UserspaceBuild, RefusesAFunctionTheTargetDoesNotHave) {
  auto r = run_nines({"build", "--target", lib_path(), "-o", std::string(WORK_DIR) + "/missing.patch",
                      std::string(PATCHES_DIR) + "/missing.c"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "no symbol 'no_such_function'")) << r.output;
}

TEST(UserspaceBuild, StaticSymbolsOfAStrippedTargetWithoutDebugFileAreExplained) {
  Target t("ulptarget_pie", 0);
  std::string stripped = std::string(FIXTURES_DIR) + "/stripped/libulptarget.so";
  // lib_scaled is exported, so the build works; `scaled` is resolved at apply time from the
  // object the process maps (which has a .symtab here).
  std::string patch = build_patch("lib_static", stripped, "static-from-stripped");
  auto r = run_nines({"apply", patch, "--pid", pid_arg(t)});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=160 exe=10 atoi=5");
}

TEST(UserspacePatch, KillingNinesMidApplyLeavesTheTargetRunningUnpatchedOrFullyPatched) {
  Target t("ulptarget_pie", 4);
  std::string patch = build_patch("lib_v1", lib_path());
  std::mt19937 rng(12345);
  int patched_seen = 0, unpatched_seen = 0;
  for (int i = 0; i < 20; ++i) {
    pid_t child = fork();
    if (child == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      std::string pid = pid_arg(t);
      execl(NINES_BIN, NINES_BIN, "apply", patch.c_str(), "--pid", pid.c_str(), "--no-stack-check", (char*)nullptr);
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    ASSERT_TRUE(wait_untraced(t)) << "the target stayed traced after nines was killed";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(t.alive());
    std::string v = t.ask("values");
    ASSERT_TRUE(v == "lib=1 other=100 scaled=80 exe=10 atoi=5" || v == "lib=2 other=200 scaled=80 exe=10 atoi=5")
        << "half patched: " << v;
    auto l = run_nines({"list", "--pid", pid_arg(t), "--format", "json"});
    auto doc = nlohmann::json::parse(l.output);
    bool listed = !doc[0]["patches"].empty();
    EXPECT_EQ(listed, v[4] == '2') << "the registry disagrees with the code: " << l.output << " vs " << v;
    if (v[4] == '2') {
      ++patched_seen;
      ASSERT_EQ(run_nines({"revert", "lib_v1", "--pid", pid_arg(t), "--no-stack-check"}).exit_code, 0);
    } else {
      ++unpatched_seen;
    }
  }
  EXPECT_TRUE(contains(t.ask("stats"), "wrong=0"));
  EXPECT_EQ(t.thread_states().find('t'), std::string::npos);
  RecordProperty("patched", patched_seen);
  RecordProperty("unpatched", unpatched_seen);
}

// The worker that patches is itself killed between the two 5-byte writes of a two-function
// switch (fault injection: NINES_TEST_DIE_AFTER_WRITES=1). The code is half switched then;
// the registry's journal lets the next nines command roll it back first.
struct DieAfterOneWrite {
  DieAfterOneWrite() { setenv("NINES_TEST_DIE_AFTER_WRITES", "1", 1); }
  ~DieAfterOneWrite() { unsetenv("NINES_TEST_DIE_AFTER_WRITES"); }
};

bool half_patched(const std::string& v) {
  return v == "lib=2 other=100 scaled=80 exe=10 atoi=5" || v == "lib=1 other=200 scaled=80 exe=10 atoi=5";
}

// Runs `nines ARGS` with the fault, then checks it failed and left the target running and
// half switched.
void run_killed_between_writes(Target& t, const std::vector<std::string>& args) {
  {
    DieAfterOneWrite fault;
    auto r = run_nines(args);
    ASSERT_NE(r.exit_code, 0) << r.output;
  }
  ASSERT_TRUE(wait_untraced(t));
  std::string v = t.ask("values");
  ASSERT_TRUE(half_patched(v)) << v;
}

TEST(UserspacePatch, AnApplyKilledBetweenTwoWritesIsRolledBackByTheNextApply) {
  Target t("ulptarget_pie", 2);
  std::string before = maps_of(t.pid());
  std::string patch = build_patch("lib_v1", lib_path());
  ASSERT_NO_FATAL_FAILURE(
      run_killed_between_writes(t, {"apply", patch, "--pid", pid_arg(t), "--no-stack-check"}));
  auto l = run_nines({"list", "--pid", pid_arg(t), "--format", "json"});
  auto doc = nlohmann::json::parse(l.output);
  EXPECT_TRUE(doc[0]["interrupted_switch"].get<bool>()) << l.output;
  EXPECT_TRUE(doc[0]["patches"].empty()) << l.output;
  EXPECT_TRUE(contains(run_nines({"list", "--pid", pid_arg(t)}).output, "interrupted half done"));

  auto r = run_nines({"apply", patch, "--pid", pid_arg(t), "--no-stack-check"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "rolled back a switch that was interrupted (1 of 2 writes")) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=2 other=200 scaled=80 exe=10 atoi=5");
  doc = nlohmann::json::parse(run_nines({"list", "--pid", pid_arg(t), "--format", "json"}).output);
  EXPECT_FALSE(doc[0]["interrupted_switch"].get<bool>());
  // The original bytes survived: the revert restores the original code, and the image the
  // interrupted apply staged was unmapped (only the registry mapping remains).
  ASSERT_EQ(run_nines({"revert", "lib_v1", "--pid", pid_arg(t), "--no-stack-check"}).exit_code, 0);
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=10 atoi=5");
  std::string after = maps_of(t.pid());
  EXPECT_EQ(count_lines(after), count_lines(before) + 1) << after;
  EXPECT_TRUE(contains(t.ask("stats"), "wrong=0"));
}

TEST(UserspacePatch, ARevertOfAnInterruptedApplyRollsItBack) {
  Target t("ulptarget_pie", 0);
  std::string patch = build_patch("lib_v1", lib_path());
  ASSERT_NO_FATAL_FAILURE(run_killed_between_writes(t, {"apply", patch, "--pid", pid_arg(t)}));
  auto r = run_nines({"revert", "lib_v1", "--pid", pid_arg(t)});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "rolled back an interrupted switch")) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=10 atoi=5");
}

TEST(UserspacePatch, ARevertKilledBetweenTwoWritesIsRolledBackToTheAppliedPatch) {
  Target t("ulptarget_pie", 0);
  std::string patch = build_patch("lib_v1", lib_path());
  ASSERT_EQ(run_nines({"apply", patch, "--pid", pid_arg(t)}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(run_killed_between_writes(t, {"revert", "lib_v1", "--pid", pid_arg(t)}));
  // Rolled back to the state the registry records (applied), then reverted for real.
  auto r = run_nines({"revert", "lib_v1", "--pid", pid_arg(t)});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "reverted lib_v1")) << r.output;
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=10 atoi=5");
  // And the engine's entry point alone finds nothing left to recover.
  auto rec = nines::ulp::recover_interrupted_switch(t.pid(), {});
  ASSERT_TRUE(rec) << rec.error().message;
  EXPECT_FALSE(*rec);
}

// The engine is driven in-process here (the CLI is exercised everywhere else): 1,000
// spawns of the nines binary would measure process start-up, not patching.
TEST(UserspaceStress, FiveHundredApplyRevertCyclesAgainstSixtyFourHammeringThreads) {
  int cycles = 500;
  if (const char* env = std::getenv("NINES_STRESS_CYCLES")) cycles = std::atoi(env);
  Target t("ulptarget_pie", 64);
  std::string patch_path = build_patch("lib_v1", lib_path(), "stress");
  auto bytes = nines::read_file(patch_path);
  ASSERT_TRUE(bytes.ok());
  auto patch = nines::ulp::load_patch_object(*bytes, patch_path);
  ASSERT_TRUE(patch.ok()) << patch.error().message;
  nines::ulp::ElfCache cache;
  nines::ulp::ApplyOptions opts;
  opts.stack_check = false;
  int before = count_lines(maps_of(t.pid()));
  for (int i = 0; i < cycles; ++i) {
    auto a = nines::ulp::apply_patch(*patch, t.pid(), opts, cache);
    ASSERT_TRUE(a.ok()) << "cycle " << i << ": " << a.error().message;
    auto r = nines::ulp::revert_patch("stress", t.pid(), opts);
    ASSERT_TRUE(r.ok()) << "cycle " << i << ": " << r.error().message;
  }
  ASSERT_TRUE(t.alive());
  EXPECT_TRUE(contains(t.ask("stats"), "wrong=0"));
  EXPECT_EQ(t.ask("values"), "lib=1 other=100 scaled=80 exe=10 atoi=5");
  EXPECT_EQ(t.thread_states().find('t'), std::string::npos);
  // Retired patch images are unmapped as soon as no thread is in them (a busy one is
  // retried by every later switch): only the registry and the last few images may remain.
  EXPECT_LE(count_lines(maps_of(t.pid())), before + 1 + 12);
}
