// The symbols of the target (the binary running processes map), as the generator needs
// them: every function and object with the source file its static ones came from, so
// that a static of xmlparse.c is told apart from a static of the same name in
// xmltok.c. Read from the target's .symtab, or from its separate debug file found by
// build-id when the target is stripped.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "elf/elf_file.h"

namespace nines::gen {

struct TargetSymbol {
  std::string name;
  std::string file;     // basename of the STT_FILE that precedes a local; "" for globals
  uint64_t value = 0;   // st_value: offset from the load base
  uint64_t size = 0;
  uint8_t type = 0, bind = 0;
};

class TargetSymbols {
 public:
  // Reads the symbols of `target` (or of its debug file). Fails when neither has a
  // .symtab, naming what to install: the generator needs the static functions.
  static Result<TargetSymbols> of(const elf::ElfFile& target, const std::string& path,
                                  const std::string& debug_root = "/usr/lib/debug");

  // A global (or weak) definition of `name`, or else the only local of that name in
  // `file` (basename), or else the only local of that name at all. Fails naming the
  // candidates when ambiguous, or when absent.
  Result<TargetSymbol> find(const std::string& name, const std::string& file) const;
  bool has(const std::string& name) const;
  const std::string& source() const { return source_; }

 private:
  std::vector<TargetSymbol> syms_;
  std::string source_;  // where they were read: the target or its debug file
  std::string target_;
};

}  // namespace nines::gen
