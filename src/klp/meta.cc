#include "klp/meta.h"

#include <algorithm>

#include "bundle/patch_meta.h"

namespace nines::klp {

nlohmann::json meta_to_json(const KernelPatchMeta& m) {
  nlohmann::json fns = nlohmann::json::array();
  for (const auto& f : m.functions)
    fns.push_back({{"name", f.name},
                   {"replacement", f.replacement},
                   {"object", f.object},
                   {"sympos", f.sympos}});
  return {{"format", 1},
          {"kind", "kernel"},
          {"id", m.id},
          {"kernel", {{"release", m.release}, {"build_id", m.build_id}}},
          {"module", m.module_name},
          {"functions", fns},
          {"klp_symbols", m.klp_symbols}};
}

Result<KernelPatchMeta> meta_from_json(const nlohmann::json& j) {
  auto str = [&](const nlohmann::json& o, const char* key,
                 const char* field) -> Result<std::string> {
    auto it = o.find(key);
    if (it == o.end() || !it->is_string())
      return make_error("kernel patch metadata: {} is missing or not a string", field);
    return it->get<std::string>();
  };
  if (!j.is_object()) return make_error("kernel patch metadata: not a JSON object");
  KernelPatchMeta m;
  std::string kind = NINES_TRY(str(j, "kind", "kind"));
  if (kind != "kernel")
    return make_error("kernel patch metadata: kind is '{}', not 'kernel' (a user-space patch?)",
                      kind);
  m.id = NINES_TRY(str(j, "id", "id"));
  auto k = j.find("kernel");
  if (k == j.end() || !k->is_object())
    return make_error("kernel patch metadata: kernel is missing");
  m.release = NINES_TRY(str(*k, "release", "kernel.release"));
  if (m.release.empty()) return make_error("kernel patch metadata: kernel.release is empty");
  if (k->contains("build_id")) m.build_id = NINES_TRY(str(*k, "build_id", "kernel.build_id"));
  m.module_name = NINES_TRY(str(j, "module", "module"));
  if (m.module_name.empty() || m.module_name.size() > 55 ||
      !std::all_of(m.module_name.begin(), m.module_name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
      }))
    return make_error("kernel patch metadata: module '{}' is not a module name", m.module_name);
  auto fns = j.find("functions");
  if (fns == j.end() || !fns->is_array() || fns->empty())
    return make_error("kernel patch metadata: functions is missing or empty");
  for (size_t i = 0; i < fns->size(); ++i) {
    const auto& f = (*fns)[i];
    if (!f.is_object())
      return make_error("kernel patch metadata: functions[{}] is not an object", i);
    KernelFunction kf;
    kf.name = NINES_TRY(str(f, "name", "functions[].name"));
    kf.replacement = NINES_TRY(str(f, "replacement", "functions[].replacement"));
    // Optional members, type-checked: json::value() throws on another type, and converts a
    // float to an integer by a cast (undefined out of range).
    kf.object = "vmlinux";
    if (auto o = f.find("object"); o != f.end()) {
      if (!o->is_string())
        return make_error("kernel patch metadata: functions[{}].object is not a string", i);
      kf.object = o->get<std::string>();
    }
    if (auto p = f.find("sympos"); p != f.end()) {
      if (!p->is_number_integer())
        return make_error("kernel patch metadata: functions[{}].sympos is not an integer", i);
      kf.sympos = p->get<int64_t>();
    }
    m.functions.push_back(std::move(kf));
  }
  if (auto s = j.find("klp_symbols"); s != j.end() && s->is_array())
    for (const auto& x : *s)
      if (x.is_string()) m.klp_symbols.push_back(x.get<std::string>());
  return m;
}

Result<KernelPatchMeta> read_kernel_meta(std::string_view ko_bytes) {
  nlohmann::json j = NINES_TRY(bundle::read_patch_meta(ko_bytes));
  return meta_from_json(j);
}

}  // namespace nines::klp
