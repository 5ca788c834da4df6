#include "agent/freshness.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/strings.h"

namespace nines::agent {

using nlohmann::json;

namespace {

// Domain separation: a freshness signature can never be taken for one over a bundle.
std::string signed_bytes(std::string_view document) {
  std::string msg = "nines-freshness-v1";
  msg.push_back('\0');
  msg.append(document);
  return msg;
}

Result<int64_t> time_member(const json& d, const char* key) {
  auto it = d.find(key);
  if (it == d.end() || !it->is_string()) return make_error("freshness: {}: expected an RFC 3339 string", key);
  auto t = parse_rfc3339(it->get_ref<const std::string&>());
  if (!t) return make_error("freshness: {}: '{}' is not an RFC 3339 time", key, it->get_ref<const std::string&>());
  return *t;
}

}  // namespace

std::string sign_freshness(std::string_view document, const bundle::SecretKey& key) {
  if (sodium_init() < 0) return {};
  std::string msg = signed_bytes(document);
  std::array<uint8_t, 64> sig{};
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(msg.data()),
                       msg.size(), key.bytes.data());
  return to_hex(sig);
}

Result<FreshnessDoc> verify_freshness(const FreshnessEnvelope& env,
                                      const std::vector<bundle::TrustedKey>& keys,
                                      const std::string& tier) {
  if (sodium_init() < 0) return make_error("freshness: libsodium failed to initialise");
  auto key_bytes = from_hex(env.key);
  auto sig = from_hex(env.signature);
  if (!key_bytes || key_bytes->size() != 32 || !sig || sig->size() != 64)
    return make_error("freshness: malformed key or signature");
  bundle::PublicKey pk;
  std::copy(key_bytes->begin(), key_bytes->end(), pk.bytes.begin());
  bool known = false;
  for (const auto& k : keys) known = known || k.key == pk;
  if (!known)
    return make_error("freshness: signed by untrusted key {} (not in timestamp-keys.d)",
                      bundle::fingerprint(pk));
  std::string msg = signed_bytes(env.document);
  if (crypto_sign_verify_detached(sig->data(), reinterpret_cast<const unsigned char*>(msg.data()),
                                  msg.size(), pk.bytes.data()) != 0)
    return make_error("freshness: bad signature (key {})", bundle::fingerprint(pk));

  // Signed by the server's timestamp key: still read with bounds (depth first).
  NINES_CHECK(check_json_depth(env.document, 8));
  json d = json::parse(env.document, nullptr, false);
  if (!d.is_object()) return make_error("freshness: the document is not a JSON object");
  if (d.value("type", json()) != "nines-freshness")
    return make_error("freshness: type is not \"nines-freshness\"");
  if (d.value("format", json()) != 1) return make_error("freshness: format is not 1");
  FreshnessDoc doc;
  auto t = d.find("tier");
  if (t == d.end() || !t->is_string()) return make_error("freshness: tier: expected a string");
  doc.tier = t->get<std::string>();
  if (!tier.empty() && doc.tier != tier)
    return make_error("freshness: the document is for tier '{}', this machine is in '{}'",
                      doc.tier, tier);
  auto g = d.find("generation");
  if (g == d.end() || !g->is_number_integer())
    return make_error("freshness: generation: expected an integer");
  doc.generation = g->get<int64_t>();
  doc.issued_unix = NINES_TRY(time_member(d, "issued"));
  doc.expires_unix = NINES_TRY(time_member(d, "expires"));
  auto b = d.find("bundles");
  if (b == d.end() || !b->is_array()) return make_error("freshness: bundles: expected an array");
  size_t i = 0;
  for (const auto& e : *b) {
    std::string where = fmt::format("freshness: bundles[{}]", i++);
    if (!e.is_object()) return make_error("{}: expected an object", where);
    auto id = e.find("id");
    auto v = e.find("version");
    auto s = e.find("sha256");
    if (id == e.end() || !id->is_string() || !valid_patch_id(id->get_ref<const std::string&>()))
      return make_error("{}.id: expected a patch id", where);
    if (v == e.end() || !v->is_number_integer() || v->get<int64_t>() < 1)
      return make_error("{}.version: expected an integer >= 1", where);
    if (s == e.end() || !s->is_string() || s->get_ref<const std::string&>().size() != 64 ||
        !is_lower_hex(s->get_ref<const std::string&>()))
      return make_error("{}.sha256: expected 64 lowercase hex digits", where);
    FreshnessEntry& slot = doc.bundles[id->get<std::string>()];
    if (v->get<int64_t>() > slot.version) slot = {v->get<int64_t>(), s->get<std::string>()};
  }
  return doc;
}

}  // namespace nines::agent
