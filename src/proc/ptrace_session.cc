#include "proc/ptrace_session.h"

#include <elf.h>
#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "core/clock.h"
#include "proc/maps.h"

namespace nines::proc {

PtraceSession::PtraceSession(PtraceSession&& o) noexcept { *this = std::move(o); }

PtraceSession& PtraceSession::operator=(PtraceSession&& o) noexcept {
  if (this != &o) {
    release();
    pid_ = o.pid_;
    tids_ = std::move(o.tids_);
    pending_signal_ = std::move(o.pending_signal_);
    freeze_ns_ = o.freeze_ns_;
    released_ = o.released_;
    o.released_ = true;
    o.tids_.clear();
  }
  return *this;
}

PtraceSession::~PtraceSession() { release(); }

Status PtraceSession::seize_and_interrupt(pid_t tid, std::vector<pid_t>& pending) {
  // TRACESYSGOOD marks syscall stops; EXITKILL is deliberately NOT set: if nines dies,
  // the target must keep running, not die with us.
  if (ptrace(PTRACE_SEIZE, tid, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD)) != 0) {
    if (errno == ESRCH) return {};  // exited meanwhile
    return errno_error(fmt::format("ptrace(SEIZE) pid {} tid {}", pid_, tid));
  }
  released_ = false;
  tids_.push_back(tid);
  if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) {
    if (errno == ESRCH) return {};
    return errno_error(fmt::format("ptrace(INTERRUPT) pid {} tid {}", pid_, tid));
  }
  pending.push_back(tid);
  return {};
}

Status PtraceSession::wait_stopped(pid_t tid) {
  for (;;) {
    int status = 0;
    pid_t r = waitpid(tid, &status, __WALL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) {  // gone
        tids_.erase(std::remove(tids_.begin(), tids_.end(), tid), tids_.end());
        return {};
      }
      return errno_error(fmt::format("waitpid tid {}", tid));
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      tids_.erase(std::remove(tids_.begin(), tids_.end(), tid), tids_.end());
      return {};
    }
    if (!WIFSTOPPED(status)) continue;
    int sig = WSTOPSIG(status);
    int event = status >> 16;
    if (event == PTRACE_EVENT_STOP) return {};  // our interrupt (or a group stop)
    if (event != 0 || sig == (SIGTRAP | 0x80)) {
      // Some other ptrace event: not expected, but stopped is stopped.
      return {};
    }
    // A signal-delivery-stop: the signal was on its way when we interrupted. Keep it
    // for re-delivery at detach, so the target sees every signal it was sent.
    pending_signal_[tid] = sig;
    return {};
  }
}

Result<PtraceSession> PtraceSession::freeze_all(pid_t pid) {
  PtraceSession s;
  s.pid_ = pid;
  std::set<pid_t> seen;
  int64_t t0 = 0;
  for (int round = 0; round < 1000; ++round) {
    auto tids = list_threads(pid);
    if (!tids) return tids.error();
    std::vector<pid_t> pending;
    for (pid_t tid : *tids) {
      if (!seen.insert(tid).second) continue;
      if (t0 == 0) t0 = monotonic_ns();
      NINES_CHECK(s.seize_and_interrupt(tid, pending));
    }
    if (pending.empty()) {
      if (s.tids_.empty()) return make_error("pid {}: no thread could be attached (has it exited?)", pid);
      s.freeze_ns_ = monotonic_ns() - t0;
      return s;
    }
    for (pid_t tid : pending) NINES_CHECK(s.wait_stopped(tid));
  }
  return make_error("pid {}: threads keep appearing; cannot freeze", pid);
}

Result<PtraceSession> PtraceSession::freeze_one(pid_t pid, pid_t tid) {
  PtraceSession s;
  s.pid_ = pid;
  std::vector<pid_t> pending;
  int64_t t0 = monotonic_ns();
  NINES_CHECK(s.seize_and_interrupt(tid, pending));
  for (pid_t t : pending) NINES_CHECK(s.wait_stopped(t));
  if (s.tids_.empty()) return make_error("pid {} tid {}: exited while attaching", pid, tid);
  s.freeze_ns_ = monotonic_ns() - t0;
  return s;
}

Result<arch::Regs> PtraceSession::get_regs(pid_t tid) const {
  arch::Regs regs{};
  if (ptrace(PTRACE_GETREGS, tid, nullptr, &regs) != 0)
    return errno_error(fmt::format("ptrace(GETREGS) tid {}", tid));
  return regs;
}

