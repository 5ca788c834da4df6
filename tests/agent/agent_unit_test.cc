// Unit tests of the agent's policy, configuration, state journal, status rendering and
// metrics endpoint.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include <sodium.h>
#include <sys/stat.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/freshness.h"
#include "agent/offers.h"
#include "agent/metrics.h"
#include "agent/policy.h"
#include "agent/state.h"
#include "core/clock.h"
#include "core/fd.h"
#include "core/strings.h"

namespace nines::agent {
namespace {

std::string temp_dir() {
  char t[] = "/tmp/nines-agent-unit-XXXXXX";
  return mkdtemp(t);
}

// One request on a fresh connection to 127.0.0.1:port; the whole answer.
std::string http_exchange(int port, const std::string& request) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "connect failed";
  (void)!::write(s.get(), request.data(), request.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(s.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(Metrics, ScrapeGetsThePrometheusTextOtherPathsAndMethodsAreRefused) {
  int scrapes = 0;
  auto m = MetricsServer::start("127.0.0.1:0", [&] {
    ++scrapes;
    return std::string("# TYPE nines_agent_checks_total counter\nnines_agent_checks_total 3\n");
  });
  ASSERT_TRUE(m) << m.error().message;
  int port = (*m)->port();
  ASSERT_GT(port, 0);
  std::string ok = http_exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4\r\n"), std::string::npos) << ok;
  EXPECT_NE(ok.find("\r\n\r\n# TYPE nines_agent_checks_total counter\nnines_agent_checks_total 3\n"),
            std::string::npos)
      << ok;
  EXPECT_EQ(scrapes, 1);
  EXPECT_EQ(http_exchange(port, "GET /other HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 ", 0), 0u);
  EXPECT_EQ(http_exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
                .rfind("HTTP/1.1 405 ", 0),
            0u);
  EXPECT_EQ(http_exchange(port, "nonsense\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
  std::string head = http_exchange(port, "HEAD /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_NE(head.find("Content-Length: 67\r\n"), std::string::npos) << head;  // GET's length
  EXPECT_EQ(head.substr(head.find("\r\n\r\n") + 4), "");
  EXPECT_EQ(scrapes, 2);  // HEAD renders to give the length; refusals do not render
}

TEST(Metrics, OnlyLoopbackAddressesAreAccepted) {
  auto render = [] { return std::string(); };
  auto any = MetricsServer::start("0.0.0.0:0", render);
  ASSERT_FALSE(any);
  EXPECT_NE(any.error().message.find("only a loopback address"), std::string::npos);
  EXPECT_FALSE(MetricsServer::start("127.0.0.1", render));
  EXPECT_FALSE(MetricsServer::start("127.0.0.1:99999", render));
  EXPECT_TRUE(MetricsServer::start("[::1]:0", render) ||
              ::access("/proc/net/if_inet6", F_OK) != 0);  // no IPv6 on this machine
}

TEST(Policy, PatchBelowTheSeverityThresholdIsDeferredWithTheReason) {
  Policy p;  // default threshold: high
  Decision d = decide(p, "medium", 1000, 2000);
  EXPECT_EQ(d.action, Action::kDefer);
  EXPECT_EQ(d.reason, "below the severity threshold (medium < high)");
  EXPECT_EQ(decide(p, "critical", 1000, 2000).action, Action::kApply);
  EXPECT_EQ(decide(p, "high", 1000, 2000).action, Action::kApply);
}

TEST(Policy, PatchWithoutCvesCountsAsNegligible) {
  Policy p;
  ASSERT_TRUE(set_policy_key(p, "severity", "low"));
  EXPECT_EQ(decide(p, "", 0, 10).action, Action::kDefer);
  ASSERT_TRUE(set_policy_key(p, "severity", "negligible"));
  EXPECT_EQ(decide(p, "", 0, 10).action, Action::kApply);
}

TEST(Policy, CutoffDateHoldsBackLaterPatchesAndIncludesTheWholeDay) {
  Policy p;
  ASSERT_TRUE(set_policy_key(p, "cutoff-date", "2026-11-01"));
  int64_t day_end = *p.cutoff_unix;
  EXPECT_EQ(decide(p, "high", day_end, day_end + 100).action, Action::kApply);
  Decision d = decide(p, "high", day_end + 1, day_end + 100);
  EXPECT_EQ(d.action, Action::kDefer);
  EXPECT_NE(d.reason.find("held back by the cut-off date"), std::string::npos) << d.reason;
  ASSERT_TRUE(set_policy_key(p, "cutoff-date", "none"));
  EXPECT_EQ(decide(p, "high", day_end + 1, day_end + 100).action, Action::kApply);
}

TEST(Policy, DelayDefersUntilPublishedPlusDelay) {
  Policy p;
  ASSERT_TRUE(set_policy_key(p, "patch-delay", "2h"));
  Decision d = decide(p, "critical", 1000, 1000 + 3600);
  EXPECT_EQ(d.action, Action::kDefer);
  EXPECT_EQ(d.until_unix, 1000 + 7200);
  EXPECT_NE(d.reason.find("waiting for the patch delay until 1970-01-01T02:16:40Z"),
            std::string::npos)
      << d.reason;
  EXPECT_EQ(decide(p, "critical", 1000, 1000 + 7200).action, Action::kApply);
}

TEST(Policy, NoApplyModeDefersEverything) {
  Policy p;
  ASSERT_TRUE(set_policy_key(p, "mode", "no-apply"));
  Decision d = decide(p, "critical", 0, 10);
  EXPECT_EQ(d.action, Action::kDefer);
  EXPECT_EQ(d.reason, "policy: mode is no-apply");
}

TEST(Config, BadValuesAreRefusedNamingKeyAndValue) {
  Policy p;
  auto st = set_policy_key(p, "severity", "urgent");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("severity: 'urgent' is not one of"), std::string::npos);
  EXPECT_FALSE(set_policy_key(p, "mode", "sometimes"));
  EXPECT_FALSE(set_policy_key(p, "check-interval", "soon"));
  EXPECT_FALSE(set_policy_key(p, "cutoff-date", "yesterday"));
  EXPECT_FALSE(set_policy_key(p, "remote-server", "ftp://x"));
  EXPECT_FALSE(set_policy_key(p, "metrics-listen", "0.0.0.0:9100"));
  auto unknown = set_policy_key(p, "colour", "blue");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown key 'colour'"), std::string::npos);
}

TEST(Config, DurationsParseWithUnits) {
  EXPECT_EQ(*parse_duration("90"), 90);
  EXPECT_EQ(*parse_duration("15m"), 900);
  EXPECT_EQ(*parse_duration("2h"), 7200);
  EXPECT_EQ(*parse_duration("1d"), 86400);
  EXPECT_FALSE(parse_duration("m"));
  EXPECT_EQ(format_duration(3600), "1h");
  EXPECT_EQ(format_duration(90), "90s");
}

TEST(Config, SavedPolicyLoadsBackAndDefaultsAreImplicit) {
  std::string dir = temp_dir();
  std::string file = dir + "/etc/nines/config.toml";
  auto missing = load_policy(file);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->check_interval_s, 3600);
  EXPECT_EQ(missing->severity, "high");
  Policy p;
  ASSERT_TRUE(set_policy_key(p, "check-interval", "30m"));
  ASSERT_TRUE(set_policy_key(p, "cutoff-date", "2026-10-01"));
  ASSERT_TRUE(set_policy_key(p, "remote-server", "http://127.0.0.1:9090"));
  ASSERT_TRUE(save_policy(file, p));
  auto text = read_file(file);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->find("severity"), std::string::npos) << "defaults are not written";
  auto back = load_policy(file);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->check_interval_s, 1800);
  EXPECT_EQ(back->cutoff_text, "2026-10-01");
  EXPECT_EQ(back->remote_server, "http://127.0.0.1:9090");
  std::filesystem::remove_all(dir);
}

TEST(Config, FileWithUnknownKeyOrNonAsciiIsRefusedNamingTheFile) {
  std::string dir = temp_dir();
  ASSERT_TRUE(write_file_atomic(dir + "/a.toml", "colour = \"blue\"\n"));
  auto a = load_policy(dir + "/a.toml");
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find(dir + "/a.toml"), std::string::npos);
  ASSERT_TRUE(write_file_atomic(dir + "/b.toml", "tier = \"caf\xc3\xa9\"\n"));
  EXPECT_FALSE(load_policy(dir + "/b.toml"));
  std::filesystem::remove_all(dir);
}

TEST(Config, PathsFollowTheRoot) {
  Paths p = Paths::make("/tmp/x/");
  EXPECT_EQ(p.config_file, "/tmp/x/etc/nines/config.toml");
  EXPECT_EQ(p.state_db(), "/tmp/x/var/lib/nines/state.db");
  EXPECT_EQ(p.socket_path, "/tmp/x/run/nines/agent.sock");
}

TEST(State, RowsAndKeysSurviveReopening) {
  std::string dir = temp_dir();
  {
    auto db = StateDb::open(dir + "/s/state.db");
    ASSERT_TRUE(db) << db.error().message;
    PatchRow r;
    r.id = "fix-a";
    r.version = 2;
    r.kind = "userspace";
    r.state = RowState::kApplying;
    ASSERT_TRUE(db->upsert(r));
    ASSERT_TRUE(db->put("enabled", "1"));
  }
  auto db = StateDb::open(dir + "/s/state.db");
  ASSERT_TRUE(db);
  auto row = db->patch("fix-a", 2);
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->state, RowState::kApplying);
  EXPECT_GT((*row)->updated_unix, 0);
  EXPECT_EQ(**db->get("enabled"), "1");
  EXPECT_FALSE(*db->get("missing"));
  std::filesystem::remove_all(dir);
}

TEST(Control, NoAgentRunningIsAnErrorNamingTheSocket) {
  std::string dir = temp_dir();
  Paths p = Paths::make(dir);
  auto r = request(p, "status", 1);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("agent socket " + dir + "/run/nines/agent.sock: connect"),
            std::string::npos)
      << r.error().message;
  auto saved = saved_status(p);
  ASSERT_FALSE(saved);
  EXPECT_NE(saved.error().message.find("no agent state at " + dir + "/var/lib/nines/state.db"),
            std::string::npos)
      << saved.error().message;
  std::filesystem::remove_all(dir);
}

