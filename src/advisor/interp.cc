#include "advisor/interp.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <set>

#include "core/strings.h"

namespace nines::advisor {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool all_digits_dots(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
  });
}

bool identifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// "a/./b/../c" -> "a/c", lexically: paths of another root cannot be realpath'ed from here.
std::string normalize(std::string_view path) {
  std::vector<std::string_view> parts;
  for (std::string_view p : split(path, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(p);
  }
  std::string out;
  for (std::string_view p : parts) {
    out += '/';
    out += p;
  }
  return out.empty() ? "/" : out;
}

std::string join(std::string_view dir, std::string_view rel) {
  if (!rel.empty() && rel.front() == '/') return normalize(rel);
  return normalize(std::string(dir) + "/" + std::string(rel));
}

std::string dirname_of(std::string_view path) {
  size_t s = path.rfind('/');
  if (s == std::string_view::npos) return ".";
  return s == 0 ? "/" : std::string(path.substr(0, s));
}

// Reads at most `max` bytes of a file. false when it cannot be opened.
bool read_prefix(const std::string& path, size_t max, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return false;
  // Sized from fstat for regular files (no zero-filled slack to write); /proc files say 0.
  struct stat st {};
  size_t want = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0
                    ? std::min(max, static_cast<size_t>(st.st_size) + 1)
                    : std::min<size_t>(max, 4096);
  out->resize(want);
  size_t used = 0;
  while (used < max) {
    if (used == out->size()) out->resize(std::min(max, used * 2));
    ssize_t n = ::read(fd, out->data() + used, out->size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  out->resize(used);
  return true;
}

std::vector<std::string> split_nul(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    size_t z = s.find('\0');
    out.emplace_back(s.substr(0, z));
    if (z == std::string_view::npos) break;
    s.remove_prefix(z + 1);
  }
  return out;
}

std::string read_link(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Short options of each interpreter: which take an argument (attached, or the next word
// when nothing is attached), which take only an attached one (the rest of the cluster),
// and which say the program is not a file.
struct OptionTable {
  std::string_view with_arg;       // -I dir, -Idir
  std::string_view attached_only;  // -l0, -i.bak: the rest of the word, maybe empty
  std::string_view code;           // -c / -e: code on the command line
  std::vector<std::string_view> long_with_arg;
};

const OptionTable& options_of(Language lang) {
  static const OptionTable python{"WXQ", "", "c", {"--check-hash-based-pycs"}};
  static const OptionTable perl{"I", "lixCDdMmVF0", "eE", {}};
  static const OptionTable ruby{"CEIrK", "x0FTWi", "e", {}};
  switch (lang) {
    case Language::kPython:
      return python;
    case Language::kPerl:
      return perl;
    case Language::kRuby:
      return ruby;
  }
  return python;
}

// The names of a `import a, b.c as d` list or a from-import list: "a", "b.c".
void add_names(std::string_view list, std::vector<std::string>* out) {
  for (std::string_view item : split(list, ',')) {
    item = trim(item);
    while (!item.empty() && (item.front() == '(')) item = trim(item.substr(1));
    while (!item.empty() && (item.back() == ')')) item = trim(item.substr(0, item.size() - 1));
    size_t sp = item.find_first_of(" \t");
    std::string_view name = item.substr(0, sp);
    if (name.empty() || name == "*") continue;
    bool ok = true;
    for (std::string_view part : split(name, '.')) ok = ok && identifier(part);
    if (ok) out->emplace_back(name);
  }
}

}  // namespace

const char* language_name(Language l) {
  switch (l) {
    case Language::kPython:
      return "python";
    case Language::kPerl:
      return "perl";
    case Language::kRuby:
      return "ruby";
  }
  return "python";
}

std::optional<Language> interpreter_language(std::string_view exe_path) {
  std::string name = basename_of(exe_path);
  std::string_view n(name);
  if (n == "python" || n == "python3" ||
      (starts_with(n, "python3.") && all_digits_dots(n.substr(8))))
    return Language::kPython;
  if (n == "perl" || (starts_with(n, "perl5") && all_digits_dots(n.substr(5))))
    return Language::kPerl;
  if (n == "ruby" || (starts_with(n, "ruby") && all_digits_dots(n.substr(4))))
    return Language::kRuby;
  return std::nullopt;
}

std::string python_version_of(std::string_view exe_path) {
  std::string name = basename_of(exe_path);
  if (starts_with(name, "python3.") && all_digits_dots(std::string_view(name).substr(8)))
    return name.substr(6);
  return {};
}

std::optional<Invocation> parse_invocation(Language lang, const std::vector<std::string>& argv) {
  const OptionTable& t = options_of(lang);
  Invocation inv;
  size_t i = 1;
  while (i < argv.size()) {
    std::string_view a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "-") return std::nullopt;  // the program comes from standard input
    if (a.size() < 2 || a.front() != '-') break;
    if (starts_with(a, "--")) {
      bool takes =
          std::find(t.long_with_arg.begin(), t.long_with_arg.end(), a) != t.long_with_arg.end();
      i += takes ? 2 : 1;
      continue;
    }
    ++i;
    for (size_t j = 1; j < a.size(); ++j) {
      char c = a[j];
      std::string_view rest = a.substr(j + 1);
      if (t.code.find(c) != std::string_view::npos) return std::nullopt;
      if (lang == Language::kPython && c == 'm') {
        if (!rest.empty())
          inv.module = std::string(rest);
        else if (i < argv.size())
          inv.module = argv[i];
        return inv.module.empty() ? std::nullopt : std::optional<Invocation>(inv);
      }
      if (t.with_arg.find(c) != std::string_view::npos) {
        std::string arg(rest);
        if (rest.empty() && i < argv.size()) arg = argv[i++];
        if (c == 'I') inv.include_dirs.push_back(arg);
        if (lang == Language::kRuby && c == 'C') inv.chdir = arg;
        break;
      }
      if (t.attached_only.find(c) != std::string_view::npos) break;
    }
  }
  if (i >= argv.size() || argv[i].empty()) return std::nullopt;
  inv.script = argv[i];
  return inv;
}

std::vector<PyImport> python_imports(std::string_view source) {
  std::vector<PyImport> out;
  size_t pos = 0;
  auto next_line = [&source, &pos]() {
    size_t nl = source.find('\n', pos);
    std::string_view line = source.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? source.size() : nl + 1;
    return line;
  };
  while (pos < source.size()) {
    // Every statement contains the word "import": jump to the start of the next line that
    // has it (memmem is far quicker than looking at every line).
    const void* hit = memmem(source.data() + pos, source.size() - pos, "import", 6);
    if (!hit) break;
    size_t at = static_cast<size_t>(static_cast<const char*>(hit) - source.data());
    size_t nl = source.rfind('\n', at);
    if (nl != std::string_view::npos && nl + 1 > pos) pos = nl + 1;
    std::string_view line = next_line();
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string_view::npos) continue;
    if (line[b] != 'i' && line[b] != 'f') continue;  // most lines: no copy
    // One logical line: backslash continuations, and an open parenthesis of a from-import.
    std::string logical(line);
    auto strip_comment = [](std::string& s) {
      size_t h = s.find('#');
      if (h != std::string::npos) s.resize(h);
      while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
    };
    strip_comment(logical);
    std::string_view head = trim(logical);
    if (!starts_with(head, "import") && !starts_with(head, "from")) continue;
    for (int guard = 0; guard < 64 && pos < source.size(); ++guard) {
      bool cont = !logical.empty() && logical.back() == '\\';
      bool open = std::count(logical.begin(), logical.end(), '(') >
                  std::count(logical.begin(), logical.end(), ')');
      if (!cont && !open) break;
      if (cont) logical.pop_back();
      std::string next(next_line());
      strip_comment(next);
      logical += ' ';
      logical += next;
    }
    for (std::string_view stmt : split(logical, ';')) {
      stmt = trim(stmt);
      if (starts_with(stmt, "import") && stmt.size() > 6 && (stmt[6] == ' ' || stmt[6] == '\t')) {
        std::vector<std::string> names;
        add_names(stmt.substr(7), &names);
        for (std::string& n : names) out.push_back(PyImport{std::move(n), 0, {}});
      } else if (starts_with(stmt, "from") && stmt.size() > 4 &&
                 (stmt[4] == ' ' || stmt[4] == '\t')) {
        std::string_view rest = trim(stmt.substr(5));
        size_t sp = rest.find_first_of(" \t");
        if (sp == std::string_view::npos) continue;
        std::string_view mod = rest.substr(0, sp);
        std::string_view tail = trim(rest.substr(sp));
        if (!starts_with(tail, "import")) continue;
        PyImport imp;
        while (!mod.empty() && mod.front() == '.') {
          ++imp.level;
          mod.remove_prefix(1);
        }
        bool ok = true;
        if (!mod.empty())
          for (std::string_view part : split(mod, '.')) ok = ok && identifier(part);
        if (!ok || (mod.empty() && imp.level == 0)) continue;
        imp.module = std::string(mod);
        add_names(tail.substr(6), &imp.names);
        out.push_back(std::move(imp));
      }
    }
  }
  return out;
}

std::vector<std::string> python_search_path(const PythonPathInput& in) {
  std::vector<std::string> path;
  auto add = [&path](const std::string& p) {
    if (!p.empty() && p.front() == '/' && std::find(path.begin(), path.end(), p) == path.end())
      path.push_back(p);
  };
  add(in.first);
  for (std::string_view p : split(in.pythonpath, ':'))
    if (!p.empty()) add(in.cwd.empty() ? std::string(p) : join(in.cwd, p));
  // The installation prefix: /usr/bin/python3.11 -> /usr.
  std::string prefix = dirname_of(dirname_of(in.exe));
  for (const std::string& v : in.versions) {
    std::string lib = "python" + v;
    add(join(prefix, "lib/" + lib));
    add("/usr/local/lib/" + lib + "/dist-packages");  // Debian: pip as root
    add(join(prefix, "lib/python3/dist-packages"));   // Debian: packages
    add(join(prefix, "lib/" + lib + "/site-packages"));
    if (!in.venv.empty()) add(join(in.venv, "lib/" + lib + "/site-packages"));
    if (!in.home.empty()) add(join(in.home, ".local/lib/" + lib + "/site-packages"));
  }
  return path;
}

SourceChecker::SourceChecker(std::string proc, SourceLimits limits)
    : proc_(std::move(proc)), limits_(limits) {
  // Start times in /proc/PID/stat are clock ticks of CLOCK_BOOTTIME (in the reader's time
  // namespace); file times are CLOCK_REALTIME. Their difference now is the realtime of boot
  // (exact to the microsecond, unlike /proc/stat's btime in whole seconds).
  boot_realtime_ns_ = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME);
  long hz = sysconf(_SC_CLK_TCK);
  if (hz > 0) tick_ns_ = 1'000'000'000 / hz;
}

