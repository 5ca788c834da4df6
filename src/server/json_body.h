// Untrusted JSON bodies: their size and nesting are checked on the raw bytes, before
// nlohmann::json builds (and later walks, serializes or destroys) a document. A document
// nested 100,000 levels deep parses fine but overflows the stack in dump(): it must never
// become a json value at all.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace nines::server {

// Limits of a JSON request body.
inline constexpr size_t kMaxJsonBody = 4u << 20;
// Arrays and objects nested inside each other; the deepest body of the API (a report's
// advisor verdict) needs 4.
inline constexpr size_t kMaxJsonDepth = 32;

// Scans `bytes` as JSON text for its nesting depth (strings and their escapes skipped;
// malformed text is left to the parser). Fails naming `what` when the depth passes
// `max_depth` or the size passes `max_bytes`. O(n), no allocation.
Status check_json_bounds(std::string_view bytes, std::string_view what,
                         size_t max_bytes = kMaxJsonBody, size_t max_depth = kMaxJsonDepth);

// check_json_bounds, then parse; the result must be an object. Errors name `what`:
// "report: body is not a JSON object", "report: JSON nested more than 32 levels deep".
Result<nlohmann::json> parse_json_object(std::string_view bytes, std::string_view what,
                                         size_t max_bytes = kMaxJsonBody,
                                         size_t max_depth = kMaxJsonDepth);

}  // namespace nines::server
