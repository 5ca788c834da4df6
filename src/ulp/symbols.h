// Symbol lookup in an object: its .symtab (locals included), or, for a stripped object,
// the .symtab of its separate debug file found by build-id
// (/usr/lib/debug/.build-id/xx/yyyy.debug), and .dynsym.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "elf/elf_file.h"

namespace nines::ulp {

// The path of the separate debug file for a build-id, under `debug_root`
// (default /usr/lib/debug); nullopt when absent.
std::optional<std::string> find_debug_file(const std::string& build_id_hex,
                                           const std::string& debug_root = "/usr/lib/debug");

class SymbolTable {
 public:
  // Builds the table of `obj`, reading its debug file when the object is stripped.
  static SymbolTable of(const elf::ElfFile& obj);

  // Looks up a function or object by name. Locals count: a unique local wins when no
  // global of that name exists. Fails when absent or ambiguous (two locals, e.g. statics
  // of two files), naming the candidates.
  Result<elf::Symbol> find(const std::string& name, const std::string& object_name) const;
  // The function symbol containing `offset`, if any.
  std::optional<elf::Symbol> containing(uint64_t offset) const;
  // Names of functions whose name contains `fragment` (for IFUNC suggestions).
  std::vector<std::string> functions_like(const std::string& fragment) const;
  bool has_full_symbols() const { return full_; }

 private:
  std::vector<elf::Symbol> syms_;
  bool full_ = false;  // .symtab (or debug file) available, not only .dynsym
};

}  // namespace nines::ulp
