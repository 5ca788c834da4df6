// nines agent-exchange: the agent's HTTP(S) and advisor work, for the length of one check
// (src/agent/server_link.h). Not for people: hidden from --help. Part of nines-net, the
// executable that links the HTTP and TLS libraries (see cli/forward.h).
#include "agent/server_link.h"
#include "cli/commands.h"

namespace nines::cli {

Runner setup_agent_exchange(CLI::App&) {
  return [] { return agent::run_exchange(); };
}

}  // namespace nines::cli
