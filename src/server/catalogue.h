// The server's rules, free of HTTP and storage so they are tested directly: field
// validation of machine identities and reports, which bundles apply to a machine, and the
// fleet summary the dashboard and /metrics show.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "core/result.h"
#include "server/storage.h"

namespace nines::server {

// Limits on what a machine may send.
inline constexpr size_t kMaxBuildIds = 20000;
inline constexpr size_t kMaxReportLines = 1000;
inline constexpr size_t kMaxReasonBytes = 1024;
inline constexpr size_t kMaxAdvisorBytes = 16384;

// Field checks; each returns an error naming the field and the cause, or ok.
// Ids of bundles, machines and tiers: [A-Za-z0-9._+:-], 1..128 characters.
Status check_name_field(std::string_view field, std::string_view value, size_t max = 128);
// Lowercase or uppercase hex, even length, 2..128 characters (GNU build-ids are 20 bytes).
Status check_hex_field(std::string_view field, std::string_view value);
// Printable text without control characters, at most `max` bytes (reasons, names).
Status check_text_field(std::string_view field, std::string_view value, size_t max);

// What a machine says about itself at check-in.
struct MachineIdentity {
  std::string machine_id;  // from its token, never from the body
  std::string name;        // host name, for people
  std::string arch;        // uname -m: x86_64, aarch64, ...
  std::string kernel_release;
  std::string kernel_build_id;         // may be empty
  std::vector<std::string> build_ids;  // lowercase hex, deduplicated, sorted
};

// Validates the check-in body {"name","arch","kernel_release","kernel_build_id","build_ids"}.
// Errors name the field: "checkin: build_ids[3]: 'xyz' is not hex".
Result<MachineIdentity> parse_identity(const nlohmann::json& body);
MachineIdentity identity_of(const MachineRecord& m);
// SHA-256 (hex) over every field of the identity but machine_id, unambiguously framed.
std::string identity_sha(const MachineIdentity& m);

// The bundles of a tier that apply to a machine: userspace bundles whose target build-id is
// among the machine's build-ids, kernel bundles for its kernel release (and its kernel
// build-id when both are known); of each patch id only the newest version (patches are
// cumulative: version N replaces every earlier one). Sorted by id.
std::vector<BundleRecord> applicable_bundles(const std::vector<BundleRecord>& tier_bundles,
                                             const MachineIdentity& m);

// The catalogue record of the bundle file `bytes`, parsed (and verified) as `b`, accepted
// by this server at `uploaded_unix`.
BundleRecord bundle_record(const bundle::Bundle& b, std::string_view bytes, int64_t uploaded_unix);

// One bundle as a machine sees it at check-in (id, version, kind, target, sha256, url,
// size, manifest).
nlohmann::json bundle_offer_json(const BundleRecord& b);

// A report line as sent by a machine: {"id","version","state","reason","at"}.
// state: applied | apply-failed | deferred | not-applicable; deferred needs a reason.
Result<ReportRecord> parse_report_line(const nlohmann::json& line, size_t index, int64_t now_unix);
// The advisor verdict object: {"verdict": "none"|"restart"|"reboot", "reasons": [...], ...};
// kept as compact JSON. Errors name the field.
Result<std::string> parse_advisor(const nlohmann::json& advisor);

// A report's optional catalogue freshness state (docs/SECURITY.md):
// {"state": "fresh"|"stale", "since": RFC 3339 (optional), "reason": text (optional, at most
// kMaxReasonBytes)}; kept as compact JSON with only those members. Errors name the field.
Result<std::string> parse_catalogue_state(const nlohmann::json& catalogue);

// Everything the dashboard shows, computed from the store in one pass.
struct FleetInput {
  std::vector<MachineRecord> machines;
  std::vector<BundleRecord> bundles;
  std::vector<Promotion> promotions;
  std::vector<ReportRecord> states;   // current_states()
  std::vector<ReportRecord> history;  // full history (first "applied" time per machine)
  int64_t now_unix = 0;
};
// {"machines":{"total":N,"by_state":{...},"needing_reboot":N,"catalogue_stale":N},
//  "machine_list":[... "catalogue": {"state","since","reason"} or null ...],
//  "cves":[{id,severity,published_unix,bundles,machines_affected,machines_applied,
//           exposure_median_s,exposure_max_s,open_exposure_max_s}],
//  "cves_published":N, "cves_applied_everywhere":N, "reboot":[{machine_id,reasons}],
//  "rollout":[{id,version,tier,machines_offered,applied,failed,deferred,pending}]}
nlohmann::json fleet_summary(const FleetInput& in);
// A machine's state from its applicable bundles and its patch states: "failed" when any
// applicable patch failed, else "deferred", else "pending" (offered, not yet applied),
// else "up-to-date".
std::string machine_state(const MachineRecord& m, const std::vector<BundleRecord>& offered,
                          const std::map<std::string, ReportRecord>& patch_states);

}  // namespace nines::server
