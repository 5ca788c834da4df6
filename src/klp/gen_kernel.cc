#include "klp/gen_kernel.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>

#include "core/clock.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "elf/relocatable.h"
#include "gen/layout_diff.h"
#include "gen/object_diff.h"
#include "gen/unified_diff.h"
#include "klp/gen_tree.h"

namespace fs = std::filesystem;

namespace nines::klp {
namespace {

// scripts/vm-run: $NINES_VM_RUN, else found above the running `nines` (the build tree).
std::string find_vm_run() {
  if (const char* e = std::getenv("NINES_VM_RUN"); e && *e) return e;
  std::error_code ec;
  fs::path dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (int i = 0; i < 6 && !dir.empty(); ++i, dir = dir.parent_path()) {
    if (fs::exists(dir / "scripts" / "vm-run")) return (dir / "scripts" / "vm-run").string();
    if (dir == dir.root_path()) break;
  }
  if (fs::exists("/usr/share/nines/vm-run")) return "/usr/share/nines/vm-run";
  return {};
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Members are compared by name; the kernel's structures hold many unnamed unions and
// structures, which are told apart by where they start (one that moves shows as removed
// and added, which still refuses the change).
void name_anonymous_members(std::map<std::string, gen::StructLayout>& layouts) {
  for (auto& [name, l] : layouts)
    for (auto& m : l.members)
      if (m.name.empty() || m.name == "<anonymous>")
        m.name = fmt::format("<anonymous at {}>", m.offset);
}

struct Unit {
  std::string source, kernel_object;
  std::string original_path, patched_path;
  std::optional<elf::RelocatableObject> original, patched;
  std::optional<gen::ObjectDiff> diff;
};

class KernelGenerator {
 public:
  explicit KernelGenerator(const KernelGenOptions& o) : opts_(o) {}

  Result<KernelGenResult> run() {
    Stopwatch sw;
    NINES_CHECK(check_inputs());
    NINES_CHECK(make_work_dir());
    NINES_CHECK(read_diffs());
    NINES_CHECK(prepare());
    NINES_CHECK(find_units());
    NINES_CHECK(compile_both());
    NINES_CHECK(compare());
    if (!result_.refusals.empty() || !any_replacement()) return finish(sw);
    NINES_CHECK(emit_and_build());
    if (!opts_.test_command.empty()) NINES_CHECK(run_test());
    return finish(sw);
  }

 private:
  KernelGenResult finish(const Stopwatch& sw) {
    result_.seconds = sw.elapsed_us() / 1e6;
    if (opts_.keep_work) result_.work_dir = work_;
    return std::move(result_);
  }

  bool any_replacement() const {
    for (const auto& f : result_.functions)
      if (!f.is_new) return true;
    return false;
  }

  // Pass 0: what we were given.
  Status check_inputs() {
    if (opts_.release.empty()) return make_error("nines build: no kernel release (--kernel RELEASE)");
    if (opts_.output.empty()) return make_error("nines build: no output (-o OUT.patch)");
    if (opts_.diffs.empty()) return make_error("nines build: no --diff given");
    if (opts_.source.empty())
      return make_error("nines build: no --source (a kernel tree, or deb:linux=VERSION)");
    if (opts_.headers_dir.empty()) opts_.headers_dir = "/usr/src/linux-headers-" + opts_.release;
    if (opts_.kernel_dir.empty()) opts_.kernel_dir = kernel_cache_dir() + "/" + opts_.release;
    if (opts_.id.empty()) opts_.id = fs::path(opts_.output).stem().string();
    if (!fs::exists(opts_.headers_dir + "/.config") ||
        !fs::exists(opts_.headers_dir + "/Module.symvers"))
      return make_error("nines build: the headers of {} are not in {} (no .config or "
                        "Module.symvers): install linux-headers-{} (scripts/kernel-setup)",
                        opts_.release, opts_.headers_dir, opts_.release);
    // Fail before the minutes of tree preparation: the compiler must be the kernel's.
    auto tc = check_toolchain(opts_.headers_dir);
    if (!tc) return tc.error();
    return {};
  }

  Status make_work_dir() {
    char tmpl[] = "/tmp/nines-kgen-XXXXXX";
    if (!mkdtemp(tmpl)) return errno_error("nines build: mkdtemp /tmp/nines-kgen-XXXXXX");
    work_ = tmpl;
    cleanup_ = !opts_.keep_work;
    return {};
  }

 public:
  ~KernelGenerator() {
    if (cleanup_ && !work_.empty()) {
      std::error_code ec;
      fs::remove_all(work_, ec);
    }
  }

 private:
  // Pass 1: the diffs, rewritten so that unchanged code keeps its line numbers.
  Status read_diffs() {
    for (size_t i = 0; i < opts_.diffs.size(); ++i) {
      std::string text = NINES_TRY(read_file(opts_.diffs[i], 64u << 20));
      gen::UnifiedDiff d = NINES_TRY(gen::parse_unified_diff(text, opts_.diffs[i]));
      const std::string path = fmt::format("{}/fix{}.patch", work_, i);
      NINES_CHECK(write_file_atomic(path, gen::with_line_directives(d).text()));
      diffs_.push_back(path);
    }
    files_ = NINES_TRY(files_of_diffs(diffs_));
    for (const auto& f : files_.other_files)
      result_.notes.push_back(fmt::format("{}: not C code, ignored", f));
    return {};
  }

  // Pass 2: the tree of exactly RELEASE, prepared once.
  Status prepare() {
    const std::string src = NINES_TRY(resolve_source(opts_.source, opts_.release, opts_.headers_dir));
    tree_ = NINES_TRY(prepare_tree(opts_.release, src, opts_.headers_dir));
    result_.tree_prepared_now = tree_.prepared_now;
    result_.prepare_seconds = tree_.prepare_seconds;
    return {};
  }

  // Pass 3: the units to compile: the .c files of the diff, and every unit including a
  // changed header.
  Status find_units() {
    std::set<std::string> units(files_.c_files.begin(), files_.c_files.end());
    for (const auto& c : files_.c_files)
      if (!fs::exists(tree_.tree_dir + "/" + c))
        result_.notes.push_back(fmt::format("{}: a new file, not compiled on its own", c));
    if (!files_.headers.empty()) {
      auto inc = NINES_TRY(units_including(tree_, files_.headers, opts_.max_header_units));
      units.insert(inc.begin(), inc.end());
      result_.notes.push_back(fmt::format("changed header(s) {}: {} unit(s) include them",
                                          fmt::join(files_.headers, ", "), inc.size()));
    }
    for (const auto& u : units)
      if (fs::exists(tree_.tree_dir + "/" + u)) unit_list_.push_back(u);
    if (unit_list_.empty())
      return make_error("nines build: the diffs change no C file or header of the kernel");
    return {};
  }

  // Pass 4: before and after, by kbuild.
  Status compile_both() {
    Stopwatch sw;
    CompiledUnits before = NINES_TRY(compile_units(tree_, unit_list_, work_ + "/orig"));
    {
      PatchedFiles patched = NINES_TRY(apply_diffs(tree_, diffs_, files_));
      auto after = compile_units(tree_, unit_list_, work_ + "/patched");
      NINES_CHECK(patched.restore());
      if (!after) return after.error();
      std::set<std::string> built_after;
      for (const auto& u : after->units) built_after.insert(u.unit);
      for (const auto& f : after->failed) {
        bool direct = std::find(files_.c_files.begin(), files_.c_files.end(), f) !=
                      files_.c_files.end();
        bool built_before = std::any_of(before.units.begin(), before.units.end(),
                                        [&](const CompiledUnit& c) { return c.unit == f; });
        if (direct && built_before)
          return make_error("nines build: {} does not compile with the fix applied:\n{}", f,
                            after->log);
      }
      for (const auto& b : before.units) {
        if (!built_after.count(b.unit)) continue;
        Unit u;
        u.source = b.unit;
        u.kernel_object = b.kernel_object;
        u.original_path = b.object;
        u.patched_path = work_ + "/patched/" + b.unit.substr(0, b.unit.size() - 2) + ".o";
        units_.push_back(std::move(u));
      }
    }
    for (const auto& f : before.failed)
      result_.notes.push_back(
          fmt::format("{}: not built in the configuration of {}, skipped", f, opts_.release));
    result_.compile_seconds = sw.elapsed_us() / 1e6;
    return {};
  }

  // Pass 5: compare each unit; structure layouts of the units that changed.
  Status compare() {
    for (auto& u : units_) {
      u.original = NINES_TRY(elf::RelocatableObject::open(u.original_path));
      u.patched = NINES_TRY(elf::RelocatableObject::open(u.patched_path));
      u.diff = NINES_TRY(gen::diff_objects(*u.original, *u.patched));
      result_.units.push_back(u.source);
      bool changed = std::any_of(u.diff->symbols.begin(), u.diff->symbols.end(),
                                 [](const gen::SymbolDiff& s) { return s.change != gen::Change::kSame; });
      if (!changed && u.diff->removed.empty()) {
        result_.notes.push_back(fmt::format("{}: no change in the compiled code", u.source));
        continue;
      }
      auto ol = gen::read_struct_layouts(u.original_path);
      auto pl = gen::read_struct_layouts(u.patched_path);
      if (!ol || !pl) {
        result_.refusals.push_back(fmt::format(
            "{}: cannot compare structure layouts: {}", u.source,
            (!ol ? ol.error() : pl.error()).message));
        continue;
      }
      name_anonymous_members(*ol);
      name_anonymous_members(*pl);
      for (auto& why : gen::compare_layouts(*ol, *pl))
        result_.refusals.push_back(fmt::format("{}: {}", u.source, why));
    }
    if (!result_.refusals.empty()) return {};
    NINES_CHECK(read_symbols());
    std::set<std::string> globals;
    for (const auto& u : units_)
      if (u.diff->changed_or_new_function())
        for (auto& g : unit_globals({u.source, u.kernel_object, &*u.original, &*u.patched, &*u.diff}))
          globals.insert(g);
    int n = 0;
    for (const auto& u : units_) {
      if (!u.diff->changed_or_new_function()) {
        for (const auto& sd : u.diff->symbols)
          if (!sd.function && sd.change == gen::Change::kChanged)
            result_.refusals.push_back(fmt::format(
                "{}: data '{}' changed its initial value or size: the running kernel keeps "
                "the old one",
                u.source, u.patched->symbol(sd.patched).name));
        continue;
      }
      KernelUnitInput in{u.source, u.kernel_object, &*u.original, &*u.patched, &*u.diff};
      KernelUnitResult r = emit_kernel_unit(in, syms_, globals, n);
      for (auto& x : r.refusals) result_.refusals.push_back(std::move(x));
      for (auto& x : r.notes) result_.notes.push_back(std::move(x));
      for (auto& x : r.new_data) result_.new_data.push_back(u.source + ": " + x);
      if (r.functions.empty()) continue;
      for (auto& f : r.functions) result_.functions.push_back(f);
      for (auto& [k, v] : r.aliases) aliases_[k] = v;
      const std::string path = fmt::format("{}/unit{}.o", work_, n);
      NINES_CHECK(elf::write_relocatable(r.object, path));
      objects_.push_back(path);
      ++n;
    }
    if (result_.refusals.empty() && !any_replacement())
      result_.notes.push_back("nothing to patch: the fix changes no function of the running "
                              "kernel that livepatch can replace");
    return {};
  }

  Status read_symbols() {
    if (auto map = read_file(opts_.kernel_dir + "/System.map", 256u << 20); map)
      syms_.add_system_map(*map);
    if (!syms_.has_system_map())
      result_.notes.push_back(fmt::format(
          "no System.map in {}: static symbols get sympos 0, checked when the patch loads",
          opts_.kernel_dir));
    syms_.add_symvers(NINES_TRY(read_file(opts_.headers_dir + "/Module.symvers")));
    std::string modules_dir = opts_.kernel_dir + "/modules";
    if (!fs::exists(modules_dir + "/modules.dep")) modules_dir = "/lib/modules/" + opts_.release;
    std::set<std::string> mods;
    for (const auto& u : units_)
      if (u.kernel_object != kVmlinux) mods.insert(u.kernel_object);
    if (mods.empty()) return {};
    auto dep = read_file(modules_dir + "/modules.dep", 64u << 20);
    for (const auto& m : mods) {
      std::string ko;
      if (dep)
        for (auto line : split(*dep, '\n')) {
          std::string rel(line.substr(0, line.find(':')));
          if (module_name_of(basename_of(rel)) == m + ".ko") ko = modules_dir + "/" + rel;
        }
      if (ko.empty()) {
        result_.notes.push_back(fmt::format(
            "module {} not found under {}: its statics get sympos 0", m, modules_dir));
        continue;
      }
      NINES_CHECK(syms_.add_module_file(m, ko));
    }
    return {};
  }

  // Pass 6: the module, through the hand path.
  Status emit_and_build() {
    std::string c = "/* Generated by `nines build --kernel --diff`: the functions the fix "
                    "changes, compiled from the patched tree. */\n";
    std::set<std::string> hinted;
    for (const auto& f : result_.functions) {
      if (f.is_new) continue;
      c += fmt::format("extern void {}(void);\n", f.replacement);
      if (f.object == kVmlinux)
        c += fmt::format("NINES_REPLACE({}, {});\n", f.name, f.replacement);
      else
        c += fmt::format("NINES_REPLACE_IN({}, {}, {});\n", f.object, f.name, f.replacement);
      if (f.sympos > 0 && hinted.insert(f.object + ":" + f.name).second)
        c += fmt::format("NINES_KSYM({}, {}, {});\n", f.object, f.name, f.sympos);
    }
    const std::string markers = work_ + "/generated.c";
    NINES_CHECK(write_file_atomic(markers, c));
    BuildOptions b;
    b.release = opts_.release;
    b.headers_dir = opts_.headers_dir;
    b.kernel_dir = opts_.kernel_dir;
    b.id = opts_.id;
    b.output = opts_.output;
    b.sources = {markers};
    b.objects = objects_;
    b.klp_aliases = aliases_;
    b.keep_work_dir = opts_.keep_work;
    result_.build = NINES_TRY(build(b));
    result_.written = true;
    return {};
  }

  // Pass 7: apply, run, revert in RELEASE under qemu.
  Status run_test() {
    const std::string vm_run = find_vm_run();
    if (vm_run.empty())
      return make_error("nines build --test: scripts/vm-run not found (set NINES_VM_RUN)");
    const std::string out = fs::absolute(opts_.output).string();
    std::vector<std::string> argv = {vm_run, "--kernel", opts_.release, "--file", out};
    std::set<std::string> mods;
    for (const auto& f : result_.functions)
      if (f.object != kVmlinux && mods.insert(f.object).second) {
        argv.push_back("--module");
        argv.push_back(f.object);
      }
    argv.push_back("--");
    argv.push_back(fmt::format(
        "nines kernel apply {0} || exit 125; ( {1} ); rc=$?; nines kernel revert {2} || rc=126; "
        "exit $rc",
        shell_quote(out), opts_.test_command, shell_quote(opts_.id)));
    if (!std::getenv("NINES_BIN")) {
      std::error_code ec;
      setenv("NINES_BIN", fs::read_symlink("/proc/self/exe", ec).c_str(), 0);
    }
    auto r = run_process(argv);
    if (!r) return r.error().wrap("nines build --test");
    result_.test_exit = r->exit_code;
    result_.test_output = r->output;
    return {};
  }

  KernelGenOptions opts_;
  KernelGenResult result_;
  std::string work_;
  bool cleanup_ = false;
  std::vector<std::string> diffs_;
  DiffFiles files_;
  PreparedTree tree_;
  std::vector<std::string> unit_list_;
  std::vector<Unit> units_;
  KernelSymbolIndex syms_;
  std::vector<std::string> objects_;
  std::map<std::string, KlpSymbol> aliases_;
};

}  // namespace

Result<KernelGenResult> generate_kernel_patch(const KernelGenOptions& opts) {
  KernelGenerator g(opts);
  return g.run();
}

std::string format_kernel_report(const KernelGenResult& r, const KernelGenOptions& opts) {
  std::string s;
  s += fmt::format("kernel patch {} for {}: {} unit(s) compared in {:.1f} s (tree {} in {:.1f} s, "
                   "compile {:.1f} s)\n",
                   opts.id.empty() ? fs::path(opts.output).stem().string() : opts.id,
                   opts.release, r.units.size(), r.seconds,
                   r.tree_prepared_now ? "prepared" : "reused", r.prepare_seconds,
                   r.compile_seconds);
  for (const auto& f : r.functions) {
    if (f.is_new)
      s += fmt::format("  new function  {} ({}, {}): lives in the patch\n", f.name, f.object,
                       f.source);
    else
      s += fmt::format("  replaced      {}:{}{} ({}): its code changed\n", f.object, f.name,
                       f.sympos ? fmt::format(",{}", f.sympos) : "", f.source);
  }
  for (const auto& d : r.new_data) s += fmt::format("  new data      {}: lives in the patch\n", d);
  for (const auto& n : r.notes) s += "  note          " + n + "\n";
  if (!r.refusals.empty()) {
    s += "refused: this fix cannot be live patched safely as generated:\n";
    for (const auto& x : r.refusals) s += "  - " + x + "\n";
    s += "(docs/KERNEL.md: finishing a refused fix by hand)\n";
  }
  if (r.written)
    s += fmt::format("wrote {}: module {}, {} livepatch symbol(s)\n", opts.output,
                     r.build.meta.module_name, r.build.klp.symbols.size());
  if (r.test_exit >= 0) {
    s += fmt::format("--test in the VM: exit {}{}\n", r.test_exit,
                     r.test_exit == 0     ? " (applied, command passed, reverted)"
                     : r.test_exit == 125 ? " (the patch did not apply)"
                     : r.test_exit == 126 ? " (the revert failed)"
                                          : " (the command failed)");
    s += r.test_output;
    if (!r.test_output.empty() && r.test_output.back() != '\n') s += "\n";
  }
  if (!r.written && r.refusals.empty()) s += "nothing written\n";
  return s;
}

int cli_generate_kernel(const KernelGenOptions& opts) {
  auto r = generate_kernel_patch(opts);
  if (!r) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    return 1;
  }
  std::fputs(format_kernel_report(*r, opts).c_str(), stdout);
  if (!r->refusals.empty()) return 1;
  if (!r->written) return 3;
  if (r->test_exit > 0) return 4;
  return 0;
}

}  // namespace nines::klp
