#include "gen/deb_source.h"

#include <filesystem>

#include "core/fd.h"
#include "core/strings.h"
#include "core/subprocess.h"

namespace nines::gen {

namespace fs = std::filesystem;

bool is_deb_source(const std::string& source) { return starts_with(source, "deb:"); }

// Package names and versions as Debian policy allows them: nothing a shell or a path
// could misread.
static bool valid(std::string_view s, std::string_view extra) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && extra.find(c) == std::string_view::npos)
      return false;
  return true;
}

Result<std::string> fetch_deb_source(const std::string& source, const std::string& cache_root) {
  std::string spec = source.substr(4);
  size_t eq = spec.find('=');
  if (eq == std::string::npos)
    return make_error("--source {}: give deb:PACKAGE=VERSION (e.g. deb:expat=2.5.0-1+deb12u1)", source);
  std::string pkg = spec.substr(0, eq), version = spec.substr(eq + 1);
  if (!valid(pkg, "+-.") || !valid(version, "+-.~:"))
    return make_error("--source {}: not a Debian package name and version", source);
  std::string dir = fmt::format("{}/deb/{}_{}", cache_root.empty() ? "/var/cache/nines/gen" : cache_root,
                                pkg, version);
  std::string tree = dir + "/tree";
  if (fs::exists(dir + "/complete")) return tree;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir + "/download", ec);
  if (ec) return make_error("create {}: {}", dir, ec.message());
  auto got = run_process({"apt-get", "source", "--download-only", "-q", pkg + "=" + version},
                         dir + "/download");
  if (!got) return got.error();
  if (got->exit_code != 0)
    return make_error("apt-get source {}={} failed (deb-src lines for the archive? scripts/setup "
                      "adds them):\n{}", pkg, version, got->output);
  std::string dsc;
  for (const auto& e : fs::directory_iterator(dir + "/download"))
    if (e.path().extension() == ".dsc") dsc = e.path().string();
  if (dsc.empty()) return make_error("apt-get source {}={} fetched no .dsc", pkg, version);
  // apt verified the files against the signed Release file; dpkg-source has no keyring.
  auto x = run_process({"dpkg-source", "--no-check", "-x", dsc, tree});
  if (!x) return x.error();
  if (x->exit_code != 0) return make_error("dpkg-source -x {} failed:\n{}", dsc, x->output);
  NINES_CHECK(write_file_atomic(dir + "/complete", source + "\n"));
  return tree;
}

}  // namespace nines::gen
