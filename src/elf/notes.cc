#include "elf/notes.h"

#include <elf.h>

#include <cstring>

namespace nines::elf {

namespace {
constexpr uint64_t align4(uint64_t n) { return (n + 3) & ~uint64_t{3}; }
}  // namespace

std::vector<Note> read_notes(std::string_view area) {
  std::vector<Note> out;
  size_t off = 0;
  while (area.size() - off >= sizeof(Elf64_Nhdr)) {
    Elf64_Nhdr nh;
    std::memcpy(&nh, area.data() + off, sizeof nh);
    off += sizeof nh;
    // Sizes are checked against what is left before anything is read at them.
    if (align4(nh.n_namesz) > area.size() - off) break;
    std::string_view name = area.substr(off, nh.n_namesz);
    off += align4(nh.n_namesz);
    if (nh.n_descsz > area.size() - off) break;
    std::string_view desc = area.substr(off, nh.n_descsz);
    if (!name.empty() && name.back() == '\0') name.remove_suffix(1);
    out.push_back({nh.n_type, name, desc});
    if (align4(nh.n_descsz) > area.size() - off) break;
    off += align4(nh.n_descsz);
  }
  return out;
}

std::optional<std::vector<uint8_t>> find_build_id_note(std::string_view area) {
  for (const Note& n : read_notes(area)) {
    if (n.type != NT_GNU_BUILD_ID || n.name != "GNU" || n.desc.empty() || n.desc.size() > 64)
      continue;
    const auto* d = reinterpret_cast<const uint8_t*>(n.desc.data());
    return std::vector<uint8_t>(d, d + n.desc.size());
  }
  return std::nullopt;
}

}  // namespace nines::elf
