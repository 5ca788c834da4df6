// libFuzzer target: the strict manifest TOML parser (toml++ compiled in, instrumented) and
// the writer's round trip: anything accepted must serialise to TOML that parses back to the
// same text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bundle/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool require_target : {true, false}) {
    auto m = nines::bundle::parse_manifest(text, require_target);
    if (!m) continue;
    (void)nines::bundle::manifest_to_json(*m).dump();
    (void)nines::bundle::highest_severity(*m);
    if (!require_target) continue;
    std::string toml = nines::bundle::manifest_to_toml(*m);
    auto again = nines::bundle::parse_manifest(toml);
    if (!again || nines::bundle::manifest_to_toml(*again) != toml) __builtin_trap();
  }
  return 0;
}
