#include "ulp/engine.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>

#include "core/clock.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/strings.h"
#include "proc/arch_x86_64.h"
#include "proc/memory.h"
#include "proc/ptrace_session.h"
#include "proc/remote.h"
#include "ulp/consistency.h"
#include "ulp/loader.h"

namespace nines::ulp {

namespace {

// One 5-byte write of the switch.
struct SiteWrite {
  uint64_t site = 0;
  std::string before;  // what must be there now
  std::string after;   // what we write
  std::string name;
};

struct SwitchPlan {
  std::vector<SiteWrite> writes;
  std::vector<GuardedRange> write_ranges, stack_ranges;
  // Patch code that the switch retires; unmapped afterwards only if no thread is in it.
  std::vector<GuardedRange> retired;
  uint64_t gadget = 0;  // a syscall instruction in the target, for the unmap
  // The image this switch staged (recorded in the journal), and whether to journal: a
  // rollback keeps the journal of the switch it undoes instead.
  uint64_t image_base = 0, image_size = 0;
  bool journal = true;
};

// Serializes patchers of one process: two nines processes must not interleave their
// staging and switch. The lock file is named by the process's identity as every PID
// namespace sees it alike: its own PID namespace (the inode of /proc/PID/ns/pid), its pid
// in that namespace (the last NSpid entry) and its start time (field 22 of /proc/PID/stat,
// in clock ticks since boot). A pid number alone differs between namespaces (two nines in
// two containers would take two locks for one process) and is reused (a stale lock for a
// new process). A lock on an fd of the process itself would be better still, but nothing
// of a process both exists before its first patch and is shared across namespaces (the
// registry memfd is created by that first patch). The file is removed when the lock is
// released; a waiter that got the lock on a file removed meanwhile tries again.
class ProcessLock {
 public:
  static Result<ProcessLock> take(pid_t pid) {
    std::string dir = "/run/nines";
    mkdir(dir.c_str(), 0700);
    if (access(dir.c_str(), W_OK) != 0) dir = "/tmp";
    std::string key = NINES_TRY(identity(pid));
    std::string path = fmt::format("{}/lock.{}", dir, key);
    for (;;) {
      Fd fd = NINES_TRY(Fd::open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
      if (flock(fd.get(), LOCK_EX) != 0) return errno_error(fmt::format("lock {}", path));
      struct stat held {}, now {};
      if (fstat(fd.get(), &held) == 0 && stat(path.c_str(), &now) == 0 && held.st_ino == now.st_ino &&
          held.st_dev == now.st_dev)
        return ProcessLock(std::move(fd), path);
      // Removed (and maybe re-created) by the previous holder while we waited: retry.
    }
  }
  ProcessLock(ProcessLock&& o) noexcept : fd_(std::move(o.fd_)), path_(std::move(o.path_)) {
    o.path_.clear();
  }
  ProcessLock& operator=(ProcessLock&&) = delete;
  ~ProcessLock() {
    if (!path_.empty() && fd_.valid()) unlink(path_.c_str());  // still held: nobody else has it
  }

 private:
  ProcessLock(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  static Result<std::string> identity(pid_t pid) {
    struct stat ns {};
    if (stat(fmt::format("/proc/{}/ns/pid", pid).c_str(), &ns) != 0)
      return errno_error(fmt::format("pid {}: stat /proc/{}/ns/pid", pid, pid));
    auto status = NINES_TRY(read_file(fmt::format("/proc/{}/status", pid), 1 << 16));
    std::string nspid = std::to_string(pid);
    for (auto line : split(status, '\n'))
      if (starts_with(line, "NSpid:")) {
        auto fields = split(trim(line.substr(6)), '\t');
        for (auto f : fields)
          if (!trim(f).empty()) nspid = std::string(trim(f));
      }
    auto stat_text = NINES_TRY(read_file(fmt::format("/proc/{}/stat", pid), 4096));
    size_t rp = stat_text.rfind(')');
    auto fields = rp == std::string::npos || rp + 2 > stat_text.size()
                      ? std::vector<std::string_view>{}
                      : split(std::string_view(stat_text).substr(rp + 2), ' ');
    if (fields.size() < 20) return make_error("pid {}: /proc/{}/stat: no start time", pid, pid);
    return fmt::format("{}-{}-{}", ns.st_ino, nspid, fields[19]);
  }
  Fd fd_;
  std::string path_;
};

Result<ProcessLock> lock_process(pid_t pid) { return ProcessLock::take(pid); }

// A thread of the process that can run injected system calls (not a zombie).
Result<pid_t> pick_worker_thread(pid_t pid) {
  auto tids = NINES_TRY(proc::list_threads(pid));
  for (pid_t tid : tids) {
    auto stat = read_file(fmt::format("/proc/{}/task/{}/stat", pid, tid));
    if (!stat) continue;
    size_t p = stat->rfind(')');
    if (p != std::string::npos && p + 2 < stat->size() && (*stat)[p + 2] != 'Z' && (*stat)[p + 2] != 'X')
      return tid;
  }
  return make_error("pid {}: no live thread to work in", pid);
}

// The thread to inject system calls into, among those stopped in `sess`.
Result<pid_t> stopped_worker(const proc::PtraceSession& sess) {
  pid_t tid = NINES_TRY(pick_worker_thread(sess.pid()));
  if (std::find(sess.tids().begin(), sess.tids().end(), tid) == sess.tids().end())
    return make_error("pid {}: no stopped live thread to work in", sess.pid());
  return tid;
}

// Creates the registry mapping in the target: memfd_create + ftruncate + mmap + close,
// with the name written in the scratch area below the red zone of the working thread.
Result<uint64_t> create_registry(proc::PtraceSession& sess, proc::RemoteSyscalls& rs,
                                 const proc::ProcessMemory& mem, pid_t tid) {
  auto regs = NINES_TRY(sess.get_regs(tid));
  uint64_t scratch = ((arch::stack_pointer(regs) - 128 - 64) & ~uint64_t{15});
  std::string saved = NINES_TRY(mem.read(scratch, 32));
  std::string name = std::string(kRegistryName) + '\0';
  NINES_CHECK(mem.write(scratch, name.data(), name.size()));
  auto fd = rs.call("memfd_create", SYS_memfd_create, scratch, MFD_CLOEXEC);
  (void)mem.write(scratch, saved.data(), saved.size());
  if (!fd) return fd.error();
  auto tr = rs.call("ftruncate", SYS_ftruncate, *fd, kRegistrySize);
  Result<uint64_t> addr = tr ? rs.call("mmap", SYS_mmap, 0, kRegistrySize, PROT_READ | PROT_WRITE,
                                       MAP_SHARED, *fd, 0)
                             : Result<uint64_t>(tr.error());
  (void)rs.call("close", SYS_close, *fd);
  if (!addr) return addr.error();
  std::string header = encode_header(0, 0, 0, 0);
  NINES_CHECK(mem.write(*addr, header.data(), header.size()));
  return *addr;
}

// Maps the linked image into the target, and creates the registry when missing, by
// system calls injected into one thread of the frozen process. Done inside the freeze:
// with every other thread stopped each injected call runs at once, where with the other
// threads running it would wait for a CPU behind them. Sets *taken when the chosen range
// was taken meanwhile (pick another and retry).
Status stage_in_freeze(proc::PtraceSession& sess, uint64_t gadget, const proc::ProcessMemory& mem,
                       const LinkedImage& img, bool* need_registry, uint64_t* registry, bool* taken) {
  pid_t pid = sess.pid();
  pid_t tid = NINES_TRY(stopped_worker(sess));
  auto rs = NINES_TRY(proc::RemoteSyscalls::begin(sess, tid, gadget));
  if (*need_registry) {
    *registry = NINES_TRY(create_registry(sess, rs, mem, tid));
    *need_registry = false;  // it exists now, whatever happens next
  }
  uint64_t base = img.base, size = img.bytes.size();
  // Mapped read-only first: /proc/PID/mem writes read-only pages, so only the segments
  // that need more than PROT_READ cost an mprotect.
  auto mapped = rs.call("mmap", SYS_mmap, base, size, PROT_READ,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, static_cast<uint64_t>(-1), 0);
  if (!mapped) {
    *taken = true;
    return mapped.error();
  }
  if (*mapped != base) {  // a kernel without MAP_FIXED_NOREPLACE placed it elsewhere
    (void)rs.call("munmap", SYS_munmap, *mapped, size);
    *taken = true;
    return make_error("pid {}: the kernel placed the patch at {:#x}, not {:#x}", pid, *mapped, base);
  }
  auto undo = [&](const Error& e) -> Status {
    (void)rs.call("munmap", SYS_munmap, base, size);
    return e;
  };
  if (auto w = mem.write(base, img.bytes.data(), img.bytes.size()); !w) return undo(w.error());
  // Adjacent segments with the same protection take one call.
  std::vector<SegmentProt> runs;
  for (const auto& seg : img.segments) {
    if (seg.prot == PROT_READ) continue;
    if (!runs.empty() && runs.back().prot == seg.prot && runs.back().offset + runs.back().size >= seg.offset) {
      runs.back().size = std::max(runs.back().size, seg.offset + seg.size - runs.back().offset);
      continue;
    }
    runs.push_back(seg);
  }
  for (const auto& seg : runs) {
    auto p = rs.call("mprotect", SYS_mprotect, base + seg.offset, seg.size, static_cast<uint64_t>(seg.prot));
    if (!p) return undo(p.error());
  }
  return rs.finish();
}

// Unmaps a range in the target (a staged image after a failure, or a replaced patch).
void unmap_in_target(pid_t pid, const std::vector<proc::MapEntry>& maps, const proc::ProcessMemory& mem,
                     uint64_t base, uint64_t size) {
  if (base == 0 || size == 0) return;
  auto tid = pick_worker_thread(pid);
  if (!tid) return;
  auto gadget = proc::find_syscall_gadget(mem, maps);
  if (!gadget) return;
  auto sess = proc::PtraceSession::freeze_one(pid, *tid);
  if (!sess) return;
  auto rs = proc::RemoteSyscalls::begin(*sess, *tid, *gadget);
  if (!rs) return;
  if (auto r = rs->call("munmap", SYS_munmap, base, size); !r)
    spdlog::warn("pid {}: could not unmap {:#x}: {}", pid, base, r.error().message);
}

// Writes the inactive registry slot (safe while the process runs: nobody reads it).
Result<std::string> prepare_registry(const proc::ProcessMemory& mem, uint64_t addr,
                                     const Registry& current, const Registry& next) {
  std::string text = registry_to_json(next).dump();
  if (text.size() > kSlotSize) return make_error("registry full: {} bytes", text.size());
  uint32_t slot = current.active_slot ^ 1u;
  NINES_CHECK(mem.write(addr + kSlotOffset + slot * kSlotSize, text.data(), text.size()));
  uint32_t len[2] = {0, 0};
  len[slot] = static_cast<uint32_t>(text.size());
  // The other slot length is kept so an old reader still finds the old text.
  std::string old_header = NINES_TRY(mem.read(addr, 32));
  uint32_t old_len[2];
  std::memcpy(old_len, old_header.data() + 24, 8);
  len[slot ^ 1] = old_len[slot ^ 1];
  return encode_header(slot, current.generation + 1, len[0], len[1]);
}

// Writes every redirect (checking each site still holds what the plan expects), verifies
// them, then switches the registry header; on any failure restores what was written.
Status write_all(pid_t pid, const proc::ProcessMemory& mem, const SwitchPlan& plan,
                 uint64_t registry_addr, const std::string& header) {
  // The journal first (registry.h): if this process is killed between two writes, the
  // next operation on the target finds what to roll back.
  bool journaled = false;
  if (plan.journal && !plan.writes.empty()) {
    Journal j;
    std::memcpy(&j.commit_generation, header.data() + 16, 8);
    j.image_base = plan.image_base;
    j.image_size = plan.image_size;
    for (const auto& w : plan.writes) j.writes.push_back({w.site, w.before, w.after});
    auto bytes = encode_journal(j);
    if (!bytes) {
      spdlog::warn("pid {}: switch not journaled: {}", pid, bytes.error().message);
    } else {
      NINES_CHECK(mem.write(registry_addr + kJournalOffset, bytes->data(), bytes->size()));
      journaled = true;
    }
  }
  static const int die_after = [] {  // fault injection for the tests only
    const char* v = std::getenv("NINES_TEST_DIE_AFTER_WRITES");
    return v ? std::atoi(v) : -1;
  }();
  size_t done = 0;
  Status failed;
  for (const auto& w : plan.writes) {
    if (die_after >= 0 && done == static_cast<size_t>(die_after)) ::_exit(86);
    auto cur = mem.read(w.site, w.before.size());
    if (!cur) { failed = cur.error(); break; }
    if (*cur != w.before && *cur != w.after) {
      failed = make_error("pid {}: the entry of {} at {:#x} changed under us (found {}, expected {})",
                          pid, w.name, w.site,
                          to_hex({reinterpret_cast<const uint8_t*>(cur->data()), cur->size()}),
                          to_hex({reinterpret_cast<const uint8_t*>(w.before.data()), w.before.size()}));
      break;
    }
    if (auto r = mem.write(w.site, w.after.data(), w.after.size()); !r) { failed = r.error(); break; }
    ++done;
  }
  // Verify every write by reading it back.
  if (failed.ok()) {
    for (const auto& w : plan.writes) {
      auto cur = mem.read(w.site, w.after.size());
      if (!cur || *cur != w.after) {
        failed = make_error("pid {}: verifying the write at {:#x} ({}) failed", pid, w.site, w.name);
        break;
      }
    }
  }
  if (failed.ok()) {
    if (auto r = mem.write(registry_addr, header.data(), header.size()); !r) failed = r.error();
  }
  if (!failed.ok()) {
    // Roll back: the process must resume as it was.
    for (size_t i = 0; i < plan.writes.size() && i <= done; ++i)
      (void)mem.write(plan.writes[i].site, plan.writes[i].before.data(), plan.writes[i].before.size());
  }
  if (journaled) {
    static const char zero[8] = {};
    (void)mem.write(registry_addr + kJournalOffset, zero, sizeof zero);
  }
  return failed;
}

constexpr int kMaxNudges = 64;
constexpr int64_t kNudgeBudgetNs = 2'000'000;
constexpr int kNudgeFirstRunUs = 20;
constexpr int kNudgeMaxRunUs = 400;

// The switch: freeze, check, write, verify, record, resume. Retries on conflicts.
// `prelude` runs once, in the first freeze, before the check (staging the patch image).
using Prelude = std::function<Status(proc::PtraceSession&)>;

Result<Outcome> run_switch(pid_t pid, const proc::ProcessMemory& mem, const std::vector<proc::MapEntry>& maps,
                           const SwitchPlan& plan, const uint64_t& registry_addr, const std::string& header,
                           const ApplyOptions& opts, const Prelude& prelude = {}) {
  bool prelude_done = !prelude;
  Outcome out;
  out.pid = pid;
  int64_t deadline = monotonic_ns() + opts.timeout_ms * 1000000;
  // Short, jittered pauses between attempts: a busy thread leaves a small function within
  // microseconds, so many quick attempts find a safe moment sooner than a few long ones;
  // the jitter keeps the attempts from locking into phase with a loop in the target.
  int64_t backoff_us = 200;
  uint64_t rng = static_cast<uint64_t>(monotonic_ns()) | 1;
  std::string last_conflict;
  const std::vector<GuardedRange> no_ranges;
  for (;;) {
    ++out.attempts;
    {
      proc::RealtimeGuard rt;
      int64_t t0 = monotonic_ns();
      auto sess = proc::PtraceSession::freeze_all(pid);
      if (!sess) return sess.error();
      if (!prelude_done) {
        NINES_CHECK(prelude(*sess));
        prelude_done = true;
      }
      auto check = [&] {
        return check_consistency(*sess, mem, maps, plan.write_ranges,
                                 opts.stack_check ? plan.stack_ranges : no_ranges);
      };
      auto conflicts = check();
      if (!conflicts) return conflicts.error();
      // A thread inside a function being replaced usually leaves it within microseconds:
      // let only those threads run a little while the others stay stopped (they are known
      // to be outside), within a small budget of the stop window.
      // The run time doubles: on a loaded machine a resumed thread may wait for a CPU.
      int run_us = kNudgeFirstRunUs;
      for (int nudges = 0; !conflicts->empty() && nudges < kMaxNudges &&
                           monotonic_ns() - t0 < kNudgeBudgetNs; ++nudges) {
        std::vector<pid_t> tids;
        for (const auto& c : *conflicts) tids.push_back(c.tid);
        if (auto r = sess->nudge(tids, run_us); !r) return r.error();
        run_us = std::min(run_us * 2, kNudgeMaxRunUs);
        conflicts = check();
        if (!conflicts) return conflicts.error();
      }
      if (conflicts->empty()) {
        // Even without the stack check, retired patch code is unmapped only when no thread
        // executes it or has a frame in it; a busy range stays recorded in the registry
        // and the next switch tries again.
        std::vector<const GuardedRange*> free_ranges;
        for (const auto& r : plan.retired) {
          auto busy = check_consistency(*sess, mem, maps, no_ranges, {r});
          if (busy && busy->empty()) free_ranges.push_back(&r);
        }
        NINES_CHECK(write_all(pid, mem, plan, registry_addr, header));
        // Unmap now, while every thread is stopped: the injected call runs at once instead
        // of waiting for a CPU behind the target's busy threads.
        if (!free_ranges.empty() && plan.gadget != 0) {
          // Without a live stopped thread to work in, the ranges stay recorded for next time.
          auto worker = stopped_worker(*sess);
          if (!worker) {
          } else if (auto rs = proc::RemoteSyscalls::begin(*sess, *worker, plan.gadget)) {
            for (const GuardedRange* r : free_ranges)
              if (rs->call("munmap", SYS_munmap, r->lo, r->hi - r->lo)) out.unmapped.push_back(r->lo);
            (void)rs->finish();
          }
        }
        sess->release();
        out.stop_us = static_cast<double>(monotonic_ns() - t0) / 1000.0;
        return out;
      }
      last_conflict = conflicts->front().description;
    }  // the session's destructor resumed every thread; the guard dropped our priority
    if (monotonic_ns() > deadline)
      return make_error("pid {}: not switched after {} ms: {} (retry later, or use --no-stack-check "
                        "if that frame is known to be safe)", pid, opts.timeout_ms, last_conflict);
    spdlog::debug("pid {}: {}; retrying", pid, last_conflict);
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    std::this_thread::sleep_for(std::chrono::microseconds(
        backoff_us / 2 + static_cast<int64_t>(rng % static_cast<uint64_t>(backoff_us))));
    backoff_us = std::min<int64_t>(backoff_us * 3 / 2, 5000);
  }
}


// After a switch that unmapped retired ranges: drop them from the registry. The registry
// is double-buffered, so this needs no freeze (the process lock keeps other patchers out).
void forget_unmapped(pid_t pid, const proc::ProcessMemory& mem, const std::vector<uint64_t>& unmapped) {
  if (unmapped.empty()) return;
  auto reg = read_registry(pid);
  if (!reg || !*reg) return;
  Registry next = **reg;
  std::erase_if(next.retired, [&](const RetiredRange& r) {
    return std::find(unmapped.begin(), unmapped.end(), r.base) != unmapped.end();
  });
  auto header = prepare_registry(mem, (*reg)->address, **reg, next);
  if (header) (void)mem.write((*reg)->address, header->data(), header->size());
}

// Plans the return of an applied function to its original bytes (revert, or a cumulative
// patch that no longer replaces it).
Status plan_restore(SwitchPlan& plan, pid_t pid, const proc::ProcessMemory& mem, const AppliedFunction& f) {
  auto o = from_hex(f.original_hex);
  if (!o || o->size() != arch::kJumpSize)
    return make_error("pid {}: registry holds malformed bytes for {}", pid, f.name);
  std::string now = NINES_TRY(mem.read(f.site, arch::kJumpSize));
  plan.writes.push_back({f.site, now, std::string(o->begin(), o->end()), f.name});
  plan.write_ranges.push_back({f.site, f.site + arch::kJumpSize, f.name});
  plan.stack_ranges.push_back({f.address, f.address + std::max<uint64_t>(f.size, 1), f.name});
  return {};
}

// Plans the retry of ranges earlier switches could not unmap.
void plan_retired(SwitchPlan& plan, const Registry& reg) {
  for (const auto& r : reg.retired) plan.retired.push_back({r.base, r.base + r.size, "patch " + r.id});
}

// Rolls back the switch the registry's journal names, if it never committed (registry.h).
// The code goes back to the journal's "before" bytes in a freeze; the image the switch
// staged is recorded as retired, so a later switch unmaps it once no thread runs in it.
// Returns whether there was a switch to roll back; `reg` is read again after.
Result<bool> roll_back_journal(pid_t pid, const proc::ProcessMemory& mem, Registry& reg,
                               const ApplyOptions& opts) {
  if (!reg.journal) return false;
  static const char zero[8] = {};
  if (!reg.interrupted()) {  // committed; only the clearing was missed
    NINES_CHECK(mem.write(reg.address + kJournalOffset, zero, sizeof zero));
    reg.journal.reset();
    return false;
  }
  const Journal& j = *reg.journal;
  SwitchPlan plan;
  plan.journal = false;  // the journal being undone stays until the rollback commits
  for (const auto& w : j.writes) {
    std::string now = NINES_TRY(mem.read(w.site, w.after.size()));
    if (now == w.before) continue;
    auto hex = [](const std::string& b) {
      return to_hex({reinterpret_cast<const uint8_t*>(b.data()), b.size()});
    };
    if (now != w.after)
      return make_error("pid {}: an interrupted switch left {:#x} holding {}, neither what was "
                        "there before ({}) nor what it wrote ({}): not touching it", pid, w.site,
                        hex(now), hex(w.before), hex(w.after));
    std::string name = fmt::format("site {:#x}", w.site);
    plan.writes.push_back({w.site, w.after, w.before, name});
    plan.write_ranges.push_back({w.site, w.site + w.after.size(), name});
  }
  Registry next = reg;
  next.journal.reset();
  if (j.image_size) next.retired.push_back({j.image_base, j.image_size, "interrupted switch"});
  std::string header = NINES_TRY(prepare_registry(mem, reg.address, reg, next));
  size_t rolled = plan.writes.size();
  if (plan.writes.empty()) {
    // Killed before its first write: nothing to undo in the code, no freeze needed.
    NINES_CHECK(mem.write(reg.address, header.data(), header.size()));
  } else {
    auto maps = NINES_TRY(proc::read_maps(pid));
    NINES_TRY(run_switch(pid, mem, maps, plan, reg.address, header, opts));
  }
  NINES_CHECK(mem.write(reg.address + kJournalOffset, zero, sizeof zero));
  spdlog::warn("pid {}: rolled back a switch that was interrupted ({} of {} writes were done)", pid,
               rolled, j.writes.size());
  auto again = NINES_TRY(read_registry(pid));
  reg = again ? *again : Registry{};
  return true;
}

}  // namespace

Result<bool> recover_interrupted_switch(pid_t pid, const ApplyOptions& opts) {
  ProcessLock lock = NINES_TRY(lock_process(pid));
  auto existing = NINES_TRY(read_registry(pid));
  if (!existing || !existing->journal) return false;
  auto mem = NINES_TRY(proc::ProcessMemory::open(pid, true));
  return roll_back_journal(pid, mem, *existing, opts);
}

Result<Outcome> apply_patch(const PatchObject& patch, pid_t pid, const ApplyOptions& opts, ElfCache& cache) {
  const PatchMeta& meta = patch.meta;
  ProcessLock lock = NINES_TRY(lock_process(pid));
  auto view = NINES_TRY(ProcessView::inspect(pid, cache));
  const LoadedObject* target = NINES_TRY(view.find_target(meta.target_name, meta.target_build_id));
  auto mem = NINES_TRY(proc::ProcessMemory::open(pid, true));

  auto existing = NINES_TRY(read_registry(pid));
  if (existing && existing->journal) NINES_TRY(roll_back_journal(pid, mem, *existing, opts));
  Registry reg = existing ? *existing : Registry{};
  const AppliedPatch* old = reg.find_by_target(meta.target_build_id);
  if (old && old->id == meta.id && old->version == opts.version && !opts.digest.empty() &&
      !old->digest.empty() && old->digest != opts.digest)
    return make_error(
        "pid {}: {} version {} is applied with sha256 {}; this patch has the same id and version "
        "but sha256 {} (different content: give the rebuilt patch a new version)",
        pid, meta.id, opts.version, old->digest, opts.digest);
  if (old && old->id == meta.id && old->version == opts.version) {
    Outcome o;
    o.pid = pid;
    o.action = "already applied";
    o.functions = old->functions;
    return o;
  }
  if (old && opts.version < old->version && !opts.allow_downgrade)
    return make_error("pid {}: {} version {} is applied; refusing to downgrade to {} version {} "
                      "(--allow-downgrade to force)", pid, old->id, old->version, meta.id, opts.version);

  // Plan the switch from the current bytes (read before the freeze).
  struct Site {
    const FunctionPatch* f;
    uint64_t addr, site;
    std::string original;  // the function's own bytes at the site
    std::string now;       // what the site holds now (the original, or an older patch's jump)
  };
  std::vector<Site> sites;
  for (const auto& f : meta.functions) {
    uint64_t addr = target->base + f.target_offset;
    std::string entry = NINES_TRY(mem.read(addr, 16));
    uint64_t site = addr;
    std::string original;
    const AppliedFunction* prev = nullptr;
    if (old)
      for (const auto& pf : old->function_details)
        if (pf.address == addr) prev = &pf;
    if (prev) {
      site = prev->site;
      auto o = from_hex(prev->original_hex);
      if (!o) return make_error("pid {}: registry holds malformed bytes for {}", pid, prev->name);
      original.assign(o->begin(), o->end());
    } else {
      site = addr + arch::entry_skip(reinterpret_cast<const uint8_t*>(entry.data()), entry.size());
      original = entry.substr(site - addr, arch::kJumpSize);
    }
    if (f.target_size < (site - addr) + arch::kJumpSize)
      return make_error("pid {}: {} is too short for a redirect", pid, f.name);
    sites.push_back({&f, addr, site, original, entry.substr(site - addr, arch::kJumpSize)});
  }

  bool need_registry = !existing.has_value();
  uint64_t gadget = NINES_TRY(proc::find_syscall_gadget(mem, view.maps()));
  uint64_t size = image_size(patch.elf);
  std::vector<uint64_t> avoid;
  for (int attempt = 0;; ++attempt) {
    // Fresh maps each attempt: a retry follows a range taken meanwhile (by the target, or
    // by the registry this apply created).
    auto maps_now = proc::read_maps(pid);
    const std::vector<proc::MapEntry>& maps = maps_now ? *maps_now : view.maps();
    uint64_t base = NINES_TRY(choose_base(maps, target->mapped.lowest, target->mapped.highest, size, avoid));
    LinkedImage image = NINES_TRY(link_image(
        patch, base, target->base, [&](const std::string& name, const std::string& version) {
          return view.resolve(name, version, target);
        }));

    SwitchPlan plan;
    AppliedPatch entry;
    entry.id = meta.id;
    entry.version = opts.version;
    entry.digest = opts.digest;
    entry.target_name = meta.target_name;
    entry.target_build_id = meta.target_build_id;
    entry.target_path = target->mapped.path;
    entry.applied_unix = unix_now();
    entry.base = base;
    entry.size = size;
    std::vector<std::string> switched;
    for (const auto& [f, addr, site, original, now] : sites) {
      uint64_t dest = image.load_bias + f->replacement_offset;
      auto jmp = arch::encode_jump(site, dest);
      if (!jmp)
        return make_error("pid {}: {} at {:#x} cannot reach its replacement at {:#x}", pid, f->name, site, dest);
      plan.writes.push_back({site, now, std::string(jmp->begin(), jmp->end()), f->name});
      plan.write_ranges.push_back({site, site + arch::kJumpSize, f->name});
      plan.stack_ranges.push_back({addr, addr + std::max<uint64_t>(f->target_size, 1), f->name});
      entry.function_details.push_back({f->name, f->replacement, addr, f->target_size, site,
                                        to_hex({reinterpret_cast<const uint8_t*>(original.data()), original.size()}),
                                        dest});
      entry.functions.push_back(f->name);
      switched.push_back(f->name);
    }
    std::string action = "applied";
    if (old) {
      action = fmt::format("replaced {}", old->id);
      // Functions of the old patch that the new one no longer replaces go back to the original.
      for (const auto& pf : old->function_details) {
        bool kept = std::any_of(entry.function_details.begin(), entry.function_details.end(),
                                [&](const AppliedFunction& af) { return af.address == pf.address; });
        if (kept) continue;
        NINES_CHECK(plan_restore(plan, pid, mem, pf));
        switched.push_back(pf.name + " (restored)");
      }
      // No thread may be inside the old patch's code when it is unmapped.
      plan.stack_ranges.push_back({old->base, old->base + old->size, "patch " + old->id});
      plan.retired.push_back({old->base, old->base + old->size, "patch " + old->id});
    }
    plan_retired(plan, reg);
    plan.gadget = gadget;
    plan.image_base = base;
    plan.image_size = size;

    Registry next = reg;
    std::erase_if(next.patches, [&](const AppliedPatch& p) { return p.target_build_id == meta.target_build_id; });
    next.patches.push_back(entry);
    // Recorded as retired until the switch manages to unmap it (forget_unmapped).
    if (old) next.retired.push_back({old->base, old->size, old->id});
    uint64_t registry_addr = reg.address;
    std::string header;
    if (!need_registry) header = NINES_TRY(prepare_registry(mem, reg.address, reg, next));
    bool taken = false, staged = false;
    Prelude prelude = [&](proc::PtraceSession& sess) -> Status {
      bool creating = need_registry;
      auto st = stage_in_freeze(sess, gadget, mem, image, &need_registry, &registry_addr, &taken);
      if (creating && !need_registry) {  // created, even if the mapping then failed
        reg = Registry{};
        reg.address = registry_addr;
      }
      if (!st) return st.error();
      staged = true;
      if (creating) header = NINES_TRY(prepare_registry(mem, registry_addr, reg, next));
      return {};
    };
    auto out = run_switch(pid, mem, maps, plan, registry_addr, header, opts, prelude);
    if (!out) {
      if (taken && attempt < 4) {  // the range was taken meanwhile: link for another one
        avoid.push_back(base);
        continue;
      }
      if (staged) unmap_in_target(pid, maps, mem, base, size);
      return out.error().wrap(fmt::format("apply {} to pid {}", meta.id, pid));
    }
    forget_unmapped(pid, mem, out->unmapped);
    out->action = action;
    out->functions = switched;
    return out;
  }
}

Result<Outcome> revert_patch(const std::string& id, pid_t pid, const ApplyOptions& opts) {
  ProcessLock lock = NINES_TRY(lock_process(pid));
  auto existing = NINES_TRY(read_registry(pid));
  auto mem = NINES_TRY(proc::ProcessMemory::open(pid, true));
  bool rolled_back = false;
  if (existing && existing->journal)
    rolled_back = NINES_TRY(roll_back_journal(pid, mem, *existing, opts));
  const AppliedPatch* p = existing ? existing->find_by_id(id) : nullptr;
  if (!p && rolled_back) {
    // The interrupted switch was this patch's apply: rolling it back is the revert.
    Outcome o;
    o.pid = pid;
    o.action = fmt::format("rolled back an interrupted switch ({} is not applied)", id);
    return o;
  }
  if (!p) return make_error("pid {}: patch {} is not applied", pid, id);
  auto maps = NINES_TRY(proc::read_maps(pid));
  SwitchPlan plan;
  std::vector<std::string> switched;
  for (const auto& f : p->function_details) {
    NINES_CHECK(plan_restore(plan, pid, mem, f));
    switched.push_back(f.name);
  }
  plan.stack_ranges.push_back({p->base, p->base + p->size, "patch " + p->id});
  plan.retired.push_back({p->base, p->base + p->size, "patch " + p->id});
  plan_retired(plan, *existing);
  if (auto g = proc::find_syscall_gadget(mem, maps)) plan.gadget = *g;
  Registry next = *existing;
  next.retired.push_back({p->base, p->size, p->id});
  std::erase_if(next.patches, [&](const AppliedPatch& a) { return a.id == id; });
  std::string header = NINES_TRY(prepare_registry(mem, existing->address, *existing, next));
  auto out = run_switch(pid, mem, maps, plan, existing->address, header, opts);
  if (!out) return out.error().wrap(fmt::format("revert {} in pid {}", id, pid));
  forget_unmapped(pid, mem, out->unmapped);
  out->action = "reverted";
  out->functions = switched;
  return out;
}

std::vector<pid_t> processes_mapping(const std::string& name, const std::string& build_id,
                                     ElfCache& cache, const std::vector<pid_t>& exclude) {
  std::vector<pid_t> out;
  pid_t self = getpid();
  for (pid_t pid : proc::list_processes()) {
    if (pid == self || std::find(exclude.begin(), exclude.end(), pid) != exclude.end()) continue;
    auto maps = proc::read_maps(pid);
    if (!maps) continue;
    for (const auto& o : proc::group_objects(*maps)) {
      bool named = basename_of(o.path) == name;
      if (!named && build_id.empty()) continue;
      auto id = cache.build_id(pid, o);
      if ((id && *id == build_id) || named) {
        out.push_back(pid);
        break;
      }
    }
  }
  return out;
}

std::vector<pid_t> processes_with_patch(const std::string& id, const std::vector<pid_t>& exclude) {
  std::vector<pid_t> out;
  pid_t self = getpid();
  for (pid_t pid : proc::list_processes()) {
    if (pid == self || std::find(exclude.begin(), exclude.end(), pid) != exclude.end()) continue;
    auto reg = read_registry(pid);
    if (reg && *reg && (*reg)->find_by_id(id)) out.push_back(pid);
  }
  return out;
}

}  // namespace nines::ulp
