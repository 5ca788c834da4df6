#include "cli/kernel.h"

#include <cinttypes>
#include <cstdio>
#include <memory>

#include "bundle/bundle.h"
#include "bundle/open_for_apply.h"
#include "bundle/patch_meta.h"
#include "cli/format.h"
#include "core/fd.h"
#include "klp/apply.h"

namespace nines::cli {

namespace {

int fail(const char* what, const Error& e) {
  std::fprintf(stderr, "nines %s: %s\n", what, e.message.c_str());
  return 1;
}

void print_line(const std::string& s) {
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}

// An ELF patch whose .nines.meta says kind "kernel".
bool is_kernel_patch(std::string_view bytes) {
  auto j = bundle::read_patch_meta(bytes);
  return j && j->value("kind", std::string()) == "kernel";
}

}  // namespace

int kernel_build(const klp::BuildOptions& opts) {
  auto r = klp::build(opts);
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

int kernel_apply_bytes(std::string_view ko_bytes, const std::string& what, int64_t version,
                    double timeout_s, bool allow_downgrade) {
  klp::ApplyOptions o;
  o.timeout_s = timeout_s;
  o.version = version;
  o.allow_downgrade = allow_downgrade;
  o.report = print_line;
  auto r = klp::apply_module(ko_bytes, o);
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

int kernel_apply_file(const KernelApplyArgs& a) {
  auto bytes = read_file(a.file, bundle::kMaxBundleBytes);
  if (!bytes) return fail("apply", bytes.error());
  if (bundle::looks_like_bundle(*bytes)) {
    const std::string trust = a.trust_dir.empty() ? bundle::kDefaultTrustDir : a.trust_dir;
    auto b = bundle::open_bundle_for_apply(*bytes, trust);
    if (!b) return fail("apply", b.error().wrap(a.file));
    if (b->manifest.kind != "kernel")
      return fail("apply", make_error("{}: bundle {} is a {} patch, not a kernel one", a.file,
                                      b->manifest.id, b->manifest.kind));
    return kernel_apply_bytes(b->payload, a.file, b->manifest.version, a.timeout_s,
                              a.allow_downgrade);
  }
  if (!is_kernel_patch(*bytes))
    return fail("apply", make_error("{}: neither a bundle nor a kernel patch (.ko with a kernel "
                                    ".nines.meta)",
                                    a.file));
  return kernel_apply_bytes(*bytes, a.file, a.version, a.timeout_s, a.allow_downgrade);
}

int kernel_list(const std::string& format) {
  auto ps = klp::list();
  if (!ps) return fail("list", ps.error());
  if (is_document_format(format)) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : *ps)
      out.push_back({{"id", p.id},
                     {"version", p.version},
                     {"module", p.module_name},
                     {"enabled", p.enabled},
                     {"transition", p.transition},
                     {"functions", p.functions}});
    std::fputs(render_document(out, format).c_str(), stdout);
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

int kernel_revert(const std::string& id, double timeout_s) {
  klp::RevertOptions o;
  o.timeout_s = timeout_s;
  o.report = print_line;
  auto r = klp::revert(id, o);
  if (!r) return fail("revert", r.error());
  std::printf("kernel: reverted %s (module %s unloaded)\n", id.c_str(), r->c_str());
  return 0;
}

}  // namespace nines::cli
