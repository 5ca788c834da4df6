#include "ulp/consistency.h"

#include <libunwind-ptrace.h>

#include <algorithm>
#include <cstring>

namespace nines::ulp {

namespace {

const GuardedRange* hit(const std::vector<GuardedRange>& ranges, uint64_t a) {
  for (const auto& r : ranges)
    if (a >= r.lo && a < r.hi) return &r;
  return nullptr;
}

// Precise unwind of one thread; returns the conflicting frame, if any. When the unwinder
// cannot walk the stack, the conservative answer (a conflict) stands.
std::optional<std::string> unwind_conflict(pid_t tid, const std::vector<GuardedRange>& ranges,
                                           const std::string& fallback) {
  unw_addr_space_t as = unw_create_addr_space(&_UPT_accessors, 0);
  if (!as) return fallback;
  void* ui = _UPT_create(tid);
  std::optional<std::string> out;
  unw_cursor_t c;
  if (!ui || unw_init_remote(&c, as, ui) < 0) {
    out = fallback;
  } else {
    bool complete = false;
    for (int depth = 0; depth < 512; ++depth) {
      unw_word_t ip = 0;
      unw_get_reg(&c, UNW_REG_IP, &ip);
      // Return addresses point after the call: look at ip-1 for frames above the top.
      uint64_t probe = depth == 0 ? ip : ip - 1;
      if (const auto* r = hit(ranges, probe)) {
        out = fmt::format("tid {} has frame #{} in {} ({:#x})", tid, depth, r->name, ip);
        break;
      }
      int st = unw_step(&c);
      if (st == 0) {
        complete = true;
        break;
      }
      if (st < 0) break;
    }
    // An unwind that stopped early proves nothing: keep the conservative verdict.
    if (!out && !complete) out = fallback;
  }
  if (ui) _UPT_destroy(ui);
  unw_destroy_addr_space(as);
  return out;
}

}  // namespace

Result<std::vector<Conflict>> check_consistency(const proc::PtraceSession& session,
                                                  const proc::ProcessMemory& mem,
                                                  const std::vector<proc::MapEntry>& maps,
                                                  const std::vector<GuardedRange>& write_ranges,
                                                  const std::vector<GuardedRange>& stack_ranges) {
  std::vector<Conflict> out;
  for (pid_t tid : session.tids()) {
    auto regs = NINES_TRY(session.get_regs(tid));
    uint64_t ip = arch::instruction_pointer(regs);
    bool inside = false;
    for (const auto& w : write_ranges)
      if (ip > w.lo && ip < w.hi) {
        out.push_back(Conflict{tid, fmt::format("tid {} is executing the bytes being overwritten "
                                                "in {} ({:#x})", tid, w.name, ip)});
        inside = true;
        break;
      }
    if (inside || stack_ranges.empty()) continue;
    if (const auto* r = hit(stack_ranges, ip)) {
      out.push_back(Conflict{tid, fmt::format("tid {} is executing {} ({:#x})", tid, r->name, ip)});
      continue;
    }
    // Conservative scan of the live stack.
    uint64_t sp = arch::stack_pointer(regs);
    uint64_t end = 0;
    for (const auto& m : maps)
      if (sp >= m.start && sp < m.end) end = m.end;
    if (end == 0) continue;  // no stack mapping (a thread on a foreign stack): nothing to scan
    uint64_t len = std::min<uint64_t>(end - (sp & ~uint64_t{7}), 1 << 20);
    std::string words;
    auto rd = mem.read(sp & ~uint64_t{7}, len);
    if (!rd) continue;
    words = std::move(*rd);
    std::optional<std::string> suspect;
    for (size_t i = 0; i + 8 <= words.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, words.data() + i, 8);
      if (const auto* r = hit(stack_ranges, w - 1)) {
        suspect = fmt::format("tid {} may have a frame in {} (return address {:#x} on its stack)",
                              tid, r->name, w);
        break;
      }
    }
    if (!suspect) continue;
    if (auto c = unwind_conflict(tid, stack_ranges, *suspect)) out.push_back(Conflict{tid, *c});
  }
  return out;
}

}  // namespace nines::ulp
