#include "advisor/scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <map>
#include <tuple>
#include <unordered_map>

#include "advisor/interp.h"
#include "core/fd.h"
#include "core/strings.h"

namespace nines::advisor {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Reads an open /proc file from its start into `buf`. Returns 0 or the errno.
int read_fd(int fd, std::string& buf) {
  buf.clear();
  size_t used = 0;
  for (;;) {
    if (buf.size() - used < 16384) buf.resize(used + 65536);
    ssize_t n = ::read(fd, buf.data() + used, buf.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  buf.resize(used);
  return 0;
}

// Reads a /proc file into `buf` (reused across processes to avoid reallocations).
// Returns 0 or the errno of the failure.
int read_proc_file(const char* path, std::string& buf) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = read_fd(fd, buf);
  ::close(fd);
  return err;
}

bool gone(int err) { return err == ENOENT || err == ESRCH; }

// struct procmap_query and PROCMAP_QUERY of <linux/fs.h> (Linux 6.11, uapi, stable);
// Debian 12's headers (6.1) predate it.
struct ProcmapQuery {
  uint64_t size, query_flags, query_addr;
  uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
  uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
  uint64_t vma_name_addr, build_id_addr;
};
static_assert(sizeof(ProcmapQuery) == 104);
constexpr unsigned long kProcmapQuery = 0xC0686611;  // _IOWR('f', 17, struct procmap_query)
constexpr uint64_t kQueryExecutable = 0x04;
constexpr uint64_t kQueryCoveringOrNext = 0x10;
constexpr uint64_t kQueryFileBacked = 0x20;

// Mappings that are not programs or libraries on a filesystem.
bool special_path(std::string_view p) {
  return p.empty() || p.front() != '/' || starts_with(p, "/dev/") || starts_with(p, "/memfd:") ||
         starts_with(p, "/SYSV") || starts_with(p, "/anon_hugepage") || starts_with(p, "/proc/") ||
         starts_with(p, "/[");
}

// Executable mappings the kernel provides to every process.
bool is_kernel_special(std::string_view name) {
  return name == "[vdso]" || name == "[vsyscall]" || name == "[uprobes]";
}

struct FileId {
  bool exists = false;
  int err = 0;
  uint64_t dev = 0, ino = 0;
  uint64_t nlink = 0;
};

FileId stat_id(const std::string& path) {
  struct stat st {};
  FileId id;
  if (::stat(path.c_str(), &st) != 0) {
    id.err = errno;
    return id;
  }
  id.exists = true;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.nlink = st.st_nlink;
  return id;
}

// Per-scan state: the stat of a path is shared by every process that sees the same
// filesystem tree (same mount namespace and same root), which is nearly all of them.
class Scanner {
 public:
  explicit Scanner(const ScanOptions& opts) : proc_(opts.proc), use_query_(opts.procmap_query) {
    self_view_ = view_of("self");
    struct timespec rt {}, bt {};
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_BOOTTIME, &bt);
    boot_realtime_ns_ = (rt.tv_sec - bt.tv_sec) * 1'000'000'000ll + (rt.tv_nsec - bt.tv_nsec);
    if (long hz = sysconf(_SC_CLK_TCK); hz > 0) tick_ns_ = 1'000'000'000 / hz;
    if (opts.interpreters) {
      SourceLimits limits;
      limits.max_files = opts.interp_max_files;
      limits.max_depth = opts.interp_max_depth;
      sources_.emplace(opts.proc, limits);
    }
  }

  size_t interpreted() const { return interpreted_; }
  size_t source_files() const { return sources_ ? sources_->files_looked_at() : 0; }
  std::vector<std::string>& warnings() { return warnings_; }

  // What became of a process: scanned, exited under us, or without user memory (a kernel
  // thread or a zombie).
  enum class Outcome { kScanned, kGone, kNoMemory };
  // See scan_process().
  Result<std::optional<StaleProcess>> scan(pid_t pid, size_t* mappings, Outcome* outcome);

 private:
  struct View {
    uint64_t mnt_ns = 0, root_dev = 0, root_ino = 0;
    bool ok = false;
    auto key() const { return std::tie(mnt_ns, root_dev, root_ino); }
  };
  View view_of(const std::string& pid_dir) {
    View v;
    struct stat ns {
    }, root{};
    std::string base = proc_ + "/" + pid_dir;
    if (::stat((base + "/ns/mnt").c_str(), &ns) != 0) return v;
    if (::stat((base + "/root").c_str(), &root) != 0) return v;
    v.mnt_ns = ns.st_ino;
    v.root_dev = root.st_dev;
    v.root_ino = root.st_ino;
    v.ok = true;
    return v;
  }

  // stat of `path` as process `pid` (whose view is `v`) sees it.
  FileId stat_as(pid_t pid, const View& v, const std::string& path) {
    bool same = v.ok && self_view_.ok && v.key() == self_view_.key() && proc_ == "/proc";
    auto key = std::make_tuple(v.mnt_ns, v.root_dev, v.root_ino, path);
    if (v.ok) {
      auto it = cache_.find(key);
      if (it != cache_.end()) return it->second;
    }
    FileId id = same ? stat_id(path) : stat_id(fmt::format("{}/{}/root{}", proc_, pid, path));
    // "Missing" through /proc/PID/root may only mean that PID exited meanwhile: that is
    // not an answer for the other processes of its view, so it is cached only while PID's
    // root is still there.
    bool cacheable = v.ok && (id.exists || same ||
                              ::access(fmt::format("{}/{}/root/", proc_, pid).c_str(), F_OK) == 0);
    if (cacheable) cache_.emplace(std::move(key), id);
    return id;
  }

  struct Mapping {
    uint64_t start, end, dev, ino;
    std::string_view path;
  };
  // Stale or not, for one executable mapping of `pid`; nullopt when current.
  std::optional<StaleObject> evaluate(pid_t pid, const View& view, const Mapping& m);
  int scan_query(pid_t pid, int maps_fd, const View& view, StaleProcess& proc, size_t* mappings);
  int scan_text(pid_t pid, int maps_fd, const View& view, StaleProcess& proc, size_t* mappings);
  // Interpreted programs: appends the source files changed since the process started.
  void check_sources(pid_t pid, const View& view, StaleProcess& proc);

  struct Verdict {
    bool special = false;      // not a program or library (/dev, memfd, ...)
    bool anonymous = false;    // code with no file on disk behind it (memfd, ...)
    bool interpreter = false;  // a Python, Perl or Ruby interpreter's executable
    std::optional<StaleObject> stale;
  };

  // Seconds since the epoch of a start time in ticks since boot.
  int64_t start_unix(uint64_t ticks) const {
    return (boot_realtime_ns_ + static_cast<int64_t>(ticks) * tick_ns_) / 1'000'000'000;
  }

  std::string proc_;
  int64_t boot_realtime_ns_ = 0;  // CLOCK_REALTIME at boot
  int64_t tick_ns_ = 10'000'000;
  View self_view_;
  bool use_query_ = true;
  std::map<std::tuple<uint64_t, uint64_t, uint64_t, std::string>, FileId> cache_;
  struct ObjectKey {
    uint64_t mnt_ns, root_dev, root_ino, dev, ino;
    bool operator==(const ObjectKey&) const = default;
  };
  struct ObjectKeyHash {
    size_t operator()(const ObjectKey& k) const {
      uint64_t h = k.ino * 0x9e3779b97f4a7c15ull;
      for (uint64_t v : {k.dev, k.mnt_ns, k.root_dev, k.root_ino}) h = (h ^ v) * 0x100000001b3ull;
      return static_cast<size_t>(h);
    }
  };
  std::unordered_map<ObjectKey, Verdict, ObjectKeyHash> verdicts_;
  std::string maps_buf_, small_buf_;
  std::vector<char> name_buf_ = std::vector<char>(PATH_MAX + 32);
  // Interpreted programs: the process being scanned maps an interpreter's executable.
  std::optional<SourceChecker> sources_;
  bool maps_interpreter_ = false;
  size_t interpreted_ = 0;
  std::vector<std::string> warnings_;
};

// The basename of an interpreter's executable (a deleted one keeps the kernel's mark).
bool interpreter_name(std::string_view path) {
  if (ends_with(path, kDeletedSuffix)) path.remove_suffix(kDeletedSuffix.size());
  return interpreter_language(path).has_value();
}

std::optional<StaleObject> Scanner::evaluate(pid_t pid, const View& view, const Mapping& m) {
  std::string map_file = fmt::format("{}/{}/map_files/{:x}-{:x}", proc_, pid, m.start, m.end);
  std::optional<FileId> mapped_real;  // the mapped object itself, stat'ed on demand
  auto same_object = [&](const FileId& now) {
    if (!now.exists) return false;
    if (now.dev == m.dev && now.ino == m.ino) return true;
    if (!mapped_real) mapped_real = stat_id(map_file);
    return mapped_real->exists && mapped_real->dev == now.dev && mapped_real->ino == now.ino;
  };

  std::string literal(m.path);
  FileId now = stat_as(pid, view, literal);
  if (same_object(now)) return std::nullopt;  // current, even if its name ends in " (deleted)"

  StaleObject obj;
  obj.mapped_dev = m.dev;
  obj.mapped_ino = m.ino;
  obj.map_file = map_file;
  if (ends_with(literal, kDeletedSuffix)) {
    std::string stripped = literal.substr(0, literal.size() - kDeletedSuffix.size());
    FileId at = stat_as(pid, view, stripped);
    if (same_object(at)) return std::nullopt;
    obj.path = stripped;
    obj.kind = at.exists ? StaleKind::kReplaced : StaleKind::kDeleted;
  } else {
    obj.path = literal;
    obj.kind = now.exists ? StaleKind::kReplaced : StaleKind::kDeleted;
  }
  return obj;
}

void Scanner::check_sources(pid_t pid, const View& view, StaleProcess& proc) {
  char path[64];
  snprintf(path, sizeof path, "%s/%d/exe", proc_.c_str(), pid);
  char link[PATH_MAX];
  ssize_t n = ::readlink(path, link, sizeof link - 1);
  if (n <= 0) return;
  std::string exe(link, static_cast<size_t>(n));
  if (ends_with(exe, kDeletedSuffix)) exe.resize(exe.size() - kDeletedSuffix.size());
  // The executable itself, not a program that maps an interpreter's file for another use.
  std::optional<Language> lang = interpreter_language(exe);
  if (!lang) return;
  ++interpreted_;
  SourceChecker::View v;
  v.mnt_ns = view.mnt_ns;
  v.root_dev = view.root_dev;
  v.root_ino = view.root_ino;
  if (!view.ok) {  // an unknown view shares no cache entry with another process
    v.mnt_ns = ~0ull;
    v.root_dev = static_cast<uint64_t>(pid);
  }
  bool same = view.ok && self_view_.ok && view.key() == self_view_.key() && proc_ == "/proc";
  if (!same) v.prefix = fmt::format("{}/{}/root", proc_, pid);
  std::string warning;
  for (StaleObject& o : sources_->check(pid, *lang, exe, v, &warning))
    proc.objects.push_back(std::move(o));
  if (!warning.empty()) warnings_.push_back(std::move(warning));
}

// PROCMAP_QUERY (Linux 6.11+): asks the kernel for the executable file mappings only,
// without formatting every mapping's path as text. The name is asked once per object and
// view; the verdict of an object (dev, inode) is shared by all processes of the view.
// Returns 0, or the errno that stopped it (ENOTTY: no such ioctl on this kernel).
int Scanner::scan_query(pid_t pid, int maps_fd, const View& view, StaleProcess& proc,
                        size_t* mappings) {
  ProcmapQuery q{};
  for (uint64_t addr = 0;;) {
    q = ProcmapQuery{};
    q.size = sizeof q;
    q.query_flags = kQueryCoveringOrNext | kQueryExecutable;
    q.query_addr = addr;
    if (::ioctl(maps_fd, kProcmapQuery, &q) != 0) return errno == ENOENT ? 0 : errno;
    addr = q.vma_end;
    if (q.inode == 0) {
      // Executable memory that is no file: the vDSO, a JIT, or nines patch code.
      ProcmapQuery named = q;
      named.query_addr = q.vma_start;
      named.vma_name_size = static_cast<uint32_t>(name_buf_.size());
      named.vma_name_addr = reinterpret_cast<uint64_t>(name_buf_.data());
      if (::ioctl(maps_fd, kProcmapQuery, &named) != 0) return errno == ENOENT ? ESRCH : errno;
      std::string_view name(name_buf_.data(), named.vma_name_size ? named.vma_name_size - 1 : 0);
      if (!is_kernel_special(name)) proc.anonymous_code = true;
      continue;
    }
    uint64_t dev = makedev(q.dev_major, q.dev_minor);
    ObjectKey key{view.mnt_ns, view.root_dev, view.root_ino, dev, q.inode};
    auto it = verdicts_.find(key);
    if (it == verdicts_.end() || !view.ok) {
      ProcmapQuery named = q;
      named.query_addr = q.vma_start;
      named.vma_name_size = static_cast<uint32_t>(name_buf_.size());
      named.vma_name_addr = reinterpret_cast<uint64_t>(name_buf_.data());
      if (::ioctl(maps_fd, kProcmapQuery, &named) != 0) return errno == ENOENT ? ESRCH : errno;
      Verdict v;
      std::string_view name(name_buf_.data(), named.vma_name_size ? named.vma_name_size - 1 : 0);
      v.special = special_path(name);
      v.anonymous = v.special && !is_kernel_special(name);
      v.interpreter = !v.special && interpreter_name(name);
      if (!v.special)
        v.stale = evaluate(pid, view, Mapping{q.vma_start, q.vma_end, dev, q.inode, name});
      it = verdicts_.insert_or_assign(key, std::move(v)).first;
    }
    if (!it->second.special) ++*mappings;
    if (it->second.anonymous) proc.anonymous_code = true;
    if (it->second.interpreter) maps_interpreter_ = true;
    // An object mapped executable twice (rare) is reported once.
    bool known = std::any_of(proc.objects.begin(), proc.objects.end(), [&](const StaleObject& o) {
      return o.mapped_dev == dev && o.mapped_ino == q.inode;
    });
    if (it->second.stale && !known) {
      StaleObject o = *it->second.stale;
      o.map_file = fmt::format("{}/{}/map_files/{:x}-{:x}", proc_, pid, q.vma_start, q.vma_end);
      proc.objects.push_back(std::move(o));
    }
  }
}

// The text of /proc/PID/maps, for kernels without PROCMAP_QUERY.
int Scanner::scan_text(pid_t pid, int maps_fd, const View& view, StaleProcess& proc,
                       size_t* mappings) {
  if (int err = read_fd(maps_fd, maps_buf_); err != 0) return err;
  if (maps_buf_.empty()) return ESRCH;  // no memory map
  struct Seen {
    uint64_t dev, ino;
    std::string_view path;
  };
  std::vector<Seen> seen;
  std::string_view all(maps_buf_);
  while (!all.empty()) {
    size_t nl = all.find('\n');
    std::string_view line = all.substr(0, nl);
    all.remove_prefix(nl == std::string_view::npos ? all.size() : nl + 1);
    std::optional<MapsLine> m = parse_maps_line(line);
    if (!m || m->perms[2] != 'x') continue;
    if (m->inode == 0 || special_path(m->path)) {
      if (!is_kernel_special(m->path)) proc.anonymous_code = true;
      continue;
    }
    uint64_t mdev = makedev(m->dev_major, m->dev_minor);
    bool dup = false;
    for (const Seen& s : seen)
      if (s.dev == mdev && s.ino == m->inode && s.path == m->path) dup = true;
    if (dup) continue;
    seen.push_back({mdev, m->inode, m->path});
    ++*mappings;
    if (sources_ && interpreter_name(m->path)) maps_interpreter_ = true;
    if (auto o = evaluate(pid, view, Mapping{m->start, m->end, mdev, m->inode, m->path}))
      proc.objects.push_back(std::move(*o));
  }
  return 0;
}

Result<std::optional<StaleProcess>> Scanner::scan(pid_t pid, size_t* mappings, Outcome* outcome) {
  *outcome = Outcome::kScanned;
  char path[64];
  snprintf(path, sizeof path, "%s/%d/maps", proc_.c_str(), pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (gone(errno)) {
      *outcome = Outcome::kGone;
      return std::optional<StaleProcess>{};
    }
    return errno_error(fmt::format("open {}", path));
  }
  Fd maps(fd);
  View view = view_of(std::to_string(pid));
  StaleProcess proc;
  maps_interpreter_ = false;
  int err = ENOTTY;
  if (use_query_) {
    err = scan_query(pid, maps.get(), view, proc, mappings);
    if (err == ENOTTY || err == EINVAL || err == E2BIG) {
      use_query_ = false;  // an older kernel: text from now on
      proc.objects.clear();
    }
  }
  if (!use_query_) err = scan_text(pid, maps.get(), view, proc, mappings);
  if (err != 0) {
    if (gone(err)) {
      // No memory map: a kernel thread or a zombie if /proc/PID is still there.
      snprintf(path, sizeof path, "%s/%d", proc_.c_str(), pid);
      *outcome = ::access(path, F_OK) == 0 ? Outcome::kNoMemory : Outcome::kGone;
      return std::optional<StaleProcess>{};
    }
    return errno_error(fmt::format("read {}", path), err);
  }
  if (maps_interpreter_ && sources_) check_sources(pid, view, proc);
  if (proc.objects.empty()) return std::optional<StaleProcess>{};

  // Only stale processes pay for the details below.
  proc.pid = pid;
  snprintf(path, sizeof path, "%s/%d/exe", proc_.c_str(), pid);
  char link[PATH_MAX];
  ssize_t n = ::readlink(path, link, sizeof link - 1);
  if (n > 0) {
    proc.exe.assign(link, static_cast<size_t>(n));
    if (ends_with(proc.exe, kDeletedSuffix) && access(proc.exe.c_str(), F_OK) != 0)
      proc.exe.resize(proc.exe.size() - kDeletedSuffix.size());
  }
  for (StaleObject& o : proc.objects) o.is_executable = !proc.exe.empty() && o.path == proc.exe;

  snprintf(path, sizeof path, "%s/%d/status", proc_.c_str(), pid);
  if (int err = read_proc_file(path, small_buf_); err != 0) {
    if (gone(err)) {
      *outcome = Outcome::kGone;
      return std::optional<StaleProcess>{};
    }
    return errno_error(fmt::format("read {}", path), err);
  }
  for (std::string_view l : split(small_buf_, '\n')) {
    if (starts_with(l, "Name:")) proc.comm = std::string(trim(l.substr(5)));
    if (starts_with(l, "PPid:"))
      proc.ppid = static_cast<pid_t>(parse_u64(trim(l.substr(5))).value_or(0));
    if (starts_with(l, "Uid:")) {
      std::string_view rest = trim(l.substr(4));
      proc.uid = static_cast<int64_t>(parse_u64(rest.substr(0, rest.find('\t'))).value_or(0));
    }
  }
  snprintf(path, sizeof path, "%s/%d/cgroup", proc_.c_str(), pid);
  if (read_proc_file(path, small_buf_) == 0) {
    proc.owner = owner_from_cgroup(small_buf_);
    proc.cgroup = std::string(systemd_cgroup(small_buf_));
  }
  if (pid == 1) proc.owner = Owner{OwnerKind::kManager, "systemd-manager", -1};
  snprintf(path, sizeof path, "%s/%d/stat", proc_.c_str(), pid);
  if (read_proc_file(path, small_buf_) == 0) {
    if (auto ticks = stat_start_ticks(small_buf_)) proc.start_unix = start_unix(*ticks);
  }
  return std::optional<StaleProcess>(std::move(proc));
}

}  // namespace

