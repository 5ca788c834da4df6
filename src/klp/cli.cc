#include "klp/cli.h"

#include <cinttypes>
#include <cstdio>
#include <memory>

#include "bundle/bundle.h"
#include "bundle/patch_meta.h"
#include "core/fd.h"
#include "klp/apply.h"

namespace nines::klp {
namespace {

int fail(const char* what, const Error& e) {
  std::fprintf(stderr, "nines %s: %s\n", what, e.message.c_str());
  return 1;
}

void print_line(const std::string& s) {
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}

}  // namespace

int cli_build(const BuildOptions& opts) {
  auto r = build(opts);
  if (!r) return fail("build", r.error());
  std::printf("built %s: kernel patch %s for %s (build-id %s), module %s, %.1f s\n",
              opts.output.c_str(), r->meta.id.c_str(), r->meta.release.c_str(),
              r->meta.build_id.empty() ? "unknown" : r->meta.build_id.c_str(),
              r->meta.module_name.c_str(), r->seconds);
  for (const auto& f : r->meta.functions)
    std::printf("  %s:%s -> %s\n", f.object.c_str(), f.name.c_str(), f.replacement.c_str());
  for (const auto& s : r->klp.symbols) std::printf("  uses %s\n", s.klp_name().c_str());
  if (!r->work_dir.empty()) std::printf("kbuild folder kept: %s\n", r->work_dir.c_str());
  return 0;
}

bool is_kernel_patch(std::string_view bytes) {
  auto j = bundle::read_patch_meta(bytes);
  return j && j->is_object() && j->value("kind", std::string()) == "kernel";
}

bool is_kernel_file(std::string_view bytes) {
  if (bundle::looks_like_bundle(bytes)) {
    auto b = bundle::parse_bundle(bytes);
    return b && b->manifest.kind == "kernel";
  }
  return is_kernel_patch(bytes);
}

int cli_apply_bytes(std::string_view ko_bytes, const std::string& what, int64_t version,
                    double timeout_s, bool allow_downgrade) {
  ApplyOptions o;
  o.timeout_s = timeout_s;
  o.version = version;
  o.allow_downgrade = allow_downgrade;
  o.report = print_line;
  auto r = apply_module(ko_bytes, o);
  if (!r) return fail("apply", r.error().wrap(what));
  std::string fns;
  for (const auto& f : r->meta.functions)
    fns += (fns.empty() ? "" : ", ") + f.object + ":" + f.name;
  std::printf("kernel: applied %s (version %" PRId64
              ", module %s): %s; transition complete in "
              "%.3f s (module load %.3f s)\n",
              r->meta.id.c_str(), version, r->meta.module_name.c_str(), fns.c_str(),
              r->transition_s, r->load_s);
  for (const auto& m : r->unloaded) std::printf("kernel: unloaded replaced module %s\n", m.c_str());
  return 0;
}

int cli_apply_file(const CliApplyArgs& a) {
  auto bytes = read_file(a.file, bundle::kMaxBundleBytes);
  if (!bytes) return fail("apply", bytes.error());
  if (bundle::looks_like_bundle(*bytes)) {
    const std::string trust = a.trust_dir.empty() ? bundle::kDefaultTrustDir : a.trust_dir;
    auto b = bundle::open_verified(*bytes, trust);
    if (!b) return fail("apply", b.error().wrap(a.file));
    if (b->manifest.kind != "kernel")
      return fail("apply", make_error("{}: bundle {} is a {} patch, not a kernel one", a.file,
                                      b->manifest.id, b->manifest.kind));
    // The manifest names the kernel too (bundle create checked it against the patch).
    if (!b->manifest.kernel_release.empty() && b->manifest.kernel_release != running_release())
      return fail("apply",
                  make_error("{}: bundle {} built for kernel {}, this kernel is {}", a.file,
                             b->manifest.id, b->manifest.kernel_release, running_release()));
    return cli_apply_bytes(b->payload, a.file, b->manifest.version, a.timeout_s, a.allow_downgrade);
  }
  if (!is_kernel_patch(*bytes))
    return fail("apply", make_error("{}: neither a bundle nor a kernel patch (.ko with a kernel "
                                    ".nines.meta)",
                                    a.file));
  return cli_apply_bytes(*bytes, a.file, a.version, a.timeout_s, a.allow_downgrade);
}

int cli_list(const std::string& format) {
  auto ps = list();
  if (!ps) return fail("list", ps.error());
  if (format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : *ps)
      out.push_back({{"id", p.id},
                     {"version", p.version},
                     {"module", p.module_name},
                     {"enabled", p.enabled},
                     {"transition", p.transition},
                     {"functions", p.functions}});
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  if (ps->empty()) std::printf("no kernel live patch\n");
  for (const auto& p : *ps) {
    std::string fns;
    for (const auto& f : p.functions) fns += (fns.empty() ? "" : ", ") + f;
    std::printf("kernel: %s (version %" PRId64 ") module %s enabled=%d transition=%d: %s\n",
                p.id.empty() ? "-" : p.id.c_str(), p.version, p.module_name.c_str(),
                p.enabled ? 1 : 0, p.transition ? 1 : 0, fns.c_str());
  }
  return 0;
}

int cli_revert(const std::string& id, double timeout_s) {
  RevertOptions o;
  o.timeout_s = timeout_s;
  o.report = print_line;
  auto r = revert(id, o);
  if (!r) return fail("revert", r.error());
  std::printf("kernel: reverted %s (module %s unloaded)\n", id.c_str(), r->c_str());
  return 0;
}

std::function<int()> setup_kernel_commands(CLI::App& app) {
  app.require_subcommand(1);
  auto bo = std::make_shared<BuildOptions>();
  auto aa = std::make_shared<CliApplyArgs>();
  auto format = std::make_shared<std::string>("text");
  auto rid = std::make_shared<std::string>();
  auto rtimeout = std::make_shared<double>(kDefaultTimeoutS);

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
  ap->add_option("--timeout", aa->timeout_s, "Seconds to wait for the transition (default 60)");
  ap->add_option("--version", aa->version, "Version of a raw patch (bundles carry their own)");
  ap->add_flag("--allow-downgrade", aa->allow_downgrade, "Apply an older version over a newer one");
  ap->add_option("--trust", aa->trust_dir,
                 "Trust store for bundles (default /etc/nines/trusted-keys.d)");

  CLI::App* l = app.add_subcommand("list", "List kernel live patches");
  l->add_option("--format", *format, "text or json")->check(CLI::IsMember({"text", "json"}));

  CLI::App* r = app.add_subcommand("revert", "Disable a kernel patch and unload its module");
  r->add_option("id", *rid, "Patch id (or module name)")->required();
  r->add_option("--timeout", *rtimeout, "Seconds to wait for the transition (default 60)");

  return [=]() -> int {
    if (b->parsed()) return cli_build(*bo);
    if (ap->parsed()) return cli_apply_file(*aa);
    if (l->parsed()) return cli_list(*format);
    if (r->parsed()) return cli_revert(*rid, *rtimeout);
    return 2;
  };
}

}  // namespace nines::klp
