// nines-agent: the agent daemon on its own (src/agent/agent.h, docs/AGENT.md). `nines agent`
// runs it; it is a separate binary so that the daemon maps only what it needs: no HTTP or
// TLS library, no PostgreSQL client, no server (server_link.h says why).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "agent/agent.h"
#include "core/log.h"

#ifndef NINES_VERSION
#define NINES_VERSION "0"
#endif

int main(int argc, char** argv) {
  CLI::App app{"nines-agent: the nines agent daemon (usually started as `nines agent`)"};
  std::string root, level;
  bool once = false, version = false;
  int hold_applying_ms = 0;
  app.add_option("--root", root, "Prefix of every agent path (default: $NINES_ROOT or /)");
  app.add_flag("--once", once, "One check, then exit");
  app.add_option("--log-level", level, "trace, debug, info, warn (default), error");
  app.add_flag("--version", version, "Print the version and exit");
  // A test seam, not a feature: the e2e test kills the agent while an apply is journaled
  // (AgentHooks::before_apply). Hidden from --help.
  app.add_option("--test-hold-applying-ms", hold_applying_ms)->group("");
  CLI11_PARSE(app, argc, argv);
  if (version) {
    std::printf("nines-agent %s\n", NINES_VERSION);
    return 0;
  }
  nines::init_logging(0);  // NINES_LOG or --log-level change it
  if (!level.empty()) spdlog::set_level(spdlog::level::from_str(level));
  nines::agent::AgentOptions o;
  o.paths = nines::agent::Paths::make(root);
  o.once = once;
  if (hold_applying_ms > 0)
    o.hooks.before_apply = [hold_applying_ms](const std::string&, int64_t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(hold_applying_ms));
    };
  return nines::agent::run_agent(o);
}
