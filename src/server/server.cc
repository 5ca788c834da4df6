#include "server/server.h"

#include <httplib.h>
#include <signal.h>
#include <strings.h>
#include <sys/stat.h>

#include <condition_variable>
#include <cstdio>
#include <map>
#include <regex>

#include "bundle/bundle.h"
#include "core/clock.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/strings.h"
#include "server/catalogue.h"
#include "server/client.h"
#include "server/dashboard.h"
#include "server/freshness.h"
#include "server/json_body.h"
#include "server/route_bodies.h"
#include "server/tokens.h"

namespace nines::server {

using nlohmann::json;

namespace {

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, json{{"error", message}});
}

// Makes the answer already in `res` the last one on its connection: for a request whose body
// was not read to its end (the rest of it would be taken for the next request), or was not
// sent at all ("Expect: 100-continue" refused). httplib 0.11 keeps a connection open whatever
// the response's Connection header says; it drops it only when sending the response fails.
// So the answer's body goes out through a content provider that writes all of it and then
// reports failure: the client has the whole answer before the connection is closed.
void close_after_answer(httplib::Response& res) {
  std::string body = std::move(res.body);
  res.body.clear();
  std::string type = res.get_header_value("Content-Type");
  res.headers.erase("Content-Type");  // set again by set_content_provider
  res.set_header("Connection", "close");
  res.set_content_provider(body.size(), type.c_str(),
                           [body](size_t offset, size_t length, httplib::DataSink& sink) {
                             sink.write(body.data() + offset, length);
                             return false;
                           });
}

// Answers a refused request; when its body was not read to its end, on a connection then
// closed (close_after_answer).
void send_refusal(httplib::Response& res, bool body_read, int status, const std::string& message) {
  send_error(res, status, message);
  if (!body_read) close_after_answer(res);
}

// What a route takes as its body: at most `limit` bytes; chunked (no Content-Length) only
// when `may_stream`.
struct BodyRule {
  size_t limit;
  bool may_stream;
};
constexpr BodyRule kJsonBody{kMaxJsonBody, false};
constexpr BodyRule kBundleBody{bundle::kMaxBundleBytes, true};

// A refused body is still read, and dropped, up to this many bytes. A client sends its whole
// body before it reads the answer (httplib's client does; so does curl without
// "Expect: 100-continue"), and closing a socket with unread bytes in it makes the kernel
// send a reset, which can destroy the answer before the client reads it. A larger refused
// body gets its answer on a connection closed at once, which such a client may not see.
constexpr size_t kMaxDrainBytes = 2 * kMaxJsonBody;

// A request's body as its headers declare it (RFC 9112 section 6).
struct DeclaredBody {
  bool present = false;            // Content-Length or Transfer-Encoding
  bool streamed = false;           // Transfer-Encoding: its length is known only at its end
  std::optional<uint64_t> length;  // Content-Length of a body that is not streamed
  int bad_status = 0;              // non-zero when its bytes cannot be read as they are:
  std::string bad_why;             // the answer, and why
};

DeclaredBody declared_body(const httplib::Request& req) {
  DeclaredBody d;
  d.streamed = req.has_header("Transfer-Encoding");
  d.present = d.streamed || req.has_header("Content-Length");
  std::string te = req.get_header_value("Transfer-Encoding");
  std::string cl = req.get_header_value("Content-Length");
  if (!d.streamed && d.present) d.length = parse_u64(cl);
  if (d.streamed && strcasecmp(te.c_str(), "chunked") != 0) {
    d.bad_status = 400;
    d.bad_why = fmt::format("Transfer-Encoding '{}': only chunked is understood", te);
  } else if (d.present && !d.streamed && !d.length) {
    d.bad_status = 400;
    d.bad_why = fmt::format("Content-Length '{}' is not a number", cl);
  } else if (req.is_multipart_form_data()) {
    // httplib would parse it into parts; no route takes a form.
    d.bad_status = 415;
    d.bad_why = "multipart bodies are not accepted";
  }
  return d;
}

// Reads and drops a body nobody will use, at most kMaxDrainBytes of it. Returns whether it
// was read to its end: only then can the connection carry the answer and the next request.
bool drain(const httplib::ContentReader& read, const DeclaredBody& d) {
  if (!d.present) return true;
  if (d.bad_status != 0 || (d.length && *d.length > kMaxDrainBytes)) return false;
  size_t seen = 0;
  return read([&seen](const char*, size_t n) { return (seen += n) <= kMaxDrainBytes; });
}

// Reads the body of `req` under `rule` into `body`: at most rule.limit bytes. A request
// without Content-Length or Transfer-Encoding has no body. Returns false when the request
// is refused: 411 (chunked where a length is required), 413 (over the limit), 400 or 415
// (a body that cannot be read); the answer is then in `res`. Sizes are checked on the
// headers before anything is read, so an oversized body is never kept in memory; a
// refused body is drained (kMaxDrainBytes) before the answer.
bool read_body(const httplib::Request& req, httplib::Response& res,
               const httplib::ContentReader& read, BodyRule rule, std::string& body) {
  std::string what = fmt::format("{} {}", req.method, req.path);
  DeclaredBody d = declared_body(req);
  if (!d.present) return true;
  auto refuse = [&](int status, const std::string& why) {
    send_refusal(res, drain(read, d), status, what + ": " + why);
    return false;
  };
  if (d.bad_status != 0) return refuse(d.bad_status, d.bad_why);
  if (d.streamed && !rule.may_stream)
    return refuse(411, "Content-Length required (no chunked JSON bodies)");
  if (d.length && *d.length > rule.limit)
    return refuse(
        413, fmt::format("body of {} bytes, more than the limit of {}", *d.length, rule.limit));
  // Not reserved from Content-Length: a claim costs the client nothing. A streamed body
  // shows its size only as it comes: past the limit it is dropped, then drained within the
  // budget.
  size_t seen = 0;
  bool complete = read([&](const char* data, size_t n) {
    seen += n;
    if (seen <= rule.limit) {
      body.append(data, n);
      return true;
    }
    std::string().swap(body);
    return seen <= kMaxDrainBytes;
  });
  if (seen > rule.limit) {
    send_refusal(
        res, complete, 413,
        fmt::format("{}: chunked body longer than the limit of {} bytes", what, rule.limit));
    return false;
  }
  if (!complete) {
    send_refusal(res, false, 400, what + ": the body ended early or could not be read");
    return false;
  }
  return true;
}

