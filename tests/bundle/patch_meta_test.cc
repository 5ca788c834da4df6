// Reading `.nines.meta` from a real relocatable object (gcc + objcopy), and reconciling the
// manifest with it as `bundle create` does.
#include <gtest/gtest.h>

#include "bundle/patch_meta.h"
#include "test_util.h"

namespace nines::bundle {
namespace {

using testing::kSampleMeta;
using testing::make_patch_object;
using testing::TempDir;

TEST(PatchMeta, ReadsMetaSectionOfAPatchObject) {
  TempDir dir;
  std::string path = make_patch_object(dir, kSampleMeta);
  ASSERT_FALSE(path.empty());
  auto bytes = read_file(path);
  ASSERT_TRUE(bytes.ok());
  auto meta = read_patch_meta(*bytes);
  ASSERT_TRUE(meta.ok()) << meta.error().message;
  EXPECT_EQ((*meta)["kind"], "userspace");
  EXPECT_EQ((*meta)["target"]["build_id"], "abcdef0123456789");
}

TEST(PatchMeta, RefusesObjectWithoutMetaSection) {
  TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir / "p.c", "int f(void) { return 0; }\n"));
  ASSERT_TRUE(run_checked({"gcc", "-c", dir / "p.c", "-o", dir / "p.o"}).ok());
  auto meta = read_patch_meta(*read_file(dir / "p.o"));
  ASSERT_FALSE(meta.ok());
  EXPECT_NE(meta.error().message.find("no .nines.meta section"), std::string::npos)
      << meta.error().message;
}

TEST(PatchMeta, RefusesBytesThatAreNotElf) {
  auto meta = read_patch_meta("#!/bin/sh\necho not a patch\n");
  ASSERT_FALSE(meta.ok());
  EXPECT_NE(meta.error().message.find("not an ELF file"), std::string::npos)
      << meta.error().message;
}

TEST(PatchMeta, RefusesMetaThatIsNotFormat1Json) {
  TempDir dir;
  std::string path = make_patch_object(dir, R"({"format":2,"kind":"userspace"})");
  auto meta = read_patch_meta(*read_file(path));
  ASSERT_FALSE(meta.ok());
  EXPECT_NE(meta.error().message.find("\"format\" is not 1"), std::string::npos);
  TempDir dir2;
  auto junk = read_patch_meta(*read_file(make_patch_object(dir2, "{not json")));
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().message.find("not a JSON object"), std::string::npos);
}

TEST(PatchMeta, ReconcileFillsTargetFromThePatch) {
  auto meta = nlohmann::json::parse(kSampleMeta);
  auto m = parse_manifest(R"(id = "fix-1"
version = 1
kind = "userspace"
published = "2026-11-29T18:00:00Z"
)",
                          /*require_target=*/false);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_TRUE(reconcile_with_patch(*m, meta).ok());
  EXPECT_EQ(m->target_name, "libfoo.so.1");
  EXPECT_EQ(m->target_build_id, "abcdef0123456789");
  EXPECT_TRUE(validate_manifest(*m).ok());
}

TEST(PatchMeta, ReconcileRefusesManifestThatContradictsThePatch) {
  auto meta = nlohmann::json::parse(kSampleMeta);
  Manifest m = testing::sample_manifest();
  m.target_build_id = "ffff";
  auto s = reconcile_with_patch(m, meta);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "manifest target.build_id 'ffff' contradicts the patch object ('abcdef0123456789')");

  m = testing::sample_manifest();
  m.target_name = "libbar.so.2";
  ASSERT_FALSE(reconcile_with_patch(m, meta).ok());

  m = testing::sample_manifest();
  m.kind = "kernel";
  s = reconcile_with_patch(m, meta);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("manifest kind 'kernel'"), std::string::npos);

  m = testing::sample_manifest();
  m.id = "other-fix";
  ASSERT_FALSE(reconcile_with_patch(m, meta).ok());
}

TEST(PatchMeta, ReconcileUsesKernelReleaseForKernelPatches) {
  auto meta = nlohmann::json::parse(
      R"({"format":1,"kind":"kernel","id":"k1","kernel":{"release":"6.1.0-27-cloud-amd64","build_id":""},"functions":[]})");
  Manifest m = testing::sample_manifest();
  m.id = "k1";
  m.kind = "kernel";
  m.target_name.clear();
  m.target_build_id.clear();
  ASSERT_TRUE(reconcile_with_patch(m, meta).ok());
  EXPECT_EQ(m.kernel_release, "6.1.0-27-cloud-amd64");
  EXPECT_TRUE(validate_manifest(m).ok()) << validate_manifest(m).error().message;
}

}  // namespace
}  // namespace nines::bundle
