#include "advisor/dpkg.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::advisor {
namespace {

constexpr size_t kMaxStatusBytes = 256u << 20;
constexpr size_t kMaxListBytes = 64u << 20;
constexpr size_t kMaxLogBytes = 256u << 20;  // one log file, after decompression

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// "2026-11-30 10:00:01" in local time -> seconds since the epoch.
std::optional<int64_t> parse_log_time(std::string_view date, std::string_view time) {
  if (date.size() != 10 || time.size() != 8) return std::nullopt;
  auto num = [](std::string_view s) { return parse_u64(s); };
  auto y = num(date.substr(0, 4)), mo = num(date.substr(5, 2)), d = num(date.substr(8, 2));
  auto h = num(time.substr(0, 2)), mi = num(time.substr(3, 2)), s = num(time.substr(6, 2));
  if (!y || !mo || !d || !h || !mi || !s) return std::nullopt;
  struct tm tm {};
  tm.tm_year = static_cast<int>(*y) - 1900;
  tm.tm_mon = static_cast<int>(*mo) - 1;
  tm.tm_mday = static_cast<int>(*d);
  tm.tm_hour = static_cast<int>(*h);
  tm.tm_min = static_cast<int>(*mi);
  tm.tm_sec = static_cast<int>(*s);
  tm.tm_isdst = -1;
  time_t t = ::mktime(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return static_cast<int64_t>(t);
}

// A gzip file, decompressed, refusing more than `max` bytes of output.
Result<std::string> read_gzip(const std::string& path, size_t max) {
  gzFile gz = ::gzopen(path.c_str(), "rb");
  if (!gz) return errno_error(fmt::format("open {}", path));
  std::string out;
  char buf[1 << 16];
  while (true) {
    int n = ::gzread(gz, buf, sizeof buf);
    if (n < 0) {
      int errnum = 0;
      std::string why = ::gzerror(gz, &errnum);
      ::gzclose(gz);
      return make_error("decompress {}: {}", path, why);
    }
    if (n == 0) {
      // A truncated stream ends like a complete one; gzerror tells them apart.
      int errnum = Z_OK;
      const char* why = ::gzerror(gz, &errnum);
      if (errnum != Z_OK) {
        std::string msg = why ? why : "error";
        ::gzclose(gz);
        return make_error("decompress {}: {}", path, msg);
      }
      break;
    }
    if (out.size() + static_cast<size_t>(n) > max) {
      ::gzclose(gz);
      return make_error("decompress {}: more than {} bytes", path, max);
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::gzclose(gz);
  return out;
}

}  // namespace

std::vector<DpkgPackage> parse_dpkg_status(std::string_view text) {
  std::vector<DpkgPackage> out;
  DpkgPackage cur;
  bool installed = false;
  auto flush = [&] {
    if (installed && !cur.name.empty()) {
      if (cur.source.empty()) cur.source = cur.name;
      if (cur.source_version.empty()) cur.source_version = cur.version;
      out.push_back(std::move(cur));
    }
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
    if (key == "Package") {
      cur.name = std::string(val);
    } else if (key == "Architecture") {
      cur.arch = std::string(val);
    } else if (key == "Version") {
      cur.version = std::string(val);
    } else if (key == "Status") {
      installed = val == "install ok installed";
    } else if (key == "Source") {
      // "openssl" or "openssl (3.0.15-1~deb12u1)" when the versions differ (binNMUs).
      size_t paren = val.find(" (");
      cur.source = std::string(trim(val.substr(0, paren)));
      if (paren != std::string_view::npos && ends_with(val, ")"))
        cur.source_version = std::string(trim(val.substr(paren + 2, val.size() - paren - 3)));
    }
  }
  flush();
  return out;
}

Result<DpkgStatus> read_dpkg_status(const Root& root) {
  DpkgStatus s;
  s.path = root.path("/var/lib/dpkg/status");
  auto text = read_file(s.path, kMaxStatusBytes);
  if (!text.ok()) {
    if (::access(s.path.c_str(), F_OK) != 0 && errno == ENOENT) return s;
    return text.error().wrap("read the dpkg database");
  }
  s.present = true;
  s.packages = parse_dpkg_status(*text);
  return s;
}

std::string dpkg_list_file(const Root& root, const DpkgPackage& p) {
  struct stat st {};
  std::string list = root.path(fmt::format("/var/lib/dpkg/info/{}:{}.list", p.name, p.arch));
  if (!p.arch.empty() && ::stat(list.c_str(), &st) == 0) return list;
  list = root.path(fmt::format("/var/lib/dpkg/info/{}.list", p.name));
  if (::stat(list.c_str(), &st) == 0) return list;
  return {};
}

std::string merged_usr_path(std::string_view path) {
  for (std::string_view top : {"/lib/", "/lib32/", "/lib64/", "/libx32/", "/bin/", "/sbin/"})
    if (starts_with(path, top)) return "/usr" + std::string(path);
  return std::string(path);
}

std::unordered_map<std::string, std::string> package_owners(
    const Root& root, const std::vector<const DpkgPackage*>& candidates,
    const std::vector<std::string>& paths) {
  std::unordered_map<std::string, std::string> want;  // merged path -> as asked
  for (const std::string& p : paths) want.emplace(merged_usr_path(p), p);
  std::unordered_map<std::string, std::string> owners;
  for (const DpkgPackage* pkg : candidates) {
    if (owners.size() == want.size()) break;
    std::string list = dpkg_list_file(root, *pkg);
    if (list.empty()) continue;
    auto text = read_file(list, kMaxListBytes);
    if (!text.ok()) continue;  // a package whose list vanished owns nothing we can name
    for (std::string_view line : split(*text, '\n')) {
      if (line.empty()) continue;
      auto it = want.find(merged_usr_path(line));
      if (it != want.end()) owners.emplace(it->second, pkg->name);
    }
  }
  return owners;
}

std::vector<DpkgUpgrade> parse_dpkg_log(std::string_view text,
                                        const std::unordered_set<std::string>& packages) {
  std::vector<DpkgUpgrade> out;
  for (std::string_view line : split(text, '\n')) {
    // DATE TIME ACTION PKG[:ARCH] OLD NEW
    std::vector<std::string_view> f = split(trim(line), ' ');
    if (f.size() != 6 || (f[2] != "upgrade" && f[2] != "install")) continue;
    if (f[4] == "<none>" || f[5] == "<none>") continue;  // a first install replaces nothing
    std::string_view pkg = f[3].substr(0, f[3].find(':'));
    if (!packages.count(std::string(pkg))) continue;
    auto t = parse_log_time(f[0], f[1]);
    if (!t) continue;
    out.push_back(DpkgUpgrade{*t, std::string(pkg), std::string(f[4]), std::string(f[5])});
  }
  return out;
}

Result<std::vector<DpkgUpgrade>> read_dpkg_log(const Root& root,
                                               const std::unordered_set<std::string>& packages) {
  std::vector<DpkgUpgrade> all;
  std::string dir = root.path("/var/log");
  DIR* d = ::opendir(dir.c_str());
  if (!d) return all;
  std::vector<std::string> files;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "dpkg.log" || starts_with(n, "dpkg.log.")) files.emplace_back(n);
  }
  ::closedir(d);
  for (const std::string& name : files) {
    std::string path = dir + "/" + name;
    auto text = ends_with(name, ".gz") ? read_gzip(path, kMaxLogBytes)
                                       : read_file(path, kMaxLogBytes);
    if (!text.ok()) return text.error().wrap("read dpkg's log");
    std::vector<DpkgUpgrade> part = parse_dpkg_log(*text, packages);
    all.insert(all.end(), std::make_move_iterator(part.begin()),
               std::make_move_iterator(part.end()));
  }
  std::stable_sort(all.begin(), all.end(), [](const DpkgUpgrade& a, const DpkgUpgrade& b) {
    return a.time_unix < b.time_unix;
  });
  return all;
}

std::optional<std::string> version_replaced_since(const std::vector<DpkgUpgrade>& log,
                                                  std::string_view package, int64_t since_unix) {
  // The log has whole seconds: an upgrade logged in the second the code started may have
  // come after it; counting it errs towards the older version.
  for (const DpkgUpgrade& u : log)
    if (u.package == package && u.time_unix >= since_unix) return u.old_version;
  return std::nullopt;
}

}  // namespace nines::advisor
