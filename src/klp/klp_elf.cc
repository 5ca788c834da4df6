#include "klp/klp_elf.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::klp {
namespace {

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};
using ElfPtr = std::unique_ptr<Elf, ElfCloser>;

Error elf_error(const std::string& path, std::string_view what) {
  return make_error("rewrite livepatch module {}: {}: {}", path, what, elf_errmsg(-1));
}

// Appends strings to a string table section; returns each string's offset. The new
// buffer is owned by `keep` until elf_update has written the file.
Result<std::vector<size_t>> append_strings(Elf_Scn* scn, const std::vector<std::string>& strs,
                                           std::vector<std::unique_ptr<std::string>>& keep,
                                           const std::string& path) {
  Elf_Data* d = elf_getdata(scn, nullptr);
  if (!d) return elf_error(path, "read string table");
  auto buf = std::make_unique<std::string>(static_cast<const char*>(d->d_buf), d->d_size);
  std::vector<size_t> offs;
  for (const auto& s : strs) {
    offs.push_back(buf->size());
    buf->append(s);
    buf->push_back('\0');
  }
  d->d_buf = buf->data();
  d->d_size = buf->size();
  elf_flagdata(d, ELF_C_SET, ELF_F_DIRTY);
  keep.push_back(std::move(buf));
  return offs;
}

}  // namespace

