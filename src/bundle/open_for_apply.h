// The one gate a bundle passes before it is applied, for `nines apply` (user space and
// kernel), `nines kernel apply` and the agent.
#pragma once

#include <string>
#include <string_view>

#include "bundle/bundle.h"
#include "core/result.h"

namespace nines::bundle {

// open_verified (signer in the trust store, signature, payload digest, payload metadata that
// agrees with the manifest), then for a kernel bundle: the kernel it was built for is the
// running one (uname). Callers then dispatch on manifest.kind. Errors name the bundle:
// "bundle fix-1 built for kernel 6.1.0-9-amd64, this kernel is 6.1.0-10-amd64".
Result<Bundle> open_bundle_for_apply(std::string_view bytes, const std::string& trust_dir);

}  // namespace nines::bundle
