// Debian's security tracker format (tracker.h). data/debian-security-tracker-sample.json is
// a small sample written by hand for these tests, following the documented format of
// https://security-tracker.debian.org/tracker/data/json and the shape of its entries
// (repositories, nodsa, nodsa_reason, debianbug, TEMP- ids, "fixed_version": "0" for a
// release never affected, "**" urgencies, \u escapes); the real file cannot be fetched
// on the test machine, and its versions and texts here are illustrative, not copied.
#include "advisor/tracker.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace nines::advisor {
namespace {

using testing::TempDir;
using testing::write_file;

const std::string kSample = std::string(ADVISOR_TEST_DATA) + "/debian-security-tracker-sample.json";

const TrackerEntry* find(const TrackerData& d, const std::string& source, const std::string& cve) {
  auto it = d.by_source.find(source);
  if (it == d.by_source.end()) return nullptr;
  for (const TrackerEntry& e : it->second)
    if (e.cve == cve) return &e;
  return nullptr;
}

TEST(TrackerSample, KeepsOnlyWantedSourcesForTheRelease) {
  auto d = read_tracker_file(kSample, {"openssl", "linux", "glibc"}, "bookworm");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->sources, 6u);
  EXPECT_EQ(d->by_source.size(), 3u);
  EXPECT_EQ(d->by_source.count("grub2"), 0u);
  const TrackerEntry* e = find(*d, "openssl", "CVE-2024-5535");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->status, TrackerStatus::kResolved);
  EXPECT_EQ(e->fixed_version, "3.0.15-1~deb12u1");  // bookworm's, not sid's 3.3.1-7
  EXPECT_EQ(e->urgency, "not yet assigned");
  e = find(*d, "openssl", "CVE-2025-9230");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->status, TrackerStatus::kUndetermined);
  EXPECT_TRUE(e->fixed_version.empty());
  e = find(*d, "glibc", "CVE-2010-4756");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->status, TrackerStatus::kOpen);
  EXPECT_EQ(e->urgency, "unimportant");
  EXPECT_EQ(find(*d, "glibc", "TEMP-0000000-A6B3C2"), nullptr);  // not a CVE id
  EXPECT_EQ(d->by_source.at("linux").size(), 4u);
  EXPECT_EQ(find(*d, "linux", "CVE-2024-53103")->urgency, "medium**");
}

TEST(TrackerSample, AnotherReleaseGetsItsOwnEntries) {
  auto d = read_tracker_file(kSample, {"glibc", "xz-utils"}, "sid");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(find(*d, "glibc", "CVE-2023-4911")->fixed_version, "2.37-12");
  EXPECT_EQ(find(*d, "xz-utils", "CVE-2024-3094")->fixed_version, "5.6.1+really5.4.5-1");
  auto b = read_tracker_file(kSample, {"glibc"}, "bullseye");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(find(*b, "glibc", "CVE-2023-4911")->fixed_version, "0");
  EXPECT_EQ(find(*b, "glibc", "CVE-2010-4756"), nullptr);  // no bullseye entry
}

TEST(TrackerSeverity, FromUrgency) {
  EXPECT_EQ(severity_from_urgency("high"), "high");
  EXPECT_EQ(severity_from_urgency("medium**"), "medium");
  EXPECT_EQ(severity_from_urgency("low*"), "low");
  EXPECT_EQ(severity_from_urgency("unimportant"), "negligible");
  EXPECT_EQ(severity_from_urgency("not yet assigned"), "unknown");
  EXPECT_EQ(severity_from_urgency("end-of-life"), "unknown");
  EXPECT_EQ(severity_from_urgency(""), "unknown");
}

TEST(TrackerParse, EscapesAreDecodedInKeptStrings) {
  auto d = parse_tracker(
      R"({"p\u00e9": {"CVE-1-1": {"releases": {"bookworm": {"status": "resolved",
         "fixed_version": "1\u002e0", "urgency": "low"}}}}})",
      {"p\xc3\xa9"}, "bookworm");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->by_source.at("p\xc3\xa9").at(0).fixed_version, "1.0");
}

TEST(TrackerParse, BadInputNamesWhereAndWhat) {
  std::unordered_set<std::string> w{"a"};
  auto unterminated = parse_tracker(R"({"b": {"x": "oops})", w, "bookworm");
  ASSERT_FALSE(unterminated.ok());
  EXPECT_NE(unterminated.error().message.find("unterminated string"), std::string::npos)
      << unterminated.error().message;
  auto unbalanced = parse_tracker(R"({"b": {"x": [1, 2}}})", w, "bookworm");
  ASSERT_FALSE(unbalanced.ok());
  EXPECT_NE(unbalanced.error().message.find("offset 17: unexpected '}'"), std::string::npos)
      << unbalanced.error().message;
  auto wrong_type = parse_tracker(
      R"({"a": {"CVE-1-1": {"releases": {"bookworm": {"status": 3}}}}})", w, "bookworm");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_NE(wrong_type.error().message.find("a/CVE-1-1/releases/bookworm/status: expected a string"),
            std::string::npos)
      << wrong_type.error().message;
  EXPECT_FALSE(parse_tracker("[]", w, "bookworm").ok());
  EXPECT_FALSE(parse_tracker(R"({"a": {}} x)", w, "bookworm").ok());
  EXPECT_FALSE(parse_tracker("", w, "bookworm").ok());
  std::string deep = "{\"b\": " + std::string(300, '[') + std::string(300, ']') + "}";
  auto d = parse_tracker(deep, w, "bookworm");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("nested too deeply"), std::string::npos);
}

TEST(TrackerFile, ErrorsNameTheFile) {
  TempDir t;
  write_file(t / "bad.json", "{\"a\": ");
  auto d = read_tracker_file(t / "bad.json", {"a"}, "bookworm");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find(t / "bad.json"), std::string::npos) << d.error().message;
  auto missing = read_tracker_file(t / "none.json", {"a"}, "bookworm");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("none.json"), std::string::npos);
}

}  // namespace
}  // namespace nines::advisor
