#include "test_support.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <elf.h>

#include <cstring>
#include <filesystem>

#include "core/clock.h"
#include "server/catalogue.h"
#include "core/fd.h"
#include "core/strings.h"
#include "core/subprocess.h"

namespace nines::server::testing {

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
  char* p = mkdtemp(tmpl.data());
  if (!p) std::abort();
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

PgServer& PgServer::get() {
  static PgServer s;
  return s;
}

PgServer::PgServer() {
  // Under ctest one server serves every test process (fixture server_pg_start); each
  // process takes a database of its own, so tests may run in parallel.
  if (const char* shared = getenv("NINES_TEST_PG_DIR")) {
    Result<std::string> base = read_file(std::string(shared) + "/url");
    if (!base.ok()) {
      error_ = base.error().message;
      return;
    }
    std::string u(trim(*base));
    std::string db = "t_" + std::to_string(getpid());
    PGconn* c = PQconnectdb(u.c_str());
    PGresult* r = PQexec(c, ("CREATE DATABASE " + db).c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) error_ = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    if (error_.empty()) {
      url_ = u.substr(0, u.rfind('/') + 1) + db;
      shared_base_ = u;
      shared_db_ = db;
    }
    return;
  }
  if (access("/usr/lib/postgresql/15/bin/initdb", X_OK) != 0) {
    error_ = "PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin/initdb)";
    return;
  }
  // The folder must be reachable by the postgres user when we run as root: /tmp itself.
  char tmpl[] = "/tmp/nines-pg.XXXXXX";
  if (!mkdtemp(tmpl)) std::abort();
  dir_ = tmpl;
  rmdir(dir_.c_str());
  Result<std::string> out =
      run_checked({std::string(NINES_SOURCE_DIR) + "/scripts/pg-test-server", "start", dir_});
  if (!out.ok()) {
    error_ = out.error().message;
    return;
  }
  std::string u = *out;
  while (!u.empty() && (u.back() == '\n' || u.back() == ' ')) u.pop_back();
  url_ = u.substr(u.rfind('\n') == std::string::npos ? 0 : u.rfind('\n') + 1);
}

PgServer::~PgServer() {
  if (!shared_db_.empty()) {
    PGconn* c = PQconnectdb(shared_base_.c_str());
    PQclear(PQexec(c, ("DROP DATABASE IF EXISTS " + shared_db_ + " WITH (FORCE)").c_str()));
    PQfinish(c);
  }
  if (!dir_.empty())
    (void)run_process({std::string(NINES_SOURCE_DIR) + "/scripts/pg-test-server", "stop", dir_});
}

void PgServer::reset() {
  PGconn* c = PQconnectdb(url_.c_str());
  PGresult* r = PQexec(c, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    ADD_FAILURE() << "reset postgresql: " << PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
}

Publisher::Publisher() : key(bundle::generate_keypair()) {
  trust_dir = dir.path() + "/trust";
  mkdir(trust_dir.c_str(), 0755);
  Status s = write_file_atomic(trust_dir + "/publisher.pub",
                               bundle::format_public_key(key.public_key, "test") + "\n");
  if (!s.ok()) ADD_FAILURE() << s.error().message;
}

// A minimal relocatable ELF (x86-64) whose sections are .shstrtab, .nines.meta (the patch
// metadata bundles require of their payload) and .pad (filler, to make payloads of a size).
std::string make_patch_object(const nlohmann::json& meta, std::string_view pad) {
  const std::string shstr = std::string("\0.shstrtab\0.nines.meta\0.pad\0", 29);
  const std::string meta_text = meta.dump();
  std::string out(sizeof(Elf64_Ehdr), '\0');
  auto append = [&out](std::string_view data) {
    size_t at = out.size();
    out.append(data);
    return at;
  };
  size_t shstr_off = append(shstr);
  size_t meta_off = append(meta_text);
  size_t pad_off = append(pad);
  while (out.size() % 8) out.push_back('\0');
  size_t sh_off = out.size();
  Elf64_Shdr sh[4] = {};
  sh[1].sh_name = 1;  // ".shstrtab"
  sh[1].sh_type = SHT_STRTAB;
  sh[1].sh_offset = shstr_off;
  sh[1].sh_size = shstr.size();
  sh[1].sh_addralign = 1;
  sh[2].sh_name = 11;  // ".nines.meta"
  sh[2].sh_type = SHT_PROGBITS;
  sh[2].sh_offset = meta_off;
  sh[2].sh_size = meta_text.size();
  sh[2].sh_addralign = 1;
  sh[3].sh_name = 23;  // ".pad"
  sh[3].sh_type = SHT_PROGBITS;
  sh[3].sh_offset = pad_off;
  sh[3].sh_size = pad.size();
  sh[3].sh_addralign = 1;
  out.append(reinterpret_cast<const char*>(sh), sizeof sh);
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_REL;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_shoff = sh_off;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shnum = 4;
  eh.e_shstrndx = 1;
  std::memcpy(out.data(), &eh, sizeof eh);
  return out;
}

std::string make_bundle(const Publisher& pub, const BundleSpec& spec) {
  bundle::Manifest m;
  m.id = spec.id;
  m.version = spec.version;
  m.kind = spec.kind;
  if (spec.kind == "userspace") {
    m.target_name = spec.target_name;
    m.target_build_id = spec.build_id;
  } else {
    m.kernel_release = spec.kernel_release;
  }
  m.description = "test fix " + spec.id;
  for (const auto& [id, sev] : spec.cves)
    m.cves.push_back(bundle::Cve{id, sev, "a flaw", "https://example.org/" + id});
  m.published = spec.published;
  m.published_unix = parse_rfc3339(spec.published).value_or(0);
  nlohmann::json meta = {{"format", 1},
                         {"kind", spec.kind},
                         {"id", spec.id},
                         {"functions", {{{"name", "f"}, {"replacement", "f_fixed"}}}}};
  if (spec.kind == "userspace")
    meta["target"] = {{"name", spec.target_name}, {"build_id", spec.build_id}};
  else
    meta["kernel"] = {{"release", spec.kernel_release}, {"build_id", ""}};
  // The spec's payload text is the filler, so different payloads make different bundles.
  Result<std::string> b =
      bundle::create_bundle(m, make_patch_object(meta, spec.payload), pub.key.secret_key);
  if (!b.ok()) {
    ADD_FAILURE() << b.error().message;
    return {};
  }
  return *b;
}

BundleRecord record_of(const std::string& bytes) {
  Result<bundle::Bundle> b = bundle::parse_bundle(bytes);
  EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.error().message);
  if (!b.ok()) return {};
  return bundle_record(*b, bytes, unix_now());
}

std::unique_ptr<Storage> open_test_store(const std::string& backend, const std::string& dir) {
  std::string url;
  if (backend == "postgresql") {
    PgServer& pg = PgServer::get();
    if (pg.url().empty()) {
      ADD_FAILURE() << "postgresql: " << pg.error();
      return nullptr;
    }
    pg.reset();
    url = pg.url();
  } else {
    url = "sqlite:" + dir + "/nines.db";
  }
  Result<std::unique_ptr<Storage>> s = open_storage(url);
  if (!s.ok()) {
    ADD_FAILURE() << s.error().message;
    return nullptr;
  }
  return std::move(*s);
}

RunningServer::RunningServer(const std::string& backend, ServeOptions opts) {
  opts.listen = "127.0.0.1:0";
  opts.data_dir = data_.path();
  opts.trust_dir = pub_.trust_dir;
  std::unique_ptr<Storage> store = open_test_store(backend, data_.path());
  if (!store) return;
  server_ = std::make_unique<Server>(opts, std::move(store));
  Result<std::string> admin = server_->ensure_admin_token();
  EXPECT_TRUE(admin.ok() && !admin->empty());
  if (admin.ok()) admin_token_ = *admin;
  Result<bool> key = server_->load_timestamp_key();
  EXPECT_TRUE(key.ok()) << (key.ok() ? "" : key.error().message);
  Result<int> port = server_->bind();
  EXPECT_TRUE(port.ok()) << (port.ok() ? "" : port.error().message);
  if (!port.ok()) return;
  port_ = *port;
  thread_ = std::thread([this] { (void)server_->serve(); });
}

RunningServer::~RunningServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

ApiClient RunningServer::client(const std::string& token) const {
  Result<ApiClient> c = ApiClient::make(url(), token);
  if (!c.ok()) std::abort();
  return std::move(*c);
}

std::string RunningServer::enroll(const std::string& machine_id, const std::string& tier) {
  Result<nlohmann::json> t = admin().post_json("/v1/tokens", {{"kind", "enroll"}, {"tier", tier}});
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  if (!t.ok()) return {};
  Result<nlohmann::json> m = client((*t)["token"].get<std::string>())
                                 .post_json("/v1/enroll", {{"machine_id", machine_id}});
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  if (!m.ok()) return {};
  return (*m)["token"].get<std::string>();
}

std::vector<std::string> backends() {
  std::vector<std::string> out = {"sqlite"};
  if (access("/usr/lib/postgresql/15/bin/initdb", X_OK) == 0) out.push_back("postgresql");
  return out;
}

}  // namespace nines::server::testing
