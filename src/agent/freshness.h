// Catalogue freshness, the agent's side (docs/SECURITY.md, "Catalogue freshness"): the
// server's timestamp key signs, for one tier, the newest version of each patch id and its
// digest, as of a time. The agent verifies it against its own timestamp trust store
// (ROOT/etc/nines/timestamp-keys.d/*.pub, never the publisher keys) and from it tells
// whether the catalogue it is served is fresh, replayed, or withholds newer patches.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/offers.h"
#include "bundle/bundle.h"
#include "core/result.h"

namespace nines::agent {

struct FreshnessEntry {
  int64_t version = 0;
  std::string sha256;
};

struct FreshnessDoc {
  std::string tier;
  int64_t generation = 0;
  int64_t issued_unix = 0, expires_unix = 0;
  std::map<std::string, FreshnessEntry> bundles;  // by patch id
};

// Verifies the envelope (key among `keys`, ed25519 over "nines-freshness-v1", a zero byte
// and the document's bytes), then parses the document strictly: type "nines-freshness",
// format 1, tier equal to `tier` (when `tier` is not empty), generation, issued, expires
// (RFC 3339), bundles [{id, version, sha256}]. Nothing of the document is parsed before
// the signature verifies. Errors name the cause ("freshness: signed by untrusted key <fp>").
Result<FreshnessDoc> verify_freshness(const FreshnessEnvelope& env,
                                      const std::vector<bundle::TrustedKey>& keys,
                                      const std::string& tier);

// Signs a document as the server does (for tests and the fake servers of the test suite).
std::string sign_freshness(std::string_view document, const bundle::SecretKey& key);

// What the agent knows about its catalogue after a check.
struct CatalogueState {
  bool stale = true;
  int64_t since_unix = 0;  // stale since (0 when fresh)
  std::string reason = "no signed catalogue received yet";  // why stale ("" when fresh)
  int64_t issued_unix = 0;  // of the newest verified document (0: none ever)
  std::vector<std::string> withheld;  // "fix-libfoo: version 3 listed, 2 offered"
};

}  // namespace nines::agent
