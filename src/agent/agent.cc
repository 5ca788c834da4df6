#include "agent/agent.h"

#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "agent/metrics.h"
#include "agent/policy.h"
#include "bundle/bundle.h"
#include "core/clock.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/strings.h"
#include "klp/apply.h"
#include "proc/maps.h"
#include "agent/server_link.h"
#include "ulp/engine.h"

#ifndef NINES_VERSION
#define NINES_VERSION "0"
#endif

namespace nines::agent {

using nlohmann::json;

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

// The address of the Unix socket at `path`; fails ("WHAT PATH: path too long") when the
// path does not fit.
Result<sockaddr_un> unix_address(const std::string& path, std::string_view what) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return make_error("{} {}: path too long", what, path);
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

// sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET.
void sd_notify(const std::string& msg) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  Fd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return;
  std::string p = path;
  auto a = unix_address(p, "NOTIFY_SOCKET");
  if (!a) return;
  if (p[0] == '@') a->sun_path[0] = 0;  // abstract socket
  ::sendto(s.get(), msg.data(), msg.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&*a),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + p.size()));
}

void mkdirs(const std::string& dir, int mode) {
  for (size_t i = 1; i <= dir.size(); ++i)
    if (i == dir.size() || dir[i] == '/') ::mkdir(dir.substr(0, i).c_str(), mode);
}

std::string kernel_release() {
  utsname u{};
  uname(&u);
  return u.release;
}
std::string kernel_version() {
  utsname u{};
  uname(&u);
  return u.version;
}

int64_t boot_unix() {
  auto t = read_file("/proc/stat", 1 << 20);
  if (!t) return 0;
  for (auto line : split(*t, '\n'))
    if (starts_with(line, "btime ")) return parse_i64(trim(line.substr(6))).value_or(0);
  return 0;
}

// Start time and virtual size of a process (fields 22 and 23 of /proc/PID/stat). The start
// time, with the pid, names the process even when pids are reused; the size changes with
// nearly every mmap and munmap. {0, 0} when the process is gone.
std::pair<uint64_t, uint64_t> start_and_size(pid_t pid) {
  auto t = read_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!t) return {0, 0};
  size_t rp = t->rfind(')');
  if (rp == std::string::npos) return {0, 0};
  auto fields = split(std::string_view(*t).substr(rp + 2), ' ');
  if (fields.size() < 21) return {0, 0};
  // Field 22 is the 20th after "pid (comm)".
  return {parse_u64(fields[19]).value_or(0), parse_u64(fields[20]).value_or(0)};
}
uint64_t start_time(pid_t pid) { return start_and_size(pid).first; }

// True when this process lives in a child PID namespace (NSpid has more than one entry):
// there the kernel ignores proc connector subscriptions (cn_proc_mcast_ctl).
bool in_child_pid_ns() {
  auto t = read_file("/proc/self/status", 1 << 16);
  if (!t) return true;
  for (auto line : split(*t, '\n'))
    if (starts_with(line, "NSpid:")) {
      int n = 0;
      for (auto f : split(trim(line.substr(6)), '\t'))
        if (!trim(f).empty()) ++n;
      return n > 1;
    }
  return false;
}

std::string livepatch_unavailable_reason() {
  struct stat st {};
  if (::stat("/sys/kernel/livepatch", &st) != 0)
    return "kernel livepatch unavailable on this machine (/sys/kernel/livepatch absent)";
  return {};
}

std::string highest_severity_of(const json& manifest) {
  int best = -2;
  std::string out;
  if (manifest.contains("cves"))
    for (const auto& c : manifest["cves"]) {
      std::string s = c.value("severity", "");
      if (bundle::severity_rank(s) > best) best = bundle::severity_rank(s), out = s;
    }
  return out;
}

int64_t jittered(int64_t interval, double fraction) {
  static std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> d(0, fraction);
  return std::max<int64_t>(1, interval - static_cast<int64_t>(interval * d(rng)));
}

// The report state the server knows for a row state.
std::string report_state(const std::string& s) {
  if (s == "applied") return "applied";
  if (s == "apply-failed" || s == "interrupted") return "apply-failed";
  if (s == "deferred") return "deferred";
  if (s == "not-applicable") return "not-applicable";
  return {};
}

struct ActivePatch {
  std::shared_ptr<ulp::PatchObject> obj;  // PatchObject has no default constructor
  int64_t version = 0;
};

Result<bundle::Bundle> read_cached_bundle(const Paths& paths, const PatchRow& row,
                                          const std::string& trust) {
  auto bytes = NINES_TRY(
      read_file(paths.bundle_dir() + "/" + row.sha256 + ".bundle", bundle::kMaxBundleBytes));
  auto b = bundle::open_verified(bytes, trust);
  if (!b) return b.error().wrap(fmt::format("verify bundle {} version {}", row.id, row.version));
  return b;
}

Result<ActivePatch> load_active(const bundle::Bundle& b, const std::string& what) {
  ActivePatch a;
  a.obj = std::make_shared<ulp::PatchObject>(NINES_TRY(ulp::load_patch_object(b.payload, what)));
  if (a.obj->meta.target_build_id != b.manifest.target_build_id)
    return make_error("{}: the manifest names build-id {}, the payload {}", what,
                      b.manifest.target_build_id, a.obj->meta.target_build_id);
  // The bundle's id is what the registry records (as `nines apply` does).
  a.obj->meta.id = b.manifest.id;
  a.version = b.manifest.version;
  return a;
}

class Agent {
 public:
  explicit Agent(Paths paths) : paths_(std::move(paths)) {}

  int run(bool once);

