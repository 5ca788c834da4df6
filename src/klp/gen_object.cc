#include "klp/gen_object.h"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <deque>
#include <memory>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::klp {

using elf::RelocatableObject;
using elf::Relocation;
using elf::RelSection;
using elf::RelSymbol;
using gen::Change;
using gen::RelocTarget;

// ---------------------------------------------------------------------------------------
// KernelSymbolIndex

void KernelSymbolIndex::add_system_map(std::string_view text) {
  for (auto line : split(text, '\n')) {
    auto f = split(trim(line), ' ');
    if (f.size() < 3) continue;
    std::string name(f[2]);
    vmlinux_.where[name].push_back(vmlinux_.names.size());
    vmlinux_.names.push_back(std::move(name));
  }
}

Status KernelSymbolIndex::add_module_file(const std::string& module, const std::string& ko) {
  auto obj = RelocatableObject::open(ko);
  if (!obj) return obj.error().wrap("read module " + module);
  Table& t = modules_[module];
  for (const auto& s : obj->symbols()) {
    if (!s.defined() || s.name.empty() || s.type == STT_SECTION || s.type == STT_FILE) continue;
    t.where[s.name].push_back(t.names.size());
    t.names.push_back(s.name);
  }
  return {};
}

void KernelSymbolIndex::add_symvers(std::string_view text) {
  for (auto line : split(text, '\n')) {
    auto f = split(line, '\t');
    if (f.size() < 3) continue;
    std::string mod(f[2]);
    if (mod == "vmlinux") {
    } else {
      mod = module_name_of(basename_of(mod));
    }
    exports_.emplace(std::string(f[1]), mod);
  }
}

bool KernelSymbolIndex::knows(const std::string& object) const {
  return object == kVmlinux ? has_system_map() : modules_.count(object) != 0;
}

std::string KernelSymbolIndex::exported_by(const std::string& name) const {
  auto it = exports_.find(name);
  return it == exports_.end() ? std::string() : it->second;
}

const KernelSymbolIndex::Table* KernelSymbolIndex::table(const std::string& object) const {
  if (object == kVmlinux) return has_system_map() ? &vmlinux_ : nullptr;
  auto it = modules_.find(object);
  return it == modules_.end() ? nullptr : &it->second;
}

int KernelSymbolIndex::count(const std::string& object, const std::string& name) const {
  const Table* t = table(object);
  if (!t) return 0;
  auto it = t->where.find(name);
  return it == t->where.end() ? 0 : static_cast<int>(it->second.size());
}

Result<int64_t> KernelSymbolIndex::sympos(const std::string& object, const std::string& name,
                                          const std::set<std::string>& unit_names) const {
  const Table* t = table(object);
  if (!t) return int64_t{0};  // unknown object: the kernel checks at load
  auto it = t->where.find(name);
  if (it == t->where.end())
    return make_error("'{}' is not a symbol of {} (is the tree the one {} was built from?)", name,
                      object, object);
  const auto& cands = it->second;
  if (cands.size() == 1) return int64_t{0};
  // The linker keeps a unit's symbols together: each occurrence of the unit's other names
  // votes for the nearest candidate (within a window); the candidate with most votes is
  // the unit's own.
  const size_t radius = std::max<size_t>(64, 4 * unit_names.size());
  std::vector<size_t> score(cands.size());
  for (const auto& u : unit_names) {
    if (u == name) continue;
    auto w = t->where.find(u);
    if (w == t->where.end()) continue;
    for (size_t q : w->second) {
      size_t best_c = cands.size(), best_d = radius + 1;
      for (size_t c = 0; c < cands.size(); ++c) {
        size_t d = q > cands[c] ? q - cands[c] : cands[c] - q;
        if (d < best_d) best_d = d, best_c = c;
      }
      if (best_c < cands.size()) ++score[best_c];
    }
  }
  size_t best = 0;
  for (size_t c = 1; c < cands.size(); ++c)
    if (score[c] > score[best]) best = c;
  size_t ties = std::count(score.begin(), score.end(), score[best]);
  if (score[best] == 0 || ties > 1)
    return make_error("{} has {} symbols named '{}' and their neighbours do not tell which one "
                      "is this unit's",
                      object, cands.size(), name);
  return static_cast<int64_t>(best + 1);
}