// String members of an untrusted JSON object: "" when absent; an error naming the member
// when it has another type (json::value would throw).
Result<std::vector<std::string>> str_members(const json& o, std::string_view what,
                                             std::initializer_list<const char*> keys) {
  std::vector<std::string> out;
  for (const char* k : keys) {
    auto it = o.find(k);
    if (it == o.end() || it->is_null()) {
      out.emplace_back();
    } else if (it->is_string()) {
      out.push_back(it->get<std::string>());
    } else {
      return make_error("{}: {}: not a string", what, k);
    }
  }
  return out;
}

// Whether the enroll request `req` of `caller` may enroll its existing machine id again:
// it carries that machine's current token, or the caller is an admin who set "replace".
Result<bool> may_reenroll(Storage& store, const EnrollRequest& req, const TokenRecord& caller) {
  if (req.replace && caller.kind == TokenKind::kAdmin) return true;
  if (req.current_token.empty()) return false;
  std::optional<TokenRecord> t = NINES_TRY(store.find_token(hash_token(req.current_token)));
  return t && t->kind == TokenKind::kMachine &&
         constant_time_equal(t->machine_id, req.machine_id);
}

Result<std::pair<std::string, int>> parse_listen(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return make_error("--listen '{}': expected HOST:PORT", listen);
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  std::optional<uint64_t> port = parse_u64(listen.substr(colon + 1));
  if (host.empty() || !port || *port > 65535)
    return make_error("--listen '{}': expected HOST:PORT with a port 0..65535", listen);
  return std::make_pair(host, static_cast<int>(*port));
}

// A token as the admin routes show it: never the token, only its id (from its hash).
json token_json(const TokenRecord& t) {
  return json{{"id", token_id(t.hash_hex)},
              {"kind", to_string(t.kind)},
              {"tier", t.tier},
              {"name", t.name},
              {"machine_id", t.machine_id},
              {"created", format_rfc3339(t.created_unix)},
              {"expires", t.expires_unix ? json(format_rfc3339(t.expires_unix)) : json(nullptr)},
              {"expired", t.expires_unix != 0 && unix_now() >= t.expires_unix}};
}

json bundle_json(const BundleRecord& b, const std::vector<std::string>& tiers) {
  json j = bundle_offer_json(b);
  j["description"] = b.description;
  j["uploaded_unix"] = b.uploaded_unix;
  j["tiers"] = tiers;
  return j;
}

}  // namespace

// The bundles of one tier as of one catalogue generation.
struct TierSnapshot {
  int64_t generation = 0;
  std::shared_ptr<const std::vector<BundleRecord>> bundles;
};

// State shared by the handlers beyond what the header shows.
struct Server::Impl {
  // Catalogue cache: the bundles of each tier, valid while the store's generation holds.
  std::mutex cache_mu;
  int64_t generation = -1;
  int64_t generation_checked_ms = 0;
  std::map<std::string, TierSnapshot> tiers;

  // The signed freshness document of each tier, for the snapshot it was made from.
  std::mutex freshness_mu;
  struct SignedFreshness {
    std::shared_ptr<const std::vector<BundleRecord>> snapshot;
    int64_t issued_unix = 0;
    json member;
  };
  std::map<std::string, SignedFreshness> freshness;

  std::mutex upstream_mu;
  std::condition_variable upstream_cv;
};

Server::Server(ServeOptions opts, std::unique_ptr<Storage> store)
    : opts_(std::move(opts)),
      store_(std::move(store)),
      auth_(*store_, metrics_,
            AuthLimits{opts_.machine_rate, opts_.machine_burst, opts_.admin_rate,
                       opts_.admin_burst, opts_.auth_fail_rate, opts_.auth_fail_burst,
                       opts_.auth_fail_global_rate, opts_.auth_fail_global_burst}),
      impl_(std::make_unique<Impl>()) {}

Server::~Server() {
  stop();
  if (upstream_thread_.joinable()) upstream_thread_.join();
}

Result<bool> Server::load_timestamp_key() {
  bool fallback = opts_.timestamp_key.empty();
  std::string path = fallback ? opts_.data_dir + "/timestamp.key" : opts_.timestamp_key;
  bool created = false;
  timestamp_key_ = NINES_TRY(server::load_timestamp_key(path, fallback, &created));
  return created;
}

std::string Server::timestamp_key_path() const {
  return opts_.timestamp_key.empty() ? opts_.data_dir + "/timestamp.key" : opts_.timestamp_key;
}

Result<std::string> Server::ensure_admin_token() {
  std::string token = generate_token(TokenKind::kAdmin);
  TokenRecord t{hash_token(token), TokenKind::kAdmin, "", "initial admin", "", unix_now()};
  if (!NINES_TRY(store_->put_first_admin_token(t))) return std::string();
  return token;
}

