// The same storage suite against both back ends: SQLite in a temporary folder, and a real
// PostgreSQL started by scripts/pg-test-server.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <thread>

#include "core/clock.h"
#include "test_support.h"

namespace nines::server {
namespace {

using testing::BundleSpec;
using testing::make_bundle;
using testing::Publisher;
using testing::record_of;

class StorageTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    store_ = testing::open_test_store(GetParam(), dir_.path());
    ASSERT_NE(store_, nullptr);
  }
  testing::TempDir dir_;
  Publisher pub_;
  std::unique_ptr<Storage> store_;
};

TEST_P(StorageTest, ReportsItsBackend) { EXPECT_EQ(store_->backend(), GetParam()); }

TEST_P(StorageTest, InitIsIdempotent) {
  ASSERT_TRUE(store_->init().ok());
  ASSERT_TRUE(store_->init().ok());
}

TEST_P(StorageTest, FindsTokensByHashOnly) {
  TokenRecord t{"ab12", TokenKind::kEnroll, "canary", "laptops", "", 100, 5000};
  ASSERT_TRUE(store_->put_token(t).ok());
  auto found = store_->find_token("ab12");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((**found).tier, "canary");
  EXPECT_EQ((**found).name, "laptops");
  EXPECT_EQ((**found).kind, TokenKind::kEnroll);
  EXPECT_EQ((**found).expires_unix, 5000);
  EXPECT_FALSE(store_->find_token("ab13")->has_value());
}

TEST_P(StorageTest, ListsAndDeletesTokens) {
  ASSERT_TRUE(store_->put_token({"t1", TokenKind::kMirror, "", "site-b", "", 10}).ok());
  ASSERT_TRUE(store_->put_token({"t2", TokenKind::kMachine, "t", "", "host-a", 20}).ok());
  auto all = store_->list_tokens();
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].hash_hex, "t1");
  EXPECT_EQ((*all)[0].kind, TokenKind::kMirror);
  EXPECT_EQ((*all)[1].machine_id, "host-a");
  EXPECT_TRUE(*store_->delete_token("t1"));
  EXPECT_FALSE(*store_->delete_token("t1"));
  EXPECT_FALSE(store_->find_token("t1")->has_value());
  EXPECT_TRUE(store_->find_token("t2")->has_value());
}

TEST_P(StorageTest, KeepsTheLastCatalogueStateReportedByAMachine) {
  MachineRecord m;
  m.machine_id = "host-a";
  m.tier = "t";
  m.build_ids_json = "[]";
  ASSERT_TRUE(store_->upsert_machine(m).ok());
  std::string stale = R"({"state":"stale","since":"2026-12-01T00:00:00Z","reason":"expired"})";
  ASSERT_TRUE(store_->add_reports("host-a", {}, "", stale).ok());
  ASSERT_TRUE(store_->add_reports("host-a", {}, "").ok());  // no member: kept
  EXPECT_EQ((*store_->find_machine("host-a"))->catalogue_json, stale);
}

TEST_P(StorageTest, CreatesTheFirstAdminTokenOnlyOnce) {
  EXPECT_TRUE(*store_->put_first_admin_token({"h1", TokenKind::kAdmin, "", "a", "", 1}));
  EXPECT_FALSE(*store_->put_first_admin_token({"h2", TokenKind::kAdmin, "", "b", "", 2}));
  EXPECT_FALSE(store_->find_token("h2")->has_value());
}

TEST_P(StorageTest, DeletesOnlyTheMachinesOwnTokens) {
  ASSERT_TRUE(store_->put_token({"m1", TokenKind::kMachine, "t", "", "host-a", 1}).ok());
  ASSERT_TRUE(store_->put_token({"m2", TokenKind::kMachine, "t", "", "host-b", 1}).ok());
  ASSERT_TRUE(store_->delete_machine_tokens("host-a").ok());
  EXPECT_FALSE(store_->find_token("m1")->has_value());
  EXPECT_TRUE(store_->find_token("m2")->has_value());
}

TEST_P(StorageTest, PublishStoresBytesAndRowTogether) {
  std::string bytes = make_bundle(pub_, {});
  BundleRecord r = record_of(bytes);
  auto out = store_->publish(r, bytes);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, PublishOutcome::kStored);
  auto got = store_->bundle_bytes(r.sha256);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, bytes);
  auto row = store_->find_bundle(r.id, r.version);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((**row).sha256, r.sha256);
  EXPECT_EQ((**row).target_build_id, r.target_build_id);
}

