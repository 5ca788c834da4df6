#include "klp/spec.h"

#include <gtest/gtest.h>

namespace nines::klp {
namespace {

TEST(Spec, ReadsReplacementsOfVmlinuxAndModules) {
  PatchSpec s;
  ASSERT_TRUE(scan_patch_source(R"src(
static int new_show(void) { return 0; }
NINES_REPLACE(cmdline_proc_show, new_show);
NINES_REPLACE_IN(binfmt-misc, bm_status_read, new_read);
)src",
                                "p.c", s)
                  .ok());
  ASSERT_EQ(s.replacements.size(), 2u);
  EXPECT_EQ(s.replacements[0].object, "vmlinux");
  EXPECT_EQ(s.replacements[0].old_name, "cmdline_proc_show");
  EXPECT_EQ(s.replacements[0].new_name, "new_show");
  EXPECT_EQ(s.replacements[1].object, "binfmt_misc");  // kbuild spells dashes as underscores
  EXPECT_EQ(s.objects(), (std::vector<std::string>{"vmlinux", "binfmt_misc"}));
}

TEST(Spec, IgnoresMarkersInCommentsStringsAndDefines) {
  PatchSpec s;
  ASSERT_TRUE(scan_patch_source(R"src(
/* NINES_REPLACE(a, b) in a comment */
// NINES_REPLACE(c, d)
const char *x = "NINES_REPLACE(e, f)";
#define MY(o, n) NINES_REPLACE(o, n)
NINES_REPLACE(g, h);
)src",
                                "p.c", s)
                  .ok());
  ASSERT_EQ(s.replacements.size(), 1u);
  EXPECT_EQ(s.replacements[0].old_name, "g");
}

TEST(Spec, ReadsCallbacksAndSymbolHints) {
  PatchSpec s;
  ASSERT_TRUE(scan_patch_source(R"src(
NINES_REPLACE(f, g);
NINES_PRE_PATCH(pre);
NINES_POST_UNPATCH_IN(binfmt_misc, post);
NINES_KSYM(vmlinux, enabled, 2);
)src",
                                "p.c", s)
                  .ok());
  ASSERT_EQ(s.callbacks.size(), 2u);
  EXPECT_EQ(s.callbacks[0].object, "vmlinux");
  EXPECT_EQ(s.callbacks[0].kind, "pre_patch");
  EXPECT_EQ(s.callbacks[1].object, "binfmt_misc");
  EXPECT_EQ(s.callbacks[1].kind, "post_unpatch");
  ASSERT_EQ(s.hints.size(), 1u);
  EXPECT_EQ(s.hints[0].pos, 2);
  // A module object with only a callback is still an object of the patch.
  EXPECT_EQ(s.objects(), (std::vector<std::string>{"vmlinux", "binfmt_misc"}));
}

TEST(Spec, RefusesMalformedMarkersNamingFileAndLine) {
  PatchSpec s;
  auto r = scan_patch_source("\n\nNINES_REPLACE(only_one);\n", "fix.c", s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("fix.c:3"), std::string::npos) << r.error().message;
  EXPECT_FALSE(scan_patch_source("NINES_REPLACE(a, a);", "p.c", s).ok());
  EXPECT_FALSE(scan_patch_source("NINES_REPLACE(a b, c);", "p.c", s).ok());
  EXPECT_FALSE(scan_patch_source("NINES_KSYM(vmlinux, x, 0);", "p.c", s).ok());
}

TEST(Spec, AcceptsFunctionsGccRenamed) {
  PatchSpec s;
  ASSERT_TRUE(scan_patch_source("NINES_REPLACE(parse_opts.isra.0, new_parse);", "p.c", s).ok());
  EXPECT_EQ(s.replacements.at(0).old_name, "parse_opts.isra.0");
  EXPECT_FALSE(scan_patch_source("NINES_REPLACE(parse_opts., x);", "p.c", s).ok());
  EXPECT_FALSE(scan_patch_source("NINES_REPLACE(a, new.isra);", "p.c", s).ok());
}

TEST(Spec, RefusesTheSameFunctionReplacedTwice) {
  PatchSpec s;
  auto r = scan_patch_source("NINES_REPLACE(f, g);\nNINES_REPLACE(f, h);\n", "p.c", s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("already replaced by g"), std::string::npos);
}

}  // namespace
}  // namespace nines::klp
