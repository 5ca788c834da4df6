// Relocatable objects (ET_REL, the `.o` a compiler writes): a typed view for reading, and a
// writer that emits a new one. The patch generators (user space and kernel) compare two
// builds of a translation unit section by section and emit the changed functions as a
// new object, so both directions live here, next to the reader of linked objects
// (elf_file.h).
//
// Every index read from the file is checked: a symbol's section, a relocation's symbol,
// a relocation's offset inside the section it patches.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nines::elf {

struct Relocation {
  uint64_t offset = 0;  // inside the section it patches
  uint32_t type = 0;    // R_X86_64_*
  uint32_t symbol = 0;  // index in RelocatableObject::symbols()
  int64_t addend = 0;
};

struct RelSection {
  uint32_t index = 0;
  std::string name;
  uint32_t type = 0;   // SHT_*
  uint64_t flags = 0;  // SHF_*
  uint64_t size = 0, addralign = 1, entsize = 0;
  uint32_t link = 0, info = 0;
  std::string data;                      // empty for SHT_NOBITS (size says how much)
  std::vector<Relocation> relocations;   // from the SHT_RELA section that applies to it
  uint32_t group = 0;                    // index of the SHT_GROUP section holding it, or 0

  bool alloc() const;
  bool exec() const;
  bool nobits() const;
};

struct RelSymbol {
  uint32_t index = 0;
  std::string name;
  uint8_t type = 0;        // STT_*
  uint8_t bind = 0;        // STB_*
  uint8_t visibility = 0;  // STV_*
  uint16_t shndx = 0;      // SHN_UNDEF, SHN_ABS, SHN_COMMON or a section index
  uint64_t value = 0, size = 0;

  bool defined() const;    // in a section of this object
};

class RelocatableObject {
 public:
  // Reads an ET_REL object (at most 1 GiB). Fails naming the file and what is malformed.
  static Result<RelocatableObject> open(const std::string& path);
  static Result<RelocatableObject> from_bytes(std::string_view bytes, const std::string& what);

  const std::string& what() const { return what_; }
  // Index 0 is the null section / null symbol, as in the file.
  const std::vector<RelSection>& sections() const { return sections_; }
  const std::vector<RelSymbol>& symbols() const { return symbols_; }
  const RelSection& section(uint32_t i) const { return sections_.at(i); }
  const RelSymbol& symbol(uint32_t i) const { return symbols_.at(i); }
  // The name of the first STT_FILE symbol (the source file), "" when none.
  const std::string& source_file() const { return source_file_; }
  // The section named `name`, if any.
  const RelSection* find_section(std::string_view name) const;
  // The symbols defined in section `i` (sorted by value).
  std::vector<const RelSymbol*> symbols_in(uint32_t section) const;

 private:
  std::string what_;
  std::string source_file_;
  std::vector<RelSection> sections_;
  std::vector<RelSymbol> symbols_;
};

// What the writer emits: sections (index 0 is implicit: the first element becomes index
// 1), symbols (index 0 is implicit too: the first element becomes index 1; locals must
// come before globals), and for each section its relocations, whose `symbol` indexes are
// those of the written symbol table (1-based as above). SHT_RELA, SHT_SYMTAB and the
// string tables are generated.
struct NewSection {
  std::string name;
  uint32_t type = 0;
  uint64_t flags = 0, addralign = 1, entsize = 0;
  std::string data;        // for SHT_NOBITS, only `size` counts
  uint64_t size = 0;       // SHT_NOBITS only
  std::vector<Relocation> relocations;
};

struct NewSymbol {
  std::string name;
  uint8_t type = 0, bind = 0, visibility = 0;
  uint32_t section = 0;    // 0 = undefined, else 1-based index into NewObject::sections
  uint64_t value = 0, size = 0;
};

struct NewObject {
  uint16_t machine = 62;  // EM_X86_64
  std::vector<NewSection> sections;
  std::vector<NewSymbol> symbols;
};

// Writes `obj` as an ET_REL file at `path` (libelf lays it out). Fails naming the path
// and libelf's message, or when locals do not precede globals.
Status write_relocatable(const NewObject& obj, const std::string& path);

}  // namespace nines::elf
