// /proc/PID/maps and /proc/PID/task parsing.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nines::proc {

struct MapEntry {
  uint64_t start = 0, end = 0;
  bool read = false, write = false, exec = false, shared = false;
  uint64_t offset = 0;
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::string path;      // without the " (deleted)" suffix
  bool deleted = false;  // the file was unlinked (or replaced) after it was mapped

  uint64_t size() const { return end - start; }
  bool file_backed() const { return inode != 0 && !path.empty() && path[0] == '/'; }
  // "/proc/PID/map_files/START-END": opens the object this mapping really maps, even when
  // the file on disk was replaced or deleted.
  std::string map_files_path(pid_t pid) const;
};

// Parses the text of a maps file. Malformed lines are an error naming the line.
Result<std::vector<MapEntry>> parse_maps(std::string_view text);
Result<std::vector<MapEntry>> read_maps(pid_t pid);

// The thread ids in /proc/PID/task. Fails when the process does not exist.
Result<std::vector<pid_t>> list_threads(pid_t pid);

// Every process id in /proc (the caller's PID namespace).
std::vector<pid_t> list_processes();

// One object (executable or shared library) as mapped: its mappings grouped by file.
struct MappedObject {
  std::string path;
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  bool deleted = false;
  uint64_t lowest = 0, highest = 0;  // span of all its mappings
  uint64_t offset0_start = 0;        // start of the mapping with file offset 0
  std::vector<MapEntry> maps;
};

// Groups file-backed mappings by (device, inode), in address order of first appearance.
std::vector<MappedObject> group_objects(const std::vector<MapEntry>& maps);

}  // namespace nines::proc
