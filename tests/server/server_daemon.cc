// `nines serve` without the rest of the nines binary, for the crash test: the same
// run_serve, so killing it tests the real server.
#include <CLI/CLI.hpp>

#include "server/server.h"

int main(int argc, char** argv) {
  nines::server::ServeOptions o;
  CLI::App app{"server_daemon"};
  app.add_option("--listen", o.listen);
  app.add_option("--db", o.db);
  app.add_option("--data", o.data_dir);
  app.add_option("--trust", o.trust_dir);
  CLI11_PARSE(app, argc, argv);
  o.admin_rate = 0;  // the test publishes as fast as it can
  return nines::server::run_serve(o);
}
