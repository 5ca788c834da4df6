// The command table of nines-net: the commands that speak HTTP (see forward.h). nines
// lists the same names and execs nines-net for them; main.cc serves both executables.
#include "cli/commands.h"

namespace nines::cli {

Runner setup_serve(CLI::App&);
Runner setup_admin(CLI::App&);
Runner setup_enable(CLI::App&);
Runner setup_agent_exchange(CLI::App&);

const Command kCommands[] = {
    {"serve", "Run the patch server (HTTP API, dashboard, metrics)", &setup_serve},
    {"admin", "Manage a patch server: tokens, publish, promote, machines", &setup_admin},
    {"enable", "Register this machine with a patch server and enable the agent", &setup_enable},
    {"agent-exchange", "", &setup_agent_exchange},  // the agent's child; hidden (empty help)
};
const size_t kCommandCount = sizeof(kCommands) / sizeof(kCommands[0]);

}  // namespace nines::cli
