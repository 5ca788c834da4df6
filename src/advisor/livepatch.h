// What nines has live-patched: user-space patches recorded in each process's registry
// (the lead's nines::ulp::read_registry, reached through registry_bridge.cc) and kernel
// livepatches under ROOT/sys/kernel/livepatch.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "advisor/exposure.h"
#include "advisor/root.h"
#include "advisor/scan.h"
#include "core/result.h"

namespace nines::advisor {

// One patch applied inside a process, as its registry records it.
struct PatchInProcess {
  std::string id;
  int64_t version = 0;
  std::string target_name, target_build_id;  // build-id in hex; may be empty
};

// Reads the patches applied in a process. An empty list when none (or no registry).
using RegistryReader = std::function<Result<std::vector<PatchInProcess>>(pid_t)>;

// The reader over nines' in-process registry (registry_bridge.cc).
RegistryReader nines_registry_reader();

// The GNU build-id (hex) of an ELF file: SHT_NOTE sections, or PT_NOTE segments when
// the section headers are stripped. Fails with libelf's own message, or "no build-id".
Result<std::string> read_build_id(const std::string& path);

// Marks each stale object that a patch in its process targets (same build-id, or same
// file name when the patch recorded no build-id) as patched in memory by that patch.
// Registry read failures go to `warnings`; the process then stays "needs a restart".
// `only_anonymous_code`: ask the reader only about processes that run code from memory
// with no file behind it, where nines puts patch code (reading a registry costs about
// 0.5 ms: the maps text and /proc/PID/mem).
void mark_patched(std::vector<StaleProcess>& procs, const RegistryReader& reader,
                  std::vector<std::string>* warnings, bool only_anonymous_code = false);

struct KernelLivepatch {
  std::string name;
  bool enabled = false;
  bool transition = false;
  std::string id;        // nines patch id (module parameter nines_id); "" for others
  int64_t version = 0;   // its bundle version (nines_version); 0 when unknown
};

// The livepatches loaded in the kernel (ROOT/sys/kernel/livepatch/NAME/{enabled,transition}),
// with the nines id and version of its module (ROOT/sys/module/NAME/parameters/).
std::vector<KernelLivepatch> kernel_livepatches(const Root& root);

// The CVEs named by the signed manifests of the bundles the agent keeps
// (ROOT/var/lib/nines/bundles/*.bundle), each verified against the trust store
// `trust_dir` (on this machine); what cannot be verified is skipped with a note. Reads
// nothing when the folder does not exist.
SignedCves read_signed_cves(const Root& root, const std::string& trust_dir,
                            std::vector<std::string>* notes);

}  // namespace nines::advisor
