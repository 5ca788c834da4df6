// What a kernel patch source asks for, read from its text: the functions it replaces
// (NINES_REPLACE / NINES_REPLACE_IN), its callbacks and its hints about where ambiguous
// static symbols live (NINES_KSYM). See include/nines/kpatch.h for the author's side.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nines::klp {

inline constexpr const char* kVmlinux = "vmlinux";

struct Replacement {
  std::string object;    // "vmlinux" or a module name ("binfmt_misc")
  std::string old_name;  // the kernel's function
  std::string new_name;  // the patch's function
};

struct Callback {
  std::string object;  // "vmlinux" or a module name
  std::string kind;    // pre_patch | post_patch | pre_unpatch | post_unpatch
  std::string function;
};

struct SymbolHint {
  std::string object;
  std::string symbol;
  int64_t pos = 0;  // 1-based position among same-named symbols of the object
};

struct PatchSpec {
  std::vector<Replacement> replacements;
  std::vector<Callback> callbacks;
  std::vector<SymbolHint> hints;
  // The objects in first-use order, vmlinux first when it is patched.
  std::vector<std::string> objects() const;
};

// Reads the markers of one source text (comments and string literals are ignored) and
// appends them to `spec`. Fails naming file:line for a malformed marker, a bad identifier,
// or a function replaced twice.
Status scan_patch_source(std::string_view text, const std::string& file, PatchSpec& spec);

// A kernel module name as kbuild spells it (dashes become underscores).
std::string module_name_of(std::string_view object);

}  // namespace nines::klp