 private:
  // Steps of one check, each under mu_ unless noted.
  void reload_policy(bool force);
  void reconcile();
  void check(bool retry_interrupted);
  Result<std::vector<json>> checkin(ServerLink& api);
  struct Snapshot {
    std::map<pid_t, std::set<std::string>> build_ids;  // executable objects per process
    std::set<pid_t> with_registry;                     // processes nines patched
    std::vector<std::string> all_build_ids() const;
  };
  Snapshot snapshot();
  // What snapshot() found in each process, kept while its start time and virtual size stay
  // the same: a check reads the maps only of processes that changed (under apply_mu_).
  struct SeenProcess {
    std::pair<uint64_t, uint64_t> start_and_size;
    std::vector<uint32_t> build_ids;  // indexes into build_id_table_
    bool registry = false;
  };
  std::map<pid_t, SeenProcess> seen_processes_;
  // Each build-id once: hundreds of processes map the same few objects.
  std::vector<std::string> build_id_table_;
  std::unordered_map<std::string, uint32_t> build_id_index_;
  std::optional<Snapshot> check_snapshot_;  // the check's own pass, reused by its status
  bool applied_in_check_ = false;
  void process_row(PatchRow& row, ServerLink* api);
  Status download(ServerLink& api, const PatchRow& row);
  void apply_row(PatchRow& row, const bundle::Bundle& b);
  void report(ServerLink& api);
  void rescan(const std::vector<pid_t>& candidates);  // patches new processes
  std::atomic<bool> full_rescan_{true};  // look at every process at the next turn
  std::atomic<bool> stopped_{false};
  json status();
  void save_status();
  Result<Fd> open_socket();
  void serve_socket(Fd listener);
  void watch_processes();
  std::optional<ServerLink> link();

  Paths paths_;
  std::optional<StateDb> db_;
  Policy policy_;
  int64_t config_mtime_ = -1;
  std::string config_error_;

  std::mutex mu_;  // guards the fields below and db_
  std::condition_variable cv_;
  bool refresh_ = false, retry_ = false, disable_ = false;
  uint64_t checks_done_ = 0, disables_done_ = 0;
  json last_disable_;
  json last_status_;
  json advisor_;             // the verdict sent with the last report
  std::string server_tier_;  // the tier the server says this machine is in  // what the last
                             // save_status built (running), answered by refresh
  int64_t started_ = unix_now();
  int64_t last_check_ = 0, next_check_ = 0;
  std::string last_result_ = "no check yet";
  int64_t backoff_s_ = 0;
  bool enabled_ = false;

  std::mutex apply_mu_;                        // serializes ptrace work (apply, revert, rescans)
  ulp::ElfCache cache_;                        // under apply_mu_
  std::map<std::string, ActivePatch> active_;  // under apply_mu_
  // Whether active_ holds anything, readable without apply_mu_: with no user-space patch
  // applied, new processes are not even looked at.
  std::atomic<bool> any_active_{false};
  std::map<std::string, std::set<std::pair<pid_t, uint64_t>>> done_;  // per patch: handled
  std::map<std::pair<std::string, pid_t>, std::string> failures_;     // per patch and pid

  // Metrics (metrics-listen): counters are atomics, the per-state counts are refreshed by
  // save_status, so a scrape never waits for an apply.
  std::string render_metrics();
  void update_metrics_server();
  std::unique_ptr<MetricsServer> metrics_;
  std::string metrics_listen_;
  std::atomic<uint64_t> m_checks_{0}, m_check_failures_{0}, m_applies_{0}, m_apply_failures_{0};
  std::atomic<int64_t> m_last_check_{0}, m_next_check_{0};
  std::mutex metrics_mu_;
  std::map<std::string, int> m_states_;  // under metrics_mu_
};

std::string Agent::render_metrics() {
  std::string o;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    o += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
  };
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    o += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, v);
  };
  counter("nines_agent_checks_total", "Checks with the server", m_checks_);
  counter("nines_agent_check_failures_total", "Checks that could not reach the server",
          m_check_failures_);
  counter("nines_agent_process_applies_total", "Patches applied to a process", m_applies_);
  counter("nines_agent_process_apply_failures_total", "Failed applies to a process",
          m_apply_failures_);
  gauge("nines_agent_last_check_timestamp_seconds", "Time of the last check", m_last_check_);
  gauge("nines_agent_next_check_timestamp_seconds", "Time of the next check", m_next_check_);
  o += "# HELP nines_agent_patches Offered patches (newest version of each) by state\n# TYPE "
       "nines_agent_patches gauge\n";
  std::lock_guard<std::mutex> g(metrics_mu_);
  for (const auto& [state, n] : m_states_)
    o += fmt::format("nines_agent_patches{{state=\"{}\"}} {}\n", state, n);
  return o;
}

void Agent::update_metrics_server() {
  if (policy_.metrics_listen == metrics_listen_) return;
  metrics_.reset();
  metrics_listen_ = policy_.metrics_listen;
  if (metrics_listen_.empty()) return;
  auto m = MetricsServer::start(metrics_listen_, [this] { return render_metrics(); });
  if (!m) {
    spdlog::error("{}", m.error().message);
    return;
  }
  metrics_ = std::move(*m);
  spdlog::info("metrics on http://{}/metrics", metrics_listen_);
}

void Agent::reload_policy(bool force) {
  struct stat st {};
  int64_t m = ::stat(paths_.config_file.c_str(), &st) == 0
                  ? st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec
                  : 0;
  if (!force && m == config_mtime_) return;
  config_mtime_ = m;
  auto p = load_policy(paths_.config_file);
  if (!p) {
    // Keep the last good policy: a typo in the file must not change what is applied.
    config_error_ = p.error().message;
    spdlog::error("{} (keeping the previous policy)", config_error_);
    return;
  }
  config_error_.clear();
  bool first = force;
  int64_t old_interval = policy_.check_interval_s;
  policy_ = *p;
  bool was_stopped = stopped_.exchange(policy_.mode == "stop");
  // Processes started while in mode stop were not looked at: look at every process now.
  if (was_stopped && !stopped_) full_rescan_ = true;
  if (!first) {
    spdlog::info("policy reloaded from {}", paths_.config_file);
    // A changed policy is evaluated now (deferred patches may become due or stay held).
    refresh_ = true;
    if (policy_.check_interval_s != old_interval)
      next_check_ = std::min(next_check_, unix_now() + jittered(policy_.check_interval_s, 0.1));
  }
}

std::optional<ServerLink> Agent::link() {
  auto token = read_file(paths_.token_file(), 4096);
  if (!token || policy_.remote_server.empty()) return std::nullopt;
  auto c = ServerLink::open({policy_.remote_server, std::string(trim(*token)), policy_.ca_certs,
                             policy_.http_proxy});
  if (!c) {
    last_result_ = "error: " + c.error().message;
    return std::nullopt;
  }
  return std::move(*c);
}

