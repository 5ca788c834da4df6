// PostgreSQL back end, on libpq directly: a small pool of connections, every statement with
// parameters (never text pasted into SQL), every multi-statement write in one transaction.
// Several `nines serve` processes may share one database: schema creation and the first
// admin token are serialized with a transaction-scoped advisory lock, and a publish race on
// the same id+version is settled by the primary key (INSERT ... ON CONFLICT DO NOTHING).
#include <libpq-fe.h>

#include <condition_variable>
#include <memory>
#include <mutex>

#include "server/storage.h"

namespace nines::server {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS tokens(
  hash TEXT PRIMARY KEY, kind TEXT NOT NULL, tier TEXT NOT NULL, name TEXT NOT NULL,
  machine_id TEXT NOT NULL, created_unix BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_machine ON tokens(machine_id);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO meta(key, value) VALUES('generation', 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS blobs(sha256 TEXT PRIMARY KEY, data BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS bundles(
  id TEXT NOT NULL, version BIGINT NOT NULL, sha256 TEXT NOT NULL, kind TEXT NOT NULL,
  target_name TEXT NOT NULL, target_build_id TEXT NOT NULL, kernel_release TEXT NOT NULL,
  description TEXT NOT NULL, manifest_json TEXT NOT NULL, signer TEXT NOT NULL,
  size BIGINT NOT NULL, published_unix BIGINT NOT NULL, uploaded_unix BIGINT NOT NULL,
  PRIMARY KEY(id, version));
CREATE TABLE IF NOT EXISTS promotions(
  id TEXT NOT NULL, version BIGINT NOT NULL, tier TEXT NOT NULL,
  promoted_unix BIGINT NOT NULL, PRIMARY KEY(id, version, tier));
CREATE TABLE IF NOT EXISTS machines(
  machine_id TEXT PRIMARY KEY, tier TEXT NOT NULL, name TEXT NOT NULL, arch TEXT NOT NULL,
  kernel_release TEXT NOT NULL, kernel_build_id TEXT NOT NULL, build_ids_json TEXT NOT NULL,
  advisor_json TEXT NOT NULL, first_seen_unix BIGINT NOT NULL,
  last_seen_unix BIGINT NOT NULL,
  identity_sha TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS patch_state(
  machine_id TEXT NOT NULL, bundle_id TEXT NOT NULL, version BIGINT NOT NULL,
  state TEXT NOT NULL, reason TEXT NOT NULL, seq BIGINT NOT NULL,
  updated_unix BIGINT NOT NULL, PRIMARY KEY(machine_id, bundle_id));
CREATE TABLE IF NOT EXISTS reports(
  seq BIGSERIAL PRIMARY KEY, machine_id TEXT NOT NULL, bundle_id TEXT NOT NULL,
  version BIGINT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
  reported_unix BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS reports_machine ON reports(machine_id, seq);
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS expires_unix BIGINT NOT NULL DEFAULT 0;
ALTER TABLE machines ADD COLUMN IF NOT EXISTS catalogue_json TEXT NOT NULL DEFAULT '';
)sql";

// The advisory lock key that serializes schema creation and the first admin token.
constexpr const char* kLockSql = "SELECT pg_advisory_xact_lock(7263746)";

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

// A query parameter: text, or binary bytes (bytea).
struct Param {
  std::string value;
  bool binary = false;
};
Param P(std::string s) { return Param{std::move(s), false}; }
Param P(int64_t v) { return Param{std::to_string(v), false}; }
Param B(const std::string& s) { return Param{s, true}; }

int64_t as_i64(PGresult* r, int row, int col) {
  return std::strtoll(PQgetvalue(r, row, col), nullptr, 10);
}
std::string as_text(PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}

class Conn {
 public:
  explicit Conn(PGconn* c) : c_(c) {}
  ~Conn() { PQfinish(c_); }
  PGconn* get() { return c_; }

  // Runs one statement. `binary_result` asks for binary columns (used only for bytea).
  Result<PgResult> exec(std::string_view what, const char* sql, const std::vector<Param>& ps = {},
                        bool binary_result = false) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const Param& p : ps) {
      values.push_back(p.value.data());
      lengths.push_back(static_cast<int>(p.value.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
    PgResult r(PQexecParams(c_, sql, static_cast<int>(ps.size()), nullptr, values.data(),
                            lengths.data(), formats.data(), binary_result ? 1 : 0));
    ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string msg = r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c_);
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      return make_error("postgresql {}: {}", what, msg);
    }
    return r;
  }
  // Several statements without parameters (the schema): PQexec, which allows them.
  Status script(std::string_view what, const char* sql) {
    PgResult r(PQexec(c_, sql));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      std::string msg = r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c_);
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      return make_error("postgresql {}: {}", what, msg);
    }
    return {};
  }
  Status run(std::string_view what, const char* sql, const std::vector<Param>& ps = {}) {
    NINES_TRY(exec(what, sql, ps));
    return {};
  }

 private:
  PGconn* c_;
};

constexpr const char* kBundleCols =
    "b.id, b.version, b.sha256, b.kind, b.target_name, b.target_build_id, b.kernel_release, "
    "b.description, b.manifest_json, b.signer, b.size, b.published_unix, b.uploaded_unix";

BundleRecord bundle_from(PGresult* r, int i) {
  BundleRecord b;
  b.id = as_text(r, i, 0);
  b.version = as_i64(r, i, 1);
  b.sha256 = as_text(r, i, 2);
  b.kind = as_text(r, i, 3);
  b.target_name = as_text(r, i, 4);
  b.target_build_id = as_text(r, i, 5);
  b.kernel_release = as_text(r, i, 6);
  b.description = as_text(r, i, 7);
  b.manifest_json = as_text(r, i, 8);
  b.signer = as_text(r, i, 9);
  b.size = as_i64(r, i, 10);
  b.published_unix = as_i64(r, i, 11);
  b.uploaded_unix = as_i64(r, i, 12);
  return b;
}

constexpr const char* kMachineCols =
    "machine_id, tier, name, arch, kernel_release, kernel_build_id, build_ids_json, "
    "advisor_json, first_seen_unix, last_seen_unix, identity_sha, catalogue_json";

MachineRecord machine_from(PGresult* r, int i) {
  MachineRecord m;
  m.machine_id = as_text(r, i, 0);
  m.tier = as_text(r, i, 1);
  m.name = as_text(r, i, 2);
  m.arch = as_text(r, i, 3);
  m.kernel_release = as_text(r, i, 4);
  m.kernel_build_id = as_text(r, i, 5);
  m.build_ids_json = as_text(r, i, 6);
  m.advisor_json = as_text(r, i, 7);
  m.first_seen_unix = as_i64(r, i, 8);
  m.last_seen_unix = as_i64(r, i, 9);
  m.identity_sha = as_text(r, i, 10);
  m.catalogue_json = as_text(r, i, 11);
  return m;
}

Result<TokenRecord> token_from(PGresult* r, int i) {
  TokenRecord t;
  t.hash_hex = as_text(r, i, 0);
  std::optional<TokenKind> kind = parse_token_kind(as_text(r, i, 1));
  if (!kind)
    return make_error("token {}: unknown kind '{}' in the database", t.hash_hex.substr(0, 16),
                      as_text(r, i, 1));
  t.kind = *kind;
  t.tier = as_text(r, i, 2);
  t.name = as_text(r, i, 3);
  t.machine_id = as_text(r, i, 4);
  t.created_unix = as_i64(r, i, 5);
  t.expires_unix = as_i64(r, i, 6);
  return t;
}

ReportRecord report_from(PGresult* r, int i) {
  ReportRecord x;
  x.seq = as_i64(r, i, 0);
  x.machine_id = as_text(r, i, 1);
  x.bundle_id = as_text(r, i, 2);
  x.version = as_i64(r, i, 3);
  x.state = as_text(r, i, 4);
  x.reason = as_text(r, i, 5);
  x.reported_unix = as_i64(r, i, 6);
  return x;
}

class PgStorage final : public Storage {
 public:
  explicit PgStorage(std::string conninfo) : conninfo_(std::move(conninfo)) {}

  std::string backend() const override { return "postgresql"; }

  // Opens the first connection (so a bad URL fails at start) and creates the schema.
  Status init() override {
    auto c = NINES_TRY(acquire());
    Tx tx(c.get());
    NINES_CHECK(tx.begin());
    NINES_CHECK(c->run("lock schema", kLockSql));
    NINES_CHECK(c->script("create schema", kSchema));
    NINES_CHECK(tx.commit());
    return {};
  }

  Status put_token(const TokenRecord& t) override {
    auto c = NINES_TRY(acquire());
    return insert_token(*c, t);
  }

  Result<bool> put_first_admin_token(const TokenRecord& t) override {
    auto c = NINES_TRY(acquire());
    Tx tx(c.get());
    NINES_CHECK(tx.begin());
    NINES_CHECK(c->run("lock admin token", kLockSql));
    PgResult r = NINES_TRY(
        c->exec("count admin tokens", "SELECT count(*) FROM tokens WHERE kind = 'admin'"));
    if (as_i64(r.get(), 0, 0) > 0) return false;
    NINES_CHECK(insert_token(*c, t));
    NINES_CHECK(tx.commit());
    return true;
  }

  Result<std::optional<TokenRecord>> find_token(const std::string& hash_hex) override {
    auto c = NINES_TRY(acquire());
    PgResult r = NINES_TRY(c->exec("find token",
                                   "SELECT hash, kind, tier, name, machine_id, created_unix, "
                                   "expires_unix FROM tokens WHERE hash = $1",
                                   {P(hash_hex)}));
    if (PQntuples(r.get()) == 0) return std::optional<TokenRecord>();
    return std::optional<TokenRecord>(NINES_TRY(token_from(r.get(), 0)));
  }

  Result<std::vector<TokenRecord>> list_tokens() override {
    auto c = NINES_TRY(acquire());
    PgResult r = NINES_TRY(c->exec("list tokens",
                                   "SELECT hash, kind, tier, name, machine_id, created_unix, "
                                   "expires_unix FROM tokens ORDER BY created_unix, hash"));
    std::vector<TokenRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(NINES_TRY(token_from(r.get(), i)));
    return out;
  }

  Result<bool> delete_token(const std::string& hash_hex) override {
    auto c = NINES_TRY(acquire());
    PgResult r = NINES_TRY(c->exec("delete token", "DELETE FROM tokens WHERE hash = $1 RETURNING hash",
                                   {P(hash_hex)}));
    return PQntuples(r.get()) > 0;
  }

  Status delete_machine_tokens(const std::string& machine_id) override {
    auto c = NINES_TRY(acquire());
    return c->run("delete machine tokens",
                  "DELETE FROM tokens WHERE kind = 'machine' AND machine_id = $1", {P(machine_id)});
  }

  Result<PublishOutcome> publish(const BundleRecord& b, const std::string& bytes,
                                 const std::string& tier) override {
    auto c = NINES_TRY(acquire());
    Tx tx(c.get());
    NINES_CHECK(tx.begin());
    NINES_CHECK(c->run("store bundle bytes",
                       "INSERT INTO blobs(sha256, data) VALUES($1, $2) ON CONFLICT DO NOTHING",
                       {P(b.sha256), B(bytes)}));
    PgResult ins = NINES_TRY(
        c->exec("store bundle row",
                "INSERT INTO bundles VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) "
                "ON CONFLICT DO NOTHING RETURNING id",
                {P(b.id), P(b.version), P(b.sha256), P(b.kind), P(b.target_name),
                 P(b.target_build_id), P(b.kernel_release), P(b.description), P(b.manifest_json),
                 P(b.signer), P(b.size), P(b.published_unix), P(b.uploaded_unix)}));
    if (PQntuples(ins.get()) == 0) {
      PgResult r = NINES_TRY(c->exec("find bundle",
                                     "SELECT sha256 FROM bundles WHERE id = $1 AND version = $2",
                                     {P(b.id), P(b.version)}));
      std::string existing = PQntuples(r.get()) ? as_text(r.get(), 0, 0) : "";
      if (existing == b.sha256) {
        if (!tier.empty()) NINES_CHECK(promote_tx(*c, b.id, b.version, tier));
        NINES_CHECK(tx.commit());
        return PublishOutcome::kAlreadyIdentical;
      }
      // The transaction rolls back (Tx destructor): a blob stored above only for this
      // refused publish does not stay.
      return make_error(
          "publish {} version {}: already published with different content "
          "(sha256 {}, this one {})",
          b.id, b.version, existing, b.sha256);
    }
    NINES_CHECK(bump_generation(*c));
    if (!tier.empty()) NINES_CHECK(promote_tx(*c, b.id, b.version, tier));
    NINES_CHECK(tx.commit());
    return PublishOutcome::kStored;
  }

  Result<std::optional<BundleRecord>> find_bundle(const std::string& id, int64_t version) override {
    auto c = NINES_TRY(acquire());
    std::string sql =
        fmt::format("SELECT {} FROM bundles b WHERE id = $1 AND version = $2", kBundleCols);
    PgResult r = NINES_TRY(c->exec("find bundle", sql.c_str(), {P(id), P(version)}));
    if (PQntuples(r.get()) == 0) return std::optional<BundleRecord>();
    return std::optional<BundleRecord>(bundle_from(r.get(), 0));
  }

  Result<std::vector<BundleRecord>> list_bundles() override {
    auto c = NINES_TRY(acquire());
    std::string sql = fmt::format("SELECT {} FROM bundles b ORDER BY id, version", kBundleCols);
    PgResult r = NINES_TRY(c->exec("list bundles", sql.c_str()));
    std::vector<BundleRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(bundle_from(r.get(), i));
    return out;
  }

  Result<std::optional<std::string>> bundle_bytes(const std::string& sha256) override {
    auto c = NINES_TRY(acquire());
    PgResult r = NINES_TRY(c->exec("read bundle bytes", "SELECT data FROM blobs WHERE sha256 = $1",
                                   {P(sha256)}, /*binary_result=*/true));
    if (PQntuples(r.get()) == 0) return std::optional<std::string>();
    return std::optional<std::string>(as_text(r.get(), 0, 0));
  }

  Status promote(const std::string& id, int64_t version, const std::string& tier) override {
    auto c = NINES_TRY(acquire());
    Tx tx(c.get());
    NINES_CHECK(tx.begin());
    PgResult r =
        NINES_TRY(c->exec("find bundle", "SELECT 1 FROM bundles WHERE id = $1 AND version = $2",
                          {P(id), P(version)}));
    if (PQntuples(r.get()) == 0)
      return make_error("promote {} version {} to {}: no such bundle", id, version, tier);
    NINES_CHECK(promote_tx(*c, id, version, tier));
    NINES_CHECK(tx.commit());
    return {};
  }

  Result<std::vector<Promotion>> list_promotions() override {
    auto c = NINES_TRY(acquire());
    PgResult r = NINES_TRY(c->exec("list promotions",
                                   "SELECT id, version, tier, promoted_unix FROM promotions "
                                   "ORDER BY promoted_unix, id, version, tier"));
    std::vector<Promotion> out;
    for (int i = 0; i < PQntuples(r.get()); ++i)
      out.push_back(Promotion{as_text(r.get(), i, 0), as_i64(r.get(), i, 1), as_text(r.get(), i, 2),
                              as_i64(r.get(), i, 3)});
    return out;
  }

  Result<std::vector<BundleRecord>> bundles_in_tier(const std::string& tier) override {
    auto c = NINES_TRY(acquire());
    std::string sql = fmt::format(
        "SELECT {} FROM bundles b JOIN promotions p ON p.id = b.id AND p.version = b.version "
        "WHERE p.tier = $1 ORDER BY b.id, b.version",
        kBundleCols);
    PgResult r = NINES_TRY(c->exec("list bundles of tier", sql.c_str(), {P(tier)}));
    std::vector<BundleRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(bundle_from(r.get(), i));
    return out;
  }

  Result<int64_t> catalogue_generation() override {
    auto c = NINES_TRY(acquire());
    PgResult r =
        NINES_TRY(c->exec("read generation", "SELECT value FROM meta WHERE key = 'generation'"));
    if (PQntuples(r.get()) == 0) return int64_t{0};
    return as_i64(r.get(), 0, 0);
  }

  Status upsert_machine(const MachineRecord& m) override {
    auto c = NINES_TRY(acquire());
    return c->run(
        "store machine",
        "INSERT INTO machines(machine_id, tier, name, arch, kernel_release, kernel_build_id, "
        "build_ids_json, advisor_json, first_seen_unix, last_seen_unix, identity_sha) "
        "VALUES($1,$2,$3,$4,$5,$6,$7,'{}',$8,$9,$10) "
        "ON CONFLICT(machine_id) DO UPDATE SET tier=excluded.tier, name=excluded.name, "
        "arch=excluded.arch, kernel_release=excluded.kernel_release, "
        "kernel_build_id=excluded.kernel_build_id, build_ids_json=excluded.build_ids_json, "
        "last_seen_unix=excluded.last_seen_unix, identity_sha=excluded.identity_sha",
        {P(m.machine_id), P(m.tier), P(m.name), P(m.arch), P(m.kernel_release),
         P(m.kernel_build_id), P(m.build_ids_json), P(m.first_seen_unix), P(m.last_seen_unix),
         P(m.identity_sha)});
  }

  Result<bool> touch_machine(const std::string& machine_id, const std::string& tier,
                             const std::string& identity_sha, int64_t now_unix) override {
    auto c = NINES_TRY(acquire());
    PgResult r = NINES_TRY(
        c->exec("touch machine",
                "UPDATE machines SET last_seen_unix = $1 WHERE machine_id = $2 AND tier = $3 "
                "AND identity_sha = $4 AND identity_sha != '' RETURNING machine_id",
                {P(now_unix), P(machine_id), P(tier), P(identity_sha)}));
    return PQntuples(r.get()) > 0;
  }

  Result<std::optional<MachineRecord>> find_machine(const std::string& machine_id) override {
    auto c = NINES_TRY(acquire());
    std::string sql = fmt::format("SELECT {} FROM machines WHERE machine_id = $1", kMachineCols);
    PgResult r = NINES_TRY(c->exec("find machine", sql.c_str(), {P(machine_id)}));
    if (PQntuples(r.get()) == 0) return std::optional<MachineRecord>();
    return std::optional<MachineRecord>(machine_from(r.get(), 0));
  }

  Result<std::vector<MachineRecord>> list_machines() override {
    auto c = NINES_TRY(acquire());
    std::string sql = fmt::format("SELECT {} FROM machines ORDER BY machine_id", kMachineCols);
    PgResult r = NINES_TRY(c->exec("list machines", sql.c_str()));
    std::vector<MachineRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(machine_from(r.get(), i));
    return out;
  }

  Status add_reports(const std::string& machine_id, const std::vector<ReportRecord>& lines,
                     const std::string& advisor_json,
                     const std::string& catalogue_json) override {
    auto c = NINES_TRY(acquire());
    Tx tx(c.get());
    NINES_CHECK(tx.begin());
    for (const ReportRecord& x : lines) {
      PgResult r = NINES_TRY(c->exec(
          "store report",
          "INSERT INTO reports(machine_id, bundle_id, version, state, reason, reported_unix) "
          "VALUES($1,$2,$3,$4,$5,$6) RETURNING seq",
          {P(machine_id), P(x.bundle_id), P(x.version), P(x.state), P(x.reason),
           P(x.reported_unix)}));
      int64_t seq = as_i64(r.get(), 0, 0);
      NINES_CHECK(
          c->run("store patch state",
                 "INSERT INTO patch_state VALUES($1,$2,$3,$4,$5,$6,$7) "
                 "ON CONFLICT(machine_id, bundle_id) DO UPDATE SET version=excluded.version, "
                 "state=excluded.state, reason=excluded.reason, seq=excluded.seq, "
                 "updated_unix=excluded.updated_unix",
                 {P(machine_id), P(x.bundle_id), P(x.version), P(x.state), P(x.reason), P(seq),
                  P(x.reported_unix)}));
    }
    if (!advisor_json.empty())
      NINES_CHECK(c->run("store advisor verdict",
                         "UPDATE machines SET advisor_json = $1 WHERE machine_id = $2",
                         {P(advisor_json), P(machine_id)}));
    if (!catalogue_json.empty())
      NINES_CHECK(c->run("store catalogue state",
                         "UPDATE machines SET catalogue_json = $1 WHERE machine_id = $2",
                         {P(catalogue_json), P(machine_id)}));
    NINES_CHECK(tx.commit());
    return {};
  }

  Result<std::vector<ReportRecord>> history(const std::string& machine_id, int64_t limit) override {
    auto c = NINES_TRY(acquire());
    PgResult r =
        machine_id.empty()
            ? NINES_TRY(c->exec("read history",
                                "SELECT * FROM (SELECT seq, machine_id, bundle_id, version, state, "
                                "reason, reported_unix FROM reports ORDER BY seq DESC LIMIT $1) h "
                                "ORDER BY seq",
                                {P(limit)}))
            : NINES_TRY(c->exec("read history",
                                "SELECT * FROM (SELECT seq, machine_id, bundle_id, version, state, "
                                "reason, reported_unix FROM reports WHERE machine_id = $1 "
                                "ORDER BY seq DESC LIMIT $2) h ORDER BY seq",
                                {P(machine_id), P(limit)}));
    std::vector<ReportRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(report_from(r.get(), i));
    return out;
  }

  Result<std::vector<ReportRecord>> current_states() override {
    auto c = NINES_TRY(acquire());
    PgResult r =
        NINES_TRY(c->exec("read patch states",
                          "SELECT seq, machine_id, bundle_id, version, state, reason, updated_unix "
                          "FROM patch_state ORDER BY machine_id, bundle_id"));
    std::vector<ReportRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(report_from(r.get(), i));
    return out;
  }

 private:
  // A pooled connection goes back to the pool when the handle dies.
  struct Release {
    PgStorage* s;
    void operator()(Conn* c) const { s->release(c); }
  };
  using Handle = std::unique_ptr<Conn, Release>;

  class Tx {
   public:
    explicit Tx(Conn* c) : c_(c) {}
    ~Tx() {
      if (open_) (void)c_->run("rollback", "ROLLBACK");
    }
    Status begin() {
      NINES_CHECK(c_->run("begin", "BEGIN"));
      open_ = true;
      return {};
    }
    Status commit() {
      open_ = false;
      return c_->run("commit", "COMMIT");
    }

   private:
    Conn* c_;
    bool open_ = false;
  };

  Result<Handle> acquire() {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !idle_.empty() || open_ < kMaxConnections; });
      if (!idle_.empty()) {
        Conn* c = idle_.back().release();
        idle_.pop_back();
        if (PQstatus(c->get()) != CONNECTION_OK) PQreset(c->get());
        return Handle(c, Release{this});
      }
      ++open_;
    }
    PGconn* raw = PQconnectdb(conninfo_.c_str());
    if (PQstatus(raw) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(raw);
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      PQfinish(raw);
      {
        std::lock_guard lock(mu_);
        --open_;
      }
      cv_.notify_one();
      return make_error("connect to postgresql: {}", msg);
    }
    // Server notices ("relation already exists, skipping") are not for our users.
    PQsetNoticeProcessor(
        raw, [](void*, const char*) {}, nullptr);
    return Handle(new Conn(raw), Release{this});
  }

  void release(Conn* c) {
    {
      std::lock_guard lock(mu_);
      idle_.emplace_back(c);
    }
    cv_.notify_one();
  }

  Status insert_token(Conn& c, const TokenRecord& t) {
    return c.run(
        "store token",
        "INSERT INTO tokens(hash, kind, tier, name, machine_id, created_unix, expires_unix) "
        "VALUES($1,$2,$3,$4,$5,$6,$7)",
        {P(t.hash_hex), P(std::string(to_string(t.kind))), P(t.tier), P(t.name), P(t.machine_id),
         P(t.created_unix), P(t.expires_unix)});
  }

  // Inside a transaction: adds the promotion, bumps the generation when it is new.
  Status promote_tx(Conn& c, const std::string& id, int64_t version, const std::string& tier) {
    PgResult ins = NINES_TRY(
        c.exec("promote",
               "INSERT INTO promotions VALUES($1,$2,$3,extract(epoch from now())::bigint) "
               "ON CONFLICT DO NOTHING RETURNING id",
               {P(id), P(version), P(tier)}));
    if (PQntuples(ins.get()) > 0) NINES_CHECK(bump_generation(c));
    return {};
  }

  Status bump_generation(Conn& c) {
    return c.run("bump catalogue generation",
                 "UPDATE meta SET value = value + 1 WHERE key = 'generation'");
  }

  static constexpr int kMaxConnections = 8;
  std::string conninfo_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  int open_ = 0;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_postgresql(const std::string& conninfo) {
  auto s = std::make_unique<PgStorage>(conninfo);
  if (Status st = s->init(); !st.ok()) return st.error().wrap("open postgresql database");
  return std::unique_ptr<Storage>(std::move(s));
}

}  // namespace nines::server
