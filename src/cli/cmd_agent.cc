// nines agent [--root DIR] [--once]
//   The daemon (the systemd unit runs it). See src/agent/agent.h and docs/AGENT.md.
#include "agent/agent.h"
#include "cli/commands.h"

namespace nines::cli {

Runner setup_agent(CLI::App& app) {
  auto root = std::make_shared<std::string>();
  auto once = std::make_shared<bool>(false);
  app.add_option("--root", *root, "Prefix of every agent path (default: $NINES_ROOT or /)");
  app.add_flag("--once", *once, "One check, then exit");
  return [root, once]() -> int {
    agent::AgentOptions o;
    o.paths = agent::Paths::make(*root);
    o.once = *once;
    return agent::run_agent(o);
  };
}

}  // namespace nines::cli
