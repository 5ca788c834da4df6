// Catalogue freshness, the server's side (docs/SECURITY.md, "Catalogue freshness"): a
// document that lists, for one tier, the newest version of each patch id and its digest,
// signed with the server's online timestamp key, so that a machine can tell a server that
// withholds newer patches or replays an old catalogue. The timestamp key signs no code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "core/result.h"
#include "server/storage.h"

namespace nines::server {

// What the signature covers: this context, one zero byte, then the document's bytes.
inline constexpr std::string_view kFreshnessContext = "nines-freshness-v1";
// A document is signed again at least this often, even when the catalogue holds still.
inline constexpr int64_t kFreshnessResignS = 3600;

// The document's JSON text for `tier` at catalogue `generation`: every patch id among
// `tier_bundles` at its newest version (sorted by id), issued at `issued_unix`, valid for
// `ttl_s`. Pure: the same inputs give the same bytes.
std::string freshness_document(const std::string& tier, int64_t generation,
                               const std::vector<BundleRecord>& tier_bundles, int64_t issued_unix,
                               int64_t ttl_s);

// The check-in answer's "freshness" member: {"document", "signature" (128 hex), "key" (64 hex)}.
nlohmann::json sign_freshness(const bundle::SecretKey& key, const std::string& document);

// True when `signature_hex` is `key`'s signature of `document` under kFreshnessContext.
bool verify_freshness(const bundle::PublicKey& key, std::string_view document,
                      std::string_view signature_hex);

// The path of a timestamp key's public half: FILE.key -> FILE.pub, else FILE + ".pub".
std::string timestamp_public_path(const std::string& secret_path);

// Reads the timestamp key at `path`. When it is missing and `create` is set, makes a new
// one: the secret written mode 0600, its public half beside it (timestamp_public_path),
// `*created` set. Fails naming the file and the cause.
Result<bundle::SecretKey> load_timestamp_key(const std::string& path, bool create,
                                             bool* created);

}  // namespace nines::server
