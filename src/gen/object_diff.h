// Comparing two builds of one translation unit, function by function (the heart of the
// patch generators; the kernel generator reuses it as is).
//
// Both objects are compiled with -ffunction-sections -fdata-sections, so every function
// and data object sits in its own section. Symbols of the patched build are correlated
// with the original's by name: exactly first, then with gcc's numeric suffixes removed
// (`.isra.N`, `.constprop.N`, `.part.N`, static locals `var.N`), then, for static locals
// still unpaired, by the order in which twin functions reference them (as kpatch does).
// Code is compared byte for byte with every relocation resolved to what it points at: a
// symbol's correlated name, a string literal's contents, an anonymous constant's bytes.
// Raw offsets never count, so code that only moved is the same code.
//
// `.cold` parts fold into their parent: a change in `f.cold` changes `f`, and `f.cold`
// goes wherever `f` goes (it jumps back into `f`'s body).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "elf/relocatable.h"

namespace nines::gen {

enum class Change { kSame, kChanged, kNew };
std::string_view to_string(Change c);

// One function or data object of the patched build.
struct SymbolDiff {
  uint32_t patched = 0;                // symbol index in the patched object
  std::optional<uint32_t> original;    // its twin in the original object
  Change change = Change::kSame;
  bool function = false;
  bool writable = false;               // data in a writable section
  std::string parent;                  // for `f.cold`: "f"
};

struct ObjectDiff {
  std::vector<SymbolDiff> symbols;     // every defined FUNC/OBJECT of the patched object
  // original symbol index -> patched symbol index (correlated pairs)
  std::map<uint32_t, uint32_t> twin_of_original;
  // patched symbol index -> original symbol index
  std::map<uint32_t, uint32_t> twin_of_patched;
  // Defined FUNC/OBJECT symbols of the original that have no twin (removed or renamed).
  std::vector<uint32_t> removed;

  const SymbolDiff* find(uint32_t patched_index) const;
  bool changed_or_new_function() const;
};

// The name with gcc's numeric suffixes removed: "foo.isra.0" -> "foo.isra",
// "buf.3" -> "buf", "f.cold" -> "f.cold", "f.part.1.cold" -> "f.part.cold".
std::string strip_numeric_suffixes(std::string_view name);

// The parent of a `.cold` part ("f.cold", "f.cold.2" -> "f"), or "" when not one.
std::string cold_parent(std::string_view name);

// What a relocation points at, as a comparable key: "sym:NAME+ADDEND" (NAME of the
// original twin when the symbol is correlated), "str:<contents>" for string literals,
// "anon:<bytes>+ADDEND" for anonymous constants, "ext:NAME+ADDEND" for undefined symbols.
// A relocation against a section symbol is first turned into the symbol that section
// holds (with -fdata-sections a section holds one object).
struct RelocTarget {
  enum class Kind { kSymbol, kAnonymous, kUndefined } kind = Kind::kSymbol;
  uint32_t symbol = 0;     // the named symbol (kSymbol, kUndefined) in the object read
  uint32_t section = 0;    // the section holding it (kSymbol, kAnonymous)
  int64_t addend = 0;      // relative to the symbol (kSymbol) or the section (kAnonymous)
};
RelocTarget resolve_reloc_target(const elf::RelocatableObject& obj, const elf::Relocation& r);

// Compares the patched build of a translation unit with the original. Fails only when an
// object is malformed for this purpose (a function outside any section).
Result<ObjectDiff> diff_objects(const elf::RelocatableObject& original,
                                const elf::RelocatableObject& patched);

}  // namespace nines::gen
