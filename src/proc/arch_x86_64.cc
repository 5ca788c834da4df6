#include "proc/arch_x86_64.h"

#include <cstring>

namespace nines::arch {

namespace {
// Kernel-internal restart codes (include/linux/errno.h), never seen by user space.
constexpr long kERESTARTSYS = 512;
constexpr long kERESTARTNOINTR = 513;
constexpr long kERESTARTNOHAND = 514;
constexpr long kERESTART_RESTARTBLOCK = 516;
constexpr long kNR_restart_syscall = 219;
}  // namespace

std::optional<std::array<uint8_t, kJumpSize>> encode_jump(uint64_t site, uint64_t dest) {
  int64_t disp = static_cast<int64_t>(dest - (site + kJumpSize));
  if (disp < INT32_MIN || disp > INT32_MAX) return std::nullopt;
  std::array<uint8_t, kJumpSize> out{0xe9};
  int32_t d32 = static_cast<int32_t>(disp);
  std::memcpy(out.data() + 1, &d32, 4);
  return out;
}

std::optional<uint64_t> decode_jump(uint64_t site, const uint8_t* bytes) {
  if (bytes[0] != 0xe9) return std::nullopt;
  int32_t d32;
  std::memcpy(&d32, bytes + 1, 4);
  return site + kJumpSize + static_cast<int64_t>(d32);
}

size_t entry_skip(const uint8_t* bytes, size_t len) {
  if (len >= kEndbr64.size() && std::memcmp(bytes, kEndbr64.data(), kEndbr64.size()) == 0)
    return kEndbr64.size();
  return 0;
}

bool normalize_restart(Regs& regs) {
  if (static_cast<long>(regs.orig_rax) < 0) return false;
  long rax = static_cast<long>(regs.rax);
  switch (-rax) {
    case kERESTARTSYS:
    case kERESTARTNOINTR:
    case kERESTARTNOHAND:
      regs.rax = regs.orig_rax;
      regs.rip -= 2;
      break;
    case kERESTART_RESTARTBLOCK:
      regs.rax = kNR_restart_syscall;
      regs.rip -= 2;
      break;
    default:
      return false;
  }
  regs.orig_rax = static_cast<unsigned long long>(-1);
  return true;
}

void setup_syscall(Regs& regs, uint64_t gadget, long nr, const uint64_t args[6]) {
  regs.rip = gadget;
  regs.rax = static_cast<unsigned long long>(nr);
  regs.orig_rax = static_cast<unsigned long long>(-1);
  regs.rdi = args[0];
  regs.rsi = args[1];
  regs.rdx = args[2];
  regs.r10 = args[3];
  regs.r8 = args[4];
  regs.r9 = args[5];
}

uint64_t syscall_result(const Regs& regs) { return regs.rax; }
uint64_t instruction_pointer(const Regs& regs) { return regs.rip; }
uint64_t stack_pointer(const Regs& regs) { return regs.rsp; }

}  // namespace nines::arch