void Agent::reconcile() {
  auto rows = db_->patches();
  if (!rows) {
    spdlog::error("reconcile: {}", rows.error().message);
    return;
  }
  std::string lp = livepatch_unavailable_reason();
  std::vector<klp::KernelPatchState> kpatches;
  if (lp.empty()) {
    auto k = klp::list();
    if (k) kpatches = *k;
  }
  for (auto& row : *rows) {
    if (row.state == "applying") {
      row.state = "interrupted";
      row.reason = fmt::format(
          "apply interrupted at {} (the agent stopped during the apply); not retried "
          "automatically: `nines refresh --retry` retries it",
          format_rfc3339(row.updated_unix));
      spdlog::warn("{} version {}: {}", row.id, row.version, row.reason);
      (void)db_->upsert(row);
    } else if (row.state == "applied" && row.kind == "kernel") {
      bool loaded = false;
      for (const auto& k : kpatches) loaded |= (k.id == row.id && k.version == row.version);
      if (!loaded) {
        // A reboot (or someone) removed it: apply it again at the next check.
        row.state = "offered";
        row.reason = "not loaded in the running kernel";
        (void)db_->upsert(row);
      }
    } else if (row.state == "applied" && row.kind == "userspace") {
      auto b = read_cached_bundle(paths_, row, policy_.trust_dir);
      auto a = b ? load_active(*b, row.id) : Result<ActivePatch>(b.error());
      if (!a) {
        spdlog::error("reconcile {}: {}", row.id, a.error().message);
        continue;
      }
      std::lock_guard<std::mutex> g(apply_mu_);
      active_.insert_or_assign(row.id, std::move(*a));
      any_active_ = true;
    }
  }
  // A switch this agent was killed in the middle of (between two 5-byte writes) is rolled
  // back first, so no process stays half patched (ulp/registry.h, the journal).
  {
    std::lock_guard<std::mutex> g(apply_mu_);
    pid_t self = getpid();
    for (pid_t pid : proc::list_processes()) {
      if (pid == self) continue;
      auto reg = ulp::read_registry(pid);
      if (!reg || !*reg || !(*reg)->interrupted()) continue;
      auto r = ulp::recover_interrupted_switch(pid, {});
      if (!r) spdlog::error("pid {}: rolling back an interrupted switch: {}", pid, r.error().message);
    }
  }
  // The registries are the truth for user space: processes that map an applied target and
  // lack the patch (restarted while the agent was down) are patched by the first rescan.
  full_rescan_ = true;
}

Agent::Snapshot Agent::snapshot() {
  // One pass over /proc serves the check-in and the status. The maps (the costly part: the
  // kernel formats every mapping) are read again only for processes whose start time or
  // virtual size changed since the last pass; a dlopen() or a patch changes the size.
  Snapshot snap;
  std::lock_guard<std::mutex> g(apply_mu_);
  pid_t self = getpid();
  std::map<pid_t, SeenProcess> seen;
  for (pid_t pid : proc::list_processes()) {
    if (pid == self) continue;
    auto key = start_and_size(pid);
    if (key.first == 0) continue;
    SeenProcess p;
    if (auto it = seen_processes_.find(pid);
        it != seen_processes_.end() && it->second.start_and_size == key) {
      p = std::move(it->second);
    } else {
      auto maps = proc::read_maps(pid);
      if (!maps) continue;
      p.start_and_size = key;
      for (const auto& o : proc::group_objects(*maps)) {
        if (o.path.find(ulp::kRegistryName) != std::string::npos) {
          p.registry = true;
          continue;
        }
        bool exec = false;
        for (const auto& m : o.maps) exec |= m.exec;
        if (!exec) continue;
        auto id = cache_.build_id(pid, o);
        if (!id || id->empty()) continue;
        auto [it, added] = build_id_index_.try_emplace(*id, build_id_table_.size());
        if (added) build_id_table_.push_back(*id);
        p.build_ids.push_back(it->second);
      }
    }
    auto& ids = snap.build_ids[pid];
    for (uint32_t i : p.build_ids) ids.insert(build_id_table_[i]);
    if (p.registry) snap.with_registry.insert(pid);
    seen.emplace(pid, std::move(p));
  }
  seen_processes_ = std::move(seen);
  return snap;
}

std::vector<std::string> Agent::Snapshot::all_build_ids() const {
  std::set<std::string> all;
  for (const auto& [pid, ids] : build_ids) {
    all.insert(ids.begin(), ids.end());
    if (all.size() >= 20000) break;
  }
  return {all.begin(), all.end()};
}

Result<std::vector<json>> Agent::checkin(ServerLink& api) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  json body = {{"name", host},
               {"arch", "x86_64"},
               {"kernel_release", kernel_release()},
               {"build_ids",
                check_snapshot_ ? check_snapshot_->all_build_ids() : snapshot().all_build_ids()}};
  auto r = NINES_TRY(api.post_json("/v1/checkin", body));
  server_tier_ = r.value("tier", "");
  std::vector<json> out;
  if (r.contains("bundles") && r["bundles"].is_array())
    for (const auto& b : r["bundles"]) out.push_back(b);
  return out;
}

Status Agent::download(ServerLink& api, const PatchRow& row) {
  std::string file = paths_.bundle_dir() + "/" + row.sha256 + ".bundle";
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) return {};
  mkdirs(paths_.bundle_dir(), 0700);
  // The exchange process checks that the digest the server named is the digest of what
  // arrived before it writes the file.
  auto r = api.download("/v1/bundles/sha256/" + row.sha256, row.sha256, file);
  if (!r) return r.error().wrap(fmt::format("download bundle {} version {}", row.id, row.version));
  return {};
}

