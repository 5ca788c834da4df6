// dpkg's own records, read through the checked root: the status database
// (ROOT/var/lib/dpkg/status), the file lists (ROOT/var/lib/dpkg/info/PKG[:ARCH].list) and
// the log of what was installed over what (ROOT/var/log/dpkg.log and its logrotate
// rotations dpkg.log.1, dpkg.log.2.gz, ...). The one reader of these formats.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "advisor/root.h"
#include "core/result.h"

namespace nines::advisor {

struct DpkgPackage {
  std::string name, arch, version;
  // From "Source: NAME" or "Source: NAME (VERSION)"; the package's own name and version
  // when the field is absent (the source package has the binary's name).
  std::string source, source_version;
};

// Installed packages ("Status: install ok installed") of a dpkg status file.
std::vector<DpkgPackage> parse_dpkg_status(std::string_view text);

struct DpkgStatus {
  bool present = false;  // false: no status file (not a dpkg system)
  std::string path;      // the file on this machine
  std::vector<DpkgPackage> packages;
};
// Reads ROOT/var/lib/dpkg/status. A missing file is `present = false`; one that exists
// and cannot be read is an error naming it.
Result<DpkgStatus> read_dpkg_status(const Root& root);

// ROOT/var/lib/dpkg/info/NAME:ARCH.list, else NAME.list (packages installed before
// multi-arch, and Architecture: all ones); empty when neither exists.
std::string dpkg_list_file(const Root& root, const DpkgPackage& p);

// The same file under merged /usr: "/lib/x86_64-linux-gnu/libc.so.6" and
// "/usr/lib/x86_64-linux-gnu/libc.so.6" (also /bin, /sbin, /lib32, /lib64, /libx32) give
// "/usr/lib/...". dpkg lists the path a package ships, processes show the one they opened.
std::string merged_usr_path(std::string_view path);

// Which of `candidates` ships each of `paths` (absolute paths as processes show them),
// from their file lists; paths no candidate ships are absent from the result. Reads the
// lists of the candidates only, and stops once every path is found.
std::unordered_map<std::string, std::string> package_owners(
    const Root& root, const std::vector<const DpkgPackage*>& candidates,
    const std::vector<std::string>& paths);

// One "upgrade" (or re-"install" over a version still on disk) line of dpkg.log:
// "2026-11-30 10:00:01 upgrade libssl3:amd64 3.0.15-1~deb12u1 3.0.15-1~deb12u2".
struct DpkgUpgrade {
  int64_t time_unix = 0;  // the log's local time, as this machine's time zone reads it
  std::string package;    // without ":ARCH"
  std::string old_version, new_version;
};

// The upgrades of `packages` in a dpkg.log text, in file order. Other lines are ignored.
std::vector<DpkgUpgrade> parse_dpkg_log(std::string_view text,
                                        const std::unordered_set<std::string>& packages);

// Every upgrade of `packages` in ROOT/var/log/dpkg.log*, gzip-compressed rotations
// included, sorted by time. No log is an empty list; a log that cannot be read or
// decompressed is an error naming it.
Result<std::vector<DpkgUpgrade>> read_dpkg_log(const Root& root,
                                               const std::unordered_set<std::string>& packages);

// The version of `package` that code started at `since_unix` runs: what the first upgrade
// logged at or after that second replaced. nullopt when no upgrade of it is logged since.
std::optional<std::string> version_replaced_since(const std::vector<DpkgUpgrade>& log,
                                                  std::string_view package, int64_t since_unix);

}  // namespace nines::advisor
