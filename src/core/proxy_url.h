// The HTTP proxy URL of the agent's http-proxy key and of ApiClient (src/server/client.h):
// parsed here, without any HTTP library, so that `nines config` can refuse a bad value.
#pragma once

#include <string>

#include "core/result.h"

namespace nines {

// An HTTP proxy: "http://[USER:PASSWORD@]HOST:PORT[/]". HOST may be a name, an IPv4
// address or a bracketed IPv6 address; USER and PASSWORD may be percent-encoded.
struct ProxyUrl {
  std::string host;  // IPv6 without brackets
  int port = 0;
  std::string user;      // decoded; empty when the URL carries no credentials
  std::string password;  // decoded
  // "http://HOST:PORT": what messages show (never the credentials).
  std::string display() const;
};

// Fails on anything but the form above, naming the value (its password masked) and the
// fault: another scheme (https:// proxies are not supported), no port, a path, a user
// without a password, bad percent-encoding.
Result<ProxyUrl> parse_proxy_url(const std::string& url);

}  // namespace nines