namespace {

// The bundles of `tier` from the cache, refreshed when the catalogue generation moved.
Result<TierSnapshot> tier_bundles(Server::Impl& impl, Storage& store, const std::string& tier) {
  int64_t now_ms = monotonic_ns() / 1000000;
  {
    std::lock_guard lock(impl.cache_mu);
    if (now_ms - impl.generation_checked_ms < kGenerationTtlMs) {
      auto it = impl.tiers.find(tier);
      if (it != impl.tiers.end()) return it->second;
    }
  }
  int64_t gen = NINES_TRY(store.catalogue_generation());
  {
    std::lock_guard lock(impl.cache_mu);
    if (gen != impl.generation) {
      impl.tiers.clear();
      impl.generation = gen;
    }
    impl.generation_checked_ms = now_ms;
    auto it = impl.tiers.find(tier);
    if (it != impl.tiers.end()) return it->second;
  }
  TierSnapshot snap{
      gen,
      std::make_shared<const std::vector<BundleRecord>>(NINES_TRY(store.bundles_in_tier(tier)))};
  std::lock_guard lock(impl.cache_mu);
  if (impl.generation == gen) impl.tiers[tier] = snap;
  return snap;
}

// The check-in answer's "freshness" member for `tier`, made from `snap` (the snapshot the
// offers of the same answer come from): signed again when the snapshot changed (a publish
// or promote moved the generation) or the last signature is kFreshnessResignS old.
json tier_freshness(Server::Impl& impl, const bundle::SecretKey& key, int64_t ttl_s,
                    const std::string& tier, const TierSnapshot& snap, int64_t now) {
  std::lock_guard lock(impl.freshness_mu);
  Server::Impl::SignedFreshness& f = impl.freshness[tier];
  if (f.snapshot != snap.bundles || now - f.issued_unix >= kFreshnessResignS) {
    f.snapshot = snap.bundles;
    f.issued_unix = now;
    f.member = sign_freshness(
        key, freshness_document(tier, snap.generation, *snap.bundles, now, ttl_s));
  }
  return f.member;
}

}  // namespace

