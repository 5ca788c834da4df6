#include "cli/forward.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "core/subprocess.h"

namespace nines::cli {

Runner setup_forward_to_network_program(CLI::App& sub) {
  // Everything after the name passes through: nines-net parses it (and answers --help).
  sub.prefix_command();
  sub.fallthrough(false);  // main() makes the root options fall through; here all pass on
  sub.set_help_flag();
  return [&sub]() -> int {
    std::string name = sub.get_name();
    auto exe = sibling_program(kNetworkProgram);
    if (!exe) {
      std::fprintf(stderr, "nines %s: %s\n", name.c_str(), exe.error().message.c_str());
      return 1;
    }
    // argv[0] "nines": nines-net's usage and errors then read as this command's.
    std::vector<std::string> args = {"nines"};
    // -v flags were parsed here; pass the level on (NINES_LOG passes through the environment).
    if (spdlog::get_level() <= spdlog::level::debug) args.push_back("-vv");
    else if (spdlog::get_level() <= spdlog::level::info) args.push_back("-v");
    args.push_back(name);
    for (const std::string& a : sub.remaining()) args.push_back(a);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(nullptr);
    ::execv(exe->c_str(), argv.data());
    std::fprintf(stderr, "nines %s: exec %s: %s\n", name.c_str(), exe->c_str(), std::strerror(errno));
    return 1;
  };
}

}  // namespace nines::cli
