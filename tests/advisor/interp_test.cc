// Interpreted programs whose source changed after they started: parsing (command lines,
// imports, search paths) with fixed inputs, then real python3 and perl processes that the
// test starts and whose sources it rewrites or renames over.
#include "advisor/interp.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <stdexcept>

#include "advisor/scan.h"
#include "test_util.h"

namespace nines::advisor {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(InterpreterLanguage, ByTheExecutablesBasename) {
  EXPECT_EQ(interpreter_language("/usr/bin/python3.11"), Language::kPython);
  EXPECT_EQ(interpreter_language("/usr/bin/python3"), Language::kPython);
  EXPECT_EQ(interpreter_language("/opt/py/bin/python3.12.1"), Language::kPython);
  EXPECT_EQ(interpreter_language("/usr/bin/perl"), Language::kPerl);
  EXPECT_EQ(interpreter_language("/usr/bin/perl5.36.0"), Language::kPerl);
  EXPECT_EQ(interpreter_language("/usr/bin/ruby3.1"), Language::kRuby);
  EXPECT_FALSE(interpreter_language("/usr/bin/python2.7"));
  EXPECT_FALSE(interpreter_language("/usr/lib/libpython3.11.so.1.0"));
  EXPECT_FALSE(interpreter_language("/usr/bin/python3-config"));
  EXPECT_FALSE(interpreter_language("/usr/bin/perldoc"));
  EXPECT_FALSE(interpreter_language("/usr/bin/bash"));
}

TEST(PythonVersionOf, FromTheNameOnly) {
  EXPECT_EQ(python_version_of("/usr/bin/python3.11"), "3.11");
  EXPECT_EQ(python_version_of("/usr/bin/python3"), "");
}

TEST(ParseInvocation, PythonSkipsOptionsAndTheirArguments) {
  auto i = parse_invocation(Language::kPython,
                            {"python3", "-u", "-W", "ignore", "-Xdev", "-Bs", "app.py", "--x"});
  ASSERT_TRUE(i);
  EXPECT_EQ(i->script, "app.py");
  i = parse_invocation(Language::kPython, {"python3", "--check-hash-based-pycs", "never", "a.py"});
  ASSERT_TRUE(i);
  EXPECT_EQ(i->script, "a.py");
  i = parse_invocation(Language::kPython, {"python3", "--", "-odd.py"});
  ASSERT_TRUE(i);
  EXPECT_EQ(i->script, "-odd.py");
}

TEST(ParseInvocation, PythonModuleAndNoSource) {
  auto m = parse_invocation(Language::kPython, {"python3", "-u", "-m", "http.server", "8000"});
  ASSERT_TRUE(m);
  EXPECT_EQ(m->module, "http.server");
  EXPECT_TRUE(m->script.empty());
  m = parse_invocation(Language::kPython, {"python3", "-mpkg.mod"});
  ASSERT_TRUE(m);
  EXPECT_EQ(m->module, "pkg.mod");
  EXPECT_FALSE(parse_invocation(Language::kPython, {"python3", "-c", "import time"}));
  EXPECT_FALSE(parse_invocation(Language::kPython, {"python3", "-Ic", "pass"}));
  EXPECT_FALSE(parse_invocation(Language::kPython, {"python3", "-"}));
  EXPECT_FALSE(parse_invocation(Language::kPython, {"python3"}));
}

TEST(ParseInvocation, PerlAndRuby) {
  auto p = parse_invocation(
      Language::kPerl, {"perl", "-w", "-I", "/opt/lib", "-Mstrict", "-l", "/srv/daemon.pl", "arg"});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->script, "/srv/daemon.pl");
  EXPECT_EQ(p->include_dirs, std::vector<std::string>{"/opt/lib"});
  EXPECT_FALSE(parse_invocation(Language::kPerl, {"perl", "-ne", "print"}));
  auto r = parse_invocation(Language::kRuby, {"ruby", "-C", "/srv/app", "-r", "json", "run.rb"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->script, "run.rb");
  EXPECT_EQ(r->chdir, "/srv/app");
  EXPECT_FALSE(parse_invocation(Language::kRuby, {"ruby", "-e", "sleep"}));
}

TEST(PythonImports, StatementsOfEveryShape) {
  auto imports = python_imports(
      "#!/usr/bin/python3\n"
      "import os, sys as system  # comment\n"
      "import xml.dom.minidom\n"
      "from a.b import (c,\n"
      "    d as e,  # why\n"
      "    f)\n"
      "from . import sibling\n"
      "from ..up import thing\n"
      "from x import *\n"
      "def f():\n"
      "    import lazy; import lazier\n"
      "from long import one, \\\n"
      "    two\n"
      "important = 1\n"
      "fromage = 2\n"
      "x = 'import'\n");
  std::vector<std::string> got;
  for (const PyImport& i : imports) {
    std::string s = std::string(static_cast<size_t>(i.level), '.') + i.module + ":";
    for (const std::string& n : i.names) s += n + ",";
    got.push_back(s);
  }
  EXPECT_EQ(got,
            (std::vector<std::string>{"os:", "sys:", "xml.dom.minidom:", "a.b:c,d,f,", ".:sibling,",
                                      "..up:thing,", "x:", "lazy:", "lazier:", "long:one,two,"}));
}

TEST(PythonSearchPath, DerivedFromThePrefixAndVersion) {
  PythonPathInput in;
  in.exe = "/usr/bin/python3.11";
  in.first = "/srv/app";
  in.cwd = "/srv/app";
  in.pythonpath = "/opt/extra:relative:/opt/extra";
  in.home = "/home/u";
  in.versions = {"3.11"};
  EXPECT_EQ(
      python_search_path(in),
      (std::vector<std::string>{
          "/srv/app", "/opt/extra", "/srv/app/relative", "/usr/lib/python3.11",
          "/usr/local/lib/python3.11/dist-packages", "/usr/lib/python3/dist-packages",
          "/usr/lib/python3.11/site-packages", "/home/u/.local/lib/python3.11/site-packages"}));
}

// ---- Real processes.

std::string find_program(std::initializer_list<const char*> candidates) {
  for (const char* c : candidates)
    if (access(c, X_OK) == 0) return c;
  return {};
}
std::string python3() { return find_program({"/usr/bin/python3", "/usr/local/bin/python3"}); }
std::string perl() { return find_program({"/usr/bin/perl", "/usr/local/bin/perl"}); }

// A program started by the test in folder `cwd` (testing::Holder), looked at only past the
// clock tick after its start: changes are seen only from then on (interp.h).
class Program : public testing::Holder {
 public:
  Program(const std::string& cwd, const std::vector<std::string>& argv) : Holder(argv, cwd) {
    usleep(30'000);
  }
};

constexpr const char* kPyMain =
    "import sys\n"
    "import helper\n"
    "from pkg import sub\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n";

// A Python program in a fresh folder: main.py imports helper.py and pkg/sub.py from there.
struct PyApp {
  TempDir dir;
  PyApp() {
    write_file(dir / "main.py", kPyMain);
    write_file(dir / "helper.py", "import json\nVALUE = 1\n");
    testing::mkdirs(dir / "pkg");
    write_file(dir / "pkg/__init__.py", "");
    write_file(dir / "pkg/sub.py", "from . import leaf\n");
    write_file(dir / "pkg/leaf.py", "LEAF = 1\n");
  }
};

// The source files of `pid` the scan reports (none when it is not stale).
std::set<std::string> stale_sources(pid_t pid, ScanOptions opts = {}) {
  auto r = scan_process(pid, opts);
  EXPECT_TRUE(r.ok()) << r.error().message;
  std::set<std::string> out;
  if (r.ok() && *r)
    for (const StaleObject& o : (*r)->objects)
      if (!o.interpreter.empty()) out.insert(o.path);
  return out;
}

const StaleObject* find_source(const StaleProcess& p, const std::string& path) {
  for (const StaleObject& o : p.objects)
    if (o.path == path) return &o;
  return nullptr;
}

TEST(InterpretedProgram, PythonModuleRewrittenInPlaceIsReported) {
  if (python3().empty()) GTEST_SKIP() << "no python3";
  PyApp app;
  Program py(app.dir.path(), {python3(), "main.py"});
  EXPECT_EQ(stale_sources(py.pid()), std::set<std::string>{}) << "nothing changed yet";

  write_file(app.dir / "helper.py", "import json\nVALUE = 2\n");  // same inode, new content
  auto r = scan_process(py.pid());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(*r) << "a changed module makes the process stale";
  const StaleObject* o = find_source(**r, app.dir / "helper.py");
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->interpreter, "python");
  EXPECT_EQ(o->kind, StaleKind::kReplaced);
  EXPECT_EQ((*r)->objects.size(), 1u) << "only the module that changed";
  EXPECT_EQ((*r)->comm, "python3");
}

TEST(InterpretedProgram, PythonModuleRenamedOverLikeDpkgIsReported) {
  if (python3().empty()) GTEST_SKIP() << "no python3";
  PyApp app;
  Program py(app.dir.path(), {python3(), app.dir / "main.py"});
  EXPECT_EQ(stale_sources(py.pid()), std::set<std::string>{});
  // dpkg unpacks to FILE.dpkg-new and renames it over FILE; it also sets the old mtime,
  // which must not hide the change.
  write_file(app.dir / "pkg/leaf.py.dpkg-new", "LEAF = 2\n");
  ASSERT_EQ(system(("touch -d 2001-01-01 '" + app.dir / "pkg/leaf.py.dpkg-new" + "'").c_str()), 0);
  ASSERT_EQ(rename((app.dir / "pkg/leaf.py.dpkg-new").c_str(), (app.dir / "pkg/leaf.py").c_str()),
            0);
  EXPECT_EQ(stale_sources(py.pid()), std::set<std::string>{app.dir / "pkg/leaf.py"})
      << "a module imported relatively by a module of a package";
}

TEST(InterpretedProgram, PythonMainScriptChangedOrDeleted) {
  if (python3().empty()) GTEST_SKIP() << "no python3";
  PyApp app;
  Program py(app.dir.path(), {python3(), "-u", "./main.py"});
  testing::replace_file(app.dir / "main.py");
  EXPECT_EQ(stale_sources(py.pid()), std::set<std::string>{app.dir / "main.py"});
  ASSERT_EQ(unlink((app.dir / "main.py").c_str()), 0);
  auto r = scan_process(py.pid());
  ASSERT_TRUE(r.ok() && *r);
  const StaleObject* o = find_source(**r, app.dir / "main.py");
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->kind, StaleKind::kDeleted);
}