TEST_P(StorageTest, SamePublishTwiceIsIdenticalNotAnError) {
  std::string bytes = make_bundle(pub_, {});
  BundleRecord r = record_of(bytes);
  ASSERT_TRUE(store_->publish(r, bytes).ok());
  auto again = store_->publish(r, bytes);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, PublishOutcome::kAlreadyIdentical);
}

TEST_P(StorageTest, SameIdAndVersionWithOtherContentIsRefusedAndLeavesNoBytes) {
  std::string first = make_bundle(pub_, {});
  BundleSpec other;
  other.payload = "different payload";
  std::string second = make_bundle(pub_, other);
  ASSERT_TRUE(store_->publish(record_of(first), first).ok());
  BundleRecord r2 = record_of(second);
  auto out = store_->publish(r2, second);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("already published with different content"), std::string::npos)
      << out.error().message;
  EXPECT_FALSE(store_->bundle_bytes(r2.sha256)->has_value());
  EXPECT_EQ(store_->list_bundles()->size(), 1u);
}

TEST_P(StorageTest, PromotionMakesABundleVisibleToOneTier) {
  std::string bytes = make_bundle(pub_, {});
  BundleRecord r = record_of(bytes);
  ASSERT_TRUE(store_->publish(r, bytes).ok());
  EXPECT_TRUE(store_->bundles_in_tier("canary")->empty());
  int64_t g0 = *store_->catalogue_generation();
  ASSERT_TRUE(store_->promote(r.id, r.version, "canary").ok());
  ASSERT_TRUE(store_->promote(r.id, r.version, "canary").ok());  // idempotent
  EXPECT_GT(*store_->catalogue_generation(), g0);
  EXPECT_EQ(store_->bundles_in_tier("canary")->size(), 1u);
  EXPECT_TRUE(store_->bundles_in_tier("stable")->empty());
  EXPECT_EQ(store_->list_promotions()->size(), 1u);
}

TEST_P(StorageTest, PublishWithATierPromotesInTheSameTransaction) {
  std::string bytes = make_bundle(pub_, {});
  BundleRecord r = record_of(bytes);
  ASSERT_TRUE(store_->publish(r, bytes, "canary").ok());
  EXPECT_EQ(store_->bundles_in_tier("canary")->size(), 1u);
  // Publishing the identical file again with another tier adds that tier.
  auto again = store_->publish(r, bytes, "stable");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, PublishOutcome::kAlreadyIdentical);
  EXPECT_EQ(store_->bundles_in_tier("stable")->size(), 1u);
  // A refused publish promotes nothing.
  BundleSpec other;
  other.payload = "different";
  std::string clash = make_bundle(pub_, other);
  ASSERT_FALSE(store_->publish(record_of(clash), clash, "prod").ok());
  EXPECT_TRUE(store_->bundles_in_tier("prod")->empty());
}

TEST_P(StorageTest, PromotingAnUnknownBundleFailsNamingIt) {
  Status s = store_->promote("nope", 3, "stable");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("nope version 3"), std::string::npos);
  EXPECT_NE(s.error().message.find("no such bundle"), std::string::npos);
}

TEST_P(StorageTest, UpsertMachineKeepsFirstSeenAndAdvisorVerdict) {
  MachineRecord m{"host-a", "canary", "a", "x86_64", "6.1.0-1", "", "[\"aa\"]", "", 100, 100};
  ASSERT_TRUE(store_->upsert_machine(m).ok());
  ASSERT_TRUE(store_->add_reports("host-a", {}, R"({"verdict":"reboot"})").ok());
  m.first_seen_unix = 200;
  m.last_seen_unix = 200;
  m.kernel_release = "6.1.0-2";
  ASSERT_TRUE(store_->upsert_machine(m).ok());
  auto got = store_->find_machine("host-a");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((**got).first_seen_unix, 100);
  EXPECT_EQ((**got).last_seen_unix, 200);
  EXPECT_EQ((**got).kernel_release, "6.1.0-2");
  EXPECT_EQ((**got).advisor_json, R"({"verdict":"reboot"})");
}

