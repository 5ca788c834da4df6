// `nines check` as a pipeline of named steps: scan processes -> what nines patched in
// memory -> kernel -> reboot-required -> microcode -> dpkg database -> bootloader -> CVE
// exposure (only with CVE data). decide() in verdict.h
// turns the facts into the verdict.
#pragma once

#include <string>
#include <vector>

#include "advisor/cves.h"
#include "advisor/livepatch.h"
#include "advisor/verdict.h"
#include "core/result.h"

namespace nines::advisor {

struct CheckOptions {
  std::string root = "/";                 // --root: /boot, /lib/firmware, /var/lib/dpkg, ...
  std::string cpuinfo = "/proc/cpuinfo";  // the live CPU unless a saved copy is checked
  bool processes = true;                  // scan /proc
  RegistryReader registry;                // empty: nines_registry_reader()
  std::string uname_v;                    // the running kernel's `uname -v`; "" = uname(2)
  CveOptions cve;                         // --cve-data, --trust
};

// Gathers every fact. Fails (exit status 3) only when a source that exists cannot be
// read: /proc cannot be listed, the dpkg status file is unreadable, ...; a process that
// cannot be read becomes a warning, one that exits mid-scan is skipped.
Result<Facts> gather_facts(const CheckOptions& opts);

}  // namespace nines::advisor
