// The filesystem root that `nines check --root DIR` reads /boot, /lib/firmware,
// /var/lib/dpkg, /var/run and /sys/kernel/livepatch from. Processes always come from the
// live /proc: a root prefix cannot fake running processes, and tests start real ones.
#pragma once

#include <string>
#include <string_view>

namespace nines::advisor {

class Root {
 public:
  explicit Root(std::string dir = "/");

  const std::string& dir() const { return dir_; }
  bool is_host() const { return dir_ == "/"; }

  // Maps an absolute path of the checked system to a path on this machine. Symbolic
  // links met on the way are resolved inside the root, so an absolute link such as
  // DIR/var/run -> /run stays under DIR instead of escaping to the host's /run.
  // Never fails: a component that does not exist is kept as it is, and the caller's
  // open() reports the missing file.
  std::string path(std::string_view abs) const;

 private:
  std::string dir_;
};

}  // namespace nines::advisor