void Agent::apply_row(PatchRow& row, const bundle::Bundle& b) {
  // The journal first: a crash from here on leaves "applying", which the next start turns
  // into "interrupted" instead of retrying.
  applied_in_check_ = true;
  row.state = "applying";
  row.reason.clear();
  (void)db_->upsert(row);
  if (const char* hold = std::getenv("NINES_AGENT_TEST_HOLD_APPLYING_MS"))  // fault injection
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(hold)));
  if (row.kind == "kernel") {
    klp::ApplyOptions ko;
    ko.version = row.version;
    std::lock_guard<std::mutex> g(apply_mu_);
    auto r = klp::apply_module(b.payload, ko);
    row.state = r ? "applied" : "apply-failed";
    row.reason = r ? "" : r.error().message;
  } else {
    auto a = load_active(b, row.id);
    if (!a) {
      row.state = "apply-failed";
      row.reason = a.error().message;
    } else {
      std::lock_guard<std::mutex> g(apply_mu_);
      // New processes are tracked from before the pass over the existing ones: one that
      // starts during the apply is looked at once the patch is active.
      any_active_ = true;
      auto pids = ulp::processes_mapping("", row.target_build_id, cache_, {});
      ulp::ApplyOptions opts;
      opts.version = row.version;
      int ok = 0;
      std::string first_error;
      for (pid_t pid : pids) {
        auto out = ulp::apply_patch(*a->obj, pid, opts, cache_);
        if (out) {
          ++ok;
          ++m_applies_;
          failures_.erase({row.id, pid});
          done_[row.id].insert({pid, start_time(pid)});
          spdlog::info("{} version {}: pid {}: {}", row.id, row.version, pid, out->action);
        } else {
          failures_[{row.id, pid}] = out.error().message;
          ++m_apply_failures_;
          if (first_error.empty())
            first_error = fmt::format("pid {}: {}", pid, out.error().message);
          spdlog::error("{} version {}: pid {}: {}", row.id, row.version, pid, out.error().message);
        }
      }
      if (!pids.empty() && ok == 0) {
        row.state = "apply-failed";
        row.reason = first_error;
        any_active_ = !active_.empty();
      } else {
        row.state = "applied";
        row.reason = first_error.empty() ? "" : "some processes failed: " + first_error;
        active_.insert_or_assign(row.id, std::move(*a));
        any_active_ = true;
      }
    }
  }
  (void)db_->upsert(row);
}

void Agent::process_row(PatchRow& row, ServerLink* api) {
  if (row.state == "applied" || row.state == "interrupted" || row.state == "apply-failed" ||
      row.state == "superseded")
    return;
  if (row.kind == "kernel") {
    std::string why = livepatch_unavailable_reason();
    if (!why.empty()) {
      row.state = "not-applicable";
      row.reason = why;
      (void)db_->upsert(row);
      return;
    }
  }
  // Decide on the offer's manifest before downloading: a deferred patch costs nothing.
  json manifest = json::parse(row.manifest_json, nullptr, false);
  Decision d = decide(policy_, highest_severity_of(manifest), row.published_unix, unix_now());
  if (!d.apply) {
    row.state = "deferred";
    row.reason = d.reason;
    row.until_unix = d.until_unix;
    (void)db_->upsert(row);
    return;
  }
  if (api) {
    auto st = download(*api, row);
    if (!st) {
      row.state = "offered";
      row.reason = st.error().message;
      (void)db_->upsert(row);
      return;
    }
  } else if (struct stat st{};
             ::stat((paths_.bundle_dir() + "/" + row.sha256 + ".bundle").c_str(), &st) != 0) {
    // Server unreachable (or mode no-refresh) and not downloaded yet: wait, do not fail.
    row.state = "offered";
    row.reason = "waiting for the download (server not asked or unreachable)";
    (void)db_->upsert(row);
    return;
  }
  auto b = read_cached_bundle(paths_, row, policy_.trust_dir);
  if (!b) {
    row.state = "apply-failed";
    row.reason = b.error().message;
    (void)db_->upsert(row);
    return;
  }
  row.manifest_json = bundle::manifest_to_json(b->manifest).dump();
  row.until_unix = 0;
  apply_row(row, *b);
}

void Agent::report(ServerLink& api) {
  auto rows = db_->patches();
  if (!rows) return;
  json lines = json::array();
  std::vector<PatchRow*> sent;
  for (auto& r : *rows) {
    std::string s = report_state(r.state);
    if (s.empty() || s == r.reported) continue;
    json l = {{"id", r.id}, {"version", r.version}, {"state", s}};
    if (s != "applied" && s != "not-applicable")
      l["reason"] = r.reason.empty() ? s : r.reason.substr(0, 1000);
    if (s == "not-applicable" && !r.reason.empty()) l["reason"] = r.reason.substr(0, 1000);
    lines.push_back(l);
    sent.push_back(&r);
  }
  if (lines.empty()) return;
  json body = {{"reports", lines}};
  // What changed may change what needs a restart or a reboot: the advisor's verdict goes
  // with the report (only then: it scans every process).
  if (auto a = api.advisor(paths_.root)) {
    body["advisor"] = *a;
    advisor_ = *a;
  } else {
    spdlog::warn("advisor: {}", a.error().message);
  }
  auto res = api.post_json("/v1/reports", body);
  if (!res) {
    spdlog::warn("report: {}", res.error().message);
    return;
  }
  for (auto* r : sent) {
    r->reported = report_state(r->state);
    (void)db_->upsert(*r);
  }
}

