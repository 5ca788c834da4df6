// A loopback-only responder for Prometheus scrapes. It is written here rather than taken
// from cpp-httplib because Debian's only build of that library initializes OpenSSL when it
// is loaded (3.5 MB resident), which the idle agent cannot afford (server_link.h). It
// answers one request per connection: GET /metrics (200), another path (404), another
// method (405); the head must arrive within 2 s and fit in 8 KiB.
#include "agent/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "core/clock.h"
#include "core/fd.h"
#include "core/strings.h"

namespace nines::agent {

struct MetricsServer::Impl {
  Fd listener;
  Fd stop;  // eventfd: written by the destructor
  std::function<std::string()> render;
  std::thread thread;
  int port = 0;

  void serve() {
    while (true) {
      pollfd p[2] = {{listener.get(), POLLIN, 0}, {stop.get(), POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents) return;
      Fd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (c.valid()) answer(c);
    }
  }

  void answer(const Fd& c) {
    std::string head;
    int64_t deadline = monotonic_ns() + 2'000'000'000LL;
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 8192) {
      int left_ms = static_cast<int>((deadline - monotonic_ns()) / 1'000'000);
      pollfd p[2] = {{c.get(), POLLIN, 0}, {stop.get(), POLLIN, 0}};
      if (left_ms <= 0 || ::poll(p, 2, left_ms) <= 0 || p[1].revents) return;
      char buf[2048];
      ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
      if (n <= 0) return;
      head.append(buf, static_cast<size_t>(n));
    }
    std::string_view line = std::string_view(head).substr(0, head.find("\r\n"));
    auto parts = split(line, ' ');
    std::string status = "400 Bad Request", body = "bad request\n";
    std::string type = "text/plain";
    if (parts.size() == 3 && starts_with(parts[2], "HTTP/1.")) {
      std::string_view path = parts[1].substr(0, parts[1].find('?'));
      if (parts[0] != "GET" && parts[0] != "HEAD") {
        status = "405 Method Not Allowed", body = "only GET\n";
      } else if (path != "/metrics") {
        status = "404 Not Found", body = "not found: the metrics are at /metrics\n";
      } else {
        status = "200 OK", body = render(), type = "text/plain; version=0.0.4";
      }
    }
    size_t length = body.size();  // HEAD: the length GET would send, no body
    if (parts.size() == 3 && parts[0] == "HEAD") body.clear();
    std::string out = fmt::format(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        status, type, length, body);
    for (size_t off = 0; off < out.size();) {
      ssize_t n = ::send(c.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
    // Let the client read the answer before the close: drain what it may still send.
    ::shutdown(c.get(), SHUT_WR);
    pollfd p{c.get(), POLLIN, 0};
    char sink[1024];
    while (::poll(&p, 1, 200) > 0 && ::recv(c.get(), sink, sizeof sink, 0) > 0) {
    }
  }
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  uint64_t one = 1;
  (void)!::write(impl_->stop.get(), &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsServer::port() const { return impl_->port; }

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& listen,
                                                            std::function<std::string()> render) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos)
    return make_error("metrics-listen '{}': expected 127.0.0.1:PORT", listen);
  std::string host = listen.substr(0, colon);
  if (host != "127.0.0.1" && host != "[::1]")
    return make_error("metrics-listen '{}': only a loopback address is allowed", listen);
  auto port = parse_u64(listen.substr(colon + 1));
  if (!port || *port > 65535) return make_error("metrics-listen '{}': bad port", listen);

  auto impl = std::make_unique<Impl>();
  impl->render = std::move(render);
  bool v6 = host == "[::1]";
  impl->listener = Fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!impl->listener.valid()) return errno_error("metrics-listen " + listen + ": socket");
  int on = 1;
  ::setsockopt(impl->listener.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(*port));
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(*port));
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  }
  if (::bind(impl->listener.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(impl->listener.get(), 16) != 0)
    return errno_error(fmt::format("metrics-listen '{}': bind (port in use?)", listen));
  if (::getsockname(impl->listener.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return errno_error("metrics-listen " + listen + ": getsockname");
  impl->port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                        : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  impl->stop = Fd(::eventfd(0, EFD_CLOEXEC));
  if (!impl->stop.valid()) return errno_error("metrics-listen " + listen + ": eventfd");
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->serve(); });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

}  // namespace nines::agent