TEST(StatusFormat, YamlAndHumaneCarryTheFixesAndTheirReasons) {
  nlohmann::json s = {
      {"agent", {{"running", true}, {"pid", 7}}},
      {"server", "http://127.0.0.1:1"},
      {"last_check", "2026-11-29T18:00:00Z"},
      {"next_check", nullptr},
      {"kernel", {{"release", "6.1.0"}, {"livepatch", false}, {"livepatch_reason", "absent"}}},
      {"targets",
       {{{"name", "libfoo.so"},
         {"build_id", "abcdef"},
         {"patch", "fix-a"},
         {"version", 1},
         {"patched", {1, 2}},
         {"not_patched", {{{"pid", 3}, {"reason", "apply failed: x"}}}}}}},
      {"fixes",
       {{{"cve", "CVE-1"},
         {"severity", "medium"},
         {"patch", "fix-a"},
         {"version", 1},
         {"state", "deferred"},
         {"reason", "below the severity threshold (medium < high)"}}}}};
  std::string h = format_status(s, "humane", true);
  EXPECT_NE(h.find("CVE-1"), std::string::npos);
  EXPECT_NE(h.find("not applied: below the severity threshold"), std::string::npos) << h;
  EXPECT_NE(h.find("patched:     1, 2"), std::string::npos) << h;
  EXPECT_NE(h.find("pid 3: apply failed: x"), std::string::npos) << h;
  std::string y = format_status(s, "yaml", false);
  EXPECT_NE(y.find("next_check: null"), std::string::npos) << y;
  EXPECT_NE(y.find("  - cve: \"CVE-1\""), std::string::npos) << y;
  EXPECT_EQ(nlohmann::json::parse(format_status(s, "json", false)), s);
}


