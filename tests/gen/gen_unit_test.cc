// Unit tests of the generator's passes on small C files compiled here with gcc, the way
// the build wrapper compiles (-O2 -g -fPIC -ffunction-sections -fdata-sections).
#include <gtest/gtest.h>

#include <elf.h>

#include <algorithm>
#include <filesystem>

#include "core/fd.h"
#include "core/subprocess.h"
#include "elf/relocatable.h"
#include "gen/layout_diff.h"
#include "gen/object_diff.h"
#include "gen/patch_unit.h"
#include "gen/source_lines.h"
#include "gen/target_symbols.h"
#include "elf/elf_file.h"
#include "gen/unified_diff.h"

namespace nines::gen {
namespace {

namespace fs = std::filesystem;

// Compiles `code` as NAME.c into NAME.o and reads it.
elf::RelocatableObject compile(const std::string& name, const std::string& code) {
  fs::create_directories(WORK_DIR);
  std::string c = std::string(WORK_DIR) + "/" + name + ".c";
  std::string o = std::string(WORK_DIR) + "/" + name + ".o";
  EXPECT_TRUE(write_file_atomic(c, code));
  auto r = run_checked({"gcc", "-O2", "-g", "-fPIC", "-ffunction-sections", "-fdata-sections",
                        "-c", c, "-o", o});
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  auto obj = elf::RelocatableObject::open(o);
  EXPECT_TRUE(obj) << (obj ? "" : obj.error().message);
  return std::move(*obj);
}

std::string path_of(const std::string& name) { return std::string(WORK_DIR) + "/" + name + ".o"; }

Change change_of(const ObjectDiff& d, const elf::RelocatableObject& p, const std::string& name) {
  for (const auto& s : d.symbols)
    if (p.symbol(s.patched).name == name) return s.change;
  ADD_FAILURE() << "no symbol " << name;
  return Change::kSame;
}

const char* kLib = R"(
#include <string.h>
#include <stdlib.h>
static int limit = 16;
static const char greeting[] = "hello";
static int helper(int x) { return x > limit ? -1 : x * 2; }
int parse(const char* s) { return helper((int)strlen(s)) + greeting[0]; }
int other(int x) { static int calls; calls++; return x + calls; }
__attribute__((noinline)) static int scale(int x) { return x * 3 + limit; }
int uses_scale(int x) { return scale(x) + 1; }
void set_limit(int l) { limit = l; }
)";

TEST(ObjectDiff, IdenticalBuildsHaveNoChange) {
  auto a = compile("same_a", kLib);
  auto b = compile("same_b", kLib);
  auto d = diff_objects(a, b);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->changed_or_new_function());
}

TEST(ObjectDiff, AChangedStaticFunctionInlinedIntoItsCallerChangesTheCaller) {
  auto a = compile("inl_a", kLib);
  std::string fixed = kLib;
  fixed.replace(fixed.find("x > limit"), 9, "x >= limit");
  auto b = compile("inl_b", fixed);
  auto d = diff_objects(a, b);
  ASSERT_TRUE(d);
  EXPECT_EQ(change_of(*d, b, "parse"), Change::kChanged);
  EXPECT_EQ(change_of(*d, b, "other"), Change::kSame);
  EXPECT_EQ(change_of(*d, b, "uses_scale"), Change::kSame);
}

TEST(ObjectDiff, CodeThatOnlyMovedIsTheSame) {
  auto a = compile("move_a", kLib);
  // A new function before the others moves every offset in the section layout.
  std::string moved = std::string("int first_thing(int x) { return x + 41; }\n") + kLib;
  auto b = compile("move_b", moved);
  auto d = diff_objects(a, b);
  ASSERT_TRUE(d);
  EXPECT_EQ(change_of(*d, b, "first_thing"), Change::kNew);
  EXPECT_EQ(change_of(*d, b, "parse"), Change::kSame);
  EXPECT_EQ(change_of(*d, b, "other"), Change::kSame);
}

TEST(ObjectDiff, StaticLocalsCorrelateAcrossRenumbering) {
  auto a = compile("loc_a", kLib);
  std::string b_src = std::string("int counter_fn(void) { static int calls; return ++calls; }\n") + kLib;
  auto b = compile("loc_b", b_src);
  auto d = diff_objects(a, b);
  ASSERT_TRUE(d);
  // other()'s `calls` is calls.1 in b (calls.0 is counter_fn's): still correlated.
  EXPECT_EQ(change_of(*d, b, "other"), Change::kSame);
}

