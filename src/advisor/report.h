// The three outputs of `nines check`: text for people, JSON for scripts, and needrestart's
// `-b` batch lines so that existing monitoring keeps working.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "advisor/verdict.h"

namespace nines::advisor {

std::string render_text(const Facts& facts, const Verdict& verdict);

nlohmann::json to_json(const Facts& facts, const Verdict& verdict);

// needrestart -b lines: NEEDRESTART-VER, -KCUR, -KEXP, -KSTA, -UCSTA, -UCCUR, -UCEXP,
// -SVC, -CONT, -SESS; then -PID (needrestart's user-mode line) for stale processes outside
// any unit, session or container; then NINES-REBOOT and NINES-PATCHED, which
// needrestart parsers ignore.
std::string render_batch(const Facts& facts, const Verdict& verdict, const std::string& version);

}  // namespace nines::advisor
