#include "server/client.h"

#include <httplib.h>

namespace nines::server {

std::string HttpReply::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

ApiClient::ApiClient(ApiClient&&) noexcept = default;
ApiClient& ApiClient::operator=(ApiClient&&) noexcept = default;
ApiClient::~ApiClient() = default;

Result<ApiClient> ApiClient::make(const std::string& base_url, std::string token,
                                  const std::string& ca_file) {
  if (!base_url.starts_with("http://") && !base_url.starts_with("https://"))
    return make_error("server URL '{}': must start with http:// or https://", base_url);
  std::string url = base_url;
  while (url.size() > 8 && url.back() == '/') url.pop_back();
  ApiClient c;
  c.base_url_ = url;
  c.token_ = std::move(token);
  c.http_ = std::make_unique<httplib::Client>(url);
  if (!c.http_->is_valid()) return make_error("server URL '{}': not a valid URL", base_url);
  c.http_->set_connection_timeout(5, 0);
  c.http_->set_read_timeout(60, 0);
  c.http_->set_write_timeout(60, 0);
  c.http_->set_keep_alive(true);
  c.http_->set_tcp_nodelay(true);
  if (!ca_file.empty()) c.http_->set_ca_cert_path(ca_file.c_str());
  if (url.starts_with("https://")) c.http_->enable_server_certificate_verification(true);
  return c;
}

namespace {
HttpReply reply_of(const httplib::Response& r) {
  HttpReply out;
  out.status = r.status;
  out.body = r.body;
  for (const auto& [k, v] : r.headers) out.headers.emplace(k, v);
  return out;
}
}  // namespace

Result<HttpReply> ApiClient::get(const std::string& path,
                                 const std::multimap<std::string, std::string>& extra) {
  httplib::Headers h;
  if (!token_.empty()) h.emplace("Authorization", "Bearer " + token_);
  for (const auto& [k, v] : extra) h.emplace(k, v);
  httplib::Result r = http_->Get(path.c_str(), h);
  if (!r) return make_error("GET {}{}: {}", base_url_, path, httplib::to_string(r.error()));
  return reply_of(r.value());
}

Result<HttpReply> ApiClient::post(const std::string& path, const std::string& body,
                                  const std::string& content_type) {
  httplib::Headers h;
  if (!token_.empty()) h.emplace("Authorization", "Bearer " + token_);
  httplib::Result r = http_->Post(path.c_str(), h, body, content_type.c_str());
  if (!r) return make_error("POST {}{}: {}", base_url_, path, httplib::to_string(r.error()));
  return reply_of(r.value());
}

Result<nlohmann::json> ApiClient::json_of(const std::string& what, Result<HttpReply> r) {
  if (!r.ok()) return r.error();
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status < 200 || r->status > 299) {
    std::string msg = j.is_object() && j.contains("error") && j["error"].is_string()
                          ? j["error"].get<std::string>()
                          : r->body.substr(0, 200);
    return make_error("{}: HTTP {}: {}", what, r->status, msg);
  }
  if (j.is_discarded()) return make_error("{}: answer is not JSON", what);
  return j;
}

Result<nlohmann::json> ApiClient::get_json(const std::string& path) {
  return json_of("GET " + base_url_ + path, get(path));
}
Result<nlohmann::json> ApiClient::post_json(const std::string& path, const nlohmann::json& body) {
  return json_of("POST " + base_url_ + path, post(path, body.dump(), "application/json"));
}
Result<nlohmann::json> ApiClient::post_bytes(const std::string& path, const std::string& body) {
  return json_of("POST " + base_url_ + path, post(path, body, "application/octet-stream"));
}

}  // namespace nines::server
