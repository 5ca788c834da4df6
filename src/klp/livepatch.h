// Reading the kernel's livepatch state: /sys/kernel/livepatch/<patch>/{enabled,transition,
// <object>/<function,sympos>}, the nines module parameters in /sys/module/<m>/parameters/,
// the per-task patch state in /proc/<pid>/task/<tid>/patch_state and the running kernel's
// build-id in /sys/kernel/notes. The roots are parameters so tests use a fake tree.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nines::klp {

struct KernelRoots {
  std::string sys = "/sys";
  std::string proc = "/proc";
};

struct KernelPatchState {
  std::string module_name;  // /sys/kernel/livepatch/<module_name>
  std::string id;           // nines patch id; empty for a livepatch nines did not build
  int64_t version = 0;      // from the bundle; 0 when loaded from a raw .ko
  bool enabled = false;
  bool transition = false;             // a transition (patching or unpatching) is in progress
  std::vector<std::string> functions;  // "vmlinux:cmdline_proc_show", "binfmt_misc:bm_status_read"
};

// Every livepatch in the kernel, sorted by module name. An absent /sys/kernel/livepatch
// (CONFIG_LIVEPATCH=n) is an empty list; an unreadable one is an error.
Result<std::vector<KernelPatchState>> read_patches(const KernelRoots& roots = {});
// One patch by module name; nullopt when its folder is gone (unpatching completed).
Result<std::optional<KernelPatchState>> read_patch(const KernelRoots& roots,
                                                   const std::string& module_name);

// Loaded modules that carry a nines_id parameter (nines patch modules), with or without a
// livepatch folder: a replaced or reverted patch stays loaded until it is unloaded.
std::vector<std::string> nines_modules(const KernelRoots& roots = {});

struct BlockingTask {
  pid_t pid = 0, tid = 0;
  std::string comm;
  std::string stack;  // /proc/<pid>/task/<tid>/stack, one frame per line
};
// Tasks whose patch_state is not `target` (0 unpatched, 1 patched) while a transition
// runs: those still on the old side, which the kernel retries until their stacks are
// clear of the functions being replaced. Tasks of `self` (our own pid) are left out.
std::vector<BlockingTask> blocking_tasks(const KernelRoots& roots, int target, pid_t self);
// "pid 42 (sleep): do_nanosleep+0x6b/0x150 <- hrtimer_nanosleep+..." for messages.
std::string describe(const BlockingTask& t, size_t max_frames = 6);

// The GNU build-id (lowercase hex) in an ELF note blob such as /sys/kernel/notes; empty
// when there is none. Malformed blobs are read up to where they stop making sense.
std::string build_id_from_notes(std::string_view notes);
// The last `max` lines of the kernel log (klogctl) that mention any of `needles`, without
// their "<level>[time]" prefix; empty when the log cannot be read.
std::vector<std::string> kernel_log_lines(const std::vector<std::string>& needles, size_t max);

// The running kernel's release (uname -r) and build-id ("" when unknown).
std::string running_release();
std::string running_build_id(const KernelRoots& roots = {});

}  // namespace nines::klp
