// nines: one binary, subcommands from the table in commands.cc. main only dispatches.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"nines: rebootless security patching for Linux"};
  app.require_subcommand(1);
  int verbosity = 0;
  app.add_flag("-v,--verbose", verbosity, "More log output (repeat for debug)");
  bool version = false;
  app.add_flag("--version", version, "Print the version and exit");

  std::vector<std::pair<CLI::App*, nines::cli::Runner>> runners;
  for (size_t i = 0; i < nines::cli::kCommandCount; ++i) {
    const auto& c = nines::cli::kCommands[i];
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    runners.emplace_back(sub, c.setup(*sub));
  }
  if (argc == 2 && std::string(argv[1]) == "--version") {
    std::printf("nines %s\n", NINES_VERSION);
    return 0;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  nines::init_logging(verbosity);
  for (auto& [sub, run] : runners)
    if (sub->parsed()) return run();
  return 2;
}