std::optional<uint64_t> stat_start_ticks(std::string_view stat) {
  size_t rp = stat.rfind(')');
  if (rp == std::string_view::npos || rp + 2 > stat.size()) return std::nullopt;
  std::vector<std::string_view> fields = split(stat.substr(rp + 2), ' ');
  if (fields.size() < 20) return std::nullopt;
  return parse_u64(fields[19]);
}

const char* stale_kind_name(StaleKind k) {
  return k == StaleKind::kDeleted ? "deleted" : "replaced";
}

const char* owner_kind_name(OwnerKind k) {
  switch (k) {
    case OwnerKind::kUnit:
      return "unit";
    case OwnerKind::kSession:
      return "session";
    case OwnerKind::kUserManager:
      return "user-manager";
    case OwnerKind::kContainer:
      return "container";
    case OwnerKind::kManager:
      return "manager";
    case OwnerKind::kNone:
      return "none";
  }
  return "none";
}

bool StaleProcess::fully_patched() const {
  return std::all_of(objects.begin(), objects.end(),
                     [](const StaleObject& o) { return !o.patched_by.empty(); });
}

std::optional<MapsLine> parse_maps_line(std::string_view line) {
  // "start-end perms offset major:minor inode    path"; the path starts after the padding
  // that follows the inode and may itself contain spaces.
  MapsLine m;
  auto field = [&line]() -> std::string_view {
    size_t b = line.find_first_not_of(' ');
    if (b == std::string_view::npos) return {};
    line.remove_prefix(b);
    size_t e = line.find(' ');
    std::string_view f = line.substr(0, e);
    line.remove_prefix(e == std::string_view::npos ? line.size() : e);
    return f;
  };
  std::string_view range = field(), perms = field(), off = field(), dev = field(), ino = field();
  if (ino.empty() || perms.size() != 4) return std::nullopt;
  size_t dash = range.find('-'), colon = dev.find(':');
  if (dash == std::string_view::npos || colon == std::string_view::npos) return std::nullopt;
  auto start = parse_u64(range.substr(0, dash), 16), end = parse_u64(range.substr(dash + 1), 16);
  auto offset = parse_u64(off, 16), inode = parse_u64(ino, 10);
  auto major = parse_u64(dev.substr(0, colon), 16), minor = parse_u64(dev.substr(colon + 1), 16);
  if (!start || !end || !offset || !inode || !major || !minor) return std::nullopt;
  m.start = *start;
  m.end = *end;
  m.offset = *offset;
  m.inode = *inode;
  m.dev_major = static_cast<uint32_t>(*major);
  m.dev_minor = static_cast<uint32_t>(*minor);
  std::copy(perms.begin(), perms.end(), m.perms);
  size_t b = line.find_first_not_of(' ');
  m.path = b == std::string_view::npos ? std::string_view{} : line.substr(b);
  return m;
}

