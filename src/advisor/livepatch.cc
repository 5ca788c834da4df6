#include "advisor/livepatch.h"

#include <dirent.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <span>

#include "bundle/bundle.h"
#include "core/fd.h"
#include "core/strings.h"

namespace nines::advisor {
namespace {

constexpr uint32_t kNtGnuBuildId = 3;

// Looks for NT_GNU_BUILD_ID in one note blob.
std::optional<std::string> build_id_in(Elf_Data* data) {
  if (!data || !data->d_buf) return std::nullopt;
  size_t off = 0;
  GElf_Nhdr nh;
  size_t name_off = 0, desc_off = 0;
  while (off < data->d_size) {
    size_t next = gelf_getnote(data, off, &nh, &name_off, &desc_off);
    if (next == 0) break;
    const char* base = static_cast<const char*>(data->d_buf);
    if (nh.n_type == kNtGnuBuildId && nh.n_namesz == 4 &&
        std::memcmp(base + name_off, "GNU", 4) == 0)
      return to_hex(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(base + desc_off), nh.n_descsz));
    off = next;
  }
  return std::nullopt;
}

}  // namespace

Result<std::string> read_build_id(const std::string& path) {
  Fd fd = NINES_TRY(Fd::open(path, O_RDONLY));
  elf_version(EV_CURRENT);
  Elf* elf = elf_begin(fd.get(), ELF_C_READ_MMAP, nullptr);
  if (!elf) return make_error("read the build-id of {}: {}", path, elf_errmsg(-1));
  std::optional<std::string> id;
  Elf_Scn* scn = nullptr;
  while (!id && (scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_NOTE)
      id = build_id_in(elf_getdata(scn, nullptr));
  }
  size_t phnum = 0;
  if (!id && elf_getphdrnum(elf, &phnum) == 0) {
    for (size_t i = 0; i < phnum && !id; ++i) {
      GElf_Phdr ph;
      if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_NOTE) continue;
      id = build_id_in(
          elf_getdata_rawchunk(elf, static_cast<int64_t>(ph.p_offset), ph.p_filesz, ELF_T_NHDR));
    }
  }
  elf_end(elf);
  if (!id) return make_error("read the build-id of {}: no build-id note", path);
  return *id;
}

void mark_patched(std::vector<StaleProcess>& procs, const RegistryReader& reader,
                  std::vector<std::string>* warnings, bool only_anonymous_code) {
  if (!reader) return;
  for (StaleProcess& p : procs) {
    if (only_anonymous_code && !p.anonymous_code) continue;
    auto patches = reader(p.pid);
    if (!patches.ok()) {
      if (warnings) warnings->push_back(patches.error().message);
      continue;
    }
    if (patches->empty()) continue;
    for (StaleObject& o : p.objects) {
      if (!o.interpreter.empty()) continue;  // a source file: nines patches no interpreted code
      if (o.build_id.empty()) {
        if (auto id = read_build_id(o.map_file); id.ok()) o.build_id = *id;
      }
      std::string name = basename_of(o.path);
      const PatchInProcess* best = nullptr;
      for (const PatchInProcess& patch : *patches) {
        bool match = !patch.target_build_id.empty()
                         ? !o.build_id.empty() && patch.target_build_id == o.build_id
                         : patch.target_name == name;
        if (match && (!best || patch.version > best->version)) best = &patch;
      }
      if (best) {
        o.patched_by = best->id;
        o.patched_version = best->version;
      }
    }
  }
}

std::vector<KernelLivepatch> kernel_livepatches(const Root& root) {
  std::vector<KernelLivepatch> out;
  std::string dir = root.path("/sys/kernel/livepatch");
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    KernelLivepatch lp;
    lp.name = e->d_name;
    auto enabled = read_file(dir + "/" + lp.name + "/enabled", 64);
    auto transition = read_file(dir + "/" + lp.name + "/transition", 64);
    lp.enabled = enabled.ok() && trim(*enabled) == "1";
    lp.transition = transition.ok() && trim(*transition) == "1";
    std::string params = root.path("/sys/module/" + lp.name + "/parameters");
    if (auto id = read_file(params + "/nines_id", 4096); id.ok()) lp.id = std::string(trim(*id));
    if (auto v = read_file(params + "/nines_version", 64); v.ok())
      lp.version = parse_i64(trim(*v)).value_or(0);
    out.push_back(std::move(lp));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(),
            [](const KernelLivepatch& a, const KernelLivepatch& b) { return a.name < b.name; });
  return out;
}

SignedCves read_signed_cves(const Root& root, const std::string& trust_dir,
                            std::vector<std::string>* notes) {
  SignedCves out;
  std::string dir = root.path("/var/lib/nines/bundles");
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  std::vector<std::string> files;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n.size() > 7 && n.substr(n.size() - 7) == ".bundle") files.emplace_back(n);
  }
  ::closedir(d);
  if (files.empty()) return out;
  auto trusted = bundle::load_trust_store(trust_dir);
  if (!trusted.ok()) {
    notes->push_back(fmt::format("bundles not read: {}", trusted.error().message));
    return out;
  }
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) {
    std::string path = dir + "/" + f;
    auto raw = bundle::read_bundle_file(path);
    auto b = raw.ok() ? bundle::parse_bundle(*raw) : Result<bundle::Bundle>(raw.error());
    Status v = b.ok() ? bundle::verify_bundle(*b, *trusted) : Status(b.error());
    if (!v.ok()) {
      notes->push_back(fmt::format("{}: not used: {}", path, v.error().message));
      continue;
    }
    std::set<std::string>& cves = out.by_patch[{b->manifest.id, b->manifest.version}];
    for (const bundle::Cve& c : b->manifest.cves) {
      cves.insert(c.id);
      std::string& sev = out.severity[c.id];
      if (bundle::severity_rank(c.severity) > bundle::severity_rank(sev)) sev = c.severity;
    }
  }
  return out;
}

}  // namespace nines::advisor
