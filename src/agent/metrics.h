// The agent's Prometheus endpoint: GET /metrics in text format 0.0.4 on a loopback address
// (config key metrics-listen, e.g. 127.0.0.1:9101). No authentication: loopback only, and
// it shows counts, never tokens.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/result.h"

namespace nines::agent {

class MetricsServer {
 public:
  // Starts serving in a thread; `render` builds the body on each scrape. Fails when the
  // address is not loopback or the port cannot be bound.
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& listen,
                                                      std::function<std::string()> render);
  ~MetricsServer();  // stops and joins
  int port() const;

  struct Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nines::agent
