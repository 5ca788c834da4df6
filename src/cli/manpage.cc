#include "cli/manpage.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "core/fd.h"

namespace nines::cli {

namespace {

// roff: a backslash is \e, a hyphen in option names is \- (a real minus, so it can be
// searched and copied), and a line may not start with a control character.
std::string escape(const std::string& s, bool minus = false) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\e";
    else if (c == '-' && minus) out += "\\-";
    else out += c;
  }
  std::string fixed;
  size_t start = 0;
  while (start <= out.size()) {
    size_t nl = out.find('\n', start);
    std::string line = out.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty() && (line[0] == '.' || line[0] == '\'')) fixed += "\\&";
    fixed += line;
    if (nl == std::string::npos) break;
    fixed += '\n';
    start = nl + 1;
  }
  return fixed;
}

bool visible(const CLI::App* sub) { return !sub->get_group().empty(); }

// "nines kernel apply": the names from the program down to `cmd`.
std::string full_name(const CLI::App& cmd, const std::string& program) {
  std::vector<std::string> names;
  for (const CLI::App* a = &cmd; a->get_parent(); a = a->get_parent())
    names.insert(names.begin(), a->get_name());
  std::string out = program;
  for (auto& n : names) out += " " + n;
  return out;
}

std::string path_of(const CLI::App& cmd) {
  std::string out;
  for (const CLI::App* a = &cmd; a->get_parent(); a = a->get_parent())
    out = out.empty() ? a->get_name() : a->get_name() + " " + out;
  return out;
}

std::vector<const CLI::Option*> options_of(const CLI::App& cmd) {
  return cmd.get_options([](const CLI::Option* o) { return !o->get_group().empty(); });
}

std::string option_names(const CLI::Option* o) {
  std::vector<std::string> names;
  for (auto& s : o->get_snames()) names.push_back("-" + s);
  for (auto& l : o->get_lnames()) names.push_back("--" + l);
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string value_name(const CLI::Option* o) {
  if (o->get_expected_max() == 0) return "";  // a flag
  std::string t = o->get_type_name();
  if (t.empty()) t = "VALUE";
  // CLI11 writes validators into the type name: "TEXT:{text,json}" keeps the type,
  // "INT:DURATION" (cli/options.h) names what the value means.
  if (auto colon = t.find(':'); colon != std::string::npos) {
    std::string after = t.substr(colon + 1);
    bool word = !after.empty() && std::all_of(after.begin(), after.end(), [](char c) {
      return std::isupper(static_cast<unsigned char>(c)) != 0;
    });
    t = word ? after : t.substr(0, colon);
  }
  return t;
}

std::string synopsis(const CLI::App& cmd, const std::string& program) {
  std::string out = fmt::format(".B {}\n", escape(full_name(cmd, program)));
  for (const CLI::Option* o : options_of(cmd)) {
    if (o->get_positional()) continue;
    std::string name = o->get_lnames().empty() ? "-" + o->get_snames().front()
                                               : "--" + o->get_lnames().front();
    std::string v = value_name(o);
    std::string item = v.empty() ? fmt::format("\\fB{}\\fR", escape(name, true))
                                 : fmt::format("\\fB{}\\fR \\fI{}\\fR", escape(name, true), escape(v));
    out += o->get_required() ? item + "\n" : "[" + item + "]\n";
  }
  for (const CLI::Option* o : options_of(cmd)) {
    if (!o->get_positional()) continue;
    std::string item = fmt::format("\\fI{}\\fR", escape(o->get_name()));
    if (o->get_expected_max() > 1) item += "...";
    out += o->get_required() ? item + "\n" : "[" + item + "]\n";
  }
  auto subs = cmd.get_subcommands([](const CLI::App* a) { return visible(a); });
  if (!subs.empty()) out += "\\fICOMMAND\\fR ...\n";
  return out;
}

std::string options_section(const CLI::App& cmd) {
  std::string out;
  for (const CLI::Option* o : options_of(cmd)) {
    out += ".TP\n";
    if (o->get_positional()) {
      out += fmt::format("\\fI{}\\fR\n", escape(o->get_name()));
    } else {
      std::string v = value_name(o);
      out += fmt::format("\\fB{}\\fR{}\n", escape(option_names(o), true),
                         v.empty() ? "" : fmt::format(" \\fI{}\\fR", escape(v)));
    }
    std::string text = o->get_description();
    if (!o->get_default_str().empty())
      text += fmt::format(" (default: {})", o->get_default_str());
    if (o->get_required()) text += " (required)";
    out += escape(text) + "\n";
  }
  return out;
}

// Nested subcommands (admin token create) are sections of the page of the top-level
// command: each with its synopsis and options.
std::string subcommands_section(const CLI::App& cmd, const std::string& program) {
  std::string out;
  for (const CLI::App* sub : cmd.get_subcommands([](const CLI::App* a) { return visible(a); })) {
    out += fmt::format(".SS {}\n", escape(full_name(*sub, program)));
    out += escape(sub->get_description()) + "\n.PP\n";
    out += synopsis(*sub, program);
    out += options_section(*sub);
    out += subcommands_section(*sub, program);
  }
  return out;
}

std::string page_name(const CLI::App& cmd, const std::string& program) {
  std::string p = path_of(cmd);
  for (char& c : p)
    if (c == ' ') c = '-';
  return p.empty() ? program : program + "-" + p;
}

}  // namespace

