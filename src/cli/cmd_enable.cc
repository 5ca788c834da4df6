// nines enable TOKEN [--server URL] [--machine-id ID] [--name NAME] [--timestamp-key FILE.pub]
//              [--root DIR]
//   Registers this machine with the patch server (POST /v1/enroll with the enroll token),
//   keeps the machine token (0600) and enables the agent. --timestamp-key installs the
//   server's timestamp public key into ROOT/etc/nines/timestamp-keys.d (docs/SECURITY.md).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <optional>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/state.h"
#include "bundle/bundle.h"
#include "cli/commands.h"
#include "core/fd.h"
#include "core/strings.h"
#include "server/client.h"

namespace nines::cli {

namespace {
struct EnableArgs {
  std::string token, server, machine_id, name, root, timestamp_key;
};
}  // namespace

Runner setup_enable(CLI::App& app) {
  auto a = std::make_shared<EnableArgs>();
  app.add_option("token", a->token, "Enroll token (n9e_...) from `nines admin token create`")
      ->required();
  app.add_option("--server", a->server, "Patch server URL (default: remote-server of the config)");
  app.add_option("--machine-id", a->machine_id, "Machine id (default: /etc/machine-id)");
  app.add_option("--name", a->name, "Machine name shown on the server (default: the hostname)");
  app.add_option("--timestamp-key", a->timestamp_key,
                 "The server's timestamp public key (timestamp.pub) to trust for catalogue "
                 "freshness");
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
    // Checked before anything is sent: a key that does not parse is refused up front.
    std::optional<bundle::PublicKey> ts_key;
    if (!a->timestamp_key.empty()) {
      auto k = bundle::read_public_key_file(a->timestamp_key);
      if (!k) {
        std::fprintf(stderr, "nines enable: --timestamp-key: %s\n", k.error().message.c_str());
        return 2;
      }
      ts_key = *k;
    }
    if (policy->remote_server.starts_with("http://"))
      std::fprintf(stderr,
                   "nines enable: warning: %s is plain http: the machine token and every "
                   "answer travel unprotected (bundles are still verified; prefer https)\n",
                   policy->remote_server.c_str());
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
    std::string token = r->is_object() && r->contains("token") && (*r)["token"].is_string()
                            ? (*r)["token"].get<std::string>()
                            : "";
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
    if (st && ts_key) {
      std::string dir = agent::timestamp_key_dir(paths);
      for (size_t i = 1; i <= dir.size(); ++i)
        if (i == dir.size() || dir[i] == '/') ::mkdir(dir.substr(0, i).c_str(), 0755);
      std::string file = dir + "/" + bundle::fingerprint(*ts_key) + ".pub";
      st = write_file_atomic(file, bundle::format_public_key(*ts_key, "timestamp") + "\n", 0644);
      if (st) std::printf("timestamp key %s installed as %s\n", bundle::fingerprint(*ts_key).c_str(), file.c_str());
    }
    if (st) st = db->put("enabled", "1");
    if (st) st = db->put("machine_id", mid);
    if (!st) {
      std::fprintf(stderr, "nines enable: %s\n", st.error().message.c_str());
      return 1;
    }
    std::string tier = (*r)["tier"].is_string() ? (*r)["tier"].get<std::string>() : "?";
    std::printf("enabled: machine %s enrolled at %s in tier %s\n", mid.c_str(),
                policy->remote_server.c_str(), tier.c_str());
    // A running agent checks at once; otherwise the next `nines agent` does.
    if (auto q = agent::request(paths, "enable", 120); !q)
      std::printf("the agent is not running (%s); it will check when started\n",
                  q.error().message.c_str());
    return 0;
  };
}

}  // namespace nines::cli
