#include "klp/apply.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/strings.h"

namespace nines::klp {
namespace {

void default_report(const std::string& s) { spdlog::info("{}", s); }

std::string livepatch_dir(const KernelRoots& r, const std::string& m) {
  return r.sys + "/kernel/livepatch/" + m;
}

Status write_sysfs(const std::string& path, std::string_view value) {
  Fd fd = NINES_TRY(Fd::open(path, O_WRONLY | O_CLOEXEC));
  if (::write(fd.get(), value.data(), value.size()) < 0) return errno_error("write " + path);
  return {};
}

// finit_module from an in-memory image: a memfd, so no file is left behind.
Status load_module(std::string_view bytes, const std::string& name, const std::string& params) {
  int mfd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (mfd < 0) return errno_error("memfd_create " + name);
  Fd fd(mfd);
  NINES_CHECK(pwrite_full(fd.get(), bytes.data(), bytes.size(), 0, "write module " + name));
  if (syscall(SYS_finit_module, fd.get(), params.c_str(), 0) != 0) {
    int err = errno;
    if (err == EEXIST) return make_error("load module {}: already loaded", name);
    // The kernel says why in its log (an unresolved .klp.sym, a refusing callback, ...).
    // Only what follows this module's first line: earlier patches' lines are not news.
    std::vector<std::string> lines = kernel_log_lines({name, "livepatch:"}, 200);
    auto first = std::find_if(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.find(name) != std::string::npos;
    });
    if (lines.end() - first > 5) first = lines.end() - 5;
    std::string why;
    for (auto it = first; it != lines.end(); ++it) why += "; " + *it;
    return make_error("load module {} (finit_module): {}{}", name, std::strerror(err),
                      why.empty() ? std::string() : "; kernel log: " + why.substr(2));
  }
  return {};
}

// delete_module(O_NONBLOCK), retried while the kernel still holds a reference (a patch's
// kobjects are released asynchronously after its transition).
Status unload_module(const std::string& name, double timeout_s) {
  Stopwatch sw;
  for (;;) {
    if (syscall(SYS_delete_module, name.c_str(), O_NONBLOCK) == 0) return {};
    int err = errno;
    if (err == ENOENT) return {};
    if ((err != EBUSY && err != EAGAIN) || sw.elapsed_us() / 1e6 > timeout_s)
      return errno_error("unload module " + name + " (delete_module)", err);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

enum class Wait { kDone, kTimeout };

// Polls until the transition of `module` ends (transition reads 0, or the folder is gone
// when `until_gone`), reporting the blocking tasks whenever the set changes.
Result<Wait> wait_transition(const KernelRoots& roots, const std::string& module, int target,
                             bool until_gone, double timeout_s,
                             const std::function<void(const std::string&)>& report,
                             std::vector<BlockingTask>* last_blockers) {
  Stopwatch sw;
  std::set<pid_t> reported;
  int64_t next_scan_ns = 250'000'000;  // first look after 0.25 s: most transitions end before
  for (;;) {
    auto p = NINES_TRY(read_patch(roots, module));
    if (!p) return Wait::kDone;
    if (!p->transition && !until_gone) return Wait::kDone;
    if (sw.elapsed_ns() >= next_scan_ns) {
      next_scan_ns = sw.elapsed_ns() + 1'000'000'000;
      auto blockers = blocking_tasks(roots, target, getpid());
      for (const auto& b : blockers)
        if (reported.insert(b.tid).second)
          report(fmt::format("transition of {} waits for {}", module, describe(b)));
      if (last_blockers) *last_blockers = std::move(blockers);
    }
    if (sw.elapsed_us() / 1e6 >= timeout_s) return Wait::kTimeout;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string blockers_text(const std::vector<BlockingTask>& b) {
  if (b.empty()) return "no blocking task found (idle tasks of other CPUs are not listed)";
  std::string s;
  for (size_t i = 0; i < b.size() && i < 8; ++i) s += (i ? "; " : "") + describe(b[i]);
  if (b.size() > 8) s += fmt::format("; and {} more", b.size() - 8);
  return s;
}

// Unloads nines patch modules whose livepatch folder is gone (replaced or reverted).
std::vector<std::string> unload_stale(const KernelRoots& roots, const std::string& keep) {
  std::vector<std::string> done;
  for (const auto& m : nines_modules(roots)) {
    if (m == keep) continue;
    auto p = read_patch(roots, m);
    if (!p || *p) continue;
    if (auto st = unload_module(m, 5); st)
      done.push_back(m);
    else
      spdlog::warn("{}", st.error().message);
  }
  return done;
}

}  // namespace

Result<std::vector<KernelPatchState>> list(const KernelRoots& roots) { return read_patches(roots); }

Result<ApplyResult> apply_module(std::string_view ko_bytes, const ApplyOptions& opts) {
  auto report = opts.report ? opts.report : default_report;
  ApplyResult res;
  res.meta = NINES_TRY(read_kernel_meta(ko_bytes));
  const KernelPatchMeta& m = res.meta;
  auto fail = [&](const Error& e) { return e.wrap(fmt::format("apply kernel patch {}", m.id)); };

  // 1. The right kernel.
  const std::string release = running_release();
  if (release != m.release)
    return make_error("apply kernel patch {}: built for kernel {}, this kernel is {}", m.id,
                      m.release, release);
  const std::string running_id = running_build_id(opts.roots);
  if (!m.build_id.empty() && !running_id.empty() && m.build_id != running_id)
    return make_error("apply kernel patch {}: built for kernel build-id {}, this kernel's is {}",
                      m.id, m.build_id, running_id);

  // 2. Not a downgrade, not twice.
  auto current = NINES_TRY(read_patches(opts.roots));
  for (const auto& p : current) {
    if (p.module_name == m.module_name)
      return make_error("apply kernel patch {}: module {} is already applied", m.id, m.module_name);
    if (p.id == m.id && opts.version > 0 && p.version > opts.version && !opts.allow_downgrade)
      return make_error(
          "apply kernel patch {}: version {} is older than the applied version {} "
          "(downgrade refused)",
          m.id, opts.version, p.version);
  }

  // Leftovers of an earlier run (a replaced or disabled patch whose module stayed loaded)
  // would make the load fail with EEXIST; they patch nothing, so unload them.
  for (const auto& gone : unload_stale(opts.roots, std::string()))
    report(fmt::format("unloaded leftover module {}", gone));

  // 3. Load: the module's init runs klp_enable_patch, which starts the transition.
  Stopwatch sw;
  auto loaded = load_module(ko_bytes, m.module_name, fmt::format("nines_version={}", opts.version));
  if (!loaded) return fail(loaded.error());
  res.load_s = sw.elapsed_us() / 1e6;

  // 4. Wait for every task to switch.
  std::vector<BlockingTask> blockers;
  Wait w = NINES_TRY(
      wait_transition(opts.roots, m.module_name, 1, false, opts.timeout_s, report, &blockers));
  res.transition_s = sw.elapsed_us() / 1e6;
  if (w == Wait::kTimeout) {
    std::string who = blockers_text(blockers);
    report(fmt::format("transition of {} did not complete in {} s: reversing it", m.module_name,
                       opts.timeout_s));
    // Writing 0 during a transition reverses it (kernel/livepatch/core.c enabled_store).
    if (auto st = write_sysfs(livepatch_dir(opts.roots, m.module_name) + "/enabled", "0"); !st)
      return fail(st.error());
    // Tasks already switched go back at their next safe point; they are not news.
    Wait back = NINES_TRY(wait_transition(
        opts.roots, m.module_name, 0, true, opts.timeout_s, [](const std::string&) {}, nullptr));
    if (back == Wait::kTimeout)
      return make_error(
          "apply kernel patch {}: transition did not complete in {} s (blocked by "
          "{}); the reversal did not complete either: module {} stays loaded",
          m.id, opts.timeout_s, who, m.module_name);
    if (auto st = unload_module(m.module_name, 10); !st) return fail(st.error());
    return make_error(
        "apply kernel patch {}: transition did not complete in {} s, blocked by {}; "
        "reversed and unloaded, the kernel is unpatched",
        m.id, opts.timeout_s, who);
  }
  if (auto p = read_patch(opts.roots, m.module_name); !p || !*p || !(*p)->enabled)
    return make_error("apply kernel patch {}: module {} loaded but its patch is not enabled", m.id,
                      m.module_name);

  // 5. Patches this one replaced (atomic replace) are gone from livepatch; unload them.
  res.unloaded = unload_stale(opts.roots, m.module_name);
  return res;
}

Result<std::string> revert(const std::string& id_or_module, const RevertOptions& opts) {
  auto report = opts.report ? opts.report : default_report;
  auto patches = NINES_TRY(read_patches(opts.roots));
  const KernelPatchState* p = nullptr;
  for (const auto& x : patches)
    if (x.id == id_or_module || x.module_name == id_or_module) p = &x;
  if (!p) {
    // A patch already disabled but still loaded only needs its module unloaded.
    for (const auto& mod : nines_modules(opts.roots)) {
      auto id = read_file(opts.roots.sys + "/module/" + mod + "/parameters/nines_id");
      if (mod == id_or_module || (id && trim(*id) == id_or_module)) {
        NINES_CHECK(unload_module(mod, 10));
        return mod;
      }
    }
    return make_error("revert kernel patch {}: no such patch is applied", id_or_module);
  }
  const std::string mod = p->module_name;
  if (p->transition)
    return make_error(
        "revert kernel patch {}: module {} is in a transition; try again when it ends",
        id_or_module, mod);
  NINES_CHECK(write_sysfs(livepatch_dir(opts.roots, mod) + "/enabled", "0"));
  std::vector<BlockingTask> blockers;
  Wait w = NINES_TRY(wait_transition(opts.roots, mod, 0, true, opts.timeout_s, report, &blockers));
  if (w == Wait::kTimeout) {
    // Re-enabling during the transition reverses it: the patch stays fully applied.
    (void)write_sysfs(livepatch_dir(opts.roots, mod) + "/enabled", "1");
    return make_error(
        "revert kernel patch {}: unpatching did not complete in {} s, blocked by {}; "
        "reversed, the patch stays applied",
        id_or_module, opts.timeout_s, blockers_text(blockers));
  }
  NINES_CHECK(unload_module(mod, 10));
  return mod;
}

}  // namespace nines::klp
