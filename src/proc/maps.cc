#include "proc/maps.h"

#include <dirent.h>

#include <algorithm>
#include <map>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::proc {

std::string MapEntry::map_files_path(pid_t pid) const {
  return fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, start, end);
}

Result<std::vector<MapEntry>> parse_maps(std::string_view text) {
  std::vector<MapEntry> out;
  size_t lineno = 0;
  for (std::string_view line : split(text, '\n')) {
    ++lineno;
    if (trim(line).empty()) continue;
    // start-end perms offset dev inode [path]
    auto bad = [&] { return make_error("maps line {}: malformed: '{}'", lineno, line); };
    MapEntry m;
    size_t pos = 0;
    auto field = [&]() -> std::string_view {
      while (pos < line.size() && line[pos] == ' ') ++pos;
      size_t start = pos;
      while (pos < line.size() && line[pos] != ' ') ++pos;
      return line.substr(start, pos - start);
    };
    std::string_view range = field(), perms = field(), off = field(), dev = field(), ino = field();
    size_t dash = range.find('-');
    size_t colon = dev.find(':');
    if (dash == std::string_view::npos || perms.size() < 4 || colon == std::string_view::npos)
      return bad();
    auto s = parse_u64(range.substr(0, dash), 16), e = parse_u64(range.substr(dash + 1), 16);
    auto o = parse_u64(off, 16), i = parse_u64(ino, 10);
    auto dmaj = parse_u64(dev.substr(0, colon), 16), dmin = parse_u64(dev.substr(colon + 1), 16);
    if (!s || !e || !o || !i || !dmaj || !dmin || *e < *s) return bad();
    m.start = *s;
    m.end = *e;
    m.read = perms[0] == 'r';
    m.write = perms[1] == 'w';
    m.exec = perms[2] == 'x';
    m.shared = perms[3] == 's';
    m.offset = *o;
    m.dev_major = static_cast<uint32_t>(*dmaj);
    m.dev_minor = static_cast<uint32_t>(*dmin);
    m.inode = *i;
    while (pos < line.size() && line[pos] == ' ') ++pos;
    std::string_view path = line.substr(pos);
    constexpr std::string_view kDeleted = " (deleted)";
    if (path.size() > kDeleted.size() && path.substr(path.size() - kDeleted.size()) == kDeleted) {
      m.deleted = true;
      path.remove_suffix(kDeleted.size());
    }
    m.path = std::string(path);
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<MapEntry>> read_maps(pid_t pid) {
  std::string text = NINES_TRY(read_file(fmt::format("/proc/{}/maps", pid)));
  auto r = parse_maps(text);
  if (!r) return r.error().wrap(fmt::format("/proc/{}/maps", pid));
  return r;
}

static std::vector<pid_t> numeric_entries(const std::string& dir, bool* ok) {
  std::vector<pid_t> out;
  DIR* d = opendir(dir.c_str());
  if (!d) {
    if (ok) *ok = false;
    return out;
  }
  if (ok) *ok = true;
  while (dirent* de = readdir(d)) {
    if (auto v = parse_u64(de->d_name)) out.push_back(static_cast<pid_t>(*v));
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<pid_t>> list_threads(pid_t pid) {
  bool ok = false;
  auto tids = numeric_entries(fmt::format("/proc/{}/task", pid), &ok);
  if (!ok) return errno_error(fmt::format("list threads of pid {}", pid));
  return tids;
}

std::vector<pid_t> list_processes() { return numeric_entries("/proc", nullptr); }

std::vector<MappedObject> group_objects(const std::vector<MapEntry>& maps) {
  std::vector<MappedObject> out;
  std::map<std::tuple<uint32_t, uint32_t, uint64_t, std::string>, size_t> index;
  for (const auto& m : maps) {
    if (!m.file_backed()) continue;
    auto key = std::make_tuple(m.dev_major, m.dev_minor, m.inode, m.path);
    auto it = index.find(key);
    if (it == index.end()) {
      MappedObject o;
      o.path = m.path;
      o.dev_major = m.dev_major;
      o.dev_minor = m.dev_minor;
      o.inode = m.inode;
      o.deleted = m.deleted;
      o.lowest = m.start;
      o.highest = m.end;
      it = index.emplace(key, out.size()).first;
      out.push_back(std::move(o));
    }
    MappedObject& o = out[it->second];
    o.lowest = std::min(o.lowest, m.start);
    o.highest = std::max(o.highest, m.end);
    if (m.offset == 0 && o.offset0_start == 0) o.offset0_start = m.start;
    o.maps.push_back(m);
  }
  return out;
}

}  // namespace nines::proc
