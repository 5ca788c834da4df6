#include "ulp/process_view.h"

#include <elf.h>
#include <fcntl.h>

#include "core/fd.h"
#include "core/strings.h"
#include "proc/memory.h"

namespace nines::ulp {

static auto key_of(const proc::MappedObject& o) { return std::make_tuple(o.dev_major, o.dev_minor, o.inode); }

static std::string open_path(pid_t pid, const proc::MappedObject& obj) {
  return obj.maps.front().map_files_path(pid);
}

Result<ElfCache::Entry> ElfCache::get(pid_t pid, const proc::MappedObject& obj) {
  auto k = key_of(obj);
  if (auto it = parsed_.find(k); it != parsed_.end()) return it->second;
  std::string bytes = NINES_TRY(read_file(open_path(pid, obj), size_t{1} << 30));
  auto elf = NINES_TRY(elf::ElfFile::from_bytes(std::move(bytes), obj.path));
  Entry e;
  e.elf = std::make_shared<elf::ElfFile>(std::move(elf));
  e.symbols = std::make_shared<SymbolTable>(SymbolTable::of(*e.elf));
  parsed_.emplace(k, e);
  return e;
}

std::optional<std::string> ElfCache::build_id(pid_t pid, const proc::MappedObject& obj) {
  auto k = key_of(obj);
  if (auto it = build_ids_.find(k); it != build_ids_.end()) return it->second;
  auto fd = Fd::open(open_path(pid, obj), O_RDONLY);
  if (!fd) return std::nullopt;
  auto id = elf::read_build_id(fd->get());
  std::string hex = id ? to_hex(*id) : std::string();
  build_ids_.emplace(k, hex);
  return hex;
}

Result<ProcessView> ProcessView::inspect(pid_t pid, ElfCache& cache) {
  ProcessView v;
  v.pid_ = pid;
  v.cache_ = &cache;
  v.maps_ = NINES_TRY(proc::read_maps(pid));
  for (auto& obj : proc::group_objects(v.maps_)) {
    if (starts_with(obj.path, "/memfd:") || obj.offset0_start == 0) continue;
    // The load bias is the start of the offset-0 mapping minus the page-aligned p_vaddr of
    // the segment at file offset 0: 0 for non-PIE executables, the mapping start for PIE
    // and shared objects. We read p_vaddr from the ELF header in memory.
    LoadedObject lo;
    lo.mapped = std::move(obj);
    v.objects_.push_back(std::move(lo));
  }
  auto mem = NINES_TRY(proc::ProcessMemory::open(pid, false));
  for (auto& lo : v.objects_) {
    Elf64_Ehdr eh;
    if (!mem.read(lo.mapped.offset0_start, &eh, sizeof eh) ||
        std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_phnum == 0 || eh.e_phnum > 256) {
      lo.base = lo.mapped.offset0_start;
      continue;
    }
    std::vector<Elf64_Phdr> ph(eh.e_phnum);
    uint64_t lowest = UINT64_MAX;
    if (eh.e_phoff < 4096 &&
        mem.read(lo.mapped.offset0_start + eh.e_phoff, ph.data(), ph.size() * sizeof(Elf64_Phdr))) {
      for (const auto& p : ph)
        if (p.p_type == PT_LOAD && p.p_vaddr < lowest) lowest = p.p_vaddr;
    }
    if (lowest == UINT64_MAX) lowest = 0;
    lo.base = lo.mapped.offset0_start - (lowest & ~uint64_t{0xfff});
  }
  return v;
}

Result<const LoadedObject*> ProcessView::find_target(const std::string& name, const std::string& build_id) {
  std::vector<std::string> same_name;
  for (const auto& o : objects_) {
    if (basename_of(o.mapped.path) != name) continue;
    auto id = cache_->build_id(pid_, o.mapped);
    if (id && *id == build_id) return &o;
    same_name.push_back(fmt::format("{} (build-id {})", o.mapped.path, id && !id->empty() ? *id : "none"));
  }
  for (const auto& o : objects_) {
    auto id = cache_->build_id(pid_, o.mapped);
    if (id && *id == build_id) return &o;
  }
  if (!same_name.empty())
    return make_error("pid {} maps {}, but the patch is for build-id {}: build-id mismatch, "
                      "nothing applied", pid_, fmt::join(same_name, ", "), build_id);
  return make_error("pid {} does not map {} (build-id {})", pid_, name, build_id);
}

std::optional<uint64_t> ProcessView::resolved_ifunc(const LoadedObject& obj, const elf::Symbol& sym) {
  auto mem = proc::ProcessMemory::open(pid_, false);
  if (!mem) return std::nullopt;
  auto in_exec = [&](uint64_t a) {
    for (const auto& m : maps_)
      if (m.exec && a >= m.start && a < m.end) return true;
    return false;
  };
  for (const auto& lo : objects_) {
    auto e = cache_->get(pid_, lo.mapped);
    if (!e) continue;
    for (const auto& r : e->elf->dynamic_relocs()) {
      bool match = false;
      if ((r.type == R_X86_64_JUMP_SLOT || r.type == R_X86_64_GLOB_DAT) && r.sym_name == sym.name)
        match = true;
      if (r.type == R_X86_64_IRELATIVE && &lo == &obj &&
          static_cast<uint64_t>(r.addend) == sym.value)
        match = true;
      if (!match) continue;
      uint64_t slot = 0;
      if (!mem->read(lo.base + r.offset, &slot, sizeof slot)) continue;
      if (slot != 0 && slot != obj.base + sym.value && in_exec(slot)) return slot;
    }
  }
  return std::nullopt;
}

Result<uint64_t> ProcessView::resolve(const std::string& name, const std::string& version,
                                      const LoadedObject* preferred) {
  if (preferred) {
    auto e = NINES_TRY(cache_->get(pid_, preferred->mapped));
    auto s = e.symbols->find(name, preferred->mapped.path);
    if (s && (version.empty() || s->version.empty() || s->version == version)) {
      if (s->type == STT_GNU_IFUNC) {
        if (auto impl = resolved_ifunc(*preferred, *s)) return *impl;
        return make_error("pid {}: '{}' is an IFUNC in {} and no loaded object shows which "
                          "implementation the process uses", pid_, name, preferred->mapped.path);
      }
      return preferred->base + s->value;
    }
  }
  for (const auto& lo : objects_) {
    if (&lo == preferred) continue;
    auto e = cache_->get(pid_, lo.mapped);
    if (!e) continue;
    const elf::Symbol* best = nullptr;
    for (const auto& s : e->elf->dynamic_symbols()) {
      if (!s.defined() || s.name != name || (s.bind != STB_GLOBAL && s.bind != STB_WEAK)) continue;
      if (!version.empty() && !s.version.empty() && s.version != version) continue;
      if (version.empty() && s.version_hidden) {
        if (!best) best = &s;
        continue;
      }
      best = &s;
      if (!s.version_hidden) break;
    }
    if (!best) continue;
    if (best->type == STT_GNU_IFUNC) {
      if (auto impl = resolved_ifunc(lo, *best)) return *impl;
      return make_error("pid {}: '{}' is an IFUNC in {} and no loaded object shows which "
                        "implementation the process uses", pid_, name, lo.mapped.path);
    }
    return lo.base + best->value;
  }
  return make_error("pid {}: symbol '{}'{} is not defined by any object the process maps", pid_,
                    name, version.empty() ? "" : "@" + version);
}

}  // namespace nines::ulp
