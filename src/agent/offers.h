// The check-in answer as the agent reads it: bytes from a server that is trusted for
// distribution only (docs/SECURITY.md). One pure function turns them into validated offers
// or a reasoned refusal; it never throws, never recurses on the input's nesting, and never
// walks a document deeper than kMaxJsonDepth. Offers are download hints: what the agent
// decides and applies comes from the signed manifest of the bundle they name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nines::agent {

inline constexpr size_t kMaxCheckinAnswerBytes = 8u << 20;
inline constexpr size_t kMaxJsonDepth = 32;
inline constexpr size_t kMaxOffers = 10000;
inline constexpr size_t kMaxFreshnessBytes = 4u << 20;

struct Offer {
  std::string id;       // [A-Za-z0-9._+-], 1..128 characters
  int64_t version = 0;  // >= 1
  std::string sha256;   // 64 lowercase hex: the bundle file's digest
  // Hints, each optional (empty / 0 when the server did not send it):
  std::string kind;  // userspace | kernel
  std::string target_name, target_build_id, kernel_release;
  int64_t published_unix = 0;
};

// An offer that was refused before anything was downloaded. `id` and `version` are what
// could be read of it ("" / 0 otherwise).
struct RejectedOffer {
  std::string id;
  int64_t version = 0;
  std::string reason;  // "bundles[2].version: expected an integer, got string"
};

// The optional signed freshness member (docs/SECURITY.md), still unverified.
struct FreshnessEnvelope {
  std::string document;   // JSON text, signed byte for byte
  std::string signature;  // 128 hex digits
  std::string key;        // 64 hex digits
};

struct CheckinAnswer {
  std::string tier;
  std::vector<Offer> offers;
  std::vector<RejectedOffer> rejected;
  std::optional<FreshnessEnvelope> freshness;
  std::string freshness_error;  // why a freshness member present could not be read
};

// The check-in answer's bytes → validated offers. Fails (naming the cause) only when the
// answer as a whole is unusable: over kMaxCheckinAnswerBytes, nested deeper than
// kMaxJsonDepth, not JSON, not an object, `bundles` not an array, more than kMaxOffers
// offers. A single malformed offer is returned in `rejected` with its reason. This is the
// entry point for fuzzing the agent's check-in handling.
Result<CheckinAnswer> parse_checkin_answer(std::string_view bytes);

// Fails when `text` nests arrays/objects deeper than `max_depth` (counted on the bytes,
// strings skipped, before any parser builds or walks anything).
Status check_json_depth(std::string_view text, size_t max_depth);

// The id rule of manifests: [A-Za-z0-9._+-], 1..128 characters.
bool valid_patch_id(std::string_view id);
bool is_lower_hex(std::string_view s);

}  // namespace nines::agent
