// The kernel tree a generated patch is compiled in (issue 14, step 1): the source of
// exactly RELEASE, configured and prepared once per release, then only the translation
// units a fix touches compiled before and after the fix.
//
//   <cache>/<release>/tree   a copy of the source (hard links where possible: files the
//                            diff touches are replaced by private copies first, so the
//                            given source is never written)
//   <cache>/<release>/obj    the O= build folder: RELEASE's .config and Module.symvers,
//                            `olddefconfig` (must leave the .config unchanged: another
//                            compiler or missing tools show up as a changed .config) and
//                            `modules_prepare`, stamped `prepared` once done
//   <cache>/<release>/lock   one generator per release at a time (flock)
//
// Units are compiled by kbuild itself (`make O=obj path/file.o`), so they get exactly the
// flags of the Debian build, plus KCFLAGS="-ffunction-sections -fdata-sections".
#pragma once

#include <string>
#include <vector>

#include "core/fd.h"
#include "core/result.h"

namespace nines::klp {

// Where prepared trees live: $NINES_KGEN_CACHE or /var/cache/nines/kgen.
std::string kgen_cache_dir();
// Where Debian kernel sources are fetched to: $NINES_KERNEL_SOURCE_CACHE or
// /var/cache/nines/kernel-source.
std::string kernel_source_cache_dir();

// The Debian package version of RELEASE's headers (`linux-headers-RELEASE`): installed,
// else the archive's candidate. Fails naming the package.
Result<std::string> debian_version_of(const std::string& release);

// The pristine tree of linux-source-6.1 at `version` ("6.1.192-3"): fetched with
// `apt-get download` and unpacked once into the source cache. Returns its folder.
Result<std::string> fetch_debian_source(const std::string& version);

// Resolves --source: a folder (checked to be a kernel tree of RELEASE's version: its
// Makefile's VERSION.PATCHLEVEL.SUBLEVEL must be the headers' one) or "deb:linux=VERSION"
// (or "deb:" alone: RELEASE's own package version).
Result<std::string> resolve_source(const std::string& source, const std::string& release,
                                   const std::string& headers_dir);

// The compiler RELEASE was built with, from the headers' .config (CONFIG_CC_VERSION_TEXT,
// e.g. "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"): the program name and that text.
struct Toolchain {
  std::string cc;            // "gcc-12"
  std::string version_text;  // CONFIG_CC_VERSION_TEXT
};
// Fails when the headers name no compiler, or when `cc --version` says something else.
Result<Toolchain> check_toolchain(const std::string& headers_dir);

struct PreparedTree {
  std::string release, source_dir, root, tree_dir, obj_dir, headers_dir;
  Toolchain toolchain;
  bool prepared_now = false;  // false: reused from the cache
  double prepare_seconds = 0;
  Fd lock;                    // held while the tree is in use
};

// Copies, configures and prepares the tree of `release` from `source_dir` (once; later
// calls reuse it). Fails when the config of the prepared tree differs from the headers'
// (naming the first differing options), or naming kbuild's error.
Result<PreparedTree> prepare_tree(const std::string& release, const std::string& source_dir,
                                  const std::string& headers_dir);

// What a set of unified diffs touches (`patch -p1` paths).
struct DiffFiles {
  std::vector<std::string> c_files;      // translation units (.c)
  std::vector<std::string> headers;      // .h files
  std::vector<std::string> other_files;  // documentation, Kconfig, Makefiles, ...
};
Result<DiffFiles> files_of_diffs(const std::vector<std::string>& diffs);

// The units (.c, relative to the tree) that include one of `headers`, directly or
// through other headers, found by their #include lines (limited to `max_units`: a header
// the whole kernel includes is refused naming it and the count).
Result<std::vector<std::string>> units_including(const PreparedTree& t,
                                                 const std::vector<std::string>& headers,
                                                 size_t max_units);

// Applies the diffs to the tree copy (files they touch are first made private copies).
// The returned guard's restore() (also run by its destructor) puts the pristine files back
// as new files, so kbuild sees them as changed and rebuilds what depends on them.
class PatchedFiles {
 public:
  PatchedFiles() = default;
  PatchedFiles(PatchedFiles&&) noexcept;
  PatchedFiles& operator=(PatchedFiles&&) = delete;
  ~PatchedFiles();
  Status restore();

 private:
  friend Result<PatchedFiles> apply_diffs(const PreparedTree&, const std::vector<std::string>&,
                                          const DiffFiles&);
  const PreparedTree* tree_ = nullptr;
  std::vector<std::string> files_;
  bool active_ = false;
};
Result<PatchedFiles> apply_diffs(const PreparedTree& t, const std::vector<std::string>& diffs,
                                 const DiffFiles& files);

// One compiled unit: where its object was copied, and which kernel object it belongs to
// (from kbuild's command line: -DMODULE with KBUILD_MODNAME, else vmlinux).
struct CompiledUnit {
  std::string unit;    // "fs/proc/cmdline.c"
  std::string object;  // copy of the .o
  std::string kernel_object;  // "vmlinux" or a module name ("binfmt_misc")
};

struct CompiledUnits {
  std::vector<CompiledUnit> units;
  std::vector<std::string> failed;  // units kbuild could not build
  std::string log;                  // the tail of kbuild's output when some failed
};
// Compiles `units` with kbuild in the prepared tree (make -k: one unit that does not
// build in RELEASE's configuration does not stop the others) and copies each object into
// `dest_dir` (same relative path).
Result<CompiledUnits> compile_units(const PreparedTree& t, const std::vector<std::string>& units,
                                    const std::string& dest_dir);

}  // namespace nines::klp