TEST(ObjectDiff, AChangedInitialisedStaticIsRefusedByName) {
  auto a = compile("data_a", kLib);
  std::string fixed = kLib;
  fixed.replace(fixed.find("limit = 16"), 10, "limit = 12");
  auto b = compile("data_b", fixed);
  auto d = diff_objects(a, b);
  ASSERT_TRUE(d);
  UnitInput in{"lib.c", &a, &b, &*d};
  UnitPlan plan = plan_unit(in);
  ASSERT_EQ(plan.refusals.size(), 1u);
  EXPECT_NE(plan.refusals[0].find("'limit'"), std::string::npos) << plan.refusals[0];
  EXPECT_NE(plan.refusals[0].find("initial value"), std::string::npos);
}

TEST(ObjectDiff, ANewHelperAndItsNewTableGoIntoThePatch) {
  auto a = compile("new_a", kLib);
  std::string fixed = kLib;
  fixed += R"(
static const int allowed[8] = {1, 0, 1, 1, 0, 1, 1, 1};
__attribute__((noinline)) static int check_allowed(int c) { return c >= 0 && c < 8 && allowed[c]; }
int checked(int c) { return check_allowed(c) ? parse("x") : -1; }
)";
  auto b = compile("new_b", fixed);
  auto d = diff_objects(a, b);
  ASSERT_TRUE(d);
  UnitInput in{"lib.c", &a, &b, &*d};
  UnitPlan plan = plan_unit(in);
  EXPECT_TRUE(plan.refusals.empty());
  EXPECT_NE(std::find(plan.new_functions.begin(), plan.new_functions.end(), "checked"), plan.new_functions.end());
  EXPECT_NE(std::find(plan.new_data.begin(), plan.new_data.end(), "allowed"), plan.new_data.end());
}

TEST(LayoutDiff, AMemberAddedToAStructIsNamedWithTheStructure) {
  const char* before = "struct conn { int fd; char* buf; unsigned len; };\n"
                       "int use(struct conn* c) { return c->fd + (int)c->len; }\n";
  const char* after = "struct conn { int fd; char* buf; unsigned cap; unsigned len; };\n"
                      "int use(struct conn* c) { return c->fd + (int)c->len + (int)c->cap; }\n";
  compile("lay_a", before);
  compile("lay_b", after);
  auto a = read_struct_layouts(path_of("lay_a"));
  auto b = read_struct_layouts(path_of("lay_b"));
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b);
  auto why = compare_layouts(*a, *b);
  ASSERT_EQ(why.size(), 1u);
  EXPECT_NE(why[0].find("struct conn"), std::string::npos) << why[0];
  EXPECT_NE(why[0].find("member cap added"), std::string::npos) << why[0];
  EXPECT_NE(why[0].find("member len moved"), std::string::npos) << why[0];
}

TEST(LayoutDiff, UnchangedStructsGiveNothing) {
  const char* src = "typedef struct { int a; long b; } pair;\nlong sum(pair* p) { return p->a + p->b; }\n";
  compile("lay_same_a", src);
  compile("lay_same_b", src);
  auto a = read_struct_layouts(path_of("lay_same_a"));
  auto b = read_struct_layouts(path_of("lay_same_b"));
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->count("pair"), 1u);
  EXPECT_TRUE(compare_layouts(*a, *b).empty());
}

TEST(Names, NumericSuffixesAndColdParts) {
  EXPECT_EQ(strip_numeric_suffixes("foo.isra.0"), "foo.isra");
  EXPECT_EQ(strip_numeric_suffixes("buf.12"), "buf");
  EXPECT_EQ(strip_numeric_suffixes("f.part.1.cold"), "f.part.cold");
  EXPECT_EQ(cold_parent("f.cold"), "f");
  EXPECT_EQ(cold_parent("f.part.0.cold.3"), "f.part.0");
  EXPECT_EQ(cold_parent("coldfish"), "");
  EXPECT_EQ(source_name("foo.constprop.0"), "foo");
}

const char* kDiff = R"(From 1234 Mon Sep 17 00:00:00 2001
Subject: [PATCH] lib: check the length

