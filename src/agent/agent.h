// The agent: the daemon `nines agent` runs on every machine (docs/AGENT.md).
//
//   each check:  reload policy → check in with the server (build-ids of mapped objects,
//                kernel release) → download new bundles by sha256 (bounded) → verify
//                against the trust store → check the signed manifest against the offer,
//                the version floor and the signed catalogue → decide by policy on the
//                signed manifest → write "applying" → apply (kernel: klp;
//                user space: every process mapping the target) → write "applied" or
//                "apply-failed" → report the changes to the server → schedule the next
//                check (interval minus up to 10% jitter; on a server error, back off with
//                jitter and keep everything applied).
//   new processes: proc connector events (NETLINK_CONNECTOR / CN_IDX_PROC) trigger a
//                rescan; a periodic /proc rescan is the fallback (every 400 ms where the
//                kernel ignores the subscription, e.g. in a child PID namespace).
//   start:       reconcile with what is true, not with what was last written: a row left
//                "applying" by a crash becomes "interrupted" (never retried automatically);
//                kernel rows are checked against /sys/kernel/livepatch; processes that map
//                an applied target and whose registry lacks the patch are patched.
//   socket:      ROOT/run/nines/agent.sock (0600): one request line, one JSON answer:
//                status | refresh | refresh-retry | disable | enable.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "agent/state.h"
#include "core/result.h"

namespace nines::agent {

// Test seams: called at fixed points of the agent's work; empty in production.
struct AgentHooks {
  // After "applying" is journaled, before any process is touched (tests kill the agent
  // there to leave an interrupted apply).
  std::function<void(const std::string& id, int64_t version)> before_apply;
};

struct AgentOptions {
  Paths paths;
  bool once = false;  // one check, then exit (for scripts)
  AgentHooks hooks;
};

// Runs until SIGTERM/SIGINT. Returns the exit status. Fails before touching anything when
// the state or the socket cannot be opened.
int run_agent(const AgentOptions& opts);

// Sends one request line to the agent's socket and returns its JSON answer; fails when no
// agent answers ("agent socket PATH: connect: No such file or directory").
Result<nlohmann::json> request(const Paths& paths, const std::string& line, double timeout_s = 120);

// Reverts every patch the agent applied (user space: every process whose registry holds it;
// kernel: klp::revert), marks them "reverted" and the agent disabled. Used by the agent on
// `disable`, and by `nines disable` itself when no agent runs. Returns {"reverted": [...],
// "failed": [...]}.
nlohmann::json revert_all(StateDb& db, const Paths& paths);

// The status document from the saved state only (no agent running): the last document the
// agent saved, with agent.running = false.
Result<nlohmann::json> saved_status(const Paths& paths);

// Renders a status document: "humane", "json" or "yaml".
std::string format_status(const nlohmann::json& status, const std::string& format, bool verbose);

}  // namespace nines::agent
