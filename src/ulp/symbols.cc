#include "ulp/symbols.h"

#include <elf.h>
#include <unistd.h>

#include <algorithm>

#include "core/strings.h"

namespace nines::ulp {

std::optional<std::string> find_debug_file(const std::string& id, const std::string& root) {
  if (id.size() < 4) return std::nullopt;
  std::string p = fmt::format("{}/.build-id/{}/{}.debug", root, id.substr(0, 2), id.substr(2));
  if (access(p.c_str(), R_OK) == 0) return p;
  return std::nullopt;
}

static bool interesting(const elf::Symbol& s) {
  return s.defined() && !s.name.empty() &&
         (s.type == STT_FUNC || s.type == STT_OBJECT || s.type == STT_GNU_IFUNC ||
          s.type == STT_TLS || s.type == STT_NOTYPE);
}

SymbolTable SymbolTable::of(const elf::ElfFile& obj) {
  SymbolTable t;
  for (const auto& s : obj.symbols())
    if (interesting(s)) t.syms_.push_back(s);
  t.full_ = !obj.symbols().empty();
  if (!t.full_ && !obj.build_id().empty()) {
    if (auto dbg = find_debug_file(obj.build_id_hex())) {
      if (auto d = elf::ElfFile::open(*dbg)) {
        for (const auto& s : d->symbols())
          if (interesting(s)) t.syms_.push_back(s);
        t.full_ = !d->symbols().empty();
      }
    }
  }
  for (const auto& s : obj.dynamic_symbols())
    if (interesting(s)) t.syms_.push_back(s);
  return t;
}

Result<elf::Symbol> SymbolTable::find(const std::string& name, const std::string& object_name) const {
  std::vector<const elf::Symbol*> globals, locals;
  for (const auto& s : syms_) {
    if (s.name != name) continue;
    auto& bucket = s.bind == STB_LOCAL ? locals : globals;
    // The same symbol appears in .symtab and .dynsym: keep one per address.
    if (std::none_of(bucket.begin(), bucket.end(), [&](const elf::Symbol* o) { return o->value == s.value; }))
      bucket.push_back(&s);
  }
  if (!globals.empty()) {
    // Several versions of one name (memcpy@GLIBC_2.2.5, memcpy@@GLIBC_2.14): the default.
    for (const auto* g : globals)
      if (!g->version_hidden) return *g;
    return *globals.front();
  }
  if (locals.size() == 1) return *locals.front();
  if (locals.size() > 1)
    return make_error("{}: '{}' names {} different static symbols (at {:#x} and {:#x}); it is ambiguous",
                      object_name, name, locals.size(), locals[0]->value, locals[1]->value);
  if (!full_)
    return make_error("{}: no symbol '{}' (the object is stripped and no debug file was found "
                      "under /usr/lib/debug/.build-id; install its -dbgsym package)",
                      object_name, name);
  return make_error("{}: no symbol '{}'", object_name, name);
}

std::optional<elf::Symbol> SymbolTable::containing(uint64_t off) const {
  for (const auto& s : syms_)
    if ((s.type == STT_FUNC) && off >= s.value && off < s.value + std::max<uint64_t>(s.size, 1))
      return s;
  return std::nullopt;
}

std::vector<std::string> SymbolTable::functions_like(const std::string& fragment) const {
  std::vector<std::string> out;
  for (const auto& s : syms_)
    if (s.type == STT_FUNC && s.name != fragment && s.name.find(fragment) != std::string::npos &&
        std::find(out.begin(), out.end(), s.name) == out.end())
      out.push_back(s.name);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace nines::ulp
