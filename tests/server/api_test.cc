// The /v1 API over real HTTP on a loopback port, against both storage back ends.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <strings.h>

#include <algorithm>
#include <thread>
#include <sys/socket.h>
#include <sys/time.h>

#include "core/clock.h"
#include "core/fd.h"
#include "core/subprocess.h"
#include "core/strings.h"
#include "server/freshness.h"
#include "server/tokens.h"
#include "test_support.h"

namespace nines::server {
namespace {

using nlohmann::json;
using testing::BundleSpec;
using testing::make_bundle;
using testing::RunningServer;

constexpr const char* kBuildIdA = "0123456789abcdef0123456789abcdef01234567";
constexpr const char* kBuildIdB = "fedcba9876543210fedcba9876543210fedcba98";

json checkin_body(std::vector<std::string> build_ids, std::string kernel = "6.1.0-28-cloud-amd64") {
  return json{
      {"name", "host"}, {"arch", "x86_64"}, {"kernel_release", kernel}, {"build_ids", build_ids}};
}

std::string error_of(const HttpReply& r) {
  json j = json::parse(r.body, nullptr, false);
  return j.is_object() ? j.value("error", "") : r.body;
}

// One HTTP connection to the server, byte by byte: for what httplib's client hides, such as
// several requests on one connection and whether the server closed it.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    timeval tv{30, 0};  // a server that never answers fails the test instead of hanging it
    setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  bool connected() const { return connected_; }
  // Sends all of `bytes`; false when the connection is gone.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads one response (headers and a Content-Length body) and returns it whole; "" when
  // the connection ends first.
  std::string read_response() {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return "";
    size_t length = 0;
    for (size_t at = buf_.find("\r\n"); at < end; at = buf_.find("\r\n", at + 2))
      if (strncasecmp(buf_.c_str() + at + 2, "Content-Length:", 15) == 0)
        length = std::stoul(buf_.substr(at + 17));
    while (buf_.size() < end + 4 + length)
      if (!fill()) return "";
    std::string r = buf_.substr(0, end + 4 + length);
    buf_.erase(0, r.size());
    return r;
  }

 private:
  bool fill() {
    char b[65536];
    ssize_t n = recv(fd_.get(), b, sizeof b, 0);
    if (n <= 0) return false;
    buf_.append(b, static_cast<size_t>(n));
    return true;
  }
  Fd fd_;
  bool connected_ = false;
  std::string buf_;
};

int status_of(const std::string& response) {
  return response.size() > 12 ? std::atoi(response.c_str() + 9) : 0;
}

std::string post_request(const std::string& path, const std::string& token,
                         const std::string& framing, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/json\r\n" + framing + "\r\n\r\n" + body;
}

const std::string kHealthRequest = "GET /v1/health HTTP/1.1\r\nHost: t\r\n\r\n";

class ApiTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ServeOptions opts;
    opts.machine_rate = 1000;
    opts.machine_burst = 1000;
    srv_ = std::make_unique<RunningServer>(GetParam(), opts);
    ASSERT_FALSE(srv_->admin_token().empty());
  }
  // Publishes (and optionally promotes) a bundle; returns the publish answer.
  json publish(const BundleSpec& spec, const std::string& tier = "") {
    std::string bytes = make_bundle(srv_->publisher(), spec);
    auto r = srv_->admin().post_bytes("/v1/bundles" + (tier.empty() ? "" : "?tier=" + tier), bytes);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : json();
  }
  int port() const { return std::stoi(srv_->url().substr(srv_->url().rfind(':') + 1)); }
  std::unique_ptr<RunningServer> srv_;
};

TEST_P(ApiTest, HealthNeedsNoToken) {
  auto r = srv_->client("").get_json("/v1/health");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["backend"], GetParam());
}

TEST_P(ApiTest, PublishStoresAVerifiedBundleAndAnswersItsImmutableUrl) {
  json j = publish({});
  EXPECT_EQ(j["status"], "stored");
  EXPECT_EQ(j["id"], "fix-libfoo");
  EXPECT_EQ(j["url"], "/v1/bundles/sha256/" + j["sha256"].get<std::string>());
}

TEST_P(ApiTest, PublishRefusesABundleSignedByAnUntrustedKey) {
  testing::Publisher stranger;
  std::string bytes = make_bundle(stranger, {});
  auto r = srv_->admin().post("/v1/bundles", bytes, "application/octet-stream");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 422);
  EXPECT_NE(error_of(*r).find("untrusted"), std::string::npos) << error_of(*r);
  EXPECT_TRUE(srv_->server().storage().list_bundles()->empty());
}

TEST_P(ApiTest, PublishRefusesSomethingThatIsNotABundle) {
  auto r = srv_->admin().post("/v1/bundles", "hello", "application/octet-stream");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(error_of(*r).find("not a nines bundle"), std::string::npos);
}

TEST_P(ApiTest, PublishOfTheSameIdAndVersionIsRefusedUnlessIdentical) {
  std::string bytes = make_bundle(srv_->publisher(), {});
  auto first = srv_->admin().post("/v1/bundles", bytes, "application/octet-stream");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, 201);
  auto again = srv_->admin().post("/v1/bundles", bytes, "application/octet-stream");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(json::parse(again->body)["status"], "identical");
  BundleSpec other;
  other.payload = "another payload";
  auto clash = srv_->admin().post("/v1/bundles", make_bundle(srv_->publisher(), other),
                                  "application/octet-stream");
  ASSERT_TRUE(clash.ok());
  EXPECT_EQ(clash->status, 409);
  EXPECT_NE(error_of(*clash).find("different content"), std::string::npos);
}

TEST_P(ApiTest, TokensAreCheckedForEveryProtectedEndpoint) {
  std::string machine = srv_->enroll("host-a", "canary");
  auto none = srv_->client("").get("/v1/bundles");
  EXPECT_EQ(none->status, 401);
  EXPECT_NE(error_of(*none).find("missing bearer token"), std::string::npos);
  auto forged = srv_->client(generate_token(TokenKind::kAdmin)).get("/v1/bundles");
  EXPECT_EQ(forged->status, 401);
  EXPECT_NE(error_of(*forged).find("unknown token"), std::string::npos);
  auto junk = srv_->client("not-a-token").get("/v1/bundles");
  EXPECT_EQ(junk->status, 401);
  auto as_machine = srv_->client(machine).post("/v1/bundles", "x", "application/octet-stream");
  EXPECT_EQ(as_machine->status, 403);
  auto token_by_machine =
      srv_->client(machine).post("/v1/tokens", R"({"kind":"admin"})", "application/json");
  EXPECT_EQ(token_by_machine->status, 403);
}