// ---------------------------------------------------------------------------------------
// The emitter

namespace {

struct SpecialTable {
  std::string_view name;
  size_t entry;
};
// x86-64, Linux 6.1: the entry sizes of the tables that point into code (struct bug_entry
// with relative pointers, exception_table_entry, alt_instr, jump_entry, static_call_site,
// paravirt_patch_site; the s32 site lists of objtool; __mcount_loc's addresses).
constexpr SpecialTable kSpecial[] = {
    {"__bug_table", 12},       {"__ex_table", 12},         {".altinstructions", 12},
    {"__jump_table", 16},      {".static_call_sites", 8},  {".parainstructions", 16},
    {".smp_locks", 4},         {".retpoline_sites", 4},    {".return_sites", 4},
    {".call_sites", 4},        {"__mcount_loc", 8},        {".orc_unwind_ip", 4},
    {".ibt_endbr_seal", 4},
};
constexpr size_t kOrcEntry = 6;  // struct orc_entry, parallel to .orc_unwind_ip

const SpecialTable* special_table(std::string_view name) {
  for (const auto& t : kSpecial)
    if (t.name == name) return &t;
  return nullptr;
}

bool dropped_section(std::string_view name) {
  return starts_with(name, ".discard") || starts_with(name, ".debug") || name == ".comment" ||
         starts_with(name, ".note") || name == ".orc_unwind" || starts_with(name, ".BTF") ||
         name == ".static_call_tramp_key" || starts_with(name, ".rela") || name == ".symtab" ||
         name == ".strtab" || name == ".shstrtab";
}

// Statics of the kernel's macros that must stay private to their user (klp-build's
// dont_correlate list): the patch gets a fresh copy.
bool private_static(const std::string& name) {
  static const char* const kNames[] = {"__func__", "__PRETTY_FUNCTION__", "__FUNCTION__",
                                       "__warned", "__already_done", "__key", "_rs",
                                       "descriptor", "__print_once", "_entry", "_entry_ptr",
                                       "CSWTCH", "__UNIQUE_ID_ddebug"};
  std::string base = gen::strip_numeric_suffixes(name);
  for (const char* n : kNames)
    if (base == n || starts_with(base, std::string(n) + "___")) return true;
  return starts_with(name, "__UNIQUE_ID_");
}

bool init_or_exit(std::string_view sec) {
  return starts_with(sec, ".init.") || starts_with(sec, ".exit.") || starts_with(sec, ".ref.") ||
         starts_with(sec, ".meminit.") || starts_with(sec, ".head.text");
}

bool unpatchable_text(std::string_view sec) {
  return starts_with(sec, ".noinstr.text") || starts_with(sec, ".entry.text") ||
         starts_with(sec, ".cpuidle.text") || starts_with(sec, ".kprobes.text") ||
         starts_with(sec, ".irqentry.text") || starts_with(sec, ".softirqentry.text");
}

std::string c_identifier(std::string_view s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  return out;
}

class KernelEmitter {
 public:
  KernelEmitter(const KernelUnitInput& in, const KernelSymbolIndex& syms,
                const std::set<std::string>& patch_globals, int number)
      : in_(in), p_(*in.patched), o_(*in.original), syms_(syms), globals_(patch_globals),
        number_(number) {
    for (const auto& s : o_.symbols())
      if (s.defined() && (s.type == STT_FUNC || s.type == STT_OBJECT) && !s.name.empty())
        unit_names_.insert(s.name);
  }