TEST(InterpretedProgram, PythonDashMRunsAModuleFoundFromTheCwd) {
  if (python3().empty()) GTEST_SKIP() << "no python3";
  PyApp app;
  testing::mkdirs(app.dir / "svc");
  write_file(app.dir / "svc/__init__.py", "");
  write_file(app.dir / "svc/__main__.py", kPyMain);
  Program py(app.dir.path(), {python3(), "-m", "svc"});
  EXPECT_EQ(stale_sources(py.pid()), std::set<std::string>{});
  write_file(app.dir / "pkg/sub.py", "from . import leaf\nX = 1\n");
  testing::replace_file(app.dir / "svc/__main__.py");
  EXPECT_EQ(stale_sources(py.pid()),
            (std::set<std::string>{app.dir / "pkg/sub.py", app.dir / "svc/__main__.py"}));
}

TEST(InterpretedProgram, UnrelatedPythonProcessIsNotReported) {
  if (python3().empty()) GTEST_SKIP() << "no python3";
  PyApp changed, other;
  Program a(changed.dir.path(), {python3(), "main.py"});
  Program b(other.dir.path(), {python3(), "main.py"});
  testing::replace_file(changed.dir / "helper.py");
  EXPECT_EQ(stale_sources(a.pid()), std::set<std::string>{changed.dir / "helper.py"});
  EXPECT_EQ(stale_sources(b.pid()), std::set<std::string>{});
}

