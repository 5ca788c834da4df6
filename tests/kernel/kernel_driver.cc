// A `nines` stand-in with only the `kernel` subcommand group, for developing the kernel
// tier while the full binary is being assembled: `nines-kernel kernel apply X.patch`
// behaves exactly like `nines kernel apply X.patch`.
#include <CLI/CLI.hpp>

#include "core/log.h"
#include "klp/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"nines (kernel subcommands only)"};
  app.require_subcommand(1);
  int verbosity = 0;
  app.add_flag("-v,--verbose", verbosity, "More log output");
  CLI::App* k = app.add_subcommand("kernel", "Kernel live patches");
  auto run = nines::klp::setup_kernel_commands(*k);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  nines::init_logging(verbosity);
  return run();
}
