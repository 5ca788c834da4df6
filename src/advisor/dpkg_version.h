// Debian version comparison, exactly as dpkg and apt do it: through libapt-pkg, loaded on
// demand (issue 12: the `nines` executable keeps no DT_NEEDED on heavy libraries, and
// only `nines check` with CVE data pays for it).
//
// How: dlopen("libapt-pkg.so.6.0") and dlsym("debVS"), apt's global versioning object (a
// C++ object at namespace scope: its symbol name is not mangled). Comparisons are virtual
// calls through the class declared in <apt-pkg/version.h>, which need no link-time
// symbol; only the object's address comes from the library.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

class pkgVersioningSystem;

namespace nines::advisor {

class DpkgVersions {
 public:
  // Loads `library` (default: apt's runtime library, package libapt-pkg6.0). Fails naming
  // the library and dlerror() when it or its versioning object is missing.
  static Result<DpkgVersions> load(const std::string& library = "libapt-pkg.so.6.0");

  // <0, 0, >0 as dpkg --compare-versions orders a and b (epochs, "~", revisions).
  int compare(std::string_view a, std::string_view b) const;

  bool less(std::string_view a, std::string_view b) const { return compare(a, b) < 0; }

 private:
  explicit DpkgVersions(pkgVersioningSystem* vs) : vs_(vs) {}
  pkgVersioningSystem* vs_;  // lives as long as the process: the library is never closed
};

}  // namespace nines::advisor