void Agent::check(bool retry_interrupted) {
  int64_t now = unix_now();
  applied_in_check_ = false;
  check_snapshot_.reset();
  auto en = db_->get("enabled");
  enabled_ = en && *en && **en == "1";
  if (retry_interrupted) {
    auto rows = db_->patches();
    if (rows)
      for (auto& r : *rows)
        if (r.state == "interrupted" || r.state == "apply-failed") {
          r.state = "offered";
          r.reason.clear();
          (void)db_->upsert(r);
        }
  }
  if (!enabled_) {
    last_result_ = "disabled (run `nines enable TOKEN --server URL`)";
    next_check_ = now + policy_.check_interval_s;
    save_status();
    return;
  }
  if (policy_.mode == "stop") {
    last_result_ = "skipped: mode is stop";
    next_check_ = now + jittered(policy_.check_interval_s, 0.1);
    save_status();
    return;
  }
  std::optional<ServerLink> api;
  bool server_ok = true;
  if (policy_.mode != "no-refresh") {
    api = link();
    if (!api) {
      server_ok = false;
      if (last_result_.rfind("error", 0) != 0)
        last_result_ =
            "error: not enrolled or no remote-server (run `nines enable TOKEN --server URL`)";
    } else {
      check_snapshot_ = snapshot();
      auto offers = checkin(*api);
      if (!offers) {
        server_ok = false;
        last_result_ = "error: server unreachable: " + offers.error().message;
        spdlog::warn("check: {} (keeping what is applied)", offers.error().message);
      } else {
        last_result_ = fmt::format("ok: {} bundle(s) offered", offers->size());
        if (!policy_.tier.empty() && policy_.tier != server_tier_)
          last_result_ += fmt::format(
              " (warning: the server has this machine in tier '{}', the policy expects '{}')",
              server_tier_, policy_.tier);
        for (const auto& o : *offers) {
          std::string id = o.value("id", "");
          int64_t version = o.value("version", int64_t{0});
          auto existing = db_->patch(id, version);
          if (existing && *existing) continue;
          PatchRow row;
          row.id = id;
          row.version = version;
          row.kind = o.value("kind", "");
          row.sha256 = o.value("sha256", "");
          row.target_name = o.value("target_name", "");
          row.target_build_id = o.value("target_build_id", "");
          row.kernel_release = o.value("kernel_release", "");
          row.published_unix = o.value("published_unix", int64_t{0});
          row.manifest_json = o.contains("manifest") ? o["manifest"].dump() : "{}";
          (void)db_->upsert(row);
        }
      }
    }
  } else {
    last_result_ = "ok: mode is no-refresh (server not asked)";
  }
  // Decide and apply, newest version of each patch id only (patches are cumulative).
  auto rows = db_->patches();
  std::map<std::string, PatchRow*> newest;
  if (rows) {
    for (auto& r : *rows)
      if (!newest.count(r.id) || newest[r.id]->version < r.version) newest[r.id] = &r;
    for (auto& [id, r] : newest) {
      if (!server_ok && r->state != "deferred" && r->state != "offered") continue;
      process_row(*r, server_ok ? &*api : nullptr);
    }
    for (auto& r : *rows)
      if (newest[r.id] != &r && newest[r.id]->state == "applied" && r.state != "superseded") {
        r.state = "superseded";
        r.reason = fmt::format("replaced by version {}", newest[r.id]->version);
        (void)db_->upsert(r);
      }
  }
  if (server_ok && api) report(*api);
  last_check_ = now;
  ++m_checks_;
  if (!server_ok) ++m_check_failures_;
  if (server_ok) {
    backoff_s_ = 0;
    next_check_ = unix_now() + jittered(policy_.check_interval_s, 0.1);
  } else {
    // Back off with jitter, never longer than the interval.
    backoff_s_ = backoff_s_ == 0 ? 5 : std::min<int64_t>(backoff_s_ * 2, 600);
    int64_t b = std::min(backoff_s_, policy_.check_interval_s);
    next_check_ = unix_now() + jittered(b, 0.5);
  }
  // A patch waiting for its delay is looked at again when it becomes due.
  if (rows)
    for (auto& [id, r] : newest)
      if (r->state == "deferred" && r->until_unix > 0)
        next_check_ = std::min(next_check_, r->until_unix + 1);
  save_status();
  check_snapshot_.reset();
  malloc_trim(0);  // give back what the check's /proc pass and JSON documents used
}

void Agent::rescan(const std::vector<pid_t>& candidates) {
  if (stopped_) return;  // mode stop: nothing new is applied, not even to new processes
  std::lock_guard<std::mutex> g(apply_mu_);
  if (active_.empty()) return;
  for (pid_t pid : candidates) {
    // One maps read per process; build-ids come from the cache (by device and inode).
    auto maps = proc::read_maps(pid);
    if (!maps) continue;  // gone already
    std::set<std::string> ids;
    for (const auto& o : proc::group_objects(*maps))
      if (auto bid = cache_.build_id(pid, o); bid && !bid->empty()) ids.insert(*bid);
    for (auto& [id, a] : active_) {
      if (!ids.count(a.obj->meta.target_build_id) || failures_.count({id, pid})) continue;
      std::pair<pid_t, uint64_t> key{pid, start_time(pid)};
      if (done_[id].count(key)) continue;
      auto reg = ulp::read_registry(pid);
      if (reg && *reg) {
        const auto* p = (*reg)->find_by_id(id);
        if (p && p->version >= a.version) {
          done_[id].insert(key);
          continue;
        }
      }
      ulp::ApplyOptions opts;
      opts.version = a.version;
      Stopwatch sw;
      auto out = ulp::apply_patch(*a.obj, pid, opts, cache_);
      if (out) {
        done_[id].insert(key);
        ++m_applies_;
        spdlog::info("{} version {}: new process {}: {} in {:.1f} ms", id, a.version, pid,
                     out->action, sw.elapsed_us() / 1000);
      } else {
        failures_[{id, pid}] = out.error().message;
        ++m_apply_failures_;
        spdlog::error("{} version {}: new process {}: {}", id, a.version, pid, out.error().message);
      }
    }
  }
}

namespace {

// The last pid the kernel allocated in this process's PID namespace (the last field of
// /proc/loadavg): while it stays the same, no process was created, and /proc need not be
// listed. 0 when it cannot be read.
pid_t last_pid() {
  char buf[128];
  Fd f(::open("/proc/loadavg", O_RDONLY | O_CLOEXEC));
  if (!f.valid()) return 0;
  ssize_t n = ::read(f.get(), buf, sizeof buf - 1);
  if (n <= 0) return 0;
  std::string_view t(buf, static_cast<size_t>(n));
  t = trim(t);
  return static_cast<pid_t>(parse_i64(t.substr(t.rfind(' ') + 1)).value_or(0));
}

// Reads every proc connector message waiting on `nl` (non-blocking) and calls `on` with
// each event; stops early, returning true, once `on` returns true.
template <class F>
bool drain_proc_events(const Fd& nl, std::vector<char>& buf, F on) {
  ssize_t n;
  while ((n = ::recv(nl.get(), buf.data(), buf.size(), 0)) > 0)
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<size_t>(n));
         h = NLMSG_NEXT(h, n)) {
      auto* c = reinterpret_cast<cn_msg*>(NLMSG_DATA(h));
      if (c->len < sizeof(proc_event)) continue;
      if (on(*reinterpret_cast<const proc_event*>(c->data))) return true;
    }
  return false;
}

