// The kernel side of the `nines` subcommands, as functions the CLI files call:
//   nines build --kernel RELEASE [--headers DIR] [--id ID] -o OUT.patch SOURCE.c...
//   nines apply FILE            (a kernel bundle or a kernel .ko patch; no --pid)
//   nines list --kernel         nines revert ID --kernel
// and the `nines kernel build|apply|list|revert` group, which offers all of them with the
// kernel's own options. Each returns the process exit status and prints errors to stderr.
#pragma once

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "klp/build.h"

namespace nines::klp {

inline constexpr double kDefaultTimeoutS = 60;

int cli_build(const BuildOptions& opts);

// True when the bytes are an ELF patch whose .nines.meta says kind "kernel".
bool is_kernel_patch(std::string_view bytes);
// True for a kernel patch or a bundle whose manifest says kind "kernel" (structure only:
// cli_apply_file verifies the signature).
bool is_kernel_file(std::string_view bytes);

struct CliApplyArgs {
  std::string file;
  double timeout_s = kDefaultTimeoutS;
  int64_t version = 0;  // for a raw .ko; a bundle's manifest gives its own
  bool allow_downgrade = false;
  std::string trust_dir;  // default bundle::kDefaultTrustDir
};
// Applies a kernel bundle (verified against the trust store; its manifest must be kind
// "kernel" and name this kernel) or a raw kernel patch (.ko with .nines.meta).
int cli_apply_file(const CliApplyArgs& args);
// The same, for bytes already read (and, for a bundle, already verified by the caller):
// `version` is the bundle's version, 0 for a raw patch.
int cli_apply_bytes(std::string_view ko_bytes, const std::string& what, int64_t version,
                    double timeout_s, bool allow_downgrade);

// "text" or "json".
int cli_list(const std::string& format);
int cli_revert(const std::string& id, double timeout_s);

// Adds build|apply|list|revert under `app` (the `nines kernel` group); the returned
// function runs whichever was parsed.
std::function<int()> setup_kernel_commands(CLI::App& app);

}  // namespace nines::klp