// --- the check-in answer (offers.h): total, bounded, reasoned -------------------------------

const std::string kSha(64, 'a');

TEST(Offers, ValidOffersAreReadAndHintsAreOptional) {
  auto a = parse_checkin_answer(
      R"({"tier": "stable", "bundles": [{"id": "fix-1", "version": 3, "sha256": ")" + kSha +
      R"(", "kind": "userspace", "target_build_id": "ab12", "published_unix": 5},
          {"id": "fix-2", "version": 1, "sha256": ")" + kSha + R"("}]})");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->tier, "stable");
  ASSERT_EQ(a->offers.size(), 2u);
  EXPECT_EQ(a->offers[0].version, 3);
  EXPECT_EQ(a->offers[0].published_unix, 5);
  EXPECT_EQ(a->offers[1].kind, "");
  EXPECT_TRUE(a->rejected.empty());
  EXPECT_FALSE(a->freshness);
}

TEST(Offers, WrongTypesAndMissingFieldsRefuseTheOfferWithItsReason) {
  auto a = parse_checkin_answer(R"({"bundles": [{"id": 5, "version": 1, "sha256": ")" + kSha +
                                R"("}, {"id": "x", "sha256": ")" + kSha +
                                R"("}, {"id": "x", "version": 2, "sha256": "ABC"},
      {"id": "x", "version": 2, "sha256": ")" + kSha + R"(", "published_unix": "soon"},
      {"id": "x", "version": 1e300, "sha256": ")" + kSha + R"("}, [], null, "s"]})");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(a->offers.empty());
  ASSERT_EQ(a->rejected.size(), 8u);
  EXPECT_EQ(a->rejected[0].reason, "bundles[0].id: expected a string, got number");
  EXPECT_EQ(a->rejected[1].reason, "bundles[1].version: missing");
  EXPECT_EQ(a->rejected[1].id, "x");
  EXPECT_NE(a->rejected[2].reason.find("sha256: 'ABC' is not 64 lowercase hex"), std::string::npos);
  EXPECT_EQ(a->rejected[3].reason, "bundles[3].published_unix: expected an integer, got string");
  EXPECT_EQ(a->rejected[4].reason, "bundles[4].version: expected an integer, got number");
  EXPECT_EQ(a->rejected[5].reason, "bundles[5]: expected an object, got array");
}

