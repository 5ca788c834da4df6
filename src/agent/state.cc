#include "agent/state.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/strings.h"

namespace nines::agent {

namespace {

// Owns a prepared statement.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

std::string col_text(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

constexpr const char* kPatchCols =
    "id, version, kind, sha256, target_name, target_build_id, kernel_release, published_unix, "
    "manifest_json, state, reason, until_unix, reported, updated_unix";

PatchRow row_of(sqlite3_stmt* s) {
  PatchRow r;
  r.id = col_text(s, 0);
  r.version = sqlite3_column_int64(s, 1);
  r.kind = col_text(s, 2);
  r.sha256 = col_text(s, 3);
  r.target_name = col_text(s, 4);
  r.target_build_id = col_text(s, 5);
  r.kernel_release = col_text(s, 6);
  r.published_unix = sqlite3_column_int64(s, 7);
  r.manifest_json = col_text(s, 8);
  r.state = row_state_of(col_text(s, 9));
  r.reason = col_text(s, 10);
  r.until_unix = sqlite3_column_int64(s, 11);
  r.reported = col_text(s, 12);
  r.updated_unix = sqlite3_column_int64(s, 13);
  return r;
}

constexpr std::pair<RowState, const char*> kStateNames[] = {
    {RowState::kOffered, "offered"},
    {RowState::kApplying, "applying"},
    {RowState::kApplied, "applied"},
    {RowState::kApplyFailed, "apply-failed"},
    {RowState::kInterrupted, "interrupted"},
    {RowState::kDeferred, "deferred"},
    {RowState::kNotApplicable, "not-applicable"},
    {RowState::kReverted, "reverted"},
    {RowState::kSuperseded, "superseded"},
    {RowState::kRefused, "refused"},
};

}  // namespace

const char* to_string(RowState s) {
  for (const auto& [state, name] : kStateNames)
    if (state == s) return name;
  return "offered";
}

RowState row_state_of(std::string_view text) {
  for (const auto& [state, name] : kStateNames)
    if (text == name) return state;
  return RowState::kOffered;
}

Result<int64_t> StateDb::floor(const std::string& id) {
  auto v = NINES_TRY(get("floor/" + id));
  return v ? parse_i64(*v).value_or(0) : 0;
}

Status StateDb::raise_floor(const std::string& id, int64_t version) {
  if (NINES_TRY(floor(id)) >= version) return {};
  return put("floor/" + id, std::to_string(version));
}

Result<StateDb> StateDb::open(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/'));
  for (size_t i = 1; i <= dir.size(); ++i)
    if (i == dir.size() || dir[i] == '/') ::mkdir(dir.substr(0, i).c_str(), 0700);
  StateDb db;
  db.path_ = path;
  if (sqlite3_open_v2(path.c_str(), &db.db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    return make_error("open state {}: {}", path, db.db_ ? sqlite3_errmsg(db.db_) : "out of memory");
  }
  ::chmod(path.c_str(), 0600);
  sqlite3_busy_timeout(db.db_, 5000);
  NINES_CHECK(db.exec("PRAGMA journal_mode=WAL"));
  NINES_CHECK(db.exec("PRAGMA synchronous=FULL"));
  // A handful of rows: a small page cache keeps the idle agent's memory low.
  NINES_CHECK(db.exec("PRAGMA cache_size=-256"));
  NINES_CHECK(db.exec("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)"));
  NINES_CHECK(db.exec(
      "CREATE TABLE IF NOT EXISTS patches (id TEXT NOT NULL, version INTEGER NOT NULL, kind TEXT, "
      "sha256 TEXT, target_name TEXT, target_build_id TEXT, kernel_release TEXT, "
      "published_unix INTEGER, manifest_json TEXT, state TEXT, reason TEXT, until_unix INTEGER, "
      "reported TEXT, updated_unix INTEGER, PRIMARY KEY (id, version))"));
  // A journal written before version floors existed: what it records as applied (or
  // superseded, i.e. applied then replaced) sets the floor.
  NINES_CHECK(db.exec(
      "INSERT OR IGNORE INTO kv (key, value) SELECT 'floor/' || id, MAX(version) FROM patches "
      "WHERE state IN ('applied', 'superseded') GROUP BY id"));
  return db;
}

StateDb::StateDb(StateDb&& o) noexcept : db_(o.db_), path_(std::move(o.path_)) { o.db_ = nullptr; }
StateDb& StateDb::operator=(StateDb&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close(db_);
    db_ = o.db_;
    path_ = std::move(o.path_);
    o.db_ = nullptr;
  }
  return *this;
}
StateDb::~StateDb() {
  if (db_) sqlite3_close(db_);
}

Status StateDb::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    Error e = make_error("state {}: {}: {}", path_, sql.substr(0, 40), err ? err : "?");
    sqlite3_free(err);
    return e;
  }
  return {};
}

