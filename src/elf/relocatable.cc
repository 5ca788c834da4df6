#include "elf/relocatable.h"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "core/fd.h"

namespace nines::elf {

namespace {

Error elf_error(const std::string& what, std::string_view op) {
  return make_error("{}: {}: {}", what, op, elf_errmsg(-1));
}

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};
using ElfPtr = std::unique_ptr<Elf, ElfCloser>;

}  // namespace

bool RelSection::alloc() const { return flags & SHF_ALLOC; }
bool RelSection::exec() const { return flags & SHF_EXECINSTR; }
bool RelSection::nobits() const { return type == SHT_NOBITS; }

bool RelSymbol::defined() const {
  return shndx != SHN_UNDEF && shndx < SHN_LORESERVE;
}

Result<RelocatableObject> RelocatableObject::open(const std::string& path) {
  std::string bytes = NINES_TRY(read_file(path, size_t{1} << 30));
  return from_bytes(bytes, path);
}

Result<RelocatableObject> RelocatableObject::from_bytes(std::string_view bytes,
                                                        const std::string& what) {
  elf_version(EV_CURRENT);
  RelocatableObject o;
  o.what_ = what;
  if (bytes.size() < sizeof(Elf64_Ehdr) || std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0)
    return make_error("{}: not an ELF file", what);
  if (bytes[EI_CLASS] != ELFCLASS64) return make_error("{}: not a 64-bit ELF file", what);
  ElfPtr e(elf_memory(const_cast<char*>(bytes.data()), bytes.size()));
  if (!e) return elf_error(what, "elf_memory");
  GElf_Ehdr eh;
  if (!gelf_getehdr(e.get(), &eh)) return elf_error(what, "read ELF header");
  if (eh.e_type != ET_REL) return make_error("{}: not a relocatable object (ET_REL)", what);
  size_t shnum = 0, shstrndx = 0;
  if (elf_getshdrnum(e.get(), &shnum) != 0) return elf_error(what, "count sections");
  if (elf_getshdrstrndx(e.get(), &shstrndx) != 0) return elf_error(what, "find section names");

  o.sections_.resize(shnum);
  std::vector<std::pair<uint32_t, Elf_Scn*>> relas;
  Elf_Scn* symtab = nullptr;
  uint32_t symtab_link = 0;
  for (Elf_Scn* scn = elf_nextscn(e.get(), nullptr); scn; scn = elf_nextscn(e.get(), scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) return elf_error(what, "read section header");
    size_t i = elf_ndxscn(scn);
    if (i >= shnum) return make_error("{}: section index {} out of range", what, i);
    RelSection& s = o.sections_[i];
    s.index = static_cast<uint32_t>(i);
    const char* name = elf_strptr(e.get(), shstrndx, sh.sh_name);
    s.name = name ? name : "";
    s.type = sh.sh_type;
    s.flags = sh.sh_flags;
    s.size = sh.sh_size;
    s.addralign = sh.sh_addralign ? sh.sh_addralign : 1;
    s.entsize = sh.sh_entsize;
    s.link = sh.sh_link;
    s.info = sh.sh_info;
    if (sh.sh_type != SHT_NOBITS && sh.sh_size > 0) {
      if (sh.sh_offset > bytes.size() || sh.sh_size > bytes.size() - sh.sh_offset)
        return make_error("{}: section {} lies outside the file", what, s.name);
      s.data.assign(bytes.substr(sh.sh_offset, sh.sh_size));
    }
    if (sh.sh_type == SHT_RELA) relas.emplace_back(static_cast<uint32_t>(i), scn);
    if (sh.sh_type == SHT_SYMTAB) {
      symtab = scn;
      symtab_link = sh.sh_link;
    }
    if (sh.sh_type == SHT_REL)
      return make_error("{}: SHT_REL section {} (x86-64 objects use RELA)", what, s.name);
  }

  if (symtab) {
    Elf_Data* d = elf_getdata(symtab, nullptr);
    if (!d) return elf_error(what, "read .symtab");
    size_t n = d->d_size / sizeof(Elf64_Sym);
    o.symbols_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(d, static_cast<int>(i), &sym)) return elf_error(what, "read symbol");
      RelSymbol& s = o.symbols_[i];
      s.index = static_cast<uint32_t>(i);
      const char* name = elf_strptr(e.get(), symtab_link, sym.st_name);
      s.name = name ? name : "";
      s.type = GELF_ST_TYPE(sym.st_info);
      s.bind = GELF_ST_BIND(sym.st_info);
      s.visibility = GELF_ST_VISIBILITY(sym.st_other);
      s.shndx = sym.st_shndx;
      s.value = sym.st_value;
      s.size = sym.st_size;
      if (s.defined() && s.shndx >= shnum)
        return make_error("{}: symbol {} in section {} out of range", what, s.name, s.shndx);
      if (s.type == STT_SECTION && s.defined()) s.name = o.sections_[s.shndx].name;
      if (s.type == STT_FILE && o.source_file_.empty()) o.source_file_ = s.name;
    }
  }

  for (auto [ri, scn] : relas) {
    const RelSection& rs = o.sections_[ri];
    if (rs.info == 0 || rs.info >= shnum)
      return make_error("{}: {} applies to section {} out of range", what, rs.name, rs.info);
    RelSection& target = o.sections_[rs.info];
    Elf_Data* d = elf_getdata(scn, nullptr);
    if (!d) return elf_error(what, "read " + rs.name);
    size_t n = d->d_size / sizeof(Elf64_Rela);
    target.relocations.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      GElf_Rela r;
      if (!gelf_getrela(d, static_cast<int>(i), &r)) return elf_error(what, "read " + rs.name);
      Relocation rel{r.r_offset, static_cast<uint32_t>(GELF_R_TYPE(r.r_info)),
                     static_cast<uint32_t>(GELF_R_SYM(r.r_info)), r.r_addend};
      if (rel.symbol >= o.symbols_.size())
        return make_error("{}: relocation in {} names symbol {} out of range", what, rs.name,
                          rel.symbol);
      if (rel.offset >= target.size)
        return make_error("{}: relocation at {:#x} lies outside {}", what, rel.offset,
                          target.name);
      target.relocations.push_back(rel);
    }
    std::sort(target.relocations.begin(), target.relocations.end(),
              [](const Relocation& a, const Relocation& b) { return a.offset < b.offset; });
  }

  // Group membership (COMDAT): the generator refuses to patch grouped code it cannot
  // reason about, so it needs to know.
  for (const auto& g : o.sections_) {
    if (g.type != SHT_GROUP) continue;
    for (size_t off = 4; off + 4 <= g.data.size(); off += 4) {
      uint32_t member;
      std::memcpy(&member, g.data.data() + off, 4);
      if (member < shnum) o.sections_[member].group = g.index;
    }
  }
  return o;
}

