#include "klp/livepatch.h"

#include <sys/klog.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/fd.h"
#include "core/strings.h"

namespace fs = std::filesystem;

namespace nines::klp {
namespace {

std::string read_trimmed(const std::string& path) {
  auto r = read_file(path, 1u << 20);
  return r ? std::string(trim(*r)) : std::string();
}

}  // namespace

Result<std::optional<KernelPatchState>> read_patch(const KernelRoots& roots,
                                                   const std::string& module_name) {
  const fs::path dir = fs::path(roots.sys) / "kernel/livepatch" / module_name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::optional<KernelPatchState>();
  KernelPatchState p;
  p.module_name = module_name;
  p.enabled = read_trimmed(dir / "enabled") == "1";
  p.transition = read_trimmed(dir / "transition") == "1";
  const fs::path params = fs::path(roots.sys) / "module" / module_name / "parameters";
  p.id = read_trimmed(params / "nines_id");
  p.version = parse_i64(read_trimmed(params / "nines_version")).value_or(0);
  // Objects are the sub-folders; functions are "<name>,<sympos>" folders inside them.
  for (const auto& obj : fs::directory_iterator(dir, ec)) {
    if (!obj.is_directory(ec)) continue;
    for (const auto& fn : fs::directory_iterator(obj.path(), ec)) {
      if (!fn.is_directory(ec)) continue;
      std::string name = fn.path().filename().string();
      name = name.substr(0, name.find(','));
      p.functions.push_back(obj.path().filename().string() + ":" + name);
    }
  }
  std::sort(p.functions.begin(), p.functions.end());
  return std::optional<KernelPatchState>(std::move(p));
}

Result<std::vector<KernelPatchState>> read_patches(const KernelRoots& roots) {
  std::vector<KernelPatchState> out;
  const fs::path dir = fs::path(roots.sys) / "kernel/livepatch";
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  fs::directory_iterator it(dir, ec);
  if (ec) return make_error("list kernel patches: read {}: {}", dir.string(), ec.message());
  for (const auto& e : it) {
    auto p = NINES_TRY(read_patch(roots, e.path().filename().string()));
    if (p) out.push_back(std::move(*p));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.module_name < b.module_name; });
  return out;
}

std::vector<std::string> nines_modules(const KernelRoots& roots) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& m : fs::directory_iterator(fs::path(roots.sys) / "module", ec))
    if (fs::exists(m.path() / "parameters/nines_id", ec))
      out.push_back(m.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<BlockingTask> blocking_tasks(const KernelRoots& roots, int target, pid_t self) {
  std::vector<BlockingTask> out;
  std::error_code ec;
  for (const auto& p : fs::directory_iterator(roots.proc, ec)) {
    auto pid = parse_i64(p.path().filename().string());
    if (!pid || *pid == self) continue;
    std::error_code ec2;
    for (const auto& t : fs::directory_iterator(p.path() / "task", ec2)) {
      auto tid = parse_i64(t.path().filename().string());
      if (!tid) continue;
      auto state = parse_i64(read_trimmed(t.path() / "patch_state"));
      // -1 means no transition for this task; only 0/1 different from target blocks.
      if (!state || *state < 0 || *state == target) continue;
      BlockingTask b;
      b.pid = static_cast<pid_t>(*pid);
      b.tid = static_cast<pid_t>(*tid);
      b.comm = read_trimmed(t.path() / "comm");
      b.stack = read_trimmed(t.path() / "stack");
      out.push_back(std::move(b));
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.tid < b.tid; });
  return out;
}

std::string describe(const BlockingTask& t, size_t max_frames) {
  std::string s = t.pid == t.tid ? fmt::format("pid {} ({})", t.pid, t.comm)
                                 : fmt::format("pid {} tid {} ({})", t.pid, t.tid, t.comm);
  std::vector<std::string> frames;
  for (auto line : split(t.stack, '\n')) {
    // "[<0>] do_nanosleep+0x6b/0x150"
    line = trim(line);
    if (size_t b = line.find("] "); b != std::string_view::npos) line = line.substr(b + 2);
    if (!line.empty()) frames.emplace_back(line);
    if (frames.size() == max_frames) break;
  }
  if (frames.empty()) return s + ": stack unavailable";
  s += ": ";
  for (size_t i = 0; i < frames.size(); ++i) s += (i ? " <- " : "") + frames[i];
  return s;
}

std::string build_id_from_notes(std::string_view notes) {
  // Elf64_Nhdr: namesz, descsz, type (4 bytes each), name and desc padded to 4.
  size_t off = 0;
  auto u32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, notes.data() + at, 4);
    return v;
  };
  while (off + 12 <= notes.size()) {
    uint32_t namesz = u32(off), descsz = u32(off + 4), type = u32(off + 8);
    size_t name_off = off + 12;
    size_t desc_off = name_off + ((namesz + 3u) & ~3u);
    size_t next = desc_off + ((descsz + 3u) & ~3u);
    if (namesz > notes.size() || descsz > notes.size() || next > notes.size()) break;
    if (type == 3 /* NT_GNU_BUILD_ID */ && namesz == 4 &&
        notes.substr(name_off, 4) == std::string_view("GNU\0", 4)) {
      auto d = notes.substr(desc_off, descsz);
      return to_hex({reinterpret_cast<const uint8_t*>(d.data()), d.size()});
    }
    off = next;
  }
  return {};
}

std::vector<std::string> kernel_log_lines(const std::vector<std::string>& needles, size_t max) {
  int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, nullptr, 0);
  if (size <= 0) return {};
  std::string buf(static_cast<size_t>(size), '\0');
  int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf.data(), size);
  if (n <= 0) return {};
  buf.resize(static_cast<size_t>(n));
  std::vector<std::string> out;
  for (auto line : split(buf, '\n')) {
    bool hit = false;
    for (const auto& nd : needles) hit = hit || line.find(nd) != std::string_view::npos;
    if (!hit) continue;
    // "<4>[    3.40] text" -> "text"
    if (size_t b = line.find("] "); b != std::string_view::npos && b < 24)
      line = line.substr(b + 2);
    out.emplace_back(trim(line));
  }
  if (out.size() > max) out.erase(out.begin(), out.end() - static_cast<long>(max));
  return out;
}

std::string running_release() {
  struct utsname u;
  if (uname(&u) != 0) return {};
  return u.release;
}

std::string running_build_id(const KernelRoots& roots) {
  auto notes = read_file(roots.sys + "/kernel/notes", 1u << 20);
  return notes ? build_id_from_notes(*notes) : std::string();
}

}  // namespace nines::klp