TEST_P(StorageTest, TouchMovesOnlyTheTimeOfAnUnchangedMachine) {
  MachineRecord m{"host-a", "canary", "a", "x86_64", "6.1.0-1", "", "[]", "", 100, 100, "sha1"};
  EXPECT_FALSE(*store_->touch_machine("host-a", "canary", "sha1", 150));  // not there yet
  ASSERT_TRUE(store_->upsert_machine(m).ok());
  EXPECT_TRUE(*store_->touch_machine("host-a", "canary", "sha1", 200));
  EXPECT_EQ((**store_->find_machine("host-a")).last_seen_unix, 200);
  EXPECT_FALSE(*store_->touch_machine("host-a", "canary", "sha2", 300));  // identity changed
  EXPECT_FALSE(*store_->touch_machine("host-a", "stable", "sha1", 300));  // tier changed
  EXPECT_EQ((**store_->find_machine("host-a")).last_seen_unix, 200);
}

TEST_P(StorageTest, ReportsKeepHistoryAndTheNewestStatePerPatch) {
  ASSERT_TRUE(store_->upsert_machine({"a", "t", "", "x86_64", "k", "", "[]", "", 1, 1}).ok());
  ASSERT_TRUE(store_->upsert_machine({"b", "t", "", "x86_64", "k", "", "[]", "", 1, 1}).ok());
  ASSERT_TRUE(
      store_->add_reports("a", {{0, "", "fix", 1, "deferred", "maintenance window", 10}}, "").ok());
  ASSERT_TRUE(store_->add_reports("a", {{0, "", "fix", 1, "applied", "", 20}}, "").ok());
  ASSERT_TRUE(store_->add_reports("b", {{0, "", "fix", 1, "apply-failed", "busy", 30}}, "").ok());
  auto ha = store_->history("a", 100);
  ASSERT_TRUE(ha.ok());
  ASSERT_EQ(ha->size(), 2u);
  EXPECT_EQ((*ha)[0].state, "deferred");
  EXPECT_EQ((*ha)[0].reason, "maintenance window");
  EXPECT_EQ((*ha)[1].state, "applied");
  EXPECT_LT((*ha)[0].seq, (*ha)[1].seq);
  EXPECT_EQ(store_->history("", 100)->size(), 3u);
  auto newest = store_->history("", 1);
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].machine_id, "b");
  auto states = store_->current_states();
  ASSERT_TRUE(states.ok());
  ASSERT_EQ(states->size(), 2u);
  EXPECT_EQ((*states)[0].machine_id, "a");
  EXPECT_EQ((*states)[0].state, "applied");
  EXPECT_EQ((*states)[0].reported_unix, 20);
  EXPECT_EQ((*states)[1].state, "apply-failed");
}

TEST_P(StorageTest, ConcurrentPublishesOfTheSameBundleAllSucceed) {
  std::string bytes = make_bundle(pub_, {});
  BundleRecord r = record_of(bytes);
  std::vector<std::thread> ts;
  std::atomic<int> stored{0}, identical{0}, failed{0};
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      auto out = store_->publish(r, bytes);
      if (!out.ok())
        failed++;
      else if (*out == PublishOutcome::kStored)
        stored++;
      else
        identical++;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(stored.load(), 1);
  EXPECT_EQ(identical.load(), 3);
}

INSTANTIATE_TEST_SUITE_P(Backends, StorageTest, ::testing::ValuesIn(testing::backends()),
                         [](const auto& info) { return info.param; });

TEST(OpenStorage, CreatesTheSqliteFileReadableOnlyByItsOwner) {
  testing::TempDir dir;
  auto s = open_storage("sqlite:" + dir.path() + "/nines.db");
  ASSERT_TRUE(s.ok()) << s.error().message;
  struct stat st {};
  ASSERT_EQ(stat((dir.path() + "/nines.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(OpenStorage, RefusesAnUnknownScheme) {
  auto s = open_storage("mysql://x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("unknown scheme"), std::string::npos);
}

TEST(OpenStorage, NamesThePathThatCannotBeOpened) {
  auto s = open_storage("sqlite:/nonexistent-dir/x/nines.db");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("/nonexistent-dir/x/nines.db"), std::string::npos);
}

}  // namespace
}  // namespace nines::server
