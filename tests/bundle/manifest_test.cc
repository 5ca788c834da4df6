#include <gtest/gtest.h>

#include <string>

#include "bundle/bundle.h"
#include "test_util.h"

namespace nines::bundle {
namespace {

using testing::kSampleToml;

std::string replace(std::string s, const std::string& from, const std::string& to) {
  size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  if (p != std::string::npos) s.replace(p, from.size(), to);
  return s;
}

// Expects parse_manifest to refuse `text` with a message containing `needle`.
void expect_refused(const std::string& text, const std::string& needle) {
  auto m = parse_manifest(text);
  ASSERT_FALSE(m.ok()) << "accepted:\n" << text;
  EXPECT_NE(m.error().message.find(needle), std::string::npos) << m.error().message;
}

TEST(Manifest, ParsesCompleteUserspaceManifest) {
  auto m = parse_manifest(kSampleToml);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->id, "fix-1");
  EXPECT_EQ(m->version, 2);
  EXPECT_EQ(m->kind, "userspace");
  EXPECT_EQ(m->target_name, "libfoo.so.1");
  EXPECT_EQ(m->target_build_id, "abcdef0123456789");
  ASSERT_EQ(m->cves.size(), 1u);
  EXPECT_EQ(m->cves[0].severity, "high");
  EXPECT_EQ(m->published_unix, 1795975200);
}

TEST(Manifest, ParsesKernelManifestWithoutBuildId) {
  auto m = parse_manifest(R"(id = "k-1"
version = 1
kind = "kernel"
published = "2026-11-29T19:00:00+01:00"
[target]
release = "6.1.0-27-cloud-amd64"
)");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->kernel_release, "6.1.0-27-cloud-amd64");
  EXPECT_EQ(m->target_build_id, "");
  EXPECT_EQ(m->published_unix, 1795975200);
}

TEST(Manifest, AcceptsTomlOffsetDateTimeForPublished) {
  auto m = parse_manifest(replace(kSampleToml, "published = \"2026-11-29T18:00:00Z\"",
                                  "published = 2026-11-29T18:00:00Z"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->published_unix, 1795975200);
}

TEST(Manifest, UppercaseBuildIdIsNormalisedToLowercase) {
  auto m = parse_manifest(replace(kSampleToml, "abcdef0123456789", "ABCDEF0123456789"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->target_build_id, "abcdef0123456789");
}

TEST(Manifest, RefusesUnknownKind) {
  expect_refused(replace(kSampleToml, "kind = \"userspace\"", "kind = \"firmware\""),
                 "manifest: kind: 'firmware' is not one of userspace, kernel");
}

TEST(Manifest, RefusesMissingKind) {
  expect_refused(replace(kSampleToml, "kind = \"userspace\"\n", ""), "kind: missing");
}

TEST(Manifest, RefusesUnknownTopLevelKey) {
  expect_refused(std::string("signature = \"x\"\n") + kSampleToml,
                 "manifest: signature: unknown key");
}

TEST(Manifest, RefusesUnknownKeyInsideCve) {
  expect_refused(replace(kSampleToml, "severity = \"high\"", "severity = \"high\"\nscore = 9"),
                 "cves[0].score: unknown key");
}

TEST(Manifest, RefusesBadSeverityNamingTheField) {
  expect_refused(
      replace(kSampleToml, "severity = \"high\"", "severity = \"urgent\""),
      "cves[0].severity: 'urgent' is not one of critical, high, medium, low, negligible");
}

TEST(Manifest, RefusesMalformedRfc3339) {
  expect_refused(replace(kSampleToml, "2026-11-29T18:00:00Z", "2026-11-29 18:00"), "published:");
  expect_refused(replace(kSampleToml, "2026-11-29T18:00:00Z", "2026-13-29T18:00:00Z"),
                 "published:");
}

TEST(Manifest, RefusesLocalDateTimeWithoutOffset) {
  expect_refused(replace(kSampleToml, "published = \"2026-11-29T18:00:00Z\"",
                         "published = 2026-11-29T18:00:00"),
                 "published: a TOML date-time needs a UTC offset");
}

TEST(Manifest, RefusesBadBuildIdHex) {
  expect_refused(replace(kSampleToml, "abcdef0123456789", "abcdef012345678"), "target.build_id");
  expect_refused(replace(kSampleToml, "abcdef0123456789", "xyz0"), "target.build_id");
}

TEST(Manifest, RefusesVersionThatIsNotAPositiveInteger) {
  expect_refused(replace(kSampleToml, "version = 2", "version = \"2\""),
                 "version: must be an integer");
  expect_refused(replace(kSampleToml, "version = 2", "version = 0"), "version: 0 is not >= 1");
  expect_refused(replace(kSampleToml, "version = 2", "version = 2.5"),
                 "version: must be an integer");
}

TEST(Manifest, RefusesIdThatCouldNameAPath) {
  expect_refused(replace(kSampleToml, "id = \"fix-1\"", "id = \"../../etc/x\""), "id:");
  expect_refused(replace(kSampleToml, "id = \"fix-1\"", "id = \"..\""), "id:");
  expect_refused(replace(kSampleToml, "id = \"fix-1\"", "id = \"\""), "id: must not be empty");
}

TEST(Manifest, RefusesTargetNameThatIsAPath) {
  expect_refused(replace(kSampleToml, "name = \"libfoo.so.1\"", "name = \"/lib/libfoo.so.1\""),
                 "target.name: must be an object name, not a path");
}

TEST(Manifest, RefusesMissingTargetWhenRequired) {
  std::string text = replace(
      kSampleToml, "[target]\nname = \"libfoo.so.1\"\nbuild_id = \"abcdef0123456789\"\n", "");
  expect_refused(text, "target: missing");
  EXPECT_TRUE(parse_manifest(text, /*require_target=*/false).ok());
}

TEST(Manifest, RefusesKernelFieldsInUserspaceManifest) {
  expect_refused(replace(kSampleToml, "[target]\n", "[target]\nrelease = \"6.1.0\"\n"),
                 "target.release: only for kind = \"kernel\"");
}

TEST(Manifest, RefusesMultiLineCveDescription) {
  expect_refused(replace(kSampleToml, "description = \"heap overflow in foo_parse\"",
                         "description = \"heap\\noverflow\""),
                 "cves[0].description: must be one line");
}

TEST(Manifest, RefusesNonHttpUrl) {
  expect_refused(replace(kSampleToml, "https://example.org/CVE-2026-1234", "file:///etc/passwd"),
                 "cves[0].url: must start with https:// or http://");
}

TEST(Manifest, RefusesWrongTypeForCves) {
  std::string text = kSampleToml;
  text = "cves = \"CVE-2026-1\"\n" + text.substr(0, text.find("[[cves]]"));
  expect_refused(text, "cves: must be an array of tables");
}

TEST(Manifest, RefusesTomlSyntaxErrorWithItsLine) {
  expect_refused("id = \"fix-1\"\nversion = = 2\n", "TOML syntax error at line 2");
}

TEST(Manifest, RefusesOversizedManifestBeforeParsing) {
  std::string big(kMaxManifestBytes + 1, '#');
  expect_refused(big, "limit");
}

TEST(Manifest, RefusesInvalidUtf8) {
  expect_refused(replace(kSampleToml, "Fixes", "Fi\xff\xfexes"), "not valid UTF-8");
}

TEST(Manifest, KeepsNonAsciiTextInDoubleQuotedStrings) {
  const std::string text = "Correção Ή Жук 日本 😀 U+3000:\u3000.";
  auto m = parse_manifest(replace(kSampleToml, "Fixes an overflow in foo_parse", text) +
                          "# commentaire: évité\n");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->description, text);
  auto ml = parse_manifest(replace(kSampleToml, "description = \"Fixes an overflow in foo_parse\"",
                                   "description = \"\"\"Ligne é\\\n   Ж \"quoted\"\"\"\"\""));
  ASSERT_TRUE(ml.ok()) << ml.error().message;
  // The line-ending backslash eats the line break and the indent; the closing """ may carry
  // two more quotes of content (TOML 1.0).
  EXPECT_EQ(ml->description, "Ligne éЖ \"quoted\"\"");
}

// Found by fuzz/fuzz_manifest: toml++ 3.3 hits __builtin_unreachable() when asked whether
// some non-ASCII code points (here U+0389) are whitespace. Such input must be refused
// before toml++ sees it (under UBSan this test aborted before the fix).
TEST(Manifest, RefusesNonAsciiOutsideStringsBeforeTomlSeesIt) {
  expect_refused(
      "id = \"k-1\"\nversion = 1\npublished = 2026-11>16T19:00:\xce\x89"
      "ersion = 1\n",
      "line 3: non-ASCII character outside a string");
  expect_refused(replace(kSampleToml, "version = 2", "version = 2 \xce\x89"),
                 "non-ASCII character outside a string");
  expect_refused(replace(kSampleToml, "[target]", "[target\xce\x89]"),
                 "non-ASCII character outside a string");
}

TEST(Manifest, RefusesNonAsciiInLiteralStringsAndAfterBackslash) {
  expect_refused(replace(kSampleToml, "\"Fixes an overflow in foo_parse\"", "'Ж'"),
                 "must be in a \"double-quoted\" string");
  expect_refused(replace(kSampleToml, "\"Fixes an overflow in foo_parse\"", "\"\\Ж\""),
                 "a backslash before a non-ASCII character");
  expect_refused(replace(kSampleToml, "Fixes", "\xed\xa0\x80"), "not valid UTF-8");  // surrogate
  expect_refused(replace(kSampleToml, "Fixes", "\xe0\x80\xaf"), "not valid UTF-8");  // overlong
}

TEST(Manifest, SerialisedTomlParsesBackToTheSameManifest) {
  Manifest m = testing::sample_manifest();
  m.description = "two\nlines with \"quotes\" and \\ backslash";
  auto back = parse_manifest(manifest_to_toml(m));
  ASSERT_TRUE(back.ok()) << back.error().message << "\n" << manifest_to_toml(m);
  EXPECT_EQ(back->description, m.description);
  EXPECT_EQ(back->id, m.id);
  EXPECT_EQ(back->cves[0].url, m.cves[0].url);
  EXPECT_EQ(manifest_to_toml(*back), manifest_to_toml(m));
}

TEST(Manifest, SeverityRanksOrderAndHighestIsFound) {
  EXPECT_GT(severity_rank("critical"), severity_rank("high"));
  EXPECT_GT(severity_rank("high"), severity_rank("medium"));
  EXPECT_GT(severity_rank("medium"), severity_rank("low"));
  EXPECT_GT(severity_rank("low"), severity_rank("negligible"));
  EXPECT_EQ(severity_rank("HIGH"), -1);
  Manifest m = testing::sample_manifest();
  m.cves.push_back({"CVE-2026-9", "critical", "", "https://x"});
  m.cves.push_back({"CVE-2026-8", "low", "", "https://x"});
  EXPECT_EQ(highest_severity(m), "critical");
  m.cves.clear();
  EXPECT_EQ(highest_severity(m), "");
}

TEST(Manifest, JsonCarriesEveryField) {
  nlohmann::json j = manifest_to_json(testing::sample_manifest());
  EXPECT_EQ(j["id"], "fix-1");
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["target"]["build_id"], "abcdef0123456789");
  EXPECT_EQ(j["cves"][0]["severity"], "high");
  EXPECT_EQ(j["published_unix"], 1795975200);
}

}  // namespace
}  // namespace nines::bundle
