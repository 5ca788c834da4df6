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
};
const size_t kCommandCount = sizeof(kCommands) / sizeof(kCommands[0]);

}  // namespace nines::cli
