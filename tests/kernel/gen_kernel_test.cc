// The kernel generator's own pieces without a kernel: the sympos of a unit's static
// among same-named ones, which files a diff touches, and the unit emitter on two builds
// of a small C file compiled here the way kbuild compiles (-ffunction-sections
// -fdata-sections, -pg -mfentry -mrecord-mcount for the ftrace entries).
#include <filesystem>

#include <gtest/gtest.h>

#include "core/fd.h"
#include "core/subprocess.h"
#include "elf/relocatable.h"
#include "gen/object_diff.h"
#include "klp/gen_object.h"
#include "klp/gen_tree.h"

namespace nines::klp {
namespace {

namespace fs = std::filesystem;

TEST(KernelSymbolIndex, AUniqueNameHasSymposZero) {
  KernelSymbolIndex s;
  s.add_system_map("ffffffff81000000 t show\nffffffff81000010 t other\n");
  auto p = s.sympos("vmlinux", "show", {"show"});
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(*p, 0);
}

TEST(KernelSymbolIndex, ADuplicateStaticIsTheOneAmongItsUnitsNeighbours) {
  KernelSymbolIndex s;
  s.add_system_map(
      "1 t show\n2 t a_open\n3 t a_init\n"                 // unit a
      "4 t show\n5 t b_open\n6 t b_write\n7 t b_read\n"   // unit b
      "8 t c_open\n9 t c_x\n10 t c_y\n11 t c_z\n12 t show\n");
  auto p = s.sympos("vmlinux", "show", {"show", "b_open", "b_write", "b_read"});
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(*p, 2);
}

TEST(KernelSymbolIndex, NeighboursThatDoNotTellAreRefused) {
  KernelSymbolIndex s;
  s.add_system_map("1 t show\n2 t x\n3 t show\n");
  auto p = s.sympos("vmlinux", "show", {"show", "unrelated"});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("2 symbols named 'show'"), std::string::npos)
      << p.error().message;
}

TEST(KernelSymbolIndex, ModuleExportsComeFromSymvers) {
  KernelSymbolIndex s;
  s.add_symvers("0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x2\tfoo_fn\tfs/foo\tEXPORT_SYMBOL_GPL\t\n");
  EXPECT_EQ(s.exported_by("printk"), "vmlinux");
  EXPECT_EQ(s.exported_by("foo_fn"), "foo");
  EXPECT_EQ(s.exported_by("nothing"), "");
}

class KernelUnit : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nines-kgen-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string compile(const std::string& name, const std::string& text) {
    const std::string c = dir_ + "/" + name + ".c", o = dir_ + "/" + name + ".o";
    EXPECT_TRUE(write_file_atomic(c, text).ok());
    auto r = run_checked({"gcc", "-O2", "-g", "-ffunction-sections", "-fdata-sections", "-pg",
                          "-mfentry", "-mrecord-mcount", "-fno-pic", "-mcmodel=kernel", "-c",
                          "-o", o, c});
    EXPECT_TRUE(r.ok()) << r.error().message;
    return o;
  }

  std::string dir_;
};

constexpr const char* kOriginal = R"(
static int counter;
int twice(int x) { return 2 * x; }
static __attribute__((noinline)) int show(int x) { counter++; return twice(x) + 1; }
int entry(int x) { return show(x); }
__attribute__((no_instrument_function)) int raw(int x) { return x + 3; }
)";

