// A small HTTP(S) client of the patch server's API, used by the agent, `nines admin`, the
// upstream mirror and the tests.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string_view>
#include <string>

#include <nlohmann/json.hpp>

#include "core/proxy_url.h"
#include "core/result.h"

namespace httplib {
class ClientImpl;
}

namespace nines::server {

struct HttpReply {
  int status = 0;
  std::string reason;  // the status line's text ("Unable to connect"), for non-JSON errors
  std::string body;
  std::multimap<std::string, std::string> headers;
  std::string header(const std::string& name) const;
};

class ApiClient {
 public:
  // base_url: "http://HOST:PORT" or "https://HOST:PORT". With https, ca_file names the PEM
  // certificate(s) to trust (empty: the system's). proxy_url (empty: none; the environment's
  // http_proxy variables are not read) sends every request through that HTTP proxy: an
  // http server gets absolute-form requests, an https server a CONNECT tunnel inside which
  // TLS and its certificate check run end to end as without a proxy. Credentials in
  // proxy_url become Basic Proxy-Authorization. Fails on a malformed server or proxy URL.
  static Result<ApiClient> make(const std::string& base_url, std::string token,
                                const std::string& ca_file = {}, const std::string& proxy_url = {});
  ApiClient(ApiClient&&) noexcept;
  ApiClient& operator=(ApiClient&&) noexcept;
  ~ApiClient();

  // Raw requests: fail only when no HTTP answer came (connection refused, timeout, TLS).
  // Through a proxy the message names it. To an http server, an answer of the proxy itself
  // (407, 502 ...) is a reply like any other; to an https server, a proxy that refuses the
  // CONNECT tunnel is an error with its status line.
  Result<HttpReply> get(const std::string& path,
                        const std::multimap<std::string, std::string>& headers = {});
  Result<HttpReply> post(const std::string& path, const std::string& body,
                         const std::string& content_type);

  // Bounded requests, for answers from a server that is not trusted with sizes or time
  // (the agent's exchange child). The answer's body must not exceed max_bytes (a
  // Content-Length above it is refused before any byte of the body is read) and must be
  // complete by deadline_ns (monotonic_ns(); 0 = no deadline beyond the per-read timeout):
  // otherwise the request fails naming the limit. get_streamed hands the body to `sink`
  // chunk by chunk as it arrives (the reply's body stays empty; sink returning false stops).
  Result<HttpReply> get_streamed(const std::string& path, uint64_t max_bytes, int64_t deadline_ns,
                                 const std::function<bool(std::string_view)>& sink);
  Result<HttpReply> post_bounded(const std::string& path, const std::string& body,
                                 const std::string& content_type, uint64_t max_bytes,
                                 int64_t deadline_ns);

  // JSON requests: a non-2xx answer becomes an error "METHOD PATH: STATUS: <server error>".
  Result<nlohmann::json> get_json(const std::string& path);
  Result<nlohmann::json> post_json(const std::string& path, const nlohmann::json& body);
  Result<nlohmann::json> post_bytes(const std::string& path, const std::string& body);
  Result<nlohmann::json> del(const std::string& path);
  Result<HttpReply> del_raw(const std::string& path);

  const std::string& base_url() const { return base_url_; }
  // "http://HOST:PORT" of the proxy, "" without one.
  const std::string& proxy() const { return proxy_; }

 private:
  ApiClient() = default;
  Result<nlohmann::json> json_of(const std::string& what, Result<HttpReply> r);
  std::string base_url_;
  std::string proxy_;
  bool proxy_auth_ = false;  // the proxy URL carried credentials
  std::string token_;
  std::unique_ptr<httplib::ClientImpl> http_;  // SSLClient for https
};

}  // namespace nines::server