TEST(InterpretedProgram, NotCheckedWhenInterpretersAreOff) {
  if (python3().empty()) GTEST_SKIP() << "no python3";
  PyApp app;
  Program py(app.dir.path(), {python3(), "main.py"});
  testing::replace_file(app.dir / "helper.py");
  ScanOptions off;
  off.interpreters = false;
  EXPECT_EQ(stale_sources(py.pid(), off), std::set<std::string>{});
}

TEST(InterpretedProgram, PerlMainScriptReplacedIsReported) {
  if (perl().empty()) GTEST_SKIP() << "no perl";
  TempDir dir;
  write_file(dir / "daemon.pl", "$| = 1; print \"ready\\n\"; while (<STDIN>) {}\n");
  Program pl(dir.path(), {perl(), "-w", "daemon.pl"});
  EXPECT_EQ(stale_sources(pl.pid()), std::set<std::string>{});
  testing::replace_file(dir / "daemon.pl");
  auto r = scan_process(pl.pid());
  ASSERT_TRUE(r.ok() && *r);
  const StaleObject* o = find_source(**r, dir / "daemon.pl");
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->interpreter, "perl");
}

TEST(InterpretedProgram, CodeOnTheCommandLineHasNoSource) {
  if (perl().empty()) GTEST_SKIP() << "no perl";
  TempDir dir;
  Program pl(dir.path(), {perl(), "-e", "$| = 1; print \"ready\\n\"; while (<STDIN>) {}"});
  EXPECT_EQ(stale_sources(pl.pid()), std::set<std::string>{});
}

