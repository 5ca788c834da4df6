// The golden bundle of format 1 (tests/bundle/data/README.md): if it stops parsing or
// verifying, bundles already published would break too.
#include <gtest/gtest.h>

#include "bundle/bundle.h"
#include "bundle/patch_meta.h"
#include "core/fd.h"

namespace nines::bundle {
namespace {

const std::string kData = NINES_BUNDLE_TEST_DATA;

TEST(GoldenBundle, Format1BundleStillParsesAndVerifies) {
  auto bytes = read_bundle_file(kData + "/golden-v1.bundle");
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  auto b = open_verified(*bytes, kData + "/trust");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->format_version, 1u);
  EXPECT_EQ(b->manifest.id, "golden-fix");
  EXPECT_EQ(b->manifest.version, 3);
  EXPECT_EQ(b->manifest.kind, "userspace");
  EXPECT_EQ(b->manifest.target_name, "libgolden.so.1");
  EXPECT_EQ(b->manifest.target_build_id, "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(b->manifest.published_unix, 1795975200);
  ASSERT_EQ(b->manifest.cves.size(), 2u);
  EXPECT_EQ(b->manifest.cves[0].id, "CVE-2026-0001");
  EXPECT_EQ(b->manifest.cves[1].severity, "low");
  EXPECT_EQ(b->signer_fingerprint, "5b7f20ae7b1f181332fe082c1cb9c875");
  EXPECT_EQ(b->payload_sha256_hex,
            "84e97cade3c8af737807451693136ae54cdb6ee05da3d9a58b58c455d73ce326");
  auto patch = read_file(kData + "/golden.patch");
  ASSERT_TRUE(patch.ok());
  EXPECT_EQ(b->payload, *patch);
  auto meta = read_patch_meta(b->payload);
  ASSERT_TRUE(meta.ok()) << meta.error().message;
  EXPECT_EQ((*meta)["id"], "golden-fix");
}

TEST(GoldenBundle, WriterStillProducesTheGoldenBytes) {
  // ed25519 signatures are deterministic: the same key, manifest and payload must give
  // the golden file byte for byte. When this fails alone (the test above passes), the
  // writer changed its output while old bundles still verify: check that the change is
  // deliberate and documented in docs/BUNDLE-FORMAT.md.
  auto bytes = read_bundle_file(kData + "/golden-v1.bundle");
  auto key = read_secret_key_file(kData + "/golden.key");
  ASSERT_TRUE(bytes.ok() && key.ok());
  auto b = parse_bundle(*bytes);
  ASSERT_TRUE(b.ok()) << b.error().message;
  auto again = create_bundle(b->manifest, b->payload, *key);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *bytes);
}

}  // namespace
}  // namespace nines::bundle
