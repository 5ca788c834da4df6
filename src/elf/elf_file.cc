#include "elf/elf_file.h"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::elf {

namespace {

Error elf_error(const std::string& what, std::string_view op) {
  return make_error("{}: {}: {}", what, op, elf_errmsg(-1));
}

void init_libelf() {
  static std::once_flag once;
  std::call_once(once, [] { elf_version(EV_CURRENT); });
}

// Walks a note area and returns the NT_GNU_BUILD_ID descriptor, bounds-checked.
std::optional<std::vector<uint8_t>> find_build_id_note(std::string_view notes) {
  size_t off = 0;
  while (off + sizeof(Elf64_Nhdr) <= notes.size()) {
    Elf64_Nhdr nh;
    std::memcpy(&nh, notes.data() + off, sizeof nh);
    off += sizeof nh;
    uint64_t namesz = (static_cast<uint64_t>(nh.n_namesz) + 3) & ~uint64_t{3};
    uint64_t descsz = (static_cast<uint64_t>(nh.n_descsz) + 3) & ~uint64_t{3};
    if (namesz > notes.size() - off) return std::nullopt;
    std::string_view name = notes.substr(off, nh.n_namesz);
    off += namesz;
    if (nh.n_descsz > notes.size() - off) return std::nullopt;
    if (nh.n_type == NT_GNU_BUILD_ID && name == std::string_view("GNU\0", 4) &&
        nh.n_descsz > 0 && nh.n_descsz <= 64) {
      const auto* d = reinterpret_cast<const uint8_t*>(notes.data() + off);
      return std::vector<uint8_t>(d, d + nh.n_descsz);
    }
    if (descsz > notes.size() - off) return std::nullopt;
    off += descsz;
  }
  return std::nullopt;
}

}  // namespace

struct ElfFile::ElfHandle {
  Elf* elf = nullptr;
  ~ElfHandle() {
    if (elf) elf_end(elf);
  }
};

ElfFile::ElfFile(ElfFile&&) noexcept = default;
ElfFile& ElfFile::operator=(ElfFile&&) noexcept = default;
ElfFile::~ElfFile() = default;

Result<ElfFile> ElfFile::from_bytes(std::string bytes, std::string what) {
  init_libelf();
  ElfFile f;
  f.what_ = std::move(what);
  f.bytes_ = std::move(bytes);
  if (f.bytes_.size() < sizeof(Elf64_Ehdr) || std::memcmp(f.bytes_.data(), ELFMAG, SELFMAG) != 0)
    return make_error("{}: not an ELF file", f.what_);
  if (f.bytes_[EI_CLASS] != ELFCLASS64) return make_error("{}: not a 64-bit ELF file", f.what_);
  f.handle_ = std::make_unique<ElfHandle>();
  f.handle_->elf = elf_memory(f.bytes_.data(), f.bytes_.size());
  if (!f.handle_->elf) return elf_error(f.what_, "elf_memory");
  NINES_CHECK(f.parse());
  return f;
}

Result<ElfFile> ElfFile::open(const std::string& path) {
  std::string bytes = NINES_TRY(read_file(path, size_t{1} << 30));
  return from_bytes(std::move(bytes), path);
}

std::string ElfFile::build_id_hex() const { return to_hex(build_id_); }

uint64_t ElfFile::min_load_vaddr() const {
  uint64_t lo = UINT64_MAX;
  for (const auto& s : segments_)
    if (s.type == PT_LOAD && s.vaddr < lo) lo = s.vaddr;
  return lo == UINT64_MAX ? 0 : lo;
}

std::optional<std::string_view> ElfFile::section_data(std::string_view name) const {
  for (const auto& s : sections_) {
    if (s.name != name) continue;
    if (s.type == SHT_NOBITS) return std::nullopt;
    if (s.offset > bytes_.size() || s.size > bytes_.size() - s.offset) return std::nullopt;
    return std::string_view(bytes_).substr(s.offset, s.size);
  }
  return std::nullopt;
}

