// libFuzzer target: the patch server's JSON request bodies, which any holder of a token
// (or, for enrollment, of an enroll token) sends. The bytes go through the bounds check
// and parse every JSON route uses (server::parse_json_object: size and nesting checked on
// the bytes first), then through the body rules that are pure functions: the check-in
// identity, each report line, the advisor verdict and the catalogue state
// (src/server/catalogue.cc). Whatever parses must serialise again (dump() recurses: the
// nesting bound is what keeps it on the stack).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/catalogue.h"
#include "server/json_body.h"

using namespace nines::server;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto body = parse_json_object(bytes, "fuzz");
  if (!body) return 0;
  (void)body->dump();
  const nlohmann::json& j = *body;
  if (auto id = parse_identity(j)) (void)identity_sha(*id);
  if (auto r = j.find("reports"); r != j.end() && r->is_array())
    for (size_t i = 0; i < r->size(); ++i) (void)parse_report_line((*r)[i], i, 1764000000);
  if (auto a = j.find("advisor"); a != j.end()) (void)parse_advisor(*a);
  if (auto c = j.find("catalogue"); c != j.end()) (void)parse_catalogue_state(*c);
  return 0;
}
