#include "server/client.h"

#include <httplib.h>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>

#include "core/clock.h"
#include "core/fd.h"
#include "core/proxy_connect.h"
#include "core/strings.h"

namespace nines::server {

std::string HttpReply::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

namespace {

constexpr int kConnectTimeoutS = 5;
constexpr int kIoTimeoutS = 60;

std::string host_port(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("{}{}{}:{}", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

struct ServerUrl {
  bool tls = false;
  std::string host;
  int port = 0;
};

// "http(s)://HOST[:PORT]" (trailing slashes already gone), like httplib::Client reads it
// (IPv6 in brackets; port 80 or 443 by default), but a path is refused instead of being
// taken for part of the host name.
Result<ServerUrl> parse_server_url(const std::string& url) {
  auto bad = [&](std::string_view why) { return make_error("server URL '{}': {}", url, why); };
  ServerUrl s;
  s.tls = url.starts_with("https://");
  std::string_view rest(url);
  rest.remove_prefix(s.tls ? 8 : 7);
  if (rest.find_first_of("/?#@") != std::string_view::npos)
    return bad("must be http(s)://HOST[:PORT], without a path or credentials");
  std::optional<std::string_view> port;
  if (rest.starts_with('[')) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in the IPv6 address");
    s.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty() && rest[0] != ':') return bad("text after the IPv6 address");
    if (!rest.empty()) port = rest.substr(1);
  } else {
    size_t colon = rest.find(':');
    s.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (s.host.empty()) return bad("no host");
  s.port = s.tls ? 443 : 80;
  if (port) {
    if (port->empty() || port->size() > 5 ||
        port->find_first_not_of("0123456789") != std::string_view::npos)
      return bad("the port must be a number");
    s.port = std::stoi(std::string(*port));
    if (s.port < 1 || s.port > 65535) return bad("the port must be 1-65535");
  }
  return s;
}

std::string base64(std::string_view in) {
  std::string out(sodium_base64_ENCODED_LEN(in.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()),
                    in.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

int64_t mono_ms() { return monotonic_ns() / 1000000; }

// Waits until fd is ready for events or deadline_ms (CLOCK_MONOTONIC) passes.
bool wait_fd(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    int64_t left = deadline_ms - mono_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// A TCP connection to the proxy, through which the proxy agreed (2xx) to relay bytes to
// target ("HOST:PORT"): the socket is blocking, as httplib expects, and nothing of the
// server's side has been read from it yet.
Result<Fd> open_tunnel(const ProxyUrl& proxy, const std::string& target) {
  std::string name = proxy.display();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  std::string port = std::to_string(proxy.port);
  if (int rc = ::getaddrinfo(proxy.host.c_str(), port.c_str(), &hints, &list); rc != 0)
    return make_error("proxy {} unreachable: {}", name, ::gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(list, &::freeaddrinfo);
  Fd sock;
  std::string why = "no address";
  for (addrinfo* a = list; a && !sock.valid(); a = a->ai_next) {
    Fd s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (!s.valid()) {
      why = std::strerror(errno);
      continue;
    }
    int64_t deadline = mono_ms() + kConnectTimeoutS * 1000;
    if (::connect(s.get(), a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      why = std::strerror(errno);
      continue;
    }
    if (!wait_fd(s.get(), POLLOUT, deadline)) {
      why = fmt::format("no connection within {} s", kConnectTimeoutS);
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      why = std::strerror(err);
      continue;
    }
    sock = std::move(s);
  }
  if (!sock.valid()) return make_error("proxy {} unreachable: {}", name, why);

  std::string req = fmt::format("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n", target);
  if (!proxy.user.empty())
    req += "Proxy-Authorization: Basic " + base64(proxy.user + ":" + proxy.password) + "\r\n";
  req += "\r\n";
  int64_t deadline = mono_ms() + kIoTimeoutS * 1000;
  for (size_t off = 0; off < req.size();) {
    if (!wait_fd(sock.get(), POLLOUT, deadline))
      return make_error("proxy {}: CONNECT {}: could not send within {} s", name, target,
                        kIoTimeoutS);
    ssize_t n = ::send(sock.get(), req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return make_error("proxy {}: CONNECT {}: {}", name, target, std::strerror(errno));
    if (n > 0) off += static_cast<size_t>(n);
  }
  // The answer's head, one byte at a time: whatever follows it belongs to the TLS session.
  std::string head;
  while (!head.ends_with("\r\n\r\n")) {
    if (head.size() >= kConnectReplyMaxHead)
      return make_error("proxy {}: CONNECT {}: answer head over {} bytes", name, target,
                        kConnectReplyMaxHead);
    if (!wait_fd(sock.get(), POLLIN, deadline))
      return make_error("proxy {}: CONNECT {}: no answer within {} s", name, target, kIoTimeoutS);
    char c;
    ssize_t n = ::recv(sock.get(), &c, 1, 0);
    if (n == 0)
      return make_error("proxy {}: CONNECT {}: connection closed {}", name, target,
                        head.empty() ? "without an answer" : "in the answer");
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return make_error("proxy {}: CONNECT {}: {}", name, target, std::strerror(errno));
    if (n == 1) head += c;
  }
  NINES_CHECK(check_connect_reply(head, proxy, target));
  int flags = ::fcntl(sock.get(), F_GETFL);
  if (flags < 0 || ::fcntl(sock.get(), F_SETFL, flags & ~O_NONBLOCK) != 0)
    return errno_error("fcntl(F_SETFL) proxy socket");
  int one = 1;
  ::setsockopt(sock.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return sock;
}

// An https client whose every connection is a CONNECT tunnel we open ourselves, instead of
// httplib's set_proxy. Two faults of httplib 0.11 (Debian 12) make that necessary:
// - when the proxy refuses the CONNECT with "Connection: close" (407, 502 ...: tinyproxy
//   and squid always do), httplib locks its socket mutex a second time and hangs forever
//   (cpp-httplib #1590, fixed in 0.13);
// - it repeats Proxy-Authorization inside the tunnel, handing the proxy credentials to the
//   server.
// TLS, SNI and the certificate and host-name checks then run through the tunnel exactly as
// on a direct connection.
class TunnelClient final : public httplib::SSLClient {
 public:
  TunnelClient(const std::string& host, int port, ProxyUrl proxy)
      : httplib::SSLClient(host, port), proxy_(std::move(proxy)), target_(host_port(host, port)) {}
  // Why the last tunnel could not be opened ("" when it could).
  const std::string& tunnel_error() const { return tunnel_error_; }

 private:
  // Called by httplib (with its socket mutex held) whenever it needs a new connection.
  bool create_and_connect_socket(Socket& socket, httplib::Error& error) override {
    tunnel_error_.clear();
    if (!is_valid()) {
      error = httplib::Error::SSLConnection;
      return false;
    }
    auto fd = open_tunnel(proxy_, target_);
    if (!fd) {
      tunnel_error_ = fd.error().message;
      error = httplib::Error::Connection;
      return false;
    }
    socket.sock = fd->release();
    return true;
  }

  ProxyUrl proxy_;
  std::string target_;
  std::string tunnel_error_;
};

}  // namespace

ApiClient::ApiClient(ApiClient&&) noexcept = default;
ApiClient& ApiClient::operator=(ApiClient&&) noexcept = default;
ApiClient::~ApiClient() = default;

Result<ApiClient> ApiClient::make(const std::string& base_url, std::string token,
                                  const std::string& ca_file, const std::string& proxy_url) {
  if (!base_url.starts_with("http://") && !base_url.starts_with("https://"))
    return make_error("server URL '{}': must start with http:// or https://", base_url);
  std::string url = base_url;
  while (url.size() > 8 && url.back() == '/') url.pop_back();
  ServerUrl server = NINES_TRY(parse_server_url(url));
  std::optional<ProxyUrl> proxy;
  if (!proxy_url.empty()) proxy = NINES_TRY(parse_proxy_url(proxy_url));
  ApiClient c;
  c.base_url_ = url;
  c.token_ = std::move(token);
  if (server.tls && proxy)
    c.http_ = std::make_unique<TunnelClient>(server.host, server.port, *proxy);
  else if (server.tls)
    c.http_ = std::make_unique<httplib::SSLClient>(server.host, server.port);
  else
    c.http_ = std::make_unique<httplib::ClientImpl>(server.host, server.port);
  if (!c.http_->is_valid()) return make_error("server URL '{}': not a valid URL", base_url);
  c.http_->set_connection_timeout(kConnectTimeoutS, 0);
  c.http_->set_read_timeout(kIoTimeoutS, 0);
  c.http_->set_write_timeout(kIoTimeoutS, 0);
  c.http_->set_keep_alive(true);
  c.http_->set_tcp_nodelay(true);
  if (!ca_file.empty()) c.http_->set_ca_cert_path(ca_file.c_str());
  if (server.tls) c.http_->enable_server_certificate_verification(true);
  if (proxy && !server.tls) {
    // Plain http: httplib sends absolute-form requests ("POST http://HOST:PORT/path") to the
    // proxy, with Proxy-Authorization, which the proxy consumes.
    c.http_->set_proxy(proxy->host.c_str(), proxy->port);
    if (!proxy->user.empty())
      c.http_->set_proxy_basic_auth(proxy->user.c_str(), proxy->password.c_str());
  }
  if (proxy) {
    c.proxy_ = proxy->display();
    c.proxy_auth_ = !proxy->user.empty();
  }
  // The machine token goes in each request's own headers, never set_bearer_token_auth:
  // httplib would copy that one into the CONNECT request too, in clear, to the proxy.
  return c;
}

namespace {
HttpReply reply_of(const httplib::Response& r) {
  HttpReply out;
  out.status = r.status;
  out.reason = r.reason;
  out.body = r.body;
  for (const auto& [k, v] : r.headers) out.headers.emplace(k, v);
  return out;
}

// httplib's error names ("Read", "SSLServerVerification") as a sentence.
std::string describe(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "could not connect";
    case httplib::Error::Read:
      return "no complete answer (connection closed, reset or timed out)";
    case httplib::Error::Write:
      return "could not send the request";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed";
    case httplib::Error::SSLLoadingCerts:
      return "could not load the CA certificates";
    case httplib::Error::SSLServerVerification:
      return "TLS: the server's certificate is not trusted or does not name the host";
    default:
      return httplib::to_string(e);
  }
}

// Why no answer came. Through a proxy every connection goes to the proxy, so a failed
// connect is the proxy's; anything later may be the proxy's or the server's.
std::string failure(const httplib::ClientImpl& http, httplib::Error e, const std::string& proxy) {
  if (auto* t = dynamic_cast<const TunnelClient*>(&http); t && !t->tunnel_error().empty())
    return t->tunnel_error();
  std::string what = describe(e);
  if (proxy.empty()) return what;
  if (e == httplib::Error::Connection) return fmt::format("proxy {} unreachable: {}", proxy, what);
  return fmt::format("{} (through proxy {})", what, proxy);
}
}  // namespace

Result<HttpReply> ApiClient::get(const std::string& path,
                                 const std::multimap<std::string, std::string>& extra) {
  httplib::Headers h;
  if (!token_.empty()) h.emplace("Authorization", "Bearer " + token_);
  for (const auto& [k, v] : extra) h.emplace(k, v);
  httplib::Result r = http_->Get(path.c_str(), h);
  if (!r) return make_error("GET {}{}: {}", base_url_, path, failure(*http_, r.error(), proxy_));
  return reply_of(r.value());
}

namespace {
// Caps an answer's body in size and time while httplib reads it; `why` says which limit
// stopped it (httplib itself only reports "Canceled").
struct BodyLimit {
  uint64_t max_bytes;
  int64_t deadline_ns;
  uint64_t seen = 0;
  std::string why;
  bool head(const httplib::Response& r) {
    std::string cl = r.get_header_value("Content-Length");
    if (auto n = parse_u64(cl); !cl.empty() && n && *n > max_bytes) {
      why = fmt::format("answer of {} bytes refused (limit {} bytes)", *n, max_bytes);
      return false;
    }
    return true;
  }
  bool chunk(size_t n) {
    seen += n;
    if (seen > max_bytes) {
      why = fmt::format("answer larger than the limit of {} bytes (stopped reading)", max_bytes);
      return false;
    }
    if (deadline_ns && monotonic_ns() > deadline_ns) {
      why = fmt::format("answer not complete in time ({} bytes received; stopped reading)", seen);
      return false;
    }
    return true;
  }
};
}  // namespace

Result<HttpReply> ApiClient::get_streamed(const std::string& path, uint64_t max_bytes,
                                          int64_t deadline_ns,
                                          const std::function<bool(std::string_view)>& sink) {
  httplib::Headers h;
  if (!token_.empty()) h.emplace("Authorization", "Bearer " + token_);
  BodyLimit limit{max_bytes, deadline_ns};
  HttpReply out;
  httplib::Result r = http_->Get(
      path.c_str(), h,
      httplib::ResponseHandler([&](const httplib::Response& res) {
        out.status = res.status;
        return limit.head(res);
      }),
      httplib::ContentReceiver([&](const char* data, size_t n) {
        if (!limit.chunk(n)) return false;
        if (out.status >= 200 && out.status <= 299) return sink(std::string_view(data, n));
        // An error page is kept (bounded) for the message.
        if (out.body.size() < 4096) out.body.append(data, std::min<size_t>(n, 4096));
        return true;
      }));
  if (!limit.why.empty()) return make_error("GET {}{}: {}", base_url_, path, limit.why);
  if (!r) return make_error("GET {}{}: {}", base_url_, path, failure(*http_, r.error(), proxy_));
  out.status = r->status;
  out.reason = r->reason;
  for (const auto& [k, v] : r->headers) out.headers.emplace(k, v);
  return out;
}

Result<HttpReply> ApiClient::post(const std::string& path, const std::string& body,
                                  const std::string& content_type) {
  return post_bounded(path, body, content_type, UINT64_MAX, 0);
}

Result<HttpReply> ApiClient::post_bounded(const std::string& path, const std::string& body,
                                          const std::string& content_type, uint64_t max_bytes,
                                          int64_t deadline_ns) {
  httplib::Headers h;
  if (!token_.empty()) h.emplace("Authorization", "Bearer " + token_);
  BodyLimit limit{max_bytes, deadline_ns};
  std::string answer;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = h;
  req.headers.emplace("Content-Type", content_type);
  req.body = body;
  req.response_handler = [&](const httplib::Response& res) { return limit.head(res); };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (!limit.chunk(n)) return false;
    answer.append(data, n);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  bool sent = http_->send(req, res, err);
  if (!limit.why.empty()) return make_error("POST {}{}: {}", base_url_, path, limit.why);
  if (sent) {
    HttpReply out = reply_of(res);
    out.body = std::move(answer);
    return out;
  }
  std::string why = failure(*http_, err, proxy_);
  if (!proxy_.empty() && err != httplib::Error::Connection &&
      !dynamic_cast<const TunnelClient*>(http_.get())) {
    // A proxy that answers an http request with its own error (407, 500 ...) may close the
    // connection without reading the POST's body (tinyproxy does): the reset then takes its
    // answer with it. A GET has no body, so its answer through the proxy says what went wrong.
    httplib::Result probe = http_->Get("/v1/health", h);
    if (probe && (probe->status == 407 || probe->status >= 500)) {
      why += fmt::format("; GET /v1/health through the proxy gets HTTP {} {}", probe->status,
                         probe->reason);
      if (probe->status == 407) why += fmt::format(" ({})", proxy_auth_hint(proxy_auth_));
    }
  }
  return make_error("POST {}{}: {}", base_url_, path, why);
}

Result<HttpReply> ApiClient::del_raw(const std::string& path) {
  httplib::Headers h;
  if (!token_.empty()) h.emplace("Authorization", "Bearer " + token_);
  httplib::Result r = http_->Delete(path.c_str(), h);
  if (!r) return make_error("DELETE {}{}: {}", base_url_, path, failure(*http_, r.error(), proxy_));
  return reply_of(r.value());
}

Result<nlohmann::json> ApiClient::del(const std::string& path) {
  return json_of("DELETE " + base_url_ + path, del_raw(path));
}

Result<nlohmann::json> ApiClient::json_of(const std::string& what, Result<HttpReply> r) {
  if (!r.ok()) return r.error();
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status < 200 || r->status > 299) {
    std::string msg;
    if (j.is_object() && j.contains("error") && j["error"].is_string()) {
      msg = j["error"].get<std::string>();
    } else if (!proxy_.empty() && r->status == 407) {
      msg = proxy_auth_hint(proxy_auth_);
    } else {
      // A proxy's own errors are HTML pages; their status line says it shorter.
      size_t first = r->body.find_first_not_of(" \t\r\n");
      bool html = first != std::string::npos && r->body[first] == '<';
      msg = html && !r->reason.empty() ? r->reason : r->body.substr(0, 200);
    }
    if (!proxy_.empty()) msg += fmt::format(" (through proxy {})", proxy_);
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
