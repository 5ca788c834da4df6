// The consistency check run while the target is frozen: no thread may sit inside bytes
// about to be overwritten (always), and by default no thread may have a frame in a
// function being replaced or in patch code about to be unmapped.
//
// The stack rule is checked in two steps to keep the stop window short: a conservative
// scan of each thread's live stack (rsp up to the end of its stack mapping) for words that
// point into a guarded range; only a thread with such a word is unwound precisely with
// libunwind-ptrace, which decides. A frame in a function needs its return address on the
// stack, so a thread without a hit cannot have one.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "proc/maps.h"
#include "proc/memory.h"
#include "proc/ptrace_session.h"

namespace nines::ulp {

struct GuardedRange {
  uint64_t lo = 0, hi = 0;  // [lo, hi)
  std::string name;
};

struct Conflict {
  pid_t tid = 0;
  std::string description;  // "tid 4711 has frame #2 in parse_header (0x7f..)"
};

// Returns every conflicting thread (at most one conflict per thread); empty when the
// switch is safe.
Result<std::vector<Conflict>> check_consistency(const proc::PtraceSession& session,
                                                  const proc::ProcessMemory& mem,
                                                  const std::vector<proc::MapEntry>& maps,
                                                  const std::vector<GuardedRange>& write_ranges,
                                                  const std::vector<GuardedRange>& stack_ranges);

}  // namespace nines::ulp
