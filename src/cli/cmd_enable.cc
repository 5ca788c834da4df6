// nines enable TOKEN [--server URL] [--machine-id ID] [--name NAME] [--root DIR]
//   Registers this machine with the patch server (POST /v1/enroll with the enroll token),
//   keeps the machine token (0600) and enables the agent.
#include <unistd.h>

#include <cstdio>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/state.h"
#include "cli/commands.h"
#include "core/fd.h"
#include "core/strings.h"
#include "server/client.h"

namespace nines::cli {

namespace {
struct EnableArgs {
  std::string token, server, machine_id, name, root;
};
}  // namespace

Runner setup_enable(CLI::App& app) {
  auto a = std::make_shared<EnableArgs>();
  app.add_option("token", a->token, "Enroll token (n9e_...) from `nines admin token create`")
      ->required();
  app.add_option("--server", a->server, "Patch server URL (default: remote-server of the config)");
  app.add_option("--machine-id", a->machine_id, "Machine id (default: /etc/machine-id)");
  app.add_option("--name", a->name, "Machine name shown on the server (default: the hostname)");
  app.add_option("--root", a->root, "Prefix of every agent path (default: $NINES_ROOT or /)");
  return [a]() -> int {
    auto paths = agent::Paths::make(a->root);
    auto policy = agent::load_policy(paths.config_file);
    if (!policy) {
      std::fprintf(stderr, "nines enable: %s\n", policy.error().message.c_str());
      return 2;
    }
    if (!a->server.empty()) {
      auto st = agent::set_policy_key(*policy, "remote-server", a->server);
      if (!st) {
        std::fprintf(stderr, "nines enable: %s\n", st.error().message.c_str());
        return 2;
      }
    }
    if (policy->remote_server.empty()) {
      std::fprintf(stderr, "nines enable: no server: give --server URL or set remote-server\n");
      return 2;
    }
    std::string mid = a->machine_id.empty() ? agent::machine_id(paths) : a->machine_id;
    std::string name = a->name;
    if (name.empty()) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      name = host;
    }
    auto api = server::ApiClient::make(policy->remote_server, a->token, policy->ca_certs,
                                       policy->http_proxy);
    if (!api) {
      std::fprintf(stderr, "nines enable: %s\n", api.error().message.c_str());
      return 2;
    }
    nlohmann::json enroll = {{"machine_id", mid}, {"name", name}};
    // The server enrolls an existing machine id again only with that machine's current
    // token (docs/SERVER-API.md): the one kept from the last enable, when there is one.
    if (auto kept = read_file(paths.token_file(), 4096); kept.ok()) {
      std::string current(trim(*kept));
      if (!current.empty()) enroll["current_token"] = current;
    }
    auto r = api->post_json("/v1/enroll", enroll);
    if (!r) {
      std::fprintf(stderr, "nines enable: enroll machine %s at %s: %s\n", mid.c_str(),
                   policy->remote_server.c_str(), r.error().message.c_str());
      return 1;
    }
    std::string token = r->value("token", "");
    if (token.rfind("n9m_", 0) != 0) {
      std::fprintf(stderr, "nines enable: enroll at %s: the answer carries no machine token\n",
                   policy->remote_server.c_str());
      return 1;
    }
    auto db = agent::StateDb::open(paths.state_db());  // creates the state folder (0700)
    if (!db) {
      std::fprintf(stderr, "nines enable: %s\n", db.error().message.c_str());
      return 1;
    }
    auto st = write_file_atomic(paths.token_file(), token + "\n", 0600);
    if (st) st = agent::save_policy(paths.config_file, *policy);
    if (st) st = db->put("enabled", "1");
    if (st) st = db->put("machine_id", mid);
    if (!st) {
      std::fprintf(stderr, "nines enable: %s\n", st.error().message.c_str());
      return 1;
    }
    std::printf("enabled: machine %s enrolled at %s in tier %s\n", mid.c_str(),
                policy->remote_server.c_str(), r->value("tier", "?").c_str());
    // A running agent checks at once; otherwise the next `nines agent` does.
    if (auto q = agent::request(paths, "enable", 120); !q)
      std::printf("the agent is not running (%s); it will check when started\n",
                  q.error().message.c_str());
    return 0;
  };
}

}  // namespace nines::cli
