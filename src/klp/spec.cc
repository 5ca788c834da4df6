#include "klp/spec.h"

#include <algorithm>
#include <regex>

#include "core/strings.h"

namespace nines::klp {
namespace {

// Blanks out comments, string and character literals, keeping newlines so line numbers
// stay right.
std::string strip_comments_and_strings(std::string_view s) {
  std::string out(s);
  enum { kCode, kLine, kBlock, kStr, kChr } st = kCode;
  for (size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    char n = i + 1 < out.size() ? out[i + 1] : '\0';
    switch (st) {
      case kCode:
        if (c == '/' && n == '/') {
          st = kLine;
          out[i] = ' ';
        } else if (c == '/' && n == '*') {
          st = kBlock;
          out[i] = ' ';
          out[++i] = ' ';
        } else if (c == '"')
          st = kStr;
        else if (c == '\'')
          st = kChr;
        break;
      case kLine:
        if (c == '\n')
          st = kCode;
        else
          out[i] = ' ';
        break;
      case kBlock:
        if (c == '*' && n == '/') {
          st = kCode;
          out[i] = ' ';
          out[++i] = ' ';
        } else if (c != '\n')
          out[i] = ' ';
        break;
      case kStr:
      case kChr:
        if (c == '\\' && n != '\0' && n != '\n') {
          out[i] = ' ';
          out[++i] = ' ';
        } else if ((st == kStr && c == '"') || (st == kChr && c == '\''))
          st = kCode;
        else if (c != '\n')
          out[i] = ' ';
        break;
    }
  }
  return out;
}

bool is_identifier(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// A function as the compiler may have renamed it: "foo", "foo.isra.0", "foo.constprop.1".
bool is_function_name(std::string_view s) {
  auto parts = split(s, '.');
  if (!is_identifier(parts[0])) return false;
  for (size_t i = 1; i < parts.size(); ++i)
    if (parts[i].empty() || !std::all_of(parts[i].begin(), parts[i].end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        }))
      return false;
  return true;
}

// Module names may contain dashes (kbuild turns them into underscores).
bool is_object_name(std::string_view s) {
  return !s.empty() && s.size() <= 55 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

}  // namespace

std::string module_name_of(std::string_view object) {
  std::string s(object);
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

std::vector<std::string> PatchSpec::objects() const {
  std::vector<std::string> out;
  auto add = [&](const std::string& o) {
    if (std::find(out.begin(), out.end(), o) == out.end()) out.push_back(o);
  };
  for (const auto& r : replacements)
    if (r.object == kVmlinux) add(r.object);
  for (const auto& r : replacements) add(r.object);
  for (const auto& c : callbacks) add(c.object);
  return out;
}

Status scan_patch_source(std::string_view text, const std::string& file, PatchSpec& spec) {
  const std::string code = strip_comments_and_strings(text);
  static const std::regex kMarker(
      R"(\bNINES_(REPLACE_IN|REPLACE|KSYM|PRE_PATCH_IN|POST_PATCH_IN|PRE_UNPATCH_IN|POST_UNPATCH_IN|PRE_PATCH|POST_PATCH|PRE_UNPATCH|POST_UNPATCH)\s*\(([^()]*)\))");
  for (auto it = std::sregex_iterator(code.begin(), code.end(), kMarker);
       it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    size_t line =
        1 + static_cast<size_t>(std::count(code.begin(), code.begin() + m.position(0), '\n'));
    // A marker inside a #define is the author's own wrapper, not a use.
    size_t bol = code.rfind('\n', static_cast<size_t>(m.position(0)));
    std::string_view line_text = trim(std::string_view(code).substr(
        bol == std::string::npos ? 0 : bol + 1,
        static_cast<size_t>(m.position(0)) - (bol == std::string::npos ? 0 : bol + 1)));
    if (starts_with(line_text, "#")) continue;

    const std::string kind = m[1].str();
    const std::string arg_text = m[2].str();
    std::vector<std::string> args;
    for (auto a : split(arg_text, ',')) args.emplace_back(trim(a));
    auto fail = [&](std::string_view why) {
      return make_error("{}:{}: NINES_{}({}): {}", file, line, kind, m[2].str(), why);
    };
    if (kind == "REPLACE" || kind == "REPLACE_IN") {
      size_t want = kind == "REPLACE" ? 2 : 3;
      if (args.size() != want) return fail(fmt::format("expects {} arguments", want));
      Replacement r;
      r.object = want == 2 ? std::string(kVmlinux) : module_name_of(args[0]);
      r.old_name = args[want - 2];
      r.new_name = args[want - 1];
      if (want == 3 && !is_object_name(args[0])) return fail("the object is not a module name");
      if (!is_function_name(r.old_name) || !is_identifier(r.new_name))
        return fail("old must be a function name (foo or foo.isra.0), new a plain C name");
      if (r.old_name == r.new_name)
        return fail("the replacement needs its own name (the kernel's function keeps the old one)");
      for (const auto& o : spec.replacements)
        if (o.object == r.object && o.old_name == r.old_name)
          return fail(fmt::format("{} is already replaced by {}", r.old_name, o.new_name));
      spec.replacements.push_back(std::move(r));
    } else if (kind == "KSYM") {
      if (args.size() != 3) return fail("expects 3 arguments (object, symbol, pos)");
      auto pos = parse_i64(args[2]);
      if (!is_object_name(args[0]) || !is_identifier(args[1]) || !pos || *pos < 1)
        return fail("expects an object name, a symbol and a position >= 1");
      spec.hints.push_back({module_name_of(args[0]), args[1], *pos});
    } else {
      bool in = kind.ends_with("_IN");
      if (args.size() != (in ? 2u : 1u))
        return fail(fmt::format("expects {} argument(s)", in ? 2 : 1));
      std::string base = in ? kind.substr(0, kind.size() - 3) : kind;
      std::transform(base.begin(), base.end(), base.begin(), ::tolower);
      Callback c{in ? module_name_of(args[0]) : std::string(kVmlinux), base, args.back()};
      if (!is_identifier(c.function)) return fail("the callback must be a function name");
      for (const auto& o : spec.callbacks)
        if (o.object == c.object && o.kind == c.kind)
          return fail(fmt::format("{} of {} is already {}", c.kind, c.object, o.function));
      spec.callbacks.push_back(std::move(c));
    }
  }
  return {};
}

}  // namespace nines::klp
