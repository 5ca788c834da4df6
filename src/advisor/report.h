// The three outputs of `nines check`: text for people, JSON for scripts, and needrestart's
// `-b` batch lines so that existing monitoring keeps working.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "advisor/verdict.h"

namespace nines::advisor {

std::string render_text(const Facts& facts, const Verdict& verdict);

nlohmann::json to_json(const Facts& facts, const Verdict& verdict);

// Whose view `nines check` reports, as needrestart decides by its real uid: root sees the
// machine (kernel, microcode, units, containers, sessions), a user only their own
// processes (NEEDRESTART-PID lines).
enum class BatchMode { kRoot, kUser };

// needrestart -b lines, in needrestart's order and with its meanings (needrestart 3.6):
//   root: NEEDRESTART-VER, -KCUR, -KEXP (when known), -KSTA, -UCSTA, -UCCUR and -UCEXP
//         (only when the status is known and the revision too), -SVC, -CONT, -SESS;
//   user: NEEDRESTART-VER, then -PID "NAME=PID,PID" for every stale process.
// VER is nines' version, a number ("0.1.0"). Then NINES-REBOOT and NINES-PATCHED, which
// needrestart parsers ignore.
std::string render_batch(const Facts& facts, const Verdict& verdict, const std::string& version,
                         BatchMode mode = BatchMode::kRoot);

// needrestart's Nagios plugin output (-p): one status line with performance data, then the
// services, containers and sessions; `exit_code` gets the plugin status (0 OK, 1 WARN,
// 2 CRIT, 3 UNKNOWN) as needrestart's defaults rate them (services and containers 1,
// kernel, microcode and sessions 2).
std::string render_nagios(const Facts& facts, const Verdict& verdict, BatchMode mode, int& exit_code);

}  // namespace nines::advisor
