#include "gen/source_lines.h"

#include <dwarf.h>

#include <algorithm>
#include <climits>
#include <map>

#include "gen/object_dwarf.h"

namespace nines::gen {

std::string source_name(const std::string& symbol) {
  size_t dot = symbol.find('.');
  return dot == std::string::npos || dot == 0 ? symbol : symbol.substr(0, dot);
}

static bool same_file(const std::string& decl_file, const std::string& diff_path) {
  if (decl_file == diff_path) return true;
  return decl_file.size() > diff_path.size() &&
         decl_file.compare(decl_file.size() - diff_path.size(), diff_path.size(), diff_path) == 0 &&
         decl_file[decl_file.size() - diff_path.size() - 1] == '/';
}

bool SourceLines::own_lines_touched(const std::string& symbol, const std::string& file, int first,
                                    int last) const {
  std::string name = source_name(symbol);
  for (const auto& f : functions)
    if (f.name == name && same_file(f.file, file) && f.first <= last && first <= f.last) return true;
  return false;
}

std::set<std::string> SourceLines::inlined_into(const std::string& symbol) const {
  std::string name = source_name(symbol);
  std::set<std::string> out;
  for (const auto& f : functions)
    if (f.name == name) out.insert(f.inlines.begin(), f.inlines.end());
  return out;
}

bool SourceLines::touches(const std::string& symbol, const std::string& file, int first,
                          int last) const {
  if (own_lines_touched(symbol, file, first, last)) return true;
  for (const auto& callee : inlined_into(symbol))
    if (own_lines_touched(callee, file, first, last)) return true;
  return false;
}

static void collect_inlines(Dwarf_Die* parent, std::set<std::string>& out, int depth) {
  if (depth > 64) return;
  Dwarf_Die d;
  if (dwarf_child(parent, &d) != 0) return;
  do {
    int tag = dwarf_tag(&d);
    if (tag == DW_TAG_inlined_subroutine) {
      std::string n = die_name(&d);
      if (!n.empty()) out.insert(n);
    }
    if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block)
      collect_inlines(&d, out, depth + 1);
  } while (dwarf_siblingof(&d, &d) == 0);
}

SourceLines read_source_lines(const std::string& object_path, const std::string& /*source*/) {
  SourceLines out;
  auto dw = ObjectDwarf::open(object_path);
  if (!dw) return out;
  std::map<std::pair<std::string, std::string>, FunctionLines> by_name;
  dw->for_each_cu([&](Dwarf_Die* cu) {
    Dwarf_Die d;
    if (dwarf_child(cu, &d) != 0) return;
    do {
      if (dwarf_tag(&d) != DW_TAG_subprogram || die_udata(&d, DW_AT_declaration)) continue;
      std::string name = die_name(&d);
      const char* file = dwarf_decl_file(&d);
      int line = 0;
      if (name.empty() || !file || dwarf_decl_line(&d, &line) != 0) continue;
      FunctionLines& f = by_name[{name, file}];
      f.name = name;
      f.file = file;
      f.first = line;
      collect_inlines(&d, f.inlines, 0);
    } while (dwarf_siblingof(&d, &d) == 0);
  });
  for (auto& [k, f] : by_name) out.functions.push_back(std::move(f));
  // Each function ends where the next one of its file begins.
  std::sort(out.functions.begin(), out.functions.end(), [](const auto& a, const auto& b) {
    return a.file != b.file ? a.file < b.file : a.first < b.first;
  });
  for (size_t i = 0; i < out.functions.size(); ++i) {
    auto& f = out.functions[i];
    f.last = INT_MAX;
    if (i + 1 < out.functions.size() && out.functions[i + 1].file == f.file)
      f.last = std::max(f.first, out.functions[i + 1].first - 1);
  }
  return out;
}

}  // namespace nines::gen
