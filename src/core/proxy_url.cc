#include "core/proxy_url.h"

#include <cctype>
#include <optional>
#include <string_view>

namespace nines {

namespace {

// The value as messages may show it: "http://USER:***@HOST:PORT".
std::string masked(const std::string& url) {
  size_t from = url.find("://");
  from = from == std::string::npos ? 0 : from + 3;
  size_t end = url.find('/', from);
  size_t at = url.rfind('@', end == std::string::npos ? std::string::npos : end);
  if (at == std::string::npos || at < from) return url;
  size_t colon = url.find(':', from);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

std::optional<std::string> percent_decoded(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

bool all_of(std::string_view s, std::string_view allowed_punct, bool hex_only) {
  for (char c : s) {
    bool ok = hex_only ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                       : std::isalnum(static_cast<unsigned char>(c)) != 0;
    if (!ok && allowed_punct.find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

std::string ProxyUrl::display() const {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("http://{}{}{}:{}", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

Result<ProxyUrl> parse_proxy_url(const std::string& url) {
  auto bad = [&](std::string_view why) {
    return make_error("proxy URL '{}': {}", masked(url), why);
  };
  constexpr std::string_view kForm = "(http://[USER:PASSWORD@]HOST:PORT)";
  if (url.starts_with("https://"))
    return bad(
        "https:// proxies are not supported: give the proxy as http://HOST:PORT (an "
        "https server is still reached through it, over a CONNECT tunnel)");
  if (!url.starts_with("http://")) return bad(fmt::format("must start with http:// {}", kForm));
  std::string_view rest(url);
  rest.remove_prefix(7);
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find_first_of("/?#") != std::string_view::npos)
    return bad(fmt::format("a proxy URL has no path {}", kForm));
  ProxyUrl p;
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == userinfo.size())
      return bad(fmt::format("credentials must be USER:PASSWORD, both non-empty {}", kForm));
    auto user = percent_decoded(userinfo.substr(0, colon));
    auto password = percent_decoded(userinfo.substr(colon + 1));
    if (!user || !password) return bad("bad percent-encoding in the credentials");
    p.user = std::move(*user);
    p.password = std::move(*password);
  }
  std::string_view port;
  if (rest.starts_with('[')) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in the IPv6 address");
    p.host = std::string(rest.substr(1, close - 1));
    if (p.host.empty() || !all_of(p.host, ":.", true)) return bad("not an IPv6 address in [...]");
    if (close + 1 >= rest.size() || rest[close + 1] != ':')
      return bad(fmt::format("no port {}", kForm));
    port = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad(fmt::format("no port {}", kForm));
    p.host = std::string(rest.substr(0, colon));
    port = rest.substr(colon + 1);
    if (p.host.empty()) return bad(fmt::format("no host {}", kForm));
    if (!all_of(p.host, ".-_", false))
      return bad("the host must be a name or an address (an IPv6 address goes in [...])");
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos)
    return bad(fmt::format("the port must be a number {}", kForm));
  p.port = std::stoi(std::string(port));
  if (p.port < 1 || p.port > 65535) return bad("the port must be 1-65535");
  return p;
}

}  // namespace nines
