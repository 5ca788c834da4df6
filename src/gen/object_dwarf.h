// The DWARF of a relocatable object, relocated (libdwfl applies its .rela.debug_*
// sections; libdw alone would read unrelocated string offsets in an ET_REL file).
#pragma once

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include <functional>
#include <memory>
#include <string>

#include "core/result.h"

namespace nines::gen {

class ObjectDwarf {
 public:
  // Fails when the object has no DWARF (it must be compiled with -g).
  static Result<ObjectDwarf> open(const std::string& path);
  // Calls `f` with the root DIE of every compilation unit.
  void for_each_cu(const std::function<void(Dwarf_Die*)>& f) const;

 private:
  struct Closer {
    void operator()(Dwfl* d) const { dwfl_end(d); }
  };
  std::unique_ptr<Dwfl, Closer> dwfl_;
  Dwarf* dwarf_ = nullptr;
};

// A DIE's attribute as an unsigned number (following DW_AT_abstract_origin), or `dflt`.
uint64_t die_udata(Dwarf_Die* d, int attr, uint64_t dflt = 0);
std::string die_name(Dwarf_Die* d);

}  // namespace nines::gen
