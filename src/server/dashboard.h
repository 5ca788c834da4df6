// The fleet dashboard at /: one self-contained HTML page (inline CSS and JS, no external
// assets) that asks for the admin token, then draws /v1/fleet.
#pragma once

#include <string>

namespace nines::server {

const std::string& dashboard_html();

}  // namespace nines::server