Result<int> Server::bind() {
  auto [host, port] = NINES_TRY(parse_listen(opts_.listen));
  if (opts_.tls_cert.empty() != opts_.tls_key.empty())
    return make_error("serve: --tls-cert and --tls-key go together");
  if (!opts_.tls_cert.empty()) {
    auto ssl = std::make_unique<httplib::SSLServer>(opts_.tls_cert.c_str(), opts_.tls_key.c_str());
    if (!ssl->is_valid())
      return make_error("serve: TLS certificate {} or key {}: cannot be loaded (PEM expected)",
                        opts_.tls_cert, opts_.tls_key);
    http_ = std::move(ssl);
  } else {
    http_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& h = *http_;
  int threads = std::max(2, opts_.threads);
  h.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  // Small JSON answers on kept-alive connections: without TCP_NODELAY, Nagle's algorithm
  // and the client's delayed ACK add ~40 ms to each answer.
  h.set_tcp_nodelay(true);
  h.set_keep_alive_max_count(100000);
  // Also how long stop() may wait for an idle kept-alive connection (httplib polls it).
  h.set_keep_alive_timeout(5);
  h.set_read_timeout(30, 0);
  h.set_write_timeout(60, 0);
  // Routes read their bodies themselves (read_body); this bounds what httplib reads on its
  // own, for a method no route takes.
  h.set_payload_max_length(bundle::kMaxBundleBytes + 4096);

  // Kinds of token each handler accepts (kNone: anyone, no token read).
  constexpr KindSet kNone{}, kAdmin{TokenKind::kAdmin}, kEnroll{TokenKind::kEnroll},
      kMachine{TokenKind::kMachine}, kMirror{TokenKind::kMirror};
  using Handler =
      std::function<void(const httplib::Request&, httplib::Response&, const TokenRecord&)>;
  // A route that takes a body gets it read and checked (read_body) before anything else.
  using BodyHandler = std::function<void(const httplib::Request&, const std::string& body,
                                         httplib::Response&, const TokenRecord&)>;

  // Answers a refusal of the authenticator (auth.h): 401, 403, 429 with Retry-After, 500.
  auto refuse = [](httplib::Response& res, const AuthResult& a) {
    if (a.retry_after_s) res.set_header("Retry-After", std::to_string(a.retry_after_s));
    send_error(res, a.status, a.why);
  };
  // Authentication and per-token rate limits (with `rate_limit`): the caller (empty for
  // kNone), or nullopt with the answer in `res`.
  auto authorize = [this, refuse](const httplib::Request& req, httplib::Response& res,
                                  const std::string& route, KindSet allowed,
                                  bool rate_limit = true) -> std::optional<TokenRecord> {
    AuthResult a = auth_.authorize(req.get_header_value("Authorization"), req.remote_addr,
                                   fmt::format("{} {}", req.method, route), allowed, rate_limit);
    if (!a.caller) {
      refuse(res, a);
      return std::nullopt;
    }
    return a.caller;
  };

  // Wraps a handler with timing, metrics, authentication and per-token rate limits.
  auto wrap = [this, authorize](std::string route, KindSet allowed, Handler fn) {
    return
        [this, authorize, route, allowed, fn](const httplib::Request& req, httplib::Response& res) {
          Stopwatch sw;
          if (std::optional<TokenRecord> caller = authorize(req, res, route, allowed))
            fn(req, res, *caller);
          metrics_.observe_request(route, req.method, res.status, sw.elapsed_ns());
        };
  };

  // The same for a route that takes a body. The caller is authorized (and rate-limited)
  // before a byte of the body is read; only then is the body read under `rule`. A refused
  // caller's body is drained and dropped like any refused body (drain): nobody without a
  // valid token of the right kind makes the server keep a body in memory.
  struct BodyRoute {
    std::string route;
    KindSet allowed;
    BodyRule rule;
    httplib::Server::HandlerWithContentReader handler;
  };
  auto wrap_body = [this, authorize](std::string route, KindSet allowed, BodyRule rule,
                                     BodyHandler fn) {
    auto handler = [this, authorize, route, allowed, rule, fn](const httplib::Request& req,
                                                               httplib::Response& res,
                                                               const httplib::ContentReader& read) {
      Stopwatch sw;
      if (std::optional<TokenRecord> caller = authorize(req, res, route, allowed)) {
        std::string body;
        if (read_body(req, res, read, rule, body)) fn(req, body, res, *caller);
      } else {
        int status = res.status;  // a read that fails sets its own (400)
        if (!drain(read, declared_body(req))) close_after_answer(res);
        res.status = status;
      }
      metrics_.observe_request(route, req.method, res.status, sw.elapsed_ns());
    };
    return BodyRoute{route, allowed, rule, handler};
  };

  // The POST routes that take a body, in the order httplib matches them: for the
  // "Expect: 100-continue" handler below, which runs before routing.
  struct BodyRouteMatch {
    std::regex pattern;
    std::string route;
    KindSet allowed;
    BodyRule rule;
  };
  auto body_routes = std::make_shared<std::vector<BodyRouteMatch>>();
  auto post_body = [&h, body_routes](const std::string& pattern, BodyRoute r) {
    body_routes->push_back(BodyRouteMatch{std::regex(pattern), r.route, r.allowed, r.rule});
    h.Post(pattern, std::move(r.handler));
  };

  // A client that sends "Expect: 100-continue" waits for "100 Continue" before it sends its
  // body. One that would be refused (no token, malformed, unknown, of the wrong kind) gets
  // its 401/403 instead, and so does a body the route would refuse on its headers alone
  // (411, 413, 400, 415); the connection is then closed, since the body it may still send
  // is unread. A caller that passes is authorized again by the route, which applies the
  // per-token rate limit (a 429 then comes after the body).
  h.set_expect_100_continue_handler([this, body_routes, authorize](
                                        const httplib::Request& req, httplib::Response& res) {
    if (req.method != "POST") return 100;
    // Called outside httplib's exception handling: nothing may escape.
    try {
      for (const BodyRouteMatch& m : *body_routes) {
        if (!std::regex_match(req.path, m.pattern)) continue;
        Stopwatch sw;
        if (!m.allowed.anyone()) {
          if (!authorize(req, res, m.route, m.allowed, /*rate_limit=*/false)) {
            close_after_answer(res);
            metrics_.observe_request(m.route, req.method, res.status, sw.elapsed_ns());
            return res.status;
          }
        }
        // The checks read_body makes on the headers, before the body is asked for.
        DeclaredBody d = declared_body(req);
        int status = d.bad_status;
        std::string why = d.bad_why;
        if (status == 0 && d.streamed && !m.rule.may_stream) {
          status = 411;
          why = "Content-Length required (no chunked JSON bodies)";
        } else if (status == 0 && d.length && *d.length > m.rule.limit) {
          status = 413;
          why = fmt::format("body of {} bytes, more than the limit of {}", *d.length,
                            m.rule.limit);
        }
        if (status == 0) return 100;
        send_error(res, status, fmt::format("{} {}: {}", req.method, req.path, why));
        close_after_answer(res);
        metrics_.observe_request(m.route, req.method, res.status, sw.elapsed_ns());
        return status;
      }
    } catch (const std::exception& e) {
      send_error(res, 500,
                 fmt::format("{} {}: internal error: {}", req.method, req.path, e.what()));
      close_after_answer(res);
      return 500;
    }
    return 100;
  });

  Storage& store = *store_;
  Impl& impl = *impl_;
  // This server's own catalogue changes are visible to its next check-in at once.
  auto invalidate_cache = [&impl] {
    std::lock_guard lock(impl.cache_mu);
    impl.generation_checked_ms = INT64_MIN / 2;
  };
  const ServeOptions& opts = opts_;

  h.Get("/", wrap("/", kNone, [](auto&, auto& res, auto&) {
          res.set_content(dashboard_html(), "text/html; charset=utf-8");
          res.set_header("Cache-Control", "no-cache");
          res.set_header("Content-Security-Policy",
                         "default-src 'none'; script-src 'unsafe-inline'; "
                         "style-src 'unsafe-inline'; connect-src 'self'; img-src data:");
        }));

  h.Get("/v1/health", wrap("/v1/health", kNone, [&store](auto&, auto& res, auto&) {
          send_json(res, 200, json{{"ok", true}, {"backend", store.backend()}});
        }));

  // --- tokens and enrollment
  post_body(
      "/v1/tokens",
      wrap_body("/v1/tokens", kAdmin, kJsonBody, [&store](auto&, auto& body, auto& res, auto&) {
        Result<TokenRequest> req = parse_token_request(body);
        if (!req.ok()) return send_error(res, 400, req.error().message);
        TokenKind kind = req->kind;
        std::string token = generate_token(kind);
        int64_t now = unix_now();
        int64_t lifetime = req->expires_in_s.value_or(default_token_lifetime_s(kind));
        TokenRecord t{hash_token(token), kind,   req->tier, req->name,
                      "",                now,    lifetime ? now + lifetime : 0};
        if (Status s = store.put_token(t); !s.ok()) return send_error(res, 500, s.error().message);
        json answer = token_json(t);
        answer["token"] = token;
        send_json(res, 201, answer);
      }));

  h.Get("/v1/tokens", wrap("/v1/tokens", kAdmin, [&store](auto&, auto& res, auto&) {
          Result<std::vector<TokenRecord>> all = store.list_tokens();
          if (!all.ok()) return send_error(res, 500, all.error().message);
          json out = json::array();
          for (const TokenRecord& t : *all) out.push_back(token_json(t));
          send_json(res, 200, json{{"tokens", out}});
        }));

  // httplib tries the DELETE routes that take a content reader first (the catch-all below
  // is one): this one takes one too, and drops any body (drain) before it answers.
  auto revoke = wrap("/v1/tokens/:id", kAdmin, [&store](auto& req, auto& res, auto& caller) {
             std::string id = req.matches[1];
             if (token_id(caller.hash_hex) == id)
               return send_error(res, 409,
                                 fmt::format("revoke token {}: that is the token of this "
                                             "request (revoke it with another admin token)",
                                             id));
             Result<std::vector<TokenRecord>> all = store.list_tokens();
             if (!all.ok()) return send_error(res, 500, all.error().message);
             for (const TokenRecord& t : *all) {
               if (token_id(t.hash_hex) != id) continue;
               Result<bool> gone = store.delete_token(t.hash_hex);
               if (!gone.ok()) return send_error(res, 500, gone.error().message);
               json answer = token_json(t);
               answer["revoked"] = true;
               return send_json(res, 200, answer);
             }
             send_error(res, 404, fmt::format("revoke token {}: no such token", id));
           });
  h.Delete(R"(/v1/tokens/([0-9a-f]{16}))",
           [revoke](const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& read) {
             if (!drain(read, declared_body(req))) {
               send_refusal(res, false, 413,
                            fmt::format("{} {}: a body that cannot be drained", req.method,
                                        req.path));
               return;
             }
             revoke(req, res);
           });

  post_body(
      "/v1/enroll",
      wrap_body(
          "/v1/enroll", kEnroll | kAdmin, kJsonBody,
          [&store](auto&, auto& body, auto& res, auto& caller) {
            Result<EnrollRequest> req = parse_enroll_request(body);
            if (!req.ok()) return send_error(res, 400, req.error().message);
            const std::string& machine_id = req->machine_id;
            const std::string& name = req->name;
            std::string tier = caller.kind == TokenKind::kEnroll ? caller.tier : req->tier;
            if (Status s = check_name_field("tier", tier, 64); !s.ok())
              return send_error(res, 400, s.error().wrap("enroll").message);
            // Enrollment creates, never seizes: an existing machine id is enrolled again only
            // with that machine's current token or by an admin who says so ("replace").
            Result<std::optional<MachineRecord>> existing = store.find_machine(machine_id);
            if (!existing.ok()) return send_error(res, 500, existing.error().message);
            if (existing->has_value()) {
              Result<bool> may = may_reenroll(store, *req, caller);
              if (!may.ok()) return send_error(res, 400, may.error().message);
              if (!*may)
                return send_error(
                    res, 409,
                    fmt::format("enroll: machine {} is already enrolled: enrolling it again "
                                "needs its current machine token (\"current_token\") or an "
                                "admin token with \"replace\": true",
                                machine_id));
            }
            // Re-enrolling a machine (reinstalled, token rotated) retires its old token.
            if (Status s = store.delete_machine_tokens(machine_id); !s.ok())
              return send_error(res, 500, s.error().message);
            std::string token = generate_token(TokenKind::kMachine);
            int64_t now = unix_now();
            TokenRecord t{hash_token(token), TokenKind::kMachine, tier, name, machine_id, now};
            if (Status s = store.put_token(t); !s.ok())
              return send_error(res, 500, s.error().message);
            Result<std::optional<MachineRecord>> old = store.find_machine(machine_id);
            if (!old.ok()) return send_error(res, 500, old.error().message);
            MachineRecord m = old->value_or(MachineRecord{});
            if (!old->has_value()) {
              m.machine_id = machine_id;
              m.build_ids_json = "[]";
              m.first_seen_unix = now;
            }
            m.tier = tier;
            if (!name.empty()) m.name = name;
            m.last_seen_unix = now;
            if (Status s = store.upsert_machine(m); !s.ok())
              return send_error(res, 500, s.error().message);
            send_json(res, 201, json{{"machine_id", machine_id}, {"tier", tier}, {"token", token}});
          }));

  // --- machines
  post_body("/v1/checkin",
            wrap_body("/v1/checkin", kMachine, kJsonBody,
                      [this, &store, &impl](auto&, auto& body, auto& res, auto& caller) {
                        Result<MachineIdentity> ident = parse_checkin_request(body);
                        if (!ident.ok()) return send_error(res, 400, ident.error().message);
                        ident->machine_id = caller.machine_id;
                        int64_t now = unix_now();
                        // Nothing changed since the last check-in: only its time moves.
                        std::string sha = identity_sha(*ident);
                        Result<bool> touched =
                            store.touch_machine(caller.machine_id, caller.tier, sha, now);
                        if (!touched.ok()) return send_error(res, 500, touched.error().message);
                        MachineRecord m;
                        m.machine_id = caller.machine_id;
                        m.tier = caller.tier;
                        m.name = ident->name;
                        m.arch = ident->arch;
                        m.kernel_release = ident->kernel_release;
                        m.kernel_build_id = ident->kernel_build_id;
                        if (!*touched) m.build_ids_json = json(ident->build_ids).dump();
                        m.first_seen_unix = now;
                        m.last_seen_unix = now;
                        m.identity_sha = sha;
                        if (!*touched)
                          if (Status s = store.upsert_machine(m); !s.ok())
                            return send_error(res, 500, s.error().message);
                        auto tb = tier_bundles(impl, store, caller.tier);
                        if (!tb.ok()) return send_error(res, 500, tb.error().message);
                        json offers = json::array();
                        for (const BundleRecord& x : applicable_bundles(*tb->bundles, *ident))
                          offers.push_back(bundle_offer_json(x));
                        metrics_.checkins++;
                        json answer{{"machine_id", caller.machine_id},
                                    {"tier", caller.tier},
                                    {"server_time", format_rfc3339(now)},
                                    {"bundles", offers}};
                        if (timestamp_key_)
                          answer["freshness"] = tier_freshness(impl, *timestamp_key_,
                                                               opts_.freshness_ttl_s,
                                                               caller.tier, *tb, now);
                        send_json(res, 200, answer);
                      }));

  h.Get(R"(/v1/bundles/sha256/([0-9a-f]{64}))",
        wrap("/v1/bundles/sha256/:sha256", kAdmin | kMachine | kMirror,
             [&store](auto& req, auto& res, auto&) {
               std::string sha = req.matches[1];
               std::string etag = "\"" + sha + "\"";
               // The content at this URL never changes: any cache may keep it for ever.
               res.set_header("Cache-Control", "public, max-age=31536000, immutable");
               res.set_header("ETag", etag);
               if (req.get_header_value("If-None-Match") == etag) {
                 res.status = 304;
                 return;
               }
               Result<std::optional<std::string>> bytes = store.bundle_bytes(sha);
               if (!bytes.ok()) return send_error(res, 500, bytes.error().message);
               if (!bytes->has_value()) {
                 res.set_header("Cache-Control", "no-store");
                 return send_error(res, 404, fmt::format("bundle sha256 {}: not found", sha));
               }
               res.status = 200;
               res.set_content(std::move(**bytes), "application/octet-stream");
             }));

  post_body("/v1/reports",
            wrap_body("/v1/reports", kMachine, kJsonBody,
                      [this, &store](auto&, auto& body, auto& res, auto& caller) {
                        Result<ReportRequest> req = parse_report_request(body, unix_now());
                        if (!req.ok()) return send_error(res, 400, req.error().message);
                        std::vector<ReportRecord>& recs = req->lines;
                        for (size_t i = 0; i < recs.size(); ++i) {
                          const ReportRecord& r = recs[i];
                          Result<std::optional<BundleRecord>> known =
                              store.find_bundle(r.bundle_id, r.version);
                          if (!known.ok()) return send_error(res, 500, known.error().message);
                          if (!known->has_value())
                            return send_error(
                                res, 400,
                                fmt::format("report: reports[{}]: no bundle {} version {}", i,
                                            r.bundle_id, r.version));
                        }
                        const std::string& advisor = req->advisor_json;
                        const std::string& catalogue = req->catalogue_json;
                        if (Status s = store.add_reports(caller.machine_id, recs, advisor, catalogue);
                            !s.ok())
                          return send_error(res, 500, s.error().message);
                        for (const ReportRecord& r : recs) metrics_.count_report(r.state);
                        send_json(res, 200, json{{"stored", recs.size()}});
                      }));

  // History: a machine sees only its own; an admin sees any (?machine=ID) or all.
  auto history_json = [&store](const std::string& machine_id, const httplib::Request& req,
                               httplib::Response& res) {
    int64_t limit = 1000;
    if (req.has_param("limit")) {
      std::optional<int64_t> l = parse_i64(req.get_param_value("limit"));
      if (!l || *l < 1 || *l > 100000)
        return send_error(res, 400, "history: limit: expected an integer 1..100000");
      limit = *l;
    }
    Result<std::vector<ReportRecord>> h = store.history(machine_id, limit);
    if (!h.ok()) return send_error(res, 500, h.error().message);
    json out = json::array();
    for (const ReportRecord& r : *h)
      out.push_back({{"seq", r.seq},
                     {"machine_id", r.machine_id},
                     {"id", r.bundle_id},
                     {"version", r.version},
                     {"state", r.state},
                     {"reason", r.reason},
                     {"at", format_rfc3339(r.reported_unix)},
                     {"at_unix", r.reported_unix}});
    send_json(res, 200, json{{"reports", out}});
  };

  h.Get("/v1/reports",
        wrap("/v1/reports", kMachine | kAdmin, [history_json](auto& req, auto& res, auto& caller) {
          std::string machine =
              caller.kind == TokenKind::kMachine ? caller.machine_id : req.get_param_value("machine");
          if (caller.kind != TokenKind::kMachine && req.has_param("machine"))
            if (Status s = check_name_field("machine", machine); !s.ok())
              return send_error(res, 400, s.error().wrap("history").message);
          history_json(machine, req, res);
        }));

  h.Get(R"(/v1/machines/([A-Za-z0-9._+:-]{1,128})/reports)",
        wrap("/v1/machines/:id/reports", kMachine | kAdmin,
             [history_json](auto& req, auto& res, auto& caller) {
               std::string id = req.matches[1];
               if (caller.kind == TokenKind::kMachine && !constant_time_equal(id, caller.machine_id))
                 return send_error(res, 403,
                                   fmt::format("reports of machine {}: a machine "
                                               "may read only its own reports",
                                               id));
               history_json(id, req, res);
             }));

  // --- catalogue (admin; mirror reads)
  post_body(
      "/v1/bundles",
      wrap_body(
          "/v1/bundles", kAdmin, kBundleBody,
          [this, &store, &opts, invalidate_cache](auto& req, auto& body, auto& res, auto&) {
            std::string tier = req.get_param_value("tier");
            if (!tier.empty())
              if (Status s = check_name_field("tier", tier, 64); !s.ok())
                return send_error(res, 400, s.error().wrap("publish").message);
            if (!bundle::looks_like_bundle(body))
              return send_error(res, 400, "publish: body is not a nines bundle (bad magic)");
            Result<bundle::Bundle> b = bundle::open_verified(body, opts.trust_dir);
            if (!b.ok())
              return send_error(res, 422,
                                b.error()
                                    .wrap(fmt::format("publish: verify against {}", opts.trust_dir))
                                    .message);
            BundleRecord r = bundle_record(*b, body, unix_now());
            // Stored and promoted in one transaction: a crash leaves both or neither.
            Result<PublishOutcome> out = store.publish(r, body, tier);
            if (!out.ok()) {
              bool conflict = out.error().message.find("already published") != std::string::npos;
              return send_error(res, conflict ? 409 : 500, out.error().message);
            }
            if (*out == PublishOutcome::kStored) metrics_.publishes++;
            invalidate_cache();
            json j = bundle_offer_json(r);
            j["status"] = *out == PublishOutcome::kStored ? "stored" : "identical";
            j["promoted_to"] = tier.empty() ? json::array() : json::array({tier});
            send_json(res, *out == PublishOutcome::kStored ? 201 : 200, j);
          }));

  auto tiers_of =
      [&store]() -> Result<std::map<std::pair<std::string, int64_t>, std::vector<std::string>>> {
    std::map<std::pair<std::string, int64_t>, std::vector<std::string>> out;
    for (const Promotion& p : NINES_TRY(store.list_promotions()))
      out[{p.id, p.version}].push_back(p.tier);
    return out;
  };

  h.Get("/v1/bundles",
        wrap("/v1/bundles", kAdmin | kMirror, [&store, tiers_of](auto&, auto& res, auto&) {
          Result<std::vector<BundleRecord>> list = store.list_bundles();
          if (!list.ok()) return send_error(res, 500, list.error().message);
          auto tiers = tiers_of();
          if (!tiers.ok()) return send_error(res, 500, tiers.error().message);
          json out = json::array();
          for (const BundleRecord& b : *list)
            out.push_back(bundle_json(b, (*tiers)[{b.id, b.version}]));
          send_json(res, 200, json{{"bundles", out}});
        }));

  post_body(R"(/v1/bundles/([A-Za-z0-9._+-]{1,128})/([0-9]{1,18})/promote)",
            wrap_body("/v1/bundles/:id/:version/promote", kAdmin, kJsonBody,
                      [&store, invalidate_cache](auto& req, auto& body, auto& res, auto&) {
                        Result<std::string> t = parse_promote_request(body);
                        if (!t.ok()) return send_error(res, 400, t.error().message);
                        const std::string& tier = *t;
                        std::string id = req.matches[1];
                        int64_t version = *parse_i64(std::string(req.matches[2]));
                        if (Status s = store.promote(id, version, tier); !s.ok()) {
                          bool missing =
                              s.error().message.find("no such bundle") != std::string::npos;
                          return send_error(res, missing ? 404 : 500, s.error().message);
                        }
                        invalidate_cache();
                        send_json(res, 200, json{{"id", id}, {"version", version}, {"tier", tier}});
                      }));

  // --- fleet (admin)
  auto fleet = [&store](int64_t history_limit) -> Result<json> {
    FleetInput in;
    in.machines = NINES_TRY(store.list_machines());
    in.bundles = NINES_TRY(store.list_bundles());
    in.promotions = NINES_TRY(store.list_promotions());
    in.states = NINES_TRY(store.current_states());
    in.history = NINES_TRY(store.history("", history_limit));
    in.now_unix = unix_now();
    return fleet_summary(in);
  };

  h.Get("/v1/machines", wrap("/v1/machines", kAdmin, [fleet](auto&, auto& res, auto&) {
          Result<json> f = fleet(1000000);
          if (!f.ok()) return send_error(res, 500, f.error().message);
          send_json(res, 200, json{{"machines", (*f)["machine_list"]}});
        }));

  h.Get("/v1/fleet", wrap("/v1/fleet", kAdmin, [fleet](auto&, auto& res, auto&) {
          Result<json> f = fleet(1000000);
          if (!f.ok()) return send_error(res, 500, f.error().message);
          send_json(res, 200, *f);
        }));

  h.Get("/metrics", wrap("/metrics", kAdmin, [this, fleet, &store](auto&, auto& res, auto&) {
          Result<json> f = fleet(1000000);
          if (!f.ok()) return send_error(res, 500, f.error().message);
          res.status = 200;
          res.set_content(metrics_.render(*f, store.backend()),
                          "text/plain; version=0.0.4; charset=utf-8");
        }));

  // Any other request that may carry a body: 404, its body drained like a refused one.
  // Without these routes httplib would first read the body whole, up to the payload limit.
  auto no_endpoint = [](const httplib::Request& req, httplib::Response& res,
                        const httplib::ContentReader& read) {
    send_refusal(res, drain(read, declared_body(req)), 404,
                 fmt::format("{} {}: no such endpoint", req.method, req.path));
  };
  h.Post(".*", no_endpoint);
  h.Put(".*", no_endpoint);
  h.Patch(".*", no_endpoint);
  h.Delete(".*", no_endpoint);

  // Fills httplib's own answers (no route, malformed request); ours have their content
  // already (send_refusal's has no body string, only a Content-Type).
  h.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.has_header("Content-Type")) return;
    if (res.status == 404)
      send_error(res, 404, fmt::format("{} {}: no such endpoint", req.method, req.path));
    else if (res.status == 413)
      send_error(res, 413, fmt::format("{} {}: body too large", req.method, req.path));
    else
      send_error(res, res.status, fmt::format("{} {}: HTTP {}", req.method, req.path, res.status));
  });
  h.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, 500, fmt::format("{} {}: internal error: {}", req.method, req.path, what));
      });

  int bound = port == 0 ? h.bind_to_any_port(host) : (h.bind_to_port(host, port) ? port : -1);
  if (bound < 0) return make_error("serve: bind {}: address in use or not available", opts_.listen);
  return bound;
}

