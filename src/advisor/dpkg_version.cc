#include "advisor/dpkg_version.h"

#include <dlfcn.h>

#include <apt-pkg/debversion.h>

namespace nines::advisor {

Result<DpkgVersions> DpkgVersions::load(const std::string& library) {
  // RTLD_LOCAL: apt's symbols stay out of the global namespace. Never dlclose'd: apt's
  // static objects (debVS among them) then live until exit, as in any apt program.
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    return make_error(
        "compare Debian versions: load {}: {} (install the package libapt-pkg6.0)", library,
        ::dlerror());
  void* vs = ::dlsym(handle, "debVS");
  if (!vs)
    return make_error("compare Debian versions: {} has no versioning object debVS: {}", library,
                      ::dlerror());
  // debVersioningSystem derives from pkgVersioningSystem alone: the same address.
  return DpkgVersions(static_cast<debVersioningSystem*>(vs));
}

int DpkgVersions::compare(std::string_view a, std::string_view b) const {
  // A virtual call: the vtable of apt's object points into the library.
  return vs_->DoCmpVersion(a.data(), a.data() + a.size(), b.data(), b.data() + b.size());
}

}  // namespace nines::advisor
