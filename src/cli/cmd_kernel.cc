// nines kernel build|apply|list|revert: kernel live patching with the kernel's own options
// (src/klp/cli.h). `nines build --kernel`, `nines apply`, `nines list --kernel` and
// `nines revert --kernel` reach the same functions.
#include "cli/commands.h"
#include "klp/cli.h"

namespace nines::cli {

Runner setup_kernel(CLI::App& app) { return klp::setup_kernel_commands(app); }

}  // namespace nines::cli
