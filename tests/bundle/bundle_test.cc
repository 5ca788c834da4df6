// The container and its verification: a round trip, and every refusal of issue 3 with the
// cause named. `assemble` below writes the format from docs/BUNDLE-FORMAT.md independently
// of the library, so the page and the code are checked against each other.
#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "bundle/bundle.h"
#include "core/fd.h"
#include "test_util.h"

namespace nines::bundle {
namespace {

using testing::sample_manifest;
using testing::TempDir;

// A real patch object (gcc + objcopy) whose .nines.meta matches sample_manifest(); built once.
std::string kPayload;

void put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}

struct Section {
  uint32_t type;
  std::string data;
};

std::string assemble(uint32_t version, const std::vector<Section>& sections) {
  std::string out = "NINESBDL";
  put32(out, version);
  put32(out, static_cast<uint32_t>(sections.size()));
  for (const Section& s : sections) {
    put32(out, s.type);
    put32(out, static_cast<uint32_t>(s.data.size()));
    out += s.data;
  }
  return out;
}

std::string digest(std::string_view data) {
  unsigned char h[32];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return std::string(reinterpret_cast<char*>(h), 32);
}

// The signature section per the documentation: public key || ed25519 over
// "nines-bundle-v1\0" || u64 LE len(manifest) || manifest || sha256(payload).
std::string sign_section(const SecretKey& key, const std::string& manifest,
                         const std::string& payload_digest) {
  std::string msg("nines-bundle-v1\0", 16);
  uint64_t n = manifest.size();
  for (int i = 0; i < 8; ++i) msg.push_back(static_cast<char>(n >> (8 * i)));
  msg += manifest + payload_digest;
  unsigned char sig[64];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                       key.bytes.data());
  PublicKey pk = key.public_key();
  return std::string(reinterpret_cast<const char*>(pk.bytes.data()), 32) +
         std::string(reinterpret_cast<char*>(sig), 64);
}

class BundleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TempDir dir;
    std::string path = testing::make_patch_object(dir, testing::kSampleMeta);
    ASSERT_FALSE(path.empty()) << "gcc/objcopy could not build a patch object";
    kPayload = *read_file(path);
  }
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    key_ = generate_keypair();
    ASSERT_TRUE(write_file_atomic(trust_ / "publisher.pub", format_public_key(key_.public_key)));
  }
  std::string make(const Manifest& m = sample_manifest()) {
    auto b = create_bundle(m, kPayload, key_.secret_key);
    EXPECT_TRUE(b.ok()) << b.error().message;
    return b.ok() ? *b : std::string();
  }
  void expect_refused(std::string_view bytes, const std::string& needle) {
    auto b = open_verified(bytes, trust_.path());
    ASSERT_FALSE(b.ok()) << "accepted a bundle that should be refused for: " << needle;
    EXPECT_NE(b.error().message.find(needle), std::string::npos) << b.error().message;
  }
  KeyPair key_;
  TempDir trust_;
};

TEST_F(BundleTest, RoundTripCreateParseVerify) {
  std::string bytes = make();
  EXPECT_TRUE(looks_like_bundle(bytes));
  auto b = open_verified(bytes, trust_.path());
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->manifest.id, "fix-1");
  EXPECT_EQ(b->manifest.version, 2);
  EXPECT_EQ(b->manifest.target_build_id, "abcdef0123456789");
  EXPECT_EQ(b->payload, kPayload);
  EXPECT_EQ(b->payload_sha256_hex, sha256_hex(kPayload));
  EXPECT_EQ(b->signer_fingerprint, fingerprint(key_.public_key));
  EXPECT_EQ(b->raw, bytes);
  EXPECT_EQ(b->format_version, 1u);
}

TEST_F(BundleTest, BundleAssembledFromTheDocumentationVerifies) {
  std::string manifest = manifest_to_toml(sample_manifest());
  std::string d = digest(kPayload);
  std::string bytes = assemble(
      1, {{1, manifest}, {2, d}, {3, kPayload}, {4, sign_section(key_.secret_key, manifest, d)}});
  auto b = open_verified(bytes, trust_.path());
  ASSERT_TRUE(b.ok()) << b.error().message;
  // And the library writes exactly what the documentation describes.
  EXPECT_EQ(bytes, make());
}

TEST_F(BundleTest, RefusesUnsignedBundle) {
  auto bytes = create_unsigned_bundle(sample_manifest(), kPayload);
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(parse_bundle(*bytes).ok());  // structurally fine, just not trusted
  expect_refused(*bytes, "bundle: unsigned (no signature section)");
}