const SourceChecker::Stat& SourceChecker::stat_of(const View& v, const std::string& path) {
  Key k = key(v, path);
  auto it = stats_.find(k);
  if (it != stats_.end()) return it->second;
  Stat s;
  struct stat st {};
  if (::stat((v.prefix + path).c_str(), &st) == 0) {
    s.exists = true;
    s.is_dir = S_ISDIR(st.st_mode);
    s.is_reg = S_ISREG(st.st_mode);
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
  } else if (!v.prefix.empty() && ::access(v.prefix.c_str(), F_OK) != 0) {
    // The process whose root this is exited: its view says nothing, and must not be
    // remembered as "no such file" for the other processes of the view.
    static const Stat kUnknown;
    return kUnknown;
  }
  return stats_.emplace(std::move(k), s).first->second;
}

const std::vector<PyImport>& SourceChecker::imports_of(const View& v, const std::string& path) {
  Key k = key(v, path);
  auto it = imports_.find(k);
  if (it != imports_.end()) return it->second;
  std::vector<PyImport> imports;
  if (read_prefix(v.prefix + path, limits_.max_file_bytes, &text_)) imports = python_imports(text_);
  return imports_.emplace(std::move(k), std::move(imports)).first->second;
}

std::optional<std::string> SourceChecker::resolve(const View& v,
                                                  const std::vector<std::string>& dirs,
                                                  const std::vector<std::string>& parts,
                                                  std::vector<std::string>* out) {
  if (parts.empty()) return std::nullopt;
  for (const std::string& d : dirs) {
    std::string cur = d;
    bool found = false, package = true;
    for (size_t i = 0; i < parts.size(); ++i) {
      std::string pkg = cur + "/" + parts[i];
      std::string init = pkg + "/__init__.py";
      if (stat_of(v, init).is_reg) {
        out->push_back(init);
        cur = pkg;
        found = true;
        continue;
      }
      std::string py = pkg + ".py";
      if (stat_of(v, py).is_reg) {
        out->push_back(py);
        found = true;
        package = false;
        break;  // a plain module has no submodules
      }
      if (stat_of(v, pkg).is_dir) {  // a namespace package
        cur = pkg;
        found = true;
        continue;
      }
      package = false;
      break;
    }
    // The first folder that has the top-level name wins.
    if (found) return package ? cur : std::string();
  }
  return std::nullopt;
}

