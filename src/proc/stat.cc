#include "proc/stat.h"

#include <fmt/format.h>

#include <vector>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::proc {

std::optional<TaskStat> parse_stat(std::string_view text) {
  size_t rp = text.rfind(')');
  if (rp == std::string_view::npos || rp + 2 >= text.size()) return std::nullopt;
  // fields[0] is field 3 (the state).
  std::vector<std::string_view> fields = split(text.substr(rp + 2), ' ');
  if (fields.size() < 21 || fields[0].size() != 1) return std::nullopt;
  auto start = parse_u64(fields[19]);
  auto vsize = parse_u64(trim(fields[20]));
  if (!start || !vsize) return std::nullopt;
  return TaskStat{fields[0][0], *start, *vsize};
}

namespace {
std::optional<TaskStat> read_stat_file(const std::string& path) {
  auto text = read_file(path, 4096);
  if (!text) return std::nullopt;
  return parse_stat(*text);
}
}  // namespace

std::optional<TaskStat> read_stat(pid_t pid) {
  return read_stat_file(fmt::format("/proc/{}/stat", pid));
}

std::optional<TaskStat> read_task_stat(pid_t pid, pid_t tid) {
  return read_stat_file(fmt::format("/proc/{}/task/{}/stat", pid, tid));
}

}  // namespace nines::proc
