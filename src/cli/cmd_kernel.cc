// nines kernel build|apply|list|revert: kernel live patching with the kernel's own options.
// `nines build --kernel`, `nines apply`, `nines list --kernel` and `nines revert --kernel`
// reach the same functions (kernel.h).
#include <memory>

#include "cli/commands.h"
#include "cli/kernel.h"
#include "cli/format.h"
#include "cli/options.h"

namespace nines::cli {

Runner setup_kernel(CLI::App& app) {
  app.require_subcommand(1);
  auto bo = std::make_shared<klp::BuildOptions>();
  auto aa = std::make_shared<KernelApplyArgs>();
  auto format = std::make_shared<std::string>("text");
  auto rid = std::make_shared<std::string>();
  auto rtimeout = std::make_shared<double>(kKernelTimeoutS);

  CLI::App* b =
      app.add_subcommand("build", "Build a kernel live patch module (klp) from C sources");
  b->add_option("--kernel,-k", bo->release, "Kernel release (uname -r) to build for")->required();
  b->add_option("--headers", bo->headers_dir,
                "Kernel headers (default /usr/src/linux-headers-RELEASE)");
  b->add_option("--kernel-dir", bo->kernel_dir,
                "System.map, build-id and modules (default: the kernel cache)");
  b->add_option("--id", bo->id, "Patch id (default: the output's base name)");
  b->add_option("-o,--output", bo->output, "Output patch (.ko with .nines.meta)")->required();
  b->add_flag("--keep", bo->keep_work_dir, "Keep the kbuild folder");
  b->add_option("sources", bo->sources, "C sources of the patch")->required();

  CLI::App* ap = app.add_subcommand(
      "apply", "Load a kernel patch or kernel bundle and wait for its transition");
  ap->add_option("file", aa->file, "Kernel bundle or kernel patch (.ko)")->required();
  ap->add_option("--timeout", aa->timeout_s, "How long to wait for the transition (default 60s)")
      ->transform(Duration(true));
  ap->add_option("--version", aa->version, "Version of a raw patch (bundles carry their own)");
  ap->add_flag("--allow-downgrade", aa->allow_downgrade, "Apply an older version over a newer one");
  ap->add_option("--trust", aa->trust_dir,
                 "Trust store for bundles (default /etc/nines/trusted-keys.d)");

  CLI::App* l = app.add_subcommand("list", "List kernel live patches");
  add_format_option(*l, *format);

  CLI::App* r = app.add_subcommand("revert", "Disable a kernel patch and unload its module");
  r->add_option("id", *rid, "Patch id (or module name)")->required();
  r->add_option("--timeout", *rtimeout, "How long to wait for the transition (default 60s)")
      ->transform(Duration(true));

  return [=]() -> int {
    if (b->parsed()) return kernel_build(*bo);
    if (ap->parsed()) return kernel_apply_file(*aa);
    if (l->parsed()) return kernel_list(*format);
    if (r->parsed()) return kernel_revert(*rid, *rtimeout);
    return 2;
  };
}

}  // namespace nines::cli