Status PtraceSession::set_regs(pid_t tid, const arch::Regs& regs) const {
  if (ptrace(PTRACE_SETREGS, tid, nullptr, &regs) != 0)
    return errno_error(fmt::format("ptrace(SETREGS) tid {}", tid));
  return {};
}

Result<std::string> PtraceSession::get_xstate(pid_t tid) const {
  std::string buf(16384, '\0');
  iovec iov{buf.data(), buf.size()};
  if (ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0)
    return errno_error(fmt::format("ptrace(GETREGSET xstate) tid {}", tid));
  buf.resize(iov.iov_len);
  return buf;
}

Status PtraceSession::set_xstate(pid_t tid, const std::string& xstate) const {
  std::string copy = xstate;
  iovec iov{copy.data(), copy.size()};
  if (ptrace(PTRACE_SETREGSET, tid, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0)
    return errno_error(fmt::format("ptrace(SETREGSET xstate) tid {}", tid));
  return {};
}

Status PtraceSession::resume_until(pid_t tid, int request, int want, const char* what) {
  const char* req = request == PTRACE_SINGLESTEP ? "SINGLESTEP" : "SYSCALL";
  if (ptrace(static_cast<__ptrace_request>(request), tid, nullptr, nullptr) != 0)
    return errno_error(fmt::format("ptrace({}) tid {}", req, tid));
  for (;;) {
    int status = 0;
    pid_t r = waitpid(tid, &status, __WALL);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno_error(fmt::format("waitpid tid {}", tid));
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      tids_.erase(std::remove(tids_.begin(), tids_.end(), tid), tids_.end());
      return make_error("tid {} exited during {}", tid, what);
    }
    if (!WIFSTOPPED(status)) continue;
    int sig = WSTOPSIG(status);
    if (sig == want && (status >> 16) == 0) return {};
    // A leftover interrupt stop resumes as is; a signal that arrived is kept for detach
    // rather than delivered now.
    if ((status >> 16) == 0) pending_signal_[tid] = sig;
    if (ptrace(static_cast<__ptrace_request>(request), tid, nullptr, nullptr) != 0)
      return errno_error(fmt::format("ptrace({}) tid {}", req, tid));
  }
}

Status PtraceSession::single_step(pid_t tid) {
  return resume_until(tid, PTRACE_SINGLESTEP, SIGTRAP, "a single step");
}

Status PtraceSession::to_syscall_stop(pid_t tid) {
  return resume_until(tid, PTRACE_SYSCALL, SIGTRAP | 0x80, "an injected system call");
}

Status PtraceSession::nudge(const std::vector<pid_t>& tids, int run_us) {
  std::vector<pid_t> running;
  for (pid_t tid : tids) {
    int sig = 0;
    if (auto it = pending_signal_.find(tid); it != pending_signal_.end()) {
      sig = it->second;  // deliver it now rather than at detach
      pending_signal_.erase(it);
    }
    if (ptrace(PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig))) != 0)
      return errno_error(fmt::format("ptrace(CONT) tid {}", tid));
    running.push_back(tid);
  }
  int64_t until = monotonic_ns() + static_cast<int64_t>(run_us) * 1000;
  while (monotonic_ns() < until) {
  }
  std::vector<pid_t> pending;
  for (pid_t tid : running) {
    if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) {
      if (errno == ESRCH) {  // exited meanwhile
        tids_.erase(std::remove(tids_.begin(), tids_.end(), tid), tids_.end());
        continue;
      }
      return errno_error(fmt::format("ptrace(INTERRUPT) tid {}", tid));
    }
    pending.push_back(tid);
  }
  for (pid_t tid : pending) NINES_CHECK(wait_stopped(tid));
  return {};
}

void PtraceSession::release() {
  if (released_) return;
  released_ = true;
  for (pid_t tid : tids_) {
    int sig = 0;
    if (auto it = pending_signal_.find(tid); it != pending_signal_.end()) sig = it->second;
    ptrace(PTRACE_DETACH, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig)));
  }
  tids_.clear();
  pending_signal_.clear();
}

RealtimeGuard::RealtimeGuard() {
  old_policy_ = sched_getscheduler(0);
  sched_param old{};
  sched_getparam(0, &old);
  old_priority_ = old.sched_priority;
  sched_param p{};
  p.sched_priority = sched_get_priority_max(SCHED_FIFO) / 2;
  active_ = sched_setscheduler(0, SCHED_FIFO, &p) == 0;
}

RealtimeGuard::~RealtimeGuard() {
  if (!active_) return;
  sched_param p{};
  p.sched_priority = old_priority_;
  sched_setscheduler(0, old_policy_, &p);
}

}  // namespace nines::proc