---
 lib/x.c | 3 +++
diff --git a/lib/x.c b/lib/x.c
index 1..2 100644
--- a/lib/x.c
+++ b/lib/x.c
@@ -10,6 +10,9 @@ int parse(const char* s) {
   int n = strlen(s);
   if (n == 0)
     return 0;
+  if (n > 64)
+    return -1;
+
   assert(n > 0);
   return n;
 }
--- a/doc/NEWS
+++ b/doc/NEWS
@@ -1,1 +1,2 @@
 old
+new
)";

TEST(UnifiedDiff, ParsesGitMailsAndAddsLineDirectives) {
  auto d = parse_unified_diff(kDiff, "fix.patch");
  ASSERT_TRUE(d) << d.error().message;
  ASSERT_EQ(d->files.size(), 2u);
  EXPECT_EQ(d->files[0].path, "lib/x.c");
  EXPECT_EQ(d->files[1].path, "doc/NEWS");
  const Hunk& h = d->files[0].hunks[0];
  EXPECT_EQ(h.first_changed_old, 13);
  UnifiedDiff fixed = with_line_directives(*d);
  const Hunk& fh = fixed.files[0].hunks[0];
  // After the three added lines, the context line `assert(...)` was line 13.
  auto it = std::find(fh.lines.begin(), fh.lines.end(), "+#line 13");
  ASSERT_NE(it, fh.lines.end()) << fixed.text();
  EXPECT_EQ(*(it + 1), "   assert(n > 0);");
  EXPECT_NE(fixed.text().find("@@ -10,6 +10,10 @@ int parse"), std::string::npos) << fixed.text();
  // Not C: untouched.
  EXPECT_EQ(fixed.files[1].hunks[0].lines.size(), 2u);
}

TEST(UnifiedDiff, RefusesTruncatedHunks) {
  auto d = parse_unified_diff("--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,3 @@\n a\n-b\n", "bad.patch");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("truncated"), std::string::npos);
}

TEST(RelocatableWriter, WritesAnObjectTheLinkerAccepts) {
  elf::NewObject o;
  elf::NewSection text;
  text.name = ".text.answer";
  text.type = SHT_PROGBITS;
  text.flags = SHF_ALLOC | SHF_EXECINSTR;
  text.addralign = 16;
  text.data = std::string("\xb8\x2a\x00\x00\x00\xc3", 6);  // mov $42,%eax; ret
  o.sections.push_back(text);
  o.symbols.push_back({"answer", STT_FUNC, STB_GLOBAL, STV_DEFAULT, 1, 0, 6});
  std::string path = std::string(WORK_DIR) + "/written.o";
  fs::create_directories(WORK_DIR);
  ASSERT_TRUE(elf::write_relocatable(o, path));
  auto back = elf::RelocatableObject::open(path);
  ASSERT_TRUE(back) << back.error().message;
  bool found = false;
  for (const auto& s : back->symbols())
    if (s.name == "answer" && s.type == STT_FUNC && s.size == 6) found = true;
  EXPECT_TRUE(found);
  auto linked = run_checked({"gcc", "-shared", "-nostartfiles", "-o",
                             std::string(WORK_DIR) + "/written.so", path});
  EXPECT_TRUE(linked) << (linked ? "" : linked.error().message);
}

}  // namespace
}  // namespace nines::gen

