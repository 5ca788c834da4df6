#include "gen/patch_unit.h"

#include <elf.h>

#include <deque>
#include <map>

#include "core/strings.h"

namespace nines::gen {

using elf::RelocatableObject;
using elf::RelSymbol;

std::string_view to_string(TargetFixup::Kind k) {
  return k == TargetFixup::Kind::kPc32 ? "pc32" : "abs64";
}

namespace {

// Names the compiler gives to a function's own name string: copied into the patch (the
// changed function may have been renamed), never correlated (klp-build's list).
bool function_name_string(const std::string& name) {
  std::string base = strip_numeric_suffixes(name);
  return base == "__func__" || base == "__PRETTY_FUNCTION__" || base == "__FUNCTION__";
}

const SymbolDiff* diff_of(const UnitInput& in, uint32_t patched_symbol) {
  return in.diff->find(patched_symbol);
}

// The name the target knows a patched symbol by: its original twin's.
std::string target_name(const UnitInput& in, uint32_t patched_symbol) {
  if (auto it = in.diff->twin_of_patched.find(patched_symbol); it != in.diff->twin_of_patched.end())
    return in.original->symbol(it->second).name;
  return in.patched->symbol(patched_symbol).name;
}

bool is_got_type(uint32_t t) {
  return t == R_X86_64_GOTPCREL || t == R_X86_64_GOTPCRELX || t == R_X86_64_REX_GOTPCRELX;
}

// Symbols every ELF link defines for itself: never the target's.
bool linker_defined(const std::string& name) {
  return name == "_GLOBAL_OFFSET_TABLE_" || name == "_DYNAMIC" || name == "__dso_handle";
}

}  // namespace

UnitPlan plan_unit(const UnitInput& in) {
  UnitPlan plan;
  const RelocatableObject& p = *in.patched;
  std::deque<uint32_t> work;
  auto include = [&](uint32_t sec) {
    if (sec == 0 || plan.sections.count(sec)) return;
    plan.sections.insert(sec);
    work.push_back(sec);
  };
  for (const auto& sd : in.diff->symbols) {
    const RelSymbol& s = p.symbol(sd.patched);
    if (!sd.function) {
      if (sd.change == Change::kChanged && !function_name_string(s.name))
        plan.refusals.push_back(fmt::format(
            "data '{}' ({}) changed its initial value or size: the running process keeps the "
            "old one", target_name(in, sd.patched), in.source));
      continue;
    }
    if (sd.change == Change::kSame) continue;
    include(s.shndx);
    if (!sd.parent.empty()) continue;
    (sd.change == Change::kNew ? plan.new_functions : plan.changed_functions).push_back(s.name);
  }
  for (;;) {
    while (!work.empty()) {
      uint32_t sec = work.front();
      work.pop_front();
      for (const auto& r : p.section(sec).relocations) {
        RelocTarget t = resolve_reloc_target(p, r);
        if (t.kind == RelocTarget::Kind::kAnonymous) {
          include(t.section);
          continue;
        }
        if (t.kind != RelocTarget::Kind::kSymbol) continue;
        const RelSymbol& s = p.symbol(t.symbol);
        const SymbolDiff* sd = diff_of(in, t.symbol);
        if (function_name_string(s.name) || (sd && sd->change == Change::kNew)) {
          if (!plan.sections.count(s.shndx) && s.type == STT_OBJECT) plan.new_data.push_back(s.name);
          include(s.shndx);
        }
      }
    }
    // A `.cold` part goes with its parent.
    bool more = false;
    for (const auto& sd : in.diff->symbols) {
      if (sd.parent.empty()) continue;
      const RelSymbol& s = p.symbol(sd.patched);
      if (plan.sections.count(s.shndx)) continue;
      for (const auto& other : in.diff->symbols)
        if (other.function && p.symbol(other.patched).name == sd.parent &&
            plan.sections.count(p.symbol(other.patched).shndx)) {
          include(s.shndx);
          more = true;
        }
    }
    if (!more) break;
  }
  for (uint32_t sec : plan.sections) {
    if (p.section(sec).group)
      plan.refusals.push_back(fmt::format("{}: section {} belongs to a COMDAT group; not supported",
                                          in.source, p.section(sec).name));
    for (const RelSymbol* s : p.symbols_in(sec))
      if (s->bind != STB_LOCAL) plan.globals.insert(s->name);
  }
  return plan;
}

namespace {

class Emitter {
 public:
  Emitter(const UnitInput& in, const UnitPlan& plan, const TargetSymbols& target,
          const std::set<std::string>& patch_globals, int number)
      : in_(in), p_(*in.patched), plan_(plan), target_(target), globals_(patch_globals),
        number_(number) {}

