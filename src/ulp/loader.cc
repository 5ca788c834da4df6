#include "ulp/loader.h"

#include <elf.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

namespace nines::ulp {

namespace {
constexpr uint64_t kPage = 4096;
constexpr uint64_t kReach = (uint64_t{1} << 31) - (uint64_t{1} << 20);  // 2 GiB less a margin
constexpr uint64_t kLowest = 0x10000;
constexpr uint64_t kHighest = 0x7ffffffff000;
constexpr uint64_t kMaxImageBytes = uint64_t{64} << 20;
uint64_t page_down(uint64_t v) { return v & ~(kPage - 1); }
uint64_t page_up(uint64_t v) { return (v + kPage - 1) & ~(kPage - 1); }
}  // namespace

uint64_t image_size(const elf::ElfFile& patch) {
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const auto& s : patch.segments()) {
    if (s.type != PT_LOAD) continue;
    lo = std::min(lo, page_down(s.vaddr));
    hi = std::max(hi, page_up(s.vaddr + s.memsz));
  }
  return lo == UINT64_MAX ? 0 : hi - lo;
}

Result<uint64_t> choose_base(const std::vector<proc::MapEntry>& maps, uint64_t lo, uint64_t hi,
                             uint64_t size, const std::vector<uint64_t>& avoid) {
  // Allowed window for the image start: [hi - reach, lo + reach - size].
  uint64_t win_lo = hi > kReach ? hi - kReach : kLowest;
  uint64_t win_hi = lo + kReach > size ? lo + kReach - size : 0;
  win_lo = std::max(win_lo, kLowest);
  win_hi = std::min(win_hi, kHighest - size);
  std::vector<std::pair<uint64_t, uint64_t>> used;
  for (const auto& m : maps) used.emplace_back(m.start, m.end);
  for (uint64_t a : avoid) used.emplace_back(a, a + size);
  std::sort(used.begin(), used.end());
  // Free gaps, each shrunk by a guard page on both sides.
  std::vector<std::pair<uint64_t, uint64_t>> gaps;
  uint64_t cursor = kLowest;
  for (const auto& [s, e] : used) {
    if (s > cursor + 2 * kPage) gaps.emplace_back(cursor + kPage, s - kPage);
    cursor = std::max(cursor, e);
  }
  if (kHighest > cursor + 2 * kPage) gaps.emplace_back(cursor + kPage, kHighest);
  bool found = false;
  uint64_t best = 0, best_dist = UINT64_MAX;
  for (const auto& [g0, g1] : gaps) {
    if (g1 - g0 < size) continue;
    // Candidate starts within both the gap and the window, as close to the target as can be.
    uint64_t c_lo = std::max(g0, win_lo), c_hi = std::min(g1 - size, win_hi);
    if (c_lo > c_hi) continue;
    uint64_t cand = g1 <= lo ? page_down(c_hi) : page_up(c_lo);
    if (cand < c_lo || cand > c_hi) continue;
    uint64_t dist = cand < lo ? lo - cand : cand - lo;
    if (dist < best_dist) {
      best_dist = dist;
      best = cand;
      found = true;
    }
  }
  if (!found)
    return make_error("no free address range of {} bytes within ±2 GiB of {:#x}-{:#x}", size, lo, hi);
  return best;
}

