// nines refresh [--retry] [--root DIR]
//   Asks the running agent to check the server now and prints the outcome.
#include <cstdio>

#include "agent/agent.h"
#include "cli/commands.h"

namespace nines::cli {

Runner setup_refresh(CLI::App& app) {
  auto root = std::make_shared<std::string>();
  auto retry = std::make_shared<bool>(false);
  app.add_option("--root", *root, "Prefix of every agent path (default: $NINES_ROOT or /)");
  app.add_flag("--retry", *retry, "Also retry patches whose apply failed or was interrupted");
  return [root, retry]() -> int {
    auto paths = agent::Paths::make(*root);
    auto r = agent::request(paths, *retry ? "refresh-retry" : "refresh", 180);
    if (!r) {
      std::fprintf(stderr, "nines refresh: %s (is `nines agent` running?)\n",
                   r.error().message.c_str());
      return 1;
    }
    std::printf("last check: %s (%s)\n",
                r->value("last_check", nlohmann::json("never")).dump().c_str(),
                r->value("last_check_result", "").c_str());
    return r->value("last_check_result", "").rfind("ok", 0) == 0 ? 0 : 1;
  };
}

}  // namespace nines::cli
