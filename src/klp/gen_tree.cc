#include "klp/gen_tree.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/log.h"
#include "core/strings.h"
#include "core/subprocess.h"

namespace fs = std::filesystem;

namespace nines::klp {
namespace {

constexpr const char* kKcflags = "KCFLAGS=-ffunction-sections -fdata-sections";

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// `VERSION.PATCHLEVEL.SUBLEVEL` of a top-level kernel Makefile.
std::string makefile_version(const std::string& makefile) {
  auto text = read_file(makefile, 1u << 20);
  if (!text) return {};
  std::string v[3];
  const char* keys[3] = {"VERSION", "PATCHLEVEL", "SUBLEVEL"};
  for (auto line : split(*text, '\n')) {
    for (int k = 0; k < 3; ++k) {
      std::string_view key = keys[k];
      if (!starts_with(line, key)) continue;
      std::string_view rest = trim(line.substr(key.size()));
      if (!starts_with(rest, "=")) continue;
      if (v[k].empty()) v[k] = std::string(trim(rest.substr(1)));
    }
  }
  if (v[0].empty() || v[1].empty() || v[2].empty()) return {};
  return v[0] + "." + v[1] + "." + v[2];
}

// The headers' own Makefile only includes the common headers' Makefile.
std::string headers_version(const std::string& headers_dir) {
  auto mk = read_file(headers_dir + "/Makefile", 1u << 16);
  if (mk) {
    for (auto line : split(*mk, '\n')) {
      line = trim(line);
      if (starts_with(line, "include ")) {
        std::string v = makefile_version(std::string(trim(line.substr(8))));
        if (!v.empty()) return v;
      }
    }
  }
  return makefile_version(headers_dir + "/Makefile");
}

std::string config_value(std::string_view config, std::string_view key) {
  for (auto line : split(config, '\n')) {
    if (starts_with(line, key) && line.size() > key.size() && line[key.size()] == '=') {
      std::string_view v = line.substr(key.size() + 1);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return std::string(v);
    }
  }
  return {};
}

// The options set in a .config, as "NAME=value" lines (comments dropped).
std::map<std::string, std::string> config_options(std::string_view config) {
  std::map<std::string, std::string> m;
  for (auto line : split(config, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    m.emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  return m;
}

std::string tail_of(const std::string& s, size_t n) {
  return s.size() > n ? "..." + s.substr(s.size() - n) : s;
}

std::vector<std::string> kbuild_argv(const PreparedTree& t) {
  return {"nice", "-n", "10", "make", "-s", "-C", t.tree_dir, "O=" + t.obj_dir, "ARCH=x86",
          "CC=" + t.toolchain.cc, "KERNELRELEASE=" + t.release};
}

Status copy_tree(const std::string& from, const std::string& to) {
  // Hard links first (seconds for the whole kernel, no space); a plain copy across
  // file systems. Files the diffs touch are made private before patching.
  auto linked = run_process({"cp", "-al", from, to});
  if (linked && linked->exit_code == 0) return {};
  std::error_code ec;
  fs::remove_all(to, ec);
  auto copied = run_process({"cp", "-a", from, to});
  if (!copied) return copied.error();
  if (copied->exit_code != 0)
    return make_error("copy {} to {}: {}", from, to, tail_of(copied->output, 2000));
  return {};
}

// Replaces `path` by a private copy of itself (a new inode), so writing it can never reach
// the hard-linked original.
Status make_private(const std::string& path) {
  if (!fs::exists(path)) return {};
  const std::string tmp = path + ".nines-tmp";
  std::error_code ec;
  fs::copy_file(path, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) return make_error("copy {}: {}", path, ec.message());
  fs::rename(tmp, path, ec);
  if (ec) return make_error("rename {}: {}", tmp, ec.message());
  return {};
}

}  // namespace

std::string kgen_cache_dir() { return env_or("NINES_KGEN_CACHE", "/var/cache/nines/kgen"); }
std::string kernel_source_cache_dir() {
  return env_or("NINES_KERNEL_SOURCE_CACHE", "/var/cache/nines/kernel-source");
}

Result<std::string> debian_version_of(const std::string& release) {
  const std::string pkg = "linux-headers-" + release;
  auto q = run_process({"dpkg-query", "-W", "-f=${Version}", pkg});
  if (q && q->exit_code == 0 && !trim(q->output).empty()) return std::string(trim(q->output));
  auto p = run_process({"apt-cache", "show", "--no-all-versions", pkg});
  if (p && p->exit_code == 0) {
    for (auto line : split(p->output, '\n'))
      if (starts_with(line, "Version: ")) return std::string(trim(line.substr(9)));
  }
  return make_error("the Debian version of kernel {}: package {} is neither installed nor known "
                    "to apt (apt-get update?)",
                    release, pkg);
}

Result<std::string> fetch_debian_source(const std::string& version) {
  static const std::regex ok("[0-9][0-9A-Za-z.+~-]*");
  if (!std::regex_match(version, ok))
    return make_error("fetch kernel source: bad Debian version '{}'", version);
  const std::string dir = kernel_source_cache_dir() + "/" + version;
  const std::string tree = dir + "/linux-source-6.1";
  if (fs::exists(tree + "/.nines-complete")) return tree;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("fetch kernel source: create {}: {}", dir, ec.message());
  const std::string dl = dir + "/download";
  fs::remove_all(dl, ec);
  fs::create_directories(dl, ec);
  fs::permissions(dl, fs::perms::all & ~fs::perms::group_write & ~fs::perms::others_write, ec);
  spdlog::info("fetching linux-source-6.1={} (apt-get download)", version);
  auto got = run_process({"apt-get", "download", "-qq", "linux-source-6.1=" + version}, dl);
  if (!got) return got.error().wrap("fetch kernel source");
  std::string deb;
  for (const auto& e : fs::directory_iterator(dl, ec))
    if (e.path().extension() == ".deb") deb = e.path().string();
  if (got->exit_code != 0 || deb.empty())
    return make_error("fetch kernel source: apt-get download linux-source-6.1={} failed: {}",
                      version, tail_of(got->output, 2000));
  // The package holds /usr/src/linux-source-6.1.tar.xz: the Debian tree, patches applied.
  fs::remove_all(tree, ec);
  const std::string sh =
      "set -o pipefail; dpkg-deb --fsys-tarfile \"$1\" | tar -x -O "
      "./usr/src/linux-source-6.1.tar.xz | nice -n 10 tar -xJ -C \"$2\"";
  auto un = run_process({"bash", "-c", sh, "unpack", deb, dir});
  if (!un) return un.error().wrap("fetch kernel source");
  if (un->exit_code != 0 || !fs::exists(tree + "/Makefile"))
    return make_error("fetch kernel source: unpack {}: {}", deb, tail_of(un->output, 2000));
  fs::remove_all(dl, ec);
  NINES_CHECK(write_file_atomic(tree + "/.nines-complete", version + "\n"));
  return tree;
}

Result<std::string> resolve_source(const std::string& source, const std::string& release,
                                   const std::string& headers_dir) {
  const std::string want = headers_version(headers_dir);
  if (want.empty())
    return make_error("kernel source: cannot read the kernel version of {}", headers_dir);
  std::string dir;
  if (starts_with(source, "deb:")) {
    std::string v = source.substr(4);
    if (starts_with(v, "linux=")) v = v.substr(6);
    if (v.empty()) v = NINES_TRY(debian_version_of(release));
    dir = NINES_TRY(fetch_debian_source(v));
  } else {
    dir = fs::absolute(source).lexically_normal().string();
    if (!fs::exists(dir + "/Makefile") || !fs::exists(dir + "/Kbuild"))
      return make_error("kernel source {}: not a kernel tree (no Makefile and Kbuild)", dir);
  }
  const std::string have = makefile_version(dir + "/Makefile");
  if (have != want)
    return make_error("kernel source {} is Linux {}, but {} is Linux {}: give the tree of "
                      "exactly that kernel (deb:linux=VERSION fetches it)",
                      dir, have.empty() ? "unknown" : have, release, want);
  return dir;
}

Result<Toolchain> check_toolchain(const std::string& headers_dir) {
  const std::string config = NINES_TRY(read_file(headers_dir + "/.config"));
  Toolchain tc;
  tc.version_text = config_value(config, "CONFIG_CC_VERSION_TEXT");
  if (tc.version_text.empty())
    return make_error("toolchain: {}/.config names no compiler (CONFIG_CC_VERSION_TEXT)",
                      headers_dir);
  tc.cc = tc.version_text.substr(0, tc.version_text.find(' '));
  static const std::regex prog("[A-Za-z0-9._+-]+");
  if (!std::regex_match(tc.cc, prog) || tc.cc.find("clang") != std::string::npos)
    return make_error("toolchain: unsupported compiler '{}' in {}/.config", tc.version_text,
                      headers_dir);
  auto v = run_process({tc.cc, "--version"});
  if (!v || v->exit_code != 0)
    return make_error("toolchain: the kernel was built with '{}', but {} cannot be run here "
                      "(install it: apt-get install {})",
                      tc.version_text, tc.cc, tc.cc);
  std::string first(trim(v->output.substr(0, v->output.find('\n'))));
  if (first != tc.version_text)
    return make_error("toolchain: the kernel was built with '{}', but {} here is '{}': "
                      "refusing to compile with another compiler",
                      tc.version_text, tc.cc, first);
  return tc;
}

Result<PreparedTree> prepare_tree(const std::string& release, const std::string& source_dir,
                                  const std::string& headers_dir) {
  Stopwatch sw;
  PreparedTree t;
  t.release = release;
  t.source_dir = source_dir;
  t.headers_dir = headers_dir;
  t.toolchain = NINES_TRY(check_toolchain(headers_dir));
  t.root = kgen_cache_dir() + "/" + release;
  t.tree_dir = t.root + "/tree";
  t.obj_dir = t.root + "/obj";
  std::error_code ec;
  fs::create_directories(t.root, ec);
  if (ec) return make_error("prepare kernel tree: create {}: {}", t.root, ec.message());
  t.lock = NINES_TRY(Fd::open(t.root + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (flock(t.lock.get(), LOCK_EX) != 0) return errno_error("prepare kernel tree: flock");

  // A tree prepared from another source folder is started again.
  const std::string stamp = t.root + "/prepared";
  auto prepared_from = read_file(stamp);
  if (prepared_from && std::string(trim(*prepared_from)) == source_dir &&
      fs::exists(t.obj_dir + "/include/generated/autoconf.h")) {
    t.prepare_seconds = sw.elapsed_us() / 1e6;
    return t;
  }
  spdlog::info("preparing the kernel tree of {} in {} (once per release)", release, t.root);
  fs::remove(stamp, ec);
  fs::remove_all(t.tree_dir, ec);
  fs::remove_all(t.obj_dir, ec);
  NINES_CHECK(copy_tree(source_dir, t.tree_dir));
  fs::create_directories(t.obj_dir, ec);
  const std::string config = NINES_TRY(read_file(headers_dir + "/.config"));
  NINES_CHECK(write_file_atomic(t.obj_dir + "/.config", config));
  fs::copy_file(headers_dir + "/Module.symvers", t.obj_dir + "/Module.symvers",
                fs::copy_options::overwrite_existing, ec);
  if (ec) return make_error("prepare kernel tree: copy Module.symvers: {}", ec.message());

  std::vector<std::string> argv = kbuild_argv(t);
  argv.push_back("olddefconfig");
  auto cfg = run_process(argv);
  if (!cfg) return cfg.error().wrap("prepare kernel tree");
  if (cfg->exit_code != 0)
    return make_error("prepare kernel tree of {}: make olddefconfig failed:\n{}", release,
                      tail_of(cfg->output, 4000));
  // The configuration kbuild settles on here must be RELEASE's: a difference means another
  // compiler, assembler or pahole than the kernel's build had.
  const auto want = config_options(config);
  const auto have = config_options(NINES_TRY(read_file(t.obj_dir + "/.config")));
  std::vector<std::string> diffs;
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end()) diffs.push_back(fmt::format("{} ({} here: unset)", k, v));
    else if (it->second != v) diffs.push_back(fmt::format("{}={} (here: {})", k, v, it->second));
  }
  for (const auto& [k, v] : have)
    if (!want.count(k)) diffs.push_back(fmt::format("{} (unset in {}, here: {})", k, release, v));
  if (!diffs.empty()) {
    std::string list;
    for (size_t i = 0; i < diffs.size() && i < 8; ++i) list += "\n  " + diffs[i];
    return make_error(
        "prepare kernel tree of {}: its configuration does not hold with the tools here "
        "({} option(s) differ; install the missing tools, e.g. dwarves for pahole):{}",
        release, diffs.size(), list);
  }
  argv = kbuild_argv(t);
  argv.insert(argv.begin() + 4, "-j" + std::to_string(std::max(1u, std::thread::hardware_concurrency())));
  argv.push_back("modules_prepare");
  auto prep = run_process(argv);
  if (!prep) return prep.error().wrap("prepare kernel tree");
  if (prep->exit_code != 0)
    return make_error("prepare kernel tree of {}: make modules_prepare failed:\n{}", release,
                      tail_of(prep->output, 4000));
  NINES_CHECK(write_file_atomic(stamp, source_dir + "\n"));
  t.prepared_now = true;
  t.prepare_seconds = sw.elapsed_us() / 1e6;
  return t;
}

Result<DiffFiles> files_of_diffs(const std::vector<std::string>& diffs) {
  std::set<std::string> seen;
  DiffFiles out;
  for (const auto& d : diffs) {
    const std::string text = NINES_TRY(read_file(d, 16u << 20));
    bool any = false;
    for (auto line : split(text, '\n')) {
      if (!starts_with(line, "+++ ")) continue;
      std::string_view p = line.substr(4);
      p = p.substr(0, p.find('\t'));
      p = trim(p);
      if (p == "/dev/null") continue;
      size_t slash = p.find('/');  // -p1
      if (slash == std::string_view::npos)
        return make_error("diff {}: path '{}' has no leading folder to strip (patch -p1)", d, p);
      std::string rel(p.substr(slash + 1));
      if (rel.empty() || rel[0] == '/' || rel.find("..") != std::string::npos)
        return make_error("diff {}: refusing path '{}'", d, rel);
      any = true;
      if (!seen.insert(rel).second) continue;
      if (rel.ends_with(".c")) out.c_files.push_back(rel);
      else if (rel.ends_with(".h")) out.headers.push_back(rel);
      else out.other_files.push_back(rel);
    }
    if (!any) return make_error("diff {}: no file in it (not a unified diff?)", d);
  }
  return out;
}

Result<std::vector<std::string>> units_including(const PreparedTree& t,
                                                 const std::vector<std::string>& headers,
                                                 size_t max_units) {
  // Which files name a header in an #include: by the path under include/ (<linux/x.h>),
  // else by the file name ("x.h", for local headers of a folder).
  std::set<std::string> done, units;
  std::vector<std::string> todo = headers;
  while (!todo.empty()) {
    std::string h = todo.back();
    todo.pop_back();
    if (!done.insert(h).second) continue;
    // A header under an include/ folder is named by its path there (<linux/x.h>) anywhere
    // in the tree; any other header by its file name ("x.h") in its own folder only.
    size_t inc = h.find("include/");
    const bool global = inc != std::string::npos;
    std::string key = global ? h.substr(inc + 8) : basename_of(h);
    if (starts_with(key, "uapi/")) key = key.substr(5);
    const std::string pattern = "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"](.*/)?" +
                                std::regex_replace(key, std::regex("[.+]"), "\\$&") + "[>\"]";
    const std::string where = global ? "." : "./" + fs::path(h).parent_path().string();
    std::vector<std::string> argv = {"grep", "-lE", "--include=*.c", "--include=*.h", pattern};
    if (global) {
      argv.insert(argv.begin() + 1, "-r");
      argv.push_back(where);
    } else {
      for (const auto& e : fs::directory_iterator(t.tree_dir + "/" + where))
        if (e.is_regular_file() && (e.path().extension() == ".c" || e.path().extension() == ".h"))
          argv.push_back(where + "/" + e.path().filename().string());
    }
    auto g = run_process(argv, t.tree_dir);
    if (!g) return g.error().wrap("find units including " + h);
    for (auto line : split(g->output, '\n')) {
      line = trim(line);
      if (starts_with(line, "./")) line.remove_prefix(2);
      if (line.empty()) continue;
      std::string f(line);
      // Tools and user-space programs are not kernel units.
      if (starts_with(f, "tools/") || starts_with(f, "scripts/") || starts_with(f, "samples/") ||
          starts_with(f, "Documentation/") || starts_with(f, "usr/"))
        continue;
      if (f.ends_with(".c")) units.insert(f);
      else if (!done.count(f)) todo.push_back(f);
    }
    if (units.size() > max_units)
      return make_error(
          "header {} is included by more than {} translation units: a change there is "
          "refused (rebuilding and comparing that much of the kernel is not a live patch); "
          "move the change into the .c files that need it",
          headers.front(), max_units);
  }
  return std::vector<std::string>(units.begin(), units.end());
}

PatchedFiles::PatchedFiles(PatchedFiles&& o) noexcept
    : tree_(o.tree_), files_(std::move(o.files_)), active_(o.active_) {
  o.active_ = false;
}

PatchedFiles::~PatchedFiles() {
  if (auto s = restore(); !s) spdlog::error("{}", s.error().message);
}

Status PatchedFiles::restore() {
  if (!active_) return {};
  active_ = false;
  std::error_code ec;
  for (const auto& f : files_) {
    const std::string dst = tree_->tree_dir + "/" + f;
    const std::string src = tree_->source_dir + "/" + f;
    fs::remove(dst, ec);
    // A new file (not a link): its fresh mtime makes kbuild rebuild what depends on it.
    if (fs::exists(src)) fs::copy_file(src, dst, ec);
    if (ec) return make_error("restore {} in the kernel tree: {}", f, ec.message());
  }
  return {};
}

Result<PatchedFiles> apply_diffs(const PreparedTree& t, const std::vector<std::string>& diffs,
                                 const DiffFiles& files) {
  PatchedFiles p;
  p.tree_ = &t;
  for (const auto* list : {&files.c_files, &files.headers, &files.other_files})
    for (const auto& f : *list) p.files_.push_back(f);
  p.active_ = true;
  for (const auto& f : p.files_) NINES_CHECK(make_private(t.tree_dir + "/" + f));
  for (const auto& d : diffs) {
    const std::string abs = fs::absolute(d).string();
    auto r = run_process({"patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch",
                          "-r", "-", "-i", abs},
                         t.tree_dir);
    if (!r) return r.error().wrap("apply " + d);
    if (r->exit_code != 0)
      return make_error("apply {} to the source of {}: patch failed (is the fix for this "
                        "kernel version?):\n{}",
                        d, t.release, tail_of(r->output, 3000));
  }
  return p;
}

Result<CompiledUnits> compile_units(const PreparedTree& t, const std::vector<std::string>& units,
                                    const std::string& dest_dir) {
  std::vector<std::string> argv = kbuild_argv(t);
  argv.insert(argv.begin() + 4, "-j" + std::to_string(std::max(1u, std::thread::hardware_concurrency())));
  argv.insert(argv.begin() + 4, "-k");
  argv.push_back(kKcflags);
  std::error_code ec;
  for (const auto& u : units) {
    const std::string o = u.substr(0, u.size() - 2) + ".o";
    fs::remove(t.obj_dir + "/" + o, ec);  // never reuse an object of an earlier run
    argv.push_back(o);
  }
  auto r = run_process(argv);
  if (!r) return r.error().wrap("compile kernel units");
  CompiledUnits out;
  for (const auto& u : units) {
    const std::string o = u.substr(0, u.size() - 2) + ".o";
    const std::string built = t.obj_dir + "/" + o;
    if (!fs::exists(built)) {
      out.failed.push_back(u);
      out.log = tail_of(r->output, 4000);
      continue;
    }
    CompiledUnit cu;
    cu.unit = u;
    cu.object = dest_dir + "/" + o;
    fs::create_directories(fs::path(cu.object).parent_path(), ec);
    fs::copy_file(built, cu.object, fs::copy_options::overwrite_existing, ec);
    if (ec) return make_error("copy {}: {}", built, ec.message());
    // kbuild's command line says whether the unit is part of a module, and which.
    const std::string cmd_file =
        (fs::path(built).parent_path() / ("." + fs::path(built).filename().string() + ".cmd"))
            .string();
    auto cmd = read_file(cmd_file, 8u << 20);
    if (!cmd) return cmd.error().wrap("read kbuild's command of " + u);
    std::string first(cmd->substr(0, cmd->find('\n')));
    cu.kernel_object = "vmlinux";
    if (first.find(" -DMODULE ") != std::string::npos) {
      static const std::regex modname("-DKBUILD_MODNAME='\"([A-Za-z0-9_]+)\"'");
      std::smatch m;
      if (!std::regex_search(first, m, modname))
        return make_error("kbuild's command of {} names no module (KBUILD_MODNAME)", u);
      cu.kernel_object = m[1];
    }
    out.units.push_back(std::move(cu));
  }
  return out;
}

}  // namespace nines::klp
