// The agent's state in SQLite (ROOT/var/lib/nines/state.db): the patches the server
// offered and what the agent decided and did about each, plus a few key/value facts (last
// check, the last status document). It is a journal, not the truth: on start the agent
// reconciles with the processes' registries and the kernel (see agent.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

struct sqlite3;

namespace nines::agent {

// One offered patch (id + version) and the agent's decision about it.
struct PatchRow {
  std::string id;
  int64_t version = 0;
  std::string kind;  // userspace | kernel
  std::string sha256, target_name, target_build_id, kernel_release;
  int64_t published_unix = 0;
  std::string manifest_json;  // bundle::manifest_to_json of the verified bundle (or the offer)
  // offered | applying | applied | apply-failed | interrupted | deferred | not-applicable |
  // reverted | superseded
  std::string state = "offered";
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

 private:
  StateDb() = default;
  Status exec(const std::string& sql);
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace nines::agent