TEST_F(BundleTest, ManifestOfAnUnverifiedBundleIsNeverParsed) {
  // A manifest that is not even TOML: refused for its signature, never for its text, so
  // the TOML parser never sees bytes from an untrusted signer.
  std::string garbage = "[[[[ not toml \xff";
  std::string d = digest(kPayload);
  KeyPair stranger = generate_keypair();
  expect_refused(
      assemble(1, {{1, garbage}, {2, d}, {3, kPayload}, {4, sign_section(stranger.secret_key, garbage, d)}}),
      "signed by untrusted key");
  expect_refused(assemble(1, {{1, garbage}, {2, d}, {3, kPayload}}), "unsigned");
  auto b = open_verified(assemble(1, {{1, garbage}, {2, d}, {3, kPayload},
                                      {4, sign_section(stranger.secret_key, garbage, d)}}),
                         trust_.path());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message.find("manifest"), std::string::npos) << b.error().message;
}

TEST_F(BundleTest, RefusesBadSignature) {
  std::string bytes = make();
  bytes[bytes.size() - 1] ^= 0x01;  // last byte of the signature
  expect_refused(bytes, "bad signature");
}

TEST_F(BundleTest, RefusesManifestAlteredAfterSigning) {
  std::string bytes = make();
  size_t p = bytes.find("version = 2");
  ASSERT_NE(p, std::string::npos);
  bytes[p + 10] = '9';  // same length, a different version: an attempted downgrade trick
  expect_refused(bytes, "bad signature");
}

TEST_F(BundleTest, RefusesKeyNotInTrustStore) {
  KeyPair other = generate_keypair();
  auto bytes = create_bundle(sample_manifest(), kPayload, other.secret_key);
  ASSERT_TRUE(bytes.ok());
  expect_refused(*bytes, "signed by untrusted key " + fingerprint(other.public_key));
}

TEST_F(BundleTest, RefusesPayloadWhoseDigestDiffers) {
  std::string bytes = make();
  size_t p = bytes.find(kPayload);
  ASSERT_NE(p, std::string::npos);
  bytes[p + kPayload.size() / 2] ^= 0x20;
  expect_refused(bytes, "payload digest mismatch (stated sha256 " + sha256_hex(kPayload));
}

TEST_F(BundleTest, RefusesEveryTruncation) {
  std::string bytes = make();
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto b = parse_bundle(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(b.ok()) << "accepted a bundle truncated to " << n << " bytes";
    EXPECT_NE(b.error().message.find("truncated"), std::string::npos)
        << n << ": " << b.error().message;
  }
}

TEST_F(BundleTest, RefusesOversizedFileBeforeParsing) {
  std::string big(kMaxBundleBytes + 1, '\0');
  std::memcpy(big.data(), "NINESBDL", 8);
  expect_refused(big, "oversized");
}

TEST_F(BundleTest, RefusesOversizedFileOnDiskWithoutReadingIt) {
  TempDir dir;
  std::string path = dir / "huge.bundle";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kMaxBundleBytes) + 1), 0);  // sparse
  ::close(fd);
  auto r = read_bundle_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("oversized"), std::string::npos) << r.error().message;
}

TEST_F(BundleTest, RefusesSectionLengthAboveItsLimitBeforeAllocating) {
  std::string bytes = assemble(1, {{1, "x"}, {2, std::string(32, 'd')}, {3, "p"}});
  // Claim a 4 GiB manifest: refused by the limit, never allocated.
  bytes[20] = bytes[21] = bytes[22] = bytes[23] = '\xff';
  auto b = parse_bundle(bytes);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("manifest section is 4294967295 bytes, limit"),
            std::string::npos)
      << b.error().message;
}

TEST_F(BundleTest, RefusesLaterFormatVersionByName) {
  std::string bytes = make();
  bytes[8] = 2;
  expect_refused(bytes, "unsupported format version 2 (this nines reads version 1)");
}

TEST_F(BundleTest, RefusesBadMagic) {
  std::string bytes = make();
  bytes[0] = 'X';
  EXPECT_FALSE(looks_like_bundle(bytes));
  expect_refused(bytes, "not a nines bundle (bad magic)");
}

TEST_F(BundleTest, RefusesTrailingBytes) { expect_refused(make() + "junk", "4 trailing bytes"); }