TEST_F(KernelUnit, AChangedStaticIsEmittedAndReferencesBecomeKernelSymbols) {
  std::string o = compile("o", kOriginal);
  std::string patched = kOriginal;
  patched.replace(patched.find("twice(x) + 1"), 12, "twice(x) + 7");
  std::string p = compile("p", patched);
  auto oo = elf::RelocatableObject::open(o);
  auto po = elf::RelocatableObject::open(p);
  ASSERT_TRUE(oo.ok() && po.ok());
  auto d = gen::diff_objects(*oo, *po);
  ASSERT_TRUE(d.ok());
  KernelSymbolIndex syms;
  syms.add_system_map("1 T twice\n2 t show\n3 T entry\n4 b counter\n5 T raw\n");
  KernelUnitInput in{"t.c", "vmlinux", &*oo, &*po, &*d};
  KernelUnitResult r = emit_kernel_unit(in, syms, {}, 0);
  ASSERT_TRUE(r.refusals.empty()) << r.refusals.front();
  ASSERT_EQ(r.functions.size(), 1u);
  EXPECT_EQ(r.functions[0].name, "show");
  EXPECT_EQ(r.functions[0].object, "vmlinux");
  // The static counter stays the kernel's: an alias resolved as .klp.sym.vmlinux.counter.
  bool counter = false;
  for (const auto& [alias, k] : r.aliases) counter |= k.name == "counter" && k.object == "vmlinux";
  EXPECT_TRUE(counter);
  // Only show's code is in the unit object, with its ftrace entry.
  std::set<std::string> names;
  for (const auto& s : r.object.sections) names.insert(s.name);
  EXPECT_TRUE(names.count(".text.show"));
  EXPECT_FALSE(names.count(".text.entry"));
  EXPECT_FALSE(names.count(".text.twice"));
  EXPECT_TRUE(names.count("__mcount_loc"));
  const std::string out = dir_ + "/unit.o";
  ASSERT_TRUE(elf::write_relocatable(r.object, out).ok());
  EXPECT_TRUE(elf::RelocatableObject::open(out).ok());
}

TEST_F(KernelUnit, AChangedFunctionWithoutFtraceEntryIsRefused) {
  std::string o = compile("o", kOriginal);
  std::string patched = kOriginal;
  patched.replace(patched.find("x + 3"), 5, "x + 4");
  std::string p = compile("p", patched);
  auto oo = elf::RelocatableObject::open(o);
  auto po = elf::RelocatableObject::open(p);
  ASSERT_TRUE(oo.ok() && po.ok());
  auto d = gen::diff_objects(*oo, *po);
  ASSERT_TRUE(d.ok());
  KernelSymbolIndex syms;
  KernelUnitInput in{"t.c", "vmlinux", &*oo, &*po, &*d};
  KernelUnitResult r = emit_kernel_unit(in, syms, {}, 0);
  ASSERT_EQ(r.refusals.size(), 1u);
  EXPECT_NE(r.refusals[0].find("'raw' changed, but it has no ftrace entry"), std::string::npos)
      << r.refusals[0];
}

TEST_F(KernelUnit, ChangedInitializedDataIsRefusedByName) {
  std::string o = compile("o", "int limit = 4;\nint get(void) { return limit; }\n");
  std::string p = compile("p", "int limit = 8;\nint get(void) { return limit; }\n");
  auto oo = elf::RelocatableObject::open(o);
  auto po = elf::RelocatableObject::open(p);
  ASSERT_TRUE(oo.ok() && po.ok());
  auto d = gen::diff_objects(*oo, *po);
  ASSERT_TRUE(d.ok());
  KernelSymbolIndex syms;
  KernelUnitInput in{"t.c", "vmlinux", &*oo, &*po, &*d};
  KernelUnitResult r = emit_kernel_unit(in, syms, {}, 0);
  ASSERT_FALSE(r.refusals.empty());
  EXPECT_NE(r.refusals[0].find("data 'limit' changed"), std::string::npos) << r.refusals[0];
}

TEST_F(KernelUnit, DiffFilesAreSortedIntoUnitsHeadersAndTheRest) {
  const std::string d = dir_ + "/fix.patch";
  ASSERT_TRUE(write_file_atomic(d,
                                "--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n@@ -1 +1 @@\n-a\n+b\n"
                                "--- a/fs/proc/fd.h\n+++ b/fs/proc/fd.h\n@@ -1 +1 @@\n-a\n+b\n"
                                "--- a/Documentation/x.rst\n+++ b/Documentation/x.rst\n@@ -1 +1 @@\n-a\n+b\n")
                  .ok());
  auto f = files_of_diffs({d});
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->c_files, std::vector<std::string>{"fs/proc/cmdline.c"});
  EXPECT_EQ(f->headers, std::vector<std::string>{"fs/proc/fd.h"});
  EXPECT_EQ(f->other_files, std::vector<std::string>{"Documentation/x.rst"});
}

}  // namespace
}  // namespace nines::klp
