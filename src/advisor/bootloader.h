// Bootloader: GRUB packages installed or upgraded since boot. dpkg rewrites
// ROOT/var/lib/dpkg/info/PKG[:ARCH].list whenever it unpacks PKG, so the file's mtime
// is the time of the last install or upgrade; the boot time is btime of /proc/stat.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "advisor/dpkg.h"
#include "advisor/root.h"
#include "core/result.h"

namespace nines::advisor {

// True for the packages that put a new bootloader on disk: grub*, plus shim-signed.
bool is_bootloader_package(std::string_view name);

struct PackageChange {
  std::string package, version;
  int64_t changed_unix = 0;
};

struct BootloaderFacts {
  int64_t boot_unix = 0;
  std::vector<PackageChange> upgraded;  // bootloader packages changed after boot
  std::vector<std::string> notes;
};

// Seconds since the epoch at which the running kernel booted (btime of /proc/stat).
Result<int64_t> boot_time_unix();

// The installed packages come from `status` (read_dpkg_status); a system without dpkg
// gives no upgrades and a note.
BootloaderFacts check_bootloader(const Root& root, const DpkgStatus& status, int64_t boot_unix);

}  // namespace nines::advisor