namespace nines::gen {
namespace {

TEST(UnifiedDiff, ADirectiveFollowsAddedPreprocessorBlocks) {
  std::string text = read_file(std::string(SOURCE_DIR) + "/diffs/cve-2024-45491-hunk.patch").value();
  auto d = parse_unified_diff(text, "cve.patch");
  ASSERT_TRUE(d) << d.error().message;
  std::string out = with_line_directives(*d).text();
  EXPECT_NE(out.find("+#endif\n+#line 6893\n       newE->defaultAtts\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace nines::gen

namespace nines::gen {
namespace {

// A changed function that uses the second of two string literals: the emitted object,
// once linked (ld merges string sections), must still point at that string.
TEST(PatchUnit, AStringLiteralOfTheChangedFunctionSurvivesTheLink) {
  const char* before = "int pick(const char* s) { return __builtin_strcmp(s, \"first-string\") == 0; }\n";
  const char* after = "const char* pick_name(int x) { return x ? \"first-string\" : \"second\"; }\n"
                      "int pick(const char* s) { return __builtin_strcmp(s, \"second\") == 0; }\n";
  auto a = compile("str_a", before);
  auto b = compile("str_b", after);
  auto d = diff_objects(a, b);
  ASSERT_TRUE(d);
  UnitInput in{"str.c", &a, &b, &*d};
  UnitPlan plan = plan_unit(in);
  ASSERT_TRUE(plan.refusals.empty());
  // No target references here (strcmp is libc's): an empty symbol table will do.
  auto target = TargetSymbols::of(elf::ElfFile::open(path_of("str_a")).value(), "str_a.o");
  ASSERT_TRUE(target) << target.error().message;
  EmittedUnit e = emit_unit(in, plan, *target, plan.globals, 0);
  ASSERT_TRUE(e.refusals.empty()) << e.refusals[0];
  std::string o = std::string(WORK_DIR) + "/str_patch.o", so = std::string(WORK_DIR) + "/str_patch.so";
  ASSERT_TRUE(elf::write_relocatable(e.object, o));
  auto linked = run_checked({"gcc", "-shared", "-nostartfiles", "-Wl,-Bsymbolic", "-o", so, o});
  ASSERT_TRUE(linked) << linked.error().message;
  // The copies of pick and pick_name load string addresses with lea.
  auto dis = run_checked({"objdump", "-d", "-j", ".text", so});
  ASSERT_TRUE(dis);
  // Every lea of a string points at the start of one (a NUL before it or the section start).
  std::string bytes;
  {
    auto f = elf::ElfFile::open(so).value();
    bytes = std::string(f.section_data(".rodata").value());
    EXPECT_NE(bytes.find(std::string("second\0", 7)), std::string::npos);
    uint64_t rodata = 0;
    for (const auto& s : f.sections())
      if (s.name == ".rodata") rodata = s.addr;
    size_t pos = 0;
    int checked = 0;
    while ((pos = dis->find("lea    0x", pos)) != std::string::npos) {
      size_t hash = dis->find("# ", pos);
      size_t eol = dis->find('\n', pos);
      if (hash == std::string::npos || hash > eol) { pos = eol; continue; }
      uint64_t addr = std::stoull(dis->substr(hash + 2, dis->find(' ', hash + 2) - hash - 2), nullptr, 16);
      ASSERT_GE(addr, rodata);
      uint64_t off = addr - rodata;
      ASSERT_LT(off, bytes.size());
      EXPECT_TRUE(off == 0 || bytes[off - 1] == '\0') << "lea into the middle of a string at " << off;
      ++checked;
      pos = eol;
    }
    EXPECT_GT(checked, 0) << *dis;
  }
}

}  // namespace
}  // namespace nines::gen

#include "ulp/patch_object.h"

namespace nines::gen {
namespace {

TEST(PatchMeta, TargetRelocsRoundTripAndBadTypesAreRefused) {
  ulp::PatchMeta m;
  m.id = "fix";
  m.target_name = "libexpat.so.1";
  m.target_build_id = "30011e64";
  m.functions.push_back({"XML_ParseBuffer", "XML_ParseBuffer", 0x8680, 420, 0x1020});
  m.target_relocs.push_back({0x1043, ulp::TargetReloc::Kind::kPc32, "poolGrow", 0x4dc0, -4});
  m.target_relocs.push_back({0x4000, ulp::TargetReloc::Kind::kAbs64, "XmlInitEncoding", 0x9000, 0});
  auto j = ulp::meta_to_json(m);
  auto back = ulp::meta_from_json(j);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->target_relocs.size(), 2u);
  EXPECT_EQ(back->target_relocs[0].addend, -4);
  EXPECT_EQ(back->target_relocs[1].kind, ulp::TargetReloc::Kind::kAbs64);
  EXPECT_EQ(back->target_relocs[1].symbol, "XmlInitEncoding");
  j["target_relocs"][0]["type"] = "got";
  auto bad = ulp::meta_from_json(j);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("'got'"), std::string::npos) << bad.error().message;
  // A hand-written patch has none, and its JSON does not mention them.
  m.target_relocs.clear();
  EXPECT_FALSE(ulp::meta_to_json(m).contains("target_relocs"));
}

}  // namespace
}  // namespace nines::gen