std::string render_manpage(const CLI::App& cmd, const std::string& program,
                           const std::string& version, const ManExtra& extra) {
  std::string name = page_name(cmd, program);
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string out = fmt::format(".TH {} 1 \"\" \"{} {}\" \"nines manual\"\n", escape(upper, true),
                                program, version);
  out += ".SH NAME\n";
  std::string summary = cmd.get_description();
  if (auto nl = summary.find('\n'); nl != std::string::npos) summary.resize(nl);
  out += fmt::format("{} \\- {}\n", escape(name, true), escape(summary));
  out += ".SH SYNOPSIS\n" + synopsis(cmd, program);
  out += ".SH DESCRIPTION\n";
  out += escape(extra.description.empty() ? cmd.get_description() : extra.description) + "\n";
  if (!options_of(cmd).empty()) out += ".SH OPTIONS\n" + options_section(cmd);
  bool top = cmd.get_parent() == nullptr;
  auto subs = cmd.get_subcommands([](const CLI::App* a) { return visible(a); });
  if (top && !subs.empty()) {
    out += ".SH COMMANDS\n";
    for (const CLI::App* sub : subs)
      out += fmt::format(".TP\n\\fB{}\\fR(1)\n{}\n", escape(page_name(*sub, program), true),
                         escape(sub->get_description()));
  } else if (!top) {
    std::string subs = subcommands_section(cmd, program);
    if (!subs.empty()) out += ".SH COMMANDS\n" + subs;
  }
  if (!extra.exit_status.empty()) {
    out += ".SH EXIT STATUS\n";
    size_t start = 0;
    while (start < extra.exit_status.size()) {
      size_t nl = extra.exit_status.find('\n', start);
      std::string line = extra.exit_status.substr(start, nl - start);
      size_t tab = line.find('\t');
      if (tab != std::string::npos)
        out += fmt::format(".TP\n\\fB{}\\fR\n{}\n", escape(line.substr(0, tab)),
                           escape(line.substr(tab + 1)));
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
  out += ".SH SEE ALSO\n";
  if (top) {
    out += "/usr/share/doc/nines/README.md\n";
  } else {
    out += fmt::format("\\fB{}\\fR(1)\n", program);
  }
  return out;
}

Result<int> write_manpages(const CLI::App& root, const std::string& program,
                           const std::string& version, const std::string& dir,
                           const std::map<std::string, ManExtra>& extras) {
  auto extra_of = [&](const CLI::App& cmd) {
    auto it = extras.find(path_of(cmd));
    return it == extras.end() ? ManExtra{} : it->second;
  };
  int pages = 0;
  auto write = [&](const CLI::App& cmd) -> Status {
    std::string path = fmt::format("{}/{}.1", dir, page_name(cmd, program));
    NINES_CHECK(write_file_atomic(path, render_manpage(cmd, program, version, extra_of(cmd))));
    ++pages;
    return {};
  };
  NINES_CHECK(write(root));
  for (const CLI::App* sub : root.get_subcommands([](const CLI::App* a) { return visible(a); }))
    NINES_CHECK(write(*sub));
  return pages;
}

}  // namespace nines::cli
