// A small HTTP(S) client of the patch server's API, used by `nines admin`, the upstream
// mirror and the tests. (The agent may use it too.)
#pragma once

#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace httplib {
class Client;
}

namespace nines::server {

struct HttpReply {
  int status = 0;
  std::string body;
  std::multimap<std::string, std::string> headers;
  std::string header(const std::string& name) const;
};

class ApiClient {
 public:
  // base_url: "http://HOST:PORT" or "https://HOST:PORT". With https, ca_file names the PEM
  // certificate(s) to trust (empty: the system's). Fails on a malformed URL.
  static Result<ApiClient> make(const std::string& base_url, std::string token,
                                const std::string& ca_file = {});
  ApiClient(ApiClient&&) noexcept;
  ApiClient& operator=(ApiClient&&) noexcept;
  ~ApiClient();

  // Raw requests: fail only when no HTTP answer came (connection refused, timeout, TLS).
  Result<HttpReply> get(const std::string& path,
                        const std::multimap<std::string, std::string>& headers = {});
  Result<HttpReply> post(const std::string& path, const std::string& body,
                         const std::string& content_type);

  // JSON requests: a non-2xx answer becomes an error "METHOD PATH: STATUS: <server error>".
  Result<nlohmann::json> get_json(const std::string& path);
  Result<nlohmann::json> post_json(const std::string& path, const nlohmann::json& body);
  Result<nlohmann::json> post_bytes(const std::string& path, const std::string& body);

  const std::string& base_url() const { return base_url_; }

 private:
  ApiClient() = default;
  Result<nlohmann::json> json_of(const std::string& what, Result<HttpReply> r);
  std::string base_url_;
  std::string token_;
  std::unique_ptr<httplib::Client> http_;
};

}  // namespace nines::server
