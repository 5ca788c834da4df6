// nines config [KEY=VALUE ...] [--root DIR]
//   Shows the policy, or sets keys in config.toml (the agent picks changes up by itself).
#include <cstdio>

#include "agent/config.h"
#include "cli/commands.h"

namespace nines::cli {

Runner setup_config(CLI::App& app) {
  auto root = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  app.add_option("settings", *sets, "KEY=VALUE to set (keys: docs/AGENT.md)");
  app.add_option("--root", *root, "Prefix of every agent path (default: $NINES_ROOT or /)");
  return [root, sets]() -> int {
    auto paths = agent::Paths::make(*root);
    auto p = agent::load_policy(paths.config_file);
    if (!p) {
      std::fprintf(stderr, "nines config: %s\n", p.error().message.c_str());
      return 2;
    }
    // Every setting is validated before the file is written: all or nothing.
    for (const auto& kv : *sets) {
      auto eq = kv.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "nines config: '%s': expected KEY=VALUE\n", kv.c_str());
        return 2;
      }
      auto st = agent::set_policy_key(*p, kv.substr(0, eq), kv.substr(eq + 1));
      if (!st) {
        std::fprintf(stderr, "nines config: %s\n", st.error().message.c_str());
        return 2;
      }
    }
    if (!sets->empty()) {
      auto st = agent::save_policy(paths.config_file, *p);
      if (!st) {
        std::fprintf(stderr, "nines config: %s\n", st.error().message.c_str());
        return 1;
      }
    }
    for (const auto& k : agent::policy_keys())
      std::printf("%s = %s\n", k.c_str(), agent::policy_value(*p, k).c_str());
    return 0;
  };
}

}  // namespace nines::cli
