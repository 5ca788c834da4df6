#include "cli/usage.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace nines::cli {

size_t edit_distance(const std::string& a, const std::string& b) {
  // Optimal string alignment distance: Levenshtein plus adjacent transpositions.
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::optional<std::string> nearest(const std::string& word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_d = std::max<size_t>(1, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  if (best) return best;
  for (const auto& c : candidates)  // "stat" -> "status"
    if (word.size() >= 3 && c.rfind(word, 0) == 0) return c;
  return std::nullopt;
}

namespace {

bool visible(const CLI::App* a) { return !a->get_group().empty(); }

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> out;
  for (const CLI::App* s : app.get_subcommands([](const CLI::App* a) { return visible(a); }))
    out.push_back(s->get_name());
  return out;
}

// Options reachable at `app`: its own and, for fallthrough, its parents'.
const CLI::Option* find_option(const CLI::App& app, const std::string& name) {
  for (const CLI::App* a = &app; a; a = a->get_parent()) {
    for (const CLI::Option* o : a->get_options()) {
      if (o->get_positional()) continue;
      if (name.rfind("--", 0) == 0) {
        for (auto& l : o->get_lnames())
          if ("--" + l == name) return o;
      } else {
        for (auto& s : o->get_snames())
          if ("-" + s == name) return o;
      }
    }
    if (!a->get_fallthrough()) break;
  }
  return nullptr;
}

std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> out;
  for (const CLI::App* a = &app; a; a = a->get_parent()) {
    for (const CLI::Option* o : a->get_options())
      for (auto& l : o->get_lnames()) out.push_back("--" + l);
    if (!a->get_fallthrough()) break;
  }
  return out;
}

std::string where(const CLI::App& app) {
  std::string path;
  for (const CLI::App* a = &app; a->get_parent(); a = a->get_parent())
    path = path.empty() ? a->get_name() : a->get_name() + " " + path;
  return path.empty() ? "" : fmt::format(" of '{}'", path);
}

size_t positionals_of(const CLI::App& app) {
  size_t n = 0;
  for (const CLI::Option* o : app.get_options())
    if (o->get_positional()) n += o->get_expected_max() > 1 ? 1000 : 1;
  return n;
}

}  // namespace

std::optional<std::string> explain_usage_error(const CLI::App& root, const std::vector<std::string>& args) {
  const CLI::App* app = &root;
  size_t positionals_used = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& w = args[i];
    if (w == "--") break;
    if (w.size() > 1 && w[0] == '-') {
      std::string name = w.substr(0, w.find('='));
      if (name.size() > 2 && name[1] != '-') name = name.substr(0, 2);  // -vvv, -p1234
      const CLI::Option* o = find_option(*app, name);
      if (!o) {
        auto near = nearest(name, option_names(*app));
        return near ? fmt::format("unknown option '{}'{}; did you mean '{}'?", name, where(*app), *near)
                    : fmt::format("unknown option '{}'{} (see --help)", name, where(*app));
      }
      if (o->get_expected_max() != 0 && w.find('=') == std::string::npos && w.size() == name.size())
        ++i;  // its value
      continue;
    }
    auto names = command_names(*app);
    const CLI::App* next = nullptr;
    for (const CLI::App* s : app->get_subcommands([](const CLI::App*) { return true; }))
      if (s->get_name() == w) next = s;
    if (next) {
      app = next;
      positionals_used = 0;
      continue;
    }
    if (positionals_used < positionals_of(*app)) {
      ++positionals_used;
      continue;
    }
    if (!names.empty()) {
      auto near = nearest(w, names);
      return near ? fmt::format("unknown command '{}'{}; did you mean '{}'?", w, where(*app), *near)
                  : fmt::format("unknown command '{}'{} (commands: {})", w, where(*app),
                                fmt::join(names, ", "));
    }
    return fmt::format("unexpected argument '{}'{}", w, where(*app));
  }
  // Everything was known: a command that needs a subcommand did not get one.
  auto names = command_names(*app);
  if (app->get_require_subcommand_min() > 0 && !names.empty())
    return fmt::format("'{}' needs a command: {}", where(*app).empty() ? "nines" : app->get_name(),
                       fmt::join(names, ", "));
  return std::nullopt;
}

}  // namespace nines::cli
