#include "gen/generate.h"

#include <elf.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/fd.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "elf/elf_file.h"
#include "elf/relocatable.h"
#include "gen/build_driver.h"
#include "gen/deb_source.h"
#include "gen/layout_diff.h"
#include "gen/object_diff.h"
#include "gen/patch_unit.h"
#include "gen/source_lines.h"
#include "gen/target_symbols.h"
#include "gen/unified_diff.h"
#include "ulp/builder.h"
#include "ulp/symbols.h"

namespace nines::gen {

namespace fs = std::filesystem;

std::string_view to_string(ReportLine::Kind k) {
  switch (k) {
    case ReportLine::Kind::kReplaced: return "replaced";
    case ReportLine::Kind::kNewFunction: return "new function";
    case ReportLine::Kind::kNewData: return "new data";
    case ReportLine::Kind::kNoCodeChange: return "no code change";
    case ReportLine::Kind::kNotInTarget: return "not in the target";
    case ReportLine::Kind::kNote: return "note";
  }
  return "?";
}

namespace {

// One changed translation unit, both builds of it read.
struct Unit {
  std::string source;        // absolute, in the work tree
  std::string relative;      // from the tree's root (as the diffs name it)
  std::string original_path, patched_path;
  elf::RelocatableObject original, patched;
  ObjectDiff diff;
  UnitPlan plan;
  SourceLines lines;         // of the patched build
  SourceLines original_lines;  // of the original build (what gcc inlined there)
};

struct Pipeline {
  const GenerateOptions& opts;
  GenerateResult result;
  std::string work;
  std::optional<elf::ElfFile> target;
  std::optional<TargetSymbols> symbols;
  std::vector<std::string> texts;      // the diffs as given
  std::vector<UnifiedDiff> diffs;      // as applied: exact lines, #line directives added
  std::optional<BuildDriver> driver;
  TargetLink link;
  std::map<std::string, std::string> source_of_object;  // object -> source
  std::map<std::string, std::string> snapshot;          // object -> copy of the original
  std::vector<Unit> units;

  void report(ReportLine::Kind k, std::string subject, std::string detail) {
    result.report.push_back({k, std::move(subject), std::move(detail)});
  }

  std::string relative(const std::string& abs) const {
    return fs::path(abs).lexically_relative(driver->tree()).string();
  }

  // Pass 1: the target's identity and symbols.
  Status read_target() {
    target = NINES_TRY(elf::ElfFile::open(opts.target));
    if (target->build_id().empty())
      return make_error("{}: has no build-id; nines identifies the objects it patches by "
                        "build-id (link with --build-id)", opts.target);
    symbols = NINES_TRY(TargetSymbols::of(*target, opts.target));
    return {};
  }

  // Pass 2: the diffs, checked (the #line directives are added as they are applied).
  Status read_diffs() {
    if (opts.diffs.empty()) return make_error("nines build: no --diff given");
    for (const auto& path : opts.diffs) {
      std::string text = NINES_TRY(read_file(path, 64u << 20));
      NINES_TRY(parse_unified_diff(text, path));
      texts.push_back(std::move(text));
    }
    return {};
  }

  // Pass 3: the original build (or the cached one), and the objects of the target's
  // link set aside.
  Status build_original() {
    std::string source = opts.source;
    if (is_deb_source(source)) {
      source = NINES_TRY(fetch_deb_source(source, opts.cache_dir));
      report(ReportLine::Kind::kNote, opts.source, "source package unpacked in " + source);
    }
    DriverOptions d{source, work + "/build", opts.cache_dir,
                    {opts.build_command, opts.build_command.empty() ? "" : "given"}};
    driver = NINES_TRY(BuildDriver::prepare(d));
    result.build_system = driver->command().system + ": " + driver->command().command;
    std::optional<BuildRecord> rec = driver->cached_original();
    bool fresh = !rec;
    if (fresh) rec = NINES_TRY(driver->build("original"));
    else report(ReportLine::Kind::kNote, "original build", "reused from the cache");
    link = NINES_TRY(rec->target_link(basename_of(opts.target), target->soname()));
    for (const auto& c : rec->compilations()) source_of_object[c.object] = c.source;
    std::string dir = driver->originals_dir();
    fs::create_directories(dir);
    int n = 0;
    for (const auto& obj : link.objects) {
      if (obj.ends_with(".a")) {
        report(ReportLine::Kind::kNote, relative(obj),
               "an archive in the target's link: its members are not compared");
        continue;
      }
      std::string copy = fmt::format("{}/{}-{}", dir, n++, basename_of(obj));
      if (fresh) {
        std::error_code ec;
        fs::copy_file(obj, copy, fs::copy_options::overwrite_existing, ec);
        if (ec) return make_error("copy {}: {}", obj, ec.message());
      }
      snapshot[obj] = copy;
    }
    if (fresh) NINES_CHECK(driver->mark_original_ready());
    return {};
  }

