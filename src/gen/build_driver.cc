#include "gen/build_driver.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/fd.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "gen/unified_diff.h"

namespace nines::gen {

namespace fs = std::filesystem;

Result<BuildCommand> detect_build(const std::string& tree) {
  auto has = [&](const char* f) { return fs::exists(fs::path(tree) / f); };
  if (has("CMakeLists.txt"))
    return BuildCommand{"cmake -S . -B _nines_build -DCMAKE_BUILD_TYPE=None >/dev/null && "
                        "cmake --build _nines_build -j2", "cmake"};
  if (has("meson.build"))
    return BuildCommand{"meson setup _nines_build >/dev/null && ninja -C _nines_build", "meson"};
  if (has("configure")) return BuildCommand{"./configure >/dev/null && make -j2", "autotools"};
  if (has("autogen.sh"))
    return BuildCommand{"./autogen.sh >/dev/null && ./configure >/dev/null && make -j2", "autotools"};
  if (has("buildconf.sh"))
    return BuildCommand{"./buildconf.sh >/dev/null && ./configure >/dev/null && make -j2", "autotools"};
  if (has("Makefile") || has("makefile") || has("GNUmakefile")) return BuildCommand{"make -j2", "make"};
  return make_error("{}: no CMakeLists.txt, meson.build, configure, autogen.sh, buildconf.sh or "
                    "Makefile at its root: say how to build it with --build 'COMMAND'", tree);
}

static std::string absolute(const std::string& cwd, const std::string& p) {
  fs::path path(p);
  if (path.is_relative()) path = fs::path(cwd) / path;
  return path.lexically_normal().string();
}

static std::string output_of(const Invocation& inv) {
  for (size_t i = 0; i < inv.args.size(); ++i) {
    if (inv.args[i] == "-o" && i + 1 < inv.args.size()) return absolute(inv.cwd, inv.args[i + 1]);
    if (starts_with(inv.args[i], "-o") && inv.args[i].size() > 2)
      return absolute(inv.cwd, inv.args[i].substr(2));
  }
  return "";
}

static bool has_arg(const Invocation& inv, std::string_view a) {
  return std::find(inv.args.begin(), inv.args.end(), a) != inv.args.end();
}

std::vector<Compilation> BuildRecord::compilations() const {
  std::vector<Compilation> out;
  for (const auto& inv : invocations) {
    if (!has_arg(inv, "-c")) continue;
    std::string source;
    for (size_t i = 0; i < inv.args.size(); ++i) {
      const std::string& a = inv.args[i];
      if (a == "-o" || a == "-MF" || a == "-MT" || a == "-MQ" || a == "-include" || a == "-x") {
        ++i;
        continue;
      }
      if (!a.empty() && a[0] != '-' && (is_c_source(a) || a.ends_with(".S") || a.ends_with(".s")))
        source = absolute(inv.cwd, a);
    }
    std::string object = output_of(inv);
    if (object.empty() && !source.empty())
      object = absolute(inv.cwd, fs::path(source).stem().string() + ".o");
    if (!source.empty()) out.push_back({source, object});
  }
  return out;
}

static std::string soname_of(const Invocation& inv) {
  for (size_t i = 0; i < inv.args.size(); ++i) {
    const std::string& a = inv.args[i];
    for (const char* p : {"-Wl,-soname,", "-Wl,-soname=", "-Wl,-h,", "-Wl,--soname="})
      if (starts_with(a, p)) return a.substr(strlen(p));
    if ((a == "-Wl,-soname" || a == "-Wl,-h") && i + 1 < inv.args.size() &&
        starts_with(inv.args[i + 1], "-Wl,"))
      return inv.args[i + 1].substr(4);
  }
  return "";
}

Result<TargetLink> BuildRecord::target_link(const std::string& file_name,
                                            const std::string& soname) const {
  const Invocation* found = nullptr;
  std::vector<std::string> seen;
  for (const auto& inv : invocations) {
    if (has_arg(inv, "-c") || has_arg(inv, "-E") || has_arg(inv, "-S")) continue;
    std::string out = output_of(inv);
    if (out.empty()) continue;
    std::string base = basename_of(out);
    seen.push_back(base);
    if (base == file_name || (!soname.empty() && (base == soname || soname_of(inv) == soname)))
      found = &inv;
  }
  if (!found)
    return make_error("the build linked no {}{} (it linked: {})", file_name,
                      soname.empty() ? "" : " nor anything with soname " + soname,
                      seen.empty() ? std::string("nothing") : fmt::format("{}", fmt::join(seen, ", ")));
  TargetLink link;
  link.output = output_of(*found);
  for (const auto& a : found->args)
    if (!a.empty() && a[0] != '-' && (a.ends_with(".o") || a.ends_with(".a")))
      link.objects.push_back(absolute(found->cwd, a));
  return link;
}

// The wrapper: records its invocation (one file per call, so parallel builds do not
// interleave), then runs the real compiler, adding the generator's flags to compilations.
static std::string wrapper_script(const std::string& real) {
  return fmt::format(R"(#!/bin/sh
# Written by nines build --diff: records this compiler call, then runs {0}.
if [ -n "$NINES_GEN_RECORDS" ]; then
  f=$(mktemp "$NINES_GEN_RECORDS/call.XXXXXXXX") && {{ printf '%s\0' "$PWD" "$@" > "$f"; }}
fi
for a in "$@"; do
  if [ "$a" = "-c" ]; then exec {0} "$@" -ffunction-sections -fdata-sections -g; fi
done
exec {0} "$@"
)", real);
}

static Result<std::string> find_in_path(const std::string& name) {
  const char* path = getenv("PATH");
  for (auto dir : split(path ? path : "/usr/bin:/bin", ':')) {
    std::string p = std::string(dir) + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return make_error("{} not found in PATH", name);
}

static Result<std::vector<Invocation>> read_records(const std::string& dir) {
  std::vector<Invocation> out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    std::error_code ec;
    return fs::last_write_time(a, ec) < fs::last_write_time(b, ec);
  });
  for (const auto& f : files) {
    std::string text = NINES_TRY(read_file(f.string(), 1 << 20));
    Invocation inv;
    size_t start = 0;
    bool first = true;
    while (start < text.size()) {
      size_t nul = text.find('\0', start);
      if (nul == std::string::npos) break;
      std::string field = text.substr(start, nul - start);
      if (first) inv.cwd = field;
      else inv.args.push_back(field);
      first = false;
      start = nul + 1;
    }
    if (!inv.cwd.empty()) out.push_back(std::move(inv));
  }
  return out;
}