Result<KlpRewriteReport> rewrite_livepatch_module(
    const std::string& path, const std::function<bool(const std::string&)>& exported,
    const SymbolResolver& resolve, const MetaWriter& meta_json) {
  elf_version(EV_CURRENT);
  Fd fd = NINES_TRY(Fd::open(path, O_RDWR | O_CLOEXEC));
  ElfPtr e(elf_begin(fd.get(), ELF_C_RDWR, nullptr));
  if (!e) return elf_error(path, "open");
  GElf_Ehdr eh;
  if (!gelf_getehdr(e.get(), &eh) || eh.e_type != ET_REL || eh.e_machine != EM_X86_64)
    return make_error("rewrite livepatch module {}: not an x86-64 relocatable object", path);
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(e.get(), &shstrndx) != 0) return elf_error(path, "section names");

  // The symbol table.
  Elf_Scn* symscn = nullptr;
  GElf_Shdr symsh{};
  for (Elf_Scn* s = elf_nextscn(e.get(), nullptr); s; s = elf_nextscn(e.get(), s)) {
    GElf_Shdr sh;
    if (gelf_getshdr(s, &sh) && sh.sh_type == SHT_SYMTAB) {
      symscn = s;
      symsh = sh;
      break;
    }
  }
  if (!symscn || symsh.sh_entsize == 0)
    return make_error("rewrite livepatch module {}: no symbol table", path);
  Elf_Data* symdata = elf_getdata(symscn, nullptr);
  if (!symdata) return elf_error(path, "read symbol table");
  const size_t nsyms = symdata->d_size / symsh.sh_entsize;

  // 1. Undefined symbols the loader cannot resolve become livepatch symbols.
  KlpRewriteReport report;
  std::map<size_t, KlpSymbol> klp_syms;  // symbol index -> what it becomes
  for (size_t i = 1; i < nsyms; ++i) {
    GElf_Sym s;
    if (!gelf_getsym(symdata, static_cast<int>(i), &s)) return elf_error(path, "read symbol");
    if (s.st_shndx != SHN_UNDEF || s.st_name == 0) continue;
    const char* nm = elf_strptr(e.get(), symsh.sh_link, s.st_name);
    if (!nm || !*nm || exported(nm)) continue;
    KlpSymbol k = NINES_TRY(resolve(nm));
    klp_syms.emplace(i, k);
  }
  std::vector<std::unique_ptr<std::string>> keep;
  if (!klp_syms.empty()) {
    std::vector<std::string> names;
    for (const auto& [i, k] : klp_syms) names.push_back(k.klp_name());
    std::vector<size_t> offs =
        NINES_TRY(append_strings(elf_getscn(e.get(), symsh.sh_link), names, keep, path));
    size_t j = 0;
    for (const auto& [i, k] : klp_syms) {
      GElf_Sym s;
      gelf_getsym(symdata, static_cast<int>(i), &s);
      s.st_name = static_cast<GElf_Word>(offs[j++]);
      s.st_shndx = kShnLivepatch;
      if (!gelf_update_sym(symdata, static_cast<int>(i), &s))
        return elf_error(path, "update symbol");
      report.symbols.push_back(k);
    }
    elf_flagdata(symdata, ELF_C_SET, ELF_F_DIRTY);
  }

  // 2. Their relocations move to .klp.rela.<obj>.<section>.
  struct NewRela {
    std::string name;
    size_t target = 0;
    std::vector<GElf_Rela> relas;
  };
  std::vector<NewRela> new_relas;
  std::vector<Elf_Scn*> rela_scns;
  for (Elf_Scn* s = elf_nextscn(e.get(), nullptr); s; s = elf_nextscn(e.get(), s)) {
    GElf_Shdr sh;
    if (gelf_getshdr(s, &sh) && sh.sh_type == SHT_RELA && sh.sh_link == elf_ndxscn(symscn))
      rela_scns.push_back(s);
  }
  for (Elf_Scn* s : rela_scns) {
    if (klp_syms.empty()) break;
    GElf_Shdr sh;
    gelf_getshdr(s, &sh);
    GElf_Shdr target_sh;
    Elf_Scn* target = elf_getscn(e.get(), sh.sh_info);
    if (!target || !gelf_getshdr(target, &target_sh) || !(target_sh.sh_flags & SHF_ALLOC)) continue;
    const char* tname = elf_strptr(e.get(), shstrndx, target_sh.sh_name);
    Elf_Data* d = elf_getdata(s, nullptr);
    if (!d || sh.sh_entsize == 0) continue;
    const size_t n = d->d_size / sh.sh_entsize;
    std::vector<GElf_Rela> kept;
    std::map<std::string, std::vector<GElf_Rela>> moved;  // object -> relocations
    for (size_t i = 0; i < n; ++i) {
      GElf_Rela r;
      if (!gelf_getrela(d, static_cast<int>(i), &r)) return elf_error(path, "read relocation");
      auto it = klp_syms.find(GELF_R_SYM(r.r_info));
      if (it == klp_syms.end())
        kept.push_back(r);
      else
        moved[it->second.object].push_back(r);
    }
    if (moved.empty()) continue;
    // Jump labels and static calls are set up by the module loader before livepatch
    // relocates anything: an entry pointing at a non-exported key would be read unrelocated.
    // References to vmlinux are the exception: the module loader applies them early
    // (klp_apply_section_relocs from apply_relocations, Linux 5.8 and later).
    const std::string_view tn = tname ? tname : "";
    const bool late = moved.size() > 1 || moved.begin()->first != kVmlinux;
    if (late && (tn == "__jump_table" || tn == ".static_call_sites")) {
      const KlpSymbol& k = klp_syms.at(GELF_R_SYM(moved.rbegin()->second.front().r_info));
      return make_error(
          "rewrite livepatch module {}: {} refers to '{}', which is not exported: "
          "static keys and static calls of the kernel cannot be used from patch "
          "code unless exported",
          path, tn, k.name);
    }
    for (size_t i = 0; i < kept.size(); ++i) gelf_update_rela(d, static_cast<int>(i), &kept[i]);
    d->d_size = kept.size() * sh.sh_entsize;
    elf_flagdata(d, ELF_C_SET, ELF_F_DIRTY);
    for (auto& [obj, relas] : moved)
      new_relas.push_back(
          {fmt::format(".klp.rela.{}.{}", obj, tname ? tname : ""), sh.sh_info, std::move(relas)});
  }

  // 3. New sections: the .klp.rela.* ones and .nines.meta, named in .shstrtab.
  std::vector<std::string> names;
  for (const auto& nr : new_relas) names.push_back(nr.name);
  names.push_back(".nines.meta");
  std::vector<size_t> name_offs =
      NINES_TRY(append_strings(elf_getscn(e.get(), shstrndx), names, keep, path));
  for (size_t k = 0; k < new_relas.size(); ++k) {
    NewRela& nr = new_relas[k];
    Elf_Scn* s = elf_newscn(e.get());
    if (!s) return elf_error(path, "add section " + nr.name);
    auto buf = std::make_unique<std::string>(nr.relas.size() * sizeof(Elf64_Rela), '\0');
    auto* out = reinterpret_cast<Elf64_Rela*>(buf->data());
    for (size_t i = 0; i < nr.relas.size(); ++i)
      out[i] = Elf64_Rela{nr.relas[i].r_offset, nr.relas[i].r_info, nr.relas[i].r_addend};
    Elf_Data* d = elf_newdata(s);
    d->d_buf = buf->data();
    d->d_size = buf->size();
    d->d_type = ELF_T_RELA;
    d->d_align = 8;
    d->d_version = EV_CURRENT;
    keep.push_back(std::move(buf));
    GElf_Shdr sh{};
    sh.sh_name = static_cast<GElf_Word>(name_offs[k]);
    sh.sh_type = SHT_RELA;
    sh.sh_flags = SHF_ALLOC | SHF_INFO_LINK | kShfRelaLivepatch;
    sh.sh_link = static_cast<GElf_Word>(elf_ndxscn(symscn));
    sh.sh_info = static_cast<GElf_Word>(nr.target);
    sh.sh_addralign = 8;
    sh.sh_entsize = sizeof(Elf64_Rela);
    if (!gelf_update_shdr(s, &sh)) return elf_error(path, "write section " + nr.name);
    report.sections.push_back(nr.name);
  }
  {
    Elf_Scn* s = elf_newscn(e.get());
    if (!s) return elf_error(path, "add section .nines.meta");
    auto buf = std::make_unique<std::string>(meta_json(report.symbols));
    Elf_Data* d = elf_newdata(s);
    d->d_buf = buf->data();
    d->d_size = buf->size();
    d->d_type = ELF_T_BYTE;
    d->d_align = 1;
    d->d_version = EV_CURRENT;
    keep.push_back(std::move(buf));
    GElf_Shdr sh{};
    sh.sh_name = static_cast<GElf_Word>(name_offs.back());
    sh.sh_type = SHT_PROGBITS;
    sh.sh_addralign = 1;
    if (!gelf_update_shdr(s, &sh)) return elf_error(path, "write section .nines.meta");
  }
  if (elf_update(e.get(), ELF_C_WRITE) < 0) return elf_error(path, "write");
  return report;
}