  // Pass 4: the diffs applied, the tree built again.
  Status build_patched() {
    // Each result holds the C files' cumulative fresh diff and that diff's other files:
    // the report reads the C files from the last one only.
    for (size_t i = 0; i < texts.size(); ++i) {
      UnifiedDiff d = NINES_TRY(driver->apply_diff(texts[i], opts.diffs[i]));
      if (i + 1 < texts.size())
        std::erase_if(d.files, [](const FileDiff& f) { return is_c_source(f.path) || is_c_header(f.path); });
      diffs.push_back(std::move(d));
    }
    NINES_TRY(driver->build("patched"));
    return {};
  }

  // Pass 5: the objects that changed, compared.
  Status compare() {
    for (const auto& [obj, copy] : snapshot) {
      std::string before = NINES_TRY(read_file(copy, size_t{1} << 30));
      auto after = read_file(obj, size_t{1} << 30);
      if (!after) return make_error("{}: missing after the patched build", obj);
      if (before == *after) continue;
      Unit u;
      auto src = source_of_object.find(obj);
      u.source = src == source_of_object.end() ? obj : src->second;
      u.relative = relative(u.source);
      u.original_path = copy;
      u.patched_path = obj;
      u.original = NINES_TRY(elf::RelocatableObject::from_bytes(before, copy));
      u.patched = NINES_TRY(elf::RelocatableObject::from_bytes(*after, obj));
      if (u.patched.find_section(".gnu.lto_.symtab.0") || u.patched.find_section(".gnu.lto_.opts"))
        return make_error("{}: built with -flto; the generator compares machine code and "
                          "needs a build without link-time optimisation", obj);
      u.diff = NINES_TRY(diff_objects(u.original, u.patched));
      auto ol = NINES_TRY(read_struct_layouts(copy));
      auto pl = NINES_TRY(read_struct_layouts(obj));
      for (auto& why : compare_layouts(ol, pl))
        result.refusals.push_back(fmt::format("{}: {}", u.relative, why));
      u.lines = read_source_lines(obj, u.source);
      u.original_lines = read_source_lines(copy, u.source);
      units.push_back(std::move(u));
    }
    return {};
  }

  // Pass 6: what each unit brings, what is refused; and the report of the diffs' hunks.
  void decide() {
    for (auto& u : units) {
      UnitInput in{u.relative, &u.original, &u.patched, &u.diff};
      u.plan = plan_unit(in);
      for (auto& r : u.plan.refusals) result.refusals.push_back(r);
    }
    report_hunks();
  }

  // Is a line range of `file` covered by a function the patch carries, or by a function
  // inlined into one?
  bool hunk_has_code(const std::string& file, const Hunk& h) const {
    for (const auto& u : units) {
      if (u.relative != file && !is_c_header(file)) continue;
      for (const auto& sd : u.diff.symbols) {
        if (sd.change == Change::kSame) continue;
        const std::string& name = u.patched.symbol(sd.patched).name;
        if (own_lines_touched(u, name, file, h) ||
            u.lines.touches(name, file, h.first_changed_old, h.last_changed_old))
          return true;
        for (const auto& callee : u.original_lines.inlined_into(name))
          if (u.lines.own_lines_touched(callee, file, h.first_changed_old, h.last_changed_old))
            return true;
      }
      if (u.relative == file && u.lines.functions.empty()) return true;  // no DWARF: assume so
    }
    return false;
  }

