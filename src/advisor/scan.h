// Stale-code detection: processes that run code which is no longer on disk.
//
// For each process, /proc/PID/maps names every executable file mapping with the device
// and inode of the object the process actually mapped. The object is stale when the file
// now at that path (seen through /proc/PID/root, so containers and chroots resolve their
// own paths) is another inode, or when nothing is there any more. Two kernel quirks shape
// the code:
//  - maps appends " (deleted)" to an unlinked object's path, but a real file name may end
//    in " (deleted)" too: the literal name is tried first, and only when it is not the
//    mapped inode is the suffix taken as the kernel's mark.
//  - the dev field of maps is the inode's superblock device, which stat(2) reports
//    differently on overlayfs and btrfs subvolumes; on a mismatch the mapped object is
//    stat'ed through /proc/PID/map_files/START-END (the object itself, even when deleted)
//    before calling it stale.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nines::advisor {

// One line of /proc/PID/maps. `path` points into the caller's buffer.
struct MapsLine {
  uint64_t start = 0, end = 0, offset = 0;
  char perms[5] = {};
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::string_view path;  // empty for anonymous mappings
};

// Parses one maps line (no trailing newline). nullopt when malformed. The path keeps
// embedded spaces and a kernel " (deleted)" suffix.
std::optional<MapsLine> parse_maps_line(std::string_view line);

// Field 22 of the text of /proc/PID/stat: when the process started, in clock ticks since
// boot. Read after the last ")", which ends the comm (a comm may hold spaces and
// parentheses). nullopt when malformed.
std::optional<uint64_t> stat_start_ticks(std::string_view stat);

enum class StaleKind { kDeleted, kReplaced };
const char* stale_kind_name(StaleKind k);  // "deleted" | "replaced"

struct StaleObject {
  std::string path;  // as the process sees it, without the kernel's " (deleted)"
  StaleKind kind = StaleKind::kDeleted;
  uint64_t mapped_dev = 0, mapped_ino = 0;
  bool is_executable = false;  // the process's main program (/proc/PID/exe)
  std::string map_file;        // /proc/PID/map_files/START-END of one mapping of it
  std::string patched_by;      // id of the nines patch that covers it in memory, if any
  int64_t patched_version = 0; // ... and its version
  std::string build_id;        // hex, filled only when a registry had to be consulted
  // Set for a source file of an interpreted program ("python", "perl", "ruby"): not a
  // mapping, but a file read at start and changed since (kReplaced: its ctime is later
  // than the process's start; kDeleted: the main script is gone). dev/inode are the
  // file's now; map_file is empty.
  std::string interpreter;
};

// Who a process belongs to, from /proc/PID/cgroup.
enum class OwnerKind { kUnit, kSession, kUserManager, kContainer, kManager, kNone };
const char* owner_kind_name(OwnerKind k);  // "unit" | "session" | "user-manager" | ...

struct Owner {
  OwnerKind kind = OwnerKind::kNone;
  std::string name;  // "nginx.service", "session-3", "docker:0123abcd4567", "systemd-manager"
  int64_t uid = -1;  // sessions and user managers
};

// Attributes a process from the text of its /proc/PID/cgroup (v2 "0::" line, or the v1
// "name=systemd" line): system units, user sessions, user managers, containers (docker,
// podman, lxc, systemd-machined, kubernetes).
Owner owner_from_cgroup(std::string_view cgroup_text);

// The cgroup path systemd manages, from the text of /proc/PID/cgroup: the v2 "0::" path,
// or the v1 "name=systemd" one when v2 says only "/" (hybrid mode).
std::string_view systemd_cgroup(std::string_view cgroup_text);

struct StaleProcess {
  pid_t pid = 0;
  pid_t ppid = 0;
  int64_t uid = -1;
  std::string comm;
  std::string exe;  // without " (deleted)"
  std::string cgroup;
  Owner owner;
  std::vector<StaleObject> objects;
  // Runs code from executable memory that is no file on disk (anonymous, memfd): a JIT,
  // or nines patch code. Only such a process can carry a nines registry.
  bool anonymous_code = false;
  // When it started, in seconds since the epoch (rounded down); 0 when unknown.
  int64_t start_unix = 0;

  // True when every stale object is covered by a nines patch applied in memory.
  bool fully_patched() const;
};

struct ScanOptions {
  std::string proc = "/proc";
  std::vector<pid_t> ignore;  // besides the scanner itself
  // Ask the kernel for executable mappings with PROCMAP_QUERY (Linux 6.11+) instead of
  // parsing the text of maps; falls back to the text by itself on older kernels.
  bool procmap_query = true;
  // Interpreted programs (Python, Perl, Ruby; interp.h): source files changed after the
  // process started. Only processes that map an interpreter's executable pay for it.
  bool interpreters = true;
  size_t interp_max_files = 1000;  // source files per process
  int interp_max_depth = 24;       // Python import chain length
};

struct ScanResult {
  std::vector<StaleProcess> stale;    // sorted by pid
  size_t processes = 0;               // user processes looked at
  size_t mappings = 0;                // executable file mappings looked at
  size_t interpreted = 0;             // interpreter processes whose sources were checked
  size_t source_files = 0;            // their source files looked at (per process)
  size_t vanished = 0;                // processes that exited during the scan
  std::vector<std::string> warnings;  // processes that could not be read, and why
};

// Scans every process of /proc except the caller. A process that exits mid-scan is
// counted in `vanished`, not reported. Fails only when /proc cannot be listed.
Result<ScanResult> scan_processes(const ScanOptions& opts = {});

// Scans one process. nullopt when it is not stale, has no user memory (kernel thread) or
// has exited; an error when it exists but cannot be read (permissions).
Result<std::optional<StaleProcess>> scan_process(pid_t pid, const ScanOptions& opts = {});

}  // namespace nines::advisor
