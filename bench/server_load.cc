// Load generator of the patch server: N simulated machines checking in over real HTTP on
// loopback, and a rollout simulation (publish, then every machine checks in, downloads,
// reports applied, until the fleet view says all have applied).
//
//   server_load [--db sqlite|postgresql|URL] [--machines 10000] [--connections 16]
//               [--seconds 10] [--rollout] [--server-threads 32]
//
// The server runs in this process (its own thread pool), the clients in other threads:
// on a 2-core machine both share the same CPUs, as they would on one host.
#include <httplib.h>
#include <sys/stat.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "bundle/bundle.h"
#include "core/clock.h"
#include "core/fd.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "server/client.h"
#include "server/server.h"
#include "test_support.h"  // make_patch_object: bundles carry real patch objects

namespace {

using nines::server::ApiClient;
using nlohmann::json;

std::string hex_id(uint64_t a, uint64_t b) {
  return fmt::format("{:016x}{:016x}{:08x}", a * 0x9e3779b97f4a7c15ull, b, 0x1234u);
}

struct Fleet {
  std::vector<std::string> tokens;
  std::vector<std::string> bodies;  // check-in bodies, serialized once
};

int fail(const std::string& m) {
  std::fprintf(stderr, "server_load: %s\n", m.c_str());
  return 1;
}

double pct(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return static_cast<double>(v[i]) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  std::string db = "sqlite";
  int machines = 10000, connections = 16, seconds = 10, server_threads = 32;
  bool rollout = false;
  CLI::App app{"patch server load generator"};
  app.add_option("--db", db, "sqlite, postgresql (a throwaway one) or a postgresql:// URL");
  app.add_option("--machines", machines);
  app.add_option("--connections", connections);
  app.add_option("--seconds", seconds);
  app.add_option("--server-threads", server_threads);
  app.add_flag("--rollout", rollout, "Also run the rollout simulation");
  CLI11_PARSE(app, argc, argv);

  char tmpl[] = "/tmp/nines-bench.XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string pg_dir;
  std::string url;
  if (db == "sqlite") {
    url = "sqlite:" + dir + "/nines.db";
  } else if (db == "postgresql") {
    pg_dir = dir + "-pg";
    auto out = nines::run_checked(
        {std::string(NINES_SOURCE_DIR) + "/scripts/pg-test-server", "start", pg_dir});
    if (!out.ok()) return fail(out.error().message);
    url = std::string(nines::trim(*out));
  } else {
    url = db;
  }
  auto store = nines::server::open_storage(url);
  if (!store.ok()) return fail(store.error().message);

  nines::bundle::KeyPair key = nines::bundle::generate_keypair();
  std::string trust = dir + "/trust";
  mkdir(trust.c_str(), 0755);
  (void)nines::write_file_atomic(trust + "/bench.pub",
                                 nines::bundle::format_public_key(key.public_key) + "\n");

  nines::server::ServeOptions opts;
  opts.listen = "127.0.0.1:0";
  opts.data_dir = dir;
  opts.trust_dir = trust;
  opts.threads = std::max(server_threads, connections + 4);
  opts.admin_rate = 0;
  nines::server::Server server(opts, std::move(*store));
  std::string admin_token = *server.ensure_admin_token();
  auto port = server.bind();
  if (!port.ok()) return fail(port.error().message);
  std::thread serving([&] { (void)server.serve(); });
  std::string base = "http://127.0.0.1:" + std::to_string(*port);
  auto admin = *ApiClient::make(base, admin_token);

  // The catalogue: 5 patched libraries; every machine maps 60 objects, 2 of them patched.
  auto publish = [&](int lib, int64_t version) -> nines::Status {
    nines::bundle::Manifest m;
    m.id = fmt::format("fix-lib{}", lib);
    m.version = version;
    m.kind = "userspace";
    m.target_name = fmt::format("lib{}.so.1", lib);
    m.target_build_id = hex_id(lib, 0);
    m.description = "bench";
    m.cves.push_back({fmt::format("CVE-2026-{:04d}", lib * 10 + static_cast<int>(version)), "high",
                      "bench", "https://example.org"});
    m.published = nines::format_rfc3339(nines::unix_now());
    m.published_unix = nines::unix_now();
    json meta = {{"format", 1},
                 {"kind", "userspace"},
                 {"id", m.id},
                 {"target", {{"name", m.target_name}, {"build_id", m.target_build_id}}},
                 {"functions", {{{"name", "f"}, {"replacement", "f_fixed"}}}}};
    std::string payload =
        nines::server::testing::make_patch_object(meta, std::string(64 << 10, 'x'));
    std::string b = NINES_TRY(nines::bundle::create_bundle(m, payload, key.secret_key));
    NINES_TRY(admin.post_bytes("/v1/bundles?tier=stable", b));
    return {};
  };
  auto finish = [&](int rc) {
    server.stop();
    serving.join();
    return rc;
  };
  for (int lib = 0; lib < 5; ++lib)
    if (auto s = publish(lib, 1); !s.ok()) return finish(fail(s.error().message));

  auto enroll_token = admin.post_json("/v1/tokens", {{"kind", "enroll"}, {"tier", "stable"}});
  if (!enroll_token.ok()) return finish(fail(enroll_token.error().message));
  Fleet fleet;
  fleet.tokens.resize(static_cast<size_t>(machines));
  fleet.bodies.resize(static_cast<size_t>(machines));
  {
    nines::Stopwatch sw;
    std::atomic<int> next{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < connections; ++t)
      ts.emplace_back([&] {
        auto c = *ApiClient::make(base, (*enroll_token)["token"].get<std::string>());
        for (int i; (i = next++) < machines;) {
          auto r = c.post_json("/v1/enroll", {{"machine_id", fmt::format("m{:06d}", i)}});
          if (!r.ok()) {
            std::fprintf(stderr, "enroll: %s\n", r.error().message.c_str());
            std::exit(1);
          }
          json ids = json::array();
          for (int k = 0; k < 57; ++k) ids.push_back(hex_id(1000 + k, static_cast<uint64_t>(i)));
          ids.push_back(hex_id(99, 0));  // "libc": every machine maps it (the rollout's target)
          ids.push_back(hex_id(i % 5, 0));
          ids.push_back(hex_id((i + 1) % 5, 0));
          fleet.tokens[static_cast<size_t>(i)] = (*r)["token"];
          fleet.bodies[static_cast<size_t>(i)] = json{
              {"name", fmt::format("m{:06d}", i)},
              {"arch", "x86_64"},
              {"kernel_release", "6.1.0-28-cloud-amd64"},
              {"build_ids", ids}}.dump();
        }
      });
    for (auto& t : ts) t.join();
    std::printf("enrolled %d machines in %.1f s\n", machines, sw.elapsed_ns() / 1e9);
  }

  // Check-ins: each connection cycles through its share of the machines.
  {
    std::atomic<bool> stop{false};
    std::atomic<int64_t> errors{0}, limited{0};
    std::vector<std::vector<int64_t>> lat(static_cast<size_t>(connections));
    std::vector<std::thread> ts;
    nines::Stopwatch sw;
    for (int t = 0; t < connections; ++t)
      ts.emplace_back([&, t] {
        httplib::Client c("127.0.0.1", *port);
        c.set_keep_alive(true);
        c.set_tcp_nodelay(true);
        auto& mine = lat[static_cast<size_t>(t)];
        for (int i = t; !stop; i = (i + connections) % machines) {
          httplib::Headers h = {
              {"Authorization", "Bearer " + fleet.tokens[static_cast<size_t>(i)]}};
          int64_t t0 = nines::monotonic_ns();
          auto r =
              c.Post("/v1/checkin", h, fleet.bodies[static_cast<size_t>(i)], "application/json");
          int64_t dt = nines::monotonic_ns() - t0;
          if (!r || (r->status != 200 && r->status != 429))
            errors++;
          else if (r->status == 429)
            limited++;
          else
            mine.push_back(dt);
        }
      });
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    stop = true;
    for (auto& t : ts) t.join();
    double secs = sw.elapsed_ns() / 1e9;
    std::vector<int64_t> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    size_t n = all.size();
    double p50 = pct(all, 0.50), p99 = pct(all, 0.99), p999 = pct(all, 0.999);
    std::printf(
        "checkin backend=%s machines=%d connections=%d: %zu in %.1f s = %.0f/s, "
        "p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, errors %lld, rate-limited %lld\n",
        server.storage().backend().c_str(), machines, connections, n, secs, n / secs, p50, p99,
        p999, static_cast<long long>(errors.load()), static_cast<long long>(limited.load()));
  }

  if (rollout) {
    // Publish a fix for the library every machine maps; each machine checks in, downloads
    // it, reports applied; measured until the last report is stored.
    nines::Stopwatch sw;
    if (auto s = publish(99, 1); !s.ok()) return finish(fail(s.error().message));
    std::atomic<int> done{0}, next{0};
    int targeted = machines;
    std::vector<std::thread> ts;
    std::atomic<int64_t> downloads{0};
    for (int t = 0; t < connections; ++t)
      ts.emplace_back([&] {
        httplib::Client c("127.0.0.1", *port);
        c.set_keep_alive(true);
        c.set_tcp_nodelay(true);
        for (int i; (i = next++) < machines;) {
          httplib::Headers h = {
              {"Authorization", "Bearer " + fleet.tokens[static_cast<size_t>(i)]}};
          auto r =
              c.Post("/v1/checkin", h, fleet.bodies[static_cast<size_t>(i)], "application/json");
          if (!r || r->status != 200) {
            std::fprintf(stderr, "rollout checkin failed\n");
            std::exit(1);
          }
          json offers = json::parse(r->body)["bundles"];
          json lines = json::array();
          for (const json& b : offers) {
            if (b["id"] != "fix-lib99") continue;
            auto d = c.Get(b["url"].get<std::string>().c_str(), h);
            if (!d || d->status != 200) {
              std::fprintf(stderr, "download failed\n");
              std::exit(1);
            }
            downloads++;
            lines.push_back({{"id", b["id"]}, {"version", b["version"]}, {"state", "applied"}});
          }
          if (lines.empty()) continue;
          auto rep = c.Post("/v1/reports", h, json{{"reports", lines}}.dump(), "application/json");
          if (!rep || rep->status != 200) {
            std::fprintf(stderr, "report failed\n");
            std::exit(1);
          }
          done++;
        }
      });
    for (auto& t : ts) t.join();
    double secs = sw.elapsed_ns() / 1e9;
    nines::Stopwatch fleet_sw;
    auto f = admin.get_json("/v1/fleet");
    double fleet_ms = fleet_sw.elapsed_ns() / 1e6;
    if (!f.ok()) return finish(fail(f.error().message));
    int applied = 0;
    for (const json& r : (*f)["rollout"])
      if (r["id"] == "fix-lib99" && r["version"] == 1) applied = r["applied"];
    std::printf(
        "rollout backend=%s: %d machines, %d targeted, %d reported applied "
        "(fleet view: %d) in %.1f s, %lld downloads; /v1/fleet answered in %.0f ms\n",
        server.storage().backend().c_str(), machines, targeted, done.load(), applied, secs,
        static_cast<long long>(downloads.load()), fleet_ms);
  }

  admin = *ApiClient::make(base, admin_token);  // closes the kept-alive connection
  server.stop();
  serving.join();
  if (!pg_dir.empty())
    (void)nines::run_process(
        {std::string(NINES_SOURCE_DIR) + "/scripts/pg-test-server", "stop", pg_dir});
  (void)nines::run_process({"rm", "-rf", dir});
  return 0;
}