  EmittedUnit run() {
    copy_sections();
    make_local_symbols();
    make_global_symbols();
    for (uint32_t sec : plan_.sections) map_relocations(sec);
    finish();
    return std::move(out_);
  }

 private:
  std::string marker(uint32_t new_section) const {
    return fmt::format("__nines_u{}_s{}", number_, new_section);
  }

  void copy_sections() {
    for (uint32_t sec : plan_.sections) {
      const elf::RelSection& s = p_.section(sec);
      elf::NewSection ns;
      ns.name = s.name;
      ns.type = s.type;
      ns.flags = s.flags & ~uint64_t{SHF_GROUP};
      ns.addralign = s.addralign;
      ns.entsize = s.entsize;
      ns.data = s.data;
      ns.size = s.size;
      out_.object.sections.push_back(std::move(ns));
      new_section_[sec] = static_cast<uint32_t>(out_.object.sections.size());
    }
    elf::NewSection stack;
    stack.name = ".note.GNU-stack";
    stack.type = SHT_PROGBITS;
    out_.object.sections.push_back(stack);
  }

  uint32_t add_local(elf::NewSymbol s) {
    locals_.push_back(std::move(s));
    return static_cast<uint32_t>(locals_.size());
  }

  void make_local_symbols() {
    for (auto [old_sec, new_sec] : new_section_) {
      section_symbol_[new_sec] = add_local({"", STT_SECTION, STB_LOCAL, 0, new_sec, 0, 0});
      add_local({marker(new_sec), STT_NOTYPE, STB_LOCAL, 0, new_sec, 0, 0});
      for (const RelSymbol* s : p_.symbols_in(old_sec))
        if (s->bind == STB_LOCAL)
          named_[s->index] = {false, add_local({s->name, s->type, STB_LOCAL, 0, new_sec, s->value, s->size})};
    }
  }

  void make_global_symbols() {
    for (auto [old_sec, new_sec] : new_section_)
      for (const RelSymbol* s : p_.symbols_in(old_sec))
        if (s->bind != STB_LOCAL) {
          globals_out_.push_back({s->name, s->type, s->bind, STV_HIDDEN, new_sec, s->value, s->size});
          named_[s->index] = {true, static_cast<uint32_t>(globals_out_.size() - 1)};
        }
  }

  // A handle to a symbol of the output: local index (1-based) or global position, made
  // final in finish() once the number of locals is known.
  struct Ref {
    bool global = false;
    uint32_t index = 0;
  };

  Ref undefined(const std::string& name) {
    if (auto it = undefined_.find(name); it != undefined_.end()) return it->second;
    globals_out_.push_back({name, STT_NOTYPE, STB_GLOBAL, STV_DEFAULT, 0, 0, 0});
    Ref r{true, static_cast<uint32_t>(globals_out_.size() - 1)};
    undefined_[name] = r;
    return r;
  }

  void add_reloc(uint32_t new_sec, uint64_t offset, uint32_t type, Ref sym, int64_t addend) {
    pending_.push_back({new_sec, offset, type, sym, addend});
  }

  // A local label at `offset` in the copy of section `old_sec` (made once).
  uint32_t label_in(uint32_t old_sec, uint64_t offset) {
    auto key = std::make_pair(old_sec, offset);
    if (auto it = labels_.find(key); it != labels_.end()) return it->second;
    uint32_t new_sec = new_section_.at(old_sec);
    uint32_t index = add_local({fmt::format("__nines_u{}_l{}", number_, labels_.size()), STT_NOTYPE,
                                STB_LOCAL, 0, new_sec, offset, 0});
    labels_[key] = index;
    return index;
  }