// The permission bits of a file, to write it back as it was (0644 when absent).
static int file_mode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : 0644;
}

static constexpr const char* kWrapperVersion = "nines-gen-wrapper-1";

// FNV-1a: a cache key, not a security boundary (the cache is root's).
static std::string fnv_hex(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

// The newest modification time under `dir`: a tree edited since it was cached gets a
// new key.
static int64_t newest_mtime(const std::string& dir) {
  int64_t newest = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) == 0) newest = std::max<int64_t>(newest, st.st_mtim.tv_sec);
  }
  return newest;
}

Result<BuildDriver> BuildDriver::prepare(const DriverOptions& opts) {
  BuildDriver d;
  std::error_code ec;
  if (!fs::is_directory(opts.source, ec)) return make_error("--source {}: not a folder", opts.source);
  std::string source = fs::canonical(opts.source).string();
  BuildCommand command = opts.command;
  if (command.command.empty()) command = NINES_TRY(detect_build(source));
  d.command_ = command;
  if (opts.cache_root.empty()) {
    d.home_ = fs::absolute(opts.work).lexically_normal().string();
  } else {
    d.cache_key_ = fnv_hex(fmt::format("{}\n{}\n{}\n{}", source, newest_mtime(source),
                                       command.command, kWrapperVersion));
    d.home_ = fs::absolute(opts.cache_root).lexically_normal().string() + "/" + d.cache_key_;
    fs::create_directories(d.home_, ec);
    if (ec) return make_error("create {}: {}", d.home_, ec.message());
    d.lock_ = NINES_TRY(Fd::open(d.home_ + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (flock(d.lock_.get(), LOCK_EX) != 0) return errno_error("flock " + d.home_ + ".lock");
  }
  d.tree_ = d.home_ + "/tree";
  d.bin_ = d.home_ + "/bin";
  d.records_ = d.home_ + "/records";
  bool reuse = d.cached() && fs::exists(d.home_ + "/ready") && !fs::exists(d.home_ + "/dirty");
  if (!reuse) {
    fs::remove(d.home_ + "/ready", ec);
    fs::remove(d.home_ + "/dirty", ec);
    fs::remove_all(d.tree_, ec);
    fs::remove_all(d.records_, ec);
    fs::remove_all(d.originals_dir(), ec);
    fs::create_directories(d.tree_, ec);
    if (ec) return make_error("create {}: {}", d.tree_, ec.message());
    NINES_TRY(run_checked({"cp", "-a", source + "/.", d.tree_}));
  }
  fs::create_directories(d.bin_, ec);
  if (ec) return make_error("create {}: {}", d.bin_, ec.message());
  for (auto [name, real] : {std::pair{"cc", "gcc"}, {"gcc", "gcc"}, {"c++", "g++"}, {"g++", "g++"}}) {
    auto path = find_in_path(real);
    if (!path) continue;
    NINES_CHECK(write_file_atomic(d.bin_ + "/" + name, wrapper_script(*path), 0755));
  }
  return d;
}

BuildDriver::~BuildDriver() {
  if (!saved_.empty()) (void)restore();
}

std::optional<BuildRecord> BuildDriver::cached_original() const {
  if (!cached() || !fs::exists(home_ + "/ready")) return std::nullopt;
  auto inv = read_records(records_ + "/original");
  if (!inv) return std::nullopt;
  BuildRecord r;
  r.invocations = std::move(*inv);
  return r;
}

Status BuildDriver::mark_original_ready() {
  if (!cached()) return {};
  return write_file_atomic(home_ + "/ready", command_.command + "\n");
}

Result<BuildRecord> BuildDriver::build(const std::string& label) {
  ++builds_;
  std::string dir = records_ + "/" + label;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return make_error("create {}: {}", dir, ec.message());
  const char* path = getenv("PATH");
  std::vector<std::string> argv = {"env",
                                   "CC=" + bin_ + "/cc",
                                   "CXX=" + bin_ + "/c++",
                                   "PATH=" + bin_ + ":" + (path ? path : "/usr/bin:/bin"),
                                   "NINES_GEN_RECORDS=" + dir,
                                   "sh", "-c", command_.command};
  auto r = NINES_TRY(run_process(argv, tree_));
  if (r.exit_code != 0) {
    std::string tail = r.output.size() > 3000 ? r.output.substr(r.output.size() - 3000) : r.output;
    return make_error("the {} build ({}) failed with status {}:\n{}", label, command_.command,
                      r.exit_code, tail);
  }
  BuildRecord rec;
  rec.invocations = NINES_TRY(read_records(dir));
  return rec;
}

Result<UnifiedDiff> BuildDriver::apply_diff(const std::string& diff_text, const std::string& name) {
  UnifiedDiff parsed = NINES_TRY(parse_unified_diff(diff_text, name));
  for (const auto& f : parsed.files) {
    std::string path = tree_ + "/" + f.path;
    std::optional<std::string> content;
    if (fs::exists(path)) content = NINES_TRY(read_file(path, 256u << 20));
    if (!saved_.count(f.path)) saved_[f.path] = content;
    // The C files as the diffs make them, without our #line directives.
    if (raw_.count(f.path) && content) NINES_CHECK(write_file_atomic(path, raw_[f.path], file_mode(path)));
  }
  if (cached()) NINES_CHECK(write_file_atomic(home_ + "/dirty", "diffs applied\n"));
  std::string diff_path = home_ + "/current.diff";
  NINES_CHECK(write_file_atomic(diff_path, diff_text));
  auto r = NINES_TRY(run_process({"patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch",
                                  "-r", "-", "-i", diff_path, "-d", tree_}));
  if (r.exit_code != 0)
    return make_error("{} does not apply to the source tree:\n{}", name, r.output);

  // Each C file changed so far: the fresh diff from its original to what the diffs made
  // of it, rewritten with #line directives, makes the file that is compiled.
  UnifiedDiff fresh;
  fresh.name = name;
  for (const auto& [rel, orig] : saved_) {
    if (!is_c_source(rel) && !is_c_header(rel)) continue;
    std::string path = tree_ + "/" + rel;
    if (!orig || !fs::exists(path)) continue;
    std::string raw = NINES_TRY(read_file(path, 256u << 20));
    raw_[rel] = raw;
    std::string orig_path = home_ + "/orig.c";
    NINES_CHECK(write_file_atomic(orig_path, *orig));
    auto d = NINES_TRY(run_process({"diff", "-u", "--label", "a/" + rel, "--label", "b/" + rel,
                                    orig_path, path}));
    if (d.exit_code == 0) continue;
    if (d.exit_code != 1) return make_error("diff {} failed: {}", rel, d.output);
    UnifiedDiff file_diff = with_line_directives(NINES_TRY(parse_unified_diff(d.output, name)));
    NINES_CHECK(write_file_atomic(path, *orig, file_mode(path)));
    NINES_CHECK(write_file_atomic(diff_path, file_diff.text()));
    auto again = NINES_TRY(run_process({"patch", "-p1", "--batch", "--no-backup-if-mismatch",
                                        "-r", "-", "-i", diff_path, "-d", tree_}));
    if (again.exit_code != 0)
      return make_error("{}: the line directives for {} do not apply:\n{}", name, rel, again.output);
    for (auto& f : file_diff.files) fresh.files.push_back(std::move(f));
  }
  for (const auto& f : parsed.files)
    if (!is_c_source(f.path) && !is_c_header(f.path)) fresh.files.push_back(f);
  return fresh;
}

Status BuildDriver::restore() {
  for (const auto& [rel, content] : saved_) {
    std::string path = tree_ + "/" + rel;
    if (content) {
      // A new modification time: the next build compiles the file again.
      NINES_CHECK(write_file_atomic(path, *content, file_mode(path)));
    } else {
      std::error_code ec;
      fs::remove(path, ec);
    }
  }
  saved_.clear();
  raw_.clear();
  std::error_code ec;
  if (cached()) fs::remove(home_ + "/dirty", ec);
  return {};
}

}  // namespace nines::gen
