// The HTTP proxy's answer to a CONNECT request (src/server/client.cc opens the tunnel to
// an https server through it). The head of that answer comes from the network, so it is
// read here, apart from the socket code, where it can be tested and fuzzed on its own.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/proxy_url.h"
#include "core/result.h"

namespace nines {

// The longest answer head (status line, headers, blank line) a client reads.
inline constexpr size_t kConnectReplyMaxHead = 16 * 1024;

// What a 407 from the proxy means, with or without credentials in the proxy URL.
std::string_view proxy_auth_hint(bool have_credentials);

// Ok when `head` (the answer's bytes up to its blank line) opens the tunnel: a status
// line "HTTP/1.x 2xx ...". Otherwise an error naming the proxy, the target ("HOST:PORT")
// and the status line as received (at most 80 characters, non-printable ones as '?'):
// "the answer is not HTTP" or "refused the tunnel ...: HTTP 407 ... (hint)".
Status check_connect_reply(std::string_view head, const ProxyUrl& proxy, std::string_view target);

}  // namespace nines