Result<KlpRewriteReport> inspect_livepatch_module(const std::string& path) {
  elf_version(EV_CURRENT);
  Fd fd = NINES_TRY(Fd::open(path, O_RDONLY | O_CLOEXEC));
  ElfPtr e(elf_begin(fd.get(), ELF_C_READ, nullptr));
  if (!e) return make_error("read livepatch module {}: {}", path, elf_errmsg(-1));
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(e.get(), &shstrndx) != 0)
    return make_error("read livepatch module {}: {}", path, elf_errmsg(-1));
  KlpRewriteReport r;
  for (Elf_Scn* s = elf_nextscn(e.get(), nullptr); s; s = elf_nextscn(e.get(), s)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(s, &sh)) continue;
    const char* nm = elf_strptr(e.get(), shstrndx, sh.sh_name);
    if (nm && starts_with(nm, ".klp.rela.") && (sh.sh_flags & kShfRelaLivepatch))
      r.sections.emplace_back(nm);
    if (sh.sh_type != SHT_SYMTAB || sh.sh_entsize == 0) continue;
    Elf_Data* d = elf_getdata(s, nullptr);
    size_t n = d ? d->d_size / sh.sh_entsize : 0;
    for (size_t i = 1; i < n; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(d, static_cast<int>(i), &sym) || sym.st_shndx != kShnLivepatch) continue;
      const char* sn = elf_strptr(e.get(), sh.sh_link, sym.st_name);
      if (!sn) continue;
      // ".klp.sym.<object>.<name>,<pos>"
      std::string_view v(sn);
      if (!starts_with(v, ".klp.sym.")) continue;
      v.remove_prefix(9);
      size_t dot = v.find('.'), comma = v.rfind(',');
      if (dot == std::string_view::npos || comma == std::string_view::npos || comma < dot) continue;
      r.symbols.push_back({std::string(v.substr(0, dot)),
                           std::string(v.substr(dot + 1, comma - dot - 1)),
                           parse_i64(v.substr(comma + 1)).value_or(-1)});
    }
  }
  return r;
}

}  // namespace nines::klp
