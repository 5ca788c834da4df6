// libFuzzer target: the patch object as `nines apply` loads it (src/ulp/patch_object.cc)
// and links it (src/ulp/loader.cc: segment layout and dynamic relocations), on bytes
// alone: no process. Undefined symbols resolve through a resolver that answers every name
// but empty ones and those containing "missing", which it refuses as a process would. A
// linked image must hold every segment and be page sized.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ulp/loader.h"
#include "ulp/patch_object.h"

using namespace nines;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto patch = ulp::load_patch_object(std::string(reinterpret_cast<const char*>(data), size),
                                      "fuzz input");
  if (!patch) return 0;
  (void)ulp::meta_to_json(patch->meta).dump();
  uint64_t span = ulp::image_size(patch->elf);
  ulp::SymbolResolver resolve = [](const std::string& name,
                                   const std::string& version) -> Result<uint64_t> {
    if (name.empty() || name.find("missing") != std::string::npos)
      return make_error("symbol '{}' is not defined by any object", name);
    return 0x7f0000001000 + name.size() * 16 + version.size();
  };
  const uint64_t base = 0x7f0000100000;
  auto image = ulp::link_image(*patch, base, /*target_base=*/0x555555554000, resolve);
  if (!image) return 0;
  if (image->base != base || image->bytes.size() != span || span % 4096 != 0) __builtin_trap();
  for (const auto& s : image->segments)
    if (s.offset % 4096 != 0 || s.offset > span || s.size > span - s.offset) __builtin_trap();
  // Where the apply engine would put it, next to a target at 0x555555554000.
  std::vector<proc::MapEntry> maps(1);
  maps[0].start = 0x555555554000;
  maps[0].end = 0x555555558000;
  (void)ulp::choose_base(maps, maps[0].start, maps[0].end, span);
  return 0;
}
