// ELF notes: the records of an SHT_NOTE section or a PT_NOTE segment, and of the kernel's
// /sys/kernel/notes. Each record is an Elf64_Nhdr (namesz, descsz, type: 4 bytes each)
// followed by the name and the descriptor, each padded to 4 bytes (the gABI says 8 for
// 64-bit objects; every Linux toolchain and the kernel use 4). The one reader of notes, and
// so of the GNU build-id, for objects on disk, in another process and in the kernel.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace nines::elf {

// One note, as views into the area it was read from.
struct Note {
  uint32_t type = 0;       // NT_* of the name's namespace (NT_GNU_BUILD_ID for "GNU")
  std::string_view name;   // without its terminating NUL: "GNU", "Linux"
  std::string_view desc;
};

// The notes of `area` in order, up to the first record that does not fit (a truncated or
// malformed area yields the notes before it; bounds are checked before every read).
std::vector<Note> read_notes(std::string_view area);

// The descriptor of the GNU build-id note (NT_GNU_BUILD_ID, name "GNU", 1 to 64 bytes);
// nullopt when `area` has none.
std::optional<std::vector<uint8_t>> find_build_id_note(std::string_view area);

}  // namespace nines::elf
