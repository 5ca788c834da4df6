// Logging goes to stderr through spdlog; the level comes from -v/-q or NINES_LOG
// (trace, debug, info, warn, error).
#pragma once

#include <spdlog/spdlog.h>

namespace nines {
void init_logging(int verbosity);
}  // namespace nines
