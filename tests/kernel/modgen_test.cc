#include "klp/modgen.h"

#include <gtest/gtest.h>

#include "klp/meta.h"

namespace nines::klp {
namespace {

ModuleSource sample() {
  ModuleSource m;
  m.module_name = "nines_fix_1_0000abcd";
  m.patch_id = "fix-1";
  m.source_paths = {"/src/fix.c"};
  m.spec.replacements = {{"vmlinux", "cmdline_proc_show", "new_show"},
                         {"binfmt_misc", "bm_status_read", "new_read"}};
  m.spec.callbacks = {{"binfmt_misc", "pre_patch", "my_pre"}};
  m.old_sympos = {0, 2};
  return m;
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(ModGen, GeneratesACumulativeKlpPatch) {
  std::string c = generate_module_c(sample());
  EXPECT_TRUE(has(c, "#include \"/src/fix.c\""));
  EXPECT_TRUE(has(c, ".replace = true"));
  EXPECT_TRUE(has(c, "klp_enable_patch(&nines_patch)"));
  EXPECT_TRUE(has(c, "MODULE_INFO(livepatch, \"Y\")"));
  EXPECT_TRUE(
      has(c, ".old_name = \"cmdline_proc_show\", .new_func = (void *)new_show, .old_sympos = 0"));
  EXPECT_TRUE(
      has(c, ".old_name = \"bm_status_read\", .new_func = (void *)new_read, .old_sympos = 2"));
  EXPECT_TRUE(has(c, ".name = \"binfmt_misc\""));
  EXPECT_TRUE(has(c, ".callbacks.pre_patch = my_pre"));
  EXPECT_TRUE(has(c, "static char *nines_id = \"fix-1\""));
  EXPECT_TRUE(has(c, "module_param(nines_version, long, 0444)"));
}

TEST(ModGen, ModuleNamesAreSafeAndFitTheKernelLimit) {
  EXPECT_EQ(module_name_for("fix-1.2", "0a1b2c3d"), "nines_fix_1_2_0a1b2c3d");
  std::string n = module_name_for(std::string(200, 'x'), "0a1b2c3d");
  EXPECT_EQ(n.size(), 55u);  // MODULE_NAME_LEN is 56 with the NUL
  EXPECT_TRUE(n.ends_with("_0a1b2c3d"));
}

TEST(Meta, RoundTripsAndRefusesUserSpacePatches) {
  KernelPatchMeta m{"fix-1",
                    "6.1.0-57-cloud-amd64",
                    "abcd",
                    "nines_fix_1_x",
                    {{"cmdline_proc_show", "new_show", "vmlinux", 0}},
                    {".klp.sym.vmlinux.x,0"}};
  auto back = meta_from_json(meta_to_json(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->release, m.release);
  EXPECT_EQ(back->module_name, m.module_name);
  EXPECT_EQ(back->functions.at(0).object, "vmlinux");
  auto j = meta_to_json(m);
  j["kind"] = "userspace";
  EXPECT_FALSE(meta_from_json(j).ok());
  j = meta_to_json(m);
  j["module"] = "../../evil";
  EXPECT_FALSE(meta_from_json(j).ok());
  j = meta_to_json(m);
  j["kernel"].erase("release");
  auto e = meta_from_json(j);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("kernel.release"), std::string::npos);
}

}  // namespace
}  // namespace nines::klp
