// nines: one binary, subcommands from the table in commands.cc. main only dispatches.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/usage.h"
#include "core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"nines: rebootless security patching for Linux"};
  app.require_subcommand(1);
  app.fallthrough();  // -v, and the root's options, also after the command (inherited)
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
    // Help and --version exit 0; an unknown word is named with the nearest known one.
    auto why = e.get_exit_code() == 0
                   ? std::nullopt
                   : nines::cli::explain_usage_error(app, std::vector<std::string>(argv + 1, argv + argc));
    if (why) std::fprintf(stderr, "nines: %s\n", why->c_str());
    int rc = why ? 1 : app.exit(e);  // prints help, or CLI11's error and a hint
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
