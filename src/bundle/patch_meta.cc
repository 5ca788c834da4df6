#include "bundle/patch_meta.h"

#include <gelf.h>
#include <libelf.h>

#include <vector>

namespace nines::bundle {
namespace {

// Owns an Elf handle so every return path ends it.
struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};

Error elf_error(std::string_view what) {
  return make_error("read patch metadata: {}: {}", what, elf_errmsg(-1));
}

std::string json_string(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

Status reconcile_field(std::string& manifest_value, std::string patch_value,
                       std::string_view field) {
  if (patch_value.empty()) return {};
  if (field == "target.build_id")
    for (char& c : patch_value)
      if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  if (manifest_value.empty()) {
    manifest_value = patch_value;
    return {};
  }
  if (manifest_value != patch_value)
    return make_error("manifest {} '{}' contradicts the patch object ('{}')", field, manifest_value,
                      patch_value);
  return {};
}

}  // namespace

Result<nlohmann::json> read_patch_meta(std::string_view elf_bytes) {
  if (elf_version(EV_CURRENT) == EV_NONE) return elf_error("elf_version");
  // elf_memory wants a writable buffer; libelf only reads it with ELF_C_READ_MMAP semantics.
  std::vector<char> buf(elf_bytes.begin(), elf_bytes.end());
  std::unique_ptr<Elf, ElfCloser> elf(elf_memory(buf.data(), buf.size()));
  if (!elf) return elf_error("elf_memory");
  if (elf_kind(elf.get()) != ELF_K_ELF) return make_error("read patch metadata: not an ELF file");
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf.get(), &shstrndx) != 0) return elf_error("elf_getshdrstrndx");
  for (Elf_Scn* scn = elf_nextscn(elf.get(), nullptr); scn; scn = elf_nextscn(elf.get(), scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) return elf_error("gelf_getshdr");
    const char* name = elf_strptr(elf.get(), shstrndx, sh.sh_name);
    if (!name || std::string_view(name) != ".nines.meta") continue;
    if (sh.sh_type == SHT_NOBITS) return make_error("read patch metadata: .nines.meta is NOBITS");
    if (sh.sh_size > kMaxMetaBytes)
      return make_error("read patch metadata: .nines.meta is {} bytes, limit {}", sh.sh_size,
                        kMaxMetaBytes);
    // libelf checks that the section lies inside the image before handing out its data.
    Elf_Data* d = elf_getdata(scn, nullptr);
    if (!d) return elf_error(".nines.meta data");
    std::string_view text(static_cast<const char*>(d->d_buf), d->d_buf ? d->d_size : 0);
    while (!text.empty() && text.back() == '\0') text.remove_suffix(1);
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      return make_error("read patch metadata: .nines.meta is not a JSON object");
    auto f = j.find("format");
    if (f == j.end() || !f->is_number_integer() || f->get<int64_t>() != 1)
      return make_error("read patch metadata: .nines.meta \"format\" is not 1");
    return j;
  }
  return make_error("read patch metadata: no .nines.meta section (not a nines patch object)");
}

Status reconcile_with_patch(Manifest& m, const nlohmann::json& meta) {
  std::string kind = json_string(meta, "kind");
  if (kind != "userspace" && kind != "kernel")
    return make_error("patch object: .nines.meta kind '{}' is not userspace or kernel", kind);
  NINES_CHECK(reconcile_field(m.kind, kind, "kind"));
  NINES_CHECK(reconcile_field(m.id, json_string(meta, "id"), "id"));
  if (kind == "userspace") {
    auto t = meta.find("target");
    if (t != meta.end() && t->is_object()) {
      NINES_CHECK(reconcile_field(m.target_name, json_string(*t, "name"), "target.name"));
      NINES_CHECK(
          reconcile_field(m.target_build_id, json_string(*t, "build_id"), "target.build_id"));
    }
  } else {
    auto k = meta.find("kernel");
    if (k != meta.end() && k->is_object()) {
      NINES_CHECK(reconcile_field(m.kernel_release, json_string(*k, "release"), "target.release"));
      NINES_CHECK(
          reconcile_field(m.target_build_id, json_string(*k, "build_id"), "target.build_id"));
    }
  }
  return {};
}

Status check_payload_matches(const Manifest& m, std::string_view payload) {
  auto meta = read_patch_meta(payload);
  if (!meta) return meta.error().wrap("payload is not a nines patch object");
  Manifest filled = m;  // reconcile fills what the manifest leaves empty; only conflicts count
  auto s = reconcile_with_patch(filled, *meta);
  if (!s) return s.error().wrap("manifest contradicts its payload");
  return {};
}

}  // namespace nines::bundle
