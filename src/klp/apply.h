// Loading, watching and unloading kernel live patches. The kernel does the consistency
// work (per-task switching at safe points); nines loads the module, watches the
// transition, names the tasks that hold it back and, at the timeout, reverses it by
// writing 0 to `enabled` and unloads the module. It never writes `force`: forcing marks
// tasks patched whose stacks still hold old code, which is exactly what livepatch's
// consistency model exists to prevent.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "klp/livepatch.h"
#include "klp/meta.h"

namespace nines::klp {

struct ApplyOptions {
  double timeout_s = 60;  // for the transition; then it is reversed
  int64_t version = 0;    // the bundle's version; 0 for a raw .ko (no downgrade check)
  bool allow_downgrade = false;
  KernelRoots roots;
  // Progress lines ("transition waits for pid 42 (sleep): do_nanosleep <- ..."); default: log.
  std::function<void(const std::string&)> report;
};

struct ApplyResult {
  KernelPatchMeta meta;
  double load_s = 0;                  // finit_module (includes klp_enable_patch)
  double transition_s = 0;            // from load to transition complete
  std::vector<std::string> unloaded;  // replaced patch modules that were unloaded
};

// Checks the patch is for this kernel (release, and build-id when both are known), refuses
// a downgrade (a lower version of the same id already applied), loads the module
// (finit_module with nines_version=<version>), waits for the transition, then unloads the
// nines modules it replaced. On timeout: reverses, waits, unloads, and fails naming the
// blocking tasks. Errors name the patch id and the cause.
Result<ApplyResult> apply_module(std::string_view ko_bytes, const ApplyOptions& opts);

struct RevertOptions {
  double timeout_s = 60;
  KernelRoots roots;
  std::function<void(const std::string&)> report;
};

// Disables the patch with this nines id (or module name), waits for the unpatching
// transition, and unloads its module. On timeout the disable is reversed (the patch stays
// applied) and the error names the blocking tasks. Returns the module name.
Result<std::string> revert(const std::string& id_or_module, const RevertOptions& opts);

// Every kernel livepatch (nines' own with id and version).
Result<std::vector<KernelPatchState>> list(const KernelRoots& roots = {});

}  // namespace nines::klp
