// libFuzzer target: reading `.nines.meta` from an ELF image with libelf, as
// `nines bundle create` does with a patch object it is given.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bundle/patch_meta.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto meta = nines::bundle::read_patch_meta(bytes);
  if (!meta) return 0;
  nines::bundle::Manifest m;
  (void)nines::bundle::reconcile_with_patch(m, *meta);
  return 0;
}
