// `--source deb:PKG=VERSION`: the tree a Debian binary package was built from, fetched with
// `apt-get source` (deb-src lines needed; apt checks the files against the signed Release
// file) and unpacked with `dpkg-source -x`, Debian's patches applied, into a cache that
// later generations reuse.
#pragma once

#include <string>

#include "core/result.h"

namespace nines::gen {

// True when `source` has the form deb:PKG=VERSION.
bool is_deb_source(const std::string& source);

// The unpacked tree of deb:PKG=VERSION under `cache_root` (fetched on first use). Fails
// naming the package when apt-get or dpkg-source fail (no deb-src line, unknown version).
Result<std::string> fetch_deb_source(const std::string& source, const std::string& cache_root);

}  // namespace nines::gen
