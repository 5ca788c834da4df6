// SQLite back end: one connection behind a mutex. WAL journal, so readers of the file
// (sqlite3 CLI, backups) never block the server; synchronous=NORMAL in WAL mode keeps every
// committed transaction across a crash of the process (kill -9); only a power loss may drop
// the last commits (docs/SERVER-API.md says so).
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <mutex>
#include <unordered_map>

#include "server/storage.h"

namespace nines::server {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS tokens(
  hash TEXT PRIMARY KEY, kind TEXT NOT NULL, tier TEXT NOT NULL, name TEXT NOT NULL,
  machine_id TEXT NOT NULL, created_unix INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_machine ON tokens(machine_id);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES('generation', '0');
CREATE TABLE IF NOT EXISTS blobs(sha256 TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS bundles(
  id TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, kind TEXT NOT NULL,
  target_name TEXT NOT NULL, target_build_id TEXT NOT NULL, kernel_release TEXT NOT NULL,
  description TEXT NOT NULL, manifest_json TEXT NOT NULL, signer TEXT NOT NULL,
  size INTEGER NOT NULL, published_unix INTEGER NOT NULL, uploaded_unix INTEGER NOT NULL,
  PRIMARY KEY(id, version));
CREATE TABLE IF NOT EXISTS promotions(
  id TEXT NOT NULL, version INTEGER NOT NULL, tier TEXT NOT NULL,
  promoted_unix INTEGER NOT NULL, PRIMARY KEY(id, version, tier));
CREATE TABLE IF NOT EXISTS machines(
  machine_id TEXT PRIMARY KEY, tier TEXT NOT NULL, name TEXT NOT NULL, arch TEXT NOT NULL,
  kernel_release TEXT NOT NULL, kernel_build_id TEXT NOT NULL, build_ids_json TEXT NOT NULL,
  advisor_json TEXT NOT NULL, first_seen_unix INTEGER NOT NULL,
  last_seen_unix INTEGER NOT NULL,
  identity_sha TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS patch_state(
  machine_id TEXT NOT NULL, bundle_id TEXT NOT NULL, version INTEGER NOT NULL,
  state TEXT NOT NULL, reason TEXT NOT NULL, seq INTEGER NOT NULL,
  updated_unix INTEGER NOT NULL, PRIMARY KEY(machine_id, bundle_id));
CREATE TABLE IF NOT EXISTS reports(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, machine_id TEXT NOT NULL, bundle_id TEXT NOT NULL,
  version INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
  reported_unix INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS reports_machine ON reports(machine_id, seq);
)sql";

// Columns added after the first schema: created on older databases at init.
struct AddedColumn {
  const char* table;
  const char* column;
  const char* declaration;
};
constexpr AddedColumn kAddedColumns[] = {
    {"tokens", "expires_unix", "INTEGER NOT NULL DEFAULT 0"},
    {"machines", "catalogue_json", "TEXT NOT NULL DEFAULT ''"},
};

// Prepared statements, compiled once per SQL text and kept for the connection's life
// (preparing costs more than running the small statements of a check-in).
class StmtCache {
 public:
  explicit StmtCache(sqlite3* db) : db(db) {}
  ~StmtCache() { clear(); }
  void clear() {
    for (auto& [sql, st] : stmts_) sqlite3_finalize(st);
    stmts_.clear();
  }
  sqlite3_stmt* get(const char* sql, int* rc) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) {
      *rc = SQLITE_OK;
      return it->second;
    }
    sqlite3_stmt* st = nullptr;
    *rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr);
    if (*rc == SQLITE_OK) stmts_.emplace(sql, st);
    return st;
  }
  sqlite3* db;

 private:
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;
};

// One use of a cached statement: reset and unbound on every path, so it is ready for the
// next use. (No code path holds two uses of the same SQL at once.)
class Stmt {
 public:
  Stmt(StmtCache& cache, const char* sql) : db_(cache.db) { st_ = cache.get(sql, &rc_); }
  ~Stmt() {
    if (st_) {
      sqlite3_reset(st_);
      sqlite3_clear_bindings(st_);
    }
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status prepared(std::string_view what) const {
    if (rc_ != SQLITE_OK) return make_error("sqlite prepare ({}): {}", what, sqlite3_errmsg(db_));
    return {};
  }
  Stmt& bind(int i, const std::string& s) {
    sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  Stmt& bind_blob(int i, const std::string& s) {
    sqlite3_bind_blob64(st_, i, s.data(), s.size(), SQLITE_STATIC);
    return *this;
  }
  // SQLITE_ROW -> true, SQLITE_DONE -> false, anything else -> error naming `what`.
  Result<bool> step(std::string_view what) {
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return make_error("sqlite {}: {}", what, sqlite3_errmsg(db_));
  }
  std::string text(int col) const {
    const unsigned char* p = sqlite3_column_text(st_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(st_, col)))
             : std::string();
  }
  std::string blob(int col) const {
    const void* p = sqlite3_column_blob(st_, col);
    return p ? std::string(static_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(st_, col)))
             : std::string();
  }
  int64_t i64(int col) const { return sqlite3_column_int64(st_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  int rc_;
};

constexpr const char* kBundleCols =
    "b.id, b.version, b.sha256, b.kind, b.target_name, b.target_build_id, b.kernel_release, "
    "b.description, b.manifest_json, b.signer, b.size, b.published_unix, b.uploaded_unix";

BundleRecord bundle_from(const Stmt& s) {
  BundleRecord b;
  b.id = s.text(0);
  b.version = s.i64(1);
  b.sha256 = s.text(2);
  b.kind = s.text(3);
  b.target_name = s.text(4);
  b.target_build_id = s.text(5);
  b.kernel_release = s.text(6);
  b.description = s.text(7);
  b.manifest_json = s.text(8);
  b.signer = s.text(9);
  b.size = s.i64(10);
  b.published_unix = s.i64(11);
  b.uploaded_unix = s.i64(12);
  return b;
}

constexpr const char* kMachineCols =
    "machine_id, tier, name, arch, kernel_release, kernel_build_id, build_ids_json, "
    "advisor_json, first_seen_unix, last_seen_unix, identity_sha, catalogue_json";

MachineRecord machine_from(const Stmt& s) {
  MachineRecord m;
  m.machine_id = s.text(0);
  m.tier = s.text(1);
  m.name = s.text(2);
  m.arch = s.text(3);
  m.kernel_release = s.text(4);
  m.kernel_build_id = s.text(5);
  m.build_ids_json = s.text(6);
  m.advisor_json = s.text(7);
  m.first_seen_unix = s.i64(8);
  m.last_seen_unix = s.i64(9);
  m.identity_sha = s.text(10);
  m.catalogue_json = s.text(11);
  return m;
}

Result<TokenRecord> token_from(const Stmt& s) {
  TokenRecord t;
  t.hash_hex = s.text(0);
  std::optional<TokenKind> kind = parse_token_kind(s.text(1));
  if (!kind) return make_error("token {}: unknown kind '{}' in the database", t.hash_hex.substr(0, 16), s.text(1));
  t.kind = *kind;
  t.tier = s.text(2);
  t.name = s.text(3);
  t.machine_id = s.text(4);
  t.created_unix = s.i64(5);
  t.expires_unix = s.i64(6);
  return t;
}

ReportRecord report_from(const Stmt& s) {
  ReportRecord r;
  r.seq = s.i64(0);
  r.machine_id = s.text(1);
  r.bundle_id = s.text(2);
  r.version = s.i64(3);
  r.state = s.text(4);
  r.reason = s.text(5);
  r.reported_unix = s.i64(6);
  return r;
}

class SqliteStorage final : public Storage {
 public:
  SqliteStorage(sqlite3* db, std::string path) : db_(db), cache_(db), path_(std::move(path)) {}
  ~SqliteStorage() override {
    cache_.clear();
    sqlite3_close_v2(db_);
  }

  std::string backend() const override { return "sqlite"; }

  Status init() override {
    std::lock_guard lock(mu_);
    NINES_CHECK(exec("PRAGMA journal_mode=WAL", "set WAL journal"));
    NINES_CHECK(exec("PRAGMA synchronous=NORMAL", "set synchronous"));
    NINES_CHECK(exec("PRAGMA foreign_keys=ON", "enable foreign keys"));
    NINES_CHECK(exec(kSchema, "create schema"));
    for (const AddedColumn& c : kAddedColumns) {
      std::string what = fmt::format("add column {}.{}", c.table, c.column);
      std::string sql = fmt::format(
          "SELECT count(*) FROM pragma_table_info('{}') WHERE name = '{}'", c.table, c.column);
      Stmt q(cache_, sql.c_str());
      NINES_CHECK(q.prepared(what));
      NINES_TRY(q.step(what));
      if (q.i64(0) == 0)
        NINES_CHECK(exec(
            fmt::format("ALTER TABLE {} ADD COLUMN {} {}", c.table, c.column, c.declaration).c_str(),
            what.c_str()));
    }
    return {};
  }

  Status put_token(const TokenRecord& t) override {
    std::lock_guard lock(mu_);
    return insert_token(t, "INSERT INTO tokens(hash, kind, tier, name, machine_id, created_unix, expires_unix) VALUES(?,?,?,?,?,?,?)");
  }

  Result<bool> put_first_admin_token(const TokenRecord& t) override {
    std::lock_guard lock(mu_);
    NINES_CHECK(exec("BEGIN IMMEDIATE", "begin"));
    Tx tx(this);
    Stmt q(cache_, "SELECT count(*) FROM tokens WHERE kind = 'admin'");
    NINES_CHECK(q.prepared("count admin tokens"));
    NINES_TRY(q.step("count admin tokens"));
    if (q.i64(0) > 0) return false;
    NINES_CHECK(insert_token(t, "INSERT INTO tokens(hash, kind, tier, name, machine_id, created_unix, expires_unix) VALUES(?,?,?,?,?,?,?)"));
    NINES_CHECK(tx.commit());
    return true;
  }

  Result<std::optional<TokenRecord>> find_token(const std::string& hash_hex) override {
    std::lock_guard lock(mu_);
    Stmt q(cache_,
           "SELECT hash, kind, tier, name, machine_id, created_unix, expires_unix FROM tokens "
           "WHERE hash = ?");
    NINES_CHECK(q.prepared("find token"));
    q.bind(1, hash_hex);
    if (!NINES_TRY(q.step("find token"))) return std::optional<TokenRecord>();
    return std::optional<TokenRecord>(NINES_TRY(token_from(q)));
  }

  Result<std::vector<TokenRecord>> list_tokens() override {
    std::lock_guard lock(mu_);
    Stmt q(cache_,
           "SELECT hash, kind, tier, name, machine_id, created_unix, expires_unix FROM tokens "
           "ORDER BY created_unix, hash");
    NINES_CHECK(q.prepared("list tokens"));
    std::vector<TokenRecord> out;
    while (NINES_TRY(q.step("list tokens"))) out.push_back(NINES_TRY(token_from(q)));
    return out;
  }

  Result<bool> delete_token(const std::string& hash_hex) override {
    std::lock_guard lock(mu_);
    Stmt q(cache_, "DELETE FROM tokens WHERE hash = ?");
    NINES_CHECK(q.prepared("delete token"));
    q.bind(1, hash_hex);
    NINES_TRY(q.step("delete token"));
    return sqlite3_changes(db_) > 0;
  }

  Status delete_machine_tokens(const std::string& machine_id) override {
    std::lock_guard lock(mu_);
    Stmt q(cache_, "DELETE FROM tokens WHERE kind = 'machine' AND machine_id = ?");
    NINES_CHECK(q.prepared("delete machine tokens"));
    q.bind(1, machine_id);
    NINES_TRY(q.step("delete machine tokens"));
    return {};
  }

  Result<PublishOutcome> publish(const BundleRecord& b, const std::string& bytes,
                                 const std::string& tier) override {
    std::lock_guard lock(mu_);
    NINES_CHECK(exec("BEGIN IMMEDIATE", "begin publish"));
    Tx tx(this);
    {
      Stmt q(cache_, "SELECT sha256 FROM bundles WHERE id = ? AND version = ?");
      NINES_CHECK(q.prepared("find bundle"));
      q.bind(1, b.id).bind(2, b.version);
      if (NINES_TRY(q.step("find bundle"))) {
        if (q.text(0) != b.sha256)
          return make_error(
              "publish {} version {}: already published with different content "
              "(sha256 {}, this one {})",
              b.id, b.version, q.text(0), b.sha256);
        if (!tier.empty()) NINES_CHECK(promote_locked(b.id, b.version, tier));
        NINES_CHECK(tx.commit());
        return PublishOutcome::kAlreadyIdentical;
      }
    }
    {
      Stmt q(cache_, "INSERT OR IGNORE INTO blobs(sha256, data) VALUES(?, ?)");
      NINES_CHECK(q.prepared("store bundle bytes"));
      q.bind(1, b.sha256).bind_blob(2, bytes);
      NINES_TRY(q.step("store bundle bytes"));
    }
    {
      Stmt q(cache_, "INSERT INTO bundles VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
      NINES_CHECK(q.prepared("store bundle row"));
      q.bind(1, b.id).bind(2, b.version).bind(3, b.sha256).bind(4, b.kind);
      q.bind(5, b.target_name).bind(6, b.target_build_id).bind(7, b.kernel_release);
      q.bind(8, b.description).bind(9, b.manifest_json).bind(10, b.signer);
      q.bind(11, b.size).bind(12, b.published_unix).bind(13, b.uploaded_unix);
      NINES_TRY(q.step("store bundle row"));
    }
    NINES_CHECK(bump_generation());
    if (!tier.empty()) NINES_CHECK(promote_locked(b.id, b.version, tier));
    NINES_CHECK(tx.commit());
    return PublishOutcome::kStored;
  }

  Result<std::optional<BundleRecord>> find_bundle(const std::string& id, int64_t version) override {
    std::lock_guard lock(mu_);
    std::string sql =
        fmt::format("SELECT {} FROM bundles b WHERE id = ? AND version = ?", kBundleCols);
    Stmt q(cache_, sql.c_str());
    NINES_CHECK(q.prepared("find bundle"));
    q.bind(1, id).bind(2, version);
    if (!NINES_TRY(q.step("find bundle"))) return std::optional<BundleRecord>();
    return std::optional<BundleRecord>(bundle_from(q));
  }

  Result<std::vector<BundleRecord>> list_bundles() override {
    std::lock_guard lock(mu_);
    std::string sql = fmt::format("SELECT {} FROM bundles b ORDER BY id, version", kBundleCols);
    return bundles_query(sql, {});
  }

  Result<std::optional<std::string>> bundle_bytes(const std::string& sha256) override {
    std::lock_guard lock(mu_);
    Stmt q(cache_, "SELECT data FROM blobs WHERE sha256 = ?");
    NINES_CHECK(q.prepared("read bundle bytes"));
    q.bind(1, sha256);
    if (!NINES_TRY(q.step("read bundle bytes"))) return std::optional<std::string>();
    return std::optional<std::string>(q.blob(0));
  }

  Status promote(const std::string& id, int64_t version, const std::string& tier) override {
    std::lock_guard lock(mu_);
    NINES_CHECK(exec("BEGIN IMMEDIATE", "begin promote"));
    Tx tx(this);
    {
      Stmt q(cache_, "SELECT 1 FROM bundles WHERE id = ? AND version = ?");
      NINES_CHECK(q.prepared("find bundle"));
      q.bind(1, id).bind(2, version);
      if (!NINES_TRY(q.step("find bundle")))
        return make_error("promote {} version {} to {}: no such bundle", id, version, tier);
    }
    NINES_CHECK(promote_locked(id, version, tier));
    NINES_CHECK(tx.commit());
    return {};
  }

  Result<std::vector<Promotion>> list_promotions() override {
    std::lock_guard lock(mu_);
    Stmt q(cache_,
           "SELECT id, version, tier, promoted_unix FROM promotions "
           "ORDER BY promoted_unix, id, version, tier");
    NINES_CHECK(q.prepared("list promotions"));
    std::vector<Promotion> out;
    while (NINES_TRY(q.step("list promotions")))
      out.push_back(Promotion{q.text(0), q.i64(1), q.text(2), q.i64(3)});
    return out;
  }

  Result<std::vector<BundleRecord>> bundles_in_tier(const std::string& tier) override {
    std::lock_guard lock(mu_);
    std::string sql = fmt::format(
        "SELECT {} FROM bundles b JOIN promotions p ON p.id = b.id AND p.version = b.version "
        "WHERE p.tier = ? ORDER BY b.id, b.version",
        kBundleCols);
    return bundles_query(sql, tier);
  }

  Result<int64_t> catalogue_generation() override {
    std::lock_guard lock(mu_);
    Stmt q(cache_, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'");
    NINES_CHECK(q.prepared("read generation"));
    if (!NINES_TRY(q.step("read generation"))) return int64_t{0};
    return q.i64(0);
  }

  Status upsert_machine(const MachineRecord& m) override {
    std::lock_guard lock(mu_);
    Stmt q(cache_,
           "INSERT INTO machines(machine_id, tier, name, arch, kernel_release, kernel_build_id, "
           "build_ids_json, advisor_json, first_seen_unix, last_seen_unix, identity_sha) "
           "VALUES(?,?,?,?,?,?,?,'{}',?,?,?) ON CONFLICT(machine_id) DO "
           "UPDATE SET tier=excluded.tier, name=excluded.name, arch=excluded.arch, "
           "kernel_release=excluded.kernel_release, kernel_build_id=excluded.kernel_build_id, "
           "build_ids_json=excluded.build_ids_json, last_seen_unix=excluded.last_seen_unix, "
           "identity_sha=excluded.identity_sha");
    NINES_CHECK(q.prepared("store machine"));
    q.bind(1, m.machine_id).bind(2, m.tier).bind(3, m.name).bind(4, m.arch);
    q.bind(5, m.kernel_release).bind(6, m.kernel_build_id).bind(7, m.build_ids_json);
    q.bind(8, m.first_seen_unix).bind(9, m.last_seen_unix).bind(10, m.identity_sha);
    NINES_TRY(q.step(fmt::format("store machine {}", m.machine_id)));
    return {};
  }

  Result<bool> touch_machine(const std::string& machine_id, const std::string& tier,
                             const std::string& identity_sha, int64_t now_unix) override {
    std::lock_guard lock(mu_);
    Stmt q(cache_,
           "UPDATE machines SET last_seen_unix = ? WHERE machine_id = ? AND tier = ? "
           "AND identity_sha = ? AND identity_sha != ''");
    NINES_CHECK(q.prepared("touch machine"));
    q.bind(1, now_unix).bind(2, machine_id).bind(3, tier).bind(4, identity_sha);
    NINES_TRY(q.step("touch machine"));
    return sqlite3_changes(db_) > 0;
  }

  Result<std::optional<MachineRecord>> find_machine(const std::string& machine_id) override {
    std::lock_guard lock(mu_);
    std::string sql = fmt::format("SELECT {} FROM machines WHERE machine_id = ?", kMachineCols);
    Stmt q(cache_, sql.c_str());
    NINES_CHECK(q.prepared("find machine"));
    q.bind(1, machine_id);
    if (!NINES_TRY(q.step("find machine"))) return std::optional<MachineRecord>();
    return std::optional<MachineRecord>(machine_from(q));
  }

  Result<std::vector<MachineRecord>> list_machines() override {
    std::lock_guard lock(mu_);
    std::string sql = fmt::format("SELECT {} FROM machines ORDER BY machine_id", kMachineCols);
    Stmt q(cache_, sql.c_str());
    NINES_CHECK(q.prepared("list machines"));
    std::vector<MachineRecord> out;
    while (NINES_TRY(q.step("list machines"))) out.push_back(machine_from(q));
    return out;
  }

  Status add_reports(const std::string& machine_id, const std::vector<ReportRecord>& lines,
                     const std::string& advisor_json,
                     const std::string& catalogue_json) override {
    std::lock_guard lock(mu_);
    NINES_CHECK(exec("BEGIN IMMEDIATE", "begin reports"));
    Tx tx(this);
    for (const ReportRecord& r : lines) {
      Stmt q(cache_,
             "INSERT INTO reports(machine_id, bundle_id, version, state, reason, "
             "reported_unix) VALUES(?,?,?,?,?,?)");
      NINES_CHECK(q.prepared("store report"));
      q.bind(1, machine_id).bind(2, r.bundle_id).bind(3, r.version).bind(4, r.state);
      q.bind(5, r.reason).bind(6, r.reported_unix);
      NINES_TRY(q.step("store report"));
      int64_t seq = sqlite3_last_insert_rowid(db_);
      Stmt u(cache_,
             "INSERT INTO patch_state VALUES(?,?,?,?,?,?,?) "
             "ON CONFLICT(machine_id, bundle_id) DO UPDATE SET version=excluded.version, "
             "state=excluded.state, reason=excluded.reason, seq=excluded.seq, "
             "updated_unix=excluded.updated_unix");
      NINES_CHECK(u.prepared("store patch state"));
      u.bind(1, machine_id).bind(2, r.bundle_id).bind(3, r.version).bind(4, r.state);
      u.bind(5, r.reason).bind(6, seq).bind(7, r.reported_unix);
      NINES_TRY(u.step("store patch state"));
    }
    if (!advisor_json.empty()) {
      Stmt q(cache_, "UPDATE machines SET advisor_json = ? WHERE machine_id = ?");
      NINES_CHECK(q.prepared("store advisor verdict"));
      q.bind(1, advisor_json).bind(2, machine_id);
      NINES_TRY(q.step("store advisor verdict"));
    }
    if (!catalogue_json.empty()) {
      Stmt q(cache_, "UPDATE machines SET catalogue_json = ? WHERE machine_id = ?");
      NINES_CHECK(q.prepared("store catalogue state"));
      q.bind(1, catalogue_json).bind(2, machine_id);
      NINES_TRY(q.step("store catalogue state"));
    }
    NINES_CHECK(tx.commit());
    return {};
  }

  Result<std::vector<ReportRecord>> history(const std::string& machine_id, int64_t limit) override {
    std::lock_guard lock(mu_);
    const char* sql =
        machine_id.empty()
            ? "SELECT * FROM (SELECT seq, machine_id, bundle_id, version, state, reason, "
              "reported_unix FROM reports ORDER BY seq DESC LIMIT ?) ORDER BY seq"
            : "SELECT * FROM (SELECT seq, machine_id, bundle_id, version, state, reason, "
              "reported_unix FROM reports WHERE machine_id = ? ORDER BY seq DESC LIMIT ?) "
              "ORDER BY seq";
    Stmt q(cache_, sql);
    NINES_CHECK(q.prepared("read history"));
    if (machine_id.empty()) {
      q.bind(1, limit);
    } else {
      q.bind(1, machine_id).bind(2, limit);
    }
    std::vector<ReportRecord> out;
    while (NINES_TRY(q.step("read history"))) out.push_back(report_from(q));
    return out;
  }

  Result<std::vector<ReportRecord>> current_states() override {
    std::lock_guard lock(mu_);
    Stmt q(cache_,
           "SELECT seq, machine_id, bundle_id, version, state, reason, updated_unix "
           "FROM patch_state ORDER BY machine_id, bundle_id");
    NINES_CHECK(q.prepared("read patch states"));
    std::vector<ReportRecord> out;
    while (NINES_TRY(q.step("read patch states"))) out.push_back(report_from(q));
    return out;
  }

 private:
  // Rolls back unless committed. Caller holds mu_ and has run BEGIN.
  class Tx {
   public:
    explicit Tx(SqliteStorage* s) : s_(s) {}
    ~Tx() {
      if (!done_) sqlite3_exec(s_->db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    Status commit() {
      done_ = true;
      return s_->exec("COMMIT", "commit");
    }

   private:
    SqliteStorage* s_;
    bool done_ = false;
  };

  Status exec(const char* sql, std::string_view what) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      return make_error("sqlite {} ({}): {}", what, path_, msg);
    }
    return {};
  }

  Status insert_token(const TokenRecord& t, const char* sql) {
    Stmt q(cache_, sql);
    NINES_CHECK(q.prepared("store token"));
    q.bind(1, t.hash_hex).bind(2, std::string(to_string(t.kind))).bind(3, t.tier).bind(4, t.name);
    q.bind(5, t.machine_id).bind(6, t.created_unix).bind(7, t.expires_unix);
    NINES_TRY(q.step("store token"));
    return {};
  }

  // Inside a transaction: adds the promotion, bumps the generation when it is new.
  Status promote_locked(const std::string& id, int64_t version, const std::string& tier) {
    Stmt q(cache_, "INSERT OR IGNORE INTO promotions VALUES(?,?,?,strftime('%s','now'))");
    NINES_CHECK(q.prepared("promote"));
    q.bind(1, id).bind(2, version).bind(3, tier);
    NINES_TRY(q.step("promote"));
    if (sqlite3_changes(db_) > 0) NINES_CHECK(bump_generation());
    return {};
  }

  Status bump_generation() {
    return exec("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'",
                "bump catalogue generation");
  }

  Result<std::vector<BundleRecord>> bundles_query(const std::string& sql,
                                                  std::optional<std::string> tier) {
    Stmt q(cache_, sql.c_str());
    NINES_CHECK(q.prepared("list bundles"));
    if (tier) q.bind(1, *tier);
    std::vector<BundleRecord> out;
    while (NINES_TRY(q.step("list bundles"))) out.push_back(bundle_from(q));
    return out;
  }

  std::mutex mu_;
  sqlite3* db_;
  StmtCache cache_;
  std::string path_;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_sqlite(const std::string& path) {
  // The database holds token hashes and the fleet's inventory: create it 0600 (SQLite gives
  // its -wal and -shm files the same mode).
  if (int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); fd >= 0) ::close(fd);
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return make_error("open sqlite database {}: {}", path, msg);
  }
  sqlite3_busy_timeout(db, 5000);
  auto s = std::make_unique<SqliteStorage>(db, path);
  NINES_CHECK(s->init());
  return std::unique_ptr<Storage>(std::move(s));
}

Result<std::unique_ptr<Storage>> open_storage(const std::string& url) {
  if (url.starts_with("sqlite:")) {
    std::string path = url.substr(7);
    if (path.empty()) return make_error("open storage {}: empty sqlite path", url);
    return open_sqlite(path);
  }
  if (url.starts_with("postgresql://") || url.starts_with("postgres://"))
    return open_postgresql(url);
  return make_error("open storage '{}': unknown scheme (use sqlite:PATH or postgresql://...)", url);
}

}  // namespace nines::server
