#include <sodium.h>

#include <gtest/gtest.h>

#include "bundle/bundle.h"
#include "test_util.h"

namespace nines::bundle {
namespace {

TEST(Keys, PublicAndSecretKeyTextRoundTrip) {
  KeyPair kp = generate_keypair();
  auto pub = parse_public_key(format_public_key(kp.public_key, "alice@example.org"));
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_EQ(*pub, kp.public_key);
  auto sec = parse_secret_key(format_secret_key(kp.secret_key));
  ASSERT_TRUE(sec.ok()) << sec.error().message;
  EXPECT_EQ(sec->bytes, kp.secret_key.bytes);
  EXPECT_EQ(sec->public_key(), kp.public_key);
}

TEST(Keys, FingerprintIsStableLowercaseHexOfTheKeyDigest) {
  PublicKey k;  // all zero bytes
  std::string fp = fingerprint(k);
  EXPECT_EQ(fp.size(), 32u);
  // First 16 bytes of SHA-256 of 32 zero bytes.
  EXPECT_EQ(fp, "66687aadf862bd776c8fc18b8e9f8e20");
  EXPECT_NE(fingerprint(generate_keypair().public_key), fp);
}

TEST(Keys, RefusesSecretKeyWhosePublicHalfDoesNotMatchItsSeed) {
  KeyPair kp = generate_keypair();
  kp.secret_key.bytes[40] ^= 1;
  auto sec = parse_secret_key(format_secret_key(kp.secret_key));
  ASSERT_FALSE(sec.ok());
  EXPECT_NE(sec.error().message.find("does not match"), std::string::npos);
}

TEST(Keys, RefusesMalformedKeyText) {
  EXPECT_FALSE(parse_public_key("").ok());
  EXPECT_FALSE(parse_public_key("ssh-ed25519 AAAA").ok());
  auto short_key = parse_public_key("nines-ed25519-public abcd\n");
  ASSERT_FALSE(short_key.ok());
  EXPECT_NE(short_key.error().message.find("4 hex digits, expected 64"), std::string::npos);
  EXPECT_FALSE(parse_public_key("nines-ed25519-public " + std::string(64, 'g')).ok());
  // A secret key is never accepted where a public key is expected, nor the reverse.
  KeyPair kp = generate_keypair();
  EXPECT_FALSE(parse_public_key(format_secret_key(kp.secret_key)).ok());
  EXPECT_FALSE(parse_secret_key(format_public_key(kp.public_key)).ok());
}

TEST(Keys, KeyFilesAreReadBack) {
  testing::TempDir dir;
  KeyPair kp = generate_keypair();
  ASSERT_TRUE(write_file_atomic(dir / "k.pub", format_public_key(kp.public_key)));
  ASSERT_TRUE(write_file_atomic(dir / "k.key", format_secret_key(kp.secret_key), 0600));
  auto pub = read_public_key_file(dir / "k.pub");
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_EQ(*pub, kp.public_key);
  auto sec = read_secret_key_file(dir / "k.key");
  ASSERT_TRUE(sec.ok()) << sec.error().message;
  auto missing = read_public_key_file(dir / "none.pub");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("none.pub"), std::string::npos);
}

}  // namespace
}  // namespace nines::bundle