  KernelUnitResult run() {
    seed();
    for (;;) {
      closure();
      size_t before = included_.size();
      pick_special_entries();
      closure();
      if (included_.size() == before) break;
    }
    if (!out_.refusals.empty()) return std::move(out_);
    emit();
    return std::move(out_);
  }

 private:
  const RelSymbol& sym(uint32_t i) const { return p_.symbol(i); }
  const RelSection& sec(uint32_t i) const { return p_.section(i); }

  std::string kernel_name(uint32_t patched) const {
    if (auto it = in_.diff->twin_of_patched.find(patched); it != in_.diff->twin_of_patched.end())
      return o_.symbol(it->second).name;
    return p_.symbol(patched).name;
  }

  void refuse(std::string why) { out_.refusals.push_back(in_.source + ": " + std::move(why)); }

  void include(uint32_t s) {
    if (s == 0 || s >= p_.sections().size() || included_.count(s)) return;
    const RelSection& x = sec(s);
    if (dropped_section(x.name)) return;
    if (special_table(x.name)) return;  // entries are picked, never whole tables
    included_.insert(s);
    work_.push_back(s);
  }

  bool has_ftrace_entry(const RelSymbol& f) const {
    const RelSection* mc = p_.find_section("__mcount_loc");
    if (!mc) return false;
    for (const auto& r : mc->relocations) {
      const RelSymbol& t = sym(r.symbol);
      if (t.shndx == f.shndx && static_cast<int64_t>(t.value) + r.addend ==
                                    static_cast<int64_t>(f.value))
        return true;
    }
    return false;
  }

  // 1. The changed and new functions; refusals for changed data.
  void seed() {
    for (const auto& sd : in_.diff->symbols) {
      const RelSymbol& s = sym(sd.patched);
      const std::string& sn = sec(s.shndx).name;
      if (!sd.function) {
        if (sd.change == Change::kChanged && !private_static(s.name))
          refuse(fmt::format("data '{}' changed its initial value or size: the running kernel "
                             "keeps the old one (use a shadow variable or a callback: "
                             "docs/KERNEL.md)",
                             kernel_name(sd.patched)));
        continue;
      }
      if (sd.change == Change::kSame) continue;
      if (init_or_exit(sn)) {
        out_.notes.push_back(fmt::format(
            "{}: '{}' ({}) changed but is __init/__exit code: it has run already or runs at "
            "unload, and is never patched",
            in_.source, s.name, sn));
        init_changed_.insert(sd.patched);
        continue;
      }
      if (sd.change == Change::kChanged && unpatchable_text(sn)) {
        refuse(fmt::format("'{}' changed, but it is in {} (entry or noinstr code): livepatch "
                           "cannot redirect it",
                           kernel_name(sd.patched), sn));
        continue;
      }
      if (sd.change == Change::kChanged && sd.parent.empty() && !has_ftrace_entry(s)) {
        refuse(fmt::format("'{}' changed, but it has no ftrace entry (notrace, or inline asm "
                           "entry code): livepatch cannot redirect it",
                           kernel_name(sd.patched)));
        continue;
      }
      include(s.shndx);
      if (!sd.parent.empty()) continue;
      if (sd.change == Change::kChanged) changed_.push_back(sd.patched);
      else new_functions_.push_back(sd.patched);
    }
  }