Status Server::serve() {
  if (!http_) return make_error("serve: bind() first");
  if (!opts_.upstream_url.empty()) {
    upstream_thread_ = std::thread([this] {
      while (!stopping_) {
        Result<int> n = sync_upstream_once();
        if (!n.ok())
          spdlog::warn("upstream sync: {}", n.error().message);
        else if (*n > 0)
          spdlog::info("upstream sync: {} new bundles", *n);
        std::unique_lock lock(impl_->upstream_mu);
        impl_->upstream_cv.wait_for(lock, std::chrono::seconds(opts_.upstream_interval_s),
                                    [this] { return stopping_.load(); });
      }
    });
  }
  if (!http_->listen_after_bind()) {
    if (stopping_) return {};
    return make_error("serve {}: the listening socket failed", opts_.listen);
  }
  return {};
}

void Server::stop() {
  stopping_ = true;
  if (http_) http_->stop();
  impl_->upstream_cv.notify_all();
}

Result<int> Server::sync_upstream_once() {
  ApiClient up =
      NINES_TRY(ApiClient::make(opts_.upstream_url, opts_.upstream_token, opts_.upstream_ca_file));
  json list = NINES_TRY(up.get_json("/v1/bundles"));
  if (!list.contains("bundles") || !list["bundles"].is_array())
    return make_error("upstream {}: /v1/bundles: no bundle list", opts_.upstream_url);
  int added = 0;
  for (const json& b : list["bundles"]) {
    if (!b.is_object() || !b.contains("version") || !b["version"].is_number_integer())
      return make_error("upstream {}: malformed bundle entry", opts_.upstream_url);
    auto f = str_members(b, "upstream bundle entry", {"id", "sha256"});
    if (!f.ok()) return f.error().wrap(fmt::format("upstream {}", opts_.upstream_url));
    std::string id = (*f)[0];
    int64_t version = b["version"].get<int64_t>();
    std::string sha = (*f)[1];
    if (!check_name_field("id", id).ok() || sha.size() != 64 || !from_hex(sha))
      return make_error("upstream {}: malformed bundle entry", opts_.upstream_url);
    if (!NINES_TRY(store_->find_bundle(id, version)).has_value()) {
      HttpReply r = NINES_TRY(up.get("/v1/bundles/sha256/" + sha));
      if (r.status != 200)
        return make_error("upstream {}: bundle {} version {}: HTTP {}", opts_.upstream_url, id,
                          version, r.status);
      if (bundle::sha256_hex(r.body) != sha)
        return make_error(
            "upstream {}: bundle {} version {}: content does not match its "
            "sha256",
            opts_.upstream_url, id, version);
      // Trust is ours, not the upstream's: the bundle must verify against our trust store.
      bundle::Bundle vb = NINES_TRY(bundle::open_verified(r.body, opts_.trust_dir));
      BundleRecord rec = bundle_record(vb, r.body, unix_now());
      if (NINES_TRY(store_->publish(rec, r.body)) == PublishOutcome::kStored) ++added;
    }
    if (b.contains("tiers") && b["tiers"].is_array())
      for (const json& t : b["tiers"])
        if (t.is_string() && check_name_field("tier", t.get<std::string>(), 64).ok())
          NINES_CHECK(store_->promote(id, version, t.get<std::string>()));
  }
  return added;
}

