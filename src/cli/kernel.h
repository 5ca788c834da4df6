// The kernel side of the `nines` subcommands, as functions the CLI files call:
//   nines build --kernel RELEASE [--headers DIR] [--id ID] -o OUT.patch SOURCE.c...
//   nines apply FILE            (a kernel bundle or a kernel .ko patch; no --pid)
//   nines list --kernel         nines revert ID --kernel
// and the `nines kernel build|apply|list|revert` group (cmd_kernel.cc), which offers all
// of them with the kernel's own options. Each returns the process exit status and prints
// errors to stderr. The kernel library (src/klp) knows nothing of the command line.
#pragma once

#include <string>
#include <string_view>

#include "klp/build.h"

namespace nines::cli {

inline constexpr double kKernelTimeoutS = 60;

int kernel_build(const klp::BuildOptions& opts);

struct KernelApplyArgs {
  std::string file;
  double timeout_s = kKernelTimeoutS;
  int64_t version = 0;  // for a raw .ko; a bundle's manifest gives its own
  bool allow_downgrade = false;
  std::string trust_dir;  // default bundle::kDefaultTrustDir
};
// Applies a kernel bundle (bundle::open_bundle_for_apply; its manifest must be kind
// "kernel") or a raw kernel patch (.ko with .nines.meta).
int kernel_apply_file(const KernelApplyArgs& args);
// The same, for bytes already read (and, for a bundle, already verified by the caller):
// `version` is the bundle's version, 0 for a raw patch.
int kernel_apply_bytes(std::string_view ko_bytes, const std::string& what, int64_t version,
                       double timeout_s, bool allow_downgrade);

// "text" or "json".
int kernel_list(const std::string& format);
int kernel_revert(const std::string& id, double timeout_s);

}  // namespace nines::cli
