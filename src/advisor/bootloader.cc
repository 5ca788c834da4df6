#include "advisor/bootloader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::advisor {

bool is_bootloader_package(std::string_view name) {
  return starts_with(name, "grub") || name == "shim-signed";
}

Result<int64_t> boot_time_unix() {
  std::string stat = NINES_TRY(read_file("/proc/stat", 1 << 20));
  for (std::string_view l : split(stat, '\n'))
    if (starts_with(l, "btime ")) {
      if (auto v = parse_i64(trim(l.substr(6)))) return *v;
    }
  return make_error("read the boot time: no btime line in /proc/stat");
}

BootloaderFacts check_bootloader(const Root& root, const DpkgStatus& status, int64_t boot_unix) {
  BootloaderFacts f;
  f.boot_unix = boot_unix;
  if (!status.present) {
    f.notes.push_back(
        fmt::format("{} does not exist: bootloader updates not checked", status.path));
    return f;
  }
  for (const DpkgPackage& p : status.packages) {
    if (!is_bootloader_package(p.name)) continue;
    std::string list = dpkg_list_file(root, p);
    struct stat st {};
    if (list.empty() || ::stat(list.c_str(), &st) != 0) {
      f.notes.push_back(fmt::format("{}: no dpkg file list, install time unknown", p.name));
      continue;
    }
    if (st.st_mtime > boot_unix)
      f.upgraded.push_back(PackageChange{p.name, p.version, static_cast<int64_t>(st.st_mtime)});
  }
  return f;
}

}  // namespace nines::advisor
