#include "gen/target_symbols.h"

#include <elf.h>

#include "core/strings.h"
#include "ulp/symbols.h"

namespace nines::gen {

static std::vector<TargetSymbol> collect(const elf::ElfFile& f) {
  std::vector<TargetSymbol> out;
  std::string file;
  for (const auto& s : f.symbols()) {
    if (s.type == STT_FILE) {
      file = basename_of(s.name);
      continue;
    }
    if (!s.defined() || s.name.empty()) continue;
    if (s.type != STT_FUNC && s.type != STT_OBJECT && s.type != STT_GNU_IFUNC && s.type != STT_TLS)
      continue;
    out.push_back({s.name, s.bind == STB_LOCAL ? file : "", s.value, s.size, s.type, s.bind});
  }
  return out;
}

Result<TargetSymbols> TargetSymbols::of(const elf::ElfFile& target, const std::string& path,
                                        const std::string& debug_root) {
  TargetSymbols t;
  t.target_ = path;
  if (!target.symbols().empty()) {
    t.syms_ = collect(target);
    t.source_ = path;
    return t;
  }
  if (auto dbg = ulp::find_debug_file(target.build_id_hex(), debug_root)) {
    auto d = elf::ElfFile::open(*dbg);
    if (!d) return d.error().wrap(path + ": its debug file");
    if (!d->symbols().empty()) {
      t.syms_ = collect(*d);
      t.source_ = *dbg;
      return t;
    }
  }
  return make_error("{}: stripped, and no debug file with its symbol table under "
                    "{}/.build-id for build-id {}: install the library's debug symbols "
                    "(the -dbgsym package of its source package)",
                    path, debug_root, target.build_id_hex());
}

bool TargetSymbols::has(const std::string& name) const {
  for (const auto& s : syms_)
    if (s.name == name) return true;
  return false;
}

Result<TargetSymbol> TargetSymbols::find(const std::string& name, const std::string& file) const {
  std::vector<const TargetSymbol*> in_file, locals;
  for (const auto& s : syms_) {
    if (s.name != name) continue;
    if (s.bind != STB_LOCAL) return s;
    locals.push_back(&s);
    if (!file.empty() && s.file == basename_of(file)) in_file.push_back(&s);
  }
  if (in_file.size() == 1) return *in_file.front();
  if (in_file.empty() && locals.size() == 1) return *locals.front();
  if (locals.empty()) return make_error("{}: no symbol '{}'", source_, name);
  std::vector<std::string> where;
  for (const auto* s : locals) where.push_back(fmt::format("{:#x} in {}", s->value, s->file.empty() ? "?" : s->file));
  return make_error("{}: '{}' of {} is ambiguous: {}", source_, name, file, fmt::join(where, ", "));
}

}  // namespace nines::gen