// Subscribes to the proc connector's events; an invalid Fd where they do not arrive.
Fd proc_connector() {
  // In a child PID namespace the kernel ignores the subscription (cn_proc_mcast_ctl).
  if (in_child_pid_ns()) return {};
  Fd nl(::socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR));
  sockaddr_nl a{};
  a.nl_family = AF_NETLINK;
  a.nl_groups = CN_IDX_PROC;
  a.nl_pid = 0;
  if (!nl.valid() || ::bind(nl.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return {};
  // nlmsghdr | cn_msg (flexible data) | the operation.
  alignas(nlmsghdr) char msg[NLMSG_LENGTH(sizeof(cn_msg) + sizeof(uint32_t))] = {};
  auto* h = reinterpret_cast<nlmsghdr*>(msg);
  h->nlmsg_len = sizeof msg;
  h->nlmsg_type = NLMSG_DONE;
  auto* c = reinterpret_cast<cn_msg*>(NLMSG_DATA(h));
  c->id.idx = CN_IDX_PROC;
  c->id.val = CN_VAL_PROC;
  c->len = sizeof(uint32_t);
  uint32_t op = PROC_CN_MCAST_LISTEN;
  std::memcpy(c->data, &op, sizeof op);
  if (::send(nl.get(), msg, sizeof msg, 0) != static_cast<ssize_t>(sizeof msg)) return {};
  // The kernel ignores the subscription silently from a child PID namespace (and
  // /proc/self/status cannot tell when /proc was remounted there), and events that still
  // arrive there (another listener subscribed) name pids of the initial namespace. Prove
  // that events arrive and speak this namespace's pids: a child that exits at once must
  // be named by its fork or exit event.
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  if (child < 0) return {};
  ::waitpid(child, nullptr, 0);
  std::vector<char> buf(16384);
  int64_t deadline = monotonic_ns() + 200'000'000;
  for (int64_t left; (left = (deadline - monotonic_ns()) / 1'000'000) > 0;) {
    pollfd p{nl.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    bool named = drain_proc_events(nl, buf, [child](const proc_event& ev) {
      return (ev.what == proc_event::PROC_EVENT_FORK && ev.event_data.fork.child_tgid == child) ||
             (ev.what == proc_event::PROC_EVENT_EXIT && ev.event_data.exit.process_tgid == child);
    });
    if (named) return nl;
  }
  return {};
}

}  // namespace

void Agent::watch_processes() {
  // Which processes to look at, at what cost:
  //  - with the proc connector, the pids of exec events: no /proc listing at all;
  //  - without it (a child PID namespace), /proc is listed only when the namespace's last
  //    allocated pid moved (one read of /proc/loadavg every 250 ms otherwise), and only the
  //    pids not seen before are looked at;
  //  - each new process is looked at once its loader has had 20 ms, then 300 ms and 1 s
  //    after it was first seen (a loader that maps the target late, a fork that execs
  //    later), then left alone;
  //  - every process at start and every 5 min (a target dlopen()ed late).
  Fd nl = proc_connector();
  if (nl.valid())
    spdlog::info("proc connector: exec events name the new processes");
  else
    spdlog::info("proc connector unavailable; /proc is listed when a process was created");
  const int64_t kLooks[] = {20'000'000, 300'000'000, 1'000'000'000};  // after first seen
  const int64_t kPoll = 250'000'000;
  struct Young {
    int64_t first_seen;
    int looks;
  };
  std::map<pid_t, Young> young;
  std::set<pid_t> known;                             // without the connector: the last listing
  pid_t last = -1;
  int64_t next_full = 0, next_poll = 0;
  std::vector<char> buf(16384);
  pid_t self = getpid();
  while (!g_stop) {
    int64_t now = monotonic_ns();
    int64_t due = nl.valid() ? now + 500'000'000 : next_poll;
    for (const auto& [pid, y] : young) due = std::min(due, y.first_seen + kLooks[y.looks]);
    // Rounded up: a sub-millisecond remainder must sleep, not spin.
    int timeout = static_cast<int>(std::clamp<int64_t>((due - now + 999'999) / 1'000'000, 0, 500));
    if (nl.valid()) {
      pollfd p{nl.get(), POLLIN, 0};
      if (::poll(&p, 1, timeout) > 0) {
        int64_t t = monotonic_ns();
        drain_proc_events(nl, buf, [&](const proc_event& ev) {
          // A fork shares its parent's code (patched or not a target): only an exec
          // brings a new image.
          if (ev.what == proc_event::PROC_EVENT_EXEC && any_active_)
            young.try_emplace(ev.event_data.exec.process_tgid, Young{t, 0});
          return false;
        });
      }
    } else if (timeout > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(timeout));
    }
    now = monotonic_ns();
    bool full = full_rescan_.exchange(false) || now >= next_full;
    if (!nl.valid() && (full || now >= next_poll)) {
      next_poll = now + kPoll;
      pid_t lp = last_pid();
      if (full || lp != last || lp == 0) {
        last = lp;
        std::set<pid_t> listing;
        for (pid_t pid : proc::list_processes()) {
          listing.insert(pid);
          if (!known.count(pid) && !full && any_active_)
            young.try_emplace(pid, Young{now - kLooks[0], 0});
        }
        known = std::move(listing);
      }
    }
    std::vector<pid_t> look;
    if (full) {
      next_full = now + 300'000'000'000LL;
      for (pid_t pid : proc::list_processes())
        if (pid != self) look.push_back(pid);
    }
    for (auto it = young.begin(); it != young.end();) {
      Young& y = it->second;
      if (y.first_seen + kLooks[y.looks] > now) {
        ++it;
        continue;
      }
      if (!full && it->first != self) look.push_back(it->first);
      if (++y.looks == static_cast<int>(std::size(kLooks)))
        it = young.erase(it);
      else
        ++it;
    }
    if (!look.empty()) rescan(look);
  }
}

json Agent::status() {
  json s;
  std::lock_guard<std::mutex> g(mu_);
  // The check's own /proc pass when nothing was applied since, else a fresh one.
  Snapshot snap = check_snapshot_ && !applied_in_check_ ? *check_snapshot_ : snapshot();
  int64_t now = unix_now();
  s["agent"] = {{"running", true},
                {"pid", getpid()},
                {"version", NINES_VERSION},
                {"started", format_rfc3339(started_)},
                {"uptime_s", now - started_}};
  s["machine_id"] = machine_id(paths_);
  s["enabled"] = enabled_;
  s["server"] = policy_.remote_server;
  s["mode"] = policy_.mode;
  s["tier"] = server_tier_;
  s["advisor"] = advisor_.is_null() ? json(nullptr) : advisor_;
  s["config_error"] = config_error_;
  s["last_check"] = last_check_ ? json(format_rfc3339(last_check_)) : json(nullptr);
  s["last_check_result"] = last_result_;
  s["next_check"] = next_check_ && enabled_ ? json(format_rfc3339(next_check_)) : json(nullptr);
  json pol;
  for (const auto& k : policy_keys()) pol[k] = policy_value(policy_, k);
  s["policy"] = pol;
  int64_t bt = boot_unix();
  std::string lp = livepatch_unavailable_reason();
  json kernel = {{"release", kernel_release()},
                 {"version", kernel_version()},
                 {"livepatch", lp.empty()},
                 {"livepatch_reason", lp},
                 {"patches", json::array()}};
  if (lp.empty())
    if (auto k = klp::list())
      for (const auto& p : *k)
        kernel["patches"].push_back(
            {{"id", p.id}, {"version", p.version}, {"module", p.module_name}});
  s["kernel"] = kernel;
  s["boot_time"] = bt ? json(format_rfc3339(bt)) : json(nullptr);
  s["uptime_s"] = bt ? now - bt : 0;

  auto rows = db_->patches();
  json patches = json::array(), fixes = json::array(), targets = json::array();
  if (rows) {
    std::map<std::string, const PatchRow*> newest;
    for (const auto& r : *rows)
      if (!newest.count(r.id) || newest[r.id]->version < r.version) newest[r.id] = &r;
    std::lock_guard<std::mutex> ga(apply_mu_);
    for (const auto& [id, r] : newest) {
      json p = {{"id", r->id},
                {"version", r->version},
                {"kind", r->kind},
                {"state", r->state},
                {"reason", r->reason},
                {"target", r->target_name},
                {"target_build_id", r->target_build_id},
                {"published",
                 r->published_unix ? json(format_rfc3339(r->published_unix)) : json(nullptr)},
                {"until", r->until_unix ? json(format_rfc3339(r->until_unix)) : json(nullptr)}};
      patches.push_back(p);
      json manifest = json::parse(r->manifest_json, nullptr, false);
      if (manifest.is_object() && manifest.contains("cves"))
        for (const auto& c : manifest["cves"])
          fixes.push_back({{"cve", c.value("id", "")},
                           {"severity", c.value("severity", "")},
                           {"patch", r->id},
                           {"version", r->version},
                           {"kind", r->kind},
                           {"state", r->state},
                           {"reason", r->reason},
                           {"until", p["until"]}});
      if (r->kind != "userspace") continue;
      std::set<pid_t> patched;
      for (pid_t pid : snap.with_registry) {
        auto reg = ulp::read_registry(pid);
        if (reg && *reg)
          if (const auto* ap = (*reg)->find_by_id(r->id); ap && ap->version >= r->version)
            patched.insert(pid);
      }
      json t = {{"name", r->target_name},   {"build_id", r->target_build_id},
                {"patch", r->id},           {"version", r->version},
                {"patched", json::array()}, {"not_patched", json::array()}};
      for (pid_t pid : patched) t["patched"].push_back(pid);
      for (const auto& [pid, ids] : snap.build_ids) {
        if (patched.count(pid) || !ids.count(r->target_build_id)) continue;
        std::string why =
            r->state == "applied" ? "pending (new process)" : r->state + ": " + r->reason;
        if (auto f = failures_.find({r->id, pid}); f != failures_.end())
          why = "apply failed: " + f->second;
        t["not_patched"].push_back({{"pid", pid}, {"reason", why}});
      }
      targets.push_back(t);
    }
  }
  s["patches"] = patches;
  s["fixes"] = fixes;
  s["targets"] = targets;
  return s;
}

void Agent::save_status() {
  // Called with mu_ held: build without re-locking.
  mu_.unlock();
  json s = status();
  mu_.lock();
  last_status_ = s;
  {
    std::lock_guard<std::mutex> g(metrics_mu_);
    m_states_.clear();
    for (const auto& p : s["patches"]) m_states_[p["state"].get<std::string>()]++;
    m_last_check_ = last_check_;
    m_next_check_ = next_check_;
  }
  s["agent"]["running"] = false;
  (void)db_->put("status", s.dump());
}

Result<Fd> Agent::open_socket() {
  mkdirs(paths_.socket_path.substr(0, paths_.socket_path.rfind('/')), 0755);
  ::unlink(paths_.socket_path.c_str());
  Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a = NINES_TRY(unix_address(paths_.socket_path, "agent socket"));
  mode_t old = ::umask(0077);  // root-only from the first moment
  int rc = ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (rc != 0 || ::listen(s.get(), 16) != 0)
    return errno_error("agent socket " + paths_.socket_path);
  ::chmod(paths_.socket_path.c_str(), 0600);
  return s;
}

void Agent::serve_socket(Fd s) {
  while (!g_stop) {
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 300) <= 0) continue;
    Fd c(::accept4(s.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c.valid()) continue;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != 0 && cred.uid != getuid()))
      continue;
    timeval tv{5, 0};
    ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string line;
    char ch;
    while (line.size() < 256 && ::read(c.get(), &ch, 1) == 1 && ch != '\n') line += ch;
    json answer;
    if (line == "status") {
      answer = status();
    } else if (line == "refresh" || line == "refresh-retry" || line == "enable") {
      std::unique_lock<std::mutex> l(mu_);
      uint64_t target = checks_done_ + 1;
      refresh_ = true;
      retry_ |= line == "refresh-retry";
      cv_.notify_all();
      cv_.wait_for(l, std::chrono::seconds(120), [&] { return checks_done_ >= target || g_stop; });
      answer = last_status_;
    } else if (line == "disable") {
      std::unique_lock<std::mutex> l(mu_);
      uint64_t target = disables_done_ + 1;
      disable_ = true;
      cv_.notify_all();
      cv_.wait_for(l, std::chrono::seconds(300),
                   [&] { return disables_done_ >= target || g_stop; });
      answer = last_disable_;
    } else {
      answer = {
          {"error",
           fmt::format(
               "agent: unknown request '{}' (status, refresh, refresh-retry, disable, enable)",
               line)}};
    }
    std::string out = answer.dump() + "\n";
    (void)!::write(c.get(), out.data(), out.size());
  }
  ::unlink(paths_.socket_path.c_str());
}

int Agent::run(bool once) {
  auto db = StateDb::open(paths_.state_db());
  if (!db) {
    spdlog::error("nines agent: {}", db.error().message);
    return 1;
  }
  db_.emplace(std::move(*db));
  mkdirs(paths_.bundle_dir(), 0700);
  {
    std::lock_guard<std::mutex> g(mu_);
    reload_policy(true);
    if (!config_error_.empty()) {
      spdlog::error("nines agent: {}", config_error_);
      return 1;
    }
    reconcile();
    refresh_ = true;  // check at start
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Bound before READY=1: a unit ordered after the agent finds the socket.
  auto listener = open_socket();
  if (!listener) {
    spdlog::error("nines agent: {}", listener.error().message);
    return 1;
  }
  std::thread sock([this, fd = std::move(*listener)]() mutable { serve_socket(std::move(fd)); });
  std::thread watch([this] { watch_processes(); });
  sd_notify("READY=1\nSTATUS=running");
  spdlog::info("nines agent {} started (state {}, socket {})", NINES_VERSION, paths_.state_dir,
               paths_.socket_path);
  int64_t watchdog_us = 0;
  if (const char* w = std::getenv("WATCHDOG_USEC")) watchdog_us = std::atoll(w);
  int64_t last_ping = 0;
  std::unique_lock<std::mutex> l(mu_);
  while (!g_stop) {
    reload_policy(false);
    update_metrics_server();
    if (disable_) {
      disable_ = false;
      l.unlock();
      json r;
      {
        // revert_all takes apply_mu_ via the engine calls it makes; keep rescans out.
        std::lock_guard<std::mutex> ga(apply_mu_);
        active_.clear();
        any_active_ = false;
        done_.clear();
        failures_.clear();
      }
      {
        std::lock_guard<std::mutex> ga(apply_mu_);
        r = revert_all(*db_, paths_);
      }
      l.lock();
      enabled_ = false;
      last_disable_ = r;
      ++disables_done_;
      save_status();
      cv_.notify_all();
    }
    if (refresh_ || unix_now() >= next_check_) {
      bool retry = retry_;
      refresh_ = retry_ = false;
      check(retry);
      ++checks_done_;
      cv_.notify_all();
      if (once) break;
    }
    int64_t now_ns = monotonic_ns();
    if (watchdog_us > 0 && now_ns - last_ping > watchdog_us * 1000 / 2) {
      sd_notify("WATCHDOG=1");
      last_ping = now_ns;
    }
    cv_.wait_for(l, std::chrono::milliseconds(500));
  }
  g_stop = true;
  l.unlock();
  sd_notify("STOPPING=1");
  metrics_.reset();
  sock.join();
  watch.join();
  std::lock_guard<std::mutex> g(mu_);
  save_status();
  spdlog::info("nines agent stopped");
  return 0;
}

}  // namespace

int run_agent(const AgentOptions& opts) {
  // One malloc arena: the agent's threads allocate little, and every extra arena keeps
  // its own dirty pages (idle memory is a target: docs/AGENT.md).
  mallopt(M_ARENA_MAX, 1);
  Agent a(opts.paths);
  return a.run(opts.once);
}

Result<json> request(const Paths& paths, const std::string& line, double timeout_s) {
  Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a = NINES_TRY(unix_address(paths.socket_path, "agent socket"));
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return errno_error("agent socket " + paths.socket_path + ": connect");
  timeval tv{static_cast<time_t>(timeout_s), 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string msg = line + "\n";
  if (::write(s.get(), msg.data(), msg.size()) != static_cast<ssize_t>(msg.size()))
    return errno_error("agent socket " + paths.socket_path + ": write");
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(s.get(), buf, sizeof buf)) > 0) out.append(buf, n);
  if (n < 0) return errno_error("agent socket " + paths.socket_path + ": read " + line);
  auto j = json::parse(out, nullptr, false);
  if (j.is_discarded())
    return make_error("agent socket {}: {}: answer is not JSON", paths.socket_path, line);
  if (j.is_object() && j.contains("error")) return make_error("{}", j["error"].get<std::string>());
  return j;
}

