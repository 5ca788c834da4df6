#include "klp/symbols.h"

#include <gtest/gtest.h>

namespace nines::klp {
namespace {

KernelSymbols fixture() {
  KernelSymbols k;
  k.add_symvers("0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x2\tseq_puts\tvmlinux\tEXPORT_SYMBOL\t\n");
  k.add_system_map(
      "ffffffff81000000 T printk\n"
      "ffffffff81000100 t version_proc_show\n"
      "ffffffff81000200 t dup_static\n"
      "ffffffff81000300 t dup_static\n"
      "ffffffff81000400 b shared_name\n"
      "ffffffff81000500 t parse_opts.isra.0\n"
      "0000000000000000 A absolute_only\n");
  k.add_module_symbols("binfmt_misc", {"enabled", "bm_status_read", "shared_name"});
  return k;
}

TEST(Symbols, ExportedNamesComeFromModuleSymvers) {
  KernelSymbols k = fixture();
  EXPECT_TRUE(k.exported("printk"));
  EXPECT_FALSE(k.exported("version_proc_show"));
}

TEST(Symbols, UniqueStaticVmlinuxSymbolGetsSymposZero) {
  auto r = fixture().resolve("version_proc_show", {}, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->klp_name(), ".klp.sym.vmlinux.version_proc_show,0");
}

TEST(Symbols, ModuleSymbolResolvesToThatModule) {
  auto r = fixture().resolve("enabled", {"binfmt_misc"}, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->klp_name(), ".klp.sym.binfmt_misc.enabled,0");
}

TEST(Symbols, AmbiguousNamesAskForAHint) {
  KernelSymbols k = fixture();
  auto dup = k.resolve("dup_static", {}, {});
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("defined 2 times in vmlinux"), std::string::npos);
  EXPECT_NE(dup.error().message.find("NINES_KSYM"), std::string::npos);
  auto both = k.resolve("shared_name", {"binfmt_misc"}, {});
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.error().message.find("vmlinux and binfmt_misc"), std::string::npos);
  auto hinted = k.resolve("dup_static", {}, {{"vmlinux", "dup_static", 2}});
  ASSERT_TRUE(hinted.ok());
  EXPECT_EQ(hinted->klp_name(), ".klp.sym.vmlinux.dup_static,2");
}

TEST(Symbols, UnknownNameIsAnErrorWhenSystemMapIsKnown) {
  auto r = fixture().resolve("no_such_symbol", {"binfmt_misc"}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no_such_symbol"), std::string::npos);
  EXPECT_FALSE(fixture().resolve("absolute_only", {}, {}).ok());
}

TEST(Symbols, WithoutSystemMapUnknownNamesAreAssumedUniqueInVmlinux) {
  KernelSymbols k;
  k.add_system_map(
      "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n");
  EXPECT_FALSE(k.has_system_map());
  auto r = k.resolve("anything", {}, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->klp_name(), ".klp.sym.vmlinux.anything,0");
}

TEST(Symbols, MissingFunctionNamesItsGccSpecialisations) {
  auto r = fixture().function_pos("vmlinux", "parse_opts", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("but has parse_opts.isra.0"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(*fixture().function_pos("vmlinux", "parse_opts.isra.0", {}), 0);
}

TEST(Symbols, FunctionToReplaceMustExistOnceInItsObject) {
  KernelSymbols k = fixture();
  EXPECT_EQ(*k.function_pos("vmlinux", "version_proc_show", {}), 0);
  EXPECT_FALSE(k.function_pos("vmlinux", "missing_fn", {}).ok());
  EXPECT_FALSE(k.function_pos("vmlinux", "dup_static", {}).ok());
  EXPECT_EQ(*k.function_pos("vmlinux", "dup_static", {{"vmlinux", "dup_static", 1}}), 1);
  EXPECT_FALSE(k.function_pos("binfmt_misc", "nope", {}).ok());
  // An object whose symbols are unknown is left to the kernel.
  EXPECT_EQ(*k.function_pos("other_mod", "anything", {}), 0);
}

}  // namespace
}  // namespace nines::klp
