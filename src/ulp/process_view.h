// What the patcher knows of one target process before it touches it: its mappings, the
// objects it maps (with load bases and build-ids), and symbol resolution against them.
// Everything here is computed before the freeze.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "elf/elf_file.h"
#include "proc/maps.h"
#include "ulp/symbols.h"

namespace nines::ulp {

// Parsed objects shared across processes (for --all), keyed by device and inode of the
// mapped file.
class ElfCache {
 public:
  struct Entry {
    std::shared_ptr<elf::ElfFile> elf;
    std::shared_ptr<SymbolTable> symbols;
  };
  // Reads the object through /proc/PID/map_files so a replaced or deleted file is the one
  // the process really maps.
  Result<Entry> get(pid_t pid, const proc::MappedObject& obj);
  std::optional<std::string> build_id(pid_t pid, const proc::MappedObject& obj);

 private:
  std::map<std::tuple<uint32_t, uint32_t, uint64_t>, Entry> parsed_;
  std::map<std::tuple<uint32_t, uint32_t, uint64_t>, std::string> build_ids_;
};

struct LoadedObject {
  proc::MappedObject mapped;
  uint64_t base = 0;  // load bias: runtime address = base + st_value
};

class ProcessView {
 public:
  static Result<ProcessView> inspect(pid_t pid, ElfCache& cache);

  pid_t pid() const { return pid_; }
  const std::vector<proc::MapEntry>& maps() const { return maps_; }
  const std::vector<LoadedObject>& objects() const { return objects_; }

  // The object with this build-id; when none maps it, an error that says whether an
  // object of `name` is mapped with another build-id.
  Result<const LoadedObject*> find_target(const std::string& name, const std::string& build_id);

  // Resolves an undefined symbol of a patch: first in `preferred` (the target, where
  // statics count), then in every loaded object's dynamic symbols in load order, taking
  // the default version (or `version` when given). IFUNC symbols resolve to the
  // implementation the process already uses.
  Result<uint64_t> resolve(const std::string& name, const std::string& version,
                           const LoadedObject* preferred);

  // For an IFUNC symbol of `obj`: the implementation address the process resolved it to,
  // read from a GOT slot that the dynamic loader filled.
  std::optional<uint64_t> resolved_ifunc(const LoadedObject& obj, const elf::Symbol& sym);

  ElfCache& cache() { return *cache_; }

 private:
  pid_t pid_ = 0;
  ElfCache* cache_ = nullptr;
  std::vector<proc::MapEntry> maps_;
  std::vector<LoadedObject> objects_;
};

}  // namespace nines::ulp
