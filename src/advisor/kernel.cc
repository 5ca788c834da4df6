#include "advisor/kernel.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::advisor {
namespace {

constexpr size_t kBzOffsetField = 0x20e;
constexpr size_t kBzMagicField = 0x202;
constexpr size_t kMinImageSize = 1000000;  // needrestart's sanity limit: smaller is no kernel

// Splits "6.1.0-28rc1" into runs of digits and runs of non-digits.
std::vector<std::string> version_runs(std::string v) {
  // Development tags sort before the release, as in grub and needrestart.
  for (const char* tag : {"pre", "rc", "test", "git", "old", "trunk"}) {
    for (char sep : {'.', '_', '-'}) {
      std::string from = std::string(1, sep) + tag, to = std::string("~") + tag;
      for (size_t p = v.find(from); p != std::string::npos; p = v.find(from, p + to.size()))
        v.replace(p, from.size(), to);
    }
  }
  std::vector<std::string> runs;
  for (char c : v) {
    bool digit = std::isdigit(static_cast<unsigned char>(c));
    if (runs.empty() || (std::isdigit(static_cast<unsigned char>(runs.back().back())) != digit))
      runs.emplace_back();
    runs.back().push_back(c);
  }
  return runs;
}

int char_order(int c) {
  if (c == '~') return -1;
  if (c == 0) return 0;
  if (std::isdigit(c)) return c - '0' + 1;
  if (std::isalpha(c)) return c;
  return c + 256;
}

int compare_strings(const std::string& a, const std::string& b) {
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    int x = char_order(i < a.size() ? static_cast<unsigned char>(a[i]) : 0);
    int y = char_order(i < b.size() ? static_cast<unsigned char>(b[i]) : 0);
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

}  // namespace

const char* kernel_status_name(KernelStatus s) {
  switch (s) {
    case KernelStatus::kUnknown:
      return "unknown";
    case KernelStatus::kCurrent:
      return "current";
    case KernelStatus::kAbiUpgrade:
      return "abi-upgrade";
    case KernelStatus::kVersionUpgrade:
      return "version-upgrade";
  }
  return "unknown";
}

RunningKernel running_kernel() {
  struct utsname u {};
  uname(&u);
  return RunningKernel{u.release, u.version};
}

std::optional<std::string> bzimage_version(std::string_view head) {
  if (head.size() < kBzOffsetField + 2) return std::nullopt;
  if (head.substr(kBzMagicField, 4) != "HdrS") return std::nullopt;
  auto b = reinterpret_cast<const unsigned char*>(head.data());
  size_t off = 0x200 + (b[kBzOffsetField] | (b[kBzOffsetField + 1] << 8));
  if (off >= head.size()) return std::nullopt;
  std::string_view s = head.substr(off, 128);
  s = s.substr(0, s.find('\0'));
  if (s.size() < 3 || !std::isdigit(static_cast<unsigned char>(s[0]))) return std::nullopt;
  size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot + 1 >= s.size() ||
      !std::isdigit(static_cast<unsigned char>(s[dot + 1])))
    return std::nullopt;
  return std::string(s);
}

int compare_kernel_versions(std::string_view a, std::string_view b) {
  std::vector<std::string> x = version_runs(std::string(a)), y = version_runs(std::string(b));
  for (size_t i = 0; i < std::max(x.size(), y.size()); ++i) {
    std::string p = i < x.size() ? x[i] : "0", q = i < y.size() ? y[i] : "0";
    auto np = parse_u64(p), nq = parse_u64(q);
    if (np && nq) {
      if (*np != *nq) return *np < *nq ? -1 : 1;
      continue;
    }
    if (int c = compare_strings(p, q); c != 0) return c;
  }
  return 0;
}

