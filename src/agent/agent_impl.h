// The agent's daemon, inside: one class whose parts live in their own files.
//   agent.cc           the main loop and one check, as its stages: fetch offers, download
//                      (bounded), verify, decide (on the signed manifest), apply, record,
//                      report
//   watcher.cc         the process watcher: new processes of an applied target get patched
//   control_socket.cc  the root-only control socket (status, refresh, enable, disable)
//   status.cc          the status document and the Prometheus metrics
// Only src/agent includes this header; agent.h is the interface.
#pragma once

#include <sys/types.h>
#include <sys/un.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/freshness.h"
#include "agent/metrics.h"
#include "agent/offers.h"
#include "agent/server_link.h"
#include "agent/state.h"
#include "bundle/bundle.h"
#include "ulp/engine.h"

namespace nines::agent {

extern std::atomic<bool> g_stop;

// Small facts about the machine, shared by the files of the agent.
std::string kernel_release();
std::string kernel_version();
int64_t boot_unix();
// Start time and virtual size of a process (fields 22 and 23 of /proc/PID/stat); {0, 0}
// when the process is gone.
std::pair<uint64_t, uint64_t> start_and_size(pid_t pid);
inline uint64_t start_time(pid_t pid) { return start_and_size(pid).first; }
std::string livepatch_unavailable_reason();
void mkdirs(const std::string& dir, int mode);
// The address of the Unix socket at `path`; fails ("WHAT PATH: path too long") when the
// path does not fit.
Result<struct sockaddr_un> unix_address(const std::string& path, std::string_view what);

struct ActivePatch {
  std::shared_ptr<ulp::PatchObject> obj;  // PatchObject has no default constructor
  int64_t version = 0;
  std::string digest;  // sha256 of the patch object (what the registry records)
};

// An offer refused before or outside its journal row (malformed, or the same id and
// version as an applied patch with other content). Reported once per agent run.
struct Refusal {
  std::string id;
  int64_t version = 0;
  std::string sha256, reason;
  bool reported = false;
};

class Agent {
 public:
  explicit Agent(AgentOptions opts) : paths_(opts.paths), hooks_(std::move(opts.hooks)) {}
  int run(bool once);

 private:
  // --- one check (agent.cc) ----------------------------------------------------------
  void reload_policy(bool force);
  void reconcile();
  void check(bool retry_interrupted);
  Result<CheckinAnswer> fetch_offers(ServerLink& api);
  void update_catalogue(const CheckinAnswer& answer, const std::vector<PatchRow>& rows);
  void record_offers(const CheckinAnswer& answer);
  void process_row(PatchRow& row, ServerLink* api);
  ServerLink::Download download(ServerLink& api, const PatchRow& row);
  Result<bundle::Bundle> verify(const PatchRow& row);
  std::string check_signed_against_offer(const PatchRow& row, const bundle::Manifest& m);
  void refuse(PatchRow& row, const std::string& reason);
  void apply_row(PatchRow& row, const bundle::Bundle& b);
  void report(ServerLink& api);
  std::optional<ServerLink> link();

  // --- processes (watcher.cc) --------------------------------------------------------
  struct Snapshot {
    std::map<pid_t, std::set<std::string>> build_ids;  // executable objects per process
    std::set<pid_t> with_registry;                     // processes nines patched
    std::vector<std::string> all_build_ids() const;
  };
  Snapshot snapshot();
  void rescan(const std::vector<pid_t>& candidates);  // patches new processes
  void watch_processes();

  // --- control socket (control_socket.cc) ---------------------------------------------
  Result<Fd> open_socket();
  void serve_socket(Fd listener);
  nlohmann::json answer_request(const std::string& line);

  // --- status and metrics (status.cc) ---------------------------------------------------
  nlohmann::json status();
  nlohmann::json catalogue_json() const;  // under mu_
  void save_status();
  std::string render_metrics();
  void update_metrics_server();

  Paths paths_;
  AgentHooks hooks_;
  std::optional<StateDb> db_;
  Policy policy_;
  int64_t config_mtime_ = -1;
  std::string config_error_;

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
  std::atomic<bool> full_rescan_{true};  // look at every process at the next turn
  std::atomic<bool> stopped_{false};

  std::mutex mu_;  // guards the fields below and db_
  std::condition_variable cv_;
  bool refresh_ = false, retry_ = false, disable_ = false;
  uint64_t checks_done_ = 0, disables_done_ = 0;
  nlohmann::json last_disable_;
  nlohmann::json last_status_;  // what the last save_status built (running), for refresh
  nlohmann::json advisor_;      // the verdict sent with the last report
  std::string server_tier_;     // the tier the server says this machine is in
  int64_t started_ = 0;
  int64_t last_check_ = 0, next_check_ = 0;
  std::string last_result_ = "no check yet";
  int64_t backoff_s_ = 0;
  bool enabled_ = false;
  std::vector<Refusal> refusals_;          // offers refused outside their rows
  std::optional<FreshnessDoc> fresh_doc_;  // this check's verified, current document
  CatalogueState catalogue_;

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
  std::unique_ptr<MetricsServer> metrics_;
  std::string metrics_listen_;
  std::atomic<uint64_t> m_checks_{0}, m_check_failures_{0}, m_applies_{0}, m_apply_failures_{0};
  std::atomic<int64_t> m_last_check_{0}, m_next_check_{0};
  std::atomic<int64_t> m_catalogue_stale_{1}, m_catalogue_issued_{0};
  std::mutex metrics_mu_;
  std::map<std::string, int> m_states_;  // under metrics_mu_
};

// Reads and verifies a downloaded bundle (ROOT/var/lib/nines/bundles/SHA256.bundle).
Result<bundle::Bundle> read_cached_bundle(const Paths& paths, const std::string& sha256,
                                          const std::string& trust);
// The patch object of a verified user-space bundle, named by the bundle's id and version.
Result<ActivePatch> load_active(const bundle::Bundle& b, const std::string& what);

}  // namespace nines::agent
