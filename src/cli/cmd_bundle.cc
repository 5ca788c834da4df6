// nines bundle create | verify | inspect: signed patch bundles (docs/BUNDLE-FORMAT.md).
#include <cinttypes>
#include <cstdio>

#include "bundle/bundle.h"
#include "bundle/patch_meta.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "core/fd.h"

namespace nines::cli {
namespace {

struct BundleOptions {
  CLI::App* create = nullptr;
  CLI::App* verify = nullptr;
  CLI::App* inspect = nullptr;
  std::string patch, manifest, key, output;  // create
  std::string bundle_path;                   // verify, inspect
  std::string trust_dir = bundle::kDefaultTrustDir;
  std::string format = "text";
};

int fail(const char* sub, const Error& e) {
  std::fprintf(stderr, "nines bundle %s: %s\n", sub, e.message.c_str());
  return 1;
}

int run_create(const BundleOptions& o) {
  auto patch = read_file(o.patch, bundle::kMaxPayloadBytes);
  if (!patch) return fail("create", patch.error());
  auto meta = bundle::read_patch_meta(*patch);
  if (!meta) return fail("create", meta.error().wrap(fmt::format("patch {}", o.patch)));
  auto text = read_file(o.manifest, bundle::kMaxManifestBytes);
  if (!text) return fail("create", text.error());
  auto m = bundle::parse_manifest(*text, /*require_target=*/false);
  if (!m) return fail("create", m.error().wrap(o.manifest));
  if (auto s = bundle::reconcile_with_patch(*m, *meta); !s)
    return fail("create", s.error().wrap(fmt::format("{} vs {}", o.manifest, o.patch)));
  if (auto s = bundle::validate_manifest(*m); !s)
    return fail("create",
                s.error().wrap(fmt::format("{} (after filling from {})", o.manifest, o.patch)));
  auto key = bundle::read_secret_key_file(o.key);
  if (!key) return fail("create", key.error());
  auto bytes = bundle::create_bundle(*m, *patch, *key);
  if (!bytes) return fail("create", bytes.error());
  if (auto s = write_file_atomic(o.output, *bytes, 0644); !s) return fail("create", s.error());
  std::printf("%s: bundle %s version %" PRId64 " (%s %s), %zu bytes, signed by %s\n",
              o.output.c_str(), m->id.c_str(), m->version, m->kind.c_str(),
              m->kind == "kernel" ? m->kernel_release.c_str() : m->target_name.c_str(),
              bytes->size(), bundle::fingerprint(key->public_key()).c_str());
  return 0;
}

int run_verify(const BundleOptions& o) {
  auto bytes = bundle::read_bundle_file(o.bundle_path);
  if (!bytes) return fail("verify", bytes.error());
  auto b = bundle::open_verified(*bytes, o.trust_dir);
  if (!b) return fail("verify", b.error().wrap(o.bundle_path));
  std::printf("%s: OK: bundle %s version %" PRId64
              ", signed by trusted key %s, payload sha256 %s\n",
              o.bundle_path.c_str(), b->manifest.id.c_str(), b->manifest.version,
              b->signer_fingerprint.c_str(), b->payload_sha256_hex.c_str());
  return 0;
}

int run_inspect(const BundleOptions& o) {
  auto bytes = bundle::read_bundle_file(o.bundle_path);
  if (!bytes) return fail("inspect", bytes.error());
  auto b = bundle::parse_bundle(*bytes);
  if (!b) return fail("inspect", b.error().wrap(o.bundle_path));
  std::string verdict;
  auto trusted = bundle::load_trust_store(o.trust_dir);
  Status verified = trusted ? bundle::verify_bundle(*b, *trusted) : Status(trusted.error());
  std::string computed = bundle::sha256_hex(b->payload);
  const bundle::Manifest& m = b->manifest;
  if (o.format == "json") {
    nlohmann::json j = {
        {"format_version", b->format_version},
        {"manifest", bundle::manifest_to_json(m)},
        {"payload",
         {{"bytes", b->payload.size()},
          {"sha256", b->payload_sha256_hex},
          {"sha256_matches", computed == b->payload_sha256_hex}}},
        {"signer_fingerprint", b->signer_fingerprint.empty()
                                   ? nlohmann::json(nullptr)
                                   : nlohmann::json(b->signer_fingerprint)},
        {"trust_dir", o.trust_dir},
        {"verified", verified.ok()},
        {"verify_error",
         verified.ok() ? nlohmann::json(nullptr) : nlohmann::json(verified.error().message)},
    };
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("bundle:      %s (format %u, %zu bytes)\n", o.bundle_path.c_str(), b->format_version,
              b->raw.size());
  std::printf("id:          %s\nversion:     %" PRId64 "\nkind:        %s\n", m.id.c_str(),
              m.version, m.kind.c_str());
  if (m.kind == "kernel")
    std::printf("kernel:      %s\n", m.kernel_release.c_str());
  else
    std::printf("target:      %s\n", m.target_name.c_str());
  std::printf("build-id:    %s\n", m.target_build_id.empty() ? "(any)" : m.target_build_id.c_str());
  std::printf("published:   %s\n", m.published.c_str());
  if (!m.description.empty()) std::printf("description: %s\n", m.description.c_str());
  for (const bundle::Cve& c : m.cves)
    std::printf("cve:         %s [%s] %s <%s>\n", c.id.c_str(), c.severity.c_str(),
                c.description.c_str(), c.url.c_str());
  std::printf("payload:     %zu bytes, sha256 %s%s\n", b->payload.size(),
              b->payload_sha256_hex.c_str(),
              computed == b->payload_sha256_hex ? "" : " (MISMATCH: payload differs)");
  std::printf("signer:      %s\n",
              b->signer_fingerprint.empty() ? "(unsigned)" : b->signer_fingerprint.c_str());
  std::printf("verified:    %s\n", verified.ok()
                                       ? fmt::format("yes (trust store {})", o.trust_dir).c_str()
                                       : fmt::format("no: {}", verified.error().message).c_str());
  return 0;
}

}  // namespace

Runner setup_bundle(CLI::App& app) {
  auto o = std::make_shared<BundleOptions>();
  app.require_subcommand(1);
  o->create = app.add_subcommand("create", "Sign a patch object and its manifest into a bundle");
  o->create->add_option("--patch", o->patch, "Patch object (output of nines build)")->required();
  o->create->add_option("--manifest", o->manifest, "Manifest (TOML)")->required();
  o->create->add_option("--key", o->key, "Publisher secret key (nines keygen)")->required();
  o->create->add_option("-o,--output", o->output, "Bundle file to write")->required();

  o->verify = app.add_subcommand("verify", "Check a bundle's signature against the trust store");
  o->verify->add_option("bundle", o->bundle_path, "Bundle file")->required();
  o->verify->add_option("--trust", o->trust_dir, "Trust store folder of *.pub keys")
      ->capture_default_str();

  o->inspect = app.add_subcommand("inspect", "Print a bundle's manifest, digest and signer");
  o->inspect->add_option("bundle", o->bundle_path, "Bundle file")->required();
  o->inspect->add_option("--trust", o->trust_dir, "Trust store folder of *.pub keys")
      ->capture_default_str();
  o->inspect->add_option("--format", o->format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));

  return [o] {
    if (o->create->parsed()) return run_create(*o);
    if (o->verify->parsed()) return run_verify(*o);
    if (o->inspect->parsed()) return run_inspect(*o);
    return 2;
  };
}

}  // namespace nines::cli