  // 2. What included code reaches: anonymous data, new and private data, .cold parts.
  void closure() {
    for (;;) {
      while (!work_.empty()) {
        uint32_t s = work_.front();
        work_.pop_front();
        for (const auto& r : sec(s).relocations) {
          if (r.type == R_X86_64_NONE) continue;
          RelocTarget t = gen::resolve_reloc_target(p_, r);
          if (t.kind == RelocTarget::Kind::kAnonymous) {
            include(t.section);
            continue;
          }
          if (t.kind != RelocTarget::Kind::kSymbol) continue;
          const RelSymbol& ts = sym(t.symbol);
          if (included_.count(ts.shndx)) continue;
          const gen::SymbolDiff* sd = in_.diff->find(t.symbol);
          if (sd && sd->function && init_changed_.count(t.symbol)) {
            refuse(fmt::format("patched code calls '{}', a changed __init/__exit function",
                               ts.name));
            continue;
          }
          if (private_static(ts.name) || (sd && sd->change == Change::kNew)) {
            if (ts.type == STT_OBJECT) out_.new_data.push_back(ts.name);
            include(ts.shndx);
          }
        }
      }
      bool more = false;
      for (const auto& sd : in_.diff->symbols) {
        if (sd.parent.empty() || included_.count(sym(sd.patched).shndx)) continue;
        for (const auto& other : in_.diff->symbols)
          if (other.function && sym(other.patched).name == sd.parent &&
              included_.count(sym(other.patched).shndx)) {
            include(sym(sd.patched).shndx);
            more = true;
            break;
          }
      }
      if (!more) break;
    }
  }

  // The object (vmlinux or a module) holding what relocation `r` points at, and its name.
  std::pair<std::string, std::string> kernel_target(const Relocation& r) const {
    RelocTarget t = gen::resolve_reloc_target(p_, r);
    const RelSymbol& s = sym(t.symbol);
    if (t.kind == RelocTarget::Kind::kUndefined) {
      std::string by = syms_.exported_by(s.name);
      if (!by.empty()) return {by, s.name};
      if (in_.kernel_object != kVmlinux && syms_.count(in_.kernel_object, s.name) > 0)
        return {in_.kernel_object, s.name};
      return {std::string(kVmlinux), s.name};
    }
    return {in_.kernel_object, kernel_name(t.symbol)};
  }

  // 3. Entries of the special tables that belong to included code.
  void pick_special_entries() {
    for (const auto& s : p_.sections()) {
      const SpecialTable* tab = special_table(s.name);
      if (!tab || s.nobits()) continue;
      if (s.size % tab->entry != 0) {
        refuse(fmt::format("section {} is {} bytes, not a multiple of its {}-byte entries: "
                           "another kernel version's layout",
                           s.name, s.size, tab->entry));
        continue;
      }
      std::map<uint64_t, std::vector<const Relocation*>> by_entry;
      for (const auto& r : s.relocations) by_entry[r.offset / tab->entry].push_back(&r);
      std::set<uint64_t>& kept = kept_entries_[s.index];
      for (const auto& [idx, relocs] : by_entry) {
        if (kept.count(idx)) continue;
        const Relocation* owner = nullptr;
        for (const Relocation* r : relocs)
          if (r->offset == idx * tab->entry) owner = r;
        if (!owner) continue;
        uint32_t at = sym(owner->symbol).shndx;
        if (!included_.count(at) || !(sec(at).flags & SHF_EXECINSTR) ||
            sec(at).name == ".altinstr_replacement")
          continue;
        if (!keep_entry(s.name, tab->entry, idx, relocs)) continue;
        kept.insert(idx);
        for (const Relocation* r : relocs) {
          if (r == owner) continue;
          RelocTarget t = gen::resolve_reloc_target(p_, *r);
          if (t.kind == RelocTarget::Kind::kAnonymous) include(t.section);
          if (t.kind == RelocTarget::Kind::kSymbol) {
            const RelSymbol& ts = sym(t.symbol);
            if (sec(ts.shndx).name == ".altinstr_replacement" || private_static(ts.name))
              include(ts.shndx);
          }
        }
      }
    }
  }

