#include "agent/offers.h"

#include "core/json_depth.h"

#include <nlohmann/json.hpp>

namespace nines::agent {

using nlohmann::json;

namespace {

const char* type_name(const json& v) { return v.type_name(); }

// The readers below are total: a missing member is "absent", a member of the wrong type
// or out of range is an error naming it; nothing here can throw.
Result<std::optional<std::string>> opt_string(const json& o, const char* key, size_t max_len,
                                              const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string())
    return make_error("{}.{}: expected a string, got {}", where, key, type_name(*it));
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max_len)
    return make_error("{}.{}: {} characters, limit {}", where, key, s.size(), max_len);
  return std::optional<std::string>(s);
}

Result<std::optional<int64_t>> opt_int(const json& o, const char* key, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::optional<int64_t>();
  if (it->is_number_unsigned()) {
    uint64_t u = it->get<uint64_t>();
    if (u > (uint64_t{1} << 53)) return make_error("{}.{}: {} is out of range", where, key, u);
    return std::optional<int64_t>(static_cast<int64_t>(u));
  }
  if (it->is_number_integer()) {
    int64_t i = it->get<int64_t>();
    if (i < -(int64_t{1} << 53)) return make_error("{}.{}: {} is out of range", where, key, i);
    return std::optional<int64_t>(i);
  }
  return make_error("{}.{}: expected an integer, got {}", where, key, type_name(*it));
}

Result<Offer> read_offer(const json& o, const std::string& where, RejectedOffer& seen) {
  if (!o.is_object()) return make_error("{}: expected an object, got {}", where, type_name(o));
  Offer f;
  auto id = NINES_TRY(opt_string(o, "id", 128, where));
  if (!id) return make_error("{}.id: missing", where);
  if (!valid_patch_id(*id))
    return make_error("{}.id: '{}' is not a patch id ([A-Za-z0-9._+-], 1..128)", where, *id);
  f.id = *id;
  seen.id = f.id;
  auto version = NINES_TRY(opt_int(o, "version", where));
  if (!version) return make_error("{}.version: missing", where);
  if (*version < 1) return make_error("{}.version: {} is below 1", where, *version);
  f.version = *version;
  seen.version = f.version;
  auto sha = NINES_TRY(opt_string(o, "sha256", 64, where));
  if (!sha) return make_error("{}.sha256: missing", where);
  if (sha->size() != 64 || !is_lower_hex(*sha))
    return make_error("{}.sha256: '{}' is not 64 lowercase hex digits", where, *sha);
  f.sha256 = *sha;
  auto kind = NINES_TRY(opt_string(o, "kind", 16, where));
  if (kind && *kind != "userspace" && *kind != "kernel")
    return make_error("{}.kind: '{}' is not one of userspace, kernel", where, *kind);
  f.kind = kind.value_or("");
  f.target_name = NINES_TRY(opt_string(o, "target_name", 256, where)).value_or("");
  f.target_build_id = NINES_TRY(opt_string(o, "target_build_id", 128, where)).value_or("");
  if (!is_lower_hex(f.target_build_id))
    return make_error("{}.target_build_id: '{}' is not lowercase hex", where, f.target_build_id);
  f.kernel_release = NINES_TRY(opt_string(o, "kernel_release", 256, where)).value_or("");
  f.published_unix = NINES_TRY(opt_int(o, "published_unix", where)).value_or(0);
  return f;
}

std::optional<FreshnessEnvelope> read_freshness(const json& a, std::string& error) {
  auto it = a.find("freshness");
  if (it == a.end() || it->is_null()) return std::nullopt;
  auto fail = [&](std::string why) {
    error = "freshness: " + why;
    return std::nullopt;
  };
  if (!it->is_object()) return fail(fmt::format("expected an object, got {}", type_name(*it)));
  auto doc = opt_string(*it, "document", kMaxFreshnessBytes, "freshness");
  auto sig = opt_string(*it, "signature", 128, "freshness");
  auto key = opt_string(*it, "key", 64, "freshness");
  for (const auto* r : {&doc, &sig, &key})
    if (!*r) return fail(r->error().message);
  if (!*doc || !*sig || !*key) return fail("document, signature and key are required");
  if ((*sig)->size() != 128 || !is_lower_hex(**sig))
    return fail("signature: not 128 lowercase hex digits");
  if ((*key)->size() != 64 || !is_lower_hex(**key)) return fail("key: not 64 lowercase hex digits");
  return FreshnessEnvelope{**doc, **sig, **key};
}

}  // namespace

bool valid_patch_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '+' ||
          c == '-'))
      return false;
  return true;
}

bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Status check_json_depth(std::string_view text, size_t max_depth) {
  if (!json_depth_within(text, max_depth))
    return make_error("nested deeper than {} levels", max_depth);
  return {};
}

Result<CheckinAnswer> parse_checkin_answer(std::string_view bytes) {
  if (bytes.size() > kMaxCheckinAnswerBytes)
    return make_error("check-in answer: {} bytes, limit {}", bytes.size(), kMaxCheckinAnswerBytes);
  if (auto d = check_json_depth(bytes, kMaxJsonDepth); !d)
    return d.error().wrap("check-in answer");
  json a = json::parse(bytes, nullptr, false);
  if (a.is_discarded()) return make_error("check-in answer: not JSON");
  if (!a.is_object()) return make_error("check-in answer: expected an object, got {}", type_name(a));
  CheckinAnswer out;
  out.tier = NINES_TRY(opt_string(a, "tier", 128, "check-in answer")).value_or("");
  auto bundles = a.find("bundles");
  if (bundles != a.end() && !bundles->is_null()) {
    if (!bundles->is_array())
      return make_error("check-in answer: bundles: expected an array, got {}",
                        type_name(*bundles));
    if (bundles->size() > kMaxOffers)
      return make_error("check-in answer: {} offers, limit {}", bundles->size(), kMaxOffers);
    size_t i = 0;
    for (const auto& o : *bundles) {
      RejectedOffer seen;
      auto f = read_offer(o, fmt::format("bundles[{}]", i++), seen);
      if (f) {
        out.offers.push_back(std::move(*f));
      } else {
        seen.reason = f.error().message;
        out.rejected.push_back(std::move(seen));
      }
    }
  }
  out.freshness = read_freshness(a, out.freshness_error);
  return out;
}

}  // namespace nines::agent
