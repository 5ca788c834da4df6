// Killing the server (SIGKILL) in the middle of publishes loses no acknowledged bundle and
// leaves no half bundle visible: every catalogue row has its bytes, and they verify.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>

#include "core/fd.h"
#include "core/strings.h"
#include "test_support.h"

namespace nines::server {
namespace {

using nlohmann::json;

// A server_daemon child; killed with SIGKILL by kill9(), or SIGTERM at destruction.
class Daemon {
 public:
  Daemon(const std::string& db, const std::string& data, const std::string& trust) {
    int p[2];
    if (pipe(p) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(p[1], 1);
      close(p[0]);
      close(p[1]);
      execl(SERVER_DAEMON, SERVER_DAEMON, "--listen", "127.0.0.1:0", "--db", db.c_str(), "--data",
            data.c_str(), "--trust", trust.c_str(), nullptr);
      _exit(127);
    }
    close(p[1]);
    // Read until the "listening on" line (the admin token line may come first).
    std::string out;
    char buf[256];
    while (out.find("listening on") == std::string::npos ||
           out.find('\n', out.find("listening on")) == std::string::npos) {
      ssize_t n = read(p[0], buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    close(p[0]);
    size_t at = out.find("http://127.0.0.1:");
    if (at == std::string::npos) {
      ADD_FAILURE() << "server_daemon did not start: " << out;
      return;
    }
    url_ = out.substr(at, out.find(' ', at) - at);
  }
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  void kill9() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

class CrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CrashTest, KillDuringPublishLosesNothingAcknowledgedAndShowsNoHalfBundle) {
  testing::TempDir data;
  testing::Publisher pub;
  std::string db = "sqlite:" + data.path() + "/nines.db";
  if (GetParam() == "postgresql") {
    testing::PgServer& pg = testing::PgServer::get();
    ASSERT_FALSE(pg.url().empty()) << pg.error();
    pg.reset();
    db = pg.url();
  }
  // Bundles of 2 MiB, so that a kill often lands while one is being received or stored.
  std::vector<std::string> bundles;
  for (int i = 0; i < 60; ++i) {
    testing::BundleSpec s;
    s.id = fmt::format("fix-{}", i);
    s.payload = std::string(2u << 20, static_cast<char>('a' + i % 26));
    bundles.push_back(testing::make_bundle(pub, s));
  }
  std::set<std::string> acked;
  {
    Daemon d(db, data.path(), pub.trust_dir);
    ASSERT_FALSE(d.url().empty());
    std::string token(trim(*read_file(data.path() + "/admin-token")));
    std::mutex mu;
    std::atomic<size_t> next{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; ++t)
      ts.emplace_back([&] {
        auto c = ApiClient::make(d.url(), token);
        for (size_t i; (i = next++) < bundles.size();) {
          auto r = c->post("/v1/bundles?tier=stable", bundles[i], "application/octet-stream");
          if (!r.ok()) return;  // the server is gone
          if (r->status == 201) {
            std::lock_guard lock(mu);
            acked.insert(fmt::format("fix-{}", i));
          }
        }
      });
    // Kill once some publishes are acknowledged and more are in flight.
    for (int i = 0; i < 15000; ++i) {  // up to 30 s on a loaded machine
      {
        std::lock_guard lock(mu);
        if (acked.size() >= 5) break;
      }
      usleep(2000);
    }
    d.kill9();
    for (auto& t : ts) t.join();
  }
  ASSERT_GE(acked.size(), 5u);
  ASSERT_LT(acked.size(), bundles.size()) << "the kill came too late to test anything";

  Daemon again(db, data.path(), pub.trust_dir);
  ASSERT_FALSE(again.url().empty());
  std::string token(trim(*read_file(data.path() + "/admin-token")));
  auto c = ApiClient::make(again.url(), token);
  auto list = c->get_json("/v1/bundles");
  ASSERT_TRUE(list.ok()) << list.error().message;
  std::set<std::string> listed;
  for (const json& b : (*list)["bundles"]) {
    listed.insert(b["id"].get<std::string>());
    // Every visible bundle is whole: its bytes are there, match the digest and verify.
    auto bytes = c->get(b["url"].get<std::string>());
    ASSERT_TRUE(bytes.ok());
    ASSERT_EQ(bytes->status, 200) << b.dump();
    EXPECT_EQ(bundle::sha256_hex(bytes->body), b["sha256"].get<std::string>());
    EXPECT_TRUE(bundle::open_verified(bytes->body, pub.trust_dir).ok());
    EXPECT_EQ(b["tiers"], json::array({"stable"})) << b.dump();
  }
  for (const std::string& id : acked) EXPECT_TRUE(listed.count(id)) << id << " was acknowledged";
  std::printf("acknowledged %zu, visible after restart %zu, of %zu sent\n", acked.size(),
              listed.size(), bundles.size());
}

INSTANTIATE_TEST_SUITE_P(Backends, CrashTest, ::testing::ValuesIn(testing::backends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace nines::server