TEST_F(BundleTest, RefusesSectionsOutOfOrderOrRepeated) {
  std::string manifest = manifest_to_toml(sample_manifest());
  std::string d = digest(kPayload);
  expect_refused(assemble(1, {{1, manifest}, {3, kPayload}, {2, d}}),
                 "section 2 has type 3, expected 2");
  expect_refused(assemble(1, {{1, manifest}, {1, manifest}, {3, kPayload}}),
                 "section 2 has type 1");
  expect_refused(assemble(1, {{1, manifest}, {2, d}, {3, kPayload}, {5, "x"}}),
                 "section 4 has type 5");
  expect_refused(assemble(1, {}), "0 sections");
}

TEST_F(BundleTest, RefusesSignedBundleWithUnknownKindInItsManifest) {
  std::string manifest = manifest_to_toml(sample_manifest());
  size_t p = manifest.find("userspace");
  manifest.replace(p, 9, "bootloader");
  std::string d = digest(kPayload);
  std::string bytes = assemble(
      1, {{1, manifest}, {2, d}, {3, kPayload}, {4, sign_section(key_.secret_key, manifest, d)}});
  expect_refused(bytes, "manifest: kind: 'bootloader' is not one of userspace, kernel");
}

TEST_F(BundleTest, RefusesSignedBundleWithMalformedManifestField) {
  std::string manifest = manifest_to_toml(sample_manifest());
  size_t p = manifest.find("\"high\"");
  manifest.replace(p, 6, "\"severe\"");
  std::string d = digest(kPayload);
  std::string bytes = assemble(
      1, {{1, manifest}, {2, d}, {3, kPayload}, {4, sign_section(key_.secret_key, manifest, d)}});
  expect_refused(bytes, "cves[0].severity: 'severe'");
}

TEST_F(BundleTest, RefusesSignedManifestThatContradictsItsPayload) {
  Manifest m = sample_manifest();
  m.target_build_id = "0badc0de";
  // create_bundle refuses it...
  auto created = create_bundle(m, kPayload, key_.secret_key);
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.error().message.find("manifest contradicts its payload"), std::string::npos)
      << created.error().message;
  // ...and a reader refuses one made by another tool, though the signature is good.
  std::string manifest = manifest_to_toml(m);
  std::string d = digest(kPayload);
  std::string bytes = assemble(
      1, {{1, manifest}, {2, d}, {3, kPayload}, {4, sign_section(key_.secret_key, manifest, d)}});
  expect_refused(bytes,
                 "manifest contradicts its payload: manifest target.build_id '0badc0de' "
                 "contradicts the patch object ('abcdef0123456789')");
}

TEST_F(BundleTest, RefusesPayloadThatIsNotAPatchObject) {
  std::string manifest = manifest_to_toml(sample_manifest());
  std::string junk = "#!/bin/sh\nrm -rf /\n";
  std::string d = digest(junk);
  std::string bytes = assemble(
      1, {{1, manifest}, {2, d}, {3, junk}, {4, sign_section(key_.secret_key, manifest, d)}});
  expect_refused(bytes,
                 "payload is not a nines patch object: read patch metadata: not an ELF file");
}

TEST_F(BundleTest, RefusesWhenTrustStoreIsMissingOrEmpty) {
  std::string bytes = make();
  auto b = open_verified(bytes, trust_ / "missing");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("No such file or directory"), std::string::npos)
      << b.error().message;
  TempDir empty;
  auto e = open_verified(bytes, empty.path());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("holds no public keys"), std::string::npos) << e.error().message;
}

TEST_F(BundleTest, TrustStoreSkipsFilesThatAreNotKeys) {
  ASSERT_TRUE(write_file_atomic(trust_ / "garbage.pub", "not a key\n"));
  ASSERT_TRUE(write_file_atomic(trust_ / "notes.txt", "nines-ed25519-public zz\n"));
  auto keys = load_trust_store(trust_.path());
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].key, key_.public_key);
  EXPECT_TRUE(open_verified(make(), trust_.path()).ok());
}

TEST_F(BundleTest, CreateRefusesInvalidManifestAndEmptyPayload) {
  Manifest m = sample_manifest();
  m.kind = "firmware";
  auto b = create_bundle(m, kPayload, key_.secret_key);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("kind"), std::string::npos);
  auto e = create_bundle(sample_manifest(), "", key_.secret_key);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("payload is empty"), std::string::npos);
}

}  // namespace
}  // namespace nines::bundle
