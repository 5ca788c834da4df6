// The C file and Kbuild file of a livepatch module, generated from a PatchSpec. The
// author's sources are #included into one translation unit after the kernel headers, so
// their static replacement functions are visible to the klp_func tables that follow.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "klp/spec.h"

namespace nines::klp {

struct ModuleSource {
  std::string module_name;                // KBUILD_MODNAME, also /sys/kernel/livepatch/<it>
  std::string patch_id;                   // exposed as /sys/module/<m>/parameters/nines_id
  std::vector<std::string> source_paths;  // absolute paths, #included in order
  PatchSpec spec;
  std::vector<int64_t> old_sympos;  // one per spec.replacements
};

// The module's C text. Every kernel patch is cumulative: `.replace = true`.
std::string generate_module_c(const ModuleSource& src);
// The Kbuild file: obj-m and the include path of <nines/kpatch.h>. With `objects` (prebuilt
// objects shipped next to it), the module is <module_name>_main.o plus those.
std::string generate_kbuild(const std::string& module_name, const std::string& include_dir,
                            const std::vector<std::string>& objects = {});

// A module name for patch `id`: "nines_" + id with characters outside [A-Za-z0-9_] made
// '_', shortened so that "_<suffix>" fits MODULE_NAME_LEN (56, with its NUL).
std::string module_name_for(const std::string& id, const std::string& suffix);

}  // namespace nines::klp