  void report_hunks() {
    std::set<std::string> compiled;
    for (const auto& [obj, src] : source_of_object)
      if (snapshot.count(obj)) compiled.insert(relative(src));
    for (const auto& d : diffs)
      for (const auto& f : d.files) {
        bool c_file = is_c_source(f.path) || is_c_header(f.path);
        if (!c_file || (is_c_source(f.path) && !compiled.count(f.path))) {
          report(ReportLine::Kind::kNotInTarget, f.path,
                 fmt::format("{} hunk(s): not compiled into {}", f.hunks.size(), basename_of(opts.target)));
          continue;
        }
        for (const auto& h : f.hunks)
          if (!hunk_has_code(f.path, h))
            report(ReportLine::Kind::kNoCodeChange,
                   fmt::format("{}:{}-{}", f.path, h.first_changed_old, h.last_changed_old),
                   "the hunk changes no function of the target");
      }
  }

  // The hunks count lines of the original file: the original build's DWARF says where
  // each existing function lies; the patched build's, where a new one does.
  static bool own_lines_touched(const Unit& u, const std::string& name, const std::string& file,
                                const Hunk& h) {
    return u.original_lines.own_lines_touched(name, file, h.first_changed_old, h.last_changed_old) ||
           u.lines.own_lines_touched(name, file, h.first_changed_old, h.last_changed_old);
  }

  // Why a replaced function is in the patch: its own lines changed, or it inlines a
  // function whose lines changed, or only its machine code did.
  std::string reason(const Unit& u, const std::string& name) const {
    for (const auto& d : diffs)
      for (const auto& f : d.files)
        for (const auto& h : f.hunks)
          if (own_lines_touched(u, name, f.path, h))
            return "changed in the diff";
    std::vector<std::string> via;
    std::set<std::string> inlined = u.lines.inlined_into(name);
    for (const auto& callee : u.original_lines.inlined_into(name)) inlined.insert(callee);
    for (const auto& callee : inlined)
      for (const auto& d : diffs)
        for (const auto& f : d.files)
          for (const auto& h : f.hunks)
            if (own_lines_touched(u, callee, f.path, h) &&
                std::find(via.begin(), via.end(), callee) == via.end())
              via.push_back(callee);
    if (!via.empty())
      return fmt::format("gcc inlined the changed {} into it", fmt::join(via, ", "));
    return "its machine code changed (a callee's clone or a constant it uses changed)";
  }

  // Pass 7: emit each unit, link them into the patch object.
  Result<std::string> emit_and_link(std::vector<EmittedUnit>& emitted) {
    std::set<std::string> globals;
    for (const auto& u : units) globals.insert(u.plan.globals.begin(), u.plan.globals.end());
    std::vector<std::string> objects;
    int n = 0;
    for (auto& u : units) {
      if (u.plan.sections.empty()) continue;
      UnitInput in{u.relative, &u.original, &u.patched, &u.diff};
      EmittedUnit e = emit_unit(in, u.plan, *symbols, globals, n);
      for (auto& r : e.refusals) result.refusals.push_back(r);
      std::string path = fmt::format("{}/unit{}.o", work, n++);
      NINES_CHECK(elf::write_relocatable(e.object, path));
      objects.push_back(path);
      for (const auto& r : e.replacements)
        report(ReportLine::Kind::kReplaced, r.name, fmt::format("{}: {}", u.relative, reason(u, r.name)));
      for (const auto& f : u.plan.new_functions)
        report(ReportLine::Kind::kNewFunction, f, u.relative);
      for (const auto& d : u.plan.new_data) report(ReportLine::Kind::kNewData, d, u.relative);
      emitted.push_back(std::move(e));
    }
    if (objects.empty()) return std::string();
    std::string so = work + "/patch.so";
    std::vector<std::string> cmd = {"gcc"};
    for (const auto& f : ulp::patch_compile_flags()) cmd.push_back(f);
    cmd.insert(cmd.end(), {"-Wl,-z,noexecstack", "-o", so});
    cmd.insert(cmd.end(), objects.begin(), objects.end());
    auto linked = run_checked(cmd);
    if (!linked) return linked.error().wrap("nines build: linking the generated patch");
    return so;
  }

