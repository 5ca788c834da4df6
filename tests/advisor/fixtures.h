// Builders for fake roots: x86 boot images, Intel and AMD microcode files.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "test_util.h"

namespace nines::advisor::testing {

// A sparse 2 MB file with a bzImage setup header whose kernel_version string is `version`.
inline void write_bzimage(const std::string& path, const std::string& version) {
  std::string img(0x1000, '\0');
  std::memcpy(&img[0x202], "HdrS", 4);
  uint16_t off = 0x300;  // the string lives at 0x200 + off
  std::memcpy(&img[0x20e], &off, 2);
  std::memcpy(&img[0x200 + off], version.data(), version.size());
  write_file(path, img);
  if (truncate(path.c_str(), 2 << 20) != 0) throw std::runtime_error("truncate " + path);
}

inline void put32(std::string& s, size_t off, uint32_t v) { std::memcpy(&s[off], &v, 4); }
inline void put16(std::string& s, size_t off, uint16_t v) { std::memcpy(&s[off], &v, 2); }

struct IntelUpdate {
  uint32_t sig, pf, rev;
  std::vector<std::pair<uint32_t, uint32_t>> extended;  // (sig, pf)
};

// Concatenated Intel updates, each with a 48-byte header, `data` bytes of payload and an
// optional extended signature table.
inline std::string intel_microcode(const std::vector<IntelUpdate>& updates, uint32_t data = 1024) {
  std::string out;
  for (const IntelUpdate& u : updates) {
    size_t ext = u.extended.empty() ? 0 : 20 + 12 * u.extended.size();
    std::string h(48 + data + ext, '\0');
    put32(h, 0, 1);  // header version
    put32(h, 4, u.rev);
    put32(h, 8, 0x20240312);
    put32(h, 12, u.sig);
    put32(h, 24, u.pf);
    put32(h, 28, data);
    put32(h, 32, static_cast<uint32_t>(h.size()));
    if (ext) {
      put32(h, 48 + data, static_cast<uint32_t>(u.extended.size()));
      for (size_t i = 0; i < u.extended.size(); ++i) {
        put32(h, 48 + data + 20 + 12 * i, u.extended[i].first);
        put32(h, 48 + data + 20 + 12 * i + 4, u.extended[i].second);
      }
    }
    out += h;
  }
  return out;
}

struct AmdPatch {
  uint16_t equiv;
  uint32_t patch_id;
};

// An AMD container: magic, equivalence table (cpuid -> equiv id), then patch sections.
inline std::string amd_microcode(const std::vector<std::pair<uint32_t, uint16_t>>& table,
                                 const std::vector<AmdPatch>& patches) {
  std::string out("DMA\0", 4);
  std::string t((table.size() + 1) * 16, '\0');
  for (size_t i = 0; i < table.size(); ++i) {
    put32(t, i * 16, table[i].first);
    put16(t, i * 16 + 12, table[i].second);
  }
  std::string hdr(8, '\0');
  put32(hdr, 0, 0);
  put32(hdr, 4, static_cast<uint32_t>(t.size()));
  out += hdr + t;
  for (const AmdPatch& p : patches) {
    std::string body(64 + 256, '\0');
    put32(body, 0, 0x20240101);
    put32(body, 4, p.patch_id);
    put16(body, 24, p.equiv);
    std::string sh(8, '\0');
    put32(sh, 0, 1);
    put32(sh, 4, static_cast<uint32_t>(body.size()));
    out += sh + body;
  }
  return out;
}

inline std::string cpuinfo_text(const std::string& vendor, int family, int model, int stepping,
                                const std::string& microcode, bool hypervisor = false) {
  std::string one = "vendor_id\t: " + vendor + "\ncpu family\t: " + std::to_string(family) +
                    "\nmodel\t\t: " + std::to_string(model) +
                    "\nmodel name\t: Test CPU\nstepping\t: " + std::to_string(stepping) +
                    "\nmicrocode\t: " + microcode + "\nphysical id\t: 0\nflags\t\t: fpu sse2" +
                    (hypervisor ? " hypervisor" : "") + "\n\n";
  return "processor\t: 0\n" + one + "processor\t: 1\n" + one;
}

}  // namespace nines::advisor::testing
