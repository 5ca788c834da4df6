// nines build --target FILE [--id ID] -o OUT.patch SOURCE.c...
// nines build --target FILE --source DIR --diff FIX.patch [--diff ...] [--build CMD] -o OUT.patch
// nines build --kernel RELEASE --source DIR|deb:linux=VERSION --diff FIX.patch [--test CMD] -o OUT.patch
#include <cstdio>

#include "cli/commands.h"
#include "gen/generate.h"
#include "klp/cli.h"
#include "klp/gen_kernel.h"
#include "ulp/builder.h"

namespace nines::cli {

// `nines build --diff`: the report on stdout, refusals too (exit 1), errors on stderr.
static int run_generate(const ulp::BuildOptions& o, gen::GenerateOptions g) {
  if (g.diffs.empty() || g.source.empty()) {
    std::fprintf(stderr, "nines build: generating a patch needs both --source DIR and --diff FIX.patch\n");
    return 2;
  }
  if (!o.sources.empty()) {
    std::fprintf(stderr, "nines build: give either C sources or --diff, not both\n");
    return 2;
  }
  g.target = o.target;
  g.id = o.id;
  g.output = o.output;
  auto r = gen::generate_patch(g);
  if (!r) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    return 1;
  }
  std::fputs(gen::format_report(*r, g).c_str(), stdout);
  if (!r->refusals.empty()) return 1;
  return r->meta.functions.empty() ? 3 : 0;
}

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
  app.add_option("sources", o->sources, "C sources of the patch (hand-written patches)");
  auto g = std::make_shared<gen::GenerateOptions>();
  app.add_option("--source", g->source, "Generate the patch: the tree the target was built from, or "
                 "deb:PACKAGE=VERSION (fetched with apt-get source)");
  app.add_option("--diff", g->diffs, "Generate the patch: the fix, a unified diff (repeatable)");
  app.add_option("--build", g->build_command, "Generate the patch: how the tree is built (shell "
                 "command at its root; detected when absent)");
  app.add_option("--work", g->work_dir, "Generate the patch: work folder (default OUT.patch.work)");
  app.add_flag("--keep-work", g->keep_work, "Generate the patch: keep the work folder");
  g->cache_dir = "/var/cache/nines/gen";
  app.add_option("--cache", g->cache_dir, "Generate the patch: where original builds are kept "
                 "for later runs (default /var/cache/nines/gen; '' for none)");
  auto test = std::make_shared<std::string>();
  app.add_option("--test", *test, "Kernel, generated patch: boot the kernel under qemu, apply, "
                 "run this shell command, revert, report");
  return [o, g, kernel, headers, test]() -> int {
    if (!kernel->empty() && (!g->diffs.empty() || !g->source.empty())) {
      if (!o->sources.empty()) {
        std::fprintf(stderr, "nines build: give either C sources or --diff, not both\n");
        return 2;
      }
      klp::KernelGenOptions k;
      k.release = *kernel;
      k.source = g->source;
      k.diffs = g->diffs;
      k.id = o->id;
      k.output = o->output;
      k.headers_dir = *headers;
      k.test_command = *test;
      k.keep_work = g->keep_work;
      return klp::cli_generate_kernel(k);
    }
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
    if (!g->diffs.empty() || !g->source.empty()) return run_generate(*o, *g);
    if (o->sources.empty()) {
      std::fprintf(stderr, "nines build: give the patch's C sources, or --source DIR --diff FIX.patch\n");
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
