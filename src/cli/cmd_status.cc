// nines status [--verbose] [--format humane|json|yaml] [--root DIR]
//   From the running agent over its socket, else from the state it saved.
#include <cstdio>

#include "agent/agent.h"
#include "cli/commands.h"
#include "cli/format.h"

namespace nines::cli {

Runner setup_status(CLI::App& app) {
  auto root = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("humane");
  auto verbose = std::make_shared<bool>(false);
  app.add_flag("--verbose", *verbose,
               "Add versions, uptime, boot time, policy, per-process reasons");
  add_format_option(app, *format);
  app.add_option("--root", *root, "Prefix of every agent path (default: $NINES_ROOT or /)");
  return [root, format, verbose]() -> int {
    // LSB's "program is not running" (systemctl status says 3 too): the saved status is
    // still printed, but monitoring sees that nothing applies patches now.
    constexpr int kAgentNotRunning = 3;
    auto paths = agent::Paths::make(*root);
    auto s = agent::request(paths, "status", 30);
    bool running = true;
    if (!s) {
      auto saved = agent::saved_status(paths);
      if (!saved) {
        std::fprintf(stderr, "nines status: %s; %s\n", s.error().message.c_str(),
                     saved.error().message.c_str());
        return kAgentNotRunning;
      }
      s = std::move(saved);
      running = false;
    }
    std::fputs(*format == "yaml" ? render_document(*s, "yaml").c_str()
                                : agent::format_status(*s, *format, *verbose).c_str(),
               stdout);
    return running ? 0 : kAgentNotRunning;
  };
}

}  // namespace nines::cli
