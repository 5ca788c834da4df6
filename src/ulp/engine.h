// User-space live patching of one running process: the apply and revert pipelines.
//
//   apply:  inspect → find target by build-id → read registry → plan the switch →
//           link the patch image → stage it (inject mmap/mprotect in one stopped thread,
//           others keep running) → freeze all threads at real-time priority → check
//           consistency (retry with back-off until the timeout) → write the redirects,
//           verify them, record the registry → resume → unmap a replaced patch.
//   revert: the same switch with the original bytes.
//
// Any failure before the switch leaves the process as it was (a staged image is unmapped);
// a failed write during the switch restores the bytes already written before resuming.
// A switch killed between two writes (SIGKILL of the patching process) is journaled in the
// registry (registry.h) and rolled back by the next apply or revert of that process, or by
// recover_interrupted_switch.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "ulp/patch_object.h"
#include "ulp/process_view.h"
#include "ulp/registry.h"

namespace nines::ulp {

struct ApplyOptions {
  bool stack_check = true;       // false: --no-stack-check (only the overwritten-bytes rule)
  int64_t timeout_ms = 5000;     // consistency retries stop after this
  int64_t version = 0;           // the bundle version (0 for a bare patch object)
  bool allow_downgrade = false;
  // sha256 of the patch object ("" when unknown). Recorded in the registry; the same id and
  // version already applied with another digest is an error naming both, never "already
  // applied".
  std::string digest;
};

struct Outcome {
  pid_t pid = 0;
  std::string action;                  // "applied", "already applied", "replaced OLD", "reverted"
  std::vector<std::string> functions;  // functions switched
  double stop_us = 0;                  // time the process was frozen for the switch
  int attempts = 0;                    // freezes needed (more than 1 after conflicts)
  std::vector<uint64_t> unmapped;      // retired patch images unmapped by the switch
};

Result<Outcome> apply_patch(const PatchObject& patch, pid_t pid, const ApplyOptions& opts,
                            ElfCache& cache);
Result<Outcome> revert_patch(const std::string& id, pid_t pid, const ApplyOptions& opts);

// Rolls back a switch left half done in `pid` by a patching process that was killed between
// two writes, in a freeze like any switch. True when there was one.
Result<bool> recover_interrupted_switch(pid_t pid, const ApplyOptions& opts);

// Processes (other than this one and `exclude`) that map an object with this build-id
// (or, when `name` is given, an object of that name, so a mismatch is reported).
std::vector<pid_t> processes_mapping(const std::string& name, const std::string& build_id,
                                     ElfCache& cache, const std::vector<pid_t>& exclude);
// Processes whose registry holds patch `id`.
std::vector<pid_t> processes_with_patch(const std::string& id, const std::vector<pid_t>& exclude);

}  // namespace nines::ulp
