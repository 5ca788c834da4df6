#include "proc/memory.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace nines::proc {

Result<ProcessMemory> ProcessMemory::open(pid_t pid, bool writable) {
  ProcessMemory m;
  m.pid_ = pid;
  m.fd_ = NINES_TRY(Fd::open(fmt::format("/proc/{}/mem", pid), writable ? O_RDWR : O_RDONLY));
  return m;
}

Status ProcessMemory::read(uint64_t addr, void* buf, size_t len) const {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = ::pread(fd_.get(), p, len, static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return errno_error(fmt::format("read pid {} memory at {:#x}", pid_, addr), n == 0 ? EIO : errno);
    p += n;
    len -= static_cast<size_t>(n);
    addr += static_cast<uint64_t>(n);
  }
  return {};
}

Result<std::string> ProcessMemory::read(uint64_t addr, size_t len) const {
  std::string out(len, '\0');
  NINES_CHECK(read(addr, out.data(), len));
  return out;
}

Status ProcessMemory::write(uint64_t addr, const void* buf, size_t len) const {
  const auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = ::pwrite(fd_.get(), p, len, static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n == 0 ? EIO : errno;
      std::string what = fmt::format("write pid {} memory at {:#x}", pid_, addr);
      if (err == EIO || err == EPERM || err == EACCES)
        what += " (the kernel refused a /proc/PID/mem write; on 6.12+ kernels check "
                "proc_mem.force_override)";
      return errno_error(what, err);
    }
    p += n;
    len -= static_cast<size_t>(n);
    addr += static_cast<uint64_t>(n);
  }
  return {};
}

}  // namespace nines::proc
