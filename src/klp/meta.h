// The `.nines.meta` JSON of a kernel patch (see the patch-object contract):
//   {"format":1, "kind":"kernel", "id":"fix-1",
//    "kernel":{"release":"6.1.0-57-cloud-amd64","build_id":"<hex or empty>"},
//    "module":"nines_fix_1_0a1b2c3d",
//    "functions":[{"name":"cmdline_proc_show","replacement":"new_show",
//                  "object":"vmlinux","sympos":0}],
//    "klp_symbols":[".klp.sym.vmlinux.saved_command_line,0"]}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace nines::klp {

struct KernelFunction {
  std::string name, replacement, object;
  int64_t sympos = 0;
};

struct KernelPatchMeta {
  std::string id;
  std::string release;
  std::string build_id;     // vmlinux GNU build-id, lowercase hex; empty when unknown
  std::string module_name;  // the .ko's name, /sys/kernel/livepatch/<module_name>
  std::vector<KernelFunction> functions;
  std::vector<std::string> klp_symbols;
};

nlohmann::json meta_to_json(const KernelPatchMeta& m);
// Validates kind "kernel", the release, the module name ([a-z0-9_], at most 55) and the
// functions; errors name the field.
Result<KernelPatchMeta> meta_from_json(const nlohmann::json& j);
// Reads .nines.meta of a .ko in memory and validates it as a kernel patch.
Result<KernelPatchMeta> read_kernel_meta(std::string_view ko_bytes);

}  // namespace nines::klp
