#include "gen/object_diff.h"

#include <elf.h>

#include <algorithm>
#include <functional>

#include "core/strings.h"

namespace nines::gen {

using elf::RelocatableObject;
using elf::Relocation;
using elf::RelSymbol;

std::string_view to_string(Change c) {
  switch (c) {
    case Change::kSame: return "same";
    case Change::kChanged: return "changed";
    case Change::kNew: return "new";
  }
  return "?";
}

const SymbolDiff* ObjectDiff::find(uint32_t patched_index) const {
  for (const auto& s : symbols)
    if (s.patched == patched_index) return &s;
  return nullptr;
}

bool ObjectDiff::changed_or_new_function() const {
  return std::any_of(symbols.begin(), symbols.end(), [](const SymbolDiff& s) {
    return s.function && s.change != Change::kSame;
  });
}

static bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string strip_numeric_suffixes(std::string_view name) {
  std::string out;
  size_t start = 0;
  bool first = true;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    std::string_view part = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (first || !all_digits(part)) {
      if (!first) out.push_back('.');
      out.append(part);
    }
    first = false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

std::string cold_parent(std::string_view name) {
  size_t pos = name.rfind(".cold");
  if (pos == std::string_view::npos || pos == 0) return "";
  std::string_view rest = name.substr(pos + 5);
  if (!rest.empty() && !(rest[0] == '.' && all_digits(rest.substr(1)))) return "";
  return std::string(name.substr(0, pos));
}

static bool pc_relative(uint32_t type) {
  switch (type) {
    case R_X86_64_PC32: case R_X86_64_PLT32: case R_X86_64_GOTPCREL:
    case R_X86_64_GOTPCRELX: case R_X86_64_REX_GOTPCRELX: case R_X86_64_PC64:
      return true;
    default:
      return false;
  }
}

static bool named_kind(const RelSymbol& s) {
  return s.type == STT_FUNC || s.type == STT_OBJECT || s.type == STT_TLS;
}

RelocTarget resolve_reloc_target(const RelocatableObject& obj, const Relocation& r) {
  const RelSymbol& sym = obj.symbol(r.symbol);
  RelocTarget t;
  if (!sym.defined()) {
    t.kind = RelocTarget::Kind::kUndefined;
    t.symbol = r.symbol;
    t.addend = r.addend;
    return t;
  }
  if (named_kind(sym)) {
    t.symbol = r.symbol;
    t.section = sym.shndx;
    t.addend = r.addend;
    return t;
  }
  // A section symbol, or a local label such as .LC0 (string literals): find the object
  // the section holds.
  int64_t off = static_cast<int64_t>(sym.value) + r.addend;
  t.section = sym.shndx;
  std::vector<const RelSymbol*> named;
  for (const RelSymbol* s : obj.symbols_in(sym.shndx))
    if (named_kind(*s)) named.push_back(s);
  if (named.empty()) {
    t.kind = RelocTarget::Kind::kAnonymous;
    t.addend = off;
    return t;
  }
  const RelSymbol* hit = named.front();
  if (named.size() > 1) {
    // Several objects in one section (built without -fdata-sections): the one holding
    // the referenced byte. A pc-relative field ends 4 bytes after its start.
    int64_t probe = off + (pc_relative(r.type) ? 4 : 0);
    for (const RelSymbol* s : named)
      if (static_cast<int64_t>(s->value) <= probe) hit = s;
  }
  t.symbol = hit->index;
  t.addend = off - static_cast<int64_t>(hit->value);
  return t;
}

namespace {

using NameOf = std::function<std::string(uint32_t)>;

std::string anonymous_key(const RelocatableObject& obj, const RelocTarget& t, uint32_t type) {
  const elf::RelSection& s = obj.section(t.section);
  if ((s.flags & SHF_STRINGS) && !s.nobits()) {
    int64_t at = t.addend + (pc_relative(type) ? 4 : 0);
    if (at < 0 || static_cast<uint64_t>(at) >= s.data.size())
      return fmt::format("str@{}:{}", s.name, t.addend);
    size_t end = s.data.find('\0', static_cast<size_t>(at));
    return "str:" + s.data.substr(static_cast<size_t>(at), end == std::string::npos ? std::string::npos : end - static_cast<size_t>(at));
  }
  // Anonymous constants and tables: their bytes and where their relocations point (by
  // section name, not recursively: a jump table points back into its own function).
  std::string key = fmt::format("anon:{}:{}:", s.nobits() ? std::string("nobits") : s.data, s.size);
  for (const auto& r : s.relocations) {
    const RelSymbol& rs = obj.symbol(r.symbol);
    std::string where = rs.defined() ? obj.section(rs.shndx).name : rs.name;
    key += fmt::format("{}/{}/{}/{}+{};", r.offset, r.type, where, rs.type == STT_SECTION ? "" : rs.name, r.addend);
  }
  return key + fmt::format("+{}", t.addend);
}

std::string reloc_key(const RelocatableObject& obj, const Relocation& r, const NameOf& name_of) {
  RelocTarget t = resolve_reloc_target(obj, r);
  switch (t.kind) {
    case RelocTarget::Kind::kUndefined:
      return fmt::format("{}:ext:{}+{}", r.type, obj.symbol(t.symbol).name, t.addend);
    case RelocTarget::Kind::kAnonymous:
      return fmt::format("{}:{}", r.type, anonymous_key(obj, t, r.type));
    case RelocTarget::Kind::kSymbol:
      break;
  }
  const RelSymbol& s = obj.symbol(t.symbol);
  std::string base = strip_numeric_suffixes(s.name);
  if (s.type == STT_OBJECT && (base == "__func__" || base == "__PRETTY_FUNCTION__" || base == "__FUNCTION__")) {
    const elf::RelSection& sec = obj.section(s.shndx);
    std::string text = s.value < sec.data.size() ? sec.data.substr(s.value, s.size) : "";
    return fmt::format("{}:fname:{}+{}", r.type, text, t.addend);
  }
  return fmt::format("{}:sym:{}+{}", r.type, name_of(t.symbol), t.addend);
}

// The bytes and relocations of one symbol, as comparable text.
struct Body {
  bool nobits = false;
  std::string bytes;
  std::vector<std::pair<uint64_t, std::string>> relocs;
};

Body body_of(const RelocatableObject& obj, const RelSymbol& s, const NameOf& name_of) {
  Body b;
  const elf::RelSection& sec = obj.section(s.shndx);
  b.nobits = sec.nobits();
  uint64_t size = s.size;
  // A function symbol of size 0 (hand-written assembly) covers its section.
  if (size == 0) size = sec.size > s.value ? sec.size - s.value : 0;
  if (!b.nobits && s.value <= sec.data.size())
    b.bytes = sec.data.substr(s.value, std::min<uint64_t>(size, sec.data.size() - s.value));
  else
    b.bytes = fmt::format("{} zero bytes", size);
  for (const auto& r : sec.relocations)
    if (r.offset >= s.value && r.offset < s.value + size)
      b.relocs.emplace_back(r.offset - s.value, reloc_key(obj, r, name_of));
  return b;
}

bool same_body(const Body& a, const Body& b) {
  return a.nobits == b.nobits && a.bytes == b.bytes && a.relocs == b.relocs;
}

bool is_function(const RelSymbol& s) { return s.type == STT_FUNC; }

// A local object named like gcc names static locals: "name.N".
bool static_local(const RelSymbol& s) {
  return s.type == STT_OBJECT && s.bind == STB_LOCAL && strip_numeric_suffixes(s.name) != s.name;
}

std::vector<uint32_t> defined_symbols(const RelocatableObject& obj) {
  std::vector<uint32_t> out;
  for (const auto& s : obj.symbols())
    if (s.defined() && named_kind(s) && !s.name.empty()) out.push_back(s.index);
  return out;
}

// Pairs symbols of `o` and `p` that `key` maps to the same text, when that text names
// exactly one unpaired symbol on each side.
void pair_unique(const RelocatableObject& o, const RelocatableObject& p,
                 const std::vector<uint32_t>& os, const std::vector<uint32_t>& ps,
                 const std::function<std::string(const RelSymbol&)>& key, ObjectDiff& d) {
  std::map<std::string, std::vector<uint32_t>> ok, pk;
  for (uint32_t i : os)
    if (!d.twin_of_original.count(i)) ok[key(o.symbol(i))].push_back(i);
  for (uint32_t i : ps)
    if (!d.twin_of_patched.count(i)) pk[key(p.symbol(i))].push_back(i);
  for (const auto& [k, pv] : pk) {
    auto it = ok.find(k);
    if (it == ok.end() || it->second.size() != 1 || pv.size() != 1) continue;
    d.twin_of_original[it->second[0]] = pv[0];
    d.twin_of_patched[pv[0]] = it->second[0];
  }
}

// The static locals (uncorrelated local objects) a function references, in order.
std::vector<uint32_t> local_object_refs(const RelocatableObject& obj, const RelSymbol& f,
                                        const std::map<uint32_t, uint32_t>& twins) {
  std::vector<uint32_t> out;
  const elf::RelSection& sec = obj.section(f.shndx);
  for (const auto& r : sec.relocations) {
    if (r.offset < f.value || r.offset >= f.value + std::max<uint64_t>(f.size, 1)) continue;
    RelocTarget t = resolve_reloc_target(obj, r);
    if (t.kind != RelocTarget::Kind::kSymbol) continue;
    const RelSymbol& s = obj.symbol(t.symbol);
    if (s.type == STT_OBJECT && s.bind == STB_LOCAL && !twins.count(s.index)) out.push_back(s.index);
  }
  return out;
}

}  // namespace

Result<ObjectDiff> diff_objects(const RelocatableObject& o, const RelocatableObject& p) {
  ObjectDiff d;
  std::vector<uint32_t> os = defined_symbols(o), ps = defined_symbols(p);
  auto kind_and = [](auto f) {
    return [f](const RelSymbol& s) { return std::string(is_function(s) ? "F:" : "D:") + f(s); };
  };
  // 1. Exact names, except static locals (`buf.3`): gcc numbers them in the order it
  //    meets them, so the same number can name another variable after the change.
  //    2. Names without gcc's numeric suffixes.
  std::vector<uint32_t> os_named, ps_named;
  for (uint32_t i : os)
    if (!static_local(o.symbol(i))) os_named.push_back(i);
  for (uint32_t i : ps)
    if (!static_local(p.symbol(i))) ps_named.push_back(i);
  pair_unique(o, p, os_named, ps_named, kind_and([](const RelSymbol& s) { return s.name; }), d);
  pair_unique(o, p, os, ps, kind_and([](const RelSymbol& s) { return strip_numeric_suffixes(s.name); }), d);
  // 3. Static locals still unpaired: the k-th reference of a twin function to a local
  //    named like it.
  for (auto [oi, pi] : std::map<uint32_t, uint32_t>(d.twin_of_original)) {
    const RelSymbol& of = o.symbol(oi);
    const RelSymbol& pf = p.symbol(pi);
    if (!is_function(of)) continue;
    auto orefs = local_object_refs(o, of, d.twin_of_original);
    auto prefs = local_object_refs(p, pf, d.twin_of_patched);
    std::map<std::string, std::vector<uint32_t>> ob, pb;
    for (uint32_t i : orefs) {
      auto& v = ob[strip_numeric_suffixes(o.symbol(i).name)];
      if (std::find(v.begin(), v.end(), i) == v.end()) v.push_back(i);
    }
    for (uint32_t i : prefs) {
      auto& v = pb[strip_numeric_suffixes(p.symbol(i).name)];
      if (std::find(v.begin(), v.end(), i) == v.end()) v.push_back(i);
    }
    for (const auto& [name, pv] : pb) {
      auto it = ob.find(name);
      if (it == ob.end()) continue;
      for (size_t k = 0; k < pv.size() && k < it->second.size(); ++k) {
        if (d.twin_of_original.count(it->second[k]) || d.twin_of_patched.count(pv[k])) continue;
        d.twin_of_original[it->second[k]] = pv[k];
        d.twin_of_patched[pv[k]] = it->second[k];
      }
    }
  }

  NameOf orig_name = [&](uint32_t i) { return o.symbol(i).name; };
  NameOf patched_name = [&](uint32_t i) {
    if (auto it = d.twin_of_patched.find(i); it != d.twin_of_patched.end()) return o.symbol(it->second).name;
    return "new:" + p.symbol(i).name;
  };

  std::map<std::string, size_t> by_name;
  for (uint32_t pi : ps) {
    const RelSymbol& s = p.symbol(pi);
    SymbolDiff sd;
    sd.patched = pi;
    sd.function = is_function(s);
    sd.writable = p.section(s.shndx).flags & SHF_WRITE;
    sd.parent = sd.function ? cold_parent(s.name) : "";
    if (auto it = d.twin_of_patched.find(pi); it != d.twin_of_patched.end()) {
      sd.original = it->second;
      const RelSymbol& os_ = o.symbol(it->second);
      bool same = same_body(body_of(o, os_, orig_name), body_of(p, s, patched_name)) &&
                  os_.size == s.size;
      sd.change = same ? Change::kSame : Change::kChanged;
    } else {
      sd.change = Change::kNew;
    }
    by_name[s.name] = d.symbols.size();
    d.symbols.push_back(sd);
  }
  // A changed `.cold` part changes its parent.
  for (const auto& sd : d.symbols) {
    if (sd.parent.empty() || sd.change == Change::kSame) continue;
    auto it = by_name.find(sd.parent);
    if (it != by_name.end() && d.symbols[it->second].change == Change::kSame)
      d.symbols[it->second].change = Change::kChanged;
  }
  for (uint32_t oi : os)
    if (!d.twin_of_original.count(oi)) d.removed.push_back(oi);
  return d;
}

}  // namespace nines::gen
