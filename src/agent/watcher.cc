// The process watcher: which processes exist, which objects they map, and patching new
// processes of an applied target (docs/AGENT.md, "New processes").
#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "agent/agent_impl.h"
#include "core/clock.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/strings.h"
#include "proc/maps.h"

namespace nines::agent {

namespace {

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
      opts.digest = a.digest;
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
  std::set<pid_t> known;  // without the connector: the last listing
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
    if (look.empty()) continue;
    try {
      rescan(look);
    } catch (const std::exception& e) {
      spdlog::error("rescan: {}", e.what());  // never ends the watcher thread
    }
  }
}

}  // namespace nines::agent
