// The seam to the lead's in-process registry (src/ulp/registry.h): the only advisor file
// that depends on nines_ulp, so the rest of the advisor builds and tests without it.
#include "advisor/livepatch.h"
#include "ulp/registry.h"

namespace nines::advisor {

RegistryReader nines_registry_reader() {
  return [](pid_t pid) -> Result<std::vector<PatchInProcess>> {
    // read_registry reads /proc/PID/mem without stopping the process.
    std::optional<ulp::Registry> reg = NINES_TRY(ulp::read_registry(pid));
    std::vector<PatchInProcess> out;
    if (!reg) return out;
    for (const ulp::AppliedPatch& p : reg->patches)
      out.push_back(PatchInProcess{p.id, p.version, p.target_name, p.target_build_id});
    return out;
  };
}

}  // namespace nines::advisor