Status ElfFile::parse() {
  Elf* e = handle_->elf;
  if (elf_kind(e) != ELF_K_ELF) return make_error("{}: not an ELF object", what_);
  GElf_Ehdr eh;
  if (!gelf_getehdr(e, &eh)) return elf_error(what_, "read ELF header");
  e_type_ = eh.e_type;
  e_machine_ = eh.e_machine;

  size_t phnum = 0;
  if (elf_getphdrnum(e, &phnum) != 0) return elf_error(what_, "count program headers");
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(e, static_cast<int>(i), &ph)) return elf_error(what_, "read program header");
    segments_.push_back({ph.p_type, ph.p_flags, ph.p_offset, ph.p_vaddr, ph.p_filesz,
                         ph.p_memsz, ph.p_align});
  }

  size_t shstrndx = 0;
  if (elf_getshdrstrndx(e, &shstrndx) != 0) return elf_error(what_, "find section names");

  Elf_Scn* symtab_scn = nullptr;
  Elf_Scn* dynsym_scn = nullptr;
  Elf_Data* versym = nullptr;
  Elf_Scn* verdef_scn = nullptr;
  Elf_Scn* verneed_scn = nullptr;
  std::vector<Elf_Scn*> rela_scns;
  size_t dynsym_index = 0;

  for (Elf_Scn* scn = elf_nextscn(e, nullptr); scn; scn = elf_nextscn(e, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) return elf_error(what_, "read section header");
    const char* name = elf_strptr(e, shstrndx, sh.sh_name);
    sections_.push_back({name ? name : "", sh.sh_type, sh.sh_flags, sh.sh_addr, sh.sh_offset,
                         sh.sh_size});
    switch (sh.sh_type) {
      case SHT_SYMTAB: symtab_scn = scn; break;
      case SHT_DYNSYM: dynsym_scn = scn; dynsym_index = elf_ndxscn(scn); break;
      case SHT_GNU_versym: versym = elf_getdata(scn, nullptr); break;
      case SHT_GNU_verdef: verdef_scn = scn; break;
      case SHT_GNU_verneed: verneed_scn = scn; break;
      case SHT_RELA: rela_scns.push_back(scn); break;
      case SHT_NOTE:
        if (build_id_.empty() && sh.sh_offset <= bytes_.size() &&
            sh.sh_size <= bytes_.size() - sh.sh_offset) {
          if (auto id = find_build_id_note(std::string_view(bytes_).substr(sh.sh_offset, sh.sh_size)))
            build_id_ = *id;
        }
        break;
      default: break;
    }
  }
  // Objects without section headers still carry the build-id in a PT_NOTE segment.
  if (build_id_.empty()) {
    for (const auto& s : segments_) {
      if (s.type != PT_NOTE || s.offset > bytes_.size() || s.filesz > bytes_.size() - s.offset)
        continue;
      if (auto id = find_build_id_note(std::string_view(bytes_).substr(s.offset, s.filesz))) {
        build_id_ = *id;
        break;
      }
    }
  }

  // Version names by index: verdef for definitions, verneed for imports.
  std::vector<std::string> version_names;
  auto set_version = [&](size_t idx, const char* n) {
    if (idx > 0x7fff) return;
    if (version_names.size() <= idx) version_names.resize(idx + 1);
    version_names[idx] = n ? n : "";
  };
  if (verdef_scn) {
    GElf_Shdr sh;
    gelf_getshdr(verdef_scn, &sh);
    Elf_Data* d = elf_getdata(verdef_scn, nullptr);
    size_t off = 0;
    for (size_t i = 0; d && i < sh.sh_info; ++i) {
      GElf_Verdef vd;
      if (!gelf_getverdef(d, static_cast<int>(off), &vd)) break;
      GElf_Verdaux va;
      if (gelf_getverdaux(d, static_cast<int>(off + vd.vd_aux), &va))
        set_version(vd.vd_ndx, elf_strptr(e, sh.sh_link, va.vda_name));
      if (vd.vd_next == 0) break;
      off += vd.vd_next;
    }
  }
  if (verneed_scn) {
    GElf_Shdr sh;
    gelf_getshdr(verneed_scn, &sh);
    Elf_Data* d = elf_getdata(verneed_scn, nullptr);
    size_t off = 0;
    for (size_t i = 0; d && i < sh.sh_info; ++i) {
      GElf_Verneed vn;
      if (!gelf_getverneed(d, static_cast<int>(off), &vn)) break;
      size_t aoff = off + vn.vn_aux;
      for (size_t j = 0; j < vn.vn_cnt; ++j) {
        GElf_Vernaux va;
        if (!gelf_getvernaux(d, static_cast<int>(aoff), &va)) break;
        set_version(va.vna_other, elf_strptr(e, sh.sh_link, va.vna_name));
        if (va.vna_next == 0) break;
        aoff += va.vna_next;
      }
      if (vn.vn_next == 0) break;
      off += vn.vn_next;
    }
  }

  auto read_symbols = [&](Elf_Scn* scn, bool dynamic, std::vector<Symbol>& out) -> Status {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) return elf_error(what_, "read symbol table header");
    Elf_Data* d = elf_getdata(scn, nullptr);
    if (!d || sh.sh_entsize == 0) return {};
    size_t n = sh.sh_size / sh.sh_entsize;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      GElf_Sym s;
      if (!gelf_getsym(d, static_cast<int>(i), &s)) return elf_error(what_, "read symbol");
      Symbol sym;
      const char* nm = elf_strptr(e, sh.sh_link, s.st_name);
      sym.name = nm ? nm : "";
      sym.value = s.st_value;
      sym.size = s.st_size;
      sym.type = GELF_ST_TYPE(s.st_info);
      sym.bind = GELF_ST_BIND(s.st_info);
      sym.shndx = s.st_shndx;
      if (dynamic && versym) {
        GElf_Versym vs;
        if (gelf_getversym(versym, static_cast<int>(i), &vs)) {
          size_t idx = vs & 0x7fff;
          sym.version_hidden = (vs & 0x8000) != 0;
          if (idx >= 2 && idx < version_names.size()) sym.version = version_names[idx];
        }
      }
      out.push_back(std::move(sym));
    }
    return {};
  };
  if (symtab_scn) NINES_CHECK(read_symbols(symtab_scn, false, symtab_));
  if (dynsym_scn) NINES_CHECK(read_symbols(dynsym_scn, true, dynsym_));

  for (Elf_Scn* scn : rela_scns) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    // Only relocations that the dynamic loader applies (their symbols are in .dynsym);
    // a relocatable object's .rela.text refers to .symtab and is not ours to apply.
    if (e_type_ == ET_REL || (dynsym_scn && sh.sh_link != dynsym_index && sh.sh_link != 0)) continue;
    Elf_Data* d = elf_getdata(scn, nullptr);
    if (!d || sh.sh_entsize == 0) continue;
    size_t n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < n; ++i) {
      GElf_Rela r;
      if (!gelf_getrela(d, static_cast<int>(i), &r)) return elf_error(what_, "read relocation");
      DynReloc dr;
      dr.offset = r.r_offset;
      dr.type = static_cast<uint32_t>(GELF_R_TYPE(r.r_info));
      dr.addend = r.r_addend;
      dr.sym_index = static_cast<uint32_t>(GELF_R_SYM(r.r_info));
      if (dr.sym_index != 0) {
        if (dr.sym_index >= dynsym_.size())
          return make_error("{}: relocation names symbol {} of {}", what_, dr.sym_index, dynsym_.size());
        dr.sym_name = dynsym_[dr.sym_index].name;
        dr.sym_version = dynsym_[dr.sym_index].version;
      }
      dynrelocs_.push_back(std::move(dr));
    }
  }

  // DT_SONAME
  for (const auto& s : sections_) {
    if (s.type != SHT_DYNAMIC) continue;
    for (Elf_Scn* scn = elf_nextscn(e, nullptr); scn; scn = elf_nextscn(e, scn)) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC) continue;
      Elf_Data* d = elf_getdata(scn, nullptr);
      size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
      for (size_t i = 0; d && i < n; ++i) {
        GElf_Dyn dyn;
        if (!gelf_getdyn(d, static_cast<int>(i), &dyn)) break;
        if (dyn.d_tag == DT_SONAME) {
          const char* so = elf_strptr(e, sh.sh_link, dyn.d_un.d_val);
          if (so) soname_ = so;
        }
      }
    }
    break;
  }
  return {};
}

std::optional<std::vector<uint8_t>> read_build_id(int fd) {
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh)) return std::nullopt;
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256)
    return std::nullopt;
  Elf64_Phdr ph[256];
  size_t len = sizeof(Elf64_Phdr) * eh.e_phnum;
  if (pread(fd, ph, len, static_cast<off_t>(eh.e_phoff)) != static_cast<ssize_t>(len))
    return std::nullopt;
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    if (ph[i].p_type != PT_NOTE || ph[i].p_filesz == 0 || ph[i].p_filesz > 65536) continue;
    std::string notes(ph[i].p_filesz, '\0');
    if (pread(fd, notes.data(), notes.size(), static_cast<off_t>(ph[i].p_offset)) !=
        static_cast<ssize_t>(notes.size()))
      continue;
    if (auto id = find_build_id_note(notes)) return id;
  }
  return std::nullopt;
}

}  // namespace nines::elf
