// nines agent [--root DIR] [--once]
//   The daemon (the systemd unit runs it): execs nines-agent, installed next to nines, in
//   the same process (so systemd's main pid and the notify socket stay the same). See
//   src/agent/main.cc, src/agent/agent.h and docs/AGENT.md.
#include <unistd.h>

#include "cli/commands.h"
#include "core/log.h"
#include "agent/server_link.h"
#include "core/subprocess.h"

namespace nines::cli {

Runner setup_agent(CLI::App& app) {
  auto root = std::make_shared<std::string>();
  auto once = std::make_shared<bool>(false);
  app.add_option("--root", *root, "Prefix of every agent path (default: $NINES_ROOT or /)");
  app.add_flag("--once", *once, "One check, then exit");
  return [root, once]() -> int {
    auto exe = sibling_program("nines-agent");
    if (!exe) {
      spdlog::error("nines agent: {}", exe.error().message);
      return 1;
    }
    std::vector<std::string> args = {*exe, "--log-level",
                                     spdlog::level::to_string_view(spdlog::get_level()).data()};
    if (!root->empty()) args.insert(args.end(), {"--root", *root});
    if (*once) args.push_back("--once");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    spdlog::error("nines agent: exec {}: {}", *exe, strerror(errno));
    return 1;
  };
}

// nines agent-exchange: the agent's HTTP(S) and advisor work, for the length of one check
// (src/agent/server_link.h). Not for people: hidden from --help.
Runner setup_agent_exchange(CLI::App&) {
  return [] { return agent::run_exchange(); };
}

}  // namespace nines::cli
