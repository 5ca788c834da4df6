#include "klp/build.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/clock.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "klp/modgen.h"
#include "klp/spec.h"
#include "klp/symbols.h"

namespace fs = std::filesystem;

namespace nines::klp {
namespace {

// A stable 32-bit FNV-1a of what makes a build distinct: two builds of one patch id
// (v1, v2) get different module names, so v2 can load while v1 is still loaded.
std::string build_suffix(const std::vector<std::string>& parts) {
  uint32_t h = 2166136261u;
  for (const auto& p : parts) {
    for (unsigned char c : p) h = (h ^ c) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
  }
  return fmt::format("{:08x}", h);
}

std::string find_include_dir(const std::string& given) {
  std::vector<std::string> c;
  if (!given.empty()) c.push_back(given);
  if (const char* env = std::getenv("NINES_INCLUDE_DIR")) c.emplace_back(env);
#ifdef NINES_INCLUDE_DIR_BUILD
  c.emplace_back(NINES_INCLUDE_DIR_BUILD);
#endif
#ifdef NINES_INCLUDE_DIR_INSTALL
  c.emplace_back(NINES_INCLUDE_DIR_INSTALL);
#endif
  c.emplace_back("/usr/local/include");
  c.emplace_back("/usr/include");
  for (const auto& d : c)
    if (fs::exists(fs::path(d) / "nines" / "kpatch.h")) return d;
  return {};
}

// The .ko of a module object, from modules.dep of the kernel's module folder.
std::string find_module_file(const std::string& modules_dir, const std::string& module) {
  auto dep = read_file(modules_dir + "/modules.dep");
  if (!dep) return {};
  for (auto line : split(*dep, '\n')) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string rel(line.substr(0, colon));
    std::string base = module_name_of(basename_of(rel));
    if (base == module + ".ko") return modules_dir + "/" + rel;
  }
  return {};
}

// Removes the work folder unless asked to keep it.
struct WorkDir {
  std::string path;
  bool keep = false;
  ~WorkDir() {
    if (!path.empty() && !keep) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

}  // namespace

std::string kernel_cache_dir() {
  const char* env = std::getenv("NINES_KERNEL_CACHE");
  return env && *env ? env : kDefaultKernelCache;
}

Result<BuildResult> build(const BuildOptions& in) {
  Stopwatch sw;
  BuildOptions o = in;
  if (o.release.empty())
    return make_error("build kernel patch: no kernel release given (--kernel RELEASE)");
  if (o.output.empty()) return make_error("build kernel patch: no output given (-o OUT.patch)");
  if (o.sources.empty()) return make_error("build kernel patch: no source files given");
  if (o.headers_dir.empty()) o.headers_dir = "/usr/src/linux-headers-" + o.release;
  if (o.kernel_dir.empty()) o.kernel_dir = kernel_cache_dir() + "/" + o.release;
  if (o.id.empty()) {
    o.id = fs::path(o.output).stem().string();
  }
  if (!fs::exists(o.headers_dir + "/Makefile") || !fs::exists(o.headers_dir + "/Module.symvers")) {
    return make_error(
        "build kernel patch {}: headers of {} not found in {} (no Makefile or Module.symvers): "
        "install linux-headers-{} (scripts/kernel-setup) or pass --headers DIR",
        o.id, o.release, o.headers_dir, o.release);
  }
  const std::string include_dir = find_include_dir(o.include_dir);
  if (include_dir.empty())
    return make_error("build kernel patch {}: <nines/kpatch.h> not found (set NINES_INCLUDE_DIR)",
                      o.id);

  // 1. What the sources ask for.
  PatchSpec spec;
  std::vector<std::string> abs_sources, hash_parts{o.id, o.release};
  for (const auto& s : o.sources) {
    std::string text = NINES_TRY(read_file(s, 16u << 20));
    NINES_CHECK(scan_patch_source(text, s, spec));
    abs_sources.push_back(fs::absolute(s).lexically_normal().string());
    hash_parts.push_back(std::move(text));
  }
  if (spec.replacements.empty()) {
    return make_error("build kernel patch {}: the sources replace nothing (no NINES_REPLACE)",
                      o.id);
  }

  // 2. Where the kernel's symbols are.
  KernelSymbols syms;
  syms.add_symvers(NINES_TRY(read_file(o.headers_dir + "/Module.symvers")));
  if (auto map = read_file(o.kernel_dir + "/System.map"); map) syms.add_system_map(*map);
  if (!syms.has_system_map()) {
    spdlog::warn(
        "build kernel patch {}: no System.map in {}: static symbols get sympos 0 and "
        "are checked only when the kernel loads the patch",
        o.id, o.kernel_dir);
  }
  std::string modules_dir = o.kernel_dir + "/modules";
  if (!fs::exists(modules_dir + "/modules.dep")) modules_dir = "/lib/modules/" + o.release;
  std::vector<std::string> module_objects;
  for (const auto& obj : spec.objects()) {
    if (obj == kVmlinux) continue;
    module_objects.push_back(obj);
    std::string ko = find_module_file(modules_dir, obj);
    if (ko.empty()) {
      spdlog::warn(
          "build kernel patch {}: module {} not found under {}: its symbols are "
          "checked only when the kernel loads it",
          o.id, obj, modules_dir);
      continue;
    }
    NINES_CHECK(syms.add_module_file(obj, ko));
  }

  ModuleSource src;
  src.patch_id = o.id;
  src.source_paths = abs_sources;
  src.spec = spec;
  src.module_name = module_name_for(o.id, build_suffix(hash_parts));
  KernelPatchMeta meta;
  meta.id = o.id;
  meta.release = o.release;
  if (auto bid = read_file(o.kernel_dir + "/build-id"); bid)
    meta.build_id = std::string(trim(*bid));
  meta.module_name = src.module_name;
  for (const auto& r : spec.replacements) {
    auto pos = syms.function_pos(r.object, r.old_name, spec.hints);
    if (!pos) return pos.error().wrap(fmt::format("build kernel patch {}", o.id));
    src.old_sympos.push_back(*pos);
    meta.functions.push_back({r.old_name, r.new_name, r.object, *pos});
  }

  // 3. Generate and compile with kbuild.
  WorkDir work;
  work.keep = o.keep_work_dir;
  {
    char tmpl[] = "/tmp/nines-klp-XXXXXX";
    if (!mkdtemp(tmpl)) return errno_error("build kernel patch: mkdtemp /tmp/nines-klp-XXXXXX");
    work.path = tmpl;
  }
  // With prebuilt objects the module is composite: its C becomes <module>_main.c and the
  // objects are shipped to kbuild as <module>_objN.o_shipped.
  std::vector<std::string> shipped;
  for (size_t i = 0; i < o.objects.size(); ++i) {
    shipped.push_back(fmt::format("{}_obj{}.o", src.module_name, i));
    std::error_code ec;
    fs::copy_file(o.objects[i], work.path + "/" + shipped.back() + "_shipped", ec);
    if (ec) return make_error("build kernel patch {}: copy {}: {}", o.id, o.objects[i], ec.message());
    // modpost reads each object's kbuild command file (for the module's srcversion).
    NINES_CHECK(write_file_atomic(fmt::format("{}/.{}.cmd", work.path, shipped.back()),
                                  fmt::format("cmd_{0} := cp {0}_shipped {0}\n", shipped.back())));
  }
  const std::string c_name = shipped.empty() ? src.module_name : src.module_name + "_main";
  NINES_CHECK(write_file_atomic(work.path + "/" + c_name + ".c", generate_module_c(src)));
  NINES_CHECK(write_file_atomic(work.path + "/Kbuild",
                                generate_kbuild(src.module_name, include_dir, shipped)));
  Stopwatch make_sw;
  auto made = run_process(
      {"make", "-C", o.headers_dir, "M=" + work.path, "modules", "KBUILD_MODPOST_WARN=1"});
  if (!made) return made.error().wrap(fmt::format("build kernel patch {}: run make", o.id));
  const std::string ko = work.path + "/" + src.module_name + ".ko";
  if (made->exit_code != 0 || !fs::exists(ko)) {
    std::string tail =
        made->output.size() > 6000 ? made->output.substr(made->output.size() - 6000) : made->output;
    return make_error("build kernel patch {}: kbuild against {} failed (exit {}):\n{}", o.id,
                      o.headers_dir, made->exit_code, tail);
  }
  spdlog::debug("kbuild took {:.2f} s", make_sw.elapsed_us() / 1e6);

  // 4. Into the livepatch ELF format, with the metadata.
  auto resolver = [&](const std::string& name) -> Result<KlpSymbol> {
    if (auto it = o.klp_aliases.find(name); it != o.klp_aliases.end()) return it->second;
    return syms.resolve(name, module_objects, spec.hints);
  };
  auto exported = [&](const std::string& n) { return !o.klp_aliases.count(n) && syms.exported(n); };
  auto write_meta = [&](const std::vector<KlpSymbol>& created) {
    for (const auto& k : created) meta.klp_symbols.push_back(k.klp_name());
    return meta_to_json(meta).dump();
  };
  auto report = rewrite_livepatch_module(ko, exported, resolver, write_meta);
  if (!report) return report.error().wrap(fmt::format("build kernel patch {}", o.id));

  std::string bytes = NINES_TRY(read_file(ko));
  NINES_CHECK(write_file_atomic(o.output, bytes, 0644));
  BuildResult res;
  res.meta = meta;
  res.klp = *report;
  res.work_dir = work.keep ? work.path : std::string();
  res.seconds = sw.elapsed_us() / 1e6;
  return res;
}

}  // namespace nines::klp
