// nines apply FILE --pid PID[,PID...] | --all  [--no-stack-check] [--timeout MS]
//   FILE is a patch object from `nines build` or a signed bundle.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "klp/cli.h"
#include "bundle/bundle.h"
#include "cli/pids.h"
#include "core/fd.h"
#include "ulp/engine.h"

namespace nines::cli {

namespace {

struct ApplyArgs {
  std::string file;
  std::vector<std::string> pids;
  bool all = false;
  bool no_stack_check = false;
  int64_t timeout_ms = 5000;
  std::string trust_dir = "/etc/nines/trusted-keys.d";
  bool allow_downgrade = false;
};

int apply_userspace(const ApplyArgs& a, ulp::PatchObject& patch, int64_t version,
                    const std::string& digest) {
  ulp::ElfCache cache;
  std::vector<pid_t> pids;
  if (a.all) {
    pids = ulp::processes_mapping(patch.meta.target_name, patch.meta.target_build_id, cache, {getppid()});
    if (pids.empty()) {
      std::printf("no process maps %s\n", patch.meta.target_name.c_str());
      return 0;
    }
  } else {
    auto p = parse_pids(a.pids);
    if (!p) {
      std::fprintf(stderr, "nines apply: %s\n", p.error().message.c_str());
      return 2;
    }
    pids = *p;
  }
  ulp::ApplyOptions opts;
  opts.stack_check = !a.no_stack_check;
  opts.timeout_ms = a.timeout_ms;
  opts.version = version;
  opts.allow_downgrade = a.allow_downgrade;
  opts.digest = digest;  // the same id and version with other content is refused, naming both
  return run_in_worker([&]() -> int {
    // Many processes (--all) are patched by one thread per core, each with its own ELF
    // cache: a ptrace tracee belongs to the thread that attached it, so each thread
    // carries its processes through the whole pipeline. Lines are printed in pid order.
    std::vector<std::string> lines(pids.size());
    std::vector<char> failed(pids.size(), 0);
    auto work = [&](size_t first, size_t step, ulp::ElfCache& c) {
      for (size_t i = first; i < pids.size(); i += step) {
        pid_t pid = pids[i];
        auto out = ulp::apply_patch(patch, pid, opts, c);
        if (!out) {
          failed[i] = 1;
          lines[i] = fmt::format("pid {}: FAILED: {}", pid, out.error().message);
        } else if (out->action == "already applied") {
          lines[i] = fmt::format("pid {}: {} already applied", pid, patch.meta.id);
        } else {
          lines[i] = fmt::format("pid {}: {} {}: switched {}; stop window {:.0f} us", pid, out->action,
                                 patch.meta.id, fmt::join(out->functions, ", "), out->stop_us);
        }
        if (step == 1) {  // one thread: report as we go
          std::printf("%s\n", lines[i].c_str());
          std::fflush(stdout);
        }
      }
    };
    size_t threads = pids.size() >= 16 ? std::min<size_t>(std::thread::hardware_concurrency(), 8) : 1;
    if (const char* env = std::getenv("NINES_APPLY_THREADS")) threads = std::max(1, std::atoi(env));
    if (threads <= 1) {
      work(0, 1, cache);
    } else {
      std::vector<ulp::ElfCache> caches(threads);
      std::vector<std::thread> pool;
      for (size_t t = 0; t < threads; ++t) pool.emplace_back([&, t] { work(t, threads, caches[t]); });
      for (auto& th : pool) th.join();
      for (const auto& l : lines) std::printf("%s\n", l.c_str());
    }
    size_t failures = static_cast<size_t>(std::count(failed.begin(), failed.end(), 1));
    if (pids.size() > 1)
      std::printf("%zu of %zu processes patched\n", pids.size() - failures, pids.size());
    return failures ? 1 : 0;
  });
}

}  // namespace

Runner setup_apply(CLI::App& app) {
  auto a = std::make_shared<ApplyArgs>();
  app.add_option("file", a->file, "Patch object or signed bundle")->required();
  auto* pid = app.add_option("--pid", a->pids, "Process id(s), comma separated");
  auto* all = app.add_flag("--all", a->all, "Every process that maps the target");
  pid->excludes(all);
  app.add_flag("--no-stack-check", a->no_stack_check,
               "Only refuse threads inside the overwritten bytes, not frames in replaced functions");
  app.add_option("--timeout", a->timeout_ms, "Consistency retries stop after this many ms (default 5000)");
  app.add_option("--trust", a->trust_dir, "Trust store for bundles (default /etc/nines/trusted-keys.d)");
  app.add_flag("--allow-downgrade", a->allow_downgrade, "Apply an older version over a newer one");
  auto* timeout = app.get_option("--timeout");
  return [a, timeout]() -> int {
    auto bytes = read_file(a->file, size_t{256} << 20);
    if (!bytes) {
      std::fprintf(stderr, "nines apply: %s\n", bytes.error().message.c_str());
      return 2;
    }
    // bundle: signed bundles are verified first (nothing of an unverified manifest is read,
    // not even its kind), then dispatched by kind.
    std::optional<bundle::Bundle> verified;
    if (bundle::looks_like_bundle(*bytes)) {
      auto b = bundle::open_verified(*bytes, a->trust_dir);
      if (!b) {
        std::fprintf(stderr, "nines apply: %s: refused: %s\n", a->file.c_str(), b.error().message.c_str());
        return 2;
      }
      verified = std::move(*b);
    }
    // kernel: kernel bundles and kernel patches (.ko) need no --pid; src/klp verifies the
    // bundle, checks the kernel and loads the module (timeout: 60 s unless --timeout MS).
    if (verified ? verified->manifest.kind == "kernel" : klp::is_kernel_file(*bytes)) {
      klp::CliApplyArgs k;
      k.file = a->file;
      k.trust_dir = a->trust_dir;
      k.allow_downgrade = a->allow_downgrade;
      k.timeout_s = timeout->count() ? a->timeout_ms / 1000.0 : klp::kDefaultTimeoutS;
      return klp::cli_apply_file(k);
    }
    if (!a->all && a->pids.empty()) {
      std::fprintf(stderr, "nines apply: --pid PID or --all is required for a user-space patch\n");
      return 2;
    }
    if (verified) {
      const bundle::Bundle* b = &*verified;
      if (b->manifest.kind != "userspace") {
        std::fprintf(stderr, "nines apply: %s: refused: kind '%s' is not a user-space patch\n",
                     a->file.c_str(), b->manifest.kind.c_str());
        return 2;
      }
      auto patch = ulp::load_patch_object(b->payload, a->file + " (payload)");
      if (!patch) {
        std::fprintf(stderr, "nines apply: %s\n", patch.error().message.c_str());
        return 2;
      }
      if (patch->meta.target_build_id != b->manifest.target_build_id) {
        std::fprintf(stderr, "nines apply: %s: refused: the manifest names build-id %s, the payload %s\n",
                     a->file.c_str(), b->manifest.target_build_id.c_str(), patch->meta.target_build_id.c_str());
        return 2;
      }
      // The bundle's id and version are what the registry records, so `revert ID` and
      // downgrade checks speak the publisher's terms.
      patch->meta.id = b->manifest.id;
      return apply_userspace(*a, *patch, b->manifest.version, b->payload_sha256_hex);
    }
    std::string digest = bundle::sha256_hex(*bytes);
    auto patch = ulp::load_patch_object(std::move(*bytes), a->file);
    if (!patch) {
      std::fprintf(stderr, "nines apply: %s\n", patch.error().message.c_str());
      return 2;
    }
    return apply_userspace(*a, *patch, 0, digest);
  };
}

}  // namespace nines::cli
