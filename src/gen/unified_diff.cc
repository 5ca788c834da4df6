#include "gen/unified_diff.h"

#include <cstdio>
#include <sstream>

#include "core/strings.h"

namespace nines::gen {

static bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_c_source(const std::string& p) {
  return ends_with(p, ".c") || ends_with(p, ".cc") || ends_with(p, ".cpp") || ends_with(p, ".cxx");
}
bool is_c_header(const std::string& p) {
  return ends_with(p, ".h") || ends_with(p, ".hh") || ends_with(p, ".hpp");
}

// "a/lib/x.c\t2024-01-01" -> "lib/x.c"
static std::string strip_path(std::string_view s) {
  size_t tab = s.find('\t');
  if (tab != std::string_view::npos) s = s.substr(0, tab);
  s = trim(s);
  if (s == "/dev/null") return "";
  size_t slash = s.find('/');
  return std::string(slash == std::string_view::npos ? s : s.substr(slash + 1));
}

static bool parse_range(std::string_view s, int& start, int& count) {
  size_t comma = s.find(',');
  auto a = parse_u64(s.substr(0, comma));
  if (!a) return false;
  start = static_cast<int>(*a);
  count = 1;
  if (comma != std::string_view::npos) {
    auto b = parse_u64(s.substr(comma + 1));
    if (!b) return false;
    count = static_cast<int>(*b);
  }
  return true;
}

Result<UnifiedDiff> parse_unified_diff(const std::string& text, const std::string& name) {
  UnifiedDiff d;
  d.name = name;
  std::vector<std::string> lines;
  {
    std::istringstream in(text);
    std::string l;
    while (std::getline(in, l)) lines.push_back(l);
  }
  std::string pending;
  size_t i = 0;
  while (i < lines.size()) {
    const std::string& l = lines[i];
    if (starts_with(l, "--- ") && i + 1 < lines.size() && starts_with(lines[i + 1], "+++ ")) {
      FileDiff f;
      std::string oldp = strip_path(std::string_view(l).substr(4));
      std::string newp = strip_path(std::string_view(lines[i + 1]).substr(4));
      f.path = newp.empty() ? oldp : newp;
      f.preamble = pending + l + "\n" + lines[i + 1] + "\n";
      pending.clear();
      i += 2;
      while (i < lines.size() && starts_with(lines[i], "@@ ")) {
        Hunk h;
        h.header = lines[i];
        // "@@ -a,b +c,d @@ ..."
        std::string_view hv = h.header;
        size_t minus = hv.find('-'), plus = hv.find(" +"), end = hv.find(" @@", 2);
        if (minus == std::string_view::npos || plus == std::string_view::npos || end == std::string_view::npos ||
            !parse_range(hv.substr(minus + 1, plus - minus - 1), h.old_start, h.old_count) ||
            !parse_range(hv.substr(plus + 2, end - plus - 2), h.new_start, h.new_count))
          return make_error("{}:{}: malformed hunk header '{}'", name, i + 1, h.header);
        ++i;
        int old_left = h.old_count, new_left = h.new_count, old_line = h.old_start;
        while (i < lines.size() && (old_left > 0 || new_left > 0 ||
                                    (!lines[i].empty() && lines[i][0] == '\\'))) {
          std::string hl = lines[i].empty() ? std::string(" ") : lines[i];
          char c = hl[0];
          if (c == ' ') { --old_left; --new_left; ++old_line; }
          else if (c == '-') {
            if (!h.first_changed_old) h.first_changed_old = old_line;
            h.last_changed_old = old_line;
            --old_left; ++old_line;
          } else if (c == '+') {
            if (!h.first_changed_old) h.first_changed_old = old_line;
            h.last_changed_old = std::max(h.last_changed_old, old_line);
            --new_left;
          } else if (c != '\\') {
            return make_error("{}:{}: unexpected line in hunk: '{}'", name, i + 1, hl);
          }
          h.lines.push_back(hl);
          ++i;
        }
        if (old_left != 0 || new_left != 0)
          return make_error("{}: hunk '{}' of {} is truncated", name, h.header, f.path);
        f.hunks.push_back(std::move(h));
      }
      d.files.push_back(std::move(f));
      continue;
    }
    pending += l + "\n";
    ++i;
  }
  if (d.files.empty()) return make_error("{}: not a unified diff (no ---/+++ file header)", name);
  return d;
}

std::string UnifiedDiff::text() const {
  std::string out;
  for (const auto& f : files) {
    out += f.preamble;
    for (const auto& h : f.hunks) {
      out += h.header + "\n";
      for (const auto& l : h.lines) out += l + "\n";
    }
  }
  return out;
}

UnifiedDiff with_line_directives(const UnifiedDiff& d) {
  UnifiedDiff out = d;
  for (auto& f : out.files) {
    if (!is_c_source(f.path) && !is_c_header(f.path)) continue;
    int shift = 0;  // lines added by earlier directives in this file
    for (auto& h : f.hunks) {
      std::vector<std::string> lines;
      int old_line = h.old_start, new_line = h.new_start + shift;
      int added = 0;
      bool in_run = false;
      int run_delta = 0;
      std::string last_line;
      for (const auto& l : h.lines) {
        char c = l[0];
        if (c == '+' || c == '-') {
          in_run = true;
          run_delta += c == '+' ? 1 : -1;
        } else if (c == ' ' && in_run) {
          in_run = false;
          // Not after a line continued with '\' (inside a macro): a directive cannot go there.
          bool continued = !last_line.empty() && last_line.back() == '\\';
          if (run_delta != 0 && !continued) {
            lines.push_back(fmt::format("+#line {}", old_line));
            ++added;
          }
          run_delta = 0;
        }
        if (c == ' ') { ++old_line; ++new_line; }
        else if (c == '-') ++old_line;
        else if (c == '+') ++new_line;
        if (c == ' ' || c == '+') last_line = l.substr(1);
        lines.push_back(l);
      }
      h.lines = std::move(lines);
      h.new_start += shift;
      h.new_count += added;
      shift += added;
      // Rewrite the header with the new counts, keeping its trailing context text.
      size_t end = h.header.find(" @@", 2);
      std::string tail = end == std::string::npos ? "" : h.header.substr(end + 3);
      h.header = fmt::format("@@ -{},{} +{},{} @@{}", h.old_start, h.old_count, h.new_start,
                             h.new_count, tail);
    }
  }
  return out;
}

}  // namespace nines::gen
