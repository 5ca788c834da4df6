// libFuzzer target: the security tracker reader (src/advisor/tracker.cc), which walks a
// ~60 MB file from outside (the agent's copy comes from the server). Anything may be
// refused; nothing may crash, hang or read out of bounds. Half the inputs keep every
// source, so the decoding path (escapes, surrogates) runs as much as the skipping one.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "advisor/tracker.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::unordered_set<std::string> wanted;
  if (data[0] & 1) {
    for (const char* s : {"a", "openssl", "linux", "glibc", "p\xc3\xa9"}) wanted.insert(s);
  }
  auto d = nines::advisor::parse_tracker(text, wanted, "bookworm");
  if (d.ok())
    for (const auto& [source, entries] : d->by_source)
      for (const auto& e : entries) (void)nines::advisor::severity_from_urgency(e.urgency);
  return 0;
}