  // Pass 8: the metadata, checked against the target, and the output.
  Status verify_and_write(const std::string& so_path, const std::vector<EmittedUnit>& emitted) {
    elf::ElfFile so = NINES_TRY(elf::ElfFile::open(so_path));
    NINES_CHECK(ulp::check_loadable(so));
    std::map<std::string, uint64_t> markers;
    for (const auto& s : so.symbols())
      if (starts_with(s.name, "__nines_u")) markers[s.name] = s.value;
    auto at = [&](const std::string& marker) -> Result<uint64_t> {
      auto it = markers.find(marker);
      if (it == markers.end()) return make_error("the linked patch lost its marker {}", marker);
      return it->second;
    };
    ulp::PatchMeta& meta = result.meta;
    meta.id = opts.id;
    if (meta.id.empty()) {
      meta.id = basename_of(opts.output);
      if (auto dot = meta.id.rfind('.'); dot != std::string::npos && dot > 0) meta.id.resize(dot);
    }
    meta.target_name = target->soname().empty() ? basename_of(opts.target) : target->soname();
    meta.target_build_id = target->build_id_hex();
    for (const auto& e : emitted) {
      for (const auto& r : e.replacements) {
        elf::Symbol sym;
        sym.name = r.name;
        sym.type = STT_FUNC;
        sym.value = r.target_offset;
        sym.size = r.target_size;
        auto ok = ulp::check_replaceable(sym, r.name, opts.target,
                                         ulp::entry_bytes(*target, r.target_offset), {});
        if (!ok) {
          result.refusals.push_back(ok.error().message);
          continue;
        }
        meta.functions.push_back({r.name, r.name, r.target_offset, r.target_size,
                                  NINES_TRY(at(r.marker)) + r.offset});
      }
      for (const auto& f : e.fixups)
        meta.target_relocs.push_back(
            {NINES_TRY(at(f.marker)) + f.offset,
             f.kind == TargetFixup::Kind::kPc32 ? ulp::TargetReloc::Kind::kPc32
                                                : ulp::TargetReloc::Kind::kAbs64,
             f.symbol, f.target_offset, f.addend});
    }
    if (!result.refusals.empty()) return {};
    if (meta.functions.empty()) return {};
    return ulp::embed_meta(so_path, meta, opts.output);
  }
};

}  // namespace

Result<GenerateResult> generate_patch(const GenerateOptions& opts) {
  if (opts.output.empty()) return make_error("nines build: no output given (-o OUT.patch)");
  if (opts.source.empty()) return make_error("nines build: --diff needs --source DIR");
  Pipeline p{opts, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  p.work = opts.work_dir.empty() ? opts.output + ".work" : opts.work_dir;
  std::error_code ec;
  fs::create_directories(p.work, ec);
  if (ec) return make_error("create {}: {}", p.work, ec.message());
  p.work = fs::canonical(p.work).string();
  // The work folder goes, whatever the outcome, unless asked to keep it.
  struct RemoveWork {
    const std::string& dir;
    bool keep;
    ~RemoveWork() {
      std::error_code ignored;
      if (!keep) fs::remove_all(dir, ignored);
    }
  } remove_work{p.work, opts.keep_work};

  NINES_CHECK(p.read_target());
  NINES_CHECK(p.read_diffs());
  NINES_CHECK(p.build_original());
  NINES_CHECK(p.build_patched());
  NINES_CHECK(p.compare());
  NINES_CHECK(p.driver->restore());
  p.decide();
  if (p.result.refusals.empty()) {
    std::vector<EmittedUnit> emitted;
    std::string so = NINES_TRY(p.emit_and_link(emitted));
    if (!so.empty() && p.result.refusals.empty()) NINES_CHECK(p.verify_and_write(so, emitted));
  }
  return std::move(p.result);
}

std::string format_report(const GenerateResult& r, const GenerateOptions& opts) {
  std::string out;
  if (!r.refusals.empty()) {
    out += fmt::format("refused: {} cannot be live patched safely:\n", opts.diffs.size() == 1 ? opts.diffs[0] : "the fix");
    for (const auto& why : r.refusals) out += "  - " + why + "\n";
  } else if (r.meta.functions.empty()) {
    out += "no function of the target changes: nothing to patch, no output written\n";
  } else {
    out += fmt::format("generated {}: patch {} for {} (build-id {}), {} function(s) replaced\n",
                       opts.output, r.meta.id, r.meta.target_name, r.meta.target_build_id,
                       r.meta.functions.size());
  }
  out += fmt::format("  build: {}\n", r.build_system);
  for (const auto& l : r.report)
    out += fmt::format("  {}: {}{}{}\n", to_string(l.kind), l.subject, l.detail.empty() ? "" : " -- ", l.detail);
  return out;
}

}  // namespace nines::gen
