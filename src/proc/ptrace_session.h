// Owning ptrace attachment to the threads of one process. Every operation on another
// process's threads is declared here (remote syscalls in remote.h build on it).
//
// Freezing follows DESIGN.md: PTRACE_SEIZE every thread of /proc/PID/task, PTRACE_INTERRUPT
// all of them before waiting on any, then rescan the task list until no new thread shows
// up; threads that exit meanwhile are dropped. The destructor detaches every thread, so no
// error path can leave a thread stopped; if this process dies, the kernel detaches them.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "proc/arch_x86_64.h"

namespace nines::proc {

class PtraceSession {
 public:
  // Seizes and stops every thread of `pid`.
  static Result<PtraceSession> freeze_all(pid_t pid);
  // Seizes and stops one thread only (for work that other threads may run alongside).
  static Result<PtraceSession> freeze_one(pid_t pid, pid_t tid);

  PtraceSession(PtraceSession&&) noexcept;
  PtraceSession& operator=(PtraceSession&&) noexcept;
  PtraceSession(const PtraceSession&) = delete;
  PtraceSession& operator=(const PtraceSession&) = delete;
  ~PtraceSession();

  pid_t pid() const { return pid_; }
  // The stopped threads, in task-list order.
  const std::vector<pid_t>& tids() const { return tids_; }

  Result<arch::Regs> get_regs(pid_t tid) const;
  Status set_regs(pid_t tid, const arch::Regs& regs) const;
  // The extended (vector) register state, as an opaque buffer.
  Result<std::string> get_xstate(pid_t tid) const;
  Status set_xstate(pid_t tid, const std::string& xstate) const;
  // Runs exactly one instruction of `tid` and waits for it to stop again.
  Status single_step(pid_t tid);
  // Resumes `tid` until its next system-call stop (entry or exit; TRACESYSGOOD). Unlike a
  // single step, this leaves no trap flag behind: if nines dies afterwards, the thread
  // runs on instead of taking a SIGTRAP that would kill the process.
  Status to_syscall_stop(pid_t tid);

  // Lets some stopped threads run for about `run_us` microseconds while the others stay
  // stopped, then stops them again. Used to let threads leave a function being replaced
  // without releasing the whole process.
  Status nudge(const std::vector<pid_t>& tids, int run_us);

  // Resumes every thread (re-delivering signals that arrived while it was stopped).
  // Idempotent; the destructor calls it.
  void release();

  // Nanoseconds from the first PTRACE_INTERRUPT to the moment all threads were stopped.
  int64_t freeze_ns() const { return freeze_ns_; }

 private:
  // Resumes `tid` with `request` (PTRACE_SINGLESTEP or PTRACE_SYSCALL) until it stops with
  // signal `want`.
  Status resume_until(pid_t tid, int request, int want, const char* what);
  PtraceSession() = default;
  Status seize_and_interrupt(pid_t tid, std::vector<pid_t>& pending);
  Status wait_stopped(pid_t tid);

  pid_t pid_ = 0;
  std::vector<pid_t> tids_;
  std::map<pid_t, int> pending_signal_;  // signals seen while stopped, re-delivered on detach
  int64_t freeze_ns_ = 0;
  bool released_ = true;
};

// Raises this process to SCHED_FIFO for the lifetime of the guard (the stop window is
// what users feel; see DESIGN.md for the measured difference), and restores the old
// policy after. Silently does nothing when not permitted.
class RealtimeGuard {
 public:
  RealtimeGuard();
  ~RealtimeGuard();
  RealtimeGuard(const RealtimeGuard&) = delete;
  RealtimeGuard& operator=(const RealtimeGuard&) = delete;
  bool active() const { return active_; }

 private:
  int old_policy_ = 0;
  int old_priority_ = 0;
  bool active_ = false;
};

}  // namespace nines::proc
