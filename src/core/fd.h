// A move-only owner of a file descriptor: every descriptor the kernel sees has exactly
// one owner that closes it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nines {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void reset(int fd = -1);

  // open(2); fails with "open PATH: strerror".
  static Result<Fd> open(const std::string& path, int flags, int mode = 0);

 private:
  int fd_ = -1;
};

// Whole-file helpers. read_file refuses files larger than max_bytes before allocating.
Result<std::string> read_file(const std::string& path, size_t max_bytes = 64u << 20);
// Writes through a temporary file in the same folder and renames it into place, so a
// reader sees either the old or the new content, never a torn one.
Status write_file_atomic(const std::string& path, std::string_view data, int mode = 0644);

// pread/pwrite loops that retry short transfers and EINTR.
Status pread_full(int fd, void* buf, size_t len, uint64_t off, std::string_view what);
Status pwrite_full(int fd, const void* buf, size_t len, uint64_t off, std::string_view what);

}  // namespace nines
