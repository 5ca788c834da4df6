// Shared pieces of the server tests: a throwaway PostgreSQL, a trust store with a fresh
// publisher key, signed bundles made in memory, and a real server on a loopback port.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bundle/bundle.h"
#include "server/client.h"
#include "server/server.h"
#include "server/storage.h"

namespace nines::server::testing {

// A temporary folder under /tmp, removed with its content.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "nines-server-test");
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One PostgreSQL server for the whole test binary, started with scripts/pg-test-server on
// first use and stopped at exit. url() is empty when PostgreSQL is not installed.
class PgServer {
 public:
  static PgServer& get();
  const std::string& url() const { return url_; }
  const std::string& error() const { return error_; }
  // Empties the database (drops and recreates the public schema) for the next test.
  void reset();
  ~PgServer();

 private:
  PgServer();
  std::string dir_, url_, error_;
  std::string shared_base_, shared_db_;  // with NINES_TEST_PG_DIR
};

// A publisher key and a trust store folder that trusts it.
struct Publisher {
  Publisher();
  TempDir dir;
  bundle::KeyPair key;
  std::string trust_dir;  // dir/trust, holding publisher.pub
};

struct BundleSpec {
  std::string id = "fix-libfoo";
  int64_t version = 1;
  std::string kind = "userspace";
  std::string target_name = "libfoo.so.1";
  std::string build_id = "0123456789abcdef0123456789abcdef01234567";
  std::string kernel_release;
  std::vector<std::pair<std::string, std::string>> cves = {{"CVE-2026-0001", "high"}};
  std::string published = "2026-11-01T00:00:00Z";
  std::string payload = "patch payload";
};
// A minimal ELF patch object: `.nines.meta` holds `meta`, `.pad` holds `pad`.
std::string make_patch_object(const nlohmann::json& meta, std::string_view pad);
// A signed bundle file (bytes) whose payload is a patch object agreeing with the manifest;
// an empty string (and a test failure) on a bundle error.
std::string make_bundle(const Publisher& pub, const BundleSpec& spec);
BundleRecord record_of(const std::string& bundle_bytes);

// Opens an empty store of `backend` ("sqlite" or "postgresql") under `dir`.
std::unique_ptr<Storage> open_test_store(const std::string& backend, const std::string& dir);

// A real server on 127.0.0.1:<free port> in a thread of this process.
class RunningServer {
 public:
  RunningServer(const std::string& backend, ServeOptions opts = {});
  ~RunningServer();
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& admin_token() const { return admin_token_; }
  ApiClient client(const std::string& token) const;
  ApiClient admin() const { return client(admin_token_); }
  Server& server() { return *server_; }
  Publisher& publisher() { return pub_; }
  // Enrolls a machine into the tier of a new enroll token; returns its machine token.
  std::string enroll(const std::string& machine_id, const std::string& tier);

 private:
  TempDir data_;
  Publisher pub_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::string admin_token_;
  int port_ = 0;
};

// The backends to run: sqlite always, postgresql when it is installed.
std::vector<std::string> backends();

}  // namespace nines::server::testing
