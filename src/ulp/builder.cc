#include "ulp/builder.h"

#include <elf.h>
#include <limits.h>
#include <unistd.h>

#include <filesystem>

#include "core/fd.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "proc/arch_x86_64.h"
#include "ulp/symbols.h"

namespace nines::ulp {

namespace fs = std::filesystem;

std::vector<std::string> patch_compile_flags() {
  return {"-O2", "-g", "-fPIC", "-shared", "-nostartfiles", "-fno-plt",
          "-Wl,-Bsymbolic", "-Wl,-z,now", "-Wl,--build-id", "-Wl,--no-undefined-version"};
}

Result<std::string> find_include_dir() {
  std::vector<fs::path> candidates;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    fs::path dir = fs::path(exe).parent_path();
    candidates.push_back(dir / "../include");
    candidates.push_back(dir / "../../include");
    candidates.push_back(dir / "../../../include");
  }
#ifdef NINES_SOURCE_INCLUDE_DIR
  candidates.emplace_back(NINES_SOURCE_INCLUDE_DIR);
#endif
  candidates.emplace_back("/usr/local/include");
  candidates.emplace_back("/usr/include");
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::exists(c / "nines" / "patch.h", ec)) return fs::weakly_canonical(c, ec).string();
  }
  return make_error("cannot find <nines/patch.h> next to the nines binary or under /usr/include");
}

