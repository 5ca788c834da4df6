#include "advisor/root.h"

#include <sys/stat.h>
#include <unistd.h>
#include <climits>

#include <vector>

#include "core/strings.h"

namespace nines::advisor {

Root::Root(std::string dir) : dir_(std::move(dir)) {
  if (dir_.empty()) dir_.push_back('/');
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

std::string Root::path(std::string_view abs) const {
  if (is_host()) return std::string(abs);
  // Walk the components; a symlink restarts the walk with its target (absolute targets
  // from the root, relative ones from the current folder). 40 links at most, as the kernel.
  std::vector<std::string> done;
  std::vector<std::string> todo;
  auto push_parts = [&todo](std::string_view p) {
    std::vector<std::string> parts;
    for (std::string_view c : split(p, '/'))
      if (!c.empty() && c != ".") parts.emplace_back(c);
    todo.insert(todo.begin(), parts.begin(), parts.end());
  };
  push_parts(abs);
  int links = 0;
  bool missing = false;
  while (!todo.empty()) {
    std::string c = todo.front();
    todo.erase(todo.begin());
    if (c == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    done.push_back(c);
    if (missing) continue;
    std::string here = dir_;
    for (const auto& d : done) here += "/" + d;
    struct stat st {};
    if (lstat(here.c_str(), &st) != 0) {
      missing = true;
      continue;
    }
    if (!S_ISLNK(st.st_mode) || ++links > 40) continue;
    char buf[PATH_MAX];
    ssize_t n = readlink(here.c_str(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    std::string_view target(buf, static_cast<size_t>(n));
    done.pop_back();
    if (!target.empty() && target.front() == '/') done.clear();
    push_parts(target);
  }
  std::string out = dir_;
  for (const auto& d : done) out += "/" + d;
  return out;
}

}  // namespace nines::advisor