TEST(Offers, AnswersThatCannotBeUsedAreRefusedAsAWhole) {
  EXPECT_NE(parse_checkin_answer(R"({"bundles": 5})").error().message.find(
                "bundles: expected an array, got number"),
            std::string::npos);
  EXPECT_NE(parse_checkin_answer("[1]").error().message.find("expected an object"),
            std::string::npos);
  EXPECT_NE(parse_checkin_answer("{").error().message.find("not JSON"), std::string::npos);
  std::string deep = R"({"bundles": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_NE(parse_checkin_answer(deep).error().message.find("nested deeper than 32"),
            std::string::npos);
  EXPECT_NE(parse_checkin_answer(std::string(kMaxCheckinAnswerBytes + 1, ' '))
                .error()
                .message.find("limit"),
            std::string::npos);
  EXPECT_NE(parse_checkin_answer(R"({"tier": 7})").error().message.find("tier: expected a string"),
            std::string::npos);
}

TEST(Offers, DepthIsCountedOutsideStringsOnly) {
  EXPECT_TRUE(check_json_depth(R"({"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})", 2).ok());
  EXPECT_TRUE(check_json_depth(R"({"a": "\"[[[["})", 1).ok());
  EXPECT_FALSE(check_json_depth("[[[", 2).ok());
}

TEST(Offers, MalformedFreshnessIsReportedNotFatal) {
  auto a = parse_checkin_answer(R"({"bundles": [], "freshness": {"document": 5}})");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->freshness);
  EXPECT_NE(a->freshness_error.find("freshness.document: expected a string"), std::string::npos)
      << a->freshness_error;
}

// --- the signed catalogue (freshness.h) -------------------------------------------------------

struct FreshnessKeys {
  FreshnessKeys() {
    EXPECT_GE(sodium_init(), 0);
    key = bundle::generate_keypair();
    trusted.push_back({key.public_key, "test.pub"});
  }
  FreshnessEnvelope envelope(const std::string& doc) {
    return {doc, sign_freshness(doc, key.secret_key), to_hex(key.public_key.bytes)};
  }
  bundle::KeyPair key;
  std::vector<bundle::TrustedKey> trusted;
};

