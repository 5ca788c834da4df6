// Running other programs (the compiler, objcopy, kbuild, qemu) with an argument vector,
// never through a shell.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace nines {

struct ProcessResult {
  int exit_code = -1;   // -1 when killed by a signal
  int signal = 0;
  std::string output;   // stdout and stderr interleaved
};

// Runs argv[0] (looked up in PATH) and waits. Fails only when it cannot be started;
// a non-zero exit is reported in the result, not as an error.
Result<ProcessResult> run_process(const std::vector<std::string>& argv,
                                  const std::string& cwd = {});

// Like run_process, but a non-zero exit becomes an error quoting the tail of the output.
Result<std::string> run_checked(const std::vector<std::string>& argv,
                                const std::string& cwd = {});

// A program installed next to the running one (nines and nines-agent share a directory, in
// the build tree as in the package): DIR(/proc/self/exe)/NAME. Fails naming the path when
// no executable is there.
Result<std::string> sibling_program(const std::string& name);

}  // namespace nines