namespace {
// Makes `path` mode 0600 when it exists with more; "" and missing files are left alone.
Status keep_private(const std::string& path) {
  struct stat st{};
  if (path.empty() || stat(path.c_str(), &st) != 0) return {};
  if ((st.st_mode & 077) == 0) return {};
  if (chmod(path.c_str(), 0600) != 0)
    return make_error("{} is mode {:o} and cannot be made 0600: {}", path, st.st_mode & 0777,
                      std::strerror(errno));
  std::fprintf(stderr, "nines serve: %s was mode %o; now 0600\n", path.c_str(),
               st.st_mode & 0777);
  return {};
}
}  // namespace

int run_serve(const ServeOptions& in) {
  ServeOptions opts = in;
  if (mkdir(opts.data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "nines serve: create data folder %s: %s\n", opts.data_dir.c_str(),
                 std::strerror(errno));
    return 1;
  }
  if (opts.db.empty()) opts.db = "sqlite:" + opts.data_dir + "/nines.db";
  Result<std::unique_ptr<Storage>> store = open_storage(opts.db);
  if (!store.ok()) {
    std::fprintf(stderr, "nines serve: %s\n", store.error().message.c_str());
    return 1;
  }
  // SIGINT/SIGTERM are taken by one thread with sigwait, so they stop the server cleanly
  // instead of interrupting a handler halfway.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  Server server(opts, std::move(*store));
  // Files that hold secrets (token hashes and the fleet's inventory, the admin token, the
  // timestamp key) are the server's alone, whatever mode an older version or a copy left.
  for (std::string path : {opts.data_dir + "/admin-token", server.timestamp_key_path(),
                           opts.db.starts_with("sqlite:") ? opts.db.substr(7) : std::string()})
    if (Status s = keep_private(path); !s.ok())
      std::fprintf(stderr, "nines serve: warning: %s\n", s.error().message.c_str());
  Result<std::string> admin = server.ensure_admin_token();
  if (!admin.ok()) {
    std::fprintf(stderr, "nines serve: create the admin token: %s\n",
                 admin.error().message.c_str());
    return 1;
  }
  if (!admin->empty()) {
    std::string path = opts.data_dir + "/admin-token";
    if (Status s = write_file_atomic(path, *admin + "\n", 0600); !s.ok()) {
      std::fprintf(stderr, "nines serve: %s\n", s.error().message.c_str());
      return 1;
    }
    std::printf("admin token (shown once; also in %s, mode 0600): %s\n", path.c_str(),
                admin->c_str());
  }
  Result<bool> created = server.load_timestamp_key();
  if (!created.ok()) {
    std::fprintf(stderr, "nines serve: %s\n", created.error().message.c_str());
    return 1;
  }
  if (*created)
    std::printf("timestamp key created: %s (machines trust its public half, %s, in "
                "/etc/nines/timestamp-keys.d)\n",
                server.timestamp_key_path().c_str(),
                timestamp_public_path(server.timestamp_key_path()).c_str());
  Result<int> port = server.bind();
  if (!port.ok()) {
    std::fprintf(stderr, "nines serve: %s\n", port.error().message.c_str());
    return 1;
  }
  std::string host = parse_listen(opts.listen)->first;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  std::printf("listening on %s://%s:%d (%s)\n", opts.tls_cert.empty() ? "http" : "https",
              host.c_str(), *port, server.storage().backend().c_str());
  std::fflush(stdout);

  std::thread signals([&server, set] {
    int sig = 0;
    sigwait(&set, &sig);
    server.stop();
  });
  Status st = server.serve();
  // Wake the signal thread if the server stopped on its own.
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  if (!st.ok()) {
    std::fprintf(stderr, "nines serve: %s\n", st.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace nines::server
