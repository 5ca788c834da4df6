// `nines build --kernel`: a livepatch module from patch sources, built with kbuild against
// the exact headers of the target kernel. The pipeline:
//   scan sources → resolve symbols (Module.symvers, System.map, module .ko) → generate
//   module C + Kbuild → make -C <headers> M=<work> modules → rewrite into the livepatch
//   ELF format (.klp.rela/.klp.sym) + .nines.meta → OUT.patch (a .ko).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "klp/klp_elf.h"
#include "klp/meta.h"

namespace nines::klp {

// Where scripts/kernel-setup keeps the kernels: $NINES_KERNEL_CACHE or this.
inline constexpr const char* kDefaultKernelCache = "/var/cache/nines/kernel";
std::string kernel_cache_dir();

struct BuildOptions {
  std::string release;               // required: the exact `uname -r` of the target
  std::string headers_dir;           // default /usr/src/linux-headers-<release>
  std::string kernel_dir;            // default <cache>/<release>: System.map, build-id, modules
  std::string id;                    // default: the output's file name without extension
  std::string output;                // required: OUT.patch
  std::vector<std::string> sources;  // required: C files with NINES_REPLACE markers
  std::string include_dir;           // where <nines/kpatch.h> is; default: found at run time
  bool keep_work_dir = false;        // keep the kbuild folder (its path is in the result)
  // Prebuilt relocatable objects linked into the module next to the sources (the
  // generator's units, klp/gen_kernel.h), and what their undefined aliases stand for.
  std::vector<std::string> objects;
  std::map<std::string, KlpSymbol> klp_aliases;
};

struct BuildResult {
  KernelPatchMeta meta;
  KlpRewriteReport klp;
  std::string work_dir;
  double seconds = 0;
};

// Builds OUT.patch. Fails naming the step: a missing headers folder, a marker error
// (file:line), an unresolvable symbol, the compiler's own messages (tail of kbuild output).
Result<BuildResult> build(const BuildOptions& opts);

}  // namespace nines::klp
