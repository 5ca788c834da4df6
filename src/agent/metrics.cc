#include "agent/metrics.h"

#include <httplib.h>

#include <thread>

#include "core/strings.h"

namespace nines::agent {

struct MetricsServer::Impl {
  httplib::Server http;
  std::thread thread;
  int port = 0;
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  impl_->http.stop();
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
  if (host == "[::1]") host = "::1";
  auto port = parse_u64(listen.substr(colon + 1));
  if (!port || *port > 65535) return make_error("metrics-listen '{}': bad port", listen);
  auto impl = std::make_unique<Impl>();
  impl->http.Get("/metrics", [render](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4");
  });
  if (*port == 0) {
    impl->port = impl->http.bind_to_any_port(host);
    if (impl->port < 0) return make_error("metrics-listen '{}': bind failed", listen);
  } else {
    if (!impl->http.bind_to_port(host, static_cast<int>(*port)))
      return make_error("metrics-listen '{}': bind failed (port in use?)", listen);
    impl->port = static_cast<int>(*port);
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->http.listen_after_bind(); });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

}  // namespace nines::agent
