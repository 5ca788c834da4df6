// libFuzzer target: the `.nines.meta` of a kernel patch (src/klp/meta.cc), from a .ko that
// `nines kernel apply` or the agent is given. An ELF input goes through read_kernel_meta,
// anything else is taken as the JSON text itself; what is accepted must serialise to JSON
// that validates back to the same JSON.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "klp/meta.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  nines::Result<nines::klp::KernelPatchMeta> meta = nines::make_error("none");
  if (bytes.starts_with("\x7f" "ELF")) {
    meta = nines::klp::read_kernel_meta(bytes);
  } else {
    auto j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    meta = nines::klp::meta_from_json(j);
  }
  if (!meta) return 0;
  nlohmann::json out = nines::klp::meta_to_json(*meta);
  auto again = nines::klp::meta_from_json(out);
  if (!again || nines::klp::meta_to_json(*again) != out) __builtin_trap();
  return 0;
}
