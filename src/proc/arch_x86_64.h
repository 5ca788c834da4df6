// x86-64 specifics of patching a running process. ABI facts relied on:
//
// - A redirect is `jmp rel32` (E9 + 4-byte little-endian displacement measured from the
//   end of the 5-byte instruction), so the replacement must lie within ±2 GiB of the site.
// - A function compiled with -fcf-protection starts with `endbr64` (F3 0F 1E FA). It stays
//   in place (an indirect call must still land on it) and the jump goes after it.
// - `syscall` is 0F 05; it clobbers rcx and r11. The number goes in rax, arguments in
//   rdi, rsi, rdx, r10, r8, r9; the result (or -errno) comes back in rax.
// - A thread stopped inside an interrupted system call has orig_rax >= 0 and rax set to
//   -ERESTARTSYS/-ERESTARTNOINTR/-ERESTARTNOHAND/-ERESTART_RESTARTBLOCK; the kernel restarts
//   it on the way back to user space by moving rip back 2 bytes. Before running our own
//   syscalls on such a thread we apply that restart ourselves (normalize_restart) and set
//   orig_rax to -1, so the kernel's restart logic cannot fire on our injected call.
// - The 128-byte red zone below rsp belongs to the interrupted function.
#pragma once

#include <sys/user.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace nines::arch {

using Regs = user_regs_struct;

constexpr size_t kJumpSize = 5;
constexpr std::array<uint8_t, 4> kEndbr64 = {0xf3, 0x0f, 0x1e, 0xfa};
constexpr std::array<uint8_t, 2> kSyscallInsn = {0x0f, 0x05};
constexpr size_t kMaxPatchedBytes = 16;  // what the registry keeps per function

// Encodes `jmp rel32` from `site` to `dest`; nullopt when dest is out of reach.
std::optional<std::array<uint8_t, kJumpSize>> encode_jump(uint64_t site, uint64_t dest);
// Decodes a `jmp rel32` at `site`; nullopt when the bytes are not one.
std::optional<uint64_t> decode_jump(uint64_t site, const uint8_t* bytes);
// Bytes to skip at a function entry before the redirect: 4 after an endbr64, else 0.
size_t entry_skip(const uint8_t* bytes, size_t len);

// Applies the kernel's system-call restart to saved registers (see above); returns true
// when it changed them.
bool normalize_restart(Regs& regs);

// Sets up `regs` to run `syscall` at `gadget` with number and arguments.
void setup_syscall(Regs& regs, uint64_t gadget, long nr, const uint64_t args[6]);
uint64_t syscall_result(const Regs& regs);

uint64_t instruction_pointer(const Regs& regs);
uint64_t stack_pointer(const Regs& regs);

}  // namespace nines::arch
