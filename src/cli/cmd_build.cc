// nines build --target FILE [--id ID] -o OUT.patch SOURCE.c...
#include <cstdio>

#include "cli/commands.h"
#include "klp/cli.h"
#include "ulp/builder.h"

namespace nines::cli {

Runner setup_build(CLI::App& app) {
  auto o = std::make_shared<ulp::BuildOptions>();
  auto kernel = std::make_shared<std::string>();
  auto headers = std::make_shared<std::string>();
  app.add_option("--target", o->target, "The object to patch (shared library or executable)");
  app.add_option("--kernel", *kernel, "Build a kernel live patch for this kernel release");
  app.add_option("--headers", *headers, "Kernel headers folder (with --kernel)");
  app.add_option("--id", o->id, "Patch id (default: the output's base name)");
  app.add_option("-o,--output", o->output, "Output patch object")->required();
  app.add_option("--cflag", o->extra_cflags, "Extra compiler flag (repeatable)");
  app.add_option("sources", o->sources, "C sources of the patch")->required();
  return [o, kernel, headers]() -> int {
    if (!kernel->empty()) {
      // kernel: `nines build --kernel` is wired here by the kernel part.
      klp::BuildOptions k;
      k.release = *kernel;
      k.headers_dir = *headers;
      k.id = o->id;
      k.output = o->output;
      k.sources = o->sources;
      return klp::cli_build(k);
    }
    if (o->target.empty()) {
      std::fprintf(stderr, "nines build: --target FILE (or --kernel RELEASE) is required\n");
      return 2;
    }
    auto meta = ulp::build_patch(*o);
    if (!meta) {
      std::fprintf(stderr, "%s\n", meta.error().message.c_str());
      return 1;
    }
    std::printf("built %s: patch %s for %s (build-id %s), %zu function(s):\n", o->output.c_str(),
                meta->id.c_str(), meta->target_name.c_str(), meta->target_build_id.c_str(),
                meta->functions.size());
    for (const auto& f : meta->functions)
      std::printf("  %s -> %s\n", f.name.c_str(), f.replacement.c_str());
    return 0;
  };
}

}  // namespace nines::cli
