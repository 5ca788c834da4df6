// nines man --output DIR: writes the man pages of nines and of each subcommand from the
// CLI's own definitions (src/cli/manpage.h). scripts/package runs it; hidden from --help.
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/manpage.h"

namespace nines::cli {

namespace {

// The exit statuses every command shares (0 done, 1 failed, 2 usage) and the commands
// that say more. `check` differs: its 2 is a verdict, so its usage errors exit 3.
constexpr const char* kCommonExit =
    "0\tsuccess\n1\tthe operation failed (the message names what and why)\n"
    "2\ta usage error: an unknown command or option, a missing or malformed value";

std::map<std::string, ManExtra> extras() {
  std::map<std::string, ManExtra> m;
  m[""] = {"nines replaces vulnerable functions in the running kernel and in running "
           "processes without a restart, fetches signed patches from a patch server, applies "
           "them under the administrator's policy, and tells what still needs a service "
           "restart or a reboot. Each command has its own page, nines-COMMAND(1). "
           "-v (more log output, repeat for debug) works before and after the command.",
           kCommonExit};
  for (const char* c : {"build", "revert", "keygen", "bundle", "kernel", "serve", "admin",
                        "enable", "disable", "agent", "config", "list"})
    m[c].exit_status = kCommonExit;
  m["apply"].exit_status =
      "0\tevery process (or the kernel) ended fully patched, or already was\n"
      "1\tat least one process or the kernel could not be patched (each is left as it was)\n"
      "2\ta usage error";
  m["check"].exit_status =
      "0\tnothing pending\n1\tservice restarts pending\n"
      "2\ta reboot is required\n3\tan error, a usage error included";
  m["refresh"].exit_status =
      "0\tthe agent checked the server\n1\tthe server could not be reached, or no agent "
      "runs\n2\ta usage error";
  m["status"].exit_status =
      "0\tthe agent is running\n1\tan error reading the status\n2\ta usage error\n"
      "3\tthe agent is not running (the saved status is shown)";
  return m;
}

}  // namespace

Runner setup_man(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  app.add_option("--output", *dir, "Folder for the pages (created)")->required();
  return [&app, dir] {
    ::mkdir(dir->c_str(), 0755);
    const CLI::App* root = app.get_parent();
    auto pages = write_manpages(*root, "nines", NINES_VERSION, *dir, extras());
    if (!pages) {
      std::fprintf(stderr, "nines man: %s\n", pages.error().message.c_str());
      return 1;
    }
    return 0;
  };
}

}  // namespace nines::cli
