#include "server/json_body.h"

#include "core/json_depth.h"

namespace nines::server {

Status check_json_bounds(std::string_view bytes, std::string_view what, size_t max_bytes,
                         size_t max_depth) {
  if (bytes.size() > max_bytes)
    return make_error("{}: body of {} bytes, more than the limit of {}", what, bytes.size(),
                      max_bytes);
  if (!json_depth_within(bytes, max_depth))
    return make_error("{}: JSON nested more than {} levels deep", what, max_depth);
  return {};
}

Result<nlohmann::json> parse_json_object(std::string_view bytes, std::string_view what,
                                         size_t max_bytes, size_t max_depth) {
  NINES_CHECK(check_json_bounds(bytes, what, max_bytes, max_depth));
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error("{}: body is not a JSON object", what);
  return j;
}

}  // namespace nines::server
