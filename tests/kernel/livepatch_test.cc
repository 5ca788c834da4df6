// The sysfs/proc readers against a fake tree laid out like the kernel's.
#include "klp/livepatch.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "core/fd.h"

namespace nines::klp {
namespace {

namespace fs = std::filesystem;

class FakeKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("nines-klp-sysfs-" + std::to_string(getpid()));
    roots_.sys = (root_ / "sys").string();
    roots_.proc = (root_ / "proc").string();
    fs::create_directories(root_ / "sys/kernel/livepatch");
    fs::create_directories(root_ / "proc");
  }
  void TearDown() override { fs::remove_all(root_); }
  void put(const std::string& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    ASSERT_TRUE(write_file_atomic((root_ / rel).string(), text).ok());
  }
  void patch(const std::string& mod, const std::string& id, const std::string& version,
             bool enabled, bool transition) {
    put("sys/kernel/livepatch/" + mod + "/enabled", enabled ? "1\n" : "0\n");
    put("sys/kernel/livepatch/" + mod + "/transition", transition ? "1\n" : "0\n");
    fs::create_directories(root_ / "sys/kernel/livepatch" / mod / "vmlinux/cmdline_proc_show,1");
    if (!id.empty()) {
      put("sys/module/" + mod + "/parameters/nines_id", id + "\n");
      put("sys/module/" + mod + "/parameters/nines_version", version + "\n");
    }
  }
  void task(int pid, int tid, const std::string& comm, int state, const std::string& stack) {
    std::string d = "proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/";
    put(d + "comm", comm + "\n");
    put(d + "patch_state", std::to_string(state) + "\n");
    put(d + "stack", stack);
  }
  fs::path root_;
  KernelRoots roots_;
};

TEST_F(FakeKernel, ListsPatchesWithIdVersionStateAndFunctions) {
  patch("nines_fix_1_abcd", "fix-1", "3", true, false);
  patch("other_livepatch", "", "", true, true);
  auto ps = read_patches(roots_);
  ASSERT_TRUE(ps.ok()) << ps.error().message;
  ASSERT_EQ(ps->size(), 2u);
  const auto& p = (*ps)[0];
  EXPECT_EQ(p.module_name, "nines_fix_1_abcd");
  EXPECT_EQ(p.id, "fix-1");
  EXPECT_EQ(p.version, 3);
  EXPECT_TRUE(p.enabled);
  EXPECT_FALSE(p.transition);
  EXPECT_EQ(p.functions, std::vector<std::string>{"vmlinux:cmdline_proc_show"});
  EXPECT_EQ((*ps)[1].id, "");  // not built by nines
  EXPECT_TRUE((*ps)[1].transition);
}

TEST_F(FakeKernel, NoLivepatchFolderIsAnEmptyList) {
  fs::remove_all(root_ / "sys/kernel/livepatch");
  auto ps = read_patches(roots_);
  ASSERT_TRUE(ps.ok());
  EXPECT_TRUE(ps->empty());
  auto one = read_patch(roots_, "nines_x");
  ASSERT_TRUE(one.ok());
  EXPECT_FALSE(one->has_value());
}

TEST_F(FakeKernel, NinesModulesIncludeReplacedOnesStillLoaded) {
  put("sys/module/nines_old_1/parameters/nines_id", "fix\n");
  put("sys/module/ext4/parameters/foo", "1\n");
  EXPECT_EQ(nines_modules(roots_), std::vector<std::string>{"nines_old_1"});
}

TEST_F(FakeKernel, BlockingTasksAreThoseNotYetInTheTargetState) {
  task(1, 1, "init", 1, "[<0>] do_wait+0x114/0x320\n");
  task(42, 42, "sleep", 0, "[<0>] hrtimer_nanosleep+0x9e/0x170\n[<0>] common_nsleep+0x3f/0x50\n");
  task(42, 43, "sleep-thr", -1, "");
  task(77, 77, "self", 0, "");
  auto b = blocking_tasks(roots_, 1, /*self=*/77);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].pid, 42);
  EXPECT_EQ(b[0].comm, "sleep");
  EXPECT_EQ(describe(b[0]),
            "pid 42 (sleep): hrtimer_nanosleep+0x9e/0x170 <- common_nsleep+0x3f/0x50");
  // Reversed transition: the target is 0, so the patched task blocks.
  auto r = blocking_tasks(roots_, 0, 77);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].comm, "init");
}

TEST(Notes, FindsTheGnuBuildId) {
  // One unrelated note, then NT_GNU_BUILD_ID with a 4-byte id.
  std::string n;
  auto u32 = [&](uint32_t v) { n.append(reinterpret_cast<const char*>(&v), 4); };
  u32(6);
  u32(4);
  u32(1);
  n += std::string("Linux\0\0\0", 8);
  n += std::string("\1\2\3\4", 4);
  u32(4);
  u32(4);
  u32(3);
  n += std::string("GNU\0", 4);
  n += std::string("\xde\xad\xbe\xef", 4);
  EXPECT_EQ(build_id_from_notes(n), "deadbeef");
  EXPECT_EQ(build_id_from_notes(n.substr(0, 20)), "");  // truncated: no crash, no id
  EXPECT_EQ(build_id_from_notes(""), "");
}

}  // namespace
}  // namespace nines::klp
