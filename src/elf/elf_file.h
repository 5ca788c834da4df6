// Reading ELF objects with libelf: symbols with their versions, build-id, segments,
// sections, dynamic relocations. The bytes may come from another process or from a
// server, so every index and offset is checked before it is used (libelf checks the
// section table; we check what we read through it).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nines::elf {

struct Symbol {
  std::string name;
  std::string version;        // "" when unversioned
  bool version_hidden = false;  // name@VER (not the default name@@VER)
  uint64_t value = 0;         // st_value: an address relative to the object's load base
  uint64_t size = 0;
  uint8_t type = 0;           // STT_*
  uint8_t bind = 0;           // STB_*
  uint16_t shndx = 0;         // SHN_UNDEF for imports
  bool defined() const { return shndx != 0; }
};

struct Segment {
  uint32_t type = 0;          // PT_*
  uint32_t flags = 0;         // PF_R | PF_W | PF_X
  uint64_t offset = 0, vaddr = 0, filesz = 0, memsz = 0, align = 0;
};

struct Section {
  std::string name;
  uint32_t type = 0;
  uint64_t flags = 0, addr = 0, offset = 0, size = 0;
};

// A dynamic relocation (RELA) with its symbol already looked up (name empty when the
// relocation has no symbol, e.g. R_X86_64_RELATIVE).
struct DynReloc {
  uint64_t offset = 0;        // where, relative to the load base
  uint32_t type = 0;
  int64_t addend = 0;
  uint32_t sym_index = 0;
  std::string sym_name;
  std::string sym_version;
};

class ElfFile {
 public:
  // Parses an in-memory image (takes ownership of the bytes). Fails with a message naming
  // what is malformed; `what` names the object in messages.
  static Result<ElfFile> from_bytes(std::string bytes, std::string what = "ELF object");
  // Reads and parses a file (at most 1 GiB).
  static Result<ElfFile> open(const std::string& path);

  ElfFile(ElfFile&&) noexcept;
  ElfFile& operator=(ElfFile&&) noexcept;
  ~ElfFile();

  const std::string& what() const { return what_; }
  uint16_t elf_type() const { return e_type_; }   // ET_EXEC, ET_DYN, ET_REL
  uint16_t machine() const { return e_machine_; }
  std::string_view bytes() const { return bytes_; }

  // NT_GNU_BUILD_ID, empty when the object has none.
  const std::vector<uint8_t>& build_id() const { return build_id_; }
  std::string build_id_hex() const;
  const std::string& soname() const { return soname_; }

  const std::vector<Segment>& segments() const { return segments_; }
  const std::vector<Section>& sections() const { return sections_; }
  // Contents of the named section (bounds-checked); nullopt when absent or NOBITS.
  std::optional<std::string_view> section_data(std::string_view name) const;

  // .symtab (all symbols, locals included); empty for stripped objects.
  const std::vector<Symbol>& symbols() const { return symtab_; }
  // .dynsym with versions from .gnu.version/_d/_r.
  const std::vector<Symbol>& dynamic_symbols() const { return dynsym_; }
  // Relocations of every SHT_RELA section that applies to the dynamic symbol table
  // (.rela.dyn, .rela.plt).
  const std::vector<DynReloc>& dynamic_relocs() const { return dynrelocs_; }

  // The lowest p_vaddr of the PT_LOAD segments (0 for PIE and shared objects; the link
  // address for non-PIE executables).
  uint64_t min_load_vaddr() const;

 private:
  ElfFile() = default;
  Status parse();

  std::string what_;
  std::string bytes_;
  struct ElfHandle;
  std::unique_ptr<ElfHandle> handle_;
  uint16_t e_type_ = 0, e_machine_ = 0;
  std::vector<uint8_t> build_id_;
  std::string soname_;
  std::vector<Segment> segments_;
  std::vector<Section> sections_;
  std::vector<Symbol> symtab_, dynsym_;
  std::vector<DynReloc> dynrelocs_;
};

// Reads only the build-id of an ELF file through an open descriptor (ELF header, program
// headers, PT_NOTE: three small reads), without parsing the rest. Used to identify the
// objects other processes map (through /proc/PID/map_files) quickly. nullopt when the file
// is not ELF or has no build-id.
std::optional<std::vector<uint8_t>> read_build_id(int fd);

}  // namespace nines::elf
