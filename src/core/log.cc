#include "core/log.h"

#include <cstdlib>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace nines {

void init_logging(int verbosity) {
  auto logger = spdlog::stderr_color_mt("nines");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::level::level_enum lvl = spdlog::level::warn;
  if (verbosity == 1) lvl = spdlog::level::info;
  if (verbosity >= 2) lvl = spdlog::level::debug;
  if (verbosity < 0) lvl = spdlog::level::err;
  if (const char* env = std::getenv("NINES_LOG")) lvl = spdlog::level::from_str(env);
  spdlog::set_level(lvl);
}

}  // namespace nines