  // Jump labels and static calls whose key lives in a module: the module loader sets them
  // up before livepatch resolves references to a module (late module patching).
  bool keep_entry(std::string_view table, size_t size, uint64_t idx,
                  const std::vector<const Relocation*>& relocs) {
    if (table != "__jump_table" && table != ".static_call_sites") return true;
    const uint64_t key_at = idx * size + (table == "__jump_table" ? 8 : 4);
    for (const Relocation* r : relocs) {
      if (r->offset != key_at) continue;
      auto [object, name] = kernel_target(*r);
      RelocTarget t = gen::resolve_reloc_target(p_, *r);
      bool in_patch = t.kind == RelocTarget::Kind::kSymbol &&
                      (included_.count(sym(t.symbol).shndx) || private_static(sym(t.symbol).name));
      if (in_patch || object == kVmlinux) return true;
      if (syms_.exported_by(name) == object && object != in_.kernel_object) return true;
      if (table == ".static_call_sites") return false;  // the call through the trampoline stays right
      if (starts_with(name, "__tracepoint_")) {
        out_.notes.push_back(fmt::format(
            "{}: tracepoint {} is not traced from the patched code (its static key is in module "
            "{})",
            in_.source, name.substr(13), object));
        return false;
      }
      refuse(fmt::format("__jump_table: patched code uses static key '{}' of module {}: jump "
                         "labels are set up before livepatch resolves the module's symbols "
                         "(use static_key_enabled() in a hand-written patch)",
                         name, object));
      return false;
    }
    return true;
  }

  // 4. The unit object.
  uint32_t add_section(elf::NewSection ns) {
    out_.object.sections.push_back(std::move(ns));
    return static_cast<uint32_t>(out_.object.sections.size());
  }

  struct Ref {
    bool global = false;
    uint32_t index = 0;
  };
  uint32_t add_local(elf::NewSymbol s) {
    locals_.push_back(std::move(s));
    return static_cast<uint32_t>(locals_.size());
  }
  Ref add_global(elf::NewSymbol s) {
    globals_out_.push_back(std::move(s));
    return {true, static_cast<uint32_t>(globals_out_.size() - 1)};
  }
  Ref undefined(const std::string& name) {
    if (auto it = undefined_.find(name); it != undefined_.end()) return it->second;
    Ref r = add_global({name, STT_NOTYPE, STB_GLOBAL, STV_DEFAULT, 0, 0, 0});
    undefined_[name] = r;
    return r;
  }
  Ref klp_alias(const std::string& object, const std::string& name) {
    const std::string key = object + ":" + name;
    if (auto it = alias_of_.find(key); it != alias_of_.end()) return undefined(it->second);
    auto pos = syms_.sympos(object, name, unit_names_);
    if (!pos) {
      refuse(fmt::format("patched code uses '{}': {}", name, pos.error().message));
      return undefined(name);
    }
    std::string alias = fmt::format("__nines_k{}_{}", number_, alias_of_.size());
    alias_of_[key] = alias;
    out_.aliases[alias] = KlpSymbol{object, name, *pos};
    return undefined(alias);
  }