const std::vector<std::string>& SourceChecker::deps_of(const View& view, size_t path_id,
                                                       const std::vector<std::string>& path,
                                                       const std::vector<std::string>& stdlib_dirs,
                                                       const std::string& file) {
  Key k = key(view, fmt::format("{}:{}", path_id, file));
  auto it = deps_.find(k);
  if (it != deps_.end()) return it->second;
  std::vector<std::string> files;
  // The interpreter's standard library imports only itself, and is upgraded only with the
  // interpreter's executable (Debian: libpython3.X-stdlib depends on the very version of
  // libpython3.X-minimal, which ships the executable), which the mapping scan already
  // watches: its files are checked when the program imports them, but not followed.
  bool in_stdlib = std::any_of(stdlib_dirs.begin(), stdlib_dirs.end(), [&](const std::string& d) {
    return file.size() > d.size() && file.compare(0, d.size(), d) == 0 && file[d.size()] == '/' &&
           file.find("-packages/", d.size()) == std::string::npos;
  });
  static const std::vector<PyImport> kNone;
  for (const PyImport& imp : in_stdlib ? kNone : imports_of(view, file)) {
    std::vector<std::string> parts;
    if (!imp.module.empty())
      for (std::string_view p : split(imp.module, '.')) parts.emplace_back(p);
    const std::vector<std::string>* dirs = &path;
    std::vector<std::string> relative;
    if (imp.level > 0) {
      std::string d = dirname_of(file);
      for (int up = 1; up < imp.level; ++up) d = dirname_of(d);
      relative = {d};
      dirs = &relative;
    }
    // `from . import b`: the package is the folder itself.
    std::optional<std::string> package = parts.empty() ? std::optional<std::string>(dirs->front())
                                                       : resolve(view, *dirs, parts, &files);
    // `from a import b`: b may be the submodule a.b, when a is a package.
    if (package && !package->empty())
      for (const std::string& n : imp.names) resolve(view, {*package}, {n}, &files);
  }
  return deps_.emplace(std::move(k), std::move(files)).first->second;
}

