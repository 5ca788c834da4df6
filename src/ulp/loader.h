// Linking a patch object for one target process, without running the target's loader:
// the patch's PT_LOAD segments are laid out at a base chosen within ±2 GiB of the target
// object (so a 5-byte jmp reaches every replacement), its dynamic relocations are applied
// here against symbols resolved in the target, and the finished bytes are then mapped
// into the target by injected mmap/mprotect calls (see engine.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "proc/maps.h"
#include "ulp/patch_object.h"

namespace nines::ulp {

struct SegmentProt {
  uint64_t offset = 0;  // from the image start, page aligned
  uint64_t size = 0;    // page aligned
  int prot = 0;         // PROT_*
};

struct LinkedImage {
  uint64_t base = 0;          // where the image goes in the target (page aligned)
  std::string bytes;          // the whole image, size page aligned
  std::vector<SegmentProt> segments;
  uint64_t load_bias = 0;     // runtime address = load_bias + st_value
};

// Picks a free, page-aligned range of `size` bytes such that every address in it is
// within ±2 GiB of every byte in [lo, hi). `avoid` lists ranges already tried.
Result<uint64_t> choose_base(const std::vector<proc::MapEntry>& maps, uint64_t lo, uint64_t hi,
                             uint64_t size, const std::vector<uint64_t>& avoid = {});

// The span of the image: page-aligned size of all PT_LOAD segments.
uint64_t image_size(const elf::ElfFile& patch);

// The address in the target of an undefined symbol of the patch (name, version or ""),
// or an error naming why it cannot be resolved.
using SymbolResolver =
    std::function<Result<uint64_t>(const std::string& name, const std::string& version)>;

// Lays out and relocates the patch for `base`; undefined symbols go through `resolve`
// (the apply engine passes ProcessView::resolve with the target object preferred), and
// the metadata's target relocations are bound to `target_base`, the target object's load
// bias. Works on the patch's bytes alone, so a hostile patch object can be fuzzed without
// a process. Fails naming the segment or relocation that does not fit the image.
Result<LinkedImage> link_image(const PatchObject& patch, uint64_t base, uint64_t target_base,
                               const SymbolResolver& resolve);

}  // namespace nines::ulp
