// libFuzzer target: every route's JSON request body on the patch server
// (src/server/route_bodies.cc: parse_json_object bounds size and nesting on the bytes,
// then the route's rules: tokens, enroll, checkin, reports with the advisor verdict and
// catalogue state, promote). The first byte chooses the route, the rest is the body. A
// body that parses must also serialise (dump() recurses: the nesting bound keeps it on
// the stack).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/json_body.h"
#include "server/route_bodies.h"

namespace {
constexpr std::string_view kRoutes[] = {"/v1/tokens", "/v1/enroll", "/v1/checkin", "/v1/reports",
                                        "/v1/bundles/:id/:version/promote"};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view route = kRoutes[data[0] % std::size(kRoutes)];
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  (void)nines::server::validate_route_body(route, body);
  if (auto j = nines::server::parse_json_object(body, "fuzz")) (void)j->dump();
  return 0;
}
