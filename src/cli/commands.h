// The subcommand table: one entry per subcommand, one file per subcommand (cmd_*.cc).
// main() builds the CLI11 app from this table and only dispatches.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace nines::cli {

// Filled by each command's setup; run after parsing. Returns the process exit status.
using Runner = std::function<int()>;

struct Command {
  const char* name;
  const char* help;  // "" hides the command from --help (internal commands)
  // Adds the command's options to `sub` and returns the function that runs it.
  Runner (*setup)(CLI::App& sub);
};

// One line per subcommand; defined in commands.cc.
extern const Command kCommands[];
extern const size_t kCommandCount;

}  // namespace nines::cli
