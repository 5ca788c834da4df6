// Structure layouts from DWARF, and what changed between two builds.
//
// A live patch replaces code, never data already in memory: if the fix adds, removes,
// resizes or moves a member of a structure, the patched code would read the process's
// existing objects with the new layout, which is memory corruption. None of kpatch,
// klp-build or LibCare checks this; the generators refuse it here, naming the structure
// and each member concerned.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/result.h"

namespace nines::gen {

struct Member {
  std::string name;        // "<anonymous>" for an unnamed member
  uint64_t offset = 0;     // in bytes; bit-fields add bit_offset
  uint64_t size = 0;
  uint64_t bit_offset = 0, bit_size = 0;
  std::string type;        // a short description: "int", "*XML_Char", "struct foo"
  bool operator==(const Member&) const = default;
};

struct StructLayout {
  std::string name;        // "struct foo", "union bar" or the typedef of an anonymous one
  uint64_t size = 0;
  std::vector<Member> members;
};

// The complete (non-declaration) structure and union types of an object's DWARF, by name.
// Works on relocatable objects (libdwfl applies their .rela.debug_* sections). Fails when
// the object has no DWARF (it must be compiled with -g).
Result<std::map<std::string, StructLayout>> read_struct_layouts(const std::string& object_path);

// One message per structure whose layout differs, naming it and its members:
// "struct XML_ParserStruct changed layout (size 976 -> 992): member m_x added at offset 968".
std::vector<std::string> compare_layouts(const std::map<std::string, StructLayout>& original,
                                         const std::map<std::string, StructLayout>& patched);

}  // namespace nines::gen
