// libFuzzer target: the proxy's answer to CONNECT (src/core/proxy_connect.cc), which the
// agent reads from the network before TLS starts. Only a 2xx status line opens the tunnel,
// and a refusal's message never carries the proxy's control characters into the logs.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/proxy_connect.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view head(reinterpret_cast<const char*>(data), size);
  nines::ProxyUrl proxy;
  proxy.host = "proxy.example";
  proxy.port = 3128;
  for (bool credentials : {false, true}) {
    proxy.user = credentials ? "agent" : "";
    proxy.password = credentials ? "secret" : "";
    auto st = nines::check_connect_reply(head, proxy, "patches.example:443");
    if (st) {
      if (!head.starts_with("HTTP/1.") || head.size() < 12 || head[9] != '2') __builtin_trap();
      continue;
    }
    for (char c : st.error().message)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) __builtin_trap();
  }
  return 0;
}
