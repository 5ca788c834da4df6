// CPU microcode: the revision the CPU runs (/proc/cpuinfo "microcode") against the newest
// one ROOT/lib/firmware offers for this CPU, parsing the vendors' container formats
// directly (no iucode_tool).
//
// Intel (ROOT/lib/firmware/intel-ucode/FF-MM-SS): concatenated updates, each a 48-byte
// header {hdrver, rev, date, sig, cksum, ldrver, pf, datasize, totalsize, reserved[3]}
// (datasize 0 means 2000, totalsize 0 means 2048), optionally followed by an extended
// signature table {count, cksum, reserved[3]} + count x {sig, pf, cksum}. An update fits
// when its signature equals CPUID(1).EAX and its platform flags share a bit with the
// CPU's (sysfs microcode/processor_flags; any platform when unknown).
//
// AMD (ROOT/lib/firmware/amd-ucode/microcode_amd*.bin): "DMA\0", then an equivalence
// table section {type 0, size} of 16-byte entries {installed_cpu (CPUID(1).EAX),
// errata_mask, errata_compare, equiv_cpu u16, reserved u16}, then patch sections
// {type 1, size} whose header holds patch_id at +4 and processor_rev_id (u16) at +24;
// a patch fits when its processor_rev_id is the CPU's equiv_cpu.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "advisor/root.h"

namespace nines::advisor {

struct CpuInfo {
  int processor = 0;
  std::string vendor;  // "GenuineIntel", "AuthenticAMD"
  uint32_t family = 0, model = 0, stepping = 0;
  std::optional<uint32_t> microcode;  // the loaded revision
  bool hypervisor = false;            // running in a VM: the host owns microcode
  int physical_id = 0;

  // CPUID(1).EAX rebuilt from family/model/stepping.
  uint32_t signature() const;
};

// One entry per physical package (the first logical processor of each), as needrestart.
std::vector<CpuInfo> parse_cpuinfo(std::string_view text);

// The highest revision in an Intel microcode file that fits signature `sig` and platform
// flags `pf` (0 = any). nullopt when none fits or the file is malformed past its first
// valid update; never reads out of bounds.
std::optional<uint32_t> intel_best_revision(std::string_view file, uint32_t sig, uint32_t pf);

// The highest patch_id in an AMD container that fits `cpuid_eax`; nullopt when none.
std::optional<uint32_t> amd_best_revision(std::string_view file, uint32_t cpuid_eax);

// needrestart's NEEDRESTART-UCSTA values.
enum class MicrocodeStatus { kUnknown = 0, kCurrent = 1, kObsolete = 2 };
const char* microcode_status_name(MicrocodeStatus s);

struct MicrocodeFacts {
  MicrocodeStatus status = MicrocodeStatus::kUnknown;
  std::string vendor;
  uint32_t signature = 0;
  std::optional<uint32_t> current, available;
  std::string source;  // the firmware file that offers `available`
  bool virtual_machine = false;
  std::vector<std::string> notes;
};

// `cpuinfo` is the text of /proc/cpuinfo; `processor_flags` the Intel platform mask when
// known. Never fails: missing files give "current" (no update offered) as needrestart
// does, an unreadable cpuinfo gives "unknown".
MicrocodeFacts check_microcode(const Root& root, std::string_view cpuinfo,
                               std::optional<uint32_t> processor_flags = std::nullopt);

// Formats a revision as needrestart does: "0x%08x" (AMD) or "0x%04x" (Intel).
std::string format_revision(const std::string& vendor, uint32_t rev);

}  // namespace nines::advisor
