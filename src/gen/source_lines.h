// Which source lines each function of an object covers, and which functions gcc inlined
// into it, from the object's DWARF: how the generator tells "changed in the diff" from
// "inlines a changed function", and finds the hunks that produced no code.
//
// A function's lines run from its DW_AT_decl_line to the line before the next function
// declared in the same file. The objects are built from a diff rewritten with #line
// directives, so these are (nearly) the original file's line numbers, which is how the
// hunks count too.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace nines::gen {

struct FunctionLines {
  std::string name;       // the source name (no .isra/.constprop/.part/.cold suffix)
  std::string file;       // DW_AT_decl_file as compiled
  int first = 0, last = 0;
  std::set<std::string> inlines;   // functions inlined into this one, at any depth
};

struct SourceLines {
  std::vector<FunctionLines> functions;

  // `symbol` (an ELF name such as "foo.isra.0") declared in `file` (as the diff names it)
  // has a line in [first, last].
  bool own_lines_touched(const std::string& symbol, const std::string& file, int first, int last) const;
  // ... or a function inlined into it has.
  bool touches(const std::string& symbol, const std::string& file, int first, int last) const;
  std::set<std::string> inlined_into(const std::string& symbol) const;
};

// Reads the object's DWARF; an object without DWARF gives an empty map.
SourceLines read_source_lines(const std::string& object_path, const std::string& source);

// "foo.isra.0" -> "foo"
std::string source_name(const std::string& symbol);

}  // namespace nines::gen