std::vector<StaleObject> SourceChecker::check(pid_t pid, Language lang, const std::string& exe,
                                              const View& view, std::string* warning) {
  std::vector<StaleObject> stale;
  std::string base = fmt::format("{}/{}", proc_, pid);
  std::string buf;

  // When it started, in CLOCK_REALTIME: field 22 of stat, after the ")" of the comm.
  if (!read_prefix(base + "/stat", 4096, &buf)) return stale;
  std::optional<uint64_t> ticks = stat_start_ticks(buf);
  if (!ticks) return stale;
  // The start is known to a tick: it lies in [floor, floor + tick). A file changed before
  // the start has a time below floor + tick (file times come from a coarse clock, which
  // only lags), so only a time past floor + tick is surely after the start.
  int64_t after = boot_realtime_ns_ + static_cast<int64_t>(*ticks) * tick_ns_ + tick_ns_;

  if (!read_prefix(base + "/cmdline", 1u << 20, &buf)) return stale;
  std::vector<std::string> argv = split_nul(buf);
  while (!argv.empty() && argv.back().empty()) argv.pop_back();
  // A program that rewrote its command line (setproctitle) says nothing about its source.
  if (argv.empty() || interpreter_language(argv[0]) != lang) return stale;
  std::optional<Invocation> inv = parse_invocation(lang, argv);
  if (!inv) return stale;
  std::string cwd = read_link(base + "/cwd");
  if (cwd.empty() || cwd.front() != '/') return stale;  // exited, or unreachable
  if (!inv->chdir.empty()) cwd = join(cwd, inv->chdir);

  size_t looked = 0;
  auto verdict = [&](const std::string& path) {
    ++looked;
    ++files_;
    const Stat& s = stat_of(view, path);
    if (!s.exists || s.ctime_ns <= after) return;
    StaleObject o;
    o.path = path;
    o.kind = StaleKind::kReplaced;
    o.interpreter = language_name(lang);
    o.mapped_dev = s.dev;
    o.mapped_ino = s.ino;
    stale.push_back(std::move(o));
  };

  // A working folder that was removed says nothing about where a relative script was.
  bool cwd_gone = ends_with(cwd, " (deleted)");
  if (cwd_gone && (inv->script.empty() || inv->script.front() != '/')) return stale;
  std::string script;
  if (!inv->script.empty()) {
    script = join(cwd, inv->script);
    // `python3 /dev/stdin`, `perl <(...)` (/dev/fd/63): a stream, not a source file; the
    // path would name the scanner's own descriptors.
    if (starts_with(script, "/dev/") || starts_with(script, "/proc/")) return stale;
    const Stat& main = stat_of(view, script);
    if (main.exists && !main.is_reg) return stale;
    if (!main.exists) {
      if (::access(base.c_str(), F_OK) != 0) return stale;  // the process exited
      // The main program is gone (its package was removed, or it was moved away).
      StaleObject o;
      o.path = script;
      o.kind = StaleKind::kDeleted;
      o.interpreter = language_name(lang);
      stale.push_back(std::move(o));
      return stale;
    }
    verdict(script);
  }
  if (lang != Language::kPython) return stale;  // Perl and Ruby: the main script only

  // Python: the module search path, then the imports, breadth first.
  PythonPathInput in;
  in.exe = exe;
  in.first = script.empty() ? cwd : dirname_of(script);
  in.cwd = cwd;
  if (read_prefix(base + "/environ", 1u << 20, &buf)) {
    for (const std::string& e : split_nul(buf)) {
      if (starts_with(e, "PYTHONPATH=")) in.pythonpath = e.substr(11);
      if (starts_with(e, "HOME=")) in.home = e.substr(5);
    }
  }
  // A virtual environment: argv[0] is VENV/bin/python, next to VENV/pyvenv.cfg.
  std::string argv0 = argv[0].find('/') != std::string::npos ? join(cwd, argv[0]) : "";
  if (!argv0.empty()) {
    std::string venv = dirname_of(dirname_of(argv0));
    if (stat_of(view, venv + "/pyvenv.cfg").is_reg) in.venv = venv;
  }
  std::string version = python_version_of(exe);
  if (!version.empty()) {
    in.versions.push_back(version);
  } else {
    // "python3" with no version in its name: every lib/python3.N of its prefix.
    std::string lib = dirname_of(dirname_of(exe)) + "/lib";
    if (DIR* d = ::opendir((view.prefix + lib).c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (starts_with(n, "python3.") && all_digits_dots(n.substr(8)))
          in.versions.emplace_back(n.substr(6));
      }
      ::closedir(d);
      std::sort(in.versions.begin(), in.versions.end());
    }
  }
  std::vector<std::string> path = python_search_path(in);
  // Processes with the same search path share the resolved imports of each file.
  size_t path_id = path_ids_.emplace(path, path_ids_.size()).first->second;
  std::vector<std::string> stdlib_dirs;
  for (const std::string& v : in.versions)
    stdlib_dirs.push_back(join(dirname_of(dirname_of(exe)), "lib/python" + v));

  std::set<std::string> seen;
  struct Item {
    std::string path;
    int depth;
  };
  std::vector<Item> queue;
  auto enqueue = [&](const std::vector<std::string>& files, int depth) {
    for (const std::string& f : files)
      if (seen.insert(f).second) queue.push_back({f, depth});
  };
  if (!script.empty()) {
    seen.insert(script);
    queue.push_back({script, 0});
  } else {
    std::vector<std::string> files, parts;
    for (std::string_view p : split(inv->module, '.')) parts.emplace_back(p);
    resolve(view, path, parts, &files);
    // `python -m PACKAGE` runs PACKAGE/__main__.py.
    if (!files.empty() && ends_with(files.back(), "/__init__.py")) {
      std::string main = dirname_of(files.back()) + "/__main__.py";
      if (stat_of(view, main).is_reg) files.push_back(main);
    }
    enqueue(files, 0);
  }

  bool cut = false;
  for (size_t qi = 0; qi < queue.size(); ++qi) {
    if (looked >= limits_.max_files) {
      cut = true;
      break;
    }
    Item item = queue[qi];
    if (item.path != script) verdict(item.path);
    if (item.depth >= limits_.max_depth) {
      cut = true;
      continue;
    }
    enqueue(deps_of(view, path_id, path, stdlib_dirs, item.path), item.depth + 1);
  }
  if (cut && warning)
    *warning = fmt::format("pid {}: {} sources: stopped after {} files (limit {}, depth {})", pid,
                           language_name(lang), looked, limits_.max_files, limits_.max_depth);
  return stale;
}

}  // namespace nines::advisor