// ---- Whole-system scans, inside a private PID namespace only.

TEST(WholeSystem, InterpretedProgramsOnlyTheChangedOneIsStale) {
  if (!testing::in_private_pid_namespace()) GTEST_SKIP() << "needs a private PID namespace";
  if (python3().empty()) GTEST_SKIP() << "no python3";
  PyApp changed, other;
  Program a(changed.dir.path(), {python3(), "main.py"});
  Program b(other.dir.path(), {python3(), "main.py"});
  testing::replace_file(changed.dir / "pkg/leaf.py");
  for (bool query : {true, false}) {
    SCOPED_TRACE(query ? "PROCMAP_QUERY" : "maps text");
    ScanOptions o;
    o.procmap_query = query;
    auto r = scan_processes(o);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->stale.size(), 1u);
    EXPECT_EQ(r->stale[0].pid, a.pid());
    ASSERT_EQ(r->stale[0].objects.size(), 1u);
    EXPECT_EQ(r->stale[0].objects[0].path, changed.dir / "pkg/leaf.py");
    EXPECT_EQ(r->interpreted, 2u);
    EXPECT_TRUE(r->warnings.empty()) << r->warnings.front();
  }
}

TEST(WholeSystem, InterpretedProgramsFileLimitIsAWarning) {
  if (!testing::in_private_pid_namespace()) GTEST_SKIP() << "needs a private PID namespace";
  if (python3().empty()) GTEST_SKIP() << "no python3";
  PyApp app;
  Program py(app.dir.path(), {python3(), "main.py"});
  ScanOptions o;
  o.interp_max_files = 2;
  auto r = scan_processes(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(
      r->warnings[0].find(fmt::format("pid {}: python sources: stopped after 2 files", py.pid())),
      std::string::npos)
      << r->warnings[0];
}

}  // namespace
}  // namespace nines::advisor