TEST_P(ApiTest, AnEnrollTokenEnrollsButCannotCheckIn) {
  auto t = srv_->admin().post_json("/v1/tokens", {{"kind", "enroll"}, {"tier", "canary"}});
  ASSERT_TRUE(t.ok());
  std::string enroll = (*t)["token"];
  EXPECT_TRUE(token_well_formed(enroll));
  auto c = srv_->client(enroll).post("/v1/checkin", checkin_body({}).dump(), "application/json");
  EXPECT_EQ(c->status, 403);
  auto m = srv_->client(enroll).post_json("/v1/enroll", {{"machine_id", "host-a"}});
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)["tier"], "canary");
}

// Tokens are listed by id (never the token), revoked by id, and expire: an expired or
// revoked token is refused like an unknown one, with the reason.
TEST_P(ApiTest, TokensAreListedRevokedAndExpire) {
  auto mirror = srv_->admin().post_json("/v1/tokens", {{"kind", "mirror"}, {"name", "site-b"}});
  ASSERT_TRUE(mirror.ok()) << mirror.error().message;
  EXPECT_TRUE((*mirror)["expires"].is_null()) << "a mirror token does not expire by default";
  auto enroll = srv_->admin().post_json("/v1/tokens", {{"kind", "enroll"}, {"tier", "canary"}});
  ASSERT_TRUE(enroll.ok());
  std::optional<int64_t> e = parse_rfc3339((*enroll)["expires"].get<std::string>());
  ASSERT_TRUE(e.has_value()) << enroll->dump();
  EXPECT_NEAR(static_cast<double>(*e - unix_now()), 30.0 * 86400, 5) << "enroll: 30 days";
  auto brief = srv_->admin().post_json(
      "/v1/tokens", {{"kind", "enroll"}, {"tier", "canary"}, {"expires_in_s", 1}});
  ASSERT_TRUE(brief.ok());
  auto bad = srv_->admin().post("/v1/tokens", R"({"kind":"admin","expires_in_s":-1})",
                                "application/json");
  EXPECT_EQ(bad->status, 400);

  auto list = srv_->admin().get_json("/v1/tokens");
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ((*list)["tokens"].size(), 4u) << list->dump();  // the first admin token too
  EXPECT_EQ(list->dump().find("n9"), std::string::npos) << "a list never shows a token";
  int mirrors = 0;
  for (const json& t : (*list)["tokens"])
    if (t["id"] == (*mirror)["id"]) {
      ++mirrors;
      EXPECT_EQ(t["name"], "site-b");
      EXPECT_EQ(t["kind"], "mirror");
    }
  EXPECT_EQ(mirrors, 1);

  // Expiry: the one-second enroll token is refused once its time has passed.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto late = srv_->client((*brief)["token"].get<std::string>())
                  .post("/v1/enroll", R"({"machine_id":"late"})", "application/json");
  EXPECT_EQ(late->status, 401);
  EXPECT_NE(error_of(*late).find("token expired at"), std::string::npos) << error_of(*late);

  // Revocation by id.
  std::string mirror_token = (*mirror)["token"];
  EXPECT_EQ(srv_->client(mirror_token).get("/v1/bundles")->status, 200);
  auto revoked = srv_->admin().del("/v1/tokens/" + (*mirror)["id"].get<std::string>());
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_EQ((*revoked)["kind"], "mirror");
  EXPECT_EQ(srv_->client(mirror_token).get("/v1/bundles")->status, 401);
  EXPECT_EQ(srv_->admin().del_raw("/v1/tokens/" + (*mirror)["id"].get<std::string>())->status,
            404);
  EXPECT_EQ(srv_->client(mirror_token).del_raw("/v1/tokens/0123456789abcdef")->status, 401);
  std::string own = token_id(hash_token(srv_->admin_token()));
  EXPECT_EQ(srv_->admin().del_raw("/v1/tokens/" + own)->status, 409);
}

// Enrollment creates, never seizes: an enroll token that names an existing machine id is
// refused (409) unless the request carries that machine's current token; an admin may
// replace a machine by saying so. Either way the old token is retired.
TEST_P(ApiTest, EnrollingAnExistingMachineNeedsItsCurrentTokenOrAnAdmin) {
  std::string first = srv_->enroll("host-a", "canary");
  auto t = srv_->admin().post_json("/v1/tokens", {{"kind", "enroll"}, {"tier", "canary"}});
  ASSERT_TRUE(t.ok());
  ApiClient enroller = srv_->client((*t)["token"].get<std::string>());
  auto seize = enroller.post("/v1/enroll", json{{"machine_id", "host-a"}}.dump(), "application/json");
  ASSERT_TRUE(seize.ok());
  EXPECT_EQ(seize->status, 409);
  EXPECT_NE(error_of(*seize).find("machine host-a is already enrolled"), std::string::npos)
      << error_of(*seize);
  std::string other = srv_->enroll("host-b", "canary");
  auto wrong = enroller.post(
      "/v1/enroll", json{{"machine_id", "host-a"}, {"current_token", other}}.dump(),
      "application/json");
  EXPECT_EQ(wrong->status, 409) << "another machine's token does not prove host-a";
  auto plain_admin =
      srv_->admin().post("/v1/enroll", json{{"machine_id", "host-a"}, {"tier", "canary"}}.dump(),
                         "application/json");
  EXPECT_EQ(plain_admin->status, 409) << "an admin replaces a machine only when it says so";
  // The first token still works: nothing was taken over.
  EXPECT_TRUE(srv_->client(first).post_json("/v1/checkin", checkin_body({})).ok());

  auto renewed =
      enroller.post_json("/v1/enroll", {{"machine_id", "host-a"}, {"current_token", first}});
  ASSERT_TRUE(renewed.ok()) << renewed.error().message;
  std::string second = (*renewed)["token"];
  EXPECT_EQ(srv_->client(first).post("/v1/checkin", checkin_body({}).dump(), "application/json")->status,
            401);
  EXPECT_TRUE(srv_->client(second).post_json("/v1/checkin", checkin_body({})).ok());

  auto replaced = srv_->admin().post_json(
      "/v1/enroll", {{"machine_id", "host-a"}, {"tier", "stable"}, {"replace", true}});
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_EQ((*replaced)["tier"], "stable");
  EXPECT_EQ(
      srv_->client(second).post("/v1/checkin", checkin_body({}).dump(), "application/json")->status,
      401);
}