json revert_all(StateDb& db, const Paths& paths) {
  (void)paths;
  json out = {{"reverted", json::array()}, {"failed", json::array()}};
  (void)db.put("enabled", "0");
  auto rows = db.patches();
  if (!rows) {
    out["failed"].push_back({{"error", rows.error().message}});
    return out;
  }
  for (auto& r : *rows) {
    if (r.state != "applied" && r.state != "applying" && r.state != "interrupted" &&
        r.state != "superseded")
      continue;
    bool ok = true;
    if (r.kind == "kernel") {
      if (livepatch_unavailable_reason().empty()) {
        auto k = klp::revert(r.id, {});
        if (!k) {
          ok = false;
          out["failed"].push_back({{"id", r.id}, {"error", k.error().message}});
        }
      }
    } else {
      for (pid_t pid : ulp::processes_with_patch(r.id, {})) {
        auto res = ulp::revert_patch(r.id, pid, {});
        if (res) {
          out["reverted"].push_back({{"id", r.id}, {"pid", pid}});
        } else {
          ok = false;
          out["failed"].push_back({{"id", r.id}, {"pid", pid}, {"error", res.error().message}});
        }
      }
    }
    if (ok) {
      r.state = "reverted";
      r.reason = "reverted by `nines disable`";
      r.reported.clear();
      (void)db.upsert(r);
    }
  }
  return out;
}

Result<json> saved_status(const Paths& paths) {
  struct stat st {};
  if (::stat(paths.state_db().c_str(), &st) != 0)
    return make_error("status: no agent state at {} (has `nines agent` ever run?)",
                      paths.state_db());
  auto db = NINES_TRY(StateDb::open(paths.state_db()));
  auto s = NINES_TRY(db.get("status"));
  if (!s) return make_error("status: the agent has saved no status yet in {}", paths.state_db());
  json j = json::parse(*s, nullptr, false);
  if (j.is_discarded())
    return make_error("status: saved status in {} is not JSON", paths.state_db());
  j["agent"]["running"] = false;
  j["source"] = "saved state (agent not running)";
  // `enable`/`disable` without an agent change this after the agent saved its status.
  if (auto en = db.get("enabled"); en && *en) j["enabled"] = **en == "1";
  return j;
}

}  // namespace nines::agent