  uint32_t got_slot(const std::string& name, uint64_t target_offset) {
    if (auto it = got_.find(name); it != got_.end()) return it->second;
    uint32_t slot = static_cast<uint32_t>(got_.size() * 8);
    got_[name] = slot;
    got_fixups_.push_back({"", slot, TargetFixup::Kind::kAbs64, name, target_offset, 0});
    return slot;
  }

  // A reference from patch code to the target's symbol `name`.
  void target_reference(uint32_t new_sec, const elf::Relocation& r, const std::string& name,
                        int64_t addend) {
    auto ts = target_.find(name, in_.source);
    if (!ts) {
      out_.refusals.push_back(fmt::format("{}: changed code uses '{}', which the target does not "
                                          "define: {}", in_.source, name, ts.error().message));
      return;
    }
    if (ts->type == STT_TLS) {
      out_.refusals.push_back(fmt::format("{}: changed code uses the thread-local variable '{}'; "
                                          "not supported", in_.source, name));
      return;
    }
    if (ts->type == STT_GNU_IFUNC) {
      out_.refusals.push_back(fmt::format("{}: changed code uses '{}', an IFUNC of the target; "
                                          "not supported", in_.source, name));
      return;
    }
    switch (r.type) {
      case R_X86_64_PC32:
      case R_X86_64_PLT32:
        out_.fixups.push_back({marker(new_sec), r.offset, TargetFixup::Kind::kPc32, name, ts->value, addend});
        return;
      case R_X86_64_64:
        out_.fixups.push_back({marker(new_sec), r.offset, TargetFixup::Kind::kAbs64, name, ts->value, addend});
        return;
      case R_X86_64_GOTPCREL:
      case R_X86_64_GOTPCRELX:
      case R_X86_64_REX_GOTPCRELX:
        // The code loads the address from a GOT slot: make it a slot of the patch's own.
        add_reloc(new_sec, r.offset, R_X86_64_PC32, {false, 0 /* .nines.got, fixed later */},
                  static_cast<int64_t>(got_slot(name, ts->value)) + r.addend);
        return;
      default:
        out_.refusals.push_back(fmt::format("{}: relocation type {} against the target's '{}' is "
                                            "not supported", in_.source, r.type, name));
    }
  }

  void map_relocations(uint32_t old_sec) {
    uint32_t new_sec = new_section_.at(old_sec);
    for (const auto& r : p_.section(old_sec).relocations) {
      if (r.type == R_X86_64_NONE) continue;
      if (r.type == R_X86_64_TPOFF32 || r.type == R_X86_64_GOTTPOFF || r.type == R_X86_64_TLSGD ||
          r.type == R_X86_64_TLSLD || r.type == R_X86_64_DTPOFF32) {
        out_.refusals.push_back(fmt::format("{}: changed code uses thread-local storage ('{}'); "
                                            "not supported", in_.source, p_.symbol(r.symbol).name));
        continue;
      }
      RelocTarget t = resolve_reloc_target(p_, r);
      switch (t.kind) {
        case RelocTarget::Kind::kAnonymous: {
          const RelSymbol& label = p_.symbol(r.symbol);
          if (label.type != STT_SECTION) {
            // A label such as .LC0 in a string section: the linker merges strings and
            // finds each by label + addend, never by section + addend, so keep a label.
            add_reloc(new_sec, r.offset, r.type, {false, label_in(t.section, label.value)}, r.addend);
            break;
          }
          add_reloc(new_sec, r.offset, r.type, {false, section_symbol_.at(new_section_.at(t.section))}, t.addend);
          break;
        }
        case RelocTarget::Kind::kSymbol: {
          if (auto it = named_.find(t.symbol); it != named_.end()) {
            add_reloc(new_sec, r.offset, r.type, it->second, is_got_type(r.type) ? r.addend : t.addend);
            break;
          }
          target_reference(new_sec, r, target_name(in_, t.symbol), t.addend);
          break;
        }
        case RelocTarget::Kind::kUndefined: {
          const std::string& name = p_.symbol(t.symbol).name;
          if (globals_.count(name) || linker_defined(name) || !target_.has(name)) {
            add_reloc(new_sec, r.offset, r.type, undefined(name), r.addend);
            break;
          }
          target_reference(new_sec, r, name, r.addend);
          break;
        }
      }
    }
  }