KernelFacts check_kernel(const Root& root, const RunningKernel& running) {
  KernelFacts f;
  f.running_release = running.release;
  f.running_version = running.version;
  std::string boot = root.path("/boot");
  DIR* d = ::opendir(boot.c_str());
  if (!d) {
    f.notes.push_back(fmt::format("list {}: {}", boot, std::strerror(errno)));
    return f;
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const char* n = e->d_name;
    if (starts_with(n, "init")) continue;
    if (fnmatch("vmlinu*", n, 0) == 0 || fnmatch("kernel*", n, 0) == 0 ||
        fnmatch("*.img", n, 0) == 0)
      names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());

  bool running_found_exact = false;
  for (const std::string& n : names) {
    KernelImage img;
    img.path = boot + "/" + n;
    struct stat st {};
    if (::stat(img.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (static_cast<size_t>(st.st_size) < kMinImageSize) {
      f.notes.push_back(
          fmt::format("{}: {} bytes, too small for a kernel image", img.path, st.st_size));
      continue;
    }
    auto fd = Fd::open(img.path, O_RDONLY);
    if (!fd.ok()) {
      f.notes.push_back(fd.error().message);
      continue;
    }
    std::string head(0x200 + 0x10000 + 128, '\0');
    ssize_t got = ::pread(fd->get(), head.data(), 0x210, 0);
    std::optional<std::string> version;
    if (got == 0x210) {
      auto b = reinterpret_cast<const unsigned char*>(head.data());
      size_t off = 0x200 + (b[kBzOffsetField] | (b[kBzOffsetField + 1] << 8));
      ssize_t more = ::pread(fd->get(), head.data() + off, 128, static_cast<off_t>(off));
      if (more > 0) version = bzimage_version(std::string_view(head.data(), off + more));
    }
    if (version) {
      img.version = *version;
      img.release = img.version.substr(0, img.version.find(' '));
      img.from_header = true;
      // An image is the running kernel when its string holds both uname -r and uname -v.
      if (img.version.find(running.release) != std::string::npos &&
          img.version.find(running.version) != std::string::npos)
        running_found_exact = true;
    } else {
      // Not a bzImage: the release from the file name ("vmlinuz-6.1.0-28-amd64").
      std::string r = n;
      size_t dash = r.find('-');
      if (dash == std::string::npos) continue;
      r = r.substr(dash + 1);
      if (r.size() > 4 && r.substr(r.size() - 4) == ".img") r.resize(r.size() - 4);
      if (r.empty() || !std::isdigit(static_cast<unsigned char>(r[0]))) continue;
      img.release = r;
    }
    f.images.push_back(std::move(img));
  }
  if (f.images.empty()) {
    f.notes.push_back(fmt::format("no kernel image found in {}", boot));
    return f;
  }
  const KernelImage* newest = &f.images[0];
  for (const KernelImage& img : f.images)
    if (compare_kernel_versions(img.release, newest->release) > 0) newest = &img;
  f.expected_release = newest->release;
  bool abi_detectable = std::any_of(f.images.begin(), f.images.end(), [&](const KernelImage& i) {
    return i.from_header && i.release == running.release;
  });
  if (f.expected_release != running.release)
    f.status = KernelStatus::kVersionUpgrade;
  else if (abi_detectable && !running_found_exact)
    f.status = KernelStatus::kAbiUpgrade;
  else
    f.status = KernelStatus::kCurrent;
  return f;
}

Result<RebootRequired> check_reboot_required(const Root& root) {
  RebootRequired r;
  std::string flag = root.path("/var/run/reboot-required");
  if (::access(flag.c_str(), F_OK) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return r;
    return errno_error(fmt::format("check {}", flag));
  }
  r.present = true;
  std::string pkgs_path = root.path("/var/run/reboot-required.pkgs");
  auto pkgs = read_file(pkgs_path, 1 << 20);
  if (!pkgs.ok()) {
    if (::access(pkgs_path.c_str(), F_OK) != 0 && errno == ENOENT) return r;
    return pkgs.error().wrap("read the packages that require a reboot");
  }
  for (std::string_view l : split(*pkgs, '\n')) {
    l = trim(l);
    if (!l.empty() && std::find(r.packages.begin(), r.packages.end(), l) == r.packages.end())
      r.packages.emplace_back(l);
  }
  return r;
}

}  // namespace nines::advisor
