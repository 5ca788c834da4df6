#include "proc/remote.h"

#include <sys/syscall.h>

#include <cstring>

namespace nines::proc {

Result<uint64_t> find_syscall_gadget(const ProcessMemory& mem, const std::vector<MapEntry>& maps) {
  std::vector<const MapEntry*> order;
  for (const auto& m : maps)
    if (m.exec && m.read && m.path == "[vdso]") order.push_back(&m);
  for (const auto& m : maps)
    if (m.exec && m.read && m.path != "[vdso]" && m.path != "[vsyscall]") order.push_back(&m);
  for (const MapEntry* m : order) {
    constexpr size_t kChunk = 64 * 1024;
    for (uint64_t a = m->start; a < m->end; a += kChunk - 1) {
      size_t len = static_cast<size_t>(std::min<uint64_t>(kChunk, m->end - a));
      auto bytes = mem.read(a, len);
      if (!bytes) break;
      for (size_t i = 0; i + 1 < bytes->size(); ++i)
        if (static_cast<uint8_t>((*bytes)[i]) == 0x0f && static_cast<uint8_t>((*bytes)[i + 1]) == 0x05)
          return a + i;
      if (len < kChunk) break;
    }
  }
  return make_error("pid {}: no syscall instruction found in executable memory", mem.pid());
}

Result<RemoteSyscalls> RemoteSyscalls::begin(PtraceSession& session, pid_t tid, uint64_t gadget) {
  RemoteSyscalls r;
  r.session_ = &session;
  r.tid_ = tid;
  r.gadget_ = gadget;
  r.saved_ = NINES_TRY(session.get_regs(tid));
  r.saved_xstate_ = NINES_TRY(session.get_xstate(tid));
  // Apply a pending system-call restart ourselves, so that the exact registers we restore
  // later resume the interrupted call correctly (see arch_x86_64.h).
  arch::normalize_restart(r.saved_);
  r.active_ = true;
  return r;
}

RemoteSyscalls::RemoteSyscalls(RemoteSyscalls&& o) noexcept
    : session_(o.session_), tid_(o.tid_), gadget_(o.gadget_), saved_(o.saved_),
      saved_xstate_(std::move(o.saved_xstate_)), active_(o.active_) {
  o.active_ = false;
}

RemoteSyscalls::~RemoteSyscalls() { (void)finish(); }

Result<uint64_t> RemoteSyscalls::call(const char* name, long nr, uint64_t a0, uint64_t a1,
                                      uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
  if (!active_) return make_error("remote {}: session finished", name);
  arch::Regs regs = saved_;
  const uint64_t args[6] = {a0, a1, a2, a3, a4, a5};
  arch::setup_syscall(regs, gadget_, nr, args);
  NINES_CHECK(session_->set_regs(tid_, regs));
  stepped_ = true;
  NINES_CHECK(session_->single_step(tid_));
  arch::Regs after = NINES_TRY(session_->get_regs(tid_));
  if (arch::instruction_pointer(after) != gadget_ + 2)
    return make_error("remote {} in tid {}: thread stopped at {:#x}, not after the syscall",
                      name, tid_, arch::instruction_pointer(after));
  uint64_t res = arch::syscall_result(after);
  if (static_cast<int64_t>(res) < 0 && static_cast<int64_t>(res) > -4096)
    return errno_error(fmt::format("remote {} in pid {}", name, session_->pid()),
                       static_cast<int>(-static_cast<int64_t>(res)));
  return res;
}

Status RemoteSyscalls::finish() {
  if (!active_) return {};
  active_ = false;
  if (stepped_) {
    // A single step leaves the trap flag set until the thread is resumed some other way,
    // and if nines died before that (killed mid-switch), the thread would take a SIGTRAP
    // that kills the process. Resume it to the entry of one more system call (getpid) with
    // PTRACE_SYSCALL, which clears the flag, and restore its registers there: the saved
    // orig_rax of -1 makes the kernel skip that call, so the thread returns to where it
    // was, now or whenever it is released. One stop, however many calls were made.
    arch::Regs regs = saved_;
    const uint64_t none[6] = {};
    arch::setup_syscall(regs, gadget_, SYS_getpid, none);
    NINES_CHECK(session_->set_regs(tid_, regs));
    NINES_CHECK(session_->to_syscall_stop(tid_));
  }
  arch::Regs regs = saved_;
  regs.orig_rax = static_cast<unsigned long long>(-1);
  NINES_CHECK(session_->set_regs(tid_, regs));
  NINES_CHECK(session_->set_xstate(tid_, saved_xstate_));
  return {};
}

}  // namespace nines::proc
