// Interpreted programs that run old code: needrestart's "interpreter" check, done without
// running anything.
//
// A Python, Perl or Ruby process keeps the code it compiled when it started; `apt upgrade`
// replacing a .py module changes no mapping, so the mapping scan (scan.h) cannot see it.
// Here the program's source files are found from /proc/PID/cmdline (the main script, or
// `python -m MODULE`) and, for Python, from its import statements, followed recursively
// through a module search path derived from the interpreter's path and version. A source
// whose status-change time (ctime: every write, rename and chmod sets it; dpkg cannot set
// it back as it does mtime) is later than the process's start, or a main script that is
// gone, means the process runs old code.
//
// Everything is read through the process's own root (/proc/PID/root) unless it shares the
// scanner's view; nothing is executed, attached or signalled. Limits: see docs/ADVISOR.md.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "advisor/scan.h"

namespace nines::advisor {

enum class Language { kPython, kPerl, kRuby };
const char* language_name(Language l);  // "python" | "perl" | "ruby"

// The language of an interpreter from its executable's path, by the basename: python,
// python3, python3.11 (not python2*); perl, perl5.36.0; ruby, ruby3.1. nullopt otherwise.
std::optional<Language> interpreter_language(std::string_view exe_path);

// What the interpreter was asked to run, from its argv (argv[0] is the interpreter).
struct Invocation {
  std::string script;  // the main source file as given (may be relative to the cwd)
  std::string module;  // python -m MODULE
  std::string chdir;   // ruby -C DIR: the script is relative to DIR
  std::vector<std::string> include_dirs;  // perl -I, ruby -I (kept for the report only)
};
// nullopt when the program is not a file: -c / -e code, standard input, or no argument.
std::optional<Invocation> parse_invocation(Language lang, const std::vector<std::string>& argv);

// One Python import statement: `import a.b` -> {"a.b", 0, {}}; `from ..x import y, z` ->
// {"x", 2, {"y", "z"}}; `from . import y` -> {"", 1, {"y"}}.
struct PyImport {
  std::string module;
  int level = 0;                   // leading dots of a relative import
  std::vector<std::string> names;  // from-import names: each may be a submodule
};
// Every import statement at the start of a line (indented ones too: imports inside
// functions run later, from the file as it is then). Parenthesized and backslash-continued
// name lists are followed; `as` aliases, `*` and comments are dropped. Text inside string
// literals that looks like an import is taken too (it only costs a stat).
std::vector<PyImport> python_imports(std::string_view source);

// The version "3.11" from an interpreter's basename ("python3.11"); empty when the name
// carries none ("python3").
std::string python_version_of(std::string_view exe_path);

// The module search path of a Python interpreter without running it, as CPython builds
// sys.path: the script's directory (the cwd for -m) first, PYTHONPATH, then the prefix's
// lib/pythonX.Y, Debian's dist-packages (/usr/local/lib/pythonX.Y/dist-packages,
// /usr/lib/python3/dist-packages), site-packages, a virtual environment's site-packages
// (from argv[0]'s pyvenv.cfg) and the user site (~/.local). `versions`: "3.11" from the
// executable's name, or every lib/python3.N found under the prefix when it has none.
struct PythonPathInput {
  std::string exe;         // /proc/PID/exe, in the process's view
  std::string first;       // the script's directory, or the cwd
  std::string cwd;         // relative PYTHONPATH entries are relative to it
  std::string pythonpath;  // PYTHONPATH from the environment, may be empty
  std::string home;        // HOME from the environment, may be empty
  std::string venv;        // a virtual environment's folder, may be empty
  std::vector<std::string> versions;
};
std::vector<std::string> python_search_path(const PythonPathInput& in);

struct SourceLimits {
  size_t max_files = 1000;           // source files looked at per process
  int max_depth = 24;                // import chain length
  size_t max_file_bytes = 2u << 20;  // only the first bytes of a bigger file are parsed
};

// Finds the changed source files of interpreter processes. Per-scan state: the stat of a
// path and the imports of a file are shared by every process with the same view (mount
// namespace and root), so a second Python service costs only its own files.
class SourceChecker {
 public:
  explicit SourceChecker(std::string proc = "/proc", SourceLimits limits = {});

  // The view a process sees its files in; `prefix` is "" when it is the scanner's own,
  // otherwise PROC/PID/root.
  struct View {
    uint64_t mnt_ns = 0, root_dev = 0, root_ino = 0;
    std::string prefix;
  };

  // The source files of process `pid` (which runs interpreter `exe`, in its own view's
  // paths) changed after it started: kind kReplaced with `interpreter` set, or kDeleted
  // for a main script that is gone. `warning` is set when a limit cut the search short.
  // A process that exits meanwhile gives nothing.
  std::vector<StaleObject> check(pid_t pid, Language lang, const std::string& exe, const View& view,
                                 std::string* warning);

  size_t files_looked_at() const { return files_; }

 private:
  struct Stat {
    bool exists = false, is_dir = false, is_reg = false;
    uint64_t dev = 0, ino = 0;
    int64_t ctime_ns = 0;
  };
  using Key = std::tuple<uint64_t, uint64_t, uint64_t, std::string>;
  Key key(const View& v, const std::string& path) const {
    return {v.mnt_ns, v.root_dev, v.root_ino, path};
  }
  const Stat& stat_of(const View& v, const std::string& path);
  const std::vector<PyImport>& imports_of(const View& v, const std::string& path);
  // Finds module `parts` below the folders `dirs` (first folder that has it wins) and
  // appends the files that make it (packages' __init__.py, the module) to `out`. Returns
  // the module's folder when it is a package (its submodules are there), "" for a plain
  // module, nullopt when not found.
  std::optional<std::string> resolve(const View& v, const std::vector<std::string>& dirs,
                                     const std::vector<std::string>& parts,
                                     std::vector<std::string>* out);

  // The files that `file`'s imports resolve to through search path `path_id`; none for a
  // file of the standard library (`stdlib_dirs`).
  const std::vector<std::string>& deps_of(const View& v, size_t path_id,
                                          const std::vector<std::string>& path,
                                          const std::vector<std::string>& stdlib_dirs,
                                          const std::string& file);

  std::string proc_;
  SourceLimits limits_;
  int64_t boot_realtime_ns_ = 0;  // CLOCK_REALTIME at boot: start times are since boot
  int64_t tick_ns_ = 10'000'000;
  struct KeyHash {
    size_t operator()(const Key& k) const {
      size_t h = std::hash<std::string>{}(std::get<3>(k));
      for (uint64_t v : {std::get<0>(k), std::get<1>(k), std::get<2>(k)})
        h = (h ^ v) * 0x100000001b3ull;
      return h;
    }
  };
  std::unordered_map<Key, Stat, KeyHash> stats_;
  std::unordered_map<Key, std::vector<PyImport>, KeyHash> imports_;
  std::unordered_map<Key, std::vector<std::string>, KeyHash> deps_;  // "PATH-ID:FILE"
  std::map<std::vector<std::string>, size_t> path_ids_;
  size_t files_ = 0;
  std::string text_;  // the file being parsed; reused, so big files cost no mmap each
};

}  // namespace nines::advisor
