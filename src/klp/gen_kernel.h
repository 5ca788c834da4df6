// `nines build --kernel RELEASE --source DIR --diff FIX.patch`: a kernel live patch
// generated from a fix's diff and the source of exactly RELEASE (issue 14). The passes:
//
//   check the toolchain   the compiler RELEASE's headers name, and nothing else
//   the tree              RELEASE's source, configured and prepared once (klp/gen_tree.h)
//   read the diffs        rewritten with #line so unchanged code keeps its __LINE__ (gen)
//   compile, twice        only the units the diffs touch (and those including a changed
//                         header), before and after, by kbuild with -ffunction-sections
//   compare               function by function (gen::diff_objects), structure layouts
//                         (gen::compare_layouts)
//   decide and emit       one object per changed unit (klp/gen_object.h)
//   module                the hand path's module generation, kbuild and `.klp.rela`
//                         rewriting (klp/build.h), so the output is an ordinary kernel patch
//   --test COMMAND        boot RELEASE under qemu (scripts/vm-run), apply, run, revert
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "klp/build.h"
#include "klp/gen_object.h"

namespace nines::klp {

struct KernelGenOptions {
  std::string release;               // exactly `uname -r` of the target
  std::string source;                // a kernel tree, or deb:linux=VERSION ("deb:" alone: RELEASE's)
  std::vector<std::string> diffs;    // unified diffs (patch -p1), applied in order
  std::string id;                    // default: the output's base name
  std::string output;                // OUT.patch
  std::string headers_dir;           // default /usr/src/linux-headers-RELEASE
  std::string kernel_dir;            // default <kernel cache>/RELEASE (System.map, modules)
  std::string test_command;          // run in the VM with the patch applied
  bool keep_work = false;
  size_t max_header_units = 40;      // a header included by more units is refused
};

struct KernelGenResult {
  std::vector<GeneratedFunction> functions;  // what the patch replaces (and adds)
  std::vector<std::string> new_data;
  std::vector<std::string> notes;            // reported, not fatal
  std::vector<std::string> refusals;         // non-empty: nothing was written
  std::vector<std::string> units;            // the translation units compared
  BuildResult build;                         // when a patch was written
  bool written = false;
  bool tree_prepared_now = false;
  double prepare_seconds = 0, compile_seconds = 0, seconds = 0;
  std::string work_dir;                      // kept with keep_work
  int test_exit = -1;                        // --test: the VM's exit status
  std::string test_output;
};

// Runs every pass. A refused fix is a result with `refusals` (no output written);
// errors are for broken inputs or tools (a diff that does not apply, kbuild failing).
Result<KernelGenResult> generate_kernel_patch(const KernelGenOptions& opts);

// The report `nines build --kernel ... --diff` prints.
std::string format_kernel_report(const KernelGenResult& r, const KernelGenOptions& opts);

// `nines build --kernel R --source S --diff F`: prints the report; exit 0 when written
// (and --test passed), 1 when refused or on error, 3 when there is nothing to patch, 4
// when --test failed.
int cli_generate_kernel(const KernelGenOptions& opts);

}  // namespace nines::klp
