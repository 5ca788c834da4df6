#include "advisor/check.h"

#include <sys/stat.h>

#include "advisor/root.h"
#include "core/clock.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/strings.h"

namespace nines::advisor {

Result<Facts> gather_facts(const CheckOptions& opts) {
  Facts f;
  Root root(opts.root);
  // A mistyped --root would otherwise read as "nothing installed, nothing pending".
  struct stat st {};
  if (::stat(root.dir().c_str(), &st) != 0)
    return errno_error(fmt::format("check root {}", root.dir()));
  if (!S_ISDIR(st.st_mode)) return make_error("check root {}: not a directory", root.dir());

  // 1. Processes running code that is no longer on disk (the live /proc, always).
  if (opts.processes) {
    Stopwatch sw;
    ScanResult scan = NINES_TRY(scan_processes());
    f.scan_ms = static_cast<double>(sw.elapsed_ns()) / 1e6;
    f.processes = std::move(scan.stale);
    f.scanned_processes = scan.processes;
    f.scanned_mappings = scan.mappings;
    f.interpreted = scan.interpreted;
    f.source_files = scan.source_files;
    f.vanished = scan.vanished;
    f.warnings = std::move(scan.warnings);
    // 2. What nines patched in memory: only stale processes are asked.
    spdlog::debug("check: scan {} processes, {} mappings, {} stale: {:.1f} ms", f.scanned_processes,
                  f.scanned_mappings, f.processes.size(), f.scan_ms);
    Stopwatch reg;
    // nines loads patch code into memory with no file behind it: processes without any
    // such code carry no registry and are not asked.
    mark_patched(f.processes, opts.registry ? opts.registry : nines_registry_reader(), &f.warnings,
                 /*only_anonymous_code=*/!opts.registry);
    spdlog::debug("check: registries of {} stale processes: {:.1f} ms", f.processes.size(),
                  static_cast<double>(reg.elapsed_ns()) / 1e6);
  }
  Stopwatch rest;

  // 3. Kernel: running against newest installed, livepatches, reboot-required.
  RunningKernel running = running_kernel();
  if (!opts.uname_v.empty()) running.version = opts.uname_v;
  f.kernel = check_kernel(root, running);
  f.kernel_livepatches = kernel_livepatches(root);
  f.reboot_required = NINES_TRY(check_reboot_required(root));

  // 4. Microcode: the live CPU against ROOT/lib/firmware.
  auto cpuinfo = read_file(opts.cpuinfo, 16u << 20);
  if (cpuinfo.ok()) {
    std::optional<uint32_t> pf;
    if (opts.cpuinfo == "/proc/cpuinfo") {
      auto flags = read_file("/sys/devices/system/cpu/cpu0/microcode/processor_flags", 64);
      if (flags.ok()) {
        std::string_view t = trim(*flags);
        if (starts_with(t, "0x")) t.remove_prefix(2);
        if (auto v = parse_u64(t, 16)) pf = static_cast<uint32_t>(*v);
      }
    }
    f.microcode = check_microcode(root, *cpuinfo, pf);
  } else {
    f.microcode.notes.push_back(cpuinfo.error().message);
  }

  // 5. Bootloader packages changed since boot (the dpkg database is read once, here).
  int64_t boot = NINES_TRY(boot_time_unix());
  DpkgStatus dpkg = NINES_TRY(read_dpkg_status(root));
  f.bootloader = check_bootloader(root, dpkg, boot);
  spdlog::debug("check: kernel, microcode, bootloader: {:.1f} ms",
                static_cast<double>(rest.elapsed_ns()) / 1e6);

  // 6. CVE exposure: nothing is read beyond a stat(2) when there is no CVE data.
  CveContext ctx{root, dpkg, f.processes, f.kernel_livepatches, f.bootloader, f.microcode,
                 running.version, boot};
  f.cves = NINES_TRY(check_cves(opts.cve, ctx));
  if (f.cves.checked)
    spdlog::debug("check: CVE exposure: {} entries: {:.1f} ms", f.cves.cves.size(), f.cves.ms);
  return f;
}

}  // namespace nines::advisor
