// `nines build`: compiles patch sources into a patch object for one target object.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "ulp/patch_object.h"

namespace nines::ulp {

struct BuildOptions {
  std::string target;                 // the object being patched (FILE)
  std::string id;                     // default: base name of output without extension
  std::string output;                 // OUT.patch
  std::vector<std::string> sources;   // C files
  std::vector<std::string> extra_cflags;
  std::string include_dir;            // where <nines/patch.h> lives; found when empty
  std::string compiler = "gcc";
};

// The flags every patch is compiled and linked with: position independent, no start files
// (their constructors would never run), symbols bound inside the patch (-Bsymbolic), all
// relocations resolved at load (-z now) so the loader never needs lazy binding.
std::vector<std::string> patch_compile_flags();

// Finds the folder holding nines/patch.h next to the running binary, in the source tree
// it was built from, or under /usr/local/include and /usr/include.
Result<std::string> find_include_dir();

// Builds the patch; returns its metadata. Fails with a clear message when a replaced
// function is missing in the target, is an IFUNC resolver, is too short for the redirect,
// or when the compiler fails.
Result<PatchMeta> build_patch(const BuildOptions& opts);

// The first 16 bytes of the target at `vaddr` (from its file), "" when outside PT_LOAD.
std::string entry_bytes(const elf::ElfFile& target, uint64_t vaddr);

// Refuses a linked patch object the loader could not map: thread-local variables,
// dynamic relocation types other than RELATIVE, 64, GLOB_DAT and JUMP_SLOT.
Status check_loadable(const elf::ElfFile& so);

// Writes `output`: the linked patch object at `so_path` with `meta` as its .nines.meta.
Status embed_meta(const std::string& so_path, const PatchMeta& meta, const std::string& output);

// Checks a replacement against the target's symbol and bytes; used by the builder.
// `entry` are the first bytes of the function in the target.
Status check_replaceable(const elf::Symbol& sym, const std::string& name, const std::string& object,
                         const std::string& entry, const std::vector<std::string>& ifunc_candidates);

}  // namespace nines::ulp
