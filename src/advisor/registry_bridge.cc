// The seam to the lead's in-process registry (src/ulp/registry.h). Kept in its own file so
// the advisor builds and tests without it.
// HOOK(advisor->lead): until nines::ulp::read_registry exists this reader reports no
// patches; replace its body with a call to nines::ulp::read_registry(pid).
#include "advisor/livepatch.h"

namespace nines::advisor {

RegistryReader nines_registry_reader() {
  return [](pid_t) -> Result<std::vector<PatchInProcess>> { return std::vector<PatchInProcess>{}; };
}

}  // namespace nines::advisor
