// libFuzzer target: the in-process registry as a later nines reads it back from a process
// (src/ulp/registry.cc). The target process owns that mapping and may have scribbled on
// it, so the image is hostile. Feeds the input as a whole image (header, journal, slots)
// and as the JSON text of a slot; what is accepted must serialise to JSON that reads back
// the same, and a decoded journal must encode and decode to itself.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ulp/registry.h"

using namespace nines::ulp;

namespace {

void check_round_trip(const Registry& r) {
  nlohmann::json j = registry_to_json(r);
  auto back = registry_from_json(j.dump());
  if (!back || registry_to_json(*back) != j) __builtin_trap();
  (void)r.find_by_id("fix-1");
  (void)r.find_by_target("");
  if (!r.journal) return;
  auto bytes = encode_journal(*r.journal);
  if (!bytes) __builtin_trap();  // decode_journal accepted what encode_journal refuses
  std::string image(kJournalOffset, '\0');
  image += *bytes;
  auto again = decode_journal(image);
  if (!again || !*again || (*again)->writes.size() != r.journal->writes.size() ||
      (*again)->commit_generation != r.journal->commit_generation)
    __builtin_trap();
  for (size_t i = 0; i < r.journal->writes.size(); ++i)
    if ((*again)->writes[i].before != r.journal->writes[i].before ||
        (*again)->writes[i].after != r.journal->writes[i].after)
      __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto r = decode_registry(bytes)) {
    (void)r->interrupted();
    check_round_trip(*r);
  }
  if (auto r = registry_from_json(bytes)) check_round_trip(*r);
  return 0;
}