Result<LinkedImage> link_image(const PatchObject& patch, uint64_t base, uint64_t target_base,
                               const SymbolResolver& resolve) {
  const elf::ElfFile& so = patch.elf;
  LinkedImage img;
  img.base = base;
  uint64_t lo = UINT64_MAX;
  for (const auto& s : so.segments())
    if (s.type == PT_LOAD) lo = std::min(lo, page_down(s.vaddr));
  if (lo == UINT64_MAX) return make_error("patch object has no loadable segment");
  uint64_t size = image_size(so);
  // A patch image is a few pages. Its span comes from the headers alone (a large p_memsz
  // is .bss), and the whole span is allocated here and written into the target inside the
  // freeze, so it is bounded like a bundle file (bundle::kMaxBundleBytes).
  if (size == 0 || size > kMaxImageBytes)
    return make_error("patch image of {} bytes: out of range (1 to {} MiB)", size,
                      kMaxImageBytes >> 20);
  img.load_bias = base - lo;
  img.bytes.assign(size, '\0');
  auto bytes = so.bytes();
  for (const auto& s : so.segments()) {
    if (s.type != PT_LOAD) continue;
    if (s.filesz > s.memsz || s.offset > bytes.size() || s.filesz > bytes.size() - s.offset)
      return make_error("patch object: segment at {:#x} lies outside the file", s.vaddr);
    // vaddr + memsz may wrap around (a hostile header): then image_size() measured a span
    // that does not hold the segment. Checked without adding to vaddr.
    if (s.vaddr - lo > size || s.memsz > size - (s.vaddr - lo))
      return make_error("patch object: segment at {:#x} of {} bytes lies outside the image",
                        s.vaddr, s.memsz);
    std::memcpy(img.bytes.data() + (s.vaddr - lo), bytes.data() + s.offset, s.filesz);
    int prot = 0;
    if (s.flags & PF_R) prot |= PROT_READ;
    if (s.flags & PF_W) prot |= PROT_WRITE;
    if (s.flags & PF_X) prot |= PROT_EXEC;
    img.segments.push_back({page_down(s.vaddr) - lo, page_up(s.vaddr + s.memsz) - page_down(s.vaddr), prot});
  }
  // RELRO: after relocation the GOT can be read-only; our segment protections already
  // follow the PT_LOAD flags, which is what a loader does before mprotect(RELRO).

  auto put64 = [&](uint64_t off, uint64_t v) -> Status {
    if (off < lo || off - lo > img.bytes.size() - 8)  // the image is at least a page
      return make_error("patch relocation at {:#x} lies outside the image", off);
    std::memcpy(img.bytes.data() + (off - lo), &v, 8);
    return {};
  };
  const auto& dynsym = so.dynamic_symbols();
  for (const auto& r : so.dynamic_relocs()) {
    switch (r.type) {
      case R_X86_64_NONE:
        break;
      case R_X86_64_RELATIVE:
        NINES_CHECK(put64(r.offset, img.load_bias + static_cast<uint64_t>(r.addend)));
        break;
      case R_X86_64_64:
      case R_X86_64_GLOB_DAT:
      case R_X86_64_JUMP_SLOT: {
        uint64_t s = 0;
        if (r.sym_index >= dynsym.size())
          return make_error("patch relocation at {:#x} names symbol {} of {}", r.offset,
                            r.sym_index, dynsym.size());
        const elf::Symbol& sym = dynsym[r.sym_index];
        if (sym.defined()) {
          s = img.load_bias + sym.value;  // the patch's own symbol
        } else {
          auto res = resolve(sym.name, sym.version);
          if (!res) {
            if (sym.bind == STB_WEAK) s = 0;
            else return res.error().wrap("link the patch");
          } else {
            s = *res;
          }
        }
        uint64_t v = r.type == R_X86_64_64 ? s + static_cast<uint64_t>(r.addend) : s;
        NINES_CHECK(put64(r.offset, v));
        break;
      }
      default:
        return make_error("patch object: relocation type {} is not supported", r.type);
    }
  }
  // Places that hold addresses in the target (generated patches): exact offsets, bound to
  // the target's build-id, applied after the dynamic relocations they may overwrite.
  for (const auto& tr : patch.meta.target_relocs) {
    uint64_t s = target_base + tr.target_offset + static_cast<uint64_t>(tr.addend);
    if (tr.kind == TargetReloc::Kind::kAbs64) {
      NINES_CHECK(put64(tr.offset, s));
      continue;
    }
    int64_t rel = static_cast<int64_t>(s - (img.load_bias + tr.offset));
    if (rel < INT32_MIN || rel > INT32_MAX)
      return make_error("patch relocation to '{}' at {:#x}: the target is out of rel32 reach",
                        tr.symbol, tr.offset);
    if (tr.offset < lo || tr.offset - lo > img.bytes.size() - 4)  // no wrap near 2^64
      return make_error("patch relocation at {:#x} lies outside the image", tr.offset);
    int32_t v = static_cast<int32_t>(rel);
    std::memcpy(img.bytes.data() + (tr.offset - lo), &v, 4);
  }
  return img;
}

}  // namespace nines::ulp
