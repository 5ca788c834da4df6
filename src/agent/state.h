// The agent's state in SQLite (ROOT/var/lib/nines/state.db): the patches the server
// offered and what the agent decided and did about each, plus a few key/value facts (last
// check, the last status document). It is a journal, not the truth: on start the agent
// reconciles with the processes' registries and the kernel (see agent.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

struct sqlite3;

namespace nines::agent {

// What the agent did about one offered patch (a closed set; the text form is what the
// journal, the status and the metrics show).
enum class RowState {
  kOffered,        // known, not decided yet (or waiting for its download)
  kApplying,       // written before an apply; left behind only by a crash
  kApplied,
  kApplyFailed,
  kInterrupted,    // was kApplying at start: never retried automatically
  kDeferred,       // held by policy (reason, until)
  kNotApplicable,  // e.g. a kernel bundle without livepatch
  kReverted,
  kSuperseded,     // an older version replaced by a newer one
  kRefused,        // the bundle failed a check: signature, offer vs signed manifest,
                   // version floor, catalogue listing, size; never retried for that digest
};
const char* to_string(RowState s);
// The state of its text form; kOffered for anything unknown (a journal written by a later
// version is re-evaluated rather than trusted).
RowState row_state_of(std::string_view text);

// One offered patch (id + version) and the agent's decision about it.
struct PatchRow {
  std::string id;
  int64_t version = 0;
  std::string kind;  // userspace | kernel
  std::string sha256, target_name, target_build_id, kernel_release;
  int64_t published_unix = 0;
  // bundle::manifest_to_json of the verified bundle ("{}" until it verified: the offer's
  // own metadata is never recorded as the patch's)
  std::string manifest_json = "{}";
  RowState state = RowState::kOffered;
  std::string reason;      // why not applied (deferred, failed, interrupted, not applicable)
  int64_t until_unix = 0;  // deferred by patch-delay: when it becomes due
  std::string reported;    // the last state reported to the server
  int64_t updated_unix = 0;
};

class StateDb {
 public:
  // Opens (creating the folder 0700 and the schema). Fails naming the file and SQLite's error.
  static Result<StateDb> open(const std::string& path);
  StateDb(StateDb&&) noexcept;
  StateDb& operator=(StateDb&&) noexcept;
  ~StateDb();

  Result<std::optional<std::string>> get(const std::string& key);
  Status put(const std::string& key, const std::string& value);

  Result<std::vector<PatchRow>> patches();
  Result<std::optional<PatchRow>> patch(const std::string& id, int64_t version);
  // Inserts or replaces the row (updated_unix is set to now).
  Status upsert(const PatchRow& row);

  // The version floor of a patch id: the highest version ever applied (0: none). Kept in
  // the kv table as "floor/ID"; raising never lowers it.
  Result<int64_t> floor(const std::string& id);
  Status raise_floor(const std::string& id, int64_t version);

 private:
  StateDb() = default;
  Status exec(const std::string& sql);
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace nines::agent