const std::string kDoc =
    R"({"type": "nines-freshness", "format": 1, "tier": "stable", "generation": 42,
        "issued": "2026-12-03T18:00:00Z", "expires": "2026-12-04T18:00:00Z",
        "bundles": [{"id": "fix-1", "version": 3, "sha256": ")" +
    kSha + R"("}]})";

TEST(Freshness, SignedDocumentVerifiesAndListsNewestVersions) {
  FreshnessKeys k;
  auto d = verify_freshness(k.envelope(kDoc), k.trusted, "stable");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->generation, 42);
  EXPECT_EQ(d->issued_unix, *parse_rfc3339("2026-12-03T18:00:00Z"));
  EXPECT_EQ(d->bundles.at("fix-1").version, 3);
}

TEST(Freshness, AlteredUntrustedOrOtherTierDocumentsAreRefused) {
  FreshnessKeys k;
  auto env = k.envelope(kDoc);
  env.document[env.document.find("42")] = '9';
  EXPECT_NE(verify_freshness(env, k.trusted, "stable").error().message.find("bad signature"),
            std::string::npos);
  FreshnessKeys other;
  EXPECT_NE(verify_freshness(other.envelope(kDoc), k.trusted, "stable")
                .error()
                .message.find("signed by untrusted key"),
            std::string::npos);
  EXPECT_NE(verify_freshness(k.envelope(kDoc), k.trusted, "beta").error().message.find(
                "for tier 'stable', this machine is in 'beta'"),
            std::string::npos);
  EXPECT_NE(verify_freshness(k.envelope(R"({"type": "x"})"), k.trusted, "").error().message.find(
                "type"),
            std::string::npos);
}

// --- the version floor and secrets' modes ------------------------------------------------------

TEST(State, VersionFloorOnlyRisesAndComesFromAnOlderJournal) {
  std::string dir = temp_dir();
  {
    auto db = StateDb::open(dir + "/state.db");
    ASSERT_TRUE(db.ok());
    PatchRow r;
    r.id = "fix-1";
    r.version = 4;
    r.state = RowState::kApplied;
    ASSERT_TRUE(db->upsert(r).ok());
  }
  auto db = StateDb::open(dir + "/state.db");  // the floor of an older journal's applied row
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*db->floor("fix-1"), 4);
  ASSERT_TRUE(db->raise_floor("fix-1", 2).ok());
  EXPECT_EQ(*db->floor("fix-1"), 4);
  ASSERT_TRUE(db->raise_floor("fix-1", 7).ok());
  EXPECT_EQ(*db->floor("fix-1"), 7);
  EXPECT_EQ(*db->floor("other"), 0);
  EXPECT_EQ(row_state_of("refused"), RowState::kRefused);
  EXPECT_STREQ(to_string(RowState::kApplyFailed), "apply-failed");
  std::filesystem::remove_all(dir);
}

TEST(Config, FileHoldingTheProxyPasswordIsWrittenOwnerOnly) {
  std::string dir = temp_dir();
  Policy p;
  ASSERT_TRUE(set_policy_key(p, "http-proxy", "http://u:secret@127.0.0.1:3128").ok());
  ASSERT_TRUE(save_policy(dir + "/etc/config.toml", p).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/etc/config.toml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::filesystem::remove_all(dir);
}

TEST(Config, DownloadCapTimeoutAndCatalogueAgeAreValidated) {
  Policy p;
  EXPECT_EQ(p.max_download, 64u << 20);
  ASSERT_TRUE(set_policy_key(p, "max-download", "8M").ok());
  EXPECT_EQ(p.max_download, 8u << 20);
  EXPECT_EQ(policy_value(p, "max-download"), "8M");
  EXPECT_FALSE(set_policy_key(p, "max-download", "65M").ok());
  EXPECT_FALSE(set_policy_key(p, "max-download", "lots").ok());
  ASSERT_TRUE(set_policy_key(p, "catalogue-max-age", "2h").ok());
  EXPECT_EQ(p.catalogue_max_age_s, 7200);
  ASSERT_TRUE(set_policy_key(p, "server-timeout", "30s").ok());
  EXPECT_EQ(p.server_timeout_s, 30);
}

}  // namespace
}  // namespace nines::agent
