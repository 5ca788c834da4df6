// The patch server's storage: one small interface, two back ends (SQLite for one server,
// PostgreSQL for several stateless servers over one database). Both pass the same test
// suite (tests/server/storage_test.cc).
//
// Every write that the API acknowledges is one transaction: a publish stores the bundle
// bytes and its catalogue row together, so a crash (kill -9) leaves either the whole
// bundle or nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "server/tokens.h"

namespace nines::server {

// A bearer token as stored (tokens.h: TokenKind says what each kind may do).
struct TokenRecord {
  std::string hash_hex;  // SHA-256 of the token text; the token itself is never stored
  TokenKind kind = TokenKind::kMachine;
  std::string tier;
  std::string name;
  std::string machine_id;  // for kind machine
  int64_t created_unix = 0;
  int64_t expires_unix = 0;  // 0: never
};

struct BundleRecord {
  std::string id;
  int64_t version = 0;
  std::string sha256;  // of the whole bundle file: its immutable download name
  std::string kind;    // userspace | kernel
  std::string target_name, target_build_id, kernel_release;
  std::string description;
  std::string manifest_json;  // bundle::manifest_to_json, as served to machines
  std::string signer;         // key fingerprint
  int64_t size = 0;
  int64_t published_unix = 0;  // from the manifest
  int64_t uploaded_unix = 0;   // when this server accepted it
};

struct Promotion {
  std::string id;
  int64_t version = 0;
  std::string tier;
  int64_t promoted_unix = 0;
};

struct MachineRecord {
  std::string machine_id;
  std::string tier;
  std::string name;
  std::string arch;
  std::string kernel_release;
  std::string kernel_build_id;
  std::string build_ids_json;  // JSON array of lowercase hex build-ids of mapped objects
  std::string advisor_json;    // last advisor verdict as reported ({} when none)
  int64_t first_seen_unix = 0;
  int64_t last_seen_unix = 0;
  // SHA-256 over the identity fields above (name, arch, kernel, build-ids): lets a check-in
  // that changes nothing but the time touch one small column (touch_machine).
  std::string identity_sha;
  // Last catalogue freshness state reported ({"state","since","reason"}; "" when none).
  std::string catalogue_json;
};

// One report line: the state of one patch on one machine at one time.
// state: applied | apply-failed | deferred | not-applicable.
struct ReportRecord {
  int64_t seq = 0;  // history order (assigned by the store)
  std::string machine_id;
  std::string bundle_id;
  int64_t version = 0;
  std::string state;
  std::string reason;
  int64_t reported_unix = 0;
};

enum class PublishOutcome { kStored, kAlreadyIdentical };

class Storage {
 public:
  virtual ~Storage() = default;

  // Creates the schema when missing. Idempotent; several servers may race on it.
  virtual Status init() = 0;
  // "sqlite" or "postgresql".
  virtual std::string backend() const = 0;

  // --- tokens
  virtual Status put_token(const TokenRecord& t) = 0;
  // Stores the first admin token unless one exists: true when this call stored it.
  virtual Result<bool> put_first_admin_token(const TokenRecord& t) = 0;
  virtual Result<std::optional<TokenRecord>> find_token(const std::string& hash_hex) = 0;
  // Removes the machine tokens of `machine_id` (on re-enrollment).
  virtual Status delete_machine_tokens(const std::string& machine_id) = 0;
  // Every token, oldest first.
  virtual Result<std::vector<TokenRecord>> list_tokens() = 0;
  // Removes one token; false when there was none with this hash.
  virtual Result<bool> delete_token(const std::string& hash_hex) = 0;

  // --- catalogue
  // Stores the bundle file and its row, and promotes it to `tier` when one is given, all in
  // one transaction. Fails with "... already published with different content" when
  // id+version exist with another digest (nothing is changed then).
  virtual Result<PublishOutcome> publish(const BundleRecord& b, const std::string& bytes,
                                         const std::string& tier = {}) = 0;
  virtual Result<std::optional<BundleRecord>> find_bundle(const std::string& id,
                                                          int64_t version) = 0;
  virtual Result<std::vector<BundleRecord>> list_bundles() = 0;
  virtual Result<std::optional<std::string>> bundle_bytes(const std::string& sha256) = 0;
  // Makes id+version visible to `tier` (idempotent). Fails when the bundle is unknown.
  virtual Status promote(const std::string& id, int64_t version, const std::string& tier) = 0;
  virtual Result<std::vector<Promotion>> list_promotions() = 0;
  // The bundles promoted to `tier`.
  virtual Result<std::vector<BundleRecord>> bundles_in_tier(const std::string& tier) = 0;
  // Grows by one on every publish or promote: lets servers cache the catalogue.
  virtual Result<int64_t> catalogue_generation() = 0;

  // --- machines and reports
  // Inserts or updates everything but first_seen (kept) and advisor_json (kept).
  virtual Status upsert_machine(const MachineRecord& m) = 0;
  // Sets last_seen when the machine exists with this tier and identity_sha; returns false
  // (and changes nothing) otherwise, and the caller then writes the whole row.
  virtual Result<bool> touch_machine(const std::string& machine_id, const std::string& tier,
                                     const std::string& identity_sha, int64_t now_unix) = 0;
  virtual Result<std::optional<MachineRecord>> find_machine(const std::string& machine_id) = 0;
  virtual Result<std::vector<MachineRecord>> list_machines() = 0;
  // Appends the lines to the history, updates each patch's current state, the machine's
  // advisor verdict and its catalogue state (each kept when empty), in one transaction.
  virtual Status add_reports(const std::string& machine_id, const std::vector<ReportRecord>& lines,
                             const std::string& advisor_json,
                             const std::string& catalogue_json = {}) = 0;
  // History, oldest first; `machine_id` empty for every machine; at most `limit` newest.
  virtual Result<std::vector<ReportRecord>> history(const std::string& machine_id,
                                                    int64_t limit) = 0;
  // The newest state of every (machine, patch id).
  virtual Result<std::vector<ReportRecord>> current_states() = 0;
};

// Opens a store from a URL: "sqlite:PATH" or "postgresql://..." / "postgres://..." (libpq
// connection URI). Fails naming the URL and the cause.
Result<std::unique_ptr<Storage>> open_storage(const std::string& url);

Result<std::unique_ptr<Storage>> open_sqlite(const std::string& path);
Result<std::unique_ptr<Storage>> open_postgresql(const std::string& conninfo);

}  // namespace nines::server
