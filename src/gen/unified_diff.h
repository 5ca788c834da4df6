// Unified diffs as `patch -p1` reads them: git format-patch mails, Debian quilt patches
// and plain `diff -u` output. Only what the generator needs: which files and lines each
// hunk touches, and a rewrite that keeps unchanged code on its original line numbers.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace nines::gen {

struct Hunk {
  int old_start = 0, old_count = 0, new_start = 0, new_count = 0;
  std::string header;               // the "@@ ... @@ context" line
  std::vector<std::string> lines;   // each starting with ' ', '+', '-' or '\'
  // Lines of the original file the hunk changes (removed, or next to an insertion).
  int first_changed_old = 0, last_changed_old = 0;
};

struct FileDiff {
  std::string path;                 // after stripping one component (-p1); the new name
  std::vector<Hunk> hunks;
  std::string preamble;             // the "---"/"+++" lines and anything before them
};

struct UnifiedDiff {
  std::string name;                 // the file it was read from
  std::vector<FileDiff> files;
  std::string text() const;         // the diff written back
};

// Parses a diff; fails naming the file and line when a hunk is malformed or the diff
// touches no file.
Result<UnifiedDiff> parse_unified_diff(const std::string& text, const std::string& name);

// klp-build's fix-patch-lines: after each run of changed lines in a C source or header,
// inserts `#line N` so that the unchanged code below keeps its original line number.
// __LINE__ (assert, error macros) then changes only inside the changed lines, and a fix
// that only moves code down does not change every function below it.
UnifiedDiff with_line_directives(const UnifiedDiff& d);

bool is_c_source(const std::string& path);
bool is_c_header(const std::string& path);

}  // namespace nines::gen
