// Patched in memory: stale objects that a nines patch targets (by build-id) are reported
// as patched, from a registry reader; kernel livepatches from a fake sysfs.
#include "advisor/livepatch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "fixtures.h"

namespace nines::advisor {
namespace {

using namespace nines::advisor::testing;

TEST(BuildId, ReadsTheGnuNoteOfAnElfFile) {
  auto id = read_build_id(ADVISOR_TESTLIB);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(id->size(), 40u) << *id;  // sha1
}

TEST(BuildId, NotElfIsAnErrorNamingTheFile) {
  TempDir d;
  write_file(d / "x", "not an elf file at all");
  auto id = read_build_id(d / "x");
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.error().message.find(d / "x"), std::string::npos) << id.error().message;
}

struct StaleHolder {
  TempDir dir;
  std::string lib;
  std::unique_ptr<Holder> h;
  StaleProcess proc;
  StaleHolder() {
    lib = dir / "libfoo.so.1";
    copy_file(ADVISOR_TESTLIB, lib);
    h = std::make_unique<Holder>(ADVISOR_HOLDER, std::vector<std::string>{lib});
    unlink(lib.c_str());
    auto r = scan_process(h->pid());
    if (!r.ok() || !*r) throw std::runtime_error("holder not stale");
    proc = **r;
  }
};

TEST(MarkPatched, MatchingBuildIdIsPatchedInMemory) {
  StaleHolder s;
  std::string build_id = *read_build_id(ADVISOR_TESTLIB);
  std::vector<StaleProcess> procs{s.proc};
  pid_t asked = 0;
  RegistryReader reader = [&](pid_t pid) -> Result<std::vector<PatchInProcess>> {
    asked = pid;
    return std::vector<PatchInProcess>{{"foo-fix-1", 1, "libfoo.so.1", build_id},
                                       {"foo-fix-2", 2, "libfoo.so.1", build_id}};
  };
  std::vector<std::string> warnings;
  mark_patched(procs, reader, &warnings);
  EXPECT_EQ(asked, s.h->pid());
  ASSERT_EQ(procs[0].objects.size(), 1u);
  EXPECT_EQ(procs[0].objects[0].patched_by, "foo-fix-2") << "the newest patch version";
  EXPECT_EQ(procs[0].objects[0].build_id, build_id) << "read through map_files of a deleted file";
  EXPECT_TRUE(procs[0].fully_patched());
}

TEST(MarkPatched, OtherBuildIdIsNotPatched) {
  StaleHolder s;
  std::vector<StaleProcess> procs{s.proc};
  RegistryReader reader = [](pid_t) -> Result<std::vector<PatchInProcess>> {
    return std::vector<PatchInProcess>{{"foo-fix-1", 1, "libfoo.so.1", std::string(40, 'a')}};
  };
  mark_patched(procs, reader, nullptr);
  EXPECT_TRUE(procs[0].objects[0].patched_by.empty());
  EXPECT_FALSE(procs[0].fully_patched());
}

TEST(MarkPatched, RegistryErrorBecomesAWarningAndTheProcessStaysStale) {
  StaleHolder s;
  std::vector<StaleProcess> procs{s.proc};
  RegistryReader reader = [](pid_t pid) -> Result<std::vector<PatchInProcess>> {
    return make_error("read registry of pid {}: corrupt", pid);
  };
  std::vector<std::string> warnings;
  mark_patched(procs, reader, &warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("corrupt"), std::string::npos);
  EXPECT_FALSE(procs[0].fully_patched());
}

TEST(MarkPatched, ProcessWithoutAnonymousCodeIsNotAskedWhenSoRequested) {
  StaleHolder s;
  EXPECT_FALSE(s.proc.anonymous_code) << "the holder runs only code from files";
  std::vector<StaleProcess> procs{s.proc};
  int asked = 0;
  RegistryReader reader = [&](pid_t) -> Result<std::vector<PatchInProcess>> {
    ++asked;
    return std::vector<PatchInProcess>{};
  };
  mark_patched(procs, reader, nullptr, /*only_anonymous_code=*/true);
  EXPECT_EQ(asked, 0);
  procs[0].anonymous_code = true;
  mark_patched(procs, reader, nullptr, /*only_anonymous_code=*/true);
  EXPECT_EQ(asked, 1);
}

TEST(KernelLivepatches, ReadsEnabledAndTransitionFromSysfs) {
  TempDir d;
  mkdirs(d / "sys/kernel/livepatch/nines_a");
  mkdirs(d / "sys/kernel/livepatch/nines_b");
  write_file(d / "sys/kernel/livepatch/nines_a/enabled", "1\n");
  write_file(d / "sys/kernel/livepatch/nines_a/transition", "0\n");
  write_file(d / "sys/kernel/livepatch/nines_b/enabled", "0\n");
  auto lps = kernel_livepatches(Root(d.path()));
  ASSERT_EQ(lps.size(), 2u);
  EXPECT_EQ(lps[0].name, "nines_a");
  EXPECT_TRUE(lps[0].enabled);
  EXPECT_FALSE(lps[1].enabled);
  EXPECT_TRUE(kernel_livepatches(Root(d / "nothing")).empty());
}

}  // namespace
}  // namespace nines::advisor
