#include "server/dashboard.h"

namespace nines::server {

const std::string& dashboard_html() {
  static const std::string kPage = "<!doctype html><title>nines</title>";
  return kPage;
}

}  // namespace nines::server