// A body nested 100,000 levels deep once overflowed the server's stack in the JSON
// serializer; it is refused on its bytes, before it is parsed, and the server lives on.
TEST_P(ApiTest, DeeplyNestedJsonIsRefusedBeforeItIsParsed) {
  std::string m = srv_->enroll("a", "canary");
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string report = R"({"reports": [], "advisor": {"verdict": "none", "x": )" + deep + "}}";
  auto r = srv_->client(m).post("/v1/reports", report, "application/json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(error_of(*r).find("nested more than 32 levels deep"), std::string::npos)
      << error_of(*r);
  auto checkin = srv_->client(m).post("/v1/checkin", "{\"build_ids\": " + deep + "}",
                                      "application/json");
  EXPECT_EQ(checkin->status, 400);
  EXPECT_TRUE(srv_->client("").get_json("/v1/health").ok());
  // The deepest body the API takes is well within the limit.
  std::string ok = R"({"reports": [], "advisor": {"verdict": "none", "reasons": [], )"
                   R"("x": [[[[[[[[{"y": [1]}]]]]]]]]}})";
  EXPECT_TRUE(srv_->client(m).post_json("/v1/reports", json::parse(ok)).ok());
}

TEST_P(ApiTest, CheckInOffersTheNewestPromotedVersionPerPatchOfItsTierOnly) {
  BundleSpec v1, v2, v3, other;
  v2.version = 2;
  v3.version = 3;
  other.id = "fix-libbar";
  other.build_id = kBuildIdB;
  publish(v1, "canary");
  publish(v2, "canary");
  publish(v3);  // published, promoted nowhere yet
  publish(other, "stable");
  std::string canary = srv_->enroll("host-c", "canary");
  std::string stable = srv_->enroll("host-s", "stable");

  auto c = srv_->client(canary).post_json("/v1/checkin", checkin_body({kBuildIdA, kBuildIdB}));
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ((*c)["bundles"].size(), 1u) << c->dump();
  EXPECT_EQ((*c)["bundles"][0]["id"], "fix-libfoo");
  EXPECT_EQ((*c)["bundles"][0]["version"], 2);
  EXPECT_EQ((*c)["bundles"][0]["manifest"]["cves"][0]["id"], "CVE-2026-0001");
  EXPECT_EQ((*c)["machine_id"], "host-c");

  // The stable machine maps only libfoo: libbar's fix is in its tier but not for it.
  auto s = srv_->client(stable).post_json("/v1/checkin", checkin_body({kBuildIdA}));
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE((*s)["bundles"].empty()) << s->dump();

  ASSERT_TRUE(
      srv_->admin().post_json("/v1/bundles/fix-libfoo/3/promote", {{"tier", "canary"}}).ok());
  auto c3 = srv_->client(canary).post_json("/v1/checkin", checkin_body({kBuildIdA}));
  ASSERT_EQ((*c3)["bundles"].size(), 1u);
  EXPECT_EQ((*c3)["bundles"][0]["version"], 3);
}

// The check-in answer carries the tier's freshness document, signed by the server's
// timestamp key over the same catalogue snapshot as the offers: every patch id of the tier
// at its newest version (not only those for this machine), signed again when it changes.
TEST_P(ApiTest, CheckInCarriesTheTiersSignedFreshnessDocument) {
  BundleSpec v1, v2, other;
  v2.version = 2;
  other.id = "fix-libbar";
  other.build_id = kBuildIdB;
  json p1 = publish(v1, "canary");
  json p2 = publish(v2, "canary");
  json pb = publish(other, "canary");
  std::string m = srv_->enroll("host-c", "canary");
  auto c = srv_->client(m).post_json("/v1/checkin", checkin_body({kBuildIdA}));
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(c->contains("freshness")) << c->dump();
  const json& f = (*c)["freshness"];
  std::string document = f["document"];
  auto key = bundle::read_public_key_file(timestamp_public_path(srv_->server().timestamp_key_path()));
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(f["key"], to_hex(key->bytes));
  EXPECT_TRUE(verify_freshness(*key, document, f["signature"].get<std::string>()));
  EXPECT_FALSE(verify_freshness(*key, document + " ", f["signature"].get<std::string>()));
  json d = json::parse(document);
  EXPECT_EQ(d["type"], "nines-freshness");
  EXPECT_EQ(d["format"], 1);
  EXPECT_EQ(d["tier"], "canary");
  std::optional<int64_t> issued = parse_rfc3339(d["issued"]);
  std::optional<int64_t> expires = parse_rfc3339(d["expires"]);
  ASSERT_TRUE(issued && expires);
  EXPECT_EQ(*expires - *issued, 86400);
  EXPECT_LE(std::abs(*issued - unix_now()), 5);
  json want = json::array({{{"id", "fix-libbar"}, {"version", 1}, {"sha256", pb["sha256"]}},
                           {{"id", "fix-libfoo"}, {"version", 2}, {"sha256", p2["sha256"]}}});
  EXPECT_EQ(d["bundles"], want) << document;
  // The same snapshot: the same signed bytes; a promotion moves the generation and re-signs.
  auto again = srv_->client(m).post_json("/v1/checkin", checkin_body({kBuildIdA}));
  EXPECT_EQ((*again)["freshness"]["document"], document);
  BundleSpec v3;
  v3.version = 3;
  publish(v3, "canary");
  auto after = srv_->client(m).post_json("/v1/checkin", checkin_body({kBuildIdA}));
  json d3 = json::parse((*after)["freshness"]["document"].get<std::string>());
  EXPECT_GT(d3["generation"].get<int64_t>(), d["generation"].get<int64_t>());
  EXPECT_EQ(d3["bundles"][1]["version"], 3);
  EXPECT_EQ((*after)["bundles"][0]["version"], 3);
  (void)p1;
}

TEST_P(ApiTest, ReportsKeepTheMachinesCatalogueStateForTheFleetView) {
  std::string m = srv_->enroll("host-c", "canary");
  json stale = {{"state", "stale"}, {"since", "2026-12-01T00:00:00Z"}, {"reason", "expired"}};
  auto r = srv_->client(m).post_json("/v1/reports", {{"reports", json::array()}, {"catalogue", stale}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto fleet = srv_->admin().get_json("/v1/fleet");
  ASSERT_TRUE(fleet.ok());
  EXPECT_EQ((*fleet)["machine_list"][0]["catalogue"], stale) << fleet->dump();
  auto bad = srv_->client(m).post("/v1/reports",
                                  json{{"reports", json::array()},
                                       {"catalogue", {{"state", "rotten"}}}}.dump(),
                                  "application/json");
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(error_of(*bad).find("catalogue: state"), std::string::npos) << error_of(*bad);
  // Without the member, the state is kept.
  ASSERT_TRUE(srv_->client(m).post_json("/v1/reports", {{"reports", json::array()}}).ok());
  EXPECT_EQ((*srv_->admin().get_json("/v1/fleet"))["machine_list"][0]["catalogue"], stale);
}

TEST_P(ApiTest, KernelBundlesAreOfferedByKernelRelease) {
  BundleSpec k;
  k.id = "klp-fix";
  k.kind = "kernel";
  k.kernel_release = "6.1.0-28-cloud-amd64";
  publish(k, "canary");
  std::string a = srv_->enroll("a", "canary");
  std::string b = srv_->enroll("b", "canary");
  auto ra = srv_->client(a).post_json("/v1/checkin", checkin_body({}, "6.1.0-28-cloud-amd64"));
  auto rb = srv_->client(b).post_json("/v1/checkin", checkin_body({}, "6.1.0-27-cloud-amd64"));
  ASSERT_TRUE(ra.ok() && rb.ok());
  ASSERT_EQ((*ra)["bundles"].size(), 1u);
  EXPECT_EQ((*ra)["bundles"][0]["kind"], "kernel");
  EXPECT_TRUE((*rb)["bundles"].empty());
}

TEST_P(ApiTest, CheckInRefusesMalformedIdentityNamingTheField) {
  std::string m = srv_->enroll("a", "canary");
  auto r = srv_->client(m).post("/v1/checkin", checkin_body({"xyz"}).dump(), "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(error_of(*r).find("build_ids[0]"), std::string::npos) << error_of(*r);
  json bad = checkin_body({});
  bad["kernel_release"] = "6.1 ; rm -rf";
  r = srv_->client(m).post("/v1/checkin", bad.dump(), "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(error_of(*r).find("kernel_release"), std::string::npos);
  r = srv_->client(m).post("/v1/checkin", "{not json", "application/json");
  EXPECT_EQ(r->status, 400);
}

TEST_P(ApiTest, BundlesDownloadBySha256WithETagAndRevalidation) {
  std::string bytes = make_bundle(srv_->publisher(), {});
  auto p = srv_->admin().post_bytes("/v1/bundles?tier=canary", bytes);
  ASSERT_TRUE(p.ok());
  std::string url = (*p)["url"];
  std::string m = srv_->enroll("a", "canary");
  auto r = srv_->client(m).get(url);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, bytes);
  std::string etag = r->header("ETag");
  EXPECT_EQ(etag, "\"" + (*p)["sha256"].get<std::string>() + "\"");
  EXPECT_NE(r->header("Cache-Control").find("immutable"), std::string::npos);
  auto again = srv_->client(m).get(url, {{"If-None-Match", etag}});
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  auto missing = srv_->client(m).get("/v1/bundles/sha256/" + std::string(64, '0'));
  EXPECT_EQ(missing->status, 404);
}

TEST_P(ApiTest, ReportsAreValidatedFieldByField) {
  publish({}, "canary");
  std::string m = srv_->enroll("a", "canary");
  auto post = [&](json lines) {
    return *srv_->client(m).post("/v1/reports", json{{"reports", lines}}.dump(),
                                 "application/json");
  };
  HttpReply r = post({{{"id", "fix-libfoo"}, {"version", 1}, {"state", "exploded"}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_of(r).find("reports[0]: state"), std::string::npos) << error_of(r);
  r = post({{{"id", "fix-libfoo"}, {"version", 1}, {"state", "deferred"}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_of(r).find("reason: required"), std::string::npos) << error_of(r);
  r = post({{{"id", "fix-libfoo"}, {"version", 9}, {"state", "applied"}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_of(r).find("no bundle fix-libfoo version 9"), std::string::npos);
  r = post({{{"id", "fix-libfoo"}, {"version", 1}, {"state", "applied"}, {"at", "yesterday"}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_of(r).find("RFC 3339"), std::string::npos);
  auto bad_adv = srv_->client(m).post(
      "/v1/reports", json{{"reports", json::array()}, {"advisor", {{"verdict", "maybe"}}}}.dump(),
      "application/json");
  EXPECT_EQ(bad_adv->status, 400);
  EXPECT_TRUE(srv_->server().storage().history("", 100)->empty());
}

TEST_P(ApiTest, MachinesReadOnlyTheirOwnReports) {
  publish({}, "canary");
  std::string a = srv_->enroll("host-a", "canary");
  std::string b = srv_->enroll("host-b", "canary");
  json line = {{"id", "fix-libfoo"}, {"version", 1}, {"state", "applied"}};
  ASSERT_TRUE(srv_->client(a).post_json("/v1/reports", {{"reports", {line}}}).ok());
  json deferred = {
      {"id", "fix-libfoo"}, {"version", 1}, {"state", "deferred"}, {"reason", "policy: weekend"}};
  ASSERT_TRUE(srv_->client(b).post_json("/v1/reports", {{"reports", {deferred}}}).ok());

  auto other = srv_->client(a).get("/v1/machines/host-b/reports");
  EXPECT_EQ(other->status, 403);
  EXPECT_NE(error_of(*other).find("only its own"), std::string::npos);
  auto own = srv_->client(a).get_json("/v1/machines/host-a/reports");
  ASSERT_TRUE(own.ok());
  ASSERT_EQ((*own)["reports"].size(), 1u);
  // Even asking by parameter, a machine's history is its own.
  auto mine = srv_->client(a).get_json("/v1/reports?machine=host-b");
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ((*mine)["reports"].size(), 1u);
  EXPECT_EQ((*mine)["reports"][0]["machine_id"], "host-a");
  auto admin = srv_->admin().get_json("/v1/machines/host-b/reports");
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ((*admin)["reports"][0]["reason"], "policy: weekend");
  auto all = srv_->admin().get_json("/v1/reports");
  EXPECT_EQ((*all)["reports"].size(), 2u);
}

TEST_P(ApiTest, FleetShowsMachinesByStateAndThoseNeedingAReboot) {
  publish({}, "canary");
  std::string a = srv_->enroll("host-a", "canary");
  std::string b = srv_->enroll("host-b", "canary");
  for (const std::string& t : {a, b})
    ASSERT_TRUE(srv_->client(t).post_json("/v1/checkin", checkin_body({kBuildIdA})).ok());
  json applied = {{"id", "fix-libfoo"}, {"version", 1}, {"state", "applied"}};
  json advisor = {{"verdict", "reboot"}, {"reasons", {"kernel 6.1.0-29 installed"}}};
  ASSERT_TRUE(srv_->client(a)
                  .post_json("/v1/reports", {{"reports", {applied}}, {"advisor", advisor}})
                  .ok());
  auto f = srv_->admin().get_json("/v1/fleet");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ((*f)["machines"]["total"], 2);
  EXPECT_EQ((*f)["machines"]["by_state"]["up-to-date"], 1);
  EXPECT_EQ((*f)["machines"]["by_state"]["pending"], 1);
  EXPECT_EQ((*f)["machines"]["needing_reboot"], 1);
  EXPECT_EQ((*f)["reboot"][0]["machine_id"], "host-a");
  EXPECT_EQ((*f)["cves_published"], 1);
  EXPECT_EQ((*f)["cves"][0]["machines_affected"], 2);
  EXPECT_EQ((*f)["cves"][0]["machines_applied"], 1);
  EXPECT_EQ((*f)["rollout"][0]["tier"], "canary");
  EXPECT_EQ((*f)["rollout"][0]["applied"], 1);
  EXPECT_EQ((*f)["rollout"][0]["pending"], 1);
  auto ms = srv_->admin().get_json("/v1/machines");
  ASSERT_TRUE(ms.ok());
  EXPECT_EQ((*ms)["machines"].size(), 2u);
}

TEST_P(ApiTest, MetricsAreInThePrometheusTextFormat) {
  std::string m = srv_->enroll("a", "canary");
  ASSERT_TRUE(srv_->client(m).post_json("/v1/checkin", checkin_body({})).ok());
  auto r = srv_->admin().get("/metrics");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->header("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(r->body.find("# TYPE nines_checkins_total counter\nnines_checkins_total 1\n"),
            std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("nines_machines{state=\"pending\"} 0"), std::string::npos);
  EXPECT_NE(r->body.find("nines_http_request_duration_seconds_bucket{route=\"/v1/checkin\""),
            std::string::npos);
  EXPECT_EQ(srv_->client(m).get("/metrics")->status, 403);
}

TEST_P(ApiTest, OversizedJsonBodiesAreRefusedBeforeTheyAreRead) {
  std::string m = srv_->enroll("a", "canary");
  std::string big(kMaxJsonBody + 10, ' ');
  auto r = srv_->client(m).post("/v1/checkin", big, "application/json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(error_of(*r).find("more than the limit"), std::string::npos);
}

TEST_P(ApiTest, MembersOfTheWrongTypeAre400NotACrash) {
  auto r = srv_->admin().post("/v1/tokens", R"({"kind": 5, "tier": "canary"})", "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(error_of(*r).find("kind: not a string"), std::string::npos) << error_of(*r);
  r = srv_->admin().post("/v1/enroll", R"({"machine_id": ["x"], "tier": "t"})", "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(error_of(*r).find("machine_id: not a string"), std::string::npos);
}

// The refusals below are answered to httplib's client, which closes its connection after
// each request (no keep-alive) and sends its whole body before it reads the answer. A server
// that answered and closed without reading the body would leave bytes unread in its socket,
// and the kernel's reset would race the answer to the client.
TEST_P(ApiTest, ChunkedJsonBodiesAreRefused) {
  std::string m = srv_->enroll("a", "canary");
  httplib::Client c("127.0.0.1", port());
  std::string body = checkin_body({}).dump();
  auto r = c.Post(
      "/v1/checkin", {{"Authorization", "Bearer " + m}}, body.size(),
      [&body](size_t offset, size_t length, httplib::DataSink& sink) {
        sink.write(body.data() + offset, length);
        return true;
      },
      "application/json");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->status, 200);  // a known length streams fine
  r = c.Post(
      "/v1/checkin", {{"Authorization", "Bearer " + m}},
      [&body](size_t offset, httplib::DataSink& sink) {
        if (offset == 0)
          sink.write(body.data(), body.size());
        else
          sink.done();
        return true;
      },
      "application/json");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->status, 411);
}

TEST_P(ApiTest, OversizedJsonBodiesAreAnsweredToAClientThatClosesItsConnection) {
  std::string m = srv_->enroll("a", "canary");
  httplib::Client c("127.0.0.1", port());
  auto r = c.Post("/v1/checkin", {{"Authorization", "Bearer " + m}},
                  std::string(kMaxJsonBody + 10, ' '), "application/json");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->status, 413);
}

// Uploads `bytes` to /v1/bundles with chunked transfer encoding (no Content-Length).
httplib::Result post_bundle_chunked(int port, const std::string& token, const std::string& bytes) {
  httplib::Client c("127.0.0.1", port);
  return c.Post(
      "/v1/bundles", {{"Authorization", "Bearer " + token}},
      [&bytes](size_t offset, httplib::DataSink& sink) {
        if (offset < bytes.size())
          sink.write(bytes.data() + offset, std::min<size_t>(4096, bytes.size() - offset));
        else
          sink.done();
        return true;
      },
      "application/octet-stream");
}

TEST_P(ApiTest, BundleUploadsMayBeChunked) {
  std::string bytes = make_bundle(srv_->publisher(), {});
  auto r = post_bundle_chunked(port(), srv_->admin_token(), bytes);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->status, 201) << r->body;
}

// A refused body is read and dropped, so the connection stays in step: the next request on
// it is answered as itself, not taken from the rest of the refused body.
TEST_P(ApiTest, RefusedBodiesAreReadSoTheConnectionServesTheNextRequest) {
  std::string m = srv_->enroll("a", "canary");
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  std::string body = checkin_body({}).dump();
  std::string chunked = fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", body.size(), body);
  std::string big(kMaxJsonBody + 10, ' ');
  struct Case {
    std::string request;
    int status;
  };
  for (const Case& c :
       {Case{post_request("/v1/checkin", m, "Transfer-Encoding: chunked", chunked), 411},
        Case{post_request("/v1/checkin", m, fmt::format("Content-Length: {}", big.size()), big),
             413},
        Case{post_request("/v1/nothing", m, "Content-Length: 2", "{}"), 404}}) {
    ASSERT_TRUE(conn.send(c.request));
    EXPECT_EQ(status_of(conn.read_response()), c.status) << c.request.substr(0, 60);
    ASSERT_TRUE(conn.send(kHealthRequest));
    std::string health = conn.read_response();
    EXPECT_EQ(status_of(health), 200) << health;
  }
}

// A body too large to drain is answered all the same, and the connection is closed: what is
// left of the body must not be read as further requests.
TEST_P(ApiTest, BodiesTooLargeToDrainAreAnsweredOnAConnectionThenClosed) {
  std::string m = srv_->enroll("a", "canary");
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  // 200 MiB declared, none of it sent.
  ASSERT_TRUE(conn.send(post_request("/v1/checkin", m, "Content-Length: 209715200", "")));
  std::string r = conn.read_response();
  EXPECT_EQ(status_of(r), 413) << r;
  EXPECT_NE(r.find("more than the limit"), std::string::npos) << r;
  (void)conn.send(kHealthRequest);  // may already fail: the server has closed
  EXPECT_EQ(conn.read_response(), "");
}

// The headers of a POST whose body is `framing` ("Content-Length: N" or
// "Transfer-Encoding: chunked"); `authorization` is the whole header line, or "" for none.
std::string post_headers(const std::string& path, const std::string& authorization,
                         const std::string& framing, const std::string& more = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: t\r\n" + authorization +
         "Content-Type: application/octet-stream\r\n" + framing + "\r\n" + more + "\r\n";
}

std::string bearer(const std::string& token) { return "Authorization: Bearer " + token + "\r\n"; }

std::string error_in(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  json j = json::parse(at == std::string::npos ? "" : response.substr(at + 4), nullptr, false);
  return j.is_object() ? j.value("error", "") : "";
}

// A caller without a valid token of the right kind is refused on the request's headers: the
// server answers before it reads the body, so a client that has sent only the headers of a
// 32 MiB upload gets its 401/403 at once (the server does not wait for the body, which it
// would have to read and keep first if it authenticated after reading it).
TEST_P(ApiTest, UnauthorizedUploadsAreRefusedBeforeTheirBodyIsRead) {
  std::string machine = srv_->enroll("a", "canary");
  std::string declared = fmt::format("Content-Length: {}", 32u << 20);
  struct Case {
    std::string authorization;
    int status;
    std::string error;
  };
  for (const Case& c :
       {Case{"", 401, "missing bearer token"}, Case{bearer("not-a-token"), 401, "malformed token"},
        Case{bearer(generate_token(TokenKind::kAdmin)), 401, "unknown token"},
        Case{"Authorization: Basic YWRtaW46YWRtaW4=\r\n", 401, "missing bearer"},
        Case{bearer(machine), 403, "a machine token may not do this"}}) {
    RawConnection conn(port());
    ASSERT_TRUE(conn.connected());
    Stopwatch sw;
    ASSERT_TRUE(conn.send(post_headers("/v1/bundles", c.authorization, declared)));
    std::string r = conn.read_response();
    EXPECT_EQ(status_of(r), c.status) << c.authorization << r;
    EXPECT_NE(error_in(r).find(c.error), std::string::npos) << r;
    EXPECT_LT(sw.elapsed_ns(), 10'000'000'000) << "the answer waited for the body";
    // None of the body was read: the connection cannot serve another request.
    (void)conn.send(kHealthRequest);
    EXPECT_EQ(conn.read_response(), "");
  }
  // The same on a JSON route: the caller is refused before the body's size is.
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.send(post_headers("/v1/checkin", "", declared)));
  std::string r = conn.read_response();
  EXPECT_EQ(status_of(r), 401) << r;
  EXPECT_NE(error_in(r).find("POST /v1/checkin: missing bearer token"), std::string::npos) << r;
  EXPECT_TRUE(srv_->server().storage().list_bundles()->empty());
}

// A refused caller's body is drained (up to the drain budget) and dropped, not kept: the
// connection then serves the next request, and nothing of the upload was stored.
TEST_P(ApiTest, UnauthorizedBodiesAreDrainedAndTheConnectionServesTheNextRequest) {
  std::string bytes = make_bundle(srv_->publisher(), {});
  std::string big(6u << 20, 'x');
  std::string chunked =
      fmt::format("{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n", bytes.size(), bytes, big.size(), big);
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.send(
      post_headers("/v1/bundles", bearer(generate_token(TokenKind::kAdmin)), "Transfer-Encoding: chunked") +
      chunked));
  std::string r = conn.read_response();
  EXPECT_EQ(status_of(r), 401) << r;
  EXPECT_NE(error_in(r).find("POST /v1/bundles: unknown token"), std::string::npos) << r;
  ASSERT_TRUE(conn.send(kHealthRequest));
  EXPECT_EQ(status_of(conn.read_response()), 200);
  ASSERT_TRUE(conn.send(
      post_headers("/v1/bundles", "", fmt::format("Content-Length: {}", bytes.size())) + bytes));
  EXPECT_EQ(status_of(conn.read_response()), 401);
  ASSERT_TRUE(conn.send(kHealthRequest));
  EXPECT_EQ(status_of(conn.read_response()), 200);
  EXPECT_TRUE(srv_->server().storage().list_bundles()->empty());
  // httplib's client, streaming an upload with a bad token, gets the 401.
  auto up = post_bundle_chunked(port(), generate_token(TokenKind::kAdmin), bytes);
  ASSERT_TRUE(up) << up.error();
  EXPECT_EQ(up->status, 401);
  EXPECT_TRUE(srv_->server().storage().list_bundles()->empty());
}

// A client that asks "Expect: 100-continue" gets its 401/403 instead of "100 Continue", and
// so never sends the body; a valid caller gets "100 Continue" and its upload goes through.
TEST_P(ApiTest, Expect100ContinueIsRefusedForABadTokenAndGrantedForAGoodOne) {
  std::string machine = srv_->enroll("a", "canary");
  std::string bytes = make_bundle(srv_->publisher(), {});
  std::string expect = "Expect: 100-continue\r\n";
  std::string declared = fmt::format("Content-Length: {}", 32u << 20);
  for (const auto& [authorization, status] :
       {std::pair{std::string(), 401}, std::pair{bearer(generate_token(TokenKind::kMachine)), 401},
        std::pair{bearer(machine), 403}}) {
    RawConnection conn(port());
    ASSERT_TRUE(conn.connected());
    ASSERT_TRUE(conn.send(post_headers("/v1/bundles", authorization, declared, expect)));
    std::string r = conn.read_response();
    EXPECT_EQ(status_of(r), status) << r;
    EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
    EXPECT_EQ(conn.read_response(), "");  // closed: the body was never asked for
  }
  // A JSON route is refused the same way.
  RawConnection json_conn(port());
  ASSERT_TRUE(json_conn.connected());
  ASSERT_TRUE(json_conn.send(
      post_headers("/v1/reports", bearer(srv_->admin_token()), "Content-Length: 100", expect)));
  std::string r = json_conn.read_response();
  EXPECT_EQ(status_of(r), 403) << r;
  EXPECT_NE(error_in(r).find("POST /v1/reports: a admin token may not do this"), std::string::npos)
      << r;

  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.send(post_headers("/v1/bundles", bearer(srv_->admin_token()),
                                     fmt::format("Content-Length: {}", bytes.size()), expect)));
  std::string cont = conn.read_response();
  EXPECT_EQ(status_of(cont), 100) << cont;
  ASSERT_TRUE(conn.send(bytes));
  std::string stored = conn.read_response();
  EXPECT_EQ(status_of(stored), 201) << stored;
  EXPECT_EQ(srv_->server().storage().list_bundles()->size(), 1u);
}

TEST_P(ApiTest, Expect100ContinueIsRefusedForABodyTheRouteWouldRefuseOnItsHeaders) {
  std::string machine = srv_->enroll("a", "canary");
  std::string expect = "Expect: 100-continue\r\n";
  struct Case {
    std::string path, authorization, framing;
    int status;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"/v1/bundles", bearer(srv_->admin_token()), fmt::format("Content-Length: {}", 200u << 20),
            413, "more than the limit"},
           {"/v1/checkin", bearer(machine), "Transfer-Encoding: chunked", 411,
            "Content-Length required"},
           {"/v1/checkin", bearer(machine), "Content-Length: 12x", 400, "is not a number"}}) {
    RawConnection conn(port());
    ASSERT_TRUE(conn.connected());
    ASSERT_TRUE(conn.send(post_headers(c.path, c.authorization, c.framing, expect)));
    std::string r = conn.read_response();
    EXPECT_EQ(status_of(r), c.status) << c.path << " " << c.framing << ": " << r;
    EXPECT_NE(error_in(r).find(c.error), std::string::npos) << r;
    EXPECT_EQ(conn.read_response(), "");  // closed: the body was never asked for
  }
  // A body the route takes is asked for.
  RawConnection conn(port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.send(post_headers("/v1/checkin", bearer(machine), "Content-Length: 100", expect)));
  EXPECT_EQ(status_of(conn.read_response()), 100);
  EXPECT_TRUE(srv_->server().storage().list_bundles()->empty());
}

TEST_P(ApiTest, UnknownEndpointsAnswerJson404) {
  auto r = srv_->admin().get("/v1/nothing");
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(error_of(*r).find("no such endpoint"), std::string::npos);
}

TEST_P(ApiTest, PromotingAnUnknownBundleIs404) {
  auto r =
      srv_->admin().post("/v1/bundles/nope/1/promote", R"({"tier":"stable"})", "application/json");
  EXPECT_EQ(r->status, 404);
}

TEST_P(ApiTest, UpstreamMirrorCopiesBundlesAndPromotionsAfterVerifyingThemLocally) {
  publish({}, "canary");
  auto mirror = srv_->admin().post_json("/v1/tokens", {{"kind", "mirror"}, {"name", "site-b"}});
  ASSERT_TRUE(mirror.ok());
  // A mirror token reads the catalogue but cannot publish.
  EXPECT_EQ(
      srv_->client((*mirror)["token"]).post("/v1/bundles", "x", "application/octet-stream")->status,
      403);
  ServeOptions o;
  o.upstream_url = srv_->url();
  o.upstream_token = (*mirror)["token"];
  RunningServer down(GetParam() == "postgresql" ? "sqlite" : GetParam(), o);
  // The downstream trusts nothing yet: the bundle is refused, naming the cause.
  auto refused = down.server().sync_upstream_once();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("untrusted"), std::string::npos)
      << refused.error().message;
  // Now trust the publisher there too.
  ASSERT_TRUE(write_file_atomic(down.publisher().trust_dir + "/upstream.pub",
                                bundle::format_public_key(srv_->publisher().key.public_key) + "\n")
                  .ok());
  // (The server's own mirror thread may run a sync at start too: count what is stored.)
  auto n = down.server().sync_upstream_once();
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(down.server().storage().list_bundles()->size(), 1u);
  EXPECT_EQ(*down.server().sync_upstream_once(), 0);  // nothing new the second time
  std::string m = down.enroll("far-host", "canary");
  auto c = down.client(m).post_json("/v1/checkin", checkin_body({kBuildIdA}));
  ASSERT_TRUE(c.ok());
  ASSERT_EQ((*c)["bundles"].size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, ApiTest, ::testing::ValuesIn(testing::backends()),
                         [](const auto& info) { return info.param; });

TEST(ApiScaleOut, TwoServersOverOnePostgresqlShareTokensCatalogueAndFleet) {
  testing::PgServer& pg = testing::PgServer::get();
  ASSERT_FALSE(pg.url().empty()) << pg.error();
  pg.reset();
  testing::Publisher pub;
  testing::TempDir data;
  struct Running {
    std::unique_ptr<Server> server;
    std::thread thread;
    int port = 0;
    ~Running() {
      server->stop();
      thread.join();
    }
  };
  std::vector<std::unique_ptr<Running>> servers;
  std::string admin;
  for (int i = 0; i < 2; ++i) {
    ServeOptions o;
    o.listen = "127.0.0.1:0";
    o.data_dir = data.path();
    o.trust_dir = pub.trust_dir;
    auto store = open_storage(pg.url());
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto r = std::make_unique<Running>();
    r->server = std::make_unique<Server>(o, std::move(*store));
    auto token = r->server->ensure_admin_token();
    ASSERT_TRUE(token.ok());
    if (i == 0)
      admin = *token;
    else
      EXPECT_EQ(*token, "") << "the second server made another admin token";
    r->port = *r->server->bind();
    Server* s = r->server.get();
    r->thread = std::thread([s] { (void)s->serve(); });
    servers.push_back(std::move(r));
  }
  auto client = [&](int i, const std::string& token) {
    return *ApiClient::make("http://127.0.0.1:" + std::to_string(servers[i]->port), token);
  };
  auto publish = [&](int64_t version) {
    BundleSpec spec;
    spec.version = version;
    return client(0, admin).post_bytes("/v1/bundles?tier=stable", make_bundle(pub, spec));
  };
  ASSERT_TRUE(publish(1).ok());
  // Enroll through server B with the admin token made by server A.
  auto enroll = client(1, admin).post_json("/v1/tokens", {{"kind", "enroll"}, {"tier", "stable"}});
  ASSERT_TRUE(enroll.ok()) << enroll.error().message;
  auto m = client(1, (*enroll)["token"]).post_json("/v1/enroll", {{"machine_id", "far"}});
  ASSERT_TRUE(m.ok());
  std::string machine = (*m)["token"];
  auto c1 = client(1, machine).post_json("/v1/checkin", checkin_body({kBuildIdA}));
  ASSERT_TRUE(c1.ok());
  ASSERT_EQ((*c1)["bundles"].size(), 1u);
  // A publish on A reaches B's check-ins once B's cache revalidates (at most a second).
  ASSERT_TRUE(publish(2).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(kGenerationTtlMs + 100));
  auto c2 = client(1, machine).post_json("/v1/checkin", checkin_body({kBuildIdA}));
  ASSERT_TRUE(c2.ok());
  ASSERT_EQ((*c2)["bundles"].size(), 1u);
  EXPECT_EQ((*c2)["bundles"][0]["version"], 2);
  // A report through A shows in the fleet view of B.
  ASSERT_TRUE(
      client(0, machine)
          .post_json("/v1/reports",
                     {{"reports", {{{"id", "fix-libfoo"}, {"version", 2}, {"state", "applied"}}}}})
          .ok());
  auto fleet = client(1, admin).get_json("/v1/fleet");
  ASSERT_TRUE(fleet.ok());
  EXPECT_EQ((*fleet)["machines"]["by_state"]["up-to-date"], 1);
}

TEST(ApiLimits, EachTokenHasItsOwnRateLimit) {
  ServeOptions opts;
  opts.machine_rate = 0.5;
  opts.machine_burst = 3;
  RunningServer srv("sqlite", opts);
  std::string a = srv.enroll("a", "canary");
  std::string b = srv.enroll("b", "canary");
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(
        srv.client(a).post("/v1/checkin", checkin_body({}).dump(), "application/json")->status,
        200);
  auto limited = srv.client(a).post("/v1/checkin", checkin_body({}).dump(), "application/json");
  EXPECT_EQ(limited->status, 429);
  EXPECT_FALSE(limited->header("Retry-After").empty());
  EXPECT_EQ(srv.client(b).post("/v1/checkin", checkin_body({}).dump(), "application/json")->status,
            200);
}

// The failed-login limit also holds across addresses: a search spread over many source
// addresses meets the budget of all addresses together.
TEST(ApiLimits, FailedLoginsAreLimitedAcrossAddressesToo) {
  ServeOptions opts;
  opts.auth_fail_rate = 100;  // per address: out of the way
  opts.auth_fail_burst = 100;
  opts.auth_fail_global_rate = 0.5;
  opts.auth_fail_global_burst = 6;
  RunningServer srv("sqlite", opts);
  int port = std::stoi(srv.url().substr(srv.url().rfind(':') + 1));
  std::vector<int> statuses;
  for (int i = 0; i < 10; ++i) {
    // Each attempt from another loopback address (all of 127.0.0.0/8 is loopback).
    Fd fd(socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 10 + i);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof from), 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    std::string req = "GET /v1/bundles HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      "Authorization: Bearer " + generate_token(TokenKind::kAdmin) + "\r\n\r\n";
    ASSERT_EQ(send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    char buf[512] = {};
    ssize_t n = recv(fd.get(), buf, sizeof buf - 1, MSG_WAITALL);
    ASSERT_GT(n, 12);
    statuses.push_back(std::atoi(buf + 9));
  }
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 401), 6);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 429), 4);
  // A valid token is not a failed login: it is still served.
  EXPECT_TRUE(srv.admin().get_json("/v1/bundles").ok());
}

TEST(ApiTls, ServesHttpsWithTheGivenCertificate) {
  testing::TempDir dir;
  std::string cert = dir.path() + "/cert.pem", key = dir.path() + "/key.pem";
  auto gen = run_process({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                          key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                          "subjectAltName=IP:127.0.0.1"});
  ASSERT_TRUE(gen.ok() && gen->exit_code == 0) << (gen.ok() ? gen->output : gen.error().message);
  ServeOptions opts;
  opts.tls_cert = cert;
  opts.tls_key = key;
  RunningServer srv("sqlite", opts);
  std::string url = "https://127.0.0.1:" + srv.url().substr(srv.url().rfind(':') + 1);
  auto c = ApiClient::make(url, srv.admin_token(), cert);
  ASSERT_TRUE(c.ok());
  auto h = c->get_json("/v1/health");
  ASSERT_TRUE(h.ok()) << h.error().message;
  // Plain HTTP to the TLS port gets no answer.
  auto plain = srv.client(srv.admin_token()).get("/v1/health");
  EXPECT_FALSE(plain.ok() && plain->status == 200);
}

TEST(ApiTls, RefusesACertificateThatCannotBeLoaded) {
  ServeOptions opts;
  opts.listen = "127.0.0.1:0";
  opts.tls_cert = "/nonexistent/cert.pem";
  opts.tls_key = "/nonexistent/key.pem";
  testing::TempDir dir;
  Server s(opts, testing::open_test_store("sqlite", dir.path()));
  auto r = s.bind();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/cert.pem"), std::string::npos);
}

}  // namespace
}  // namespace nines::server
