// Kernel: the running release against the newest one installed under ROOT/boot, with
// needrestart's KSTA semantics, and ROOT/var/run/reboot-required.
//
// x86 boot images (bzImage) carry their full version string ("6.1.0-28-cloud-amd64
// (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)")
// at 0x200 + the 16-bit little-endian offset stored at 0x20e (the setup header's
// kernel_version field, valid when "HdrS" is at 0x202). Comparing the release *and* the
// build version with uname(2) tells an ABI-compatible rebuild (same release name, new
// build) from a running kernel that is simply current.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "advisor/root.h"
#include "core/result.h"

namespace nines::advisor {

// needrestart's NEEDRESTART-KSTA values.
enum class KernelStatus { kUnknown = 0, kCurrent = 1, kAbiUpgrade = 2, kVersionUpgrade = 3 };
const char* kernel_status_name(KernelStatus s);  // "unknown" | "current" | "abi-upgrade" | ...

struct RunningKernel {
  std::string release;  // uname -r
  std::string version;  // uname -v
};
RunningKernel running_kernel();

struct KernelImage {
  std::string path;          // on this machine
  std::string version;       // the image's version string; empty when unreadable
  std::string release;       // its first word ("6.1.0-28-cloud-amd64")
  bool from_header = false;  // false: release guessed from the file name
};

struct KernelFacts {
  KernelStatus status = KernelStatus::kUnknown;
  std::string running_release, running_version;
  std::string expected_release;  // newest installed; empty when none found
  std::vector<KernelImage> images;
  std::vector<std::string> notes;  // why the status is unknown, unreadable images
};

// The version string of an x86 boot image from its first bytes (at least 0x200 + offset +
// 128). nullopt when the header is not a bzImage or the string does not start "N.N".
std::optional<std::string> bzimage_version(std::string_view head);

// Orders kernel release strings like needrestart and grub: numbers numerically, "~" and
// development tags (rc, pre, git, ...) before the release. <0, 0, >0.
int compare_kernel_versions(std::string_view a, std::string_view b);

// Scans ROOT/boot for vmlinu*, kernel* and *.img (not init*). Never fails: an empty or
// missing /boot gives status unknown with a note.
KernelFacts check_kernel(const Root& root, const RunningKernel& running);

struct RebootRequired {
  bool present = false;
  std::vector<std::string> packages;  // from reboot-required.pkgs, in file order
};
// Reads ROOT/var/run/reboot-required and .pkgs; missing files mean "not present".
Result<RebootRequired> check_reboot_required(const Root& root);

}  // namespace nines::advisor
