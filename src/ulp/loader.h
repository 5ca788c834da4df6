// Linking a patch object for one target process, without running the target's loader:
// the patch's PT_LOAD segments are laid out at a base chosen within ±2 GiB of the target
// object (so a 5-byte jmp reaches every replacement), its dynamic relocations are applied
// here against symbols resolved in the target, and the finished bytes are then mapped
// into the target by injected mmap/mprotect calls (see engine.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "proc/maps.h"
#include "ulp/patch_object.h"
#include "ulp/process_view.h"

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

// Lays out and relocates the patch for `base`. Undefined symbols resolve through `view`
// with the target object preferred.
Result<LinkedImage> link_image(const PatchObject& patch, uint64_t base, ProcessView& view,
                               const LoadedObject& target);

}  // namespace nines::ulp
