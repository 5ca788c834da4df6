// nines disable [--root DIR]
//   Stops applying and reverts everything nines' agent applied (through the running agent,
//   or directly when no agent runs).
#include <cstdio>

#include "agent/agent.h"
#include "cli/commands.h"
#include "cli/pids.h"

namespace nines::cli {

namespace {
int print_result(const nlohmann::json& r) {
  for (const auto& x : r.value("reverted", nlohmann::json::array()))
    std::printf("reverted %s in pid %d\n", x.value("id", "").c_str(), x.value("pid", 0));
  int failed = 0;
  for (const auto& x : r.value("failed", nlohmann::json::array())) {
    ++failed;
    std::printf("FAILED to revert %s: %s\n", x.value("id", "").c_str(),
                x.value("error", "").c_str());
  }
  std::printf("disabled%s\n", failed ? " (some reverts failed)" : "");
  return failed ? 1 : 0;
}
}  // namespace

Runner setup_disable(CLI::App& app) {
  auto root = std::make_shared<std::string>();
  app.add_option("--root", *root, "Prefix of every agent path (default: $NINES_ROOT or /)");
  return [root]() -> int {
    auto paths = agent::Paths::make(*root);
    auto r = agent::request(paths, "disable", 300);
    if (r) return print_result(*r);
    // No agent: revert here, in a worker that survives this process being killed.
    return run_in_worker([&]() -> int {
      auto db = agent::StateDb::open(paths.state_db());
      if (!db) {
        std::fprintf(stderr, "nines disable: %s\n", db.error().message.c_str());
        return 1;
      }
      return print_result(agent::revert_all(*db, paths));
    });
  };
}

}  // namespace nines::cli
