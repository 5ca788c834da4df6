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
    if (!*c.help) sub->group("");  // internal: not listed in --help
    runners.emplace_back(sub, c.setup(*sub));
  }
  if (argc == 2 && std::string(argv[1]) == "--version") {
    std::printf("nines %s\n", NINES_VERSION);
    return 0;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help, or the error and a hint
    if (rc == 0) return 0;
    // A usage error exits 2, except for `check`, whose 2 means "reboot required": there
    // it exits 3 ("an error"), so that monitoring never mistakes a typo for a verdict.
    for (int i = 1; i < argc; ++i) {
      if (argv[i][0] == '-') continue;
      return std::string(argv[i]) == "check" ? 3 : 2;
    }
    return 2;
  }
  nines::init_logging(verbosity);
  for (auto& [sub, run] : runners)
    if (sub->parsed()) return run();
  return 2;
}
