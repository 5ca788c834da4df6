#include "server/freshness.h"

#include <sodium.h>
#include <sys/stat.h>

#include <map>

#include "core/clock.h"
#include "core/fd.h"
#include "core/strings.h"

namespace nines::server {

std::string freshness_document(const std::string& tier, int64_t generation,
                               const std::vector<BundleRecord>& tier_bundles, int64_t issued_unix,
                               int64_t ttl_s) {
  std::map<std::string, const BundleRecord*> newest;
  for (const BundleRecord& b : tier_bundles) {
    auto [it, inserted] = newest.emplace(b.id, &b);
    if (!inserted && it->second->version < b.version) it->second = &b;
  }
  nlohmann::ordered_json bundles = nlohmann::ordered_json::array();
  for (const auto& [id, b] : newest)
    bundles.push_back({{"id", id}, {"version", b->version}, {"sha256", b->sha256}});
  nlohmann::ordered_json doc = {{"type", "nines-freshness"},
                                {"format", 1},
                                {"tier", tier},
                                {"generation", generation},
                                {"issued", format_rfc3339(issued_unix)},
                                {"expires", format_rfc3339(issued_unix + ttl_s)},
                                {"bundles", bundles}};
  return doc.dump();
}

namespace {
std::string signed_message(std::string_view document) {
  std::string m(kFreshnessContext);
  m.push_back('\0');
  m.append(document);
  return m;
}
}  // namespace

nlohmann::json sign_freshness(const bundle::SecretKey& key, const std::string& document) {
  std::string m = signed_message(document);
  std::array<uint8_t, crypto_sign_BYTES> sig{};
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(m.data()),
                       m.size(), key.bytes.data());
  return {{"document", document},
          {"signature", to_hex(sig)},
          {"key", to_hex(key.public_key().bytes)}};
}

bool verify_freshness(const bundle::PublicKey& key, std::string_view document,
                      std::string_view signature_hex) {
  std::optional<std::vector<uint8_t>> sig = from_hex(signature_hex);
  if (!sig || sig->size() != crypto_sign_BYTES) return false;
  std::string m = signed_message(document);
  return crypto_sign_verify_detached(sig->data(), reinterpret_cast<const unsigned char*>(m.data()),
                                     m.size(), key.bytes.data()) == 0;
}

std::string timestamp_public_path(const std::string& secret_path) {
  if (secret_path.size() > 4 && secret_path.compare(secret_path.size() - 4, 4, ".key") == 0)
    return secret_path.substr(0, secret_path.size() - 4) + ".pub";
  return secret_path + ".pub";
}

Result<bundle::SecretKey> load_timestamp_key(const std::string& path, bool create,
                                             bool* created) {
  *created = false;
  struct stat st{};
  if (stat(path.c_str(), &st) == 0 || errno != ENOENT || !create) {
    Result<bundle::SecretKey> k = bundle::read_secret_key_file(path);
    if (!k.ok()) return k.error().wrap("timestamp key");
    return k;
  }
  bundle::KeyPair kp = bundle::generate_keypair();
  NINES_CHECK(write_file_atomic(path, bundle::format_secret_key(kp.secret_key), 0600));
  NINES_CHECK(write_file_atomic(timestamp_public_path(path),
                                bundle::format_public_key(kp.public_key, "nines timestamp key"),
                                0644));
  *created = true;
  return kp.secret_key;
}

}  // namespace nines::server