Result<std::optional<std::string>> StateDb::get(const std::string& key) {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT value FROM kv WHERE key = ?", -1, &st.s, nullptr) !=
      SQLITE_OK)
    return make_error("state {}: read {}: {}", path_, key, sqlite3_errmsg(db_));
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st.s);
  if (rc == SQLITE_ROW) return std::optional<std::string>(col_text(st.s, 0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return make_error("state {}: read {}: {}", path_, key, sqlite3_errmsg(db_));
}

Status StateDb::put(const std::string& key, const std::string& value) {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", -1, &st.s,
                         nullptr) != SQLITE_OK)
    return make_error("state {}: write {}: {}", path_, key, sqlite3_errmsg(db_));
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, value.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE)
    return make_error("state {}: write {}: {}", path_, key, sqlite3_errmsg(db_));
  return {};
}

Result<std::vector<PatchRow>> StateDb::patches() {
  Stmt st;
  std::string sql = std::string("SELECT ") + kPatchCols + " FROM patches ORDER BY id, version";
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK)
    return make_error("state {}: read patches: {}", path_, sqlite3_errmsg(db_));
  std::vector<PatchRow> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) out.push_back(row_of(st.s));
  if (rc != SQLITE_DONE)
    return make_error("state {}: read patches: {}", path_, sqlite3_errmsg(db_));
  return out;
}

Result<std::optional<PatchRow>> StateDb::patch(const std::string& id, int64_t version) {
  Stmt st;
  std::string sql =
      std::string("SELECT ") + kPatchCols + " FROM patches WHERE id = ? AND version = ?";
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK)
    return make_error("state {}: read patch {}: {}", path_, id, sqlite3_errmsg(db_));
  sqlite3_bind_text(st.s, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.s, 2, version);
  int rc = sqlite3_step(st.s);
  if (rc == SQLITE_ROW) return std::optional<PatchRow>(row_of(st.s));
  if (rc == SQLITE_DONE) return std::optional<PatchRow>();
  return make_error("state {}: read patch {}: {}", path_, id, sqlite3_errmsg(db_));
}

Status StateDb::upsert(const PatchRow& r) {
  Stmt st;
  std::string sql = std::string("INSERT OR REPLACE INTO patches (") + kPatchCols +
                    ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK)
    return make_error("state {}: write patch {}: {}", path_, r.id, sqlite3_errmsg(db_));
  auto text = [&](int i, const std::string& v) {
    sqlite3_bind_text(st.s, i, v.c_str(), -1, SQLITE_TRANSIENT);
  };
  text(1, r.id);
  sqlite3_bind_int64(st.s, 2, r.version);
  text(3, r.kind);
  text(4, r.sha256);
  text(5, r.target_name);
  text(6, r.target_build_id);
  text(7, r.kernel_release);
  sqlite3_bind_int64(st.s, 8, r.published_unix);
  text(9, r.manifest_json);
  text(10, to_string(r.state));
  text(11, r.reason);
  sqlite3_bind_int64(st.s, 12, r.until_unix);
  text(13, r.reported);
  sqlite3_bind_int64(st.s, 14, unix_now());
  if (sqlite3_step(st.s) != SQLITE_DONE)
    return make_error("state {}: write patch {}: {}", path_, r.id, sqlite3_errmsg(db_));
  return {};
}

}  // namespace nines::agent