const RelSection* RelocatableObject::find_section(std::string_view name) const {
  for (const auto& s : sections_)
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<const RelSymbol*> RelocatableObject::symbols_in(uint32_t section) const {
  std::vector<const RelSymbol*> out;
  for (const auto& s : symbols_)
    if (s.defined() && s.shndx == section && s.type != STT_SECTION && s.type != STT_FILE)
      out.push_back(&s);
  std::sort(out.begin(), out.end(),
            [](const RelSymbol* a, const RelSymbol* b) { return a->value < b->value; });
  return out;
}

// ---------------------------------------------------------------------------------------
// Writer

namespace {

// A string table under construction; offset 0 is the empty name.
struct StrTab {
  std::string bytes{'\0'};
  std::map<std::string, uint32_t> seen;
  uint32_t add(const std::string& s) {
    if (s.empty()) return 0;
    if (auto it = seen.find(s); it != seen.end()) return it->second;
    uint32_t off = static_cast<uint32_t>(bytes.size());
    bytes += s;
    bytes.push_back('\0');
    seen.emplace(s, off);
    return off;
  }
};

Elf_Scn* add_section(Elf* e, uint32_t name, uint32_t type, uint64_t flags, uint64_t align,
                     uint64_t entsize, const void* data, size_t size, uint32_t link, uint32_t info,
                     Elf_Type dtype) {
  Elf_Scn* s = elf_newscn(e);
  if (!s) return nullptr;
  Elf_Data* d = elf_newdata(s);
  if (!d) return nullptr;
  d->d_buf = const_cast<void*>(data);
  d->d_size = size;
  d->d_align = align ? align : 1;
  d->d_type = dtype;
  d->d_version = EV_CURRENT;
  GElf_Shdr sh;
  if (!gelf_getshdr(s, &sh)) return nullptr;
  sh.sh_name = name;
  sh.sh_type = type;
  sh.sh_flags = flags;
  sh.sh_addralign = align ? align : 1;
  sh.sh_entsize = entsize;
  sh.sh_link = link;
  sh.sh_info = info;
  sh.sh_size = size;
  if (!gelf_update_shdr(s, &sh)) return nullptr;
  return s;
}

}  // namespace

Status write_relocatable(const NewObject& obj, const std::string& path) {
  elf_version(EV_CURRENT);
  size_t nsec = obj.sections.size();
  // Layout of section indexes: 1..nsec the sections, then .symtab, .strtab, one .rela per
  // section with relocations, .shstrtab last.
  uint32_t symtab_index = static_cast<uint32_t>(nsec + 1);
  uint32_t strtab_index = symtab_index + 1;

  size_t first_global = obj.symbols.size() + 1;
  for (size_t i = 0; i < obj.symbols.size(); ++i) {
    if (obj.symbols[i].bind != STB_LOCAL) {
      if (first_global == obj.symbols.size() + 1) first_global = i + 1;
    } else if (first_global != obj.symbols.size() + 1) {
      return make_error("{}: local symbol {} after a global one", path, obj.symbols[i].name);
    }
  }

  StrTab shstr, str;
  std::vector<Elf64_Sym> syms(obj.symbols.size() + 1);
  std::memset(syms.data(), 0, sizeof(Elf64_Sym));
  for (size_t i = 0; i < obj.symbols.size(); ++i) {
    const NewSymbol& s = obj.symbols[i];
    if (s.section > nsec) return make_error("{}: symbol {} in section {} out of range", path, s.name, s.section);
    Elf64_Sym& out = syms[i + 1];
    out.st_name = s.type == STT_SECTION ? 0 : str.add(s.name);
    out.st_info = ELF64_ST_INFO(s.bind, s.type);
    out.st_other = s.visibility;
    out.st_shndx = static_cast<uint16_t>(s.section);
    out.st_value = s.value;
    out.st_size = s.size;
  }

  std::vector<std::vector<Elf64_Rela>> relas(nsec);
  for (size_t i = 0; i < nsec; ++i)
    for (const auto& r : obj.sections[i].relocations) {
      if (r.symbol == 0 || r.symbol > obj.symbols.size())
        return make_error("{}: relocation in {} names symbol {} out of range", path,
                          obj.sections[i].name, r.symbol);
      relas[i].push_back({r.offset, ELF64_R_INFO(r.symbol, r.type), r.addend});
    }

  Fd fd = NINES_TRY(Fd::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ElfPtr e(elf_begin(fd.get(), ELF_C_WRITE, nullptr));
  if (!e) return elf_error(path, "elf_begin");
  Elf64_Ehdr* eh = elf64_newehdr(e.get());
  if (!eh) return elf_error(path, "new ELF header");
  eh->e_ident[EI_DATA] = ELFDATA2LSB;
  eh->e_ident[EI_OSABI] = ELFOSABI_NONE;
  eh->e_type = ET_REL;
  eh->e_machine = obj.machine;
  eh->e_version = EV_CURRENT;

  // Names first: the buffers handed to libelf must stay put until elf_update.
  std::vector<uint32_t> sec_names(nsec);
  for (size_t i = 0; i < nsec; ++i) sec_names[i] = shstr.add(obj.sections[i].name);
  uint32_t symtab_name = shstr.add(".symtab"), strtab_name = shstr.add(".strtab");
  std::vector<uint32_t> rela_names(nsec);
  for (size_t i = 0; i < nsec; ++i)
    if (!relas[i].empty()) rela_names[i] = shstr.add(".rela" + obj.sections[i].name);
  uint32_t shstrtab_name = shstr.add(".shstrtab");

  for (size_t i = 0; i < nsec; ++i) {
    const NewSection& s = obj.sections[i];
    bool nobits = s.type == SHT_NOBITS;
    Elf_Scn* scn = add_section(e.get(), sec_names[i], s.type, s.flags, s.addralign, s.entsize,
                               nobits ? nullptr : s.data.data(), nobits ? s.size : s.data.size(),
                               0, 0, ELF_T_BYTE);
    if (!scn) return elf_error(path, "add section " + s.name);
  }
  if (!add_section(e.get(), symtab_name, SHT_SYMTAB, 0, 8, sizeof(Elf64_Sym), syms.data(),
                   syms.size() * sizeof(Elf64_Sym), strtab_index,
                   static_cast<uint32_t>(first_global), ELF_T_SYM))
    return elf_error(path, "add .symtab");
  if (!add_section(e.get(), strtab_name, SHT_STRTAB, 0, 1, 0, str.bytes.data(), str.bytes.size(),
                   0, 0, ELF_T_BYTE))
    return elf_error(path, "add .strtab");
  for (size_t i = 0; i < nsec; ++i) {
    if (relas[i].empty()) continue;
    if (!add_section(e.get(), rela_names[i], SHT_RELA, SHF_INFO_LINK, 8, sizeof(Elf64_Rela),
                     relas[i].data(), relas[i].size() * sizeof(Elf64_Rela), symtab_index,
                     static_cast<uint32_t>(i + 1), ELF_T_RELA))
      return elf_error(path, "add .rela" + obj.sections[i].name);
  }
  Elf_Scn* shs = add_section(e.get(), shstrtab_name, SHT_STRTAB, 0, 1, 0, shstr.bytes.data(),
                             shstr.bytes.size(), 0, 0, ELF_T_BYTE);
  if (!shs) return elf_error(path, "add .shstrtab");
  eh->e_shstrndx = static_cast<uint16_t>(elf_ndxscn(shs));
  if (elf_update(e.get(), ELF_C_WRITE) < 0) return elf_error(path, "write");
  return {};
}

}  // namespace nines::elf