  void emit() {
    // Sections: included ones copied, special ones trimmed.
    for (uint32_t s : included_) {
      const RelSection& x = sec(s);
      elf::NewSection ns{x.name, x.type, x.flags & ~uint64_t{SHF_GROUP}, x.addralign, x.entsize,
                         x.data, x.size, {}};
      new_section_[s] = add_section(std::move(ns));
    }
    for (const auto& [s, kept] : kept_entries_) {
      if (kept.empty()) continue;
      const RelSection& x = sec(s);
      const size_t size = special_table(x.name)->entry;
      elf::NewSection ns{x.name, x.type, x.flags & ~uint64_t{SHF_GROUP}, x.addralign, x.entsize,
                         {}, 0, {}};
      for (uint64_t idx : kept) {
        entry_map_[s][idx] = ns.data.size() / size;
        ns.data += x.data.substr(idx * size, size);
      }
      new_section_[s] = add_section(std::move(ns));
      if (x.name == ".orc_unwind_ip") {
        if (const RelSection* orc = p_.find_section(".orc_unwind"); orc) {
          elf::NewSection no{orc->name, orc->type, orc->flags, orc->addralign, orc->entsize,
                             {}, 0, {}};
          for (uint64_t idx : kept) no.data += orc->data.substr(idx * kOrcEntry, kOrcEntry);
          add_section(std::move(no));
        }
      }
    }
    {
      elf::NewSection stack;
      stack.name = ".note.GNU-stack";
      stack.type = SHT_PROGBITS;
      add_section(std::move(stack));
    }
    // Symbols: section symbols, the named symbols of included sections (kept local: calls
    // between units go through the kernel's symbol, which livepatch redirects), new
    // globals, and a global handle per patched function for the klp_func table.
    for (const auto& [old_s, new_s] : new_section_)
      section_symbol_[old_s] = add_local({"", STT_SECTION, STB_LOCAL, 0, new_s, 0, 0});
    for (uint32_t s : included_) {
      for (const RelSymbol* rs : p_.symbols_in(s)) {
        if (rs->type == STT_SECTION || rs->name.empty()) continue;
        const gen::SymbolDiff* sd = in_.diff->find(rs->index);
        bool new_global = rs->bind != STB_LOCAL && sd && sd->change == Change::kNew;
        if (new_global) continue;
        named_[rs->index] = {false, add_local({rs->name, rs->type, STB_LOCAL, STV_DEFAULT,
                                               new_section_.at(s), rs->value, rs->size})};
      }
    }
    for (uint32_t s : included_)
      for (const RelSymbol* rs : p_.symbols_in(s)) {
        const gen::SymbolDiff* sd = in_.diff->find(rs->index);
        if (rs->bind == STB_LOCAL || !sd || sd->change != Change::kNew) continue;
        named_[rs->index] = add_global({rs->name, rs->type, rs->bind, STV_DEFAULT,
                                        new_section_.at(s), rs->value, rs->size});
      }
    auto handle = [&](uint32_t idx, bool is_new) {
      const RelSymbol& rs = sym(idx);
      GeneratedFunction g;
      g.name = kernel_name(idx);
      g.object = in_.kernel_object;
      g.source = in_.source;
      g.is_new = is_new;
      g.replacement = fmt::format("__nines_u{}_{}", number_, c_identifier(g.name));
      add_global({g.replacement, STT_FUNC, STB_GLOBAL, STV_DEFAULT, new_section_.at(rs.shndx),
                  rs.value, rs.size});
      if (!is_new) {
        auto pos = syms_.sympos(in_.kernel_object, g.name, unit_names_);
        if (!pos) {
          refuse(fmt::format("the changed function '{}': {}", g.name, pos.error().message));
          return;
        }
        g.sympos = *pos;
      }
      out_.functions.push_back(std::move(g));
    };
    for (uint32_t idx : changed_) handle(idx, false);
    for (uint32_t idx : new_functions_) handle(idx, true);

    // Relocations.
    for (uint32_t s : included_)
      for (const auto& r : sec(s).relocations) map_reloc(s, r, r.offset);
    for (const auto& [s, kept] : kept_entries_) {
      const size_t size = special_table(sec(s).name)->entry;
      for (const auto& r : sec(s).relocations) {
        auto it = entry_map_[s].find(r.offset / size);
        if (it == entry_map_[s].end()) continue;
        map_reloc(s, r, it->second * size + r.offset % size);
      }
    }
    const uint32_t nlocals = static_cast<uint32_t>(locals_.size());
    for (auto& pr : pending_) {
      uint32_t idx = pr.sym.global ? nlocals + 1 + pr.sym.index : pr.sym.index;
      out_.object.sections[pr.section - 1].relocations.push_back(
          {pr.offset, pr.type, idx, pr.addend});
    }
    out_.object.symbols = std::move(locals_);
    for (auto& g : globals_out_) out_.object.symbols.push_back(std::move(g));
  }

