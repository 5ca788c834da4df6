#include "gen/object_dwarf.h"

namespace nines::gen {

Result<ObjectDwarf> ObjectDwarf::open(const std::string& path) {
  static char* debuginfo_path = nullptr;
  static const Dwfl_Callbacks callbacks = {
      .find_elf = nullptr,
      .find_debuginfo = dwfl_standard_find_debuginfo,
      .section_address = dwfl_offline_section_address,
      .debuginfo_path = &debuginfo_path,
  };
  ObjectDwarf o;
  o.dwfl_.reset(dwfl_begin(&callbacks));
  if (!o.dwfl_) return make_error("{}: dwfl_begin: {}", path, dwfl_errmsg(-1));
  Dwfl_Module* mod = dwfl_report_offline(o.dwfl_.get(), "", path.c_str(), -1);
  if (!mod) return make_error("{}: read DWARF: {}", path, dwfl_errmsg(-1));
  dwfl_report_end(o.dwfl_.get(), nullptr, nullptr);
  Dwarf_Addr bias = 0;
  o.dwarf_ = dwfl_module_getdwarf(mod, &bias);
  if (!o.dwarf_)
    return make_error("{}: no DWARF ({}); the generator compiles with -g", path, dwfl_errmsg(-1));
  return o;
}

void ObjectDwarf::for_each_cu(const std::function<void(Dwarf_Die*)>& f) const {
  Dwarf_Off off = 0, next = 0;
  size_t hsize = 0;
  while (dwarf_nextcu(dwarf_, off, &next, &hsize, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu;
    if (dwarf_offdie(dwarf_, off + hsize, &cu)) f(&cu);
    off = next;
  }
}

uint64_t die_udata(Dwarf_Die* d, int attr, uint64_t dflt) {
  Dwarf_Attribute a;
  Dwarf_Word w;
  if (dwarf_attr_integrate(d, attr, &a) && dwarf_formudata(&a, &w) == 0) return w;
  return dflt;
}

std::string die_name(Dwarf_Die* d) {
  const char* n = dwarf_diename(d);
  return n ? n : "";
}

}  // namespace nines::gen