std::string_view systemd_cgroup(std::string_view text) {
  // cgroup v2 ("0::PATH") or systemd's v1 hierarchy ("N:name=systemd:PATH"); in hybrid
  // mode both exist and the more specific one wins (a bare "/" says nothing).
  std::string_view v2, v1;
  for (std::string_view l : split(text, '\n')) {
    if (starts_with(l, "0::")) {
      v2 = l.substr(3);
      continue;
    }
    size_t c1 = l.find(':');
    if (c1 == std::string_view::npos) continue;
    size_t c2 = l.find(':', c1 + 1);
    if (c2 != std::string_view::npos && l.substr(c1 + 1, c2 - c1 - 1) == "name=systemd")
      v1 = l.substr(c2 + 1);
  }
  return (v2.empty() || v2 == "/") && !v1.empty() ? v1 : v2;
}

Owner owner_from_cgroup(std::string_view text) {
  std::string_view cg = systemd_cgroup(text);
  Owner o;
  std::vector<std::string_view> parts;
  for (std::string_view p : split(cg, '/'))
    if (!p.empty()) parts.push_back(p);
  auto strip = [](std::string_view s, std::string_view pre, std::string_view suf) {
    return s.substr(pre.size(), s.size() - pre.size() - suf.size());
  };
  auto short_id = [](std::string_view id) { return std::string(id.substr(0, 12)); };
  // Containers first: their processes live below the container's own cgroup.
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    if (starts_with(p, "docker-") && ends_with(p, ".scope"))
      return Owner{OwnerKind::kContainer, "docker:" + short_id(strip(p, "docker-", ".scope")), -1};
    if (starts_with(p, "libpod-") && ends_with(p, ".scope") && !starts_with(p, "libpod-conmon"))
      return Owner{OwnerKind::kContainer, "podman:" + short_id(strip(p, "libpod-", ".scope")), -1};
    if (p == "docker" && i + 1 < parts.size())
      return Owner{OwnerKind::kContainer, "docker:" + short_id(parts[i + 1]), -1};
    if ((p == "lxc" || p == "lxc.payload") && i + 1 < parts.size())
      return Owner{OwnerKind::kContainer, "lxc:" + std::string(parts[i + 1]), -1};
    if (starts_with(p, "lxc.payload."))
      return Owner{OwnerKind::kContainer, "lxc:" + std::string(p.substr(12)), -1};
    if (starts_with(p, "kubepods"))
      return Owner{OwnerKind::kContainer, "kubernetes:" + std::string(parts.back()), -1};
  }
  // systemd-machined guests (nspawn, libvirt) once the engines above did not match.
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i] == "machine.slice" && ends_with(parts[i + 1], ".scope")) {
      std::string_view m = parts[i + 1];
      m = starts_with(m, "machine-") ? strip(m, "machine-", ".scope") : strip(m, "", ".scope");
      return Owner{OwnerKind::kContainer, "machine:" + std::string(m), -1};
    }
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    if (starts_with(p, "user-") && ends_with(p, ".slice") && i + 1 < parts.size()) {
      int64_t uid = static_cast<int64_t>(parse_u64(strip(p, "user-", ".slice")).value_or(0));
      std::string_view next = parts[i + 1];
      if (starts_with(next, "session-") && ends_with(next, ".scope"))
        return Owner{OwnerKind::kSession, std::string(strip(next, "", ".scope")), uid};
      if (starts_with(next, "user@") && ends_with(next, ".service"))
        return Owner{OwnerKind::kUserManager, std::string(next), uid};
    }
  }
  // A system service: the innermost ".service" (a service may create sub-cgroups).
  for (size_t i = parts.size(); i-- > 0;)
    if (ends_with(parts[i], ".service")) return Owner{OwnerKind::kUnit, std::string(parts[i]), -1};
  return o;
}

