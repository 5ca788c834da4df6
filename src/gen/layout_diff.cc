#include "gen/layout_diff.h"

#include <dwarf.h>

#include "core/strings.h"
#include "gen/object_dwarf.h"

namespace nines::gen {

namespace {

bool type_of(Dwarf_Die* d, Dwarf_Die* out) {
  Dwarf_Attribute a;
  return dwarf_attr_integrate(d, DW_AT_type, &a) && dwarf_formref_die(&a, out);
}

// A short, stable description of a type: enough to see that a member changed type.
std::string describe(Dwarf_Die* t, int depth = 0) {
  if (depth > 4) return "...";
  int tag = dwarf_tag(t);
  Dwarf_Die inner;
  bool has_inner = type_of(t, &inner);
  std::string name = die_name(t);
  switch (tag) {
    case DW_TAG_pointer_type: return "*" + (has_inner ? describe(&inner, depth + 1) : "void");
    case DW_TAG_const_type: return "const " + (has_inner ? describe(&inner, depth + 1) : "void");
    case DW_TAG_volatile_type: return "volatile " + (has_inner ? describe(&inner, depth + 1) : "void");
    case DW_TAG_array_type: {
      Dwarf_Word size = 0;
      Dwarf_Die copy = *t;
      dwarf_aggregate_size(&copy, &size);
      return fmt::format("{}[{} bytes]", has_inner ? describe(&inner, depth + 1) : "?", size);
    }
    case DW_TAG_structure_type: return "struct " + (name.empty() ? "<anonymous>" : name);
    case DW_TAG_union_type: return "union " + (name.empty() ? "<anonymous>" : name);
    case DW_TAG_enumeration_type: return "enum " + (name.empty() ? "<anonymous>" : name);
    case DW_TAG_subroutine_type: return "function";
    default: return name.empty() ? fmt::format("tag{}", tag) : name;
  }
}

StructLayout read_struct(Dwarf_Die* s, const std::string& name) {
  StructLayout l;
  l.name = name;
  Dwarf_Word size = 0;
  Dwarf_Die copy = *s;
  if (dwarf_aggregate_size(&copy, &size) == 0) l.size = size;
  Dwarf_Die m;
  if (dwarf_child(s, &m) != 0) return l;
  do {
    if (dwarf_tag(&m) != DW_TAG_member) continue;
    Member mem;
    mem.name = die_name(&m);
    if (mem.name.empty()) mem.name = "<anonymous>";
    mem.offset = die_udata(&m, DW_AT_data_member_location);
    uint64_t bit = die_udata(&m, DW_AT_data_bit_offset, UINT64_MAX);
    mem.bit_size = die_udata(&m, DW_AT_bit_size);
    if (bit != UINT64_MAX) {
      mem.offset = bit / 8;
      mem.bit_offset = bit % 8;
    }
    Dwarf_Die t;
    if (type_of(&m, &t)) {
      Dwarf_Word ts = 0;
      Dwarf_Die tc = t;
      if (dwarf_aggregate_size(&tc, &ts) == 0) mem.size = ts;
      mem.type = describe(&t);
    }
    l.members.push_back(std::move(mem));
  } while (dwarf_siblingof(&m, &m) == 0);
  return l;
}

void walk(Dwarf_Die* parent, std::map<std::string, StructLayout>& out, int depth) {
  if (depth > 32) return;
  Dwarf_Die d;
  if (dwarf_child(parent, &d) != 0) return;
  do {
    int tag = dwarf_tag(&d);
    bool declaration = die_udata(&d, DW_AT_declaration) != 0;
    if ((tag == DW_TAG_structure_type || tag == DW_TAG_union_type) && !declaration) {
      std::string n = die_name(&d);
      if (!n.empty()) {
        std::string key = (tag == DW_TAG_union_type ? "union " : "struct ") + n;
        if (!out.count(key)) out[key] = read_struct(&d, key);
      }
    }
    if (tag == DW_TAG_typedef) {
      Dwarf_Die t;
      if (type_of(&d, &t) && (dwarf_tag(&t) == DW_TAG_structure_type || dwarf_tag(&t) == DW_TAG_union_type) &&
          die_name(&t).empty() && die_udata(&t, DW_AT_declaration) == 0) {
        std::string key = die_name(&d);
        if (!out.count(key)) out[key] = read_struct(&t, key);
      }
    }
    if (tag == DW_TAG_subprogram || tag == DW_TAG_lexical_block || tag == DW_TAG_structure_type ||
        tag == DW_TAG_union_type)
      walk(&d, out, depth + 1);
  } while (dwarf_siblingof(&d, &d) == 0);
}

}  // namespace

Result<std::map<std::string, StructLayout>> read_struct_layouts(const std::string& path) {
  ObjectDwarf dw = NINES_TRY(ObjectDwarf::open(path));
  std::map<std::string, StructLayout> out;
  dw.for_each_cu([&](Dwarf_Die* cu) { walk(cu, out, 0); });
  return out;
}

std::vector<std::string> compare_layouts(const std::map<std::string, StructLayout>& a,
                                         const std::map<std::string, StructLayout>& b) {
  std::vector<std::string> out;
  for (const auto& [name, ol] : a) {
    auto it = b.find(name);
    if (it == b.end()) continue;
    const StructLayout& nl = it->second;
    std::vector<std::string> what;
    std::map<std::string, const Member*> om, nm;
    for (const auto& m : ol.members) om[m.name] = &m;
    for (const auto& m : nl.members) nm[m.name] = &m;
    std::vector<std::string> moved;
    for (const auto& m : nl.members) {
      auto o = om.find(m.name);
      if (o == om.end()) {
        what.push_back(fmt::format("member {} added at offset {}", m.name, m.offset));
        continue;
      }
      const Member& x = *o->second;
      if (x.offset != m.offset || x.bit_offset != m.bit_offset)
        moved.push_back(fmt::format("member {} moved from offset {} to {}", m.name, x.offset, m.offset));
      if (x.size != m.size || x.bit_size != m.bit_size)
        what.push_back(fmt::format("member {} resized from {} to {} bytes", m.name, x.size, m.size));
      if (x.type != m.type)
        what.push_back(fmt::format("member {} changed type from {} to {}", m.name, x.type, m.type));
    }
    for (const auto& m : ol.members)
      if (!nm.count(m.name)) what.push_back(fmt::format("member {} removed", m.name));
    // Members that only moved because others were added or removed before them: the
    // first one named, the rest counted.
    if (moved.size() > 3 && !what.empty()) {
      size_t n = moved.size();
      moved.resize(1);
      moved.push_back(fmt::format("{} more members after it moved", n - 1));
    }
    what.insert(what.end(), moved.begin(), moved.end());
    if (ol.size != nl.size && what.empty())
      what.push_back("trailing padding changed");
    if (what.empty()) continue;
    out.push_back(fmt::format("{} changed layout (size {} -> {}): {}", name, ol.size, nl.size,
                              fmt::join(what, "; ")));
  }
  return out;
}

}  // namespace nines::gen
