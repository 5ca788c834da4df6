// nines status [--verbose] [--format humane|json|yaml] [--root DIR]
//   From the running agent over its socket, else from the state it saved.
#include <cstdio>

#include "agent/agent.h"
#include "cli/commands.h"

namespace nines::cli {

Runner setup_status(CLI::App& app) {
  auto root = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("humane");
  auto verbose = std::make_shared<bool>(false);
  app.add_flag("--verbose", *verbose,
               "Add versions, uptime, boot time, policy, per-process reasons");
  app.add_option("--format", *format, "humane (default), json or yaml")
      ->check(CLI::IsMember({"humane", "json", "yaml"}));
  app.add_option("--root", *root, "Prefix of every agent path (default: $NINES_ROOT or /)");
  return [root, format, verbose]() -> int {
    auto paths = agent::Paths::make(*root);
    auto s = agent::request(paths, "status", 30);
    if (!s) {
      auto saved = agent::saved_status(paths);
      if (!saved) {
        std::fprintf(stderr, "nines status: %s; %s\n", s.error().message.c_str(),
                     saved.error().message.c_str());
        return 1;
      }
      s = std::move(saved);
    }
    std::fputs(agent::format_status(*s, *format, *verbose).c_str(), stdout);
    return 0;
  };
}

}  // namespace nines::cli