Result<std::optional<StaleProcess>> scan_process(pid_t pid, const ScanOptions& opts) {
  Scanner s(opts);
  size_t mappings = 0;
  Scanner::Outcome outcome;
  return s.scan(pid, &mappings, &outcome);
}

Result<ScanResult> scan_processes(const ScanOptions& opts) {
  DIR* d = ::opendir(opts.proc.c_str());
  if (!d) return errno_error(fmt::format("list {}", opts.proc));
  std::vector<pid_t> pids;
  while (dirent* e = ::readdir(d)) {
    auto v = parse_u64(e->d_name);
    if (v) pids.push_back(static_cast<pid_t>(*v));
  }
  ::closedir(d);
  std::sort(pids.begin(), pids.end());

  ScanResult out;
  Scanner scanner(opts);
  pid_t self = getpid();
  for (pid_t pid : pids) {
    if (pid == self || std::find(opts.ignore.begin(), opts.ignore.end(), pid) != opts.ignore.end())
      continue;
    Scanner::Outcome outcome;
    auto r = scanner.scan(pid, &out.mappings, &outcome);
    if (outcome == Scanner::Outcome::kGone) {
      ++out.vanished;
      continue;
    }
    if (outcome == Scanner::Outcome::kNoMemory) continue;
    ++out.processes;
    if (!r.ok()) {
      out.warnings.push_back(r.error().message);
      continue;
    }
    if (*r) out.stale.push_back(std::move(**r));
  }
  out.interpreted = scanner.interpreted();
  out.source_files = scanner.source_files();
  for (std::string& w : scanner.warnings()) out.warnings.push_back(std::move(w));
  return out;
}

}  // namespace nines::advisor