  void make_replacements() {
    for (const auto& sd : in_.diff->symbols) {
      if (!sd.function || sd.change != Change::kChanged || !sd.parent.empty()) continue;
      const RelSymbol& s = p_.symbol(sd.patched);
      std::string name = target_name(in_, sd.patched);
      auto ts = target_.find(name, in_.source);
      if (!ts) {
        out_.refusals.push_back(fmt::format("{}: the changed function '{}' is not in the target: {}",
                                            in_.source, name, ts.error().message));
        continue;
      }
      const RelSymbol& orig = in_.original->symbol(*sd.original);
      if (ts->size != orig.size)
        out_.refusals.push_back(fmt::format(
            "{}: '{}' is {} bytes in the target but {} in the rebuild of the unmodified source: "
            "the source tree or the build does not match the target", in_.source, name, ts->size,
            orig.size));
      out_.replacements.push_back({name, in_.source, ts->value, ts->size,
                                   marker(new_section_.at(s.shndx)), s.value});
    }
  }

  void finish() {
    make_replacements();
    uint32_t got_section = 0;
    if (!got_.empty()) {
      elf::NewSection g;
      g.name = ".nines.got";
      g.type = SHT_PROGBITS;
      g.flags = SHF_ALLOC | SHF_WRITE;
      g.addralign = 8;
      g.data.assign(got_.size() * 8, '\0');
      out_.object.sections.push_back(std::move(g));
      got_section = static_cast<uint32_t>(out_.object.sections.size());
      section_symbol_[got_section] = add_local({"", STT_SECTION, STB_LOCAL, 0, got_section, 0, 0});
      add_local({marker(got_section), STT_NOTYPE, STB_LOCAL, 0, got_section, 0, 0});
      for (auto& f : got_fixups_) {
        f.marker = marker(got_section);
        out_.fixups.push_back(f);
      }
    }
    uint32_t nlocals = static_cast<uint32_t>(locals_.size());
    auto final_index = [&](Ref r) { return r.global ? nlocals + 1 + r.index : r.index; };
    for (auto& pr : pending_) {
      Ref sym = pr.sym;
      if (!sym.global && sym.index == 0) sym.index = section_symbol_.at(got_section);
      out_.object.sections[pr.section - 1].relocations.push_back(
          {pr.offset, pr.type, final_index(sym), pr.addend});
    }
    out_.object.symbols = std::move(locals_);
    for (auto& g : globals_out_) out_.object.symbols.push_back(std::move(g));
  }

  struct PendingReloc {
    uint32_t section;
    uint64_t offset;
    uint32_t type;
    Ref sym;
    int64_t addend;
  };

  const UnitInput& in_;
  const RelocatableObject& p_;
  const UnitPlan& plan_;
  const TargetSymbols& target_;
  const std::set<std::string>& globals_;
  int number_;
  EmittedUnit out_;
  std::map<uint32_t, uint32_t> new_section_;     // patched section -> output (1-based)
  std::map<uint32_t, uint32_t> section_symbol_;  // output section -> its local symbol
  std::map<uint32_t, Ref> named_;                // patched symbol -> output symbol
  std::map<std::string, Ref> undefined_;
  std::map<std::string, uint32_t> got_;
  std::map<std::pair<uint32_t, uint64_t>, uint32_t> labels_;
  std::vector<TargetFixup> got_fixups_;
  std::vector<elf::NewSymbol> locals_, globals_out_;
  std::vector<PendingReloc> pending_;
};

}  // namespace

EmittedUnit emit_unit(const UnitInput& in, const UnitPlan& plan, const TargetSymbols& target,
                      const std::set<std::string>& patch_globals, int number) {
  return Emitter(in, plan, target, patch_globals, number).run();
}

}  // namespace nines::gen
