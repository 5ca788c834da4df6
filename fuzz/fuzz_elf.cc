// libFuzzer target: the ELF reader (src/elf), which parses objects that come from other
// processes and from servers. Touches every accessor so lazily computed parts run too.
#include <cstddef>
#include <cstdint>
#include <string>

#include "elf/elf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = nines::elf::ElfFile::from_bytes(std::string(reinterpret_cast<const char*>(data), size),
                                           "fuzz input");
  if (!f) return 0;
  size_t sink = f->build_id_hex().size() + f->soname().size() + f->min_load_vaddr();
  for (const auto& s : f->sections()) {
    auto d = f->section_data(s.name);
    if (d) sink += d->size();
  }
  for (const auto& s : f->symbols()) sink += s.name.size();
  for (const auto& s : f->dynamic_symbols()) sink += s.version.size();
  for (const auto& r : f->dynamic_relocs()) sink += r.sym_name.size();
  for (const auto& p : f->segments()) sink += p.filesz;
  volatile size_t keep = sink;
  (void)keep;
  return 0;
}
