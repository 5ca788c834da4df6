// From the comparison of one translation unit to the relocatable object that carries its
// part of the patch.
//
// What goes in: every changed or new function (with its `.cold` part), the anonymous
// data its code uses (string literals, constants, jump tables), new data objects it
// references (a new static table, a new counter) and copies of `__func__`-like names.
// What stays in the target: everything else. A reference from patch code to a symbol of
// the target, static ones included, is taken out of the object and recorded as a
// TargetFixup, which the loader resolves against the target's load base at apply time
// (offsets are exact: the patch is bound to the target's build-id). A reference through
// the GOT becomes a reference to a slot in the patch's own `.nines.got`, which the loader
// fills the same way.
//
// What cannot be done safely is refused with the reason: data of the target whose
// initial value or size changed, thread-local variables, relocation types the loader does
// not apply, symbols the target does not have.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "elf/relocatable.h"
#include "gen/object_diff.h"
#include "gen/target_symbols.h"

namespace nines::gen {

// A place in the patch to fill at apply time with an address in the target.
struct TargetFixup {
  enum class Kind { kPc32, kAbs64 };
  std::string marker;      // a local symbol of the linked patch marking the section start
  uint64_t offset = 0;     // of the place, from the marker
  Kind kind = Kind::kPc32;
  std::string symbol;      // the target's symbol (for messages)
  uint64_t target_offset = 0;  // its st_value in the target
  int64_t addend = 0;
};
std::string_view to_string(TargetFixup::Kind k);

struct Replacement {
  std::string name;          // the function in the target
  std::string source;        // its translation unit
  uint64_t target_offset = 0, target_size = 0;
  std::string marker;        // the patch's copy: marker + offset
  uint64_t offset = 0;
};

struct UnitInput {
  std::string source;                        // the translation unit's source file
  const elf::RelocatableObject* original = nullptr;
  const elf::RelocatableObject* patched = nullptr;
  const ObjectDiff* diff = nullptr;
};

// What a unit brings into the patch, before emission: the sections of the patched object
// to copy, and the refusals found.
struct UnitPlan {
  std::set<uint32_t> sections;               // of the patched object
  std::vector<std::string> refusals;
  std::vector<std::string> new_functions, new_data, changed_functions;
  std::set<std::string> globals;             // global symbols the unit defines in the patch
};

// Decides what the unit brings (the closure of the changed functions through their
// relocations) and what it cannot do.
UnitPlan plan_unit(const UnitInput& in);

struct EmittedUnit {
  elf::NewObject object;
  std::vector<TargetFixup> fixups;
  std::vector<Replacement> replacements;
  std::vector<std::string> refusals;
};

// Builds the unit's object. `patch_globals`: the globals every unit of the patch defines
// (a call from one changed unit into a function another changed unit replaces stays in
// the patch). `number` makes the unit's marker names unique.
EmittedUnit emit_unit(const UnitInput& in, const UnitPlan& plan, const TargetSymbols& target,
                      const std::set<std::string>& patch_globals, int number);

}  // namespace nines::gen
