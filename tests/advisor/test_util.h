// Helpers for the advisor's tests: temporary folders, and holder processes that the test
// starts itself (and always ends: closing their stdin makes them exit).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace nines::advisor::testing {

// A fresh folder under $TMPDIR, removed with its content on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& data);
void copy_file(const std::string& from, const std::string& to);
void mkdirs(const std::string& path);
// Writes a new file at `path` through a temporary name and rename(2): a new inode.
void replace_file(const std::string& path);
std::string read_all(const std::string& path);

// A process started by the test: it prints "ready" once its code is loaded and runs until
// its standard input closes. argv[0] is the program's path; `cwd` its folder ("": ours).
class Holder {
 public:
  explicit Holder(const std::vector<std::string>& argv, const std::string& cwd = {});
  // A running advisor_holder (or a copy of it) that maps `libs`.
  Holder(const std::string& program, const std::vector<std::string>& libs);
  ~Holder();
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;
  pid_t pid() const { return pid_; }
  // Ends the process and reaps it.
  void stop();

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  // Kept open until the end: a program may write "ready" and its newline apart (Python
  // does), and a closed pipe would kill it with EPIPE.
  int stdout_fd_ = -1;
};

bool in_private_pid_namespace();

}  // namespace nines::advisor::testing