  void map_reloc(uint32_t old_sec, const Relocation& r, uint64_t offset) {
    if (r.type == R_X86_64_NONE) return;
    const uint32_t new_sec = new_section_.at(old_sec);
    RelocTarget t = gen::resolve_reloc_target(p_, r);
    switch (t.kind) {
      case RelocTarget::Kind::kAnonymous: {
        auto it = section_symbol_.find(t.section);
        if (it == section_symbol_.end()) {
          refuse(fmt::format("{} refers to section {}, which is not part of the patch",
                             sec(old_sec).name, sec(t.section).name));
          return;
        }
        pending_.push_back({new_sec, offset, r.type, {false, it->second}, t.addend});
        return;
      }
      case RelocTarget::Kind::kSymbol: {
        if (auto it = named_.find(t.symbol); it != named_.end()) {
          pending_.push_back({new_sec, offset, r.type, it->second, t.addend});
          return;
        }
        const RelSymbol& ts = sym(t.symbol);
        if (included_.count(ts.shndx)) {  // an unnamed place inside an included section
          pending_.push_back(
              {new_sec, offset, r.type, {false, section_symbol_.at(ts.shndx)},
               static_cast<int64_t>(ts.value) + t.addend});
          return;
        }
        const std::string name = kernel_name(t.symbol);
        Ref ref = ts.bind == STB_LOCAL ? klp_alias(in_.kernel_object, name)
                                       : external(name);
        pending_.push_back({new_sec, offset, r.type, ref, t.addend});
        return;
      }
      case RelocTarget::Kind::kUndefined:
        pending_.push_back({new_sec, offset, r.type, external(sym(t.symbol).name), r.addend});
        return;
    }
  }

  // A global of the kernel (or of another unit of the patch).
  Ref external(const std::string& name) {
    if (globals_.count(name)) return undefined(name);
    std::string by = syms_.exported_by(name);
    // A module's export used by the module's own patched code must not make the patch
    // module depend on it: it becomes a livepatch symbol, resolved when the module loads.
    if (!by.empty() && by != kVmlinux) {
      if (by != in_.kernel_object) {
        refuse(fmt::format("patched code uses '{}' of module {}, which the patch does not "
                           "patch",
                           name, by));
        return undefined(name);
      }
      return klp_alias(by, name);
    }
    return undefined(name);
  }

  struct PendingReloc {
    uint32_t section;
    uint64_t offset;
    uint32_t type;
    Ref sym;
    int64_t addend;
  };

  const KernelUnitInput& in_;
  const RelocatableObject& p_;
  const RelocatableObject& o_;
  const KernelSymbolIndex& syms_;
  const std::set<std::string>& globals_;
  int number_;
  std::set<std::string> unit_names_;
  KernelUnitResult out_;
  std::set<uint32_t> included_;
  std::deque<uint32_t> work_;
  std::set<uint32_t> init_changed_;
  std::vector<uint32_t> changed_, new_functions_;
  std::map<uint32_t, std::set<uint64_t>> kept_entries_;      // table -> entry indexes
  std::map<uint32_t, std::map<uint64_t, uint64_t>> entry_map_;  // table -> old -> new index
  std::map<uint32_t, uint32_t> new_section_;                 // patched -> output (1-based)
  std::map<uint32_t, uint32_t> section_symbol_;              // patched section -> local
  std::map<uint32_t, Ref> named_;
  std::map<std::string, Ref> undefined_;
  std::map<std::string, std::string> alias_of_;
  std::vector<elf::NewSymbol> locals_, globals_out_;
  std::vector<PendingReloc> pending_;
};

}  // namespace

KernelUnitResult emit_kernel_unit(const KernelUnitInput& in, const KernelSymbolIndex& syms,
                                  const std::set<std::string>& patch_globals, int number) {
  return KernelEmitter(in, syms, patch_globals, number).run();
}

std::set<std::string> unit_globals(const KernelUnitInput& in) {
  std::set<std::string> out;
  for (const auto& sd : in.diff->symbols) {
    const RelSymbol& s = in.patched->symbol(sd.patched);
    if (sd.change == Change::kNew && s.bind != STB_LOCAL) out.insert(s.name);
  }
  return out;
}

}  // namespace nines::klp
