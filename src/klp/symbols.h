// Where the kernel's symbols live, for the builder: which names vmlinux and the modules
// export (Module.symvers: the module loader resolves those), and where the others are
// defined (System.map for vmlinux, a module's own symbol table) with their position among
// same-named symbols: the `sympos` of livepatch (0 when the name is unique).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "klp/spec.h"

namespace nines::klp {

// A symbol as livepatch names it: `.klp.sym.<object>.<name>,<pos>`.
struct KlpSymbol {
  std::string object;
  std::string name;
  int64_t pos = 0;
  std::string klp_name() const;  // ".klp.sym.vmlinux.saved_command_line,0"
};

class KernelSymbols {
 public:
  // Module.symvers lines: "<crc>\t<name>\t<module>\t<export type>\t<namespace>".
  void add_symvers(std::string_view text);
  // System.map lines: "<address> <type> <name>" in address order (kallsyms order).
  void add_system_map(std::string_view text);
  // Defined symbols of a module, in its symbol table's order (module kallsyms order).
  void add_module_symbols(const std::string& module, const std::vector<std::string>& names);
  // Reads a .ko's symbol table (libelf) and adds it under `module`.
  Status add_module_file(const std::string& module, const std::string& ko_path);

  bool exported(const std::string& name) const { return exported_.count(name) != 0; }
  bool has_system_map() const { return has_system_map_; }
  bool knows_module(const std::string& module) const { return modules_.count(module) != 0; }
  // How often `name` is defined in `object` (0 when not, or when the object is unknown).
  int count(const std::string& object, const std::string& name) const;

  // Resolves a non-exported symbol referenced by patch code. Order: a NINES_KSYM hint;
  // else the one object among vmlinux and `candidates` (the patch's module objects) that
  // defines it, with pos 0 when unique there. Without a System.map an unknown name is
  // assumed to be a unique vmlinux symbol (the kernel checks at load). Fails naming the
  // symbol when it is defined nowhere, in several objects, or several times in one.
  Result<KlpSymbol> resolve(const std::string& name, const std::vector<std::string>& candidates,
                            const std::vector<SymbolHint>& hints) const;

  // The sympos of a function to replace in `object`: the hint, else 0 when unique. Fails
  // when the object's symbols are known and it has no such symbol, or several.
  Result<int64_t> function_pos(const std::string& object, const std::string& name,
                               const std::vector<SymbolHint>& hints) const;

 private:
  std::set<std::string, std::less<>> exported_;
  bool has_system_map_ = false;
  std::unordered_map<std::string, int> vmlinux_;
  std::map<std::string, std::unordered_map<std::string, int>> modules_;
};

}  // namespace nines::klp
