#include "ulp/patch_object.h"

#include "core/strings.h"

namespace nines::ulp {

using nlohmann::json;

Result<json> read_patch_meta(std::string_view elf_bytes) {
  auto elf = NINES_TRY(elf::ElfFile::from_bytes(std::string(elf_bytes), "patch object"));
  auto data = elf.section_data(kMetaSection);
  if (!data) return make_error("patch object: no {} section (not built by nines build?)", kMetaSection);
  json j = json::parse(*data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return make_error("patch object: {} is not a JSON object", kMetaSection);
  return j;
}

json meta_to_json(const PatchMeta& m) {
  json fns = json::array();
  for (const auto& f : m.functions)
    fns.push_back({{"name", f.name}, {"replacement", f.replacement},
                   {"target_offset", f.target_offset}, {"target_size", f.target_size},
                   {"replacement_offset", f.replacement_offset}});
  json j = {{"format", 1}, {"kind", "userspace"}, {"id", m.id},
            {"target", {{"name", m.target_name}, {"build_id", m.target_build_id}}},
            {"functions", fns}};
  if (!m.target_relocs.empty()) {
    json rel = json::array();
    for (const auto& r : m.target_relocs)
      rel.push_back({{"offset", r.offset},
                     {"type", r.kind == TargetReloc::Kind::kPc32 ? "pc32" : "abs64"},
                     {"symbol", r.symbol}, {"target_offset", r.target_offset},
                     {"addend", r.addend}});
    j["target_relocs"] = rel;
  }
  return j;
}

Result<PatchMeta> meta_from_json(const json& j) {
  auto str = [&](const json& o, const char* k) -> Result<std::string> {
    if (!o.is_object() || !o.contains(k) || !o[k].is_string())
      return make_error("patch metadata: field '{}' missing or not a string", k);
    return o[k].get<std::string>();
  };
  auto u64 = [&](const json& o, const char* k) -> Result<uint64_t> {
    if (!o.contains(k) || !o[k].is_number_unsigned())
      return make_error("patch metadata: field '{}' missing or not an unsigned number", k);
    return o[k].get<uint64_t>();
  };
  if (!j.is_object() || !j.contains("format") || j["format"] != 1)
    return make_error("patch metadata: unknown format (this nines reads format 1)");
  std::string kind = NINES_TRY(str(j, "kind"));
  if (kind != "userspace")
    return make_error("patch metadata: kind is '{}', not a user-space patch", kind);
  PatchMeta m;
  m.id = NINES_TRY(str(j, "id"));
  if (m.id.empty() || m.id.size() > 128)
    return make_error("patch metadata: id must be 1 to 128 characters");
  if (!j.contains("target")) return make_error("patch metadata: field 'target' missing");
  m.target_name = NINES_TRY(str(j["target"], "name"));
  m.target_build_id = NINES_TRY(str(j["target"], "build_id"));
  if (m.target_build_id.empty() || !from_hex(m.target_build_id))
    return make_error("patch metadata: target.build_id is not hex");
  if (!j.contains("functions") || !j["functions"].is_array() || j["functions"].empty())
    return make_error("patch metadata: 'functions' must be a non-empty array");
  if (j["functions"].size() > 4096) return make_error("patch metadata: too many functions");
  for (const auto& f : j["functions"]) {
    FunctionPatch fp;
    fp.name = NINES_TRY(str(f, "name"));
    fp.replacement = NINES_TRY(str(f, "replacement"));
    fp.target_offset = NINES_TRY(u64(f, "target_offset"));
    fp.target_size = NINES_TRY(u64(f, "target_size"));
    fp.replacement_offset = NINES_TRY(u64(f, "replacement_offset"));
    m.functions.push_back(std::move(fp));
  }
  if (j.contains("target_relocs")) {
    const json& rel = j["target_relocs"];
    if (!rel.is_array() || rel.size() > (1u << 20))
      return make_error("patch metadata: 'target_relocs' must be an array of at most 2^20 entries");
    for (const auto& r : rel) {
      TargetReloc tr;
      tr.offset = NINES_TRY(u64(r, "offset"));
      std::string type = NINES_TRY(str(r, "type"));
      if (type == "pc32") tr.kind = TargetReloc::Kind::kPc32;
      else if (type == "abs64") tr.kind = TargetReloc::Kind::kAbs64;
      else return make_error("patch metadata: target_relocs type '{}' is not pc32 or abs64", type);
      tr.symbol = NINES_TRY(str(r, "symbol"));
      tr.target_offset = NINES_TRY(u64(r, "target_offset"));
      if (!r.contains("addend") || !r["addend"].is_number_integer())
        return make_error("patch metadata: field 'addend' missing or not an integer");
      tr.addend = r["addend"].get<int64_t>();
      m.target_relocs.push_back(std::move(tr));
    }
  }
  return m;
}

Result<PatchObject> load_patch_object(std::string bytes, const std::string& what) {
  auto elf = elf::ElfFile::from_bytes(std::move(bytes), what);
  if (!elf) return elf.error();
  auto data = elf->section_data(kMetaSection);
  if (!data) return make_error("{}: no {} section (not built by nines build?)", what, kMetaSection);
  json j = json::parse(*data, nullptr, false);
  if (j.is_discarded()) return make_error("{}: {} is not valid JSON", what, kMetaSection);
  auto meta = meta_from_json(j);
  if (!meta) return meta.error().wrap(what);
  if (elf->elf_type() != 3 /* ET_DYN */)
    return make_error("{}: not a shared object; rebuild it with nines build", what);
  return PatchObject{std::move(*elf), std::move(*meta)};
}

}  // namespace nines::ulp
