// Shared helpers of the process-facing subcommands (apply, revert, list).
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "core/result.h"

namespace nines::cli {

// Parses "1234,5678" (repeated --pid options are joined). Fails on anything else.
Result<std::vector<pid_t>> parse_pids(const std::vector<std::string>& args);

// Runs `work` in a worker process that is in its own session and ignores SIGINT, SIGTERM,
// SIGHUP and SIGPIPE, and returns its exit status. If this (the CLI) process is killed
// while a target is frozen or half staged, the worker still finishes the switch or rolls
// it back: a target is never left stopped or half patched because `nines` was killed.
int run_in_worker(const std::function<int()>& work);

}  // namespace nines::cli
