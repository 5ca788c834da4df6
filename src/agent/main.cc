// nines-agent: the agent daemon on its own (src/agent/agent.h, docs/AGENT.md). `nines agent`
// runs it; it is a separate binary so that the daemon maps only what it needs: no HTTP or
// TLS library, no PostgreSQL client, no server (server_link.h says why).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "agent/agent.h"
#include "cli/manpage.h"
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
  std::string man_dir;  // scripts/package: the man page from these definitions
  app.add_option("--man", man_dir, "Write nines-agent.1 into this folder")->group("");
  CLI11_PARSE(app, argc, argv);
  if (!man_dir.empty()) {
    nines::cli::ManExtra extra{
        "The agent daemon of nines: checks the patch server, decides by the policy in "
        "/etc/nines/config.toml (and /etc/nines/config.d/), applies kernel and user-space "
        "patches, and reports. The systemd unit nines-agent.service runs it as `nines agent`.",
        "0\tstopped by SIGTERM or SIGINT, or --once done\n1\ta fatal error at start\n"
        "2\ta usage error"};
    auto page = nines::cli::render_manpage(app, "nines-agent", NINES_VERSION, extra);
    FILE* f = std::fopen((man_dir + "/nines-agent.1").c_str(), "w");
    if (!f || std::fputs(page.c_str(), f) < 0 || std::fclose(f) != 0) {
      std::perror(man_dir.c_str());
      return 1;
    }
    return 0;
  }
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
