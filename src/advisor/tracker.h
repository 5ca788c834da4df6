// Debian's security tracker data (https://security-tracker.debian.org/tracker/data/json),
// the one reader of its format:
//
//   {"SOURCE-PACKAGE": {"CVE-YYYY-NNNN": {"description": "...", "scope": "...",
//       "debianbug": 123, "releases": {"bookworm": {"status": "resolved",
//       "repositories": {"bookworm": "1.2-3"}, "fixed_version": "1.2-2",
//       "urgency": "medium"}, "sid": {...}}}, ...}, ...}
//
// `status` is "resolved" (with `fixed_version`; "0" means the release was never affected),
// "open" or "undetermined" (no fix yet); `urgency` is "unimportant", "low", "medium",
// "high", "not yet assigned" or "end-of-life" (a trailing "*" or "**" marks the rating as
// uncertain and is ignored).
//
// The whole file is about 60 MB and a machine needs a few percent of it: the sources it
// has installed, for its own release. The reader walks the file once from a read-only
// mapping, decodes only those parts, and skips everything else checking its structure
// only (balanced brackets, terminated strings): nlohmann's parser, even its SAX interface,
// took 1.7 s for the whole file here, this walk about 100 ms (docs/PERFORMANCE.md).
// Memory: what is kept, plus the page cache of the mapping.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/result.h"

namespace nines::advisor {

enum class TrackerStatus { kResolved, kOpen, kUndetermined, kOther };

// One CVE of one source package in one release.
struct TrackerEntry {
  std::string cve;            // "CVE-2024-1234"
  TrackerStatus status = TrackerStatus::kOther;
  std::string fixed_version;  // empty when none
  std::string urgency;        // as published, "*" marks removed; may be empty
};

struct TrackerData {
  std::string release;  // the codename that was kept
  std::unordered_map<std::string, std::vector<TrackerEntry>> by_source;  // wanted sources only
  size_t sources = 0;   // source packages in the file
};

// nines' severity for a tracker urgency: "high", "medium", "low", "negligible"
// (unimportant), "unknown" (not yet assigned, end-of-life, anything else).
std::string severity_from_urgency(std::string_view urgency);

// Reads tracker JSON text, keeping the entries of `wanted` sources in release `codename`.
// Entries whose key is not a CVE id (the tracker's TEMP-... ids) are skipped. Fails on text
// that is not JSON of this shape, naming the byte offset and, inside a kept source, the
// path ("openssl/CVE-2024-1/releases/bookworm/status: expected a string").
Result<TrackerData> parse_tracker(std::string_view text,
                                  const std::unordered_set<std::string>& wanted,
                                  std::string_view codename);

// parse_tracker on a file (mapped read-only, at most 1 GiB). Errors name the file.
Result<TrackerData> read_tracker_file(const std::string& path,
                                      const std::unordered_set<std::string>& wanted,
                                      std::string_view codename);

}  // namespace nines::advisor
