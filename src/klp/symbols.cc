#include "klp/symbols.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::klp {

std::string KlpSymbol::klp_name() const {
  return fmt::format(".klp.sym.{}.{},{}", object, name, pos);
}

void KernelSymbols::add_symvers(std::string_view text) {
  for (auto line : split(text, '\n')) {
    auto f = split(line, '\t');
    if (f.size() >= 2 && !f[1].empty()) exported_.emplace(f[1]);
  }
}

void KernelSymbols::add_system_map(std::string_view text) {
  for (auto line : split(text, '\n')) {
    auto f = split(trim(line), ' ');
    if (f.size() < 3 || f[1].size() != 1) continue;
    // kallsyms holds text, data, bss and rodata symbols; absolute ones (A) and the
    // placeholder Debian ships (a single B at -1) do not count.
    if (std::string_view("tTdDbBrRvVwW").find(f[1][0]) == std::string_view::npos) continue;
    if (f[0] == "ffffffffffffffff") continue;
    ++vmlinux_[std::string(f[2])];
    has_system_map_ = true;
  }
}

void KernelSymbols::add_module_symbols(const std::string& module,
                                       const std::vector<std::string>& names) {
  auto& m = modules_[module_name_of(module)];
  for (const auto& n : names) ++m[n];
}

Status KernelSymbols::add_module_file(const std::string& module, const std::string& ko_path) {
  Fd fd = NINES_TRY(Fd::open(ko_path, O_RDONLY | O_CLOEXEC));
  elf_version(EV_CURRENT);
  Elf* e = elf_begin(fd.get(), ELF_C_READ, nullptr);
  if (!e) return make_error("read symbols of {}: {}", ko_path, elf_errmsg(-1));
  std::vector<std::string> names;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(e, scn)) != nullptr) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || sh.sh_entsize == 0) continue;
    Elf_Data* d = elf_getdata(scn, nullptr);
    size_t n = d ? d->d_size / sh.sh_entsize : 0;
    for (size_t i = 1; i < n; ++i) {
      GElf_Sym s;
      if (!gelf_getsym(d, static_cast<int>(i), &s) || s.st_shndx == SHN_UNDEF) continue;
      if (GELF_ST_TYPE(s.st_info) == STT_SECTION || GELF_ST_TYPE(s.st_info) == STT_FILE) continue;
      const char* nm = elf_strptr(e, sh.sh_link, s.st_name);
      if (nm && *nm) names.emplace_back(nm);
    }
  }
  elf_end(e);
  add_module_symbols(module, names);
  return {};
}

int KernelSymbols::count(const std::string& object, const std::string& name) const {
  if (object == kVmlinux) {
    auto it = vmlinux_.find(name);
    return it == vmlinux_.end() ? 0 : it->second;
  }
  auto m = modules_.find(module_name_of(object));
  if (m == modules_.end()) return 0;
  auto it = m->second.find(name);
  return it == m->second.end() ? 0 : it->second;
}

Result<KlpSymbol> KernelSymbols::resolve(const std::string& name,
                                         const std::vector<std::string>& candidates,
                                         const std::vector<SymbolHint>& hints) const {
  for (const auto& h : hints)
    if (h.symbol == name) return KlpSymbol{h.object, name, h.pos};
  std::vector<std::string> found;
  if (count(kVmlinux, name) > 0) found.push_back(kVmlinux);
  for (const auto& c : candidates)
    if (c != kVmlinux && count(c, name) > 0) found.push_back(c);
  if (found.size() > 1) {
    return make_error(
        "symbol '{}' is defined in {} and {}: say which with NINES_KSYM(object, {}, pos)", name,
        found[0], found[1], name);
  }
  if (found.empty()) {
    if (!has_system_map_) return KlpSymbol{kVmlinux, name, 0};
    std::string where = "vmlinux (System.map)";
    for (const auto& c : candidates)
      if (c != kVmlinux) where += ", " + c;
    return make_error("symbol '{}' is neither exported (Module.symvers) nor defined in {}", name,
                      where);
  }
  int n = count(found[0], name);
  if (n > 1) {
    return make_error(
        "symbol '{}' is defined {} times in {}: say which with NINES_KSYM({}, {}, pos)", name, n,
        found[0], found[0], name);
  }
  return KlpSymbol{found[0], name, 0};
}

Result<int64_t> KernelSymbols::function_pos(const std::string& object, const std::string& name,
                                            const std::vector<SymbolHint>& hints) const {
  for (const auto& h : hints)
    if (h.symbol == name && h.object == object) return h.pos;
  bool known = object == kVmlinux ? has_system_map_ : knows_module(object);
  if (!known) return int64_t{0};
  int n = count(object, name);
  if (n == 0) {
    // gcc may have renamed a static function it specialised: say so.
    std::vector<std::string> variants;
    const std::string prefix = name + ".";
    auto scan = [&](const std::unordered_map<std::string, int>& m) {
      for (const auto& [sym, c] : m)
        if (sym.compare(0, prefix.size(), prefix) == 0) variants.push_back(sym);
    };
    if (object == kVmlinux)
      scan(vmlinux_);
    else if (auto it = modules_.find(module_name_of(object)); it != modules_.end())
      scan(it->second);
    std::sort(variants.begin(), variants.end());
    if (variants.empty()) return make_error("{} has no function '{}' to replace", object, name);
    std::string list;
    for (const auto& v : variants) list += (list.empty() ? "" : ", ") + v;
    return make_error(
        "{} has no function '{}' to replace, but has {}: gcc specialised it; "
        "replace that name (NINES_REPLACE({}, ...))",
        object, name, list, variants.front());
  }
  if (n > 1) {
    return make_error(
        "function '{}' is defined {} times in {}: say which with NINES_KSYM({}, {}, pos)", name, n,
        object, object, name);
  }
  return int64_t{0};
}

}  // namespace nines::klp
