#include "core/fd.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nines {

Error errno_error(std::string_view what) { return errno_error(what, errno); }
Error errno_error(std::string_view what, int err) {
  return Error{fmt::format("{}: {}", what, std::strerror(err))};
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<Fd> Fd::open(const std::string& path, int flags, int mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return errno_error(fmt::format("open {}", path));
  return Fd(fd);
}

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
  Fd fd = NINES_TRY(Fd::open(path, O_RDONLY));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return errno_error(fmt::format("stat {}", path));
  std::string out;
  if (S_ISREG(st.st_mode)) {
    if (static_cast<uint64_t>(st.st_size) > max_bytes)
      return make_error("read {}: file is {} bytes, more than the limit of {}", path,
                        st.st_size, max_bytes);
    out.reserve(static_cast<size_t>(st.st_size));
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(fmt::format("read {}", path));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes)
      return make_error("read {}: more than the limit of {} bytes", path, max_bytes);
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status write_file_atomic(const std::string& path, std::string_view data, int mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    Fd fd = NINES_TRY(Fd::open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
    if (fchmod(fd.get(), static_cast<mode_t>(mode)) != 0)
      return errno_error(fmt::format("chmod {}", tmp));
    NINES_CHECK(pwrite_full(fd.get(), data.data(), data.size(), 0, tmp));
    if (fsync(fd.get()) != 0) return errno_error(fmt::format("fsync {}", tmp));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return errno_error(fmt::format("rename {} to {}", tmp, path), err);
  }
  return {};
}

Status pread_full(int fd, void* buf, size_t len, uint64_t off, std::string_view what) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(fmt::format("read {} at {:#x}", what, off));
    }
    if (n == 0) return make_error("read {} at {:#x}: unexpected end", what, off);
    p += n;
    len -= static_cast<size_t>(n);
    off += static_cast<uint64_t>(n);
  }
  return {};
}

Status pwrite_full(int fd, const void* buf, size_t len, uint64_t off, std::string_view what) {
  const auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = ::pwrite(fd, p, len, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(fmt::format("write {} at {:#x}", what, off));
    }
    if (n == 0) return make_error("write {} at {:#x}: no progress", what, off);
    p += n;
    len -= static_cast<size_t>(n);
    off += static_cast<uint64_t>(n);
  }
  return {};
}

}  // namespace nines
