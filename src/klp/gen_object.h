// The kernel side of patch generation (issue 14, step 2): from the comparison of one
// translation unit (gen::diff_objects, shared with the user-space generator) to the
// relocatable object that carries its part of a livepatch module.
//
// What goes in: every changed or new function (with its `.cold` part), the anonymous
// data its code uses (strings, constants, jump tables), new data, and the private
// statics of the kernel's "once" and lockdep macros (`__warned`, `__already_done`,
// `__key`, `_rs`, `descriptor`, `__func__`: klp-build's list), which get a fresh copy.
// The special sections are trimmed to the entries of included code:
//
//   __bug_table (12-byte entries)   __ex_table (12)       .altinstructions (12, and the
//   __jump_table (16)               .static_call_sites (8) whole .altinstr_replacement)
//   .parainstructions (16)          .smp_locks, .retpoline_sites, .return_sites (4)
//   __mcount_loc (8)                .orc_unwind_ip (4) with .orc_unwind (6) in step
//
// `.discard.*` and objtool's annotations are dropped (the module link discards them).
// Any other section the included code reaches that is neither code nor data is refused
// by name.
//
// References to what stays in the kernel: exported symbols stay plain undefined
// references (the module loader resolves them); every other symbol becomes a livepatch
// symbol through the hand path's rewriting (klp_elf): a global by its name, a static by
// an alias whose object and `sympos` are decided here (the unit's own statics are found
// among same-named ones in System.map or the module's symbol table by their neighbours).
//
// Refused, with the reason: data of the kernel whose initial value or size changed,
// changed functions without an ftrace entry (notrace, `noinstr`, entry code), a static
// key of a module used by code of that module (jump labels are set up before livepatch
// relocates module references), and new exports. `__init`/`__exit` code is never
// patched: a change there is reported, not included.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"
#include "elf/relocatable.h"
#include "gen/object_diff.h"
#include "klp/symbols.h"

namespace nines::klp {

// Where the kernel's symbols are, with their order (for sympos) and exports.
class KernelSymbolIndex {
 public:
  // System.map lines "<address> <type> <name>", in address (kallsyms) order.
  void add_system_map(std::string_view text);
  // A module's defined symbols, in its .symtab order (the module's kallsyms order).
  Status add_module_file(const std::string& module, const std::string& ko_path);
  // Module.symvers: which object exports each name.
  void add_symvers(std::string_view text);

  bool has_system_map() const { return !vmlinux_.names.empty(); }
  bool knows(const std::string& object) const;
  // "vmlinux" or the module exporting `name`; empty when not exported.
  std::string exported_by(const std::string& name) const;
  int count(const std::string& object, const std::string& name) const;
  // The sympos of the `name` of a unit whose own symbols are `unit_names`: 0 when the
  // name is unique in `object`; else the 1-based position of the candidate surrounded by
  // most of the unit's other symbols. Fails when absent or when the neighbours do not
  // tell the candidates apart.
  Result<int64_t> sympos(const std::string& object, const std::string& name,
                         const std::set<std::string>& unit_names) const;

 private:
  struct Table {
    std::vector<std::string> names;  // in order
    std::map<std::string, std::vector<size_t>, std::less<>> where;
  };
  const Table* table(const std::string& object) const;
  Table vmlinux_;
  std::map<std::string, Table> modules_;
  std::map<std::string, std::string, std::less<>> exports_;
};

struct KernelUnitInput {
  std::string source;         // "fs/proc/cmdline.c"
  std::string kernel_object;  // "vmlinux" or the module ("binfmt_misc")
  const elf::RelocatableObject* original = nullptr;
  const elf::RelocatableObject* patched = nullptr;
  const gen::ObjectDiff* diff = nullptr;
};

struct GeneratedFunction {
  std::string name;         // the kernel's function (the original's name)
  std::string object;       // vmlinux or a module
  std::string replacement;  // the global name of its new version in the unit object
  int64_t sympos = 0;
  std::string source;       // its translation unit
  bool is_new = false;      // a new function (lives in the module, replaces nothing)
};

struct KernelUnitResult {
  elf::NewObject object;
  std::vector<GeneratedFunction> functions;   // replaced (and new) functions
  std::map<std::string, KlpSymbol> aliases;   // undefined alias -> the kernel's static
  std::vector<std::string> new_data;          // data objects that live in the module
  std::vector<std::string> notes;             // reported, not fatal
  std::vector<std::string> refusals;          // fatal: each names what and why
};

// Decides and emits the unit's part of the patch. `patch_globals`: globals any unit of
// the patch defines (calls between changed units stay inside the module). `number` makes
// the unit's generated names unique.
KernelUnitResult emit_kernel_unit(const KernelUnitInput& in, const KernelSymbolIndex& syms,
                                  const std::set<std::string>& patch_globals, int number);

// The globals a unit would define in the patch (for `patch_globals`).
std::set<std::string> unit_globals(const KernelUnitInput& in);

}  // namespace nines::klp
