#include "advisor/bootloader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::advisor {

std::vector<DpkgPackage> parse_dpkg_status(std::string_view text) {
  std::vector<DpkgPackage> out;
  DpkgPackage cur;
  bool installed = false;
  auto flush = [&] {
    if (installed && !cur.name.empty()) out.push_back(cur);
    cur = DpkgPackage{};
    installed = false;
  };
  for (std::string_view line : split(text, '\n')) {
    if (line.empty()) {
      flush();
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') continue;  // continuation
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), val = trim(line.substr(colon + 1));
    if (key == "Package")
      cur.name = std::string(val);
    else if (key == "Architecture")
      cur.arch = std::string(val);
    else if (key == "Version")
      cur.version = std::string(val);
    else if (key == "Status")
      installed = val == "install ok installed";
  }
  flush();
  return out;
}

bool is_bootloader_package(std::string_view name) {
  return starts_with(name, "grub") || name == "shim-signed";
}

Result<int64_t> boot_time_unix() {
  std::string stat = NINES_TRY(read_file("/proc/stat", 1 << 20));
  for (std::string_view l : split(stat, '\n'))
    if (starts_with(l, "btime ")) {
      if (auto v = parse_i64(trim(l.substr(6)))) return *v;
    }
  return make_error("read the boot time: no btime line in /proc/stat");
}

Result<BootloaderFacts> check_bootloader(const Root& root, int64_t boot_unix) {
  BootloaderFacts f;
  f.boot_unix = boot_unix;
  std::string status_path = root.path("/var/lib/dpkg/status");
  auto status = read_file(status_path, 256u << 20);
  if (!status.ok()) {
    if (::access(status_path.c_str(), F_OK) != 0 && errno == ENOENT) {
      f.notes.push_back(
          fmt::format("{} does not exist: bootloader updates not checked", status_path));
      return f;
    }
    return status.error().wrap("check bootloader packages");
  }
  for (const DpkgPackage& p : parse_dpkg_status(*status)) {
    if (!is_bootloader_package(p.name)) continue;
    struct stat st {};
    std::string list = root.path(fmt::format("/var/lib/dpkg/info/{}:{}.list", p.name, p.arch));
    if (::stat(list.c_str(), &st) != 0) {
      list = root.path(fmt::format("/var/lib/dpkg/info/{}.list", p.name));
      if (::stat(list.c_str(), &st) != 0) {
        f.notes.push_back(fmt::format("{}: no dpkg file list, install time unknown", p.name));
        continue;
      }
    }
    if (st.st_mtime > boot_unix)
      f.upgraded.push_back(PackageChange{p.name, p.version, static_cast<int64_t>(st.st_mtime)});
  }
  return f;
}

}  // namespace nines::advisor
