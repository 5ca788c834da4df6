// The commands that speak HTTP (serve, admin, enable, agent-exchange) live in a second
// executable, nines-net, installed next to nines. nines itself links no HTTP, TLS or
// PostgreSQL library (Debian's cpp-httplib initialises OpenSSL at load; libpq brings
// Kerberos, LDAP and GnuTLS): loading them was most of the start-up time of every command.
// nines keeps those commands in its table (so --help lists them) and execs nines-net with
// the same arguments, in the same process: options, output and exit status are nines-net's.
#pragma once

#include "cli/commands.h"

namespace nines::cli {

// The executable the network commands run in, next to nines (core's sibling_program).
inline constexpr const char* kNetworkProgram = "nines-net";

// Setup of a command that runs in nines-net: takes every argument after the command's name
// unparsed (--help included) and returns a runner that execs `nines-net [-v...] NAME ARGS`.
// The runner returns 1 only when nines-net cannot be started.
Runner setup_forward_to_network_program(CLI::App& sub);

}  // namespace nines::cli
