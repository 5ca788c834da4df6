// /proc/PID/stat and /proc/PID/task/TID/stat: the one reader of the fields nines uses.
// The second field, the command name in parentheses, may itself hold spaces and
// parentheses, so the fields are counted after the last ')'.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace nines::proc {

struct TaskStat {
  char state = 0;            // field 3: R, S, D, T, t, Z (zombie), X (dead), ...
  uint64_t start_ticks = 0;  // field 22: start time in clock ticks after boot
  uint64_t vsize = 0;        // field 23: virtual size in bytes
  bool alive() const { return state != 'Z' && state != 'X'; }
};

// Parses the text of a stat file; nullopt when it is malformed or too short.
std::optional<TaskStat> parse_stat(std::string_view text);
// /proc/PID/stat; nullopt when the process is gone (or the file is malformed).
std::optional<TaskStat> read_stat(pid_t pid);
// /proc/PID/task/TID/stat, one thread's.
std::optional<TaskStat> read_task_stat(pid_t pid, pid_t tid);

}  // namespace nines::proc
