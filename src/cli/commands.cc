#include "cli/commands.h"

namespace nines::cli {

Runner setup_build(CLI::App&);
Runner setup_apply(CLI::App&);
Runner setup_list(CLI::App&);
Runner setup_revert(CLI::App&);
Runner setup_keygen(CLI::App&);
Runner setup_bundle(CLI::App&);
Runner setup_check(CLI::App&);
Runner setup_kernel(CLI::App&);
Runner setup_serve(CLI::App&);
Runner setup_admin(CLI::App&);
Runner setup_enable(CLI::App&);
Runner setup_disable(CLI::App&);
Runner setup_agent(CLI::App&);
Runner setup_agent_exchange(CLI::App&);
Runner setup_refresh(CLI::App&);
Runner setup_config(CLI::App&);
Runner setup_status(CLI::App&);

const Command kCommands[] = {
    {"build", "Build a patch object from C sources against a target object", &setup_build},
    {"apply", "Apply a patch or a signed bundle to running processes (or the kernel)", &setup_apply},
    {"list", "List the patches applied in running processes", &setup_list},
    {"revert", "Revert an applied patch", &setup_revert},
    {"keygen", "Generate a publisher key pair (ed25519) for signing bundles", &setup_keygen},
    {"bundle", "Create, verify and inspect signed patch bundles", &setup_bundle},
    {"check", "What needs a service restart or a reboot, and why", &setup_check},
    {"kernel", "Kernel live patches: build, apply, list, revert (klp modules)", &setup_kernel},
    {"serve", "Run the patch server (HTTP API, dashboard, metrics)", &setup_serve},
    {"admin", "Manage a patch server: tokens, publish, promote, machines", &setup_admin},
    {"enable", "Register this machine with a patch server and enable the agent", &setup_enable},
    {"disable", "Stop the agent applying patches and revert what it applied", &setup_disable},
    {"agent", "The agent daemon: fetch, decide by policy, apply, report", &setup_agent},
    {"agent-exchange", "", &setup_agent_exchange},  // the agent's child; hidden (empty help)
    {"refresh", "Ask the agent to check the server now", &setup_refresh},
    {"config", "Show or set the agent's policy (KEY=VALUE)", &setup_config},
    {"status", "What the agent applied, what not and why; last and next check", &setup_status},
};
const size_t kCommandCount = sizeof(kCommands) / sizeof(kCommands[0]);

}  // namespace nines::cli
