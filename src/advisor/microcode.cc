#include "advisor/microcode.h"

#include <dirent.h>
#include <fnmatch.h>

#include <algorithm>
#include <cstring>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::advisor {
namespace {

uint32_t le32(std::string_view s, size_t off) {
  uint32_t v;
  std::memcpy(&v, s.data() + off, 4);
  return v;
}
uint16_t le16(std::string_view s, size_t off) {
  uint16_t v;
  std::memcpy(&v, s.data() + off, 2);
  return v;
}

constexpr size_t kIntelHeader = 48;
constexpr size_t kIntelExtHeader = 20;
constexpr size_t kIntelExtSig = 12;
constexpr size_t kAmdPatchRevOffset = 24;
constexpr size_t kAmdEquivEntry = 16;
constexpr size_t kMaxFirmware = 64u << 20;

}  // namespace

uint32_t CpuInfo::signature() const {
  uint32_t fam = family, xfam = 0;
  if (fam > 0xf) {
    xfam = fam - 0xf;
    fam = 0xf;
  }
  return ((xfam & 0xff) << 20) | (((model >> 4) & 0xf) << 16) | ((fam & 0xf) << 8) |
         ((model & 0xf) << 4) | (stepping & 0xf);
}

std::vector<CpuInfo> parse_cpuinfo(std::string_view text) {
  std::vector<CpuInfo> all;
  CpuInfo cur;
  bool have = false;
  auto flush = [&] {
    if (have) all.push_back(cur);
    cur = CpuInfo{};
    have = false;
  };
  for (std::string_view line : split(text, '\n')) {
    if (trim(line).empty()) {
      flush();
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = trim(line.substr(0, colon)), val = trim(line.substr(colon + 1));
    if (key == "processor") {
      have = true;
      cur.processor = static_cast<int>(parse_u64(val).value_or(0));
    } else if (key == "vendor_id") {
      cur.vendor = std::string(val);
    } else if (key == "cpu family") {
      cur.family = static_cast<uint32_t>(parse_u64(val).value_or(0));
    } else if (key == "model") {
      cur.model = static_cast<uint32_t>(parse_u64(val).value_or(0));
    } else if (key == "stepping") {
      cur.stepping = static_cast<uint32_t>(parse_u64(val).value_or(0));
    } else if (key == "microcode") {
      std::string_view v = val;
      if (starts_with(v, "0x")) v.remove_prefix(2);
      if (auto r = parse_u64(v, 16)) cur.microcode = static_cast<uint32_t>(*r);
    } else if (key == "physical id") {
      cur.physical_id = static_cast<int>(parse_u64(val).value_or(0));
    } else if (key == "flags") {
      for (std::string_view f : split(val, ' '))
        if (f == "hypervisor") cur.hypervisor = true;
    }
  }
  flush();
  std::vector<CpuInfo> per_package;
  for (const CpuInfo& c : all) {
    bool seen = std::any_of(per_package.begin(), per_package.end(),
                            [&](const CpuInfo& p) { return p.physical_id == c.physical_id; });
    if (!seen) per_package.push_back(c);
  }
  return per_package;
}

std::optional<uint32_t> intel_best_revision(std::string_view file, uint32_t sig, uint32_t pf) {
  std::optional<uint32_t> best;
  auto fits = [&](uint32_t s, uint32_t p) { return s == sig && (pf == 0 || p == 0 || (p & pf)); };
  size_t off = 0;
  while (file.size() - off >= kIntelHeader) {
    std::string_view h = file.substr(off);
    uint32_t hdrver = le32(h, 0), rev = le32(h, 4), usig = le32(h, 12), upf = le32(h, 24);
    uint32_t datasize = le32(h, 28), totalsize = le32(h, 32);
    if (hdrver != 1) break;  // not an update header: stop rather than guess
    if (datasize == 0) datasize = 2000;
    if (totalsize == 0) totalsize = 2048;
    if (totalsize < datasize + kIntelHeader || totalsize > h.size() || totalsize % 4 != 0) break;
    bool match = fits(usig, upf);
    size_t ext = kIntelHeader + datasize;
    if (!match && totalsize >= ext + kIntelExtHeader) {
      uint32_t count = le32(h, ext);
      size_t first = ext + kIntelExtHeader;
      if (count <= (totalsize - first) / kIntelExtSig) {
        for (uint32_t i = 0; i < count && !match; ++i)
          match = fits(le32(h, first + i * kIntelExtSig), le32(h, first + i * kIntelExtSig + 4));
      }
    }
    if (match && (!best || rev > *best)) best = rev;
    off += totalsize;
  }
  return best;
}

std::optional<uint32_t> amd_best_revision(std::string_view file, uint32_t cpuid_eax) {
  if (file.size() < 12 || file.substr(0, 4) != std::string_view("DMA\0", 4)) return std::nullopt;
  uint32_t type = le32(file, 4), size = le32(file, 8);
  if (type != 0 || size > file.size() - 12) return std::nullopt;
  std::optional<uint16_t> equiv;
  for (size_t e = 12; e + kAmdEquivEntry <= 12 + size; e += kAmdEquivEntry) {
    uint32_t cpu = le32(file, e);
    if (cpu == 0) break;
    if (cpu == cpuid_eax) equiv = le16(file, e + 12);
  }
  if (!equiv) return std::nullopt;
  std::optional<uint32_t> best;
  size_t off = 12 + size;
  while (file.size() - off >= 8) {
    uint32_t stype = le32(file, off), ssize = le32(file, off + 4);
    off += 8;
    if (ssize > file.size() - off) break;
    if (stype == 1 && ssize >= kAmdPatchRevOffset + 2) {
      uint32_t patch_id = le32(file, off + 4);
      uint16_t rev_id = le16(file, off + kAmdPatchRevOffset);
      if (rev_id == *equiv && (!best || patch_id > *best)) best = patch_id;
    }
    off += ssize;
  }
  return best;
}

const char* microcode_status_name(MicrocodeStatus s) {
  switch (s) {
    case MicrocodeStatus::kUnknown:
      return "unknown";
    case MicrocodeStatus::kCurrent:
      return "current";
    case MicrocodeStatus::kObsolete:
      return "obsolete";
  }
  return "unknown";
}

std::string format_revision(const std::string& vendor, uint32_t rev) {
  return vendor == "AuthenticAMD" ? fmt::format("{:#010x}", rev) : fmt::format("{:#06x}", rev);
}

MicrocodeFacts check_microcode(const Root& root, std::string_view cpuinfo,
                               std::optional<uint32_t> processor_flags) {
  MicrocodeFacts f;
  std::vector<CpuInfo> cpus = parse_cpuinfo(cpuinfo);
  if (cpus.empty()) {
    f.notes.push_back("no processor found in cpuinfo");
    return f;
  }
  // The worst package decides, as in needrestart.
  for (const CpuInfo& cpu : cpus) {
    MicrocodeFacts one;
    one.vendor = cpu.vendor;
    one.signature = cpu.signature();
    one.current = cpu.microcode;
    one.virtual_machine = cpu.hypervisor;
    std::vector<std::string> files;
    if (cpu.vendor == "GenuineIntel") {
      files.push_back(root.path(fmt::format("/lib/firmware/intel-ucode/{:02x}-{:02x}-{:02x}",
                                            cpu.family, cpu.model, cpu.stepping)));
    } else if (cpu.vendor == "AuthenticAMD") {
      std::string dir = root.path("/lib/firmware/amd-ucode");
      if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d))
          if (fnmatch("microcode_amd*.bin", e->d_name, 0) == 0)
            files.push_back(dir + "/" + e->d_name);
        ::closedir(d);
      }
      std::sort(files.begin(), files.end());
    } else {
      one.notes.push_back(fmt::format("CPU vendor {} has no known microcode format",
                                      cpu.vendor.empty() ? "(none)" : cpu.vendor));
    }
    for (const std::string& path : files) {
      auto data = read_file(path, kMaxFirmware);
      if (!data.ok()) {
        if (::access(path.c_str(), F_OK) == 0) one.notes.push_back(data.error().message);
        continue;
      }
      std::optional<uint32_t> rev =
          cpu.vendor == "GenuineIntel"
              ? intel_best_revision(*data, one.signature, processor_flags.value_or(0))
              : amd_best_revision(*data, one.signature);
      if (rev && (!one.available || *rev > *one.available)) {
        one.available = rev;
        one.source = path;
      }
    }
    // needrestart's rule: nothing offered is current (new CPUs with built-in microcode
    // would otherwise alarm forever); offered but the loaded revision unknown is unknown.
    if (!one.available)
      one.status = one.vendor == "GenuineIntel" || one.vendor == "AuthenticAMD"
                       ? MicrocodeStatus::kCurrent
                       : MicrocodeStatus::kUnknown;
    else if (!one.current)
      one.status = MicrocodeStatus::kUnknown;
    else
      one.status =
          *one.current >= *one.available ? MicrocodeStatus::kCurrent : MicrocodeStatus::kObsolete;
    if (&cpu == &cpus.front() || static_cast<int>(one.status) > static_cast<int>(f.status))
      f = std::move(one);
  }
  return f;
}

}  // namespace nines::advisor