// Pairs "old\0new\0" from .nines.replace.
static Result<std::vector<std::pair<std::string, std::string>>> read_replacements(const elf::ElfFile& so) {
  auto data = so.section_data(kReplaceSection);
  if (!data || data->empty())
    return make_error("the patch marks no replacement: use NINES_REPLACE(old_function, new_function)");
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::string> words;
  std::string cur;
  for (char c : *data) {
    if (c == 0) {
      if (!cur.empty()) words.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (words.size() % 2) return make_error("malformed {} section", kReplaceSection);
  for (size_t i = 0; i < words.size(); i += 2) out.emplace_back(words[i], words[i + 1]);
  return out;
}

// File offset of a virtual address in an object.
static std::optional<uint64_t> file_offset(const elf::ElfFile& f, uint64_t vaddr) {
  for (const auto& s : f.segments())
    if (s.type == PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz)
      return s.offset + (vaddr - s.vaddr);
  return std::nullopt;
}

std::string entry_bytes(const elf::ElfFile& target, uint64_t vaddr) {
  if (auto off = file_offset(target, vaddr); off && *off < target.bytes().size())
    return std::string(target.bytes().substr(*off, 16));
  return "";
}

Status check_loadable(const elf::ElfFile& so) {
  for (const auto& seg : so.segments())
    if (seg.type == PT_TLS)
      return make_error("nines build: the patch defines thread-local variables; not supported");
  for (const auto& r : so.dynamic_relocs()) {
    switch (r.type) {
      case R_X86_64_NONE: case R_X86_64_RELATIVE: case R_X86_64_64:
      case R_X86_64_GLOB_DAT: case R_X86_64_JUMP_SLOT:
        break;
      default:
        return make_error("nines build: the patch needs relocation type {} ({}), which the "
                          "loader does not apply (thread-local or copy relocations?)",
                          r.type, r.sym_name.empty() ? "no symbol" : r.sym_name);
    }
  }
  return {};
}

Status embed_meta(const std::string& so_path, const PatchMeta& meta, const std::string& output) {
  std::string meta_path = output + ".meta.json";
  NINES_CHECK(write_file_atomic(meta_path, meta_to_json(meta).dump(2)));
  auto added = run_checked({"objcopy", "--add-section", std::string(kMetaSection) + "=" + meta_path,
                            "--set-section-flags", std::string(kMetaSection) + "=readonly",
                            so_path, output});
  unlink(meta_path.c_str());
  if (!added) return added.error().wrap("nines build: embedding the metadata");
  return {};
}

Status check_replaceable(const elf::Symbol& sym, const std::string& name, const std::string& object,
                         const std::string& entry, const std::vector<std::string>& ifunc_candidates) {
  if (sym.type == STT_GNU_IFUNC) {
    std::string hint = ifunc_candidates.empty()
                           ? std::string("(install the object's debug symbols to see them)")
                           : fmt::format("(candidates: {})", fmt::join(ifunc_candidates, ", "));
    return make_error("{}: '{}' is an IFUNC resolver, not code; name the implementation that "
                      "processes resolve it to instead {}", object, name, hint);
  }
  if (sym.type != STT_FUNC)
    return make_error("{}: '{}' is not a function", object, name);
  size_t skip = arch::entry_skip(reinterpret_cast<const uint8_t*>(entry.data()), entry.size());
  if (sym.size < skip + arch::kJumpSize)
    return make_error("{}: function '{}' is {} bytes long, too short for a {}-byte redirect{}",
                      object, name, sym.size, arch::kJumpSize, skip ? " after its endbr64" : "");
  return {};
}

Result<PatchMeta> build_patch(const BuildOptions& opts) {
  if (opts.sources.empty()) return make_error("nines build: no source file given");
  if (opts.output.empty()) return make_error("nines build: no output given (-o OUT.patch)");
  auto target = elf::ElfFile::open(opts.target);
  if (!target) return target.error().wrap("nines build: target");
  if (target->build_id().empty())
    return make_error("{}: has no build-id; nines identifies the objects it patches by "
                      "build-id (link with --build-id)", opts.target);
  std::string include_dir = opts.include_dir;
  if (include_dir.empty()) include_dir = NINES_TRY(find_include_dir());

  std::string tmp = opts.output + ".tmp.so";
  std::vector<std::string> cmd = {opts.compiler, "-I", include_dir};
  for (const auto& f : patch_compile_flags()) cmd.push_back(f);
  for (const auto& f : opts.extra_cflags) cmd.push_back(f);
  cmd.push_back("-o");
  cmd.push_back(tmp);
  for (const auto& s : opts.sources) cmd.push_back(s);
  auto compiled = run_checked(cmd);
  if (!compiled) return compiled.error().wrap("nines build: compiling the patch");

  auto so = elf::ElfFile::open(tmp);
  if (!so) {
    unlink(tmp.c_str());
    return so.error();
  }
  auto fail = [&](Error e) -> Result<PatchMeta> {
    unlink(tmp.c_str());
    return e;
  };

  PatchMeta meta;
  meta.id = opts.id;
  if (meta.id.empty()) {
    meta.id = basename_of(opts.output);
    if (auto dot = meta.id.rfind('.'); dot != std::string::npos && dot > 0) meta.id.resize(dot);
  }
  meta.target_name = target->soname().empty() ? basename_of(opts.target) : target->soname();
  meta.target_build_id = target->build_id_hex();

  auto pairs = read_replacements(*so);
  if (!pairs) return fail(pairs.error());
  SymbolTable tsyms = SymbolTable::of(*target);
  SymbolTable psyms = SymbolTable::of(*so);
  for (const auto& [old_name, new_name] : *pairs) {
    auto sym = tsyms.find(old_name, opts.target);
    if (!sym) return fail(sym.error().wrap("nines build"));
    std::string entry = entry_bytes(*target, sym->value);
    std::vector<std::string> cands;
    if (sym->type == STT_GNU_IFUNC) cands = tsyms.functions_like(old_name);
    auto ok = check_replaceable(*sym, old_name, opts.target, entry, cands);
    if (!ok) return fail(ok.error().wrap("nines build"));
    auto nsym = psyms.find(new_name, "patch");
    if (!nsym || nsym->type != STT_FUNC)
      return fail(make_error("nines build: replacement '{}' is not a function defined by the patch", new_name));
    meta.functions.push_back({old_name, new_name, sym->value, sym->size, nsym->value});
  }

  // Refuse what the loader does not do, now rather than at apply time.
  if (auto ok = check_loadable(*so); !ok) return fail(ok.error());
  auto embedded = embed_meta(tmp, meta, opts.output);
  unlink(tmp.c_str());
  if (!embedded) return embedded.error();
  return meta;
}

}  // namespace nines::ulp
