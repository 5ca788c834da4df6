// nines admin: manage a patch server over its API (tokens, publish, promote, machines).
#include <cstdio>

#include "agent/config.h"
#include "bundle/bundle.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "server/client.h"

namespace nines::cli {
namespace {

struct AdminOptions {
  std::string server, token, ca_file;
  // token create / revoke
  std::string kind = "enroll", tier, name, expires, token_id;
  // publish
  std::string bundle_path;
  // promote
  std::string id;
  int64_t version = 0;
  std::string format = "text";
};

int fail(const std::string& msg) {
  std::fprintf(stderr, "nines admin: %s\n", msg.c_str());
  return 1;
}

Result<server::ApiClient> connect(const AdminOptions& o) {
  if (o.token.empty()) return make_error("--admin-token (or NINES_ADMIN_TOKEN) is required");
  return server::ApiClient::make(o.server, o.token, o.ca_file);
}

int token_create(const AdminOptions& o) {
  auto c = connect(o);
  if (!c.ok()) return fail(c.error().message);
  nlohmann::json body = {{"kind", o.kind}, {"tier", o.tier}, {"name", o.name}};
  if (o.expires == "never") {
    body["expires_in_s"] = 0;
  } else if (!o.expires.empty()) {
    Result<int64_t> s = agent::parse_duration(o.expires);
    if (!s.ok() || *s < 1)
      return fail("token create: --expires: " +
                  (s.ok() ? std::string("must be at least 1s or never") : s.error().message));
    body["expires_in_s"] = *s;
  }
  auto r = c->post_json("/v1/tokens", body);
  if (!r.ok()) return fail(r.error().message);
  std::printf("%s\n", (*r)["token"].get<std::string>().c_str());
  return 0;
}

// One text cell of a JSON member that may be null or missing.
std::string cell(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  std::string s = it->is_string() ? it->get<std::string>() : it->dump();
  return s.empty() ? "-" : s;
}

int token_list(const AdminOptions& o) {
  auto c = connect(o);
  if (!c.ok()) return fail(c.error().message);
  auto r = c->get_json("/v1/tokens");
  if (!r.ok()) return fail(r.error().message);
  if (o.format == "json") {
    std::printf("%s\n", (*r)["tokens"].dump(2).c_str());
    return 0;
  }
  std::printf("%-16s %-7s %-10s %-20s %-20s %-20s %s\n", "ID", "KIND", "TIER", "MACHINE/NAME",
              "CREATED", "EXPIRES", "");
  for (const auto& t : (*r)["tokens"]) {
    std::string who = cell(t, "machine_id") != "-" ? cell(t, "machine_id") : cell(t, "name");
    std::printf("%-16s %-7s %-10s %-20s %-20s %-20s %s\n", cell(t, "id").c_str(),
                cell(t, "kind").c_str(), cell(t, "tier").c_str(), who.c_str(),
                cell(t, "created").c_str(),
                t["expires"].is_null() ? "never" : cell(t, "expires").c_str(),
                t.value("expired", false) ? "expired" : "");
  }
  return 0;
}

int token_revoke(const AdminOptions& o) {
  auto c = connect(o);
  if (!c.ok()) return fail(c.error().message);
  auto r = c->del("/v1/tokens/" + o.token_id);
  if (!r.ok()) return fail(r.error().message);
  std::printf("revoked token %s (%s%s%s)\n", o.token_id.c_str(), cell(*r, "kind").c_str(),
              cell(*r, "machine_id") != "-" ? (", machine " + cell(*r, "machine_id")).c_str() : "",
              cell(*r, "name") != "-" ? (", " + cell(*r, "name")).c_str() : "");
  return 0;
}

int publish(const AdminOptions& o) {
  auto bytes = bundle::read_bundle_file(o.bundle_path);
  if (!bytes.ok()) return fail(bytes.error().message);
  auto c = connect(o);
  if (!c.ok()) return fail(c.error().message);
  std::string path = "/v1/bundles" + (o.tier.empty() ? "" : "?tier=" + o.tier);
  auto r = c->post_bytes(path, *bytes);
  if (!r.ok()) return fail(r.error().message);
  std::printf("%s %s version %lld (sha256 %s)%s\n", (*r)["status"].get<std::string>().c_str(),
              (*r)["id"].get<std::string>().c_str(),
              static_cast<long long>((*r)["version"].get<int64_t>()),
              (*r)["sha256"].get<std::string>().c_str(),
              o.tier.empty() ? "" : (", promoted to " + o.tier).c_str());
  return 0;
}

int promote(const AdminOptions& o) {
  auto c = connect(o);
  if (!c.ok()) return fail(c.error().message);
  auto r =
      c->post_json(fmt::format("/v1/bundles/{}/{}/promote", o.id, o.version), {{"tier", o.tier}});
  if (!r.ok()) return fail(r.error().message);
  std::printf("promoted %s version %lld to %s\n", o.id.c_str(), static_cast<long long>(o.version),
              o.tier.c_str());
  return 0;
}

int machines(const AdminOptions& o) {
  auto c = connect(o);
  if (!c.ok()) return fail(c.error().message);
  auto r = c->get_json("/v1/machines");
  if (!r.ok()) return fail(r.error().message);
  if (o.format == "json") {
    std::printf("%s\n", (*r)["machines"].dump(2).c_str());
    return 0;
  }
  std::printf("%-24s %-10s %-11s %-8s %-28s %-20s %s\n", "MACHINE", "TIER", "STATE", "APPLIED",
              "KERNEL", "LAST SEEN", "REBOOT");
  for (const auto& m : (*r)["machines"]) {
    std::string applied = fmt::format("{}/{}", m["applied"].get<int>(), m["offered"].get<int>());
    std::string reboot = m["needs_reboot"].get<bool>() ? "yes" : "-";
    std::printf("%-24s %-10s %-11s %-8s %-28s %-20s %s\n",
                m["machine_id"].get<std::string>().c_str(), m["tier"].get<std::string>().c_str(),
                m["state"].get<std::string>().c_str(), applied.c_str(),
                m["kernel_release"].get<std::string>().c_str(),
                format_rfc3339(m["last_seen_unix"].get<int64_t>()).c_str(), reboot.c_str());
  }
  return 0;
}

}  // namespace

Runner setup_admin(CLI::App& app) {
  auto o = std::make_shared<AdminOptions>();
  if (const char* t = std::getenv("NINES_ADMIN_TOKEN")) o->token = t;
  app.add_option("--server", o->server, "Server URL (http://HOST:PORT or https://...)")->required();
  app.add_option("--admin-token", o->token, "Admin token (or NINES_ADMIN_TOKEN)");
  app.add_option("--ca-file", o->ca_file, "PEM CA certificate for an https server");
  app.require_subcommand(1);

  auto which = std::make_shared<std::string>();
  CLI::App* token = app.add_subcommand("token", "Tokens of the server");
  token->require_subcommand(1);
  CLI::App* create = token->add_subcommand("create", "Create a token and print it once");
  create->add_option("--tier", o->tier, "Tier the machines enrolled with it belong to");
  create->add_option("--name", o->name, "A name for people");
  create->add_option("--kind", o->kind, "enroll (default), mirror or admin")
      ->check(CLI::IsMember({"enroll", "mirror", "admin"}));
  create->add_option("--expires", o->expires,
                     "Lifetime: N[s|m|h|d] or never (default: 30d for enroll tokens, never "
                     "for others)");
  create->callback([which] { *which = "token"; });
  CLI::App* list = token->add_subcommand("list", "List the tokens (ids, never the tokens)");
  list->add_option("--format", o->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  list->callback([which] { *which = "token-list"; });
  CLI::App* revoke = token->add_subcommand("revoke", "Revoke a token by its id (from list)");
  revoke->add_option("id", o->token_id, "Token id: 16 hex digits")->required();
  revoke->callback([which] { *which = "token-revoke"; });

  CLI::App* pub = app.add_subcommand("publish", "Publish a signed bundle");
  pub->add_option("bundle", o->bundle_path, "The .bundle file")->required();
  pub->add_option("--tier", o->tier, "Promote it to this tier at once");
  pub->callback([which] { *which = "publish"; });

  CLI::App* pro = app.add_subcommand("promote", "Make a published bundle visible to a tier");
  pro->add_option("id", o->id, "Bundle id")->required();
  pro->add_option("version", o->version, "Bundle version")->required();
  pro->add_option("--tier", o->tier, "Tier")->required();
  pro->callback([which] { *which = "promote"; });

  CLI::App* mac = app.add_subcommand("machines", "List the machines and their state");
  mac->add_option("--format", o->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  mac->callback([which] { *which = "machines"; });

  return [o, which] {
    if (*which == "token") {
      if (o->kind == "enroll" && o->tier.empty()) return fail("token create: --tier is required");
      return token_create(*o);
    }
    if (*which == "token-list") return token_list(*o);
    if (*which == "token-revoke") return token_revoke(*o);
    if (*which == "publish") return publish(*o);
    if (*which == "promote") return promote(*o);
    if (*which == "machines") return machines(*o);
    return fail("nothing to do");
  };
}

}  // namespace nines::cli
