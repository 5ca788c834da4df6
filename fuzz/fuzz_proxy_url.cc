// libFuzzer target: the HTTP proxy URL (src/core/proxy_url.cc) of the agent's http-proxy
// key and of ApiClient. What is accepted must print (display()) to a URL that parses to
// the same host and port, and its credentials, percent-encoded again, must read back.
#include <cstddef>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "core/proxy_url.h"

namespace {

std::string percent_encoded(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("%{:02X}", c);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string url(reinterpret_cast<const char*>(data), size);
  auto p = nines::parse_proxy_url(url);
  if (!p) {
    // The message shows the URL with its password masked: never the password itself.
    return 0;
  }
  if (p->port < 1 || p->port > 65535 || p->host.empty()) __builtin_trap();
  auto shown = nines::parse_proxy_url(p->display());
  if (!shown || shown->host != p->host || shown->port != p->port || !shown->user.empty())
    __builtin_trap();
  if (p->user.empty()) return 0;
  std::string with = p->display();
  with.insert(7, percent_encoded(p->user) + ":" + percent_encoded(p->password) + "@");
  auto again = nines::parse_proxy_url(with);
  if (!again || again->user != p->user || again->password != p->password ||
      again->host != p->host || again->port != p->port)
    __builtin_trap();
  return 0;
}
