// libFuzzer target: the /proc/PID/maps parser (src/proc/maps.cc). The text is the
// kernel's, but the paths in it are not: any user names the files a process maps, and
// "(deleted)", spaces and odd bytes in them are theirs. What is accepted must print back
// to lines that parse to the same entries; grouping by object must keep every mapping.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "proc/maps.h"

using namespace nines::proc;

namespace {

std::string line_of(const MapEntry& m) {
  return fmt::format("{:x}-{:x} {}{}{}{} {:08x} {:02x}:{:02x} {} {}{}\n", m.start, m.end,
                     m.read ? 'r' : '-', m.write ? 'w' : '-', m.exec ? 'x' : '-',
                     m.shared ? 's' : 'p', m.offset, m.dev_major, m.dev_minor, m.inode, m.path,
                     m.deleted ? " (deleted)" : "");
}

bool same(const MapEntry& a, const MapEntry& b) {
  return a.start == b.start && a.end == b.end && a.read == b.read && a.write == b.write &&
         a.exec == b.exec && a.shared == b.shared && a.offset == b.offset &&
         a.dev_major == b.dev_major && a.dev_minor == b.dev_minor && a.inode == b.inode &&
         a.path == b.path && a.deleted == b.deleted;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto maps = parse_maps(text);
  if (!maps) return 0;
  std::string printed;
  size_t file_backed = 0;
  for (const auto& m : *maps) {
    if (m.end < m.start) __builtin_trap();
    printed += line_of(m);
    file_backed += m.file_backed();
  }
  auto again = parse_maps(printed);
  if (!again || again->size() != maps->size()) __builtin_trap();
  for (size_t i = 0; i < maps->size(); ++i)
    if (!same((*maps)[i], (*again)[i])) __builtin_trap();
  size_t grouped = 0;
  for (const auto& o : group_objects(*maps)) {
    if (o.lowest > o.highest) __builtin_trap();
    grouped += o.maps.size();
  }
  if (grouped != file_backed) __builtin_trap();
  return 0;
}
