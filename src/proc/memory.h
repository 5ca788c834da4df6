// Reading and writing another process's memory through /proc/PID/mem. Writes go through
// /proc/PID/mem because it writes read-only text (the kernel breaks COW for us);
// process_vm_writev does not. Kernels from 6.12 may refuse such writes
// (proc_mem.force_override=never); the error says so.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "core/fd.h"
#include "core/result.h"

namespace nines::proc {

class ProcessMemory {
 public:
  static Result<ProcessMemory> open(pid_t pid, bool writable);

  Status read(uint64_t addr, void* buf, size_t len) const;
  Result<std::string> read(uint64_t addr, size_t len) const;
  Status write(uint64_t addr, const void* buf, size_t len) const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = 0;
  Fd fd_;
};

}  // namespace nines::proc
