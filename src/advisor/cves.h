// The CVE step of `nines check` (issue 16; the states are in exposure.h): finds the
// tracker data, reads what it needs through the checked root, and assesses. When there is
// no CVE data it reads nothing else and costs nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "advisor/bootloader.h"
#include "advisor/dpkg.h"
#include "advisor/exposure.h"
#include "advisor/livepatch.h"
#include "advisor/microcode.h"
#include "advisor/root.h"
#include "advisor/scan.h"
#include "core/result.h"

namespace nines::advisor {

struct CveOptions {
  std::string data_file;  // --cve-data; "" = the agent's copy, when there is one
  std::string trust_dir;  // publisher keys for bundles; "" = ROOT/etc/nines/trusted-keys.d
  std::string apt_library = "libapt-pkg.so.6.0";  // a seam for the "missing library" test
};

// What the other steps of the check already gathered.
struct CveContext {
  const Root& root;
  const DpkgStatus& dpkg;
  const std::vector<StaleProcess>& processes;
  const std::vector<KernelLivepatch>& kernel_livepatches;
  const BootloaderFacts& bootloader;
  const MicrocodeFacts& microcode;
  std::string uname_v;  // the running kernel's `uname -v`
  int64_t boot_unix = 0;
};

// Where the agent keeps its copy of the tracker data: ROOT/var/lib/nines/cve-data.json.
std::string agent_cve_data_path(const Root& root);

// VERSION_CODENAME of ROOT/etc/os-release (else ROOT/usr/lib/os-release). Fails naming the
// file when neither exists or has no codename.
Result<std::string> os_codename(const Root& root);

// Without data (no --cve-data and no agent copy): checked = false and a note. With data,
// fails (exit status 3) when the data, the release or libapt-pkg cannot be read; a
// bundle that does not verify is a note.
Result<CveFacts> check_cves(const CveOptions& opts, const CveContext& ctx);

}  // namespace nines::advisor
