#include "core/proxy_connect.h"

namespace nines {

namespace {

// At most 80 characters of the proxy's text, printable, for a message.
std::string shown(std::string_view s) {
  std::string out(s.substr(0, 80));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return out;
}

}  // namespace

std::string_view proxy_auth_hint(bool have_credentials) {
  return have_credentials ? "the proxy refused the credentials"
                          : "the proxy requires credentials: http://USER:PASSWORD@HOST:PORT";
}

Status check_connect_reply(std::string_view head, const ProxyUrl& proxy, std::string_view target) {
  // "HTTP/1.1 200 Connection established"
  std::string_view line = head.substr(0, head.find("\r\n"));
  if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ')
    return make_error("proxy {}: CONNECT {}: the answer is not HTTP: '{}'", proxy.display(),
                      target, shown(line));
  std::string_view status = line.substr(9);
  if (!status.starts_with('2')) {
    std::string msg = fmt::format("proxy {} refused the tunnel to {}: HTTP {}", proxy.display(),
                                  target, shown(status));
    if (status.starts_with("407"))
      msg += fmt::format(" ({})", proxy_auth_hint(!proxy.user.empty()));
    return Error{msg};
  }
  return {};
}

}  // namespace nines
