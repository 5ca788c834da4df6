// System calls run inside a stopped thread of another process ("injected"): the
// thread's registers (and vector state) are saved, it is pointed at a `syscall`
// instruction already present in its executable memory, single-stepped over it, and its
// exact registers are restored when the RemoteSyscalls object is finished or destroyed.
// Nothing of the target's own code runs: no loader, no allocator, no locks.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "proc/arch_x86_64.h"
#include "proc/maps.h"
#include "proc/memory.h"
#include "proc/ptrace_session.h"

namespace nines::proc {

// Finds a `syscall` instruction in the process's executable mappings ([vdso] first).
Result<uint64_t> find_syscall_gadget(const ProcessMemory& mem, const std::vector<MapEntry>& maps);

class RemoteSyscalls {
 public:
  // `tid` must be stopped in `session`.
  static Result<RemoteSyscalls> begin(PtraceSession& session, pid_t tid, uint64_t gadget);
  RemoteSyscalls(RemoteSyscalls&&) noexcept;
  RemoteSyscalls& operator=(RemoteSyscalls&&) = delete;
  ~RemoteSyscalls();

  // Runs one system call; returns its raw result (negative errno values are failures
  // and come back as an Error naming the call).
  Result<uint64_t> call(const char* name, long nr, uint64_t a0 = 0, uint64_t a1 = 0,
                        uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0);
  // Restores the thread's registers. Called by the destructor if not before.
  Status finish();

 private:
  RemoteSyscalls() = default;
  PtraceSession* session_ = nullptr;
  pid_t tid_ = 0;
  uint64_t gadget_ = 0;
  arch::Regs saved_{};
  std::string saved_xstate_;
  bool active_ = false;
  bool stepped_ = false;  // a single step left the trap flag set (finish clears it)
};

}  // namespace nines::proc
