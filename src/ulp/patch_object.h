// The patch object: what `nines build` writes and `nines apply` loads. It is an ELF
// shared object (position independent, linked with -z now and -Bsymbolic, no start files)
// with a non-loaded section `.nines.meta` holding JSON metadata:
//
//   {"format": 1, "kind": "userspace", "id": "fix-1",
//    "target": {"name": "libfoo.so.1", "build_id": "<hex>"},
//    "functions": [{"name": "old", "replacement": "new", "target_offset": N,
//                   "target_size": N, "replacement_offset": N}],
//    "target_relocs": [{"offset": N, "type": "pc32"|"abs64", "symbol": "name",
//                       "target_offset": N, "addend": N}]}      (optional)
//
// `target_relocs` (written by the generator, `nines build --diff`) are places in the patch
// that hold an address in the target: the loader writes there, for "abs64", the target's
// load base + target_offset + addend, and for "pc32" that address minus the place's own
// runtime address (a rel32 field; the patch is mapped within ±2 GiB of the target). They
// let patch code use any symbol of the target, statics included, without the target's
// symbol table at apply time: the offsets hold for the build-id the patch names.
//
// Offsets are relative to the object's load base (st_value). Kernel patches (src/klp)
// carry the same section with "kind": "kernel".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "elf/elf_file.h"

namespace nines::ulp {

inline constexpr const char* kMetaSection = ".nines.meta";
inline constexpr const char* kReplaceSection = ".nines.replace";

struct FunctionPatch {
  std::string name;            // the target's function
  std::string replacement;     // the patch's function
  uint64_t target_offset = 0;  // st_value in the target
  uint64_t target_size = 0;
  uint64_t replacement_offset = 0;  // st_value in the patch object
};

struct TargetReloc {
  enum class Kind { kPc32, kAbs64 };
  uint64_t offset = 0;         // the place, relative to the patch's load base
  Kind kind = Kind::kPc32;
  std::string symbol;          // the target's symbol, for messages
  uint64_t target_offset = 0;  // its st_value in the target
  int64_t addend = 0;
};

struct PatchMeta {
  std::string id;
  std::string target_name;
  std::string target_build_id;  // hex
  std::vector<FunctionPatch> functions;
  std::vector<TargetReloc> target_relocs;
};

// Reads the .nines.meta JSON of any patch object (user space or kernel).
Result<nlohmann::json> read_patch_meta(std::string_view elf_bytes);

nlohmann::json meta_to_json(const PatchMeta& meta);
// Validates every field; errors name the field.
Result<PatchMeta> meta_from_json(const nlohmann::json& j);

// A loaded user-space patch object: its ELF and its metadata.
struct PatchObject {
  elf::ElfFile elf;
  PatchMeta meta;
};

// Parses and validates a user-space patch object from its bytes.
Result<PatchObject> load_patch_object(std::string bytes, const std::string& what);

}  // namespace nines::ulp
